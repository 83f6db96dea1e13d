/* qemudbussrc against a scripted QEMU (tests/check/support/fake-qemu): the
 * listener contract, every display path, malformed input, connection loss.
 * In process, peer to peer through QMP: no external program needed. */
#include "fake-qemu.h"
#include "doc-check.h"
#include "p2p-fixture.h"
#include "src-pipeline.h"

#include <fcntl.h>
#include <gst/check/gstcheck.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using fakeqemu::FakeQemu;
using fakeqemu::FakeQemuOptions;
using testsupport::Rgb;
using testsupport::SrcPipeline;
using testsupport::bgrx;
using testsupport::expected_rgb;
using testsupport::assert_pixels;
using Fixture = testsupport::P2pFixture;

namespace {

constexpr uint32_t kXRGB = 0x20020888; /* x8r8g8b8 = BGRx */
constexpr uint32_t kRGB24 = 0x18020888; /* r8g8b8 = BGR */
constexpr uint32_t kRGB565 = 0x10020565; /* r5g6b5 = RGB16 */

int memfd_with(const std::vector<uint8_t> &data, size_t offset, size_t total) {
  int fd = memfd_create("fake-surface", MFD_CLOEXEC);
  fail_unless(fd >= 0);
  fail_unless(ftruncate(fd, off_t(total)) == 0);
  fail_unless(pwrite(fd, data.data(), data.size(), off_t(offset)) == ssize_t(data.size()));
  return fd;
}

}  // namespace

