/* Unit: detile.{h,cpp} against the tests' reference tiler
 * (support/tiling-reference.h: pixel by pixel, straight from the layout
 * definitions, sharing no code with detile.cpp). */
#include "detile.h"
#include "tiling-reference.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

using vmd::Rect;
using vmd::Tiling;

namespace {

using reftile::pattern;

/* A buffer of width x height pixels in storage order, tiled into a plane
 * that starts `lead` bytes into `mem` (padding elsewhere 0xee). */
struct Plane {
  Tiling t;
  uint32_t width, height, bpp, stride;
  size_t lead;
  std::vector<uint8_t> mem;
  const uint8_t *data() const { return mem.data() + lead; }
};

Plane make_plane(Tiling t, uint32_t width, uint32_t height, uint32_t bpp, uint32_t stride,
                 size_t lead) {
  Plane p{t, width, height, bpp, stride, lead,
          reftile::tiled_image(t, width, height, bpp, stride, lead)};
  p.mem.resize(p.mem.size() + 64, 0xee);
  return p;
}

/* Detiles src with detile_rect into a padded destination and compares every
 * byte with what the definitions say, and the padding with its canary. */
void check_rect(const Plane &p, const Rect &src, bool bottom_up) {
  const size_t row = size_t(src.w) * p.bpp, dst_stride = row + 24, lead = 8;
  std::vector<uint8_t> dst(lead + dst_stride * src.h + 32, 0x5a);
  vmd::detile_rect(p.t, p.data(), p.stride, p.bpp, src, bottom_up, p.height, dst.data() + lead,
                   dst_stride);
  for (size_t j = 0; j < src.h; j++) {
    size_t y_disp = src.y + j;
    size_t y_buf = bottom_up ? p.height - 1 - y_disp : y_disp;
    for (size_t i = 0; i < dst_stride; i++) {
      uint8_t got = dst[lead + j * dst_stride + i];
      uint8_t want = i < row ? pattern(size_t(src.x) * p.bpp + i, y_buf) : 0x5a;
      if (got != want) {
        fail("tiling %d %ux%u bpp %u stride %u: rect %u,%u %ux%u%s: row %zu byte %zu is "
             "0x%02x, want 0x%02x",
             int(p.t), p.width, p.height, p.bpp, p.stride, src.x, src.y, src.w, src.h,
             bottom_up ? " bottom-up" : "", j, i, got, want);
        return;
      }
    }
  }
  for (size_t i = 0; i < lead; i++)
    fail_unless(dst[i] == 0x5a, "wrote before dst");
  for (size_t i = lead + dst_stride * src.h; i < dst.size(); i++)
    fail_unless(dst[i] == 0x5a, "wrote after dst");
}

/* Whole image, corners, edges, tile-crossing and random rectangles. */
void check_plane(Tiling t, uint32_t width, uint32_t height, uint32_t bpp, uint32_t stride,
                 size_t lead) {
  Plane p = make_plane(t, width, height, bpp, stride, lead);
  std::vector<Rect> rects = {
      {0, 0, width, height},
      {0, 0, 1, 1},
      {width - 1, height - 1, 1, 1},
      {width - 1, 0, 1, height},
      {0, height - 1, width, 1},
  };
  if (width > 6 && height > 6)
    rects.push_back({3, 5, std::min(width - 3, 17u), std::min(height - 5, 11u)});
  std::mt19937 rng(width * 7919 + height * 31 + bpp + uint32_t(t));
  for (int i = 0; i < 60; i++) {
    uint32_t x = rng() % width, y = rng() % height;
    rects.push_back({x, y, 1 + uint32_t(rng() % (width - x)), 1 + uint32_t(rng() % (height - y))});
  }
  for (const Rect &r : rects) {
    check_rect(p, r, false);
    check_rect(p, r, true);
  }
}

uint32_t round_up(uint32_t v, uint32_t m) { return (v + m - 1) / m * m; }

}  // namespace

