/* Unit: the guest cursor: CursorDefine checks, blending against a reference
 * blend written here (straight alpha ARGB over BGRx), clipping at the
 * edges, the pointer at the hotspot, other pixel formats, and the
 * FrameStore's cursor damage with recycled buffers. */
#include "cursor-event.h"
#include "cursor.h"
#include "frame-store.h"

#include <gst/check/gstcheck.h>

#include <cstring>
#include <vector>

using vmd::CursorState;

namespace {

constexpr uint32_t kBGRx = 0x20020888; /* x8r8g8b8 */

/* An image whose every pixel differs: colour from the position, alpha
 * running through 0, 255 and values in between. */
std::vector<uint8_t> test_image(int w, int h) {
  std::vector<uint8_t> bytes(size_t(w) * h * 4);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      const uint32_t a = uint32_t((x * 37 + y * 11) % 5) * 255 / 4; /* 0, 63, 127, 191, 255 */
      const uint32_t argb = a << 24 | uint32_t(x * 29 % 256) << 16 | uint32_t(y * 53 % 256) << 8 |
                            uint32_t((x + y) * 7 % 256);
      std::memcpy(&bytes[(size_t(y) * w + x) * 4], &argb, 4);
    }
  }
  return bytes;
}

CursorState cursor_at(const std::vector<uint8_t> &bytes, int w, int h, int hx, int hy, int x, int y) {
  std::string why;
  CursorState c;
  c.image = vmd::cursor_image_from_define(w, h, hx, hy, bytes.data(), bytes.size(), &why);
  fail_unless(c.image != nullptr, "%s", why.c_str());
  c.x = x;
  c.y = y;
  c.visible = true;
  return c;
}

/* The reference: for each BGRx pixel under the image (top-left at x,y),
 * out = (src * a + dst * (255 - a) + 127) / 255 per colour, padding kept. */
std::vector<uint8_t> reference_blend(const std::vector<uint8_t> &surface, uint32_t sw, uint32_t sh,
                                     size_t stride, const std::vector<uint8_t> &img, int w, int h,
                                     int x0, int y0) {
  std::vector<uint8_t> out = surface;
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      const int dx = x0 + x, dy = y0 + y;
      if (dx < 0 || dy < 0 || dx >= int(sw) || dy >= int(sh))
        continue;
      const uint8_t *s = &img[(size_t(y) * w + x) * 4]; /* B G R A in memory */
      uint8_t *d = &out[size_t(dy) * stride + size_t(dx) * 4];
      const uint32_t a = s[3];
      for (int c = 0; c < 3; c++)
        d[c] = uint8_t((s[c] * a + d[c] * (255 - a) + 127) / 255);
    }
  }
  return out;
}

std::vector<uint8_t> background(uint32_t w, uint32_t h, size_t stride) {
  std::vector<uint8_t> s(stride * h);
  for (size_t i = 0; i < s.size(); i++)
    s[i] = uint8_t(i * 131 >> 3);
  (void)w;
  return s;
}

}  // namespace

GST_START_TEST(test_define_checks) {
  std::string why;
  std::vector<uint8_t> px(16 * 16 * 4);
  fail_unless(vmd::cursor_image_from_define(16, 16, 3, 4, px.data(), px.size(), &why) != nullptr);
  fail_if(vmd::cursor_image_from_define(0, 16, 0, 0, px.data(), px.size(), &why));
  fail_if(vmd::cursor_image_from_define(-1, 16, 0, 0, px.data(), px.size(), &why));
  fail_if(vmd::cursor_image_from_define(16, 16, 0, 0, px.data(), px.size() - 1, &why));
  fail_unless(why.find("needs 1024") != std::string::npos, "%s", why.c_str());
  fail_if(vmd::cursor_image_from_define(16, 16, 16, 0, px.data(), px.size(), &why));
  fail_if(vmd::cursor_image_from_define(16, 16, 0, -1, px.data(), px.size(), &why));
  fail_if(vmd::cursor_image_from_define(100000, 100000, 0, 0, px.data(), px.size(), &why));
  fail_unless(why.find("at most 512") != std::string::npos, "%s", why.c_str());
}
GST_END_TEST;

