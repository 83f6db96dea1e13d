/* gst-vmdisplay: GL channel order table (see gl-channel-order.h).
 * tests/check/gl/dmabuf-import.cpp checks every row by reading an imported
 * buffer back; tests/check/unit/gl-channel-order.cpp checks the table alone. */
#include "gl-channel-order.h"

namespace vmd {
namespace {

constexpr uint32_t fourcc(char a, char b, char c, char d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
         uint32_t(uint8_t(d)) << 24;
}

/* dma-buf fourcc -> the fourcc EGL imports it as (padding read as alpha). */
struct Import {
  uint32_t drm, egl;
};
constexpr Import kImports[] = {
    {fourcc('X', 'R', '2', '4'), fourcc('A', 'R', '2', '4')},
    {fourcc('A', 'R', '2', '4'), fourcc('A', 'R', '2', '4')},
    {fourcc('X', 'B', '2', '4'), fourcc('A', 'B', '2', '4')},
    {fourcc('A', 'B', '2', '4'), fourcc('A', 'B', '2', '4')},
};

/* Host format -> the sampled channel each byte holds, byte 0 first
 * (padding x is the sampled alpha). */
struct HostOrder {
  GstVideoFormat format;
  const char *swizzle;
};
constexpr HostOrder kHostOrders[] = {
    {GST_VIDEO_FORMAT_BGRx, "bgra"}, {GST_VIDEO_FORMAT_BGRA, "bgra"},
    {GST_VIDEO_FORMAT_RGBx, "rgba"}, {GST_VIDEO_FORMAT_RGBA, "rgba"},
    {GST_VIDEO_FORMAT_xRGB, "argb"}, {GST_VIDEO_FORMAT_ARGB, "argb"},
    {GST_VIDEO_FORMAT_xBGR, "abgr"}, {GST_VIDEO_FORMAT_ABGR, "abgr"},
};

}  // namespace

bool gl_channel_order(uint32_t drm_fourcc, GstVideoFormat host, GlChannelOrder *out) {
  const Import *import = nullptr;
  for (const Import &i : kImports) {
    if (i.drm == drm_fourcc)
      import = &i;
  }
  const HostOrder *order = nullptr;
  for (const HostOrder &h : kHostOrders) {
    if (h.format == host)
      order = &h;
  }
  if (!import || !order)
    return false;
  out->import_fourcc = import->egl;
  for (int i = 0; i < 5; i++)
    out->swizzle[i] = order->swizzle[i];
  return true;
}

const char *fourcc_name(uint32_t fourcc, char buf[5]) {
  for (int i = 0; i < 4; i++) {
    const char c = char((fourcc >> (8 * i)) & 0xff);
    buf[i] = c >= 0x20 && c < 0x7f ? c : '?';
  }
  buf[4] = '\0';
  return buf;
}

}  // namespace vmd
