/* gst-vmdisplay: vmwebrtcsink, a sink bin serving its video to browsers over WebRTC: a page
 * at /, a WHEP endpoint at /whep, one webrtcbin per viewer, input back over a data channel.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_VM_WEBRTC_SINK (gst_vm_webrtc_sink_get_type())
G_DECLARE_FINAL_TYPE(GstVmWebrtcSink, gst_vm_webrtc_sink, GST, VM_WEBRTC_SINK, GstBin)

#define GST_TYPE_VM_WEBRTC_SINK_CONTROL (gst_vm_webrtc_sink_control_get_type())
GType gst_vm_webrtc_sink_control_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(vmwebrtcsink);

G_END_DECLS
