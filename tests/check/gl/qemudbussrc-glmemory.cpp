/* qemudbussrc's video/x-raw(memory:GLMemory) output (ext/qemu/gl-output.*,
 * gstqemudbussrc-gl.cpp) on Mesa 25's llvmpipe, against the scripted QEMU:
 * a LINEAR memfd standing in for a DMA-BUF goes through GStreamer's GL
 * context into GLMemory, gldownload brings it back for exact pixel checks
 * (whole image, a damaged sub-rectangle, a bottom-up buffer, a flip to a
 * second buffer), glimagesink takes the GLMemory, and system-memory caps
 * downstream still get system memory.
 *
 * Skips (77) without the Mesa 25 prefix (VMD_MESA_PREFIX) or without
 * gldownload (the gstreamer1.0-gl package). */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fake-qemu.h"
#include "p2p-fixture.h"
#include "src-pipeline.h"
#include "tiling-reference.h"

#include <gst/check/gstcheck.h>

using testsupport::assert_pixels;
using testsupport::bgrx;
using Fixture = testsupport::P2pFixture;

namespace {

constexpr uint32_t kXR24 = 0x34325258;
constexpr uint64_t kLinear = 0;
constexpr int kW = 61, kH = 37;
constexpr uint32_t kStride = kW * 4 + 12;

const char kGlTail[] =
    "! capsfilter caps=\"video/x-raw(memory:GLMemory)\" ! gldownload ! capsfilter caps=video/x-raw";

int memfd_holding(const std::vector<uint8_t> &bytes) {
  /* Sealed against shrinking, as a DMA-BUF's size is fixed: EGL imports it. */
  int fd = memfd_create("fake-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  fail_unless(fd >= 0);
  fail_unless(ftruncate(fd, off_t(bytes.size())) == 0);
  fail_unless(pwrite(fd, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size()));
  fail_unless(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
  return fd;
}

std::vector<uint8_t> linear_image(int seed, bool bottom_up = false) {
  std::vector<uint8_t> img = bgrx(kW, kH, seed);
  return reftile::tile_image(vmd::Tiling::Linear, img.data(), size_t(kW) * 4, kW, kH, 4, kStride,
                             bottom_up);
}

/* The caps on qemudbussrc's src pad ("" before any). */
std::string src_caps(testsupport::SrcPipeline &pipe) {
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipe.pipeline()), "src");
  fail_unless(src != nullptr);
  GstPad *pad = gst_element_get_static_pad(src, "src");
  GstCaps *caps = gst_pad_get_current_caps(pad);
  std::string text;
  if (caps) {
    gchar *s = gst_caps_to_string(caps);
    text = s;
    g_free(s);
    gst_caps_unref(caps);
  }
  gst_object_unref(pad);
  gst_object_unref(src);
  return text;
}

std::string sample_format(GstSample *s) {
  std::string format;
  int w = 0, h = 0;
  fail_unless(testsupport::sample_size(s, &w, &h, &format));
  return format;
}

}  // namespace

