/* gst-vmdisplay: the D-Bus side of qemudbussrc.
 *
 * One thread with its own GMainContext connects to QEMU (on a bus, or peer
 * to peer through QMP), picks the VM and console, registers a
 * org.qemu.Display1.Listener on a private socket and feeds every display
 * message into a FrameStore. When QEMU goes away it either ends the stream
 * or, with reconnect, waits for QEMU to come back. The streaming thread never
 * touches D-Bus.
 *
 * The Listener object and its fast path live in qemu-listener.*, finding
 * the VM and console and the handshakes in qemu-bus.*, the calls that carry
 * input and resize requests to the console in console-control.*; this class
 * keeps the thread, its GMainContext, the connection state, reconnection,
 * and the queues that hand input from any thread to its own.
 */
#pragma once

#include "display-log.h"
#include "dmabuf-layout.h"
#include "qemu-input.h"
#include "ui-info-throttle.h"

#include <cstdint>
#include <memory>
#include <string>

namespace vmd {

class FrameStore;

struct DisplayClientConfig {
  std::string address;   /* D-Bus address, "system", or "" for the session bus */
  std::string vm;        /* org.qemu.Display1.VM Name to pick, "" for the primary owner */
  uint32_t console = 0;  /* /org/qemu/Display1/Console_N */
  std::string qmp;       /* QMP socket path: peer-to-peer mode */
  bool reconnect = false;
  int timeout_ms = 5000; /* bound on every D-Bus call and handshake */
  int retry_ms = 250;    /* pause between reconnection attempts */
  DmabufOptions dmabuf;  /* how DMA-BUF scanouts (gl=on) are read */
};

class DisplayClient {
 public:
  DisplayClient(DisplayClientConfig config, std::shared_ptr<FrameStore> store, DisplayLogger log);
  ~DisplayClient();
  DisplayClient(const DisplayClient &) = delete;
  DisplayClient &operator=(const DisplayClient &) = delete;

  void start();
  /* Releases every key and button still pressed in the guest (bounded
   * wait for the write), cancels whatever is under way, closes the
   * connections, joins. */
  void stop();

  /* Queues input for the console; any thread, never blocks. Events arriving
   * while there is no connection are dropped; after a reconnection, what
   * was pressed on the old connection is released on the new one. False
   * when the queue was full and the event was dropped. */
  bool send_input(const InputEvent &event);
  /* Asks QEMU for a new guest display size; the latest request wins, at
   * most one Console.SetUIInfo per UiInfoThrottle interval. */
  void request_ui_info(const UiInfo &info);
  uint64_t input_dropped() const;

 private:
  struct Impl; /* the thread and its D-Bus state, in display-client.cpp */
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmd
