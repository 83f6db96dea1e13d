/* Unit: clipping, region merging and buffer-age history. */
#include "damage.h"

#include <gst/check/gstcheck.h>

using vmd::Rect;
using vmd::Region;

GST_START_TEST(test_clip) {
  Rect r;
  fail_unless(vmd::clip_rect(10, 20, 30, 40, 100, 100, &r));
  fail_unless(r == (Rect{10, 20, 30, 40}));
  /* Partly outside on every side. */
  fail_unless(vmd::clip_rect(-5, -6, 20, 20, 100, 100, &r));
  fail_unless(r == (Rect{0, 0, 15, 14}));
  fail_unless(vmd::clip_rect(90, 95, 20, 20, 100, 100, &r));
  fail_unless(r == (Rect{90, 95, 10, 5}));
  /* Entirely outside, empty, negative. */
  fail_if(vmd::clip_rect(100, 0, 5, 5, 100, 100, &r));
  fail_unless(r.empty());
  fail_if(vmd::clip_rect(-10, 0, 10, 5, 100, 100, &r));
  fail_if(vmd::clip_rect(0, 0, 0, 5, 100, 100, &r));
  fail_if(vmd::clip_rect(0, 0, -5, 5, 100, 100, &r));
  fail_if(vmd::clip_rect(0, 0, 5, -1, 100, 100, &r));
  /* Extremes of the wire types do not overflow. */
  fail_unless(vmd::clip_rect(G_MININT32, G_MININT32, G_MAXINT32, G_MAXINT32, 100, 100, &r) == false);
  fail_unless(vmd::clip_rect(-1, -1, G_MAXINT32, G_MAXINT32, 100, 100, &r));
  fail_unless(r == (Rect{0, 0, 100, 100}));
}
GST_END_TEST;

GST_START_TEST(test_region_merge_never_loses_damage) {
  Region region(4);
  std::vector<Rect> added;
  GRand *rand = g_rand_new_with_seed(42);
  for (int i = 0; i < 200; i++) {
    Rect r{uint32_t(g_rand_int_range(rand, 0, 900)), uint32_t(g_rand_int_range(rand, 0, 700)),
           uint32_t(g_rand_int_range(rand, 1, 100)), uint32_t(g_rand_int_range(rand, 1, 60))};
    region.add(r);
    added.push_back(r);
    fail_unless(region.rects().size() <= 4);
    /* Every pixel ever added is still covered. */
    for (const Rect &a : added) {
      for (uint32_t y = a.y; y < a.bottom(); y += 7) {
        for (uint32_t x = a.x; x < a.right(); x += 7) {
          bool covered = false;
          for (const Rect &have : region.rects())
            covered |= have.contains(Rect{x, y, 1, 1});
          fail_unless(covered, "pixel %u,%u lost after %d adds", x, y, i);
        }
      }
    }
  }
  g_rand_free(rand);
}
GST_END_TEST;

GST_START_TEST(test_region_contains_and_bounds) {
  Region region;
  region.add(Rect{0, 0, 10, 10});
  region.add(Rect{2, 2, 3, 3}); /* inside: no new rect */
  fail_unless_equals_int(region.rects().size(), 1);
  region.add(Rect{0, 0, 20, 20}); /* swallows the first */
  fail_unless_equals_int(region.rects().size(), 1);
  region.add(Rect{50, 50, 10, 10});
  fail_unless_equals_int(region.rects().size(), 2);
  fail_unless(region.bounds() == (Rect{0, 0, 60, 60}));
  fail_unless_equals_uint64(region.area(), 400 + 100);
  region.add(Rect{}); /* empty: ignored */
  fail_unless_equals_int(region.rects().size(), 2);
}
GST_END_TEST;

GST_START_TEST(test_history) {
  vmd::DamageHistory history(3);
  Region out;
  fail_if(history.since(1, &out));
  Region d1, d2, d3, d4;
  d1.add(Rect{0, 0, 1, 1});
  d2.add(Rect{10, 0, 1, 1});
  d3.add(Rect{20, 0, 1, 1});
  d4.add(Rect{30, 0, 1, 1});
  history.push(1, d1);
  history.push(2, d2);
  history.push(3, d3);
  fail_unless(history.since(3, &out));
  fail_unless(out.empty());
  fail_unless(history.since(2, &out));
  fail_unless_equals_int(out.rects().size(), 1);
  fail_unless(out.rects()[0] == (Rect{20, 0, 1, 1}));
  fail_unless(history.since(1, &out)); /* d2 + d3 */
  fail_unless_equals_int(out.rects().size(), 2);
  fail_if(history.since(0, &out)); /* unknown content */
  history.push(4, d4);               /* d1 falls out (depth 3) */
  fail_unless(history.since(1, &out)); /* needs d2, d3, d4: still there */
  fail_unless_equals_int(out.rects().size(), 3);
  history.push(5, d1);
  fail_if(history.since(1, &out)); /* d2 is gone now */
  fail_if(history.since(9, &out)); /* from the future */
  history.push(7, d1);             /* a gap resets */
  fail_if(history.since(5, &out));
  fail_unless(history.since(7, &out));
}
GST_END_TEST;

static Suite *damage_suite() {
  Suite *s = suite_create("damage");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_clip);
  tcase_add_test(tc, test_region_merge_never_loses_damage);
  tcase_add_test(tc, test_region_contains_and_bounds);
  tcase_add_test(tc, test_history);
  return s;
}

GST_CHECK_MAIN(damage);
