/* gst-vmdisplay: qemudbussrc, a live source capturing a QEMU VM's display
 * through QEMU's D-Bus display interface.
 */
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QEMU_DBUS_SRC (gst_qemu_dbus_src_get_type())
G_DECLARE_FINAL_TYPE(GstQemuDBusSrc, gst_qemu_dbus_src, GST, QEMU_DBUS_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(qemudbussrc);

G_END_DECLS