GST_START_TEST(test_listener_contract) {
  Fixture f;
  /* We announce the shared-memory interface QEMU 9.2+ looks for. */
  std::vector<std::string> ifaces = f.qemu->listener_interfaces();
  bool has_map = false;
  for (auto &i : ifaces)
    has_map |= i == "org.qemu.Display1.Listener.Unix.Map";
  fail_unless(has_map);
  fail_unless_equals_int(f.qemu->listener_console(), 0);
  std::string log = f.qemu->qmp_log();
  fail_unless(strstr(log.c_str(), "getfd") && strstr(log.c_str(), "@dbus-display"), "%s", log.c_str());
  /* Unknown methods and wrong signatures are refused, not crashes. */
  std::string error;
  fail_if(f.qemu->call_raw("org.qemu.Display1.Listener", "Frobnicate", nullptr, nullptr, &error));
  fail_if(f.qemu->call_raw("org.qemu.Display1.Listener", "Scanout", g_variant_new("(uuu)", 1, 2, 3),
                           nullptr, &error));
  fail_unless(strstr(error.c_str(), "InvalidArgs") != nullptr, "%s", error.c_str());
  fail_unless(f.qemu->scanout(8, 8, 32, kXRGB, bgrx(8, 8, 1), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(8, 8, 5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_placeholder_surface_skipped) {
  /* QEMU registers a listener with its 640x480 placeholder and replaces it
   * with the real surface milliseconds later: caps go straight to the real one. */
  Fixture f;
  std::string error;
  fail_unless(f.qemu->scanout(640, 480, 2560, kXRGB, bgrx(640, 480, 0), &error));
  fail_unless(f.qemu->scanout(48, 32, 192, kXRGB, bgrx(48, 32, 4), &error));
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  int w, h;
  testsupport::sample_size(s, &w, &h);
  fail_unless(w == 48 && h == 32, "first caps were %dx%d", w, h);
  assert_pixels(s, 0, 0, 48, 32, 4);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_p2p_objects_exported_late) {
  /* QEMU exports its objects after the p2p handshake, from its main loop:
   * the source must retry its first call rather than fail. */
  FakeQemuOptions opts;
  opts.p2p_export_delay_ms = 300;
  Fixture f("keepalive-ms=0", opts);
  std::string error;
  fail_unless(f.qemu->scanout(8, 8, 32, kXRGB, bgrx(8, 8, 1), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(8, 8, 5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_scanout_and_update_exact) {
  Fixture f;
  std::string error;
  /* QEMU's stride wider than the row. */
  fail_unless(f.qemu->scanout(64, 48, 64 * 4 + 16, kXRGB, bgrx(64, 48, 7, 64 * 4 + 16), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  int w, h;
  std::string fmt;
  fail_unless(testsupport::sample_size(s, &w, &h, &fmt));
  fail_unless_equals_int(w, 64);
  fail_unless_equals_int(h, 48);
  fail_unless_equals_string(fmt.c_str(), "BGRx");
  GstStructure *st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
  gint fn, fd;
  fail_unless(gst_structure_get_fraction(st, "framerate", &fn, &fd));
  fail_unless(fn == 60 && fd == 1);
  fail_unless(gst_structure_get_fraction(st, "pixel-aspect-ratio", &fn, &fd));
  fail_unless(fn == 1 && fd == 1);
  assert_pixels(s, 0, 0, 64, 48, 7);
  GstClockTime pts1 = GST_BUFFER_PTS(gst_sample_get_buffer(s));
  fail_unless(GST_CLOCK_TIME_IS_VALID(pts1));
  gst_sample_unref(s);

  /* An update of 10x6 at 20,30 with a different seed; only it is copied in,
   * and only it is copied out (the recycled buffer holds the previous frame). */
  uint64_t in_before = f.pipe->stat("bytes-in");
  uint64_t out_before = f.pipe->stat("bytes-out");
  fail_unless(f.qemu->update(20, 30, 10, 6, 40, kXRGB, bgrx(10, 6, 99), &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 20, 30, 10, 6, 99, 20, 30);
  assert_pixels(s, 0, 0, 20, 48, 7);
  assert_pixels(s, 30, 0, 34, 48, 7);
  fail_unless(GST_BUFFER_PTS(gst_sample_get_buffer(s)) > pts1);
  gst_sample_unref(s);
  /* The Scanout was kept zero-copy (the message is the surface); this first
   * partial update takes a private copy of it, then applies its rectangle. */
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, 64 * 48 * 4 + 10 * 6 * 4);
  /* appsink keeps its preroll buffer and the buffer of the sample it gave
   * last, so that update may have needed a new pool buffer (one full copy);
   * from then on recycled buffers get only the damage since their frame. */
  fail_unless(f.pipe->stat("full-copies") <= 2);
  out_before = f.pipe->stat("bytes-out");
  in_before = f.pipe->stat("bytes-in");
  fail_unless(f.qemu->update(1, 2, 5, 3, 20, kXRGB, bgrx(5, 3, 33), &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 1, 2, 5, 3, 33, 1, 2);
  gst_sample_unref(s);
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, 5 * 3 * 4);
  uint64_t copied = f.pipe->stat("bytes-out") - out_before;
  fail_unless(copied == 5 * 3 * 4 || copied == 5 * 3 * 4 + 10 * 6 * 4,
              "copied %" G_GUINT64_FORMAT " bytes for a 5x3 update", copied);
  fail_unless(f.pipe->stat("full-copies") <= 2);
}
GST_END_TEST;

GST_START_TEST(test_resolution_and_format_changes) {
  Fixture f;
  std::string error;
  fail_unless(f.qemu->scanout(32, 16, 128, kXRGB, bgrx(32, 16, 1), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(32, 16, 5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);

  /* 24 bpp, odd width: packed rows padded to 4 bytes in GStreamer. */
  std::vector<uint8_t> rgb24(size_t(15 * 3) * 7);
  for (int y = 0; y < 7; y++)
    for (int x = 0; x < 15; x++) {
      Rgb c = expected_rgb(x, y, 40);
      uint8_t *p = &rgb24[size_t(y) * 45 + x * 3];
      p[0] = c.b, p[1] = c.g, p[2] = c.r;
    }
  fail_unless(f.qemu->scanout(15, 7, 45, kRGB24, rgb24, &error), "%s", error.c_str());
  s = f.pipe->pull_size(15, 7, 5000);
  fail_unless(s != nullptr);
  int w, h;
  std::string fmt;
  testsupport::sample_size(s, &w, &h, &fmt);
  fail_unless_equals_string(fmt.c_str(), "BGR");
  /* Buffer size agrees with the caps. */
  GstVideoInfo info;
  gst_video_info_from_caps(&info, gst_sample_get_caps(s));
  fail_unless(gst_buffer_get_size(gst_sample_get_buffer(s)) >= GST_VIDEO_INFO_SIZE(&info));
  assert_pixels(s, 0, 0, 15, 7, 40);
  gst_sample_unref(s);

  /* 16 bpp: white and pure red survive exactly. */
  std::vector<uint8_t> rgb16(4 * 2 * 2);
  const uint16_t px[4] = {0xffff, 0xf800, 0x07e0, 0x001f};
  for (int i = 0; i < 4; i++) {
    rgb16[i * 2] = uint8_t(px[i] & 0xff);
    rgb16[i * 2 + 1] = uint8_t(px[i] >> 8);
    rgb16[8 + i * 2] = uint8_t(px[i] & 0xff);
    rgb16[8 + i * 2 + 1] = uint8_t(px[i] >> 8);
  }
  fail_unless(f.qemu->scanout(4, 2, 8, kRGB565, rgb16, &error), "%s", error.c_str());
  s = f.pipe->pull_size(4, 2, 5000);
  fail_unless(s != nullptr);
  testsupport::sample_size(s, &w, &h, &fmt);
  fail_unless_equals_string(fmt.c_str(), "RGB16");
  Rgb c = testsupport::pixel_at(s, 1, 1);
  fail_unless(c.r >= 0xf0 && c.g == 0 && c.b == 0);
  c = testsupport::pixel_at(s, 3, 0);
  fail_unless(c.r == 0 && c.g == 0 && c.b >= 0xf0);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_scanout_map_path) {
  Fixture f;
  std::string error;
  const uint32_t w = 40, h = 20, stride = 200, offset = 8192;
  auto img = bgrx(w, h, 5, stride);
  int fd = memfd_with(img, offset, offset + stride * h);
  fail_unless(f.qemu->scanout_map(fd, offset, w, h, stride, kXRGB, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 5);
  gst_sample_unref(s);

  /* QEMU draws into the shared memory, then says where. */
  auto patch = bgrx(6, 4, 123);
  for (int y = 0; y < 4; y++)
    fail_unless(pwrite(fd, patch.data() + y * 24, 24, offset + (3 + y) * stride + 9 * 4) == 24);
  uint64_t in_before = f.pipe->stat("bytes-in");
  fail_unless(f.qemu->update_map(9, 3, 6, 4, &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 9, 3, 6, 4, 123, 9, 3);
  assert_pixels(s, 0, 10, w, 10, 5);
  gst_sample_unref(s);
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, 6 * 4 * 4);
  fail_unless_equals_uint64(f.pipe->stat("map-scanouts"), 1);
  fail_unless_equals_uint64(f.pipe->stat("map-updates"), 1);

  /* An fd smaller than offset + stride * height: refused (QEMU then falls
   * back to Scanout copies), and the stream goes on. */
  int small = memfd_with(img, 0, stride * h);
  fail_if(f.qemu->scanout_map(small, offset, w, h, stride, kXRGB, &error));
  fail_unless(strstr(error.c_str(), "needs") != nullptr, "%s", error.c_str());
  close(small);
  /* Map -> Scanout copies -> Map again. */
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 9), &error), "%s", error.c_str());
  s = f.pipe->pull_size(16, 16, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, 16, 16, 9);
  gst_sample_unref(s);
  fail_if(f.qemu->update_map(0, 0, 4, 4, &error)); /* no map current */
  fail_unless(f.qemu->scanout_map(fd, offset, w, h, stride, kXRGB, &error), "%s", error.c_str());
  s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 9, 3, 6, 4, 123, 9, 3);
  gst_sample_unref(s);
  /* The refused map and the plain Scanout are not map scanouts. */
  fail_unless_equals_uint64(f.pipe->stat("map-scanouts"), 2);
  fail_unless_equals_uint64(f.pipe->stat("scanouts"), 3);
  fail_unless_equals_uint64(f.pipe->stat("map-updates"), 1);
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_malformed_messages_keep_streaming) {
  Fixture f;
  std::string error;
  /* Before any Scanout. */
  fail_if(f.qemu->update(0, 0, 4, 4, 16, kXRGB, bgrx(4, 4, 0), &error));
  fail_unless(f.qemu->scanout(32, 32, 128, kXRGB, bgrx(32, 32, 2), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  /* Truncated data, short stride, negative and absurd sizes, outside. */
  fail_if(f.qemu->scanout(32, 32, 128, kXRGB, std::vector<uint8_t>(100), &error));
  fail_if(f.qemu->scanout(100000, 100000, 400000, kXRGB, std::vector<uint8_t>(16), &error));
  fail_if(f.qemu->update(0, 0, 8, 8, 32, kXRGB, std::vector<uint8_t>(31), &error));
  fail_if(f.qemu->update(0, 0, 8, 8, 4, kXRGB, bgrx(8, 8, 0), &error));
  fail_if(f.qemu->update(0, 0, -8, 8, 32, kXRGB, bgrx(8, 8, 0), &error));
  fail_if(f.qemu->update(40, 40, 8, 8, 32, kXRGB, bgrx(8, 8, 0), &error));
  fail_if(f.qemu->update(0, 0, 8, 8, 24, kRGB24, std::vector<uint8_t>(8 * 24), &error));
  fail_if(f.qemu->update_map(0, 0, 8, 8, &error));
  fail_if(f.qemu->call_raw("org.qemu.Display1.Listener.Unix.Map", "ScanoutMap",
                           g_variant_new("(huuuuu)", 0, 0, 8, 8, 32, kXRGB), nullptr, &error));
  fail_unless(f.pipe->stat("ignored") >= 9);
  /* A rectangle half outside is clipped; the stream carries on exactly. */
  fail_unless(f.qemu->update(28, 28, 8, 8, 32, kXRGB, bgrx(8, 8, 60), &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 28, 28, 4, 4, 60, 28, 28);
  assert_pixels(s, 0, 0, 28, 28, 2);
  gst_sample_unref(s);
  /* The user was told, without a flood: warnings are rate limited. */
  std::string warnings = f.pipe->warnings();
  fail_unless(!warnings.empty());
  std::string err_msg;
  fail_if(f.pipe->wait_error(100, &err_msg), "unexpected error: %s", err_msg.c_str());
}
GST_END_TEST;

GST_START_TEST(test_unknown_format_is_an_error) {
  Fixture f;
  std::string error;
  f.qemu->scanout(8, 8, 32, 0x20051234, bgrx(8, 8, 0), &error);
  std::string msg, debug;
  fail_unless(f.pipe->wait_error(5000, &msg, &debug));
  fail_unless(strstr(msg.c_str(), "0x20051234") != nullptr, "%s", msg.c_str());
}
GST_END_TEST;

GST_START_TEST(test_stop_releases_the_surface) {
  Fixture f;
  std::string error;
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 1), &error));
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  fail_unless(f.pipe->stat("scanouts") == 1);
  /* READY: the store (surface, QEMU's message, memfd) is gone. */
  fail_unless(gst_element_set_state(f.pipe->pipeline(), GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_uint64(f.pipe->stat("scanouts"), 0);
  /* And it starts again. */
  fail_unless(f.pipe->play());
  /* The fake may still hold the old listener for a moment: retry until the
   * new one takes the call. */
  bool sent = false;
  for (int i = 0; i < 100 && !sent; i++) {
    sent = f.qemu->wait_for_listener(100) &&
           f.qemu->scanout(24, 16, 96, kXRGB, bgrx(24, 16, 2), &error);
    if (!sent)
      g_usleep(50000);
  }
  fail_unless(sent, "%s", error.c_str());
  s = f.pipe->pull_size(24, 16, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, 24, 16, 2);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_downstream_writes_do_not_come_back) {
  /* An in-place element writes into the buffers; a recycled buffer must not
   * bring those pixels back under the next frame's damage. */
  Fixture f("keepalive-ms=0", FakeQemuOptions(), true, "! videobalance brightness=0.2");
  std::string error;
  std::vector<uint8_t> grey(64 * 64 * 4, 0x80);
  fail_unless(f.qemu->scanout(64, 64, 256, kXRGB, grey, &error));
  GstSample *first = f.pipe->pull(5000);
  fail_unless(first != nullptr);
  Rgb c0 = testsupport::pixel_at(first, 40, 40);
  gst_sample_unref(first);
  for (int i = 0; i < 6; i++) {
    fail_unless(f.qemu->update(0, 0, 4, 4, 16, kXRGB, std::vector<uint8_t>(64, 0x10), &error));
    GstSample *s = f.pipe->pull(5000);
    fail_unless(s != nullptr);
    Rgb c = testsupport::pixel_at(s, 40, 40); /* never damaged: must not drift */
    gst_sample_unref(s);
    fail_unless(c.r == c0.r && c.g == c0.g && c.b == c0.b,
                "frame %d: untouched pixel went %02x%02x%02x -> %02x%02x%02x", i, c0.r, c0.g, c0.b,
                c.r, c.g, c.b);
  }
}
GST_END_TEST;

GST_START_TEST(test_disable_then_scanout) {
  Fixture f("keepalive-ms=50");
  std::string error;
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 1), &error));
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  fail_unless(f.pipe->count_samples(300) >= 3, "keepalive should repeat every 50 ms");
  /* Repeats of an unchanged screen copy nothing (once a buffer cycles). */
  uint64_t out_before = f.pipe->stat("bytes-out");
  fail_unless(f.pipe->count_samples(300) >= 3);
  fail_unless_equals_uint64(f.pipe->stat("bytes-out"), out_before);
  fail_unless(f.qemu->disable(&error));
  f.pipe->count_samples(100); /* drain what was in flight */
  fail_unless_equals_int(f.pipe->count_samples(400), 0);
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 3), &error));
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, 16, 16, 3);
  gst_sample_unref(s);
  fail_unless(f.pipe->stat("keepalive-frames") >= 3);
}
GST_END_TEST;

GST_START_TEST(test_keepalive_off_and_coalescing) {
  Fixture f("keepalive-ms=0 max-framerate=10/1");
  std::string error;
  fail_unless(f.qemu->scanout(64, 64, 256, kXRGB, bgrx(64, 64, 1), &error));
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  fail_unless_equals_int(f.pipe->count_samples(300), 0);
  /* 40 updates as fast as possible: at 10 fps they merge, none is lost. */
  int64_t t0 = g_get_monotonic_time();
  for (int i = 0; i < 40; i++)
    fail_unless(f.qemu->update(i, i, 8, 8, 32, kXRGB, bgrx(8, 8, 200 + i), &error));
  int64_t sent_us = g_get_monotonic_time() - t0;
  GstSample *last = nullptr;
  int n = 0;
  while (GstSample *x = f.pipe->pull(400)) {
    if (last)
      gst_sample_unref(last);
    last = x;
    n++;
  }
  fail_unless(last != nullptr);
  /* At most one frame per 100 ms of sending, plus the trailing one. */
  fail_unless(n <= int(sent_us / 100000) + 2, "%d frames for %" G_GINT64_FORMAT " us", n, sent_us);
  /* The last update is on top, and the first one's uncovered corner too. */
  assert_pixels(last, 39, 39, 8, 8, 239, 39, 39);
  Rgb c = testsupport::pixel_at(last, 0, 0);
  Rgb want = expected_rgb(0, 0, 200);
  fail_unless(c.r == want.r && c.g == want.g && c.b == want.b);
  gst_sample_unref(last);
}
GST_END_TEST;

GST_START_TEST(test_listener_dropped_gives_eos) {
  Fixture f;
  std::string error;
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 1), &error));
  GstSample *s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  int64_t t0 = g_get_monotonic_time();
  f.qemu->drop_listener();
  fail_unless(f.pipe->wait_eos(1000), "no EOS within 1 s");
  GST_INFO("EOS after %" G_GINT64_FORMAT " us", g_get_monotonic_time() - t0);
}
GST_END_TEST;

