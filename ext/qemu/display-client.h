/* gst-vmdisplay: the D-Bus side of qemudbussrc.
 *
 * One thread with its own GMainContext connects to QEMU (on a bus, or peer
 * to peer through QMP), picks the VM and console, registers a
 * org.qemu.Display1.Listener on a private socket and feeds every display
 * message into a FrameStore. When QEMU goes away it either ends the stream
 * or, with reconnect, waits for QEMU to come back. The streaming thread never
 * touches D-Bus.
 *
 * Display calls are applied by a GDBus filter on GDBus's own worker thread,
 * in arrival order, as soon as the message is parsed: no hop through our
 * thread's main loop for each update. Everything else (handshakes, property
 * reads, connection state) runs on our thread.
 */
#pragma once

#include "display-log.h"
#include "frame-store.h"
#include "qemu-bus.h"

#include <gio/gio.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace vmd {

struct DisplayClientConfig {
  std::string address;   /* D-Bus address, "system", or "" for the session bus */
  std::string vm;        /* org.qemu.Display1.VM Name to pick, "" for the primary owner */
  uint32_t console = 0;  /* /org/qemu/Display1/Console_N */
  std::string qmp;       /* QMP socket path: peer-to-peer mode */
  bool reconnect = false;
  int timeout_ms = 5000; /* bound on every D-Bus call and handshake */
  int retry_ms = 250;    /* pause between reconnection attempts */
};

class DisplayClient {
 public:
  DisplayClient(DisplayClientConfig config, std::shared_ptr<FrameStore> store, DisplayLogger log);
  ~DisplayClient();
  DisplayClient(const DisplayClient &) = delete;
  DisplayClient &operator=(const DisplayClient &) = delete;

  void start();
  /* Cancels whatever is under way, closes the connections, joins. */
  void stop();

  /* Opaque D-Bus state; public only so the C callbacks can reach it. */
  struct Session;

 private:
  void thread_main();
  bool connect_once(std::string *error, bool *fatal);
  QemuBusResult open_qemu(Session &session, const QemuBusWait &wait, std::string *where);
  QemuBusResult export_listener(Session &session);
  void serve();
  void drain_fast_logs();
  void pause(int ms);

  DisplayClientConfig config_;
  std::shared_ptr<FrameStore> store_;
  DisplayLogger log_;
  std::atomic<bool> stopping_{false};
  GMainContext *context_ = nullptr;
  GCancellable *cancellable_ = nullptr;
  std::unique_ptr<Session> session_;
  std::thread thread_;
};

}  // namespace vmd
