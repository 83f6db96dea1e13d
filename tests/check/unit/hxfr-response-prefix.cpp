/* Unit: encode_frame_response_prefix() gives exactly the bytes encode() puts before a
 * one-NAL FRAME_RESPONSE's NAL data, so helixframesrv can send the access unit from the
 * encoder's buffer (writev-style) instead of copying it into the message. */
#include "hxfr-protocol.h"

#include <gst/check/gstcheck.h>

#include <vector>

namespace hx = vmd::hxfr;

GST_START_TEST(test_prefix_equals_encode) {
  for (size_t n : {size_t(0), size_t(1), size_t(5), size_t(70000)}) {
    for (bool key : {false, true}) {
      std::vector<uint8_t> au(n);
      for (size_t i = 0; i < n; i++)
        au[i] = uint8_t(i * 7 + 3);
      hx::FrameResponse r;
      r.pts_ns = -123456789;
      r.dts_ns = 987654321012;
      r.is_keyframe = key;
      r.nals.push_back(hx::ByteView{au.data(), au.size()});
      std::vector<uint8_t> whole = hx::encode(r, 0x1234);
      std::vector<uint8_t> prefix = hx::encode_frame_response_prefix(r, 0x1234, au.size());
      ck_assert_uint_eq(prefix.size(), hx::kHeaderSize + hx::kFrameResponseFixedSize + 4);
      ck_assert_uint_eq(whole.size(), prefix.size() + n);
      fail_unless(std::equal(prefix.begin(), prefix.end(), whole.begin()),
                  "prefix differs from encode() for %zu bytes", n);
      /* The prefix ignores m.nals: only nal_size counts. */
      hx::FrameResponse bare = r;
      bare.nals.clear();
      fail_unless(hx::encode_frame_response_prefix(bare, 0x1234, au.size()) == prefix);
    }
  }
}
GST_END_TEST;

static Suite *hxfr_response_prefix_suite() {
  Suite *s = suite_create("hxfr-response-prefix");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_prefix_equals_encode);
  return s;
}

GST_CHECK_MAIN(hxfr_response_prefix)
