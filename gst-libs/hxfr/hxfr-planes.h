/* gst-vmdisplay: where each plane of an HXFR pixel upload lies (docs/protocol.md, "Pixel
 * data"), the one definition both ends and the message checks use.
 *
 * Planes follow each other without gaps. The stride given is plane 0's; NV12's interleaved
 * chroma plane has the same stride, YU12's U and V planes ceil(stride / 2); chroma planes have
 * ceil(height / 2) rows. No GStreamer here (gst/helix/hxfr-formats.h maps to GstVideoFormat).
 */
#pragma once

#include <cstdint>
#include <optional>

namespace vmd::hxfr {

constexpr int kMaxPlanes = 3;

struct Plane {
  uint64_t offset = 0;    /* from the start of the pixel data */
  uint32_t stride = 0;    /* bytes from one row to the next */
  uint32_t rows = 0;
  uint32_t row_bytes = 0; /* bytes of pixels in a row of a width-pixel picture */
};

struct PlaneLayout {
  int n_planes = 0;
  Plane plane[kMaxPlanes];
  uint64_t total = 0; /* bytes of all planes */
};

/* nullopt for a format whose layout we do not know. The stride is not checked here
 * (min_stride() in hxfr-protocol.h is the smallest usable one). */
std::optional<PlaneLayout> plane_layout(uint32_t format, uint32_t width, uint32_t height,
                                        uint32_t stride);

}  // namespace vmd::hxfr