GST_START_TEST(test_glmemory_pixels) {
  Fixture f("keepalive-ms=0 detile=gl name=src", fakeqemu::FakeQemuOptions(), true, kGlTail);
  std::string error;
  int fd = memfd_holding(linear_image(3));
  fail_unless(f.qemu->scanout_dmabuf(fd, kW, kH, kStride, kXR24, kLinear, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, kW, kH, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(kW, kH, 10000);
  fail_unless(s != nullptr);
  std::string caps = src_caps(*f.pipe);
  fail_unless(caps.find("memory:GLMemory") != std::string::npos, "caps %s", caps.c_str());
  fail_unless(caps.find("RGBA") != std::string::npos, "caps %s", caps.c_str());
  fail_unless(sample_format(s) == "RGBA");
  assert_pixels(s, 0, 0, kW, kH, 3);
  gst_sample_unref(s);

  /* The guest redraws everything, says only 17x9 at 5,3 changed: exactly
   * that rectangle changes. */
  std::vector<uint8_t> patch = linear_image(77);
  fail_unless(pwrite(fd, patch.data(), patch.size(), 0) == ssize_t(patch.size()));
  fail_unless(f.qemu->update_dmabuf(5, 3, 17, 9, &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 5, 3, 17, 9, 77);
  assert_pixels(s, 0, 0, kW, 3, 3);
  assert_pixels(s, 0, 12, kW, kH - 12, 3);
  assert_pixels(s, 0, 3, 5, 9, 3);
  assert_pixels(s, 22, 3, kW - 22, 9, 3);
  gst_sample_unref(s);
  close(fd);

  /* A second buffer of the same size, stored bottom-up (y0_top): still
   * GLMemory, rows the right way up. */
  fd = memfd_holding(linear_image(9, true));
  fail_unless(f.qemu->scanout_dmabuf(fd, kW, kH, kStride, kXR24, kLinear, true, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, kW, kH, &error), "%s", error.c_str());
  s = f.pipe->pull(5000);
  fail_unless(s != nullptr);
  assert_pixels(s, 0, 0, kW, kH, 9);
  gst_sample_unref(s);
  caps = src_caps(*f.pipe);
  fail_unless(caps.find("memory:GLMemory") != std::string::npos, "caps %s", caps.c_str());
  close(fd);
}
GST_END_TEST;

/* qemudbussrc ! video/x-raw(memory:GLMemory) ! glimagesink, with a branch
 * downloaded for the checks. */
GST_START_TEST(test_glimagesink) {
  Fixture f("keepalive-ms=0 detile=gl name=src", fakeqemu::FakeQemuOptions(), true,
            "! capsfilter caps=\"video/x-raw(memory:GLMemory)\" ! tee name=t "
            "t. ! queue ! glimagesink sync=false "
            "t. ! queue ! gldownload ! capsfilter caps=video/x-raw");
  std::string error;
  int fd = memfd_holding(linear_image(5));
  fail_unless(f.qemu->scanout_dmabuf(fd, kW, kH, kStride, kXR24, kLinear, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, kW, kH, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(kW, kH, 10000);
  fail_unless(s != nullptr);
  std::string caps = src_caps(*f.pipe);
  fail_unless(caps.find("memory:GLMemory") != std::string::npos, "caps %s", caps.c_str());
  assert_pixels(s, 0, 0, kW, kH, 5);
  gst_sample_unref(s);
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_system_memory_caps_stay) {
  Fixture f("keepalive-ms=0 detile=gl name=src", fakeqemu::FakeQemuOptions(), true,
            "! capsfilter caps=video/x-raw");
  std::string error;
  int fd = memfd_holding(linear_image(3));
  fail_unless(f.qemu->scanout_dmabuf(fd, kW, kH, kStride, kXR24, kLinear, false, &error), "%s",
              error.c_str());
  fail_unless(f.qemu->update_dmabuf(0, 0, kW, kH, &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(kW, kH, 10000);
  fail_unless(s != nullptr);
  std::string caps = src_caps(*f.pipe);
  fail_unless(caps.find("memory:GLMemory") == std::string::npos, "caps %s", caps.c_str());
  fail_unless(sample_format(s) == "BGRx");
  assert_pixels(s, 0, 0, kW, kH, 3);
  gst_sample_unref(s);
  close(fd);
}
GST_END_TEST;

static Suite *qemudbussrc_glmemory_suite() {
  Suite *s = suite_create("qemudbussrc-glmemory");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_glmemory_pixels);
  tcase_add_test(tc, test_glimagesink);
  tcase_add_test(tc, test_system_memory_caps_stay);
  return s;
}

int main(int argc, char **argv) {
  const char *prefix = g_getenv("VMD_MESA_PREFIX");
  if (!prefix || !g_file_test(prefix, G_FILE_TEST_IS_DIR)) {
    printf("SKIP: no Mesa 25 prefix at %s (run scripts/install-mesa-prefix.sh)\n",
           prefix ? prefix : "(VMD_MESA_PREFIX unset)");
    return 77;
  }
  gst_check_init(&argc, &argv);
  GstElementFactory *download = gst_element_factory_find("gldownload");
  if (!download) {
    printf("SKIP: no gldownload (GStreamer's GL plugins: apt-get install gstreamer1.0-gl)\n");
    return 77;
  }
  gst_object_unref(download);
  Suite *s = qemudbussrc_glmemory_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
