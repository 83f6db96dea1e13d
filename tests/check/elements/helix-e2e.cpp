/* vsockenc (guest) against helixframesrv (host) in one process, over UNIX
 * and TCP sockets: known frames go out as pixel uploads, come back as H.264
 * from the host's encoder (x264enc here) and decode with avdec_h264 to
 * within PSNR 35 dB of what was sent, in order, none lost. */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

constexpr int kW = 320, kH = 240, kFrames = 30;

/* A smooth, moving BGRx picture: encodable well at the default bitrate. */
std::vector<uint8_t> make_frame(int n) {
  std::vector<uint8_t> f(size_t(kW) * kH * 4);
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++) {
      uint8_t *p = &f[(size_t(y) * kW + x) * 4];
      /* Smooth waves, no hard edges: what 4:2:0 H.264 keeps well. */
      p[0] = uint8_t(128 + 100 * std::sin((x + n * 4) / 23.0));
      p[1] = uint8_t(128 + 100 * std::sin((y + n * 2) / 19.0));
      p[2] = uint8_t(128 + 100 * std::cos((x + y) / 31.0));
      p[3] = 0xff;
    }
  return f;
}

double psnr_rgb(const std::vector<uint8_t> &a, const uint8_t *b, size_t b_stride) {
  double se = 0;
  size_t n = 0;
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++)
      for (int c = 0; c < 3; c++) {
        double d = double(a[(size_t(y) * kW + x) * 4 + c]) - double(b[y * b_stride + x * 4 + c]);
        se += d * d;
        n++;
      }
  double mse = se / double(n);
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

void run_e2e(const std::string &server_address, bool tcp) {
  if (!gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0) ||
      !gst_registry_check_feature_version(gst_registry_get(), "avdec_h264", 1, 0, 0)) {
    g_print("SKIP: x264enc or avdec_h264 missing\n");
    return;
  }
  GError *err = nullptr;
  std::string srv_desc = "helixframesrv name=srv address=" + server_address;
  GstElement *server = gst_parse_launch(srv_desc.c_str(), &err);
  fail_unless(server != nullptr, "%s", err ? err->message : "");
  fail_unless(gst_element_set_state(server, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  std::string client_address = server_address;
  if (tcp) {
    GstElement *srv = gst_bin_get_by_name(GST_BIN(server), "srv");
    guint port = 0;
    g_object_get(srv ? srv : server, "bound-port", &port, nullptr);
    if (srv)
      gst_object_unref(srv);
    fail_unless(port > 0);
    client_address = "tcp://127.0.0.1:" + std::to_string(port);
  }

  std::string desc = "appsrc name=src format=time caps=video/x-raw,format=BGRx,width=" +
                     std::to_string(kW) + ",height=" + std::to_string(kH) +
                     ",framerate=30/1 ! vsockenc address=" + client_address +
                     " timeout-ms=5000 ! h264parse ! avdec_h264 direct-rendering=false max-threads=1"
                     " ! videoconvert ! video/x-raw,format=BGRx ! appsink name=sink sync=false";
  GstElement *client = gst_parse_launch(desc.c_str(), &err);
  fail_unless(client != nullptr, "%s", err ? err->message : "");
  GstElement *src = gst_bin_get_by_name(GST_BIN(client), "src");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(client), "sink");
  fail_unless(gst_element_set_state(client, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < kFrames; i++) {
    sent.push_back(make_frame(i));
    GstBuffer *buf = gst_buffer_new_memdup(sent.back().data(), sent.back().size());
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(i, GST_SECOND, 30);
    GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
    fail_unless(gst_app_src_push_buffer(GST_APP_SRC(src), buf) == GST_FLOW_OK);
  }
  gst_app_src_end_of_stream(GST_APP_SRC(src));

  int got = 0;
  double worst = 99;
  while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND)) {
    GstBuffer *b = gst_sample_get_buffer(s);
    GstVideoInfo info;
    fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(s)));
    GstVideoFrame vf;
    fail_unless(gst_video_frame_map(&vf, &info, b, GST_MAP_READ));
    int index = int(gst_util_uint64_scale_round(GST_BUFFER_PTS(b), 30, GST_SECOND));
    fail_unless(index == got, "frame %d came as #%d", index, got);
    double p = psnr_rgb(sent[size_t(index)], static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&vf, 0)),
                        size_t(GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0)));
    worst = std::min(worst, p);
    gst_video_frame_unmap(&vf);
    gst_sample_unref(s);
    got++;
  }
  g_print("%s: %d frames, worst PSNR %.1f dB\n", server_address.c_str(), got, worst);
  fail_unless_equals_int(got, kFrames);
  fail_unless(worst >= 35.0, "PSNR %.1f dB", worst);

  gst_element_set_state(client, GST_STATE_NULL);
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(client);
  gst_object_unref(server);
}

}  // namespace

GST_START_TEST(test_unix) {
  gchar *dir = g_dir_make_tmp("helix-e2e-XXXXXX", nullptr);
  run_e2e(std::string("unix://") + dir + "/helix.sock", false);
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

GST_START_TEST(test_tcp) { run_e2e("tcp://127.0.0.1:0", true); }
GST_END_TEST;

static Suite *helix_e2e_suite() {
  Suite *s = suite_create("helix-e2e");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unix);
  tcase_add_test(tc, test_tcp);
  return s;
}

GST_CHECK_MAIN(helix_e2e);
