/* gst-vmdisplay: pixman format table.
 *
 * pixman codes are PIXMAN_FORMAT(bpp, type, a, r, g, b) =
 * bpp << 24 | type << 16 | a << 12 | r << 8 | g << 4 | b, with channel
 * positions given inside a little-endian pixel word. Where QEMU gets them:
 * qemu_default_pixman_format() (VGA at 15/16/24/32 bpp, native and
 * byte-swapped), virtio-gpu's resource formats and the DRM fourcc mapping.
 * x2r10g10b10 and x2b10g10r10 are left out on purpose: GStreamer 1.22 has no
 * little-endian 10-bit RGB format without alpha, and passing padding off as
 * alpha would make frames transparent downstream.
 * tests/check/elements/pixman-formats.cpp re-derives every channel position
 * from the code and checks it against GstVideoFormatInfo.
 */
#include "pixman-formats.h"

#include <iterator>

namespace vmd {
namespace {

constexpr PixmanFormat kFormats[] = {
    /* 32 bpp, 8 bits per channel */
    {0x20020888, "x8r8g8b8", GST_VIDEO_FORMAT_BGRx, 4, false},
    {0x20028888, "a8r8g8b8", GST_VIDEO_FORMAT_BGRA, 4, false},
    {0x20030888, "x8b8g8r8", GST_VIDEO_FORMAT_RGBx, 4, false},
    {0x20038888, "a8b8g8r8", GST_VIDEO_FORMAT_RGBA, 4, false},
    {0x20080888, "b8g8r8x8", GST_VIDEO_FORMAT_xRGB, 4, false},
    {0x20088888, "b8g8r8a8", GST_VIDEO_FORMAT_ARGB, 4, false},
    {0x20090888, "r8g8b8x8", GST_VIDEO_FORMAT_xBGR, 4, false},
    {0x20098888, "r8g8b8a8", GST_VIDEO_FORMAT_ABGR, 4, false},
    /* 32 bpp, 10 bits per channel */
    {0x20022aaa, "a2r10g10b10", GST_VIDEO_FORMAT_BGR10A2_LE, 4, false},
    {0x20032aaa, "a2b10g10r10", GST_VIDEO_FORMAT_RGB10A2_LE, 4, false},
    /* 24 bpp packed */
    {0x18020888, "r8g8b8", GST_VIDEO_FORMAT_BGR, 3, false},
    {0x18030888, "b8g8r8", GST_VIDEO_FORMAT_RGB, 3, false},
    /* 16 and 15 bpp */
    {0x10020565, "r5g6b5", GST_VIDEO_FORMAT_RGB16, 2, false},
    {0x10030565, "b5g6r5", GST_VIDEO_FORMAT_BGR16, 2, false},
    {0x10020555, "x1r5g5b5", GST_VIDEO_FORMAT_RGB15, 2, false},
    {0x10021555, "a1r5g5b5", GST_VIDEO_FORMAT_RGB15, 2, true},
    {0x10030555, "x1b5g5r5", GST_VIDEO_FORMAT_BGR15, 2, false},
    {0x10031555, "a1b5g5r5", GST_VIDEO_FORMAT_BGR15, 2, true},
};

}  // namespace

const PixmanFormat *pixman_format_lookup(uint32_t code) {
  for (const PixmanFormat &f : kFormats) {
    if (f.code == code)
      return &f;
  }
  return nullptr;
}

const PixmanFormat *pixman_format_table(size_t *n_entries) {
  *n_entries = std::size(kFormats);
  return kFormats;
}

}  // namespace vmd
