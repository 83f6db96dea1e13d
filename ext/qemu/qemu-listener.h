/* gst-vmdisplay: the org.qemu.Display1.Listener object QEMU calls.
 *
 * Exported at /org/qemu/Display1/Listener (with Listener.Unix.Map and
 * Listener.Unix.ScanoutDMABUF2, both listed in Interfaces) on the
 * private connection that qemu_register_listener() returned. Every display
 * call is applied to the FrameStore by a GDBus filter on GDBus's own worker
 * thread, in arrival order, as soon as the message is parsed (the fast
 * path); the exported object's handler only sees what the filter lets
 * through and behaves the same. Log lines from the worker thread are queued
 * and handed to the logger by drain_logs() on the owner's thread.
 */
#pragma once

#include "display-log.h"
#include "frame-store.h"

#include <gio/gio.h>

#include <memory>
#include <string>

namespace vmd {

class DmabufScanouts;

class QemuListener {
 public:
  /* DMA-BUF scanouts are opened through `dmabuf`, which outlives
   * connections (its EGL display is opened once). */
  QemuListener(std::shared_ptr<FrameStore> store, std::shared_ptr<DmabufScanouts> dmabuf,
               DisplayLogger log);
  /* Removes the filter and the exported objects. */
  ~QemuListener();
  QemuListener(const QemuListener &) = delete;
  QemuListener &operator=(const QemuListener &) = delete;

  /* Exports the objects on conn (created with delayed message processing),
   * installs the fast path, whose log lines wake `context`, and starts
   * message processing. Call from the thread whose default context is
   * `context`: the exported object's calls are dispatched there. */
  bool export_on(GDBusConnection *conn, GMainContext *context, std::string *error);
  /* Logs the lines the fast path queued since the last call. */
  void drain_logs();

  struct FastPath; /* public only so the C callbacks can reach it */

 private:
  static void handle_method(GDBusConnection *, const gchar *, const gchar *, const gchar *iface,
                            const gchar *method, GVariant *params, GDBusMethodInvocation *inv,
                            gpointer data);

  std::shared_ptr<FrameStore> store_;
  std::shared_ptr<DmabufScanouts> dmabuf_;
  DisplayLogger log_;
  GObjectPtr<GDBusConnection> conn_;
  guint reg_listener_ = 0, reg_map_ = 0, reg_dmabuf2_ = 0, filter_ = 0;
  FastPath *fast_ = nullptr; /* owned by GDBus through the filter */
};

}  // namespace vmd
