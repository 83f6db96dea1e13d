/* Unit: the DRM fourcc table. Each pixel is built from drm_fourcc.h's own
 * description (written out below, channels from the most significant bit of
 * a little-endian word) and read back through the GStreamer format the
 * mapped pixman code stands for: XR24 must come back as the same colour as
 * XB24 with R and B the other way round, never as the same bytes. */
#include "drm-formats.h"
#include "pixman-formats.h"

#include <cstring>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

namespace {

struct DrmDescription {
  const char *fourcc;   /* the four characters */
  const char *channels; /* drm_fourcc.h's "[31:0] x:R:G:B" part, MSB first */
  unsigned bits[4];     /* its "8:8:8:8" part */
};

/* Copied from the comments in include/uapi/drm/drm_fourcc.h. */
const DrmDescription kDescriptions[] = {
    {"XR24", "xRGB", {8, 8, 8, 8}},    {"AR24", "ARGB", {8, 8, 8, 8}},
    {"XB24", "xBGR", {8, 8, 8, 8}},    {"AB24", "ABGR", {8, 8, 8, 8}},
    {"RX24", "RGBx", {8, 8, 8, 8}},    {"RA24", "RGBA", {8, 8, 8, 8}},
    {"BX24", "BGRx", {8, 8, 8, 8}},    {"BA24", "BGRA", {8, 8, 8, 8}},
    {"XR30", "xRGB", {2, 10, 10, 10}}, {"AR30", "ARGB", {2, 10, 10, 10}},
    {"XB30", "xBGR", {2, 10, 10, 10}}, {"AB30", "ABGR", {2, 10, 10, 10}},
    {"RG24", "RGB", {8, 8, 8}},        {"BG24", "BGR", {8, 8, 8}},
    {"RG16", "RGB", {5, 6, 5}},        {"BG16", "BGR", {5, 6, 5}},
    {"XR15", "xRGB", {1, 5, 5, 5}},    {"AR15", "ARGB", {1, 5, 5, 5}},
    {"XB15", "xBGR", {1, 5, 5, 5}},    {"AB15", "ABGR", {1, 5, 5, 5}},
};

uint32_t fourcc_of(const char *s) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

/* The pixel bytes with only channel c ('R', 'G' or 'B') at full intensity. */
std::vector<uint8_t> lit_pixel(const DrmDescription &d, char c, unsigned *bpp_bits) {
  const size_t n = strlen(d.channels);
  unsigned total = 0;
  for (size_t i = 0; i < n; i++)
    total += d.bits[i];
  uint64_t word = 0;
  unsigned shift = total;
  for (size_t i = 0; i < n; i++) {
    shift -= d.bits[i];
    if (d.channels[i] == c)
      word |= ((uint64_t(1) << d.bits[i]) - 1) << shift;
  }
  *bpp_bits = total;
  std::vector<uint8_t> px(16, 0);
  for (unsigned b = 0; b < total / 8; b++)
    px[b] = uint8_t(word >> (8 * b));
  return px;
}

/* GStreamer's unpack of one pixel into 16-bit A, R, G, B. */
void gst_unpack(GstVideoFormat format, const uint8_t *pixel, uint16_t argb[4]) {
  const GstVideoFormatInfo *info = gst_video_format_get_info(format);
  const gpointer data[GST_VIDEO_MAX_PLANES] = {const_cast<uint8_t *>(pixel)};
  const gint stride[GST_VIDEO_MAX_PLANES] = {16};
  if (info->unpack_format == GST_VIDEO_FORMAT_ARGB64) {
    info->unpack_func(info, GST_VIDEO_PACK_FLAG_NONE, argb, data, stride, 0, 0, 1);
    return;
  }
  uint8_t out[4];
  info->unpack_func(info, GST_VIDEO_PACK_FLAG_NONE, out, data, stride, 0, 0, 1);
  for (int i = 0; i < 4; i++)
    argb[i] = uint16_t(out[i] << 8 | out[i]);
}

/* (Not fail_unless_equals_string on a temporary's c_str(): the macro keeps the
 * pointer past the temporary's life.) */
void expect_name(const std::string &got, const char *want) {
  fail_unless(got == want, "\"%s\", want \"%s\"", got.c_str(), want);
}

}  // namespace

