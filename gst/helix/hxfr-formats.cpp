/* gst-vmdisplay: the HXFR pixel formats both helix elements use, in one table. */
#include "hxfr-formats.h"

#include "hxfr-protocol.h"

namespace vmd::helix {

namespace hx = vmd::hxfr;

namespace {

constexpr HxfrFormat kFormats[] = {
    {hx::format::kAR24, GST_VIDEO_FORMAT_BGRA, false},
    {hx::format::kAB24, GST_VIDEO_FORMAT_RGBA, false},
    {hx::format::kXR24, GST_VIDEO_FORMAT_BGRx, true},
    {hx::format::kXB24, GST_VIDEO_FORMAT_RGBx, true},
    {hx::format::kNV12, GST_VIDEO_FORMAT_NV12, false},
    {hx::format::kYU12, GST_VIDEO_FORMAT_I420, true},
};

/* What the sender sends a GstVideoFormat as: the table's own fourcc for it, or, when that
 * needs EXTRA_FORMATS the host did not grant, the fallback (same bytes, or converted). */
struct SenderChoice {
  GstVideoFormat gst;
  uint32_t without_extra;
};
constexpr SenderChoice kSenderFallback[] = {
    {GST_VIDEO_FORMAT_BGRx, hx::format::kAR24}, /* as Helix's vsockenc: X read as A */
    {GST_VIDEO_FORMAT_RGBx, hx::format::kAB24},
    {GST_VIDEO_FORMAT_I420, hx::format::kNV12}, /* U and V interleaved by the sender */
};

}  // namespace

const HxfrFormat *hxfr_formats(size_t *n) {
  *n = G_N_ELEMENTS(kFormats);
  return kFormats;
}

const HxfrFormat *hxfr_format(uint32_t fourcc) {
  for (const HxfrFormat &f : kFormats)
    if (f.fourcc == fourcc)
      return &f;
  return nullptr;
}

uint32_t sender_fourcc(GstVideoFormat format, bool extra_formats) {
  for (const HxfrFormat &f : kFormats) {
    if (f.gst != format)
      continue;
    if (!f.needs_extra || extra_formats)
      return f.fourcc;
    for (const SenderChoice &c : kSenderFallback)
      if (c.gst == format)
        return c.without_extra;
    return 0;
  }
  return 0;
}

std::optional<UploadMeta> upload_meta(uint32_t fourcc, uint32_t width, uint32_t height,
                                      uint32_t stride) {
  const HxfrFormat *f = hxfr_format(fourcc);
  std::optional<hx::PlaneLayout> layout = hx::plane_layout(fourcc, width, height, stride);
  if (!f || !layout)
    return std::nullopt;
  UploadMeta m;
  m.format = f->gst;
  m.n_planes = guint(layout->n_planes);
  for (int i = 0; i < layout->n_planes; i++) {
    m.offset[i] = gsize(layout->plane[i].offset);
    m.stride[i] = gint(layout->plane[i].stride);
  }
  return m;
}

}  // namespace vmd::helix
