/* gst-vmdisplay: what qemudbussrc sends to a QEMU console: keyboard and
 * mouse calls (org.qemu.Display1.Keyboard, .Mouse) and resize requests
 * (Console.SetUIInfo), and the one property it follows for them
 * (Mouse.IsAbsolute).
 *
 * One instance per connection, used on the D-Bus thread only. Input calls
 * go out without waiting for a reply (NO_REPLY_EXPECTED), in order;
 * SetUIInfo and the read of IsAbsolute wait for their replies
 * asynchronously. Nothing here blocks: QEMU serves nothing else while it
 * reads our listener's properties after the handshake.
 */
#pragma once

#include "display-log.h"
#include "qemu-bus.h"
#include "qemu-input.h"
#include "ui-info-throttle.h"

#include <gio/gio.h>

#include <memory>
#include <string>
#include <vector>

namespace vmd {

class ConsoleControl {
 public:
  /* dest: QEMU's unique bus name, or nullptr peer to peer. `state` outlives
   * this object and gets every IsAbsolute change. */
  ConsoleControl(GDBusConnection *conn, const char *dest, uint32_t console, InputState *state,
                 DisplayLogger log, int timeout_ms);
  ~ConsoleControl();
  ConsoleControl(const ConsoleControl &) = delete;
  ConsoleControl &operator=(const ConsoleControl &) = delete;

  /* Reads Mouse.IsAbsolute into the state (when the reply comes) and
   * subscribes to its changes. A QEMU without a Mouse interface is logged,
   * not an error: the state stays relative. */
  void start();
  /* Flow control: calls go out without replies, so GDBus would queue them
   * without bound if QEMU stopped reading. Every kFlushEvery calls a flush
   * starts; while one is pending and kMaxUnflushed calls went out since the
   * last completed one, can_send() is false and input waits (and is
   * dropped beyond InputPacer's bound). */
  static constexpr unsigned kFlushEvery = 32, kMaxUnflushed = 256;
  bool can_send() const;
  void send(const std::vector<InputCall> &calls);
  void set_ui_info(const UiInfo &info);
  /* Writes out what is queued, waiting at most timeout_ms. */
  void flush(GMainContext *context, int timeout_ms);

  struct Shared; /* what outlives us in pending replies; public for the C callbacks */

 private:
  void call(const char *iface, const char *method, GVariant *params);

  GDBusConnection *conn_;
  std::string dest_, path_;
  bool p2p_;
  InputState *state_;
  int timeout_ms_;
  guint subscription_ = 0;
  std::shared_ptr<Shared> shared_;
};

}  // namespace vmd
