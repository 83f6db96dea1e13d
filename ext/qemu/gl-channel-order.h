/* gst-vmdisplay: which DRM fourcc EGL imports a scanout as, and how the
 * shader orders the channels, so that the bytes read back from an RGBA8
 * framebuffer are the host surface's bytes.
 *
 * GL samples an imported dma-buf by meaning, not by memory order: an XR24
 * (BGRX in memory) texel comes back as .r = R, and glReadPixels(GL_RGBA,
 * GL_UNSIGNED_BYTE) writes R, G, B, A in that order. So the shader writes,
 * into output channel i, the sampled channel that byte i of the host format
 * holds (BGRx: "bgra"). Formats with a padding byte are imported as their
 * alpha twin (XR24 as AR24), so the padding byte is sampled as alpha and
 * lands unchanged where a Scanout copy would have put it, instead of 0xff.
 */
#pragma once

#include <gst/video/video.h>

#include <cstdint>

namespace vmd {

struct GlChannelOrder {
  uint32_t import_fourcc; /* what eglCreateImage is given */
  char swizzle[5];        /* GLSL swizzle of the sampled texel, e.g. "bgra" */
};

/* False for a fourcc or host format outside the table (32-bit, 8 bits per
 * channel: XR24 AR24 XB24 AB24 and the host formats BGRx BGRA RGBx RGBA xRGB
 * ARGB xBGR ABGR). */
bool gl_channel_order(uint32_t drm_fourcc, GstVideoFormat host, GlChannelOrder *out);

/* "XR24" */
const char *fourcc_name(uint32_t fourcc, char buf[5]);

}  // namespace vmd