GST_START_TEST(test_blend_matches_reference) {
  const uint32_t sw = 61, sh = 47;
  const size_t stride = sw * 4 + 12; /* padded rows */
  const auto img = test_image(19, 13);
  /* Inside, and clipped at every edge and corner. */
  const int spots[][2] = {{5, 7}, {-4, 10}, {50, -6}, {55, 40}, {-18, -12}, {60, 46}, {61, 0}, {-19, 0}};
  for (const auto &spot : spots) {
    const CursorState c = cursor_at(img, 19, 13, 2, 3, spot[0], spot[1]);
    std::vector<uint8_t> surface = background(sw, sh, stride);
    const auto want = reference_blend(surface, sw, sh, stride, img, 19, 13, spot[0], spot[1]);
    vmd::cursor_blend(c, *vmd::pixman_format_lookup(kBGRx), surface.data(), stride, sw, sh);
    fail_unless(surface == want, "blend at %d,%d differs from the reference", spot[0], spot[1]);
  }
}
GST_END_TEST;

GST_START_TEST(test_rect_and_pointer) {
  const auto img = test_image(8, 6);
  CursorState c = cursor_at(img, 8, 6, 2, 5, 10, 20);
  /* MouseSet gives the image's top-left; the pointer is there plus the hotspot. */
  fail_unless_equals_int(c.pointer_x(), 12);
  fail_unless_equals_int(c.pointer_y(), 25);
  fail_unless(vmd::cursor_rect(c, 100, 100) == (vmd::Rect{10, 20, 8, 6}));
  c.x = 96;
  c.y = -2;
  fail_unless(vmd::cursor_rect(c, 100, 100) == (vmd::Rect{96, 0, 4, 4}));
  c.visible = false;
  fail_unless(vmd::cursor_rect(c, 100, 100).empty());
  /* Extremes of MouseSet's int32 neither overflow nor draw anything. */
  c.visible = true;
  c.x = INT32_MAX;
  c.y = INT32_MIN;
  fail_unless_equals_int(c.pointer_x(), INT32_MAX);
  fail_unless_equals_int(c.pointer_y(), INT32_MIN + 5);
  fail_unless(vmd::cursor_rect(c, 100, 100).empty());
  std::vector<uint8_t> surface(100 * 100 * 4, 7);
  vmd::cursor_blend(c, *vmd::pixman_format_lookup(kBGRx), surface.data(), 400, 100, 100);
  fail_unless(surface == std::vector<uint8_t>(100 * 100 * 4, 7));
  GstStructure *s = vmd::cursor_structure(cursor_at(img, 8, 6, 2, 5, 10, 20), nullptr, true);
  gint x = 0, y = 0, hx = 0;
  fail_unless(gst_structure_get_int(s, "x", &x) && gst_structure_get_int(s, "y", &y) &&
              gst_structure_get_int(s, "hot-x", &hx));
  fail_unless(x == 12 && y == 25 && hx == 2);
  fail_unless(gst_structure_has_name(s, "qemu-cursor"));
  gst_structure_free(s);
}
GST_END_TEST;

GST_START_TEST(test_blend_other_formats) {
  /* One opaque red, one half-transparent white pixel, in each format. */
  const uint32_t px[2] = {0xffff0000u, 0x80ffffffu};
  std::vector<uint8_t> bytes(8);
  std::memcpy(bytes.data(), px, 8);
  const CursorState c = cursor_at(bytes, 2, 1, 0, 0, 0, 0);
  struct Case {
    uint32_t code;
    std::vector<uint8_t> before, after;
  } cases[] = {
      /* a8b8g8r8 = RGBA bytes: alpha gets "over" */
      {0x20038888, {0, 0, 0, 0, 0, 0, 0, 0}, {255, 0, 0, 255, 128, 128, 128, 128}},
      /* b8g8r8x8 = xRGB bytes */
      {0x20080888, {9, 0, 0, 0, 9, 0, 0, 0}, {9, 255, 0, 0, 9, 128, 128, 128}},
      /* r8g8b8 = BGR bytes */
      {0x18020888, {0, 0, 0, 0, 0, 0}, {0, 0, 255, 128, 128, 128}},
      /* r5g6b5 little-endian: red = 0xf800, white half over black = 0x8410 */
      {0x10020565, {0, 0, 0, 0}, {0x00, 0xf8, 0x10, 0x84}},
  };
  for (const Case &k : cases) {
    std::vector<uint8_t> surface = k.before;
    vmd::cursor_blend(c, *vmd::pixman_format_lookup(k.code), surface.data(), surface.size(), 2, 1);
    fail_unless(surface == k.after, "format 0x%08x", k.code);
  }
}
GST_END_TEST;

