/* gst-vmdisplay: the "helix" plugin: remote H.264 encoding over Helix's
 * HXFR protocol: vsockenc on the guest side, helixframesrv on the host. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsthelixframesrv.h"
#include "gstvsockenc.h"

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(vsockenc, plugin);
  ok &= GST_ELEMENT_REGISTER(helixframesrv, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, helix,
                  "Remote H.264 encoding over Helix's HXFR frame protocol", plugin_init, VERSION,
                  GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