/* The reference itself, against offsets worked out by hand. */
GST_START_TEST(test_reference_offsets) {
  fail_unless_equals_int(reftile::offset(Tiling::IntelX, 1024, 511, 0), 511);
  fail_unless_equals_int(reftile::offset(Tiling::IntelX, 1024, 512, 0), 4096);
  fail_unless_equals_int(reftile::offset(Tiling::IntelX, 1024, 0, 1), 512);
  fail_unless_equals_int(reftile::offset(Tiling::IntelX, 1024, 0, 8), 8192);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 15, 0), 15);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 16, 0), 512);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 0, 1), 16);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 127, 31), 7 * 512 + 31 * 16 + 15);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 128, 0), 4096);
  fail_unless_equals_int(reftile::offset(Tiling::IntelY, 256, 0, 32), 8192);
}
GST_END_TEST;

GST_START_TEST(test_linear) {
  check_plane(Tiling::Linear, 1366, 768, 4, 1366 * 4, 0);
  check_plane(Tiling::Linear, 37, 23, 4, 37 * 4 + 52, 13);
  check_plane(Tiling::Linear, 37, 23, 3, 37 * 3 + 1, 4096);
  check_plane(Tiling::Linear, 37, 23, 2, 37 * 2, 7);
  check_plane(Tiling::Linear, 1, 1, 4, 4, 0);
}
GST_END_TEST;

GST_START_TEST(test_x_tiled) {
  check_plane(Tiling::IntelX, 1366, 768, 4, round_up(1366 * 4, 512), 0);
  check_plane(Tiling::IntelX, 1366, 767, 4, round_up(1366 * 4, 512) + 512, 4096);
  check_plane(Tiling::IntelX, 37, 23, 4, 512, 13);
  check_plane(Tiling::IntelX, 300, 23, 3, 1024, 0);
  check_plane(Tiling::IntelX, 37, 23, 2, 1024, 64);
  check_plane(Tiling::IntelX, 1, 1, 4, 512, 0);
}
GST_END_TEST;

GST_START_TEST(test_y_tiled) {
  check_plane(Tiling::IntelY, 1366, 768, 4, round_up(1366 * 4, 128), 0);
  check_plane(Tiling::IntelY, 1366, 767, 4, round_up(1366 * 4, 128) + 256, 4096);
  check_plane(Tiling::IntelY, 37, 23, 4, 256, 13);
  check_plane(Tiling::IntelY, 37, 71, 3, 128, 0);
  check_plane(Tiling::IntelY, 37, 23, 2, 384, 64);
  check_plane(Tiling::IntelY, 1, 1, 4, 128, 0);
  /* Rectangles of 4 MiB and more take the streaming path: aligned and not. */
  Plane big = make_plane(Tiling::IntelY, 2000, 1100, 4, 8064, 0);
  for (bool bottom_up : {false, true}) {
    check_rect(big, {0, 0, 2000, 1100}, bottom_up);
    check_rect(big, {3, 1, 1990, 1090}, bottom_up);
    check_rect(big, {0, 7, 1999, 1093}, bottom_up);
  }
}
GST_END_TEST;

GST_START_TEST(test_tiling_from_modifier) {
  Tiling t = Tiling::IntelY;
  fail_unless(vmd::tiling_from_modifier(0, &t) && t == Tiling::Linear);
  t = Tiling::IntelY;
  fail_unless(vmd::tiling_from_modifier(0x00ffffffffffffffULL, &t) && t == Tiling::Linear);
  fail_unless(vmd::tiling_from_modifier(0x0100000000000001ULL, &t) && t == Tiling::IntelX);
  fail_unless(vmd::tiling_from_modifier(0x0100000000000002ULL, &t) && t == Tiling::IntelY);
  fail_if(vmd::tiling_from_modifier(0x0100000000000003ULL, &t)); /* Yf */
  fail_if(vmd::tiling_from_modifier(0x0100000000000004ULL, &t)); /* Y CCS */
  fail_if(vmd::tiling_from_modifier(0x0100000000000009ULL, &t)); /* Tile4 */
  fail_if(vmd::tiling_from_modifier(0x0200000000000001ULL, &t)); /* AMD */
}
GST_END_TEST;

