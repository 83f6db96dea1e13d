/* gst-vmdisplay: the "helix" plugin: remote H.264 encoding over Helix's
 * HXFR protocol (vsockenc on the guest side). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvsockenc.h"

static gboolean plugin_init(GstPlugin *plugin) {
  return GST_ELEMENT_REGISTER(vsockenc, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, helix,
                  "Remote H.264 encoding over Helix's HXFR frame protocol", plugin_init, VERSION,
                  GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