GST_START_TEST(test_reconnect_resumes_with_new_caps) {
  Fixture f("keepalive-ms=0 reconnect=true");
  std::string error;
  fail_unless(f.qemu->scanout(16, 16, 64, kXRGB, bgrx(16, 16, 1), &error));
  GstSample *s = f.pipe->pull_size(16, 16, 5000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
  /* QEMU goes away and comes back, on the same QMP path, with another size. */
  f.qemu.reset();
  fail_if(f.pipe->wait_eos(500));
  FakeQemuOptions opts;
  f.qemu = FakeQemu::start_p2p(f.qmp, opts, &error);
  fail_unless(f.qemu != nullptr, "%s", error.c_str());
  fail_unless(f.qemu->wait_for_listener(5000), "did not reconnect");
  fail_unless(f.qemu->scanout(24, 8, 96, kXRGB, bgrx(24, 8, 50), &error), "%s", error.c_str());
  s = f.pipe->pull_size(24, 8, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, 24, 8, 50);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_console_errors) {
  {
    FakeQemuOptions opts;
    opts.console_ids = {0, 1};
    Fixture f("console=3", opts, false);
    std::string msg;
    fail_unless(f.pipe->wait_error(5000, &msg));
    fail_unless(strstr(msg.c_str(), "no console 3") && strstr(msg.c_str(), "0, 1"), "%s", msg.c_str());
  }
  {
    FakeQemuOptions opts;
    opts.console_type = "Text";
    Fixture f("", opts, false);
    std::string msg;
    fail_unless(f.pipe->wait_error(5000, &msg));
    fail_unless(strstr(msg.c_str(), "Text") != nullptr, "%s", msg.c_str());
  }
  {
    SrcPipeline pipe("qemudbussrc qmp=/nonexistent/qmp.sock");
    pipe.play();
    std::string msg;
    fail_unless(pipe.wait_error(5000, &msg));
    fail_unless(strstr(msg.c_str(), "/nonexistent/qmp.sock") != nullptr, "%s", msg.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_refused_caps_say_what_to_do) {
  /* Downstream that only takes another size: a negotiation error that names the fix. */
  Fixture f("keepalive-ms=0", FakeQemuOptions(), true, "! video/x-raw,width=4000");
  std::string error;
  fail_unless(f.qemu->scanout(8, 8, 32, kXRGB, bgrx(8, 8, 0), &error));
  std::string msg, debug;
  fail_unless(f.pipe->wait_error(5000, &msg, &debug));
  fail_unless(strstr(msg.c_str(), "does not accept") != nullptr, "%s", msg.c_str());
  fail_unless(strstr(debug.c_str(), "videoconvert") != nullptr, "%s", debug.c_str());
}
GST_END_TEST;

GST_START_TEST(test_properties) {
  GstElement *src = gst_element_factory_make("qemudbussrc", nullptr);
  fail_unless(src != nullptr);
  gchar *address, *vm, *qmp;
  guint console, keepalive;
  gint fn, fd;
  gboolean reconnect;
  GValue rate = G_VALUE_INIT;
  g_value_init(&rate, GST_TYPE_FRACTION);
  g_object_get_property(G_OBJECT(src), "max-framerate", &rate);
  fn = gst_value_get_fraction_numerator(&rate);
  fd = gst_value_get_fraction_denominator(&rate);
  g_value_unset(&rate);
  g_object_get(src, "address", &address, "vm", &vm, "qmp", &qmp, "console", &console,
               "keepalive-ms", &keepalive, "reconnect", &reconnect, nullptr);
  fail_unless(address == nullptr && vm == nullptr && qmp == nullptr);
  fail_unless_equals_int(console, 0);
  fail_unless_equals_int(keepalive, 1000);
  fail_unless(fn == 60 && fd == 1);
  fail_if(reconnect);
  GstElementFactory *factory = gst_element_get_factory(src);
  fail_unless_equals_string(gst_element_factory_get_klass(factory), "Source/Video");
  gst_object_unref(src);
}
GST_END_TEST;

GST_START_TEST(test_docs_cover_every_property) {
  /* docs/qemudbussrc.md documents every property the element has. */
  bool skipped = false;
  std::string problem = testsupport::undocumented_property("qemudbussrc", "qemudbussrc.md", &skipped);
  fail_unless(problem.empty(), "%s", problem.c_str());
  if (skipped)
    GST_INFO("VMD_DOCS_DIR not set; skipped");
}
GST_END_TEST;

static Suite *qemudbussrc_suite() {
  Suite *s = suite_create("qemudbussrc");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_properties);
  tcase_add_test(tc, test_docs_cover_every_property);
  tcase_add_test(tc, test_listener_contract);
  tcase_add_test(tc, test_p2p_objects_exported_late);
  tcase_add_test(tc, test_placeholder_surface_skipped);
  tcase_add_test(tc, test_scanout_and_update_exact);
  tcase_add_test(tc, test_resolution_and_format_changes);
  tcase_add_test(tc, test_scanout_map_path);
  tcase_add_test(tc, test_malformed_messages_keep_streaming);
  tcase_add_test(tc, test_unknown_format_is_an_error);
  tcase_add_test(tc, test_stop_releases_the_surface);
  tcase_add_test(tc, test_downstream_writes_do_not_come_back);
  tcase_add_test(tc, test_disable_then_scanout);
  tcase_add_test(tc, test_keepalive_off_and_coalescing);
  tcase_add_test(tc, test_listener_dropped_gives_eos);
  tcase_add_test(tc, test_reconnect_resumes_with_new_caps);
  tcase_add_test(tc, test_console_errors);
  tcase_add_test(tc, test_refused_caps_say_what_to_do);
  return s;
}

GST_CHECK_MAIN(qemudbussrc);