namespace {

/* needed, or "" and the reason's expected fragment. */
void expect_needed(Tiling t, uint32_t w, uint32_t h, uint32_t bpp, uint64_t offset,
                   uint32_t stride, uint64_t want) {
  uint64_t needed = 0;
  std::string why;
  fail_unless(vmd::plane_bytes_needed(t, w, h, bpp, offset, stride, &needed, &why), "%s",
              why.c_str());
  fail_unless(needed == want, "%ux%u stride %u: %" G_GUINT64_FORMAT " bytes, want %"
              G_GUINT64_FORMAT, w, h, stride, needed, want);
}

void expect_refused(Tiling t, uint32_t w, uint32_t h, uint32_t bpp, uint64_t offset,
                    uint32_t stride, const char *fragment) {
  uint64_t needed = 12345;
  std::string why;
  fail_if(vmd::plane_bytes_needed(t, w, h, bpp, offset, stride, &needed, &why),
          "%ux%u bpp %u stride %u accepted", w, h, bpp, stride);
  fail_unless(why.find(fragment) != std::string::npos, "\"%s\" lacks \"%s\"", why.c_str(),
              fragment);
  fail_unless(needed == 12345);
}

}  // namespace

GST_START_TEST(test_plane_bytes_needed) {
  /* Linear: the last row needs only its pixels. */
  expect_needed(Tiling::Linear, 1920, 1080, 4, 0, 7680, 7680ull * 1080);
  expect_needed(Tiling::Linear, 1920, 1080, 4, 4096, 8192, 4096 + 8192ull * 1079 + 7680);
  expect_needed(Tiling::Linear, 1, 1, 4, 0, 4, 4);
  /* Tiled: whole tile rows. */
  expect_needed(Tiling::IntelX, 1920, 1080, 4, 0, 7680, 7680ull * 1080);
  expect_needed(Tiling::IntelX, 1920, 1081, 4, 0, 7680, 7680ull * 1088);
  expect_needed(Tiling::IntelY, 1920, 1080, 4, 0, 7680, 7680ull * 1088);
  expect_needed(Tiling::IntelY, 1, 1, 4, 0, 128, 4096);
  expect_needed(Tiling::IntelX, 1, 1, 4, 100, 512, 4196);
  expect_needed(Tiling::IntelY, 16384, 16384, 16, 0xffffffffu, 1u << 20,
                0xffffffffull + (1ull << 20) * 16384);

  expect_refused(Tiling::Linear, 1920, 1080, 4, 0, 7676, "too small");
  expect_refused(Tiling::IntelX, 1920, 1080, 4, 0, 7680 - 512, "too small");
  expect_refused(Tiling::IntelX, 1920, 1080, 4, 0, 7680 + 128, "multiple of the tile width, 512");
  expect_refused(Tiling::IntelY, 1920, 1080, 4, 0, 7680 + 64, "multiple of the tile width, 128");
  expect_refused(Tiling::Linear, 1920, 1080, 4, UINT64_MAX - 10, 7680, "overflows");
  expect_refused(Tiling::IntelY, 1920, 1080, 4, UINT64_MAX - 8355839, 7680, "overflows");
  expect_refused(Tiling::Linear, 0, 1080, 4, 0, 7680, "not between");
  expect_refused(Tiling::Linear, 1920, 0, 4, 0, 7680, "not between");
  expect_refused(Tiling::Linear, 16385, 1, 4, 0, 65540, "not between");
  expect_refused(Tiling::Linear, 1, 16385, 4, 0, 4, "not between");
  expect_refused(Tiling::Linear, 1, 1, 0, 0, 4, "bytes per pixel");
  expect_refused(Tiling::Linear, 1, 1, 17, 0, 32, "bytes per pixel");
  expect_refused(Tiling::Linear, 1, 1, 4, 0, (1u << 20) + 4, "too large");
  expect_refused(Tiling::Linear, 1, 1, 4, 0, UINT32_MAX, "too large");
  /* The largest the width allows is not too large. */
  expect_needed(Tiling::Linear, 16384, 1, 16, 0, 16384 * 16, 16384 * 16);
  /* Boundary of the overflow check: exactly UINT64_MAX is representable. */
  expect_needed(Tiling::Linear, 1, 1, 4, UINT64_MAX - 4, 4, UINT64_MAX);
  expect_refused(Tiling::Linear, 1, 1, 4, UINT64_MAX - 3, 4, "overflows");
}
GST_END_TEST;

static Suite *detile_suite() {
  Suite *s = suite_create("detile");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_reference_offsets);
  tcase_add_test(tc, test_linear);
  tcase_add_test(tc, test_x_tiled);
  tcase_add_test(tc, test_y_tiled);
  tcase_add_test(tc, test_tiling_from_modifier);
  tcase_add_test(tc, test_plane_bytes_needed);
  return s;
}

GST_CHECK_MAIN(detile);
