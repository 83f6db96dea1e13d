/* gst-vmdisplay: where each plane of an HXFR pixel upload lies. */
#include "hxfr-planes.h"

#include "hxfr-protocol.h"

namespace vmd::hxfr {

namespace {

void add_plane(PlaneLayout *l, uint32_t stride, uint32_t rows, uint32_t row_bytes) {
  Plane &p = l->plane[l->n_planes++];
  p.offset = l->total;
  p.stride = stride;
  p.rows = rows;
  p.row_bytes = row_bytes;
  l->total += uint64_t(stride) * rows;
}

}  // namespace

std::optional<PlaneLayout> plane_layout(uint32_t format, uint32_t width, uint32_t height,
                                        uint32_t stride) {
  PlaneLayout l;
  const uint32_t ch = height / 2 + (height & 1); /* chroma rows: ceil(height / 2) */
  const uint32_t cw = width / 2 + (width & 1);   /* chroma columns: ceil(width / 2) */
  switch (format) {
    case format::kAR24:
    case format::kAB24:
    case format::kXR24:
    case format::kXB24:
      add_plane(&l, stride, height, uint32_t(uint64_t(width) * 4 > UINT32_MAX ? UINT32_MAX
                                                                              : width * 4));
      return l;
    case format::kNV12:
      add_plane(&l, stride, height, width);
      add_plane(&l, stride, ch, 2 * cw); /* U and V interleaved */
      return l;
    case format::kYU12: {
      const uint32_t cs = stride / 2 + (stride & 1); /* ceil(stride / 2) */
      add_plane(&l, stride, height, width);
      add_plane(&l, cs, ch, cw);
      add_plane(&l, cs, ch, cw);
      return l;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace vmd::hxfr
