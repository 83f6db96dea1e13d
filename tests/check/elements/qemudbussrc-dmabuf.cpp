/* qemudbussrc with QEMU's gl=on calls, against a scripted QEMU
 * (tests/check/support/fake-qemu): ScanoutDMABUF / UpdateDMABUF /
 * ScanoutDMABUF2 with memfds standing in for DMA-BUFs, laid out linear,
 * Intel X- and Y-tiled (tiling-reference.h builds them from the layout
 * definitions), bottom-up, and hostile. Checks exact pixels, the
 * qemudbussrc-path message, the acknowledgement counters.
 *
 * VMD_EXPECT_EGL=1 (the gl suite, with Mesa 25's dma-buf import): LINEAR
 * buffers must then go through EGL under detile=gl. */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fake-qemu.h"
#include "p2p-fixture.h"
#include "src-pipeline.h"
#include "tiling-reference.h"

#include <gst/check/gstcheck.h>

using fakeqemu::FakeQemu;
using vmd::Tiling;
using testsupport::assert_pixels;
using testsupport::bgrx;
using Fixture = testsupport::P2pFixture;

namespace {

constexpr uint32_t kXR24 = 0x34325258; /* DRM XR24: BGRx in memory */
constexpr uint32_t kXB24 = 0x34324258; /* DRM XB24: RGBx in memory */
constexpr uint64_t kLinear = 0, kXTiled = 0x0100000000000001ULL,
                   kYTiled = 0x0100000000000002ULL;

/* A memfd standing in for a DMA-BUF. sealed: against shrinking, as a real
 * DMA-BUF's size is fixed (the CPU reader maps it, EGL imports it); not
 * sealed, like QEMU's own memfds (the CPU reader uses pread, EGL refuses). */
int memfd_holding(const std::vector<uint8_t> &bytes, size_t offset = 0, bool sealed = true) {
  int fd = memfd_create("fake-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  fail_unless(fd >= 0);
  fail_unless(ftruncate(fd, off_t(offset + bytes.size())) == 0);
  fail_unless(pwrite(fd, bytes.data(), bytes.size(), off_t(offset)) == ssize_t(bytes.size()));
  if (sealed)
    fail_unless(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
  return fd;
}

/* A w x h test image (p2p-fixture's pattern) laid out as `tiling`. */
std::vector<uint8_t> tiled_image(Tiling tiling, int w, int h, int seed, uint32_t stride,
                                 bool bottom_up = false) {
  std::vector<uint8_t> img = bgrx(w, h, seed);
  return reftile::tile_image(tiling, img.data(), size_t(w) * 4, w, h, 4, stride, bottom_up);
}

/* The newest qemudbussrc-path message's text, or "" after timeout_ms. */
std::string wait_path(testsupport::SrcPipeline &pipe, int timeout_ms) {
  GstBus *bus = gst_element_get_bus(pipe.pipeline());
  std::string path;
  gint64 end = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (path.empty() && g_get_monotonic_time() < end) {
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 50 * GST_MSECOND, GST_MESSAGE_ELEMENT);
    if (!m)
      continue;
    const GstStructure *st = gst_message_get_structure(m);
    if (st && gst_structure_has_name(st, "qemudbussrc-path"))
      path = gst_structure_get_string(st, "path");
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return path;
}

bool expect_egl() {
  const char *v = g_getenv("VMD_EXPECT_EGL");
  return v && g_str_equal(v, "1");
}

/* Scans out a w x h XR24 image laid out as `tiling`, reads it, checks it. */
void check_scanout(Fixture &f, Tiling tiling, uint64_t modifier, int w, int h,
                   uint32_t stride, const char *want_path) {
  std::string error;
  int fd = memfd_holding(tiled_image(tiling, w, h, 3, stride));
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, stride, kXR24, modifier, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 3);
  gst_sample_unref(s);
  std::string path = wait_path(*f.pipe, 2000);
  fail_unless(path.find(want_path) != std::string::npos, "path \"%s\" lacks \"%s\"",
              path.c_str(), want_path);

  /* The guest draws a patch, then says where: only that is read. */
  std::vector<uint8_t> patch = bgrx(w, h, 77);
  std::vector<uint8_t> plane = reftile::tile_image(tiling, patch.data(), size_t(w) * 4, w, h,
                                                     4, stride);
  fail_unless(pwrite(fd, plane.data(), plane.size(), 0) == ssize_t(plane.size()));
  uint64_t in_before = f.pipe->stat("bytes-in");
  fail_unless(f.qemu->update_dmabuf(5, 3, 17, 9, &error), "%s", error.c_str());
  /* The reply is the guest's acknowledgement: the rectangle was read before
   * it, so what the guest draws right after it must not show. */
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, 17 * 9 * 4);
  std::vector<uint8_t> later = bgrx(w, h, 150);
  plane = reftile::tile_image(tiling, later.data(), size_t(w) * 4, w, h, 4, stride);
  fail_unless(pwrite(fd, plane.data(), plane.size(), 0) == ssize_t(plane.size()));
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 5, 3, 17, 9, 77);
  assert_pixels(s, 0, 12, w, h - 12, 3);
  gst_sample_unref(s);
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, 17 * 9 * 4);
  close(fd);
}

}  // namespace

