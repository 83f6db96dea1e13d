/* gst-vmdisplay: the "qemu" plugin (elements talking to QEMU). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudbussrc.h"
#include "gstqemudeviceprovider.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(qemudbussrc, plugin);
  ok &= GST_DEVICE_PROVIDER_REGISTER(qemudbusdeviceprovider, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, qemu,
                  "Capture virtual machines through QEMU's D-Bus display", plugin_init, VERSION,
                  GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
