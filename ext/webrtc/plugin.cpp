/* gst-vmdisplay: the "vmwebrtc" plugin (serving video to browsers). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvmwebrtcsink.h"

static gboolean plugin_init(GstPlugin *plugin) {
  return GST_ELEMENT_REGISTER(vmwebrtcsink, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, vmwebrtc,
                  "Serve a virtual machine's desktop to browsers over WebRTC (WHEP)", plugin_init,
                  VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
