/* Test support: tests/browser/driver.mjs as a child, JSON lines over pipes, every read
 * bounded with poll() on the driver's stdout. */
#include "browser-driver.h"

#include <gio/gunixinputstream.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace testsupport {

namespace {

constexpr guint kReadyTimeoutMs = 60000;
constexpr guint kQuitTimeoutMs = 5000;

std::string env_or(const char *name, const char *fallback) {
  const char *v = g_getenv(name);
  return v && *v ? v : fallback;
}

std::string browser_dir() { return env_or("VMD_BROWSER_DIR", ""); }
std::string chromium_path() { return env_or("VMD_CHROMIUM", "/usr/bin/chromium"); }

/* A parsed reply line's top object (nullptr when the line is not one). */
struct Parsed {
  vmd::GObjectPtr<JsonParser> parser{json_parser_new()};
  JsonObject *object = nullptr;
  explicit Parsed(const std::string &line) {
    if (json_parser_load_from_data(parser.get(), line.data(), gssize(line.size()), nullptr)) {
      JsonNode *root = json_parser_get_root(parser.get());
      if (root && JSON_NODE_HOLDS_OBJECT(root))
        object = json_node_get_object(root);
    }
  }
  JsonNode *member(const char *name) const {
    return object && json_object_has_member(object, name)
               ? json_object_get_member(object, name)
               : nullptr;
  }
};

std::string to_json(JsonNode *node) {
  vmd::GCharPtr text(json_to_string(node, FALSE));
  return text ? text.get() : "null";
}

std::string error_reply(const std::string &why) {
  return "{\"ok\":false,\"error\":" + BrowserDriver::quote(why) + "}";
}

}  // namespace

bool BrowserDriver::available(std::string *why) {
  vmd::GCharPtr node(g_find_program_in_path("node"));
  if (!node) {
    *why = "node is not in PATH (Debian package nodejs)";
    return false;
  }
  const std::string chromium = chromium_path();
  if (!g_file_test(chromium.c_str(), G_FILE_TEST_IS_EXECUTABLE)) {
    *why = chromium + " is missing (Debian package chromium, or set VMD_CHROMIUM)";
    return false;
  }
  const std::string dir = browser_dir();
  if (dir.empty()) {
    *why = "VMD_BROWSER_DIR is not set (meson test sets it to tests/browser)";
    return false;
  }
  const std::string module = dir + "/node_modules/playwright-core";
  if (!g_file_test(module.c_str(), G_FILE_TEST_IS_DIR)) {
    *why = module + " is missing (run scripts/install-deps.sh, or npm ci in tests/browser)";
    return false;
  }
  return true;
}

bool BrowserDriver::start(std::string *error) {
  std::string why;
  if (!available(&why)) {
    *error = why;
    return false;
  }
  /* A driver that died must be a failed write, not SIGPIPE for the whole test. */
  signal(SIGPIPE, SIG_IGN);
  const std::string script = browser_dir() + "/driver.mjs";
  GError *err = nullptr;
  proc_.reset(g_subprocess_new(
      GSubprocessFlags(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE), &err,
      "node", script.c_str(), nullptr));
  if (!proc_) {
    *error = std::string("cannot spawn node: ") + err->message;
    g_error_free(err);
    return false;
  }
  out_fd_ = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(g_subprocess_get_stdout_pipe(proc_.get())));
  std::string line;
  if (!read_line(g_get_monotonic_time() + gint64(kReadyTimeoutMs) * 1000, &line)) {
    *error = "the driver printed no ready line within 60 s";
    stop();
    return false;
  }
  Parsed ready(line);
  JsonNode *flag = ready.member("ready");
  if (!flag || !JSON_NODE_HOLDS_VALUE(flag) || !json_node_get_boolean(flag)) {
    *error = "the driver did not start: " + line;
    stop();
    return false;
  }
  member_string(line, "version", &version_);
  return true;
}