GST_START_TEST(test_every_format_reads_back) {
  size_t n;
  const vmd::DrmFormat *table = vmd::drm_format_table(&n);
  fail_unless_equals_int(n, G_N_ELEMENTS(kDescriptions));
  int checked = 0;
  for (const DrmDescription &d : kDescriptions) {
    const vmd::DrmFormat *f = vmd::drm_format_lookup(fourcc_of(d.fourcc));
    fail_unless(f != nullptr, "%s missing", d.fourcc);
    fail_unless(f >= table && f < table + n);
    fail_unless_equals_string(f->name, d.fourcc);
    fail_unless_equals_int(f->num_planes, 1);
    const vmd::PixmanFormat *p = vmd::pixman_format_lookup(f->pixman_code);
    if (!p) {
      /* Only the 10-bit formats without alpha: GStreamer 1.22 has nothing for them. */
      fail_unless(!strcmp(d.fourcc, "XR30") || !strcmp(d.fourcc, "XB30"),
                  "%s maps to pixman 0x%08x, which pixman-formats does not know", d.fourcc,
                  f->pixman_code);
      continue;
    }
    const char colours[3] = {'R', 'G', 'B'};
    for (int c = 0; c < 3; c++) {
      unsigned bits;
      std::vector<uint8_t> px = lit_pixel(d, colours[c], &bits);
      fail_unless_equals_int(bits, f->bytes_per_pixel * 8);
      uint16_t argb[4];
      gst_unpack(p->gst, px.data(), argb);
      for (int k = 0; k < 3; k++) {
        bool lit = argb[1 + k] >= 0xf000, dark = argb[1 + k] == 0;
        fail_unless(k == c ? lit : dark, "%s (-> %s -> %s): %c lit, GStreamer reads %c = %04x",
                    d.fourcc, p->name, gst_video_format_to_string(p->gst), colours[c],
                    colours[k], argb[1 + k]);
      }
    }
    checked++;
  }
  fail_unless_equals_int(checked, int(n) - 2);
}
GST_END_TEST;

/* The mix-up an earlier prototype made, spelled out. */
GST_START_TEST(test_xr24_is_not_xb24) {
  struct {
    uint32_t fourcc;
    GstVideoFormat gst;
  } expected[] = {
      {0x34325258, GST_VIDEO_FORMAT_BGRx}, /* XR24 */
      {0x34325241, GST_VIDEO_FORMAT_BGRA}, /* AR24 */
      {0x34324258, GST_VIDEO_FORMAT_RGBx}, /* XB24 */
      {0x34324241, GST_VIDEO_FORMAT_RGBA}, /* AB24 */
      {fourcc_of("RX24"), GST_VIDEO_FORMAT_xBGR},
      {fourcc_of("BX24"), GST_VIDEO_FORMAT_xRGB},
      {fourcc_of("RA24"), GST_VIDEO_FORMAT_ABGR},
      {fourcc_of("BA24"), GST_VIDEO_FORMAT_ARGB},
      {fourcc_of("RG16"), GST_VIDEO_FORMAT_RGB16},
      {fourcc_of("BG16"), GST_VIDEO_FORMAT_BGR16},
      {fourcc_of("RG24"), GST_VIDEO_FORMAT_BGR},
      {fourcc_of("BG24"), GST_VIDEO_FORMAT_RGB},
      {fourcc_of("AR30"), GST_VIDEO_FORMAT_BGR10A2_LE},
      {fourcc_of("AB30"), GST_VIDEO_FORMAT_RGB10A2_LE},
  };
  for (auto &e : expected) {
    const vmd::DrmFormat *f = vmd::drm_format_lookup(e.fourcc);
    fail_unless(f != nullptr, "0x%08x missing", e.fourcc);
    const vmd::PixmanFormat *p = vmd::pixman_format_lookup(f->pixman_code);
    fail_unless(p != nullptr, "%s", f->name);
    fail_unless_equals_string(gst_video_format_to_string(p->gst),
                              gst_video_format_to_string(e.gst));
  }
  fail_unless(vmd::drm_format_lookup(0) == nullptr);
  fail_unless(vmd::drm_format_lookup(fourcc_of("NV12")) == nullptr);
  fail_unless(vmd::drm_format_lookup(fourcc_of("YUYV")) == nullptr);
}
GST_END_TEST;

GST_START_TEST(test_names) {
  expect_name(vmd::drm_fourcc_name(0x34325258), "XR24");
  expect_name(vmd::drm_fourcc_name(fourcc_of("NV12")), "NV12");
  expect_name(vmd::drm_fourcc_name(0), "0x00000000");
  expect_name(vmd::drm_fourcc_name(0x3432521f), "0x3432521f");
  expect_name(vmd::drm_fourcc_name(0x80325258), "0x80325258");
  expect_name(vmd::drm_modifier_name(0), "LINEAR");
  expect_name(vmd::drm_modifier_name(0x00ffffffffffffffULL), "INVALID");
  expect_name(vmd::drm_modifier_name(0x0100000000000001ULL), "I915_X_TILED");
  expect_name(vmd::drm_modifier_name(0x0100000000000002ULL), "I915_Y_TILED");
  expect_name(vmd::drm_modifier_name(0x0200000000000001ULL), "0x0200000000000001");
  fail_unless_equals_string(vmd::drm_modifier_vendor(0x0200000000000001ULL), "AMD");
  fail_unless_equals_string(vmd::drm_modifier_vendor(0x0300000000000010ULL), "NVIDIA");
  fail_unless(vmd::drm_modifier_vendor(0xf000000000000000ULL) == nullptr);
}
GST_END_TEST;

static Suite *drm_formats_suite() {
  Suite *s = suite_create("drm-formats");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_every_format_reads_back);
  tcase_add_test(tc, test_xr24_is_not_xb24);
  tcase_add_test(tc, test_names);
  return s;
}

GST_CHECK_MAIN(drm_formats);