GST_START_TEST(test_interfaces_offer_dmabuf2) {
  Fixture f;
  bool has = false;
  for (const std::string &i : f.qemu->listener_interfaces())
    has |= i == "org.qemu.Display1.Listener.Unix.ScanoutDMABUF2";
  fail_unless(has);
}
GST_END_TEST;

GST_START_TEST(test_linear_cpu) {
  Fixture f("keepalive-ms=0 detile=cpu");
  check_scanout(f, Tiling::Linear, kLinear, 61, 37, 61 * 4 + 12,
                "dmabuf XR24 0x0000000000000000 61x37 via CPU");
  fail_unless(f.pipe->stat("dmabuf-scanouts") >= 1);
  fail_unless(f.pipe->stat("dmabuf-updates") >= 2);
}
GST_END_TEST;

GST_START_TEST(test_x_tiled) {
  Fixture f("keepalive-ms=0");
  check_scanout(f, Tiling::IntelX, kXTiled, 300, 41, 1536,
                "dmabuf XR24 0x0100000000000001 300x41 via CPU");
}
GST_END_TEST;

GST_START_TEST(test_y_tiled) {
  Fixture f("keepalive-ms=0 detile=cpu");
  check_scanout(f, Tiling::IntelY, kYTiled, 90, 70, 384,
                "dmabuf XR24 0x0100000000000002 90x70 via CPU");
}
GST_END_TEST;

GST_START_TEST(test_linear_auto) {
  /* auto: on a software EGL (llvmpipe, all this machine has) the CPU reads
   * the layouts it knows; the pixels are the same either way. */
  Fixture f("keepalive-ms=0");
  check_scanout(f, Tiling::Linear, kLinear, 64, 48, 256,
                "dmabuf XR24 0x0000000000000000 64x48 via CPU");
}
GST_END_TEST;

GST_START_TEST(test_linear_gl) {
  /* detile=gl: through EGL where it imports (Mesa >= 24 llvmpipe takes a
   * LINEAR memfd; the gl suite's run), else an error (test_detile_gl_...). */
  if (!expect_egl())
    return;
  Fixture f("keepalive-ms=0 detile=gl");
  check_scanout(f, Tiling::Linear, kLinear, 64, 48, 256,
                "dmabuf XR24 0x0000000000000000 64x48 via EGL on the surfaceless platform");
}
GST_END_TEST;