BrowserDriver::~BrowserDriver() { stop(); }

void BrowserDriver::stop() {
  if (!proc_)
    return;
  write_line("{\"cmd\":\"quit\"}");
  g_output_stream_close(g_subprocess_get_stdin_pipe(proc_.get()), nullptr, nullptr);
  if (!wait_exit(kQuitTimeoutMs)) {
    /* SIGTERM first: playwright closes Chromium on it; then SIGKILL. */
    g_printerr("browser driver: still running %u ms after quit, stopping it\n", kQuitTimeoutMs);
    g_subprocess_send_signal(proc_.get(), SIGTERM);
    if (!wait_exit(2000)) {
      g_subprocess_force_exit(proc_.get());
      wait_exit(2000);
    }
  }
  proc_.reset();
  out_fd_ = -1;
  buffer_.clear();
}

/* GSubprocess reaps its child on GLib's worker thread; the identifier goes NULL then. */
bool BrowserDriver::wait_exit(guint timeout_ms) {
  const gint64 deadline = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (g_subprocess_get_identifier(proc_.get())) {
    if (g_get_monotonic_time() >= deadline)
      return false;
    g_usleep(10000);
  }
  return true;
}

bool BrowserDriver::write_line(const std::string &line) {
  if (!proc_)
    return false;
  const std::string data = line + "\n";
  return g_output_stream_write_all(g_subprocess_get_stdin_pipe(proc_.get()), data.data(),
                                   data.size(), nullptr, nullptr, nullptr);
}

bool BrowserDriver::read_line(gint64 deadline_us, std::string *line) {
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    const gint64 left_us = deadline_us - g_get_monotonic_time();
    if (out_fd_ < 0 || left_us <= 0)
      return false;
    struct pollfd p = {out_fd_, POLLIN, 0};
    const int r = poll(&p, 1, int((left_us + 999) / 1000));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    char chunk[65536];
    const ssize_t n = read(out_fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      out_fd_ = -1; /* EOF: the driver is gone */
      return false;
    }
    buffer_.append(chunk, size_t(n));
  }
}

std::string BrowserDriver::command(const std::string &json_line, guint timeout_ms, bool *ok) {
  *ok = false;
  Parsed cmd(json_line);
  if (!cmd.object)
    return error_reply("not a JSON object: " + json_line);
  if (!proc_ || out_fd_ < 0)
    return error_reply("the driver is not running");
  const guint64 seq = ++seq_;
  json_object_set_int_member(cmd.object, "seq", gint64(seq));
  if (!write_line(to_json(json_parser_get_root(cmd.parser.get()))))
    return error_reply("cannot write to the driver (it died?)");
  const gint64 deadline = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  std::string line;
  while (read_line(deadline, &line)) {
    Parsed reply(line);
    JsonNode *s = reply.member("seq");
    if (!s || !JSON_NODE_HOLDS_VALUE(s) || guint64(json_node_get_int(s)) != seq)
      continue; /* a late answer to a command that timed out here */
    JsonNode *flag = reply.member("ok");
    *ok = flag && JSON_NODE_HOLDS_VALUE(flag) && json_node_get_boolean(flag);
    return line;
  }
  return error_reply(out_fd_ < 0 ? "the driver exited"
                                 : "no answer within " + std::to_string(timeout_ms) + " ms");
}

bool BrowserDriver::open(const std::string &id, const std::string &url, int width, int height,
                         std::string *error) {
  bool ok = false;
  const std::string reply = command("{\"cmd\":\"open\",\"id\":" + quote(id) + ",\"url\":" +
                                        quote(url) + ",\"width\":" + std::to_string(width) +
                                        ",\"height\":" + std::to_string(height) + "}",
                                    kDriverTimeoutMs + 5000, &ok);
  if (!ok)
    *error = reply;
  return ok;
}

