/* gst-vmdisplay: following QEMU displays appearing and disappearing on the
 * message buses, for the device provider's start().
 *
 * One thread with its own GMainContext opens each bus (QemuBusDisplays),
 * subscribes to the bus's NameOwnerChanged, lists what is there, and then
 * follows it:
 *  - org.qemu changed hands: re-list, after settle_ms (coalesced);
 *  - a unique name left the bus: the displays of that QEMU are removed at
 *    once. This is the only signal when a *queued* (not primary) owner of
 *    org.qemu quits: its leaving does not change org.qemu's owner;
 *  - a unique name connected: re-list a few times over about ten seconds,
 *    since a QEMU that queues behind another owner produces no
 *    NameOwnerChanged for org.qemu at all.
 * Every re-list is one ListQueuedOwners call per bus plus reads of owners
 * not known yet; nothing else on the bus is ever called.
 *
 * Changes are reported to the callbacks on that thread. Plain C++ (no
 * GObject types of ours); no exception leaves a GLib callback.
 */
#pragma once

#include "display-log.h"
#include "qemu-bus-displays.h"

#include <functional>
#include <memory>

namespace vmd {

struct QemuWatchConfig {
  QemuDisplaysConfig displays;
  int settle_ms = 150;       /* after org.qemu changed hands, before re-listing */
  int start_wait_ms = 3000;  /* start() waits this long at most for the first listing */
};

struct QemuWatchEvents {
  std::function<void(const QemuDisplay &)> added, removed;
  DisplayLogger log;
};

class QemuVmWatch {
 public:
  QemuVmWatch(QemuWatchConfig config, QemuWatchEvents events);
  ~QemuVmWatch(); /* stop() */
  QemuVmWatch(const QemuVmWatch &) = delete;
  QemuVmWatch &operator=(const QemuVmWatch &) = delete;

  /* Starts the thread and returns once the displays there now were added
   * (or after start_wait_ms; later ones arrive as added). */
  void start();
  /* Cancels any call under way, joins the thread. No removed callbacks. */
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmd
