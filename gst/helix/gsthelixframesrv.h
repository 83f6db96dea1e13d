/* gst-vmdisplay: helixframesrv, the host end of HXFR: encodes frames for Helix-style guests
 * (pixel uploads, or the host's own copy of a scanout fed to its sink pads).
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_HELIX_FRAME_SRV (gst_helix_frame_srv_get_type())
G_DECLARE_FINAL_TYPE(GstHelixFrameSrv, gst_helix_frame_srv, GST, HELIX_FRAME_SRV, GstBin)

GST_ELEMENT_REGISTER_DECLARE(helixframesrv);

G_END_DECLS