/* The store draws the cursor into every frame, and a move damages only the
 * rectangles it leaves and enters; buffers recycled at any age stay exact. */
GST_START_TEST(test_store_cursor_damage) {
  const uint32_t w = 64, h = 48;
  const size_t stride = w * 4;
  vmd::FrameStore store;
  std::vector<uint8_t> surface = background(w, h, stride);
  store.scanout(w, h, stride, kBGRx, surface.data(), surface.size(), 0);
  const auto img = test_image(9, 7);
  fail_unless(store.cursor_define(9, 7, 1, 1, img.data(), img.size(), 0).applied);
  store.cursor_move(3, 4, true, 0);
  const uint64_t gen = store.format().generation;
  /* Three buffers in rotation, as a pool would hand them out. */
  std::vector<uint8_t> bufs[3] = {std::vector<uint8_t>(stride * h), std::vector<uint8_t>(stride * h),
                                  std::vector<uint8_t>(stride * h)};
  uint64_t held[3] = {0, 0, 0};
  const int moves[][2] = {{3, 4}, {10, 4}, {11, 5}, {60, 44}, {-5, -3}, {20, 20}, {20, 20}};
  for (size_t i = 0; i < G_N_ELEMENTS(moves); i++) {
    store.cursor_move(moves[i][0], moves[i][1], true, int64_t(i));
    const uint64_t out_before = store.stats().bytes_out;
    int64_t arrival;
    uint64_t seq;
    auto &buf = bufs[i % 3];
    fail_unless(store.take_frame(gen, held[i % 3], buf.data(), stride, &seq, &arrival));
    held[i % 3] = seq;
    const auto want = reference_blend(surface, w, h, stride, img, 9, 7, moves[i][0], moves[i][1]);
    fail_unless(buf == want, "frame %zu wrong", i);
    if (i >= 3) /* recycled: only cursor rectangles were copied, not the frame */
      fail_unless(store.stats().bytes_out - out_before <= 4 * 9 * 7 * 4,
                  "frame %zu copied %" G_GUINT64_FORMAT " bytes", i,
                  store.stats().bytes_out - out_before);
  }
  /* Hidden, and show-cursor off: the recycled buffer gets the background back. */
  store.cursor_move(20, 20, false, 9);
  uint64_t seq;
  int64_t arrival;
  fail_unless(store.take_frame(gen, held[1], bufs[1].data(), stride, &seq, &arrival));
  fail_unless(bufs[1] == surface);
  store.cursor_move(20, 20, true, 10);
  store.set_draw_cursor(false);
  fail_unless(store.take_frame(gen, seq, bufs[1].data(), stride, &seq, &arrival));
  fail_unless(bufs[1] == surface);
  /* A bad CursorDefine leaves the cursor as it was. */
  fail_if(store.cursor_define(9, 7, 1, 1, img.data(), 10, 11).applied);
  fail_unless(store.cursor().image->width == 9);
  /* A lost connection takes its cursor along: the next VM's frames and
   * events must not show it. */
  const uint64_t serial = store.cursor().serial;
  store.connection_lost(true);
  fail_if(store.cursor().visible);
  fail_unless(store.cursor().image == nullptr);
  fail_unless(store.cursor().serial > serial);
}
GST_END_TEST;

static Suite *cursor_suite() {
  Suite *s = suite_create("cursor");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_define_checks);
  tcase_add_test(tc, test_blend_matches_reference);
  tcase_add_test(tc, test_rect_and_pointer);
  tcase_add_test(tc, test_blend_other_formats);
  tcase_add_test(tc, test_store_cursor_damage);
  return s;
}

GST_CHECK_MAIN(cursor);
