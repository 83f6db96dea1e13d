/* Unit: gl-channel-order's table, each row re-derived from GStreamer's
 * description of the host format (which byte holds R, G, B, A) and from the
 * fourcc's letters (X formats are imported as their A twin). The gl suite
 * (tests/check/gl/dmabuf-import.cpp) checks the same rows against pixels
 * read back from a real import. */
#include "gl-channel-order.h"

#include <cstring>
#include <initializer_list>

#include <gst/check/gstcheck.h>

namespace {

constexpr uint32_t fourcc(const char *s) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

const GstVideoFormat kHosts[] = {GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_BGRA,
                                 GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_RGBA,
                                 GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_ARGB,
                                 GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_ABGR};

}  // namespace

GST_START_TEST(test_swizzles_match_gstreamer) {
  for (const char *drm : {"XR24", "AR24", "XB24", "AB24"}) {
    for (GstVideoFormat host : kHosts) {
      vmd::GlChannelOrder order;
      fail_unless(vmd::gl_channel_order(fourcc(drm), host, &order), "%s -> %s", drm,
                  gst_video_format_to_string(host));
      char want_import[5] = {'A', drm[1], drm[2], drm[3], 0};
      char name[5];
      fail_unless_equals_string(vmd::fourcc_name(order.import_fourcc, name), want_import);
      /* byte offset of each component in the host pixel; the one byte no
       * component claims is padding, written from the sampled alpha */
      const GstVideoFormatInfo *info = gst_video_format_get_info(host);
      char want[5] = {'a', 'a', 'a', 'a', 0};
      const char letters[] = {'r', 'g', 'b', 'a'};
      const int comps[] = {GST_VIDEO_COMP_R, GST_VIDEO_COMP_G, GST_VIDEO_COMP_B, GST_VIDEO_COMP_A};
      for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS(info); c++)
        want[GST_VIDEO_FORMAT_INFO_POFFSET(info, comps[c])] = letters[c];
      GST_INFO("%s -> %s: import %s, swizzle %s", drm, gst_video_format_to_string(host), name,
               order.swizzle);
      fail_unless_equals_string(order.swizzle, want);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_outside_the_table) {
  vmd::GlChannelOrder order;
  fail_unless(!vmd::gl_channel_order(fourcc("NV12"), GST_VIDEO_FORMAT_BGRx, &order));
  fail_unless(!vmd::gl_channel_order(fourcc("XR24"), GST_VIDEO_FORMAT_RGB16, &order));
  char name[5];
  fail_unless_equals_string(vmd::fourcc_name(0x34325258, name), "XR24");
  fail_unless_equals_string(vmd::fourcc_name(0x00325258, name), "XR2?");
}
GST_END_TEST;

static Suite *gl_channel_order_suite() {
  Suite *s = suite_create("gl-channel-order");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_swizzles_match_gstreamer);
  tcase_add_test(tc, test_outside_the_table);
  return s;
}

GST_CHECK_MAIN(gl_channel_order);