GST_START_TEST(test_bottom_up_and_xb24) {
  Fixture f("keepalive-ms=0 detile=cpu");
  std::string error;
  const int w = 33, h = 21;
  int fd = memfd_holding(tiled_image(Tiling::Linear, w, h, 9, w * 4, true));
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kLinear, true, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error));
  GstSample *s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 9);
  gst_sample_unref(s);
  close(fd);

  /* XB24 is R,G,B,x in memory: the caps say RGBx, the colours stay right. */
  std::vector<uint8_t> rgbx = bgrx(w, h, 4);
  for (size_t i = 0; i < rgbx.size(); i += 4)
    std::swap(rgbx[i], rgbx[i + 2]);
  fd = memfd_holding(rgbx);
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXB24, kLinear, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error));
  s = f.pipe->pull(5000);
  for (int i = 0; s && i < 20; i++) {
    std::string fmt;
    int sw, sh;
    testsupport::sample_size(s, &sw, &sh, &fmt);
    if (fmt == "RGBx")
      break;
    gst_sample_unref(s);
    s = f.pipe->pull(5000);
  }
  fail_unless(s != nullptr);
  std::string fmt;
  int sw, sh;
  testsupport::sample_size(s, &sw, &sh, &fmt);
  fail_unless_equals_string(fmt.c_str(), "RGBx");
  assert_pixels(s, 0, 0, w, h, 4);
  gst_sample_unref(s);
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_dmabuf2_visible_rect) {
  /* QEMU 10.1+: a 40x30 image at 8,4 inside a 64x48 buffer, at an offset. */
  Fixture f("keepalive-ms=0 detile=cpu");
  std::string error;
  const int bw = 64, bh = 48, stride = 512, offset = 4096;
  int fd = memfd_holding(tiled_image(Tiling::IntelX, bw, bh, 6, stride), offset);
  FakeQemu::Dmabuf2 d;
  d.fds = {fd};
  d.x = 8, d.y = 4, d.w = 40, d.h = 30;
  d.offsets = {offset};
  d.strides = {stride};
  d.fourcc = kXR24;
  d.backing_width = bw, d.backing_height = bh;
  d.modifier = kXTiled;
  fail_unless(f.qemu->scanout_dmabuf2(d, &error), "%s", error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, 40, 30, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(40, 30, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, 40, 30, 6, -8, -4);
  gst_sample_unref(s);
  /* More planes than XR24 has, planes without offsets, visible rect outside. */
  d.num_planes = 2;
  d.offsets = {offset, offset};
  d.strides = {stride, stride};
  fail_if(f.qemu->scanout_dmabuf2(d, &error));
  fail_unless(error.find("plane") != std::string::npos, "%s", error.c_str());
  d.num_planes = 1;
  d.offsets = {};
  fail_if(f.qemu->scanout_dmabuf2(d, &error));
  d.offsets = {offset};
  d.x = 30;
  fail_if(f.qemu->scanout_dmabuf2(d, &error));
  fail_unless(error.find("inside") != std::string::npos, "%s", error.c_str());
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_hostile_dmabufs) {
  Fixture f("keepalive-ms=0 detile=cpu");
  std::string error;
  /* Before any ScanoutDMABUF (QEMU failed to export): acknowledged, ignored. */
  fail_unless(f.qemu->update_dmabuf(0, 0, 10, 10, &error), "%s", error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, 10, 10, &error), "%s", error.c_str());

  const int w = 64, h = 40;
  std::vector<uint8_t> img = tiled_image(Tiling::Linear, w, h, 2, w * 4);
  int short_fd = memfd_holding(std::vector<uint8_t>(img.begin(), img.begin() + img.size() / 2));
  fail_if(f.qemu->scanout_dmabuf(short_fd, w, h, w * 4, kXR24, kLinear, false, &error));
  close(short_fd);
  int fd = memfd_holding(img);
  fail_if(f.qemu->scanout_dmabuf(fd, w, h, w * 2, kXR24, kLinear, false, &error));
  fail_unless(error.find("stride") != std::string::npos, "%s", error.c_str());
  fail_if(f.qemu->scanout_dmabuf(fd, w, h, w * 4, 0x3231564e /* NV12 */, kLinear, false, &error));
  fail_unless(error.find("NV12") != std::string::npos, "%s", error.c_str());
  fail_if(f.qemu->scanout_dmabuf(fd, 0, h, w * 4, kXR24, kLinear, false, &error));
  fail_if(f.qemu->scanout_dmabuf(fd, 100000, 100000, 400000, kXR24, kLinear, false, &error));
  fail_if(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kYTiled, false, &error));

  /* A good one streams. */
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kLinear, false, &error), "%s",
              error.c_str());
  GstSample *s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 2);
  gst_sample_unref(s);
  /* A rectangle partly outside is clipped: rows 30..39 only are read. */
  std::vector<uint8_t> next = tiled_image(Tiling::Linear, w, h, 5, w * 4);
  fail_unless(pwrite(fd, next.data(), next.size(), 0) == ssize_t(next.size()));
  uint64_t in_before = f.pipe->stat("bytes-in");
  fail_unless(f.qemu->update_dmabuf(0, 30, w, 80, &error), "%s", error.c_str());
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, uint64_t(w) * 10 * 4);
  fail_unless(f.qemu->update_dmabuf(500, 500, 10, 10, &error), "%s", error.c_str());
  fail_unless_equals_uint64(f.pipe->stat("bytes-in") - in_before, uint64_t(w) * 10 * 4);
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, 30, 2);
  assert_pixels(s, 0, 30, w, 10, 5);
  gst_sample_unref(s);
  fail_unless(f.qemu->update_dmabuf(-5, -5, 1 << 30, 1 << 30, &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 5);
  gst_sample_unref(s);

  /* A refused scanout (another buffer, too short) ends the old one: updates
   * must not read the buffer the guest left, they are ignored until a good
   * scanout comes. */
  int short_b = memfd_holding(std::vector<uint8_t>(64));
  fail_if(f.qemu->scanout_dmabuf(short_b, w, h, w * 4, kXR24, kLinear, false, &error));
  close(short_b);
  uint64_t dmabuf_updates = f.pipe->stat("dmabuf-updates");
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error), "%s", error.c_str());
  fail_unless_equals_uint64(f.pipe->stat("dmabuf-updates"), dmabuf_updates);
  close(fd);
  /* The guest's buffer shrinks under us (an unsealed memfd, as QEMU's own
   * are): no SIGBUS, the update is ignored but still acknowledged, the
   * stream goes on. */
  fd = memfd_holding(img, 0, false);
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kLinear, false, &error), "%s",
              error.c_str());

  fail_unless(ftruncate(fd, 100) == 0);
  uint64_t ignored = f.pipe->stat("ignored");
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error), "%s", error.c_str());
  fail_unless(f.pipe->stat("ignored") > ignored);
  close(fd);
  fd = memfd_holding(tiled_image(Tiling::Linear, w, h, 8, w * 4));
  fail_unless(f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kLinear, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error));
  s = f.pipe->pull(5000);
  for (int i = 0; s && i < 10 && testsupport::pixel_at(s, 0, 0).r != 8; i++) {
    gst_sample_unref(s);
    s = f.pipe->pull(5000);
  }
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, w, h, 8);
  gst_sample_unref(s);
  close(fd);
  std::string warnings = f.pipe->warnings();
  fail_unless(warnings.find("UpdateDMABUF") != std::string::npos, "%s", warnings.c_str());
  /* Every UpdateDMABUF was answered, none near QEMU's 1 s timeout. */
  fail_unless(f.pipe->stat("acks") >= 7, "%" G_GUINT64_FORMAT, f.pipe->stat("acks"));
  fail_unless(f.pipe->stat("ack-max-us") < 500000, "%" G_GUINT64_FORMAT,
              f.pipe->stat("ack-max-us"));
}
GST_END_TEST;

