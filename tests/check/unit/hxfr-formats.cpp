/* Unit: the HXFR pixel-format table (gst/helix/hxfr-formats.h) and the plane layout both helix
 * elements take from it (gst-libs/hxfr/hxfr-planes.h), for an odd size (5x3), against
 * docs/protocol.md "Pixel data" worked out by hand. */
#include "hxfr-formats.h"
#include "hxfr-planes.h"
#include "hxfr-protocol.h"

#include <gst/check/gstcheck.h>

namespace hx = vmd::hxfr;
using vmd::helix::sender_fourcc;

namespace {

struct ExpectedPlane {
  uint64_t offset;
  uint32_t stride, rows, row_bytes;
};

void check_planes(uint32_t fourcc, uint32_t stride, std::initializer_list<ExpectedPlane> want,
                  uint64_t total) {
  std::optional<hx::PlaneLayout> l = hx::plane_layout(fourcc, 5, 3, stride);
  fail_unless(l.has_value(), "no layout for 0x%08x", fourcc);
  ck_assert_int_eq(l->n_planes, int(want.size()));
  int i = 0;
  for (const ExpectedPlane &p : want) {
    ck_assert_uint_eq(l->plane[i].offset, p.offset);
    ck_assert_uint_eq(l->plane[i].stride, p.stride);
    ck_assert_uint_eq(l->plane[i].rows, p.rows);
    ck_assert_uint_eq(l->plane[i].row_bytes, p.row_bytes);
    i++;
  }
  ck_assert_uint_eq(l->total, total);
  /* The message checks use the same layout. */
  ck_assert_uint_eq(hx::pixel_bytes_needed(fourcc, 5, 3, stride).value_or(0), total);
}

}  // namespace

GST_START_TEST(test_planes_5x3) {
  for (uint32_t rgb : {hx::format::kAR24, hx::format::kAB24, hx::format::kXR24,
                       hx::format::kXB24})
    check_planes(rgb, 20, {{0, 20, 3, 20}}, 60);
  /* NV12: chroma stride = stride, ceil(3/2) = 2 rows of ceil(5/2) UV pairs. */
  check_planes(hx::format::kNV12, 6, {{0, 6, 3, 5}, {18, 6, 2, 6}}, 30);
  /* YU12: chroma stride = ceil(stride / 2). */
  check_planes(hx::format::kYU12, 5, {{0, 5, 3, 5}, {15, 3, 2, 3}, {21, 3, 2, 3}}, 27);
  check_planes(hx::format::kYU12, 8, {{0, 8, 3, 5}, {24, 4, 2, 3}, {32, 4, 2, 3}}, 40);
  fail_unless(!hx::plane_layout(0x30303030, 5, 3, 20).has_value());
}
GST_END_TEST;

GST_START_TEST(test_table_rows) {
  size_t n = 0;
  const vmd::helix::HxfrFormat *t = vmd::helix::hxfr_formats(&n);
  ck_assert_uint_eq(n, 6);
  struct {
    uint32_t fourcc;
    GstVideoFormat gst;
    bool extra;
  } want[] = {{hx::format::kAR24, GST_VIDEO_FORMAT_BGRA, false},
              {hx::format::kAB24, GST_VIDEO_FORMAT_RGBA, false},
              {hx::format::kXR24, GST_VIDEO_FORMAT_BGRx, true},
              {hx::format::kXB24, GST_VIDEO_FORMAT_RGBx, true},
              {hx::format::kNV12, GST_VIDEO_FORMAT_NV12, false},
              {hx::format::kYU12, GST_VIDEO_FORMAT_I420, true}};
  for (auto &w : want) {
    const vmd::helix::HxfrFormat *f = vmd::helix::hxfr_format(w.fourcc);
    fail_unless(f != nullptr);
    ck_assert_int_eq(f->gst, w.gst);
    ck_assert_int_eq(f->needs_extra, w.extra);
    /* The receiver's GstVideoMeta is GStreamer's own layout of that format for a tight
     * stride: same plane count. */
    std::optional<vmd::helix::UploadMeta> m = vmd::helix::upload_meta(
        w.fourcc, 5, 3, hx::min_stride(w.fourcc, 5).value_or(0));
    fail_unless(m.has_value());
    ck_assert_int_eq(m->format, w.gst);
    ck_assert_uint_eq(m->n_planes, GST_VIDEO_FORMAT_INFO_N_PLANES(gst_video_format_get_info(w.gst)));
  }
  (void)t;
  fail_unless(vmd::helix::hxfr_format(0x30303030) == nullptr);
}
GST_END_TEST;

GST_START_TEST(test_sender_choice) {
  struct {
    GstVideoFormat gst;
    uint32_t with_extra, without;
  } want[] = {
      {GST_VIDEO_FORMAT_BGRx, hx::format::kXR24, hx::format::kAR24},
      {GST_VIDEO_FORMAT_RGBx, hx::format::kXB24, hx::format::kAB24},
      {GST_VIDEO_FORMAT_BGRA, hx::format::kAR24, hx::format::kAR24},
      {GST_VIDEO_FORMAT_RGBA, hx::format::kAB24, hx::format::kAB24},
      {GST_VIDEO_FORMAT_NV12, hx::format::kNV12, hx::format::kNV12},
      {GST_VIDEO_FORMAT_I420, hx::format::kYU12, hx::format::kNV12},
      {GST_VIDEO_FORMAT_ARGB, 0, 0},
  };
  for (auto &w : want) {
    ck_assert_uint_eq(sender_fourcc(w.gst, true), w.with_extra);
    ck_assert_uint_eq(sender_fourcc(w.gst, false), w.without);
  }
}
GST_END_TEST;

static Suite *hxfr_formats_suite() {
  Suite *s = suite_create("hxfr-formats");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_planes_5x3);
  tcase_add_test(tc, test_table_rows);
  tcase_add_test(tc, test_sender_choice);
  return s;
}

GST_CHECK_MAIN(hxfr_formats)
