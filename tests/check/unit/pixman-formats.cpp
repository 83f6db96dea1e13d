/* Unit: every pixman code in the table is re-derived from its bits and
 * compared with GStreamer's description of the mapped format. */
#include "pixman-formats.h"

#include <gst/check/gstcheck.h>

namespace {

/* pixman: bpp << 24 | type << 16 | a << 12 | r << 8 | g << 4 | b */
struct Layout {
  unsigned bpp, a, r, g, b;
  int type;
};

Layout decode(uint32_t code) {
  return Layout{code >> 24, (code >> 12) & 0xf, (code >> 8) & 0xf, (code >> 4) & 0xf, code & 0xf,
                int((code >> 16) & 0xff)};
}

/* Unpacks one pixel with GStreamer into 16-bit A, R, G, B. */
void gst_unpack(const GstVideoFormatInfo *info, const uint8_t *pixel, uint16_t argb[4]) {
  const gpointer data[GST_VIDEO_MAX_PLANES] = {const_cast<uint8_t *>(pixel)};
  const gint stride[GST_VIDEO_MAX_PLANES] = {16};
  if (info->unpack_format == GST_VIDEO_FORMAT_ARGB64) {
    uint16_t out[4];
    info->unpack_func(info, GST_VIDEO_PACK_FLAG_NONE, out, data, stride, 0, 0, 1);
    for (int i = 0; i < 4; i++)
      argb[i] = out[i];
  } else {
    uint8_t out[4];
    info->unpack_func(info, GST_VIDEO_PACK_FLAG_NONE, out, data, stride, 0, 0, 1);
    for (int i = 0; i < 4; i++)
      argb[i] = uint16_t(out[i] << 8 | out[i]);
  }
}

}  // namespace

GST_START_TEST(test_table_matches_gstreamer) {
  size_t n;
  const vmd::PixmanFormat *table = vmd::pixman_format_table(&n);
  fail_unless(n >= 16);
  for (size_t i = 0; i < n; i++) {
    const vmd::PixmanFormat &f = table[i];
    Layout l = decode(f.code);
    const GstVideoFormatInfo *info = gst_video_format_get_info(f.gst);
    GST_INFO("%s -> %s", f.name, gst_video_format_to_string(f.gst));
    fail_unless_equals_int(l.bpp, f.bytes_per_pixel * 8);
    fail_unless_equals_int(GST_VIDEO_FORMAT_INFO_PSTRIDE(info, 0), f.bytes_per_pixel);
    fail_unless(GST_VIDEO_FORMAT_INFO_IS_RGB(info));
    fail_unless_equals_int(GST_VIDEO_FORMAT_INFO_N_PLANES(info), 1);

    unsigned pos_r, pos_g, pos_b;
    switch (l.type) {
      case 2: /* PIXMAN_TYPE_ARGB: b lowest */
        pos_b = 0, pos_g = l.b, pos_r = l.b + l.g;
        break;
      case 3: /* PIXMAN_TYPE_ABGR: r lowest */
        pos_r = 0, pos_g = l.r, pos_b = l.r + l.g;
        break;
      case 8: /* PIXMAN_TYPE_BGRA: b highest, a lowest */
        pos_b = l.bpp - l.b, pos_g = pos_b - l.g, pos_r = pos_g - l.r;
        break;
      case 9: /* PIXMAN_TYPE_RGBA: r highest, a lowest */
        pos_r = l.bpp - l.r, pos_g = pos_r - l.g, pos_b = pos_g - l.b;
        break;
      default:
        fail("unexpected pixman type %d in %s", l.type, f.name);
        return;
    }
    /* Light one channel at a time at full intensity in the little-endian
     * word pixman describes, and let GStreamer unpack it. */
    const unsigned pos[3] = {pos_r, pos_g, pos_b};
    const unsigned bits[3] = {l.r, l.g, l.b};
    for (int c = 0; c < 3; c++) {
      uint64_t word = ((uint64_t(1) << bits[c]) - 1) << pos[c];
      uint8_t pixel[16] = {};
      for (unsigned byte = 0; byte < f.bytes_per_pixel; byte++)
        pixel[byte] = uint8_t(word >> (8 * byte));
      uint16_t argb[4];
      gst_unpack(info, pixel, argb);
      for (int k = 0; k < 3; k++) {
        if (k == c)
          fail_unless(argb[1 + k] >= 0xf000, "%s: channel %d lit, GStreamer %s reads %04x",
                      f.name, c, info->name, argb[1 + k]);
        else
          fail_unless(argb[1 + k] == 0, "%s: channel %d lit, GStreamer %s reads %04x in %d",
                      f.name, c, info->name, argb[1 + k], k);
      }
    }
    /* Alpha: a GStreamer alpha channel only where pixman has real alpha. */
    if (GST_VIDEO_FORMAT_INFO_HAS_ALPHA(info))
      fail_unless(l.a > 0, "%s has no alpha but maps to %s", f.name, info->name);
    else
      fail_unless(l.a == 0 || f.alpha_ignored, "%s alpha would be lost silently", f.name);
    fail_unless(vmd::pixman_format_lookup(f.code) == &f);
  }
}
GST_END_TEST;

GST_START_TEST(test_qemu_default_formats) {
  /* What qemu_default_pixman_format() gives for VGA at 15/16/24/32 bpp,
   * native and byte-swapped, plus virtio-gpu's a8r8g8b8. */
  struct {
    uint32_t code;
    GstVideoFormat gst;
  } expected[] = {
      {0x20020888, GST_VIDEO_FORMAT_BGRx}, {0x20028888, GST_VIDEO_FORMAT_BGRA},
      {0x18020888, GST_VIDEO_FORMAT_BGR},  {0x10020565, GST_VIDEO_FORMAT_RGB16},
      {0x10020555, GST_VIDEO_FORMAT_RGB15}, {0x18030888, GST_VIDEO_FORMAT_RGB},
      {0x20080888, GST_VIDEO_FORMAT_xRGB},
  };
  for (auto &e : expected) {
    const vmd::PixmanFormat *f = vmd::pixman_format_lookup(e.code);
    fail_unless(f != nullptr, "0x%08x missing", e.code);
    fail_unless_equals_string(gst_video_format_to_string(f->gst), gst_video_format_to_string(e.gst));
  }
  fail_unless(vmd::pixman_format_lookup(0) == nullptr);
  fail_unless(vmd::pixman_format_lookup(0x08000000) == nullptr);
  fail_unless(vmd::pixman_format_lookup(0xdeadbeef) == nullptr);
}
GST_END_TEST;

static Suite *pixman_formats_suite() {
  Suite *s = suite_create("pixman-formats");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_table_matches_gstreamer);
  tcase_add_test(tc, test_qemu_default_formats);
  return s;
}

GST_CHECK_MAIN(pixman_formats);