bool BrowserDriver::wait(const std::string &id, const std::string &expr, guint timeout_ms,
                         std::string *error) {
  bool ok = false;
  const std::string reply =
      command("{\"cmd\":\"wait\",\"id\":" + quote(id) + ",\"expr\":" + quote(expr) +
                  ",\"timeout_ms\":" + std::to_string(timeout_ms) + "}",
              timeout_ms + 5000, &ok);
  if (!ok)
    *error = reply;
  return ok;
}

bool BrowserDriver::eval(const std::string &id, const std::string &expr,
                         std::string *value_json, std::string *error) {
  bool ok = false;
  const std::string reply = command(
      "{\"cmd\":\"eval\",\"id\":" + quote(id) + ",\"expr\":" + quote(expr) + "}",
      kDriverTimeoutMs + 5000, &ok);
  if (!ok) {
    *error = reply;
    return false;
  }
  if (!member_json(reply, "value", value_json))
    *value_json = "null"; /* undefined does not survive JSON */
  return true;
}

bool BrowserDriver::sample(const std::string &id, const std::vector<std::array<int, 2>> &points,
                           std::vector<std::array<int, 3>> *rgb, std::string *error) {
  std::string list;
  for (const auto &p : points)
    list += (list.empty() ? "[" : ",[") + std::to_string(p[0]) + "," + std::to_string(p[1]) + "]";
  bool ok = false;
  const std::string reply = command(
      "{\"cmd\":\"sample\",\"id\":" + quote(id) + ",\"points\":[" + list + "]}",
      kDriverTimeoutMs + 5000, &ok);
  Parsed parsed(reply);
  JsonNode *node = parsed.member("rgb");
  if (!ok || !node || !JSON_NODE_HOLDS_ARRAY(node)) {
    *error = reply;
    return false;
  }
  JsonArray *arr = json_node_get_array(node);
  rgb->clear();
  for (guint i = 0; i < json_array_get_length(arr); i++) {
    JsonNode *px = json_array_get_element(arr, i);
    if (!JSON_NODE_HOLDS_ARRAY(px) || json_array_get_length(json_node_get_array(px)) != 3) {
      *error = "malformed rgb list: " + reply;
      return false;
    }
    JsonArray *c = json_node_get_array(px);
    rgb->push_back({int(json_array_get_int_element(c, 0)), int(json_array_get_int_element(c, 1)),
                    int(json_array_get_int_element(c, 2))});
  }
  return rgb->size() == points.size();
}

std::string BrowserDriver::quote(const std::string &s) {
  JsonNode *node = json_node_new(JSON_NODE_VALUE);
  json_node_set_string(node, s.c_str());
  std::string out = to_json(node);
  json_node_unref(node);
  return out;
}

bool BrowserDriver::member_json(const std::string &reply, const char *member,
                                std::string *json) {
  Parsed parsed(reply);
  JsonNode *node = parsed.member(member);
  if (!node)
    return false;
  *json = to_json(node);
  return true;
}

bool BrowserDriver::member_string(const std::string &reply, const char *member,
                                  std::string *out) {
  Parsed parsed(reply);
  JsonNode *node = parsed.member(member);
  if (!node || json_node_get_value_type(node) != G_TYPE_STRING)
    return false;
  *out = json_node_get_string(node);
  return true;
}

bool BrowserDriver::member_double(const std::string &reply, const char *member, double *out) {
  Parsed parsed(reply);
  JsonNode *node = parsed.member(member);
  if (!node || !JSON_NODE_HOLDS_VALUE(node))
    return false;
  const GType t = json_node_get_value_type(node);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return false;
  *out = json_node_get_double(node);
  return true;
}

bool BrowserDriver::member_bool(const std::string &reply, const char *member, bool *out) {
  Parsed parsed(reply);
  JsonNode *node = parsed.member(member);
  if (!node || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
    return false;
  *out = json_node_get_boolean(node);
  return true;
}

}  // namespace testsupport