GST_START_TEST(test_unreadable_modifier_is_an_error) {
  /* An AMD modifier with detile=cpu: nothing can read it; say so. */
  Fixture f("keepalive-ms=0 detile=cpu");
  std::string error;
  int fd = memfd_holding(std::vector<uint8_t>(256 * 64 * 4, 0));
  f.qemu->scanout_dmabuf(fd, 256, 64, 1024, kXR24, 0x0200000000000001ULL, false, &error);
  std::string message, debug;
  fail_unless(f.pipe->wait_error(5000, &message, &debug));
  fail_unless(message.find("0x0200000000000001") != std::string::npos, "%s", message.c_str());
  fail_unless(message.find("render-node") != std::string::npos, "%s", message.c_str());
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_detile_gl_without_import) {
  /* detile=gl: EGL or an error that names the setting. */
  Fixture f("keepalive-ms=0 detile=gl");
  std::string error;
  const int w = 16, h = 16;
  int fd = memfd_holding(tiled_image(Tiling::Linear, w, h, 1, w * 4));
  bool ok = f.qemu->scanout_dmabuf(fd, w, h, w * 4, kXR24, kLinear, false, &error);
  if (expect_egl()) {
    fail_unless(ok, "%s", error.c_str());
    fail_unless(f.qemu->update_dmabuf(0, 0, w, h, &error));
    GstSample *s = f.pipe->pull_size(w, h, 5000);
    fail_unless(s != nullptr);
    assert_pixels(s, 0, 0, w, h, 1);
    gst_sample_unref(s);
  } else {
    std::string message, debug;
    fail_unless(f.pipe->wait_error(5000, &message, &debug));
    fail_unless(message.find("detile=gl") != std::string::npos, "%s", message.c_str());
  }
  close(fd);
}
GST_END_TEST;

static Suite *qemudbussrc_dmabuf_suite() {
  Suite *s = suite_create("qemudbussrc-dmabuf");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_interfaces_offer_dmabuf2);
  tcase_add_test(tc, test_linear_cpu);
  tcase_add_test(tc, test_x_tiled);
  tcase_add_test(tc, test_y_tiled);
  tcase_add_test(tc, test_linear_auto);
  tcase_add_test(tc, test_linear_gl);
  tcase_add_test(tc, test_bottom_up_and_xb24);
  tcase_add_test(tc, test_dmabuf2_visible_rect);
  tcase_add_test(tc, test_hostile_dmabufs);
  tcase_add_test(tc, test_unreadable_modifier_is_an_error);
  tcase_add_test(tc, test_detile_gl_without_import);
  return s;
}

int main(int argc, char **argv) {
  /* The gl suite's run needs the Mesa 25 prefix it points at. */
  const char *vendor = g_getenv("__EGL_VENDOR_LIBRARY_FILENAMES");
  if (expect_egl() && (!vendor || !g_file_test(vendor, G_FILE_TEST_EXISTS))) {
    g_print("SKIP: Mesa 25 is not installed at %s (scripts/install-mesa-prefix.sh)\n",
            vendor ? vendor : "(unset)");
    return 77;
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(qemudbussrc_dmabuf_suite(), "qemudbussrc-dmabuf", __FILE__);
}
