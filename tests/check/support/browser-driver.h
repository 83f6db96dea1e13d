/* Test support: the browser suite's driver (tests/browser/driver.mjs: playwright-core over
 * Debian's Chromium, headless) as a child process spoken to in JSON lines. Every call is
 * bounded; failures are values (no check macros inside), so any thread may use it, one
 * at a time.
 *
 * Needs node in PATH, Chromium at /usr/bin/chromium or $VMD_CHROMIUM, and
 * $VMD_BROWSER_DIR/node_modules/playwright-core (scripts/install-deps.sh runs npm ci).
 */
#pragma once

#include "raii.h"

#include <gio/gio.h>

#include <array>
#include <string>
#include <vector>

namespace testsupport {

class BrowserDriver {
 public:
  /* The driver's own bound on a command when it is given none (driver.mjs). */
  static constexpr guint kDriverTimeoutMs = 15000;

  /* False, with what is missing in *why, when the suite cannot run here. */
  static bool available(std::string *why);

  BrowserDriver() = default;
  /* Sends quit, closes the driver's stdin, kills it if it is still there after 5 s. */
  ~BrowserDriver();
  BrowserDriver(const BrowserDriver &) = delete;
  BrowserDriver &operator=(const BrowserDriver &) = delete;

  /* Spawns node driver.mjs and waits (60 s at most) for its ready line. */
  bool start(std::string *error);
  /* What the destructor does, earlier; idempotent. */
  void stop();
  /* Chromium's version from the ready line. */
  const std::string &version() const { return version_; }

  /* One command (a JSON object, one line, e.g. {"cmd":"eval","id":"a","expr":"1"}); the
   * reply line. *ok: the reply says "ok":true. Never waits longer than timeout_ms: on a
   * timeout, a dead driver or a line that is not a JSON object the reply is a made-up
   * {"ok":false,"error":...} line. A late reply to an earlier command is skipped (each
   * command carries a "seq" the driver echoes). */
  std::string command(const std::string &json_line, guint timeout_ms, bool *ok);

  /* Conveniences over command(); *error: the driver's reason. */
  bool open(const std::string &id, const std::string &url, int width, int height,
            std::string *error);
  bool wait(const std::string &id, const std::string &expr, guint timeout_ms,
            std::string *error);
  /* *value_json: the expression's value, serialized as JSON. */
  bool eval(const std::string &id, const std::string &expr, std::string *value_json,
            std::string *error);
  bool sample(const std::string &id, const std::vector<std::array<int, 2>> &points,
              std::vector<std::array<int, 3>> *rgb, std::string *error);

  /* JSON helpers for building commands and reading replies. */
  static std::string quote(const std::string &s);
  /* A member of the reply's object, serialized as JSON (false when absent). */
  static bool member_json(const std::string &reply, const char *member, std::string *json);
  static bool member_string(const std::string &reply, const char *member, std::string *out);
  static bool member_double(const std::string &reply, const char *member, double *out);
  static bool member_bool(const std::string &reply, const char *member, bool *out);

 private:
  bool write_line(const std::string &line);
  /* The next line from the driver's stdout within deadline_us (g_get_monotonic_time). */
  bool read_line(gint64 deadline_us, std::string *line);
  bool wait_exit(guint timeout_ms);

  vmd::GObjectPtr<GSubprocess> proc_;
  int out_fd_ = -1;
  std::string buffer_;
  std::string version_;
  guint64 seq_ = 0;
};

}  // namespace testsupport
