/* gst-vmdisplay: vsockenc, an H.264 "encoder" that has the host encode: it sends each raw
 * frame (its pixels, or its virtio-gpu resource ID) over HXFR and outputs the access unit the
 * host answers. docs/vsockenc.md describes it.
 */
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideoencoder.h>

G_BEGIN_DECLS

#define GST_TYPE_VSOCK_ENC (gst_vsock_enc_get_type())
G_DECLARE_FINAL_TYPE(GstVsockEnc, gst_vsock_enc, GST, VSOCK_ENC, GstVideoEncoder)

/* How frames reach the host. */
typedef enum {
  GST_VSOCK_ENC_MODE_AUTO = 0,        /* resource IDs for virtio-gpu DMA-BUFs, else pixels */
  GST_VSOCK_ENC_MODE_RESOURCE_ID = 1, /* resource IDs only; anything else is an error */
  GST_VSOCK_ENC_MODE_PIXELS = 2,      /* always upload the pixels */
} GstVsockEncMode;

#define GST_TYPE_VSOCK_ENC_MODE (gst_vsock_enc_mode_get_type())
GType gst_vsock_enc_mode_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(vsockenc);

G_END_DECLS
