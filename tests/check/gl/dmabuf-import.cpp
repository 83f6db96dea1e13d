/* gl suite: EglDmabufReader on Mesa's llvmpipe (surfaceless platform).
 *
 * VMD_GL_MESA=25: run with Mesa 25 from scripts/install-mesa-prefix.sh's
 * prefix (tests/check/meson.build sets LD_LIBRARY_PATH,
 * __EGL_VENDOR_LIBRARY_FILENAMES and LIBGL_DRIVERS_PATH): a memfd imports as
 * a LINEAR dma-buf for real, and every read is checked byte for byte.
 * VMD_GL_MESA=system: Debian 12's Mesa 22.3, which has no dma-buf import:
 * open() must say so (the CPU fallback's trigger).
 */
#include "dmabuf-import.h"
#include "dmabuf-test-image.h"

#include <epoxy/gl.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

using vmd_test::TestImage;

namespace {

constexpr uint32_t kXR24 = 0x34325258, kAR24 = 0x34325241, kXB24 = 0x34324258,
                   kAB24 = 0x34324241;

std::shared_ptr<vmd::EglDevice> surfaceless() {
  std::string why;
  auto device = vmd::EglDevice::open_one("", &why);
  fail_unless(device != nullptr, "surfaceless EGL: %s", why.c_str());
  return device;
}

std::unique_ptr<vmd::DmabufReader> open_reader(const TestImage &t, GstVideoFormat host,
                                               std::string *why) {
  std::vector<vmd::UniqueFd> fds;
  fds.push_back(vmd_test::make_memfd(t.bytes));
  fail_unless(bool(fds[0]));
  return vmd::EglDmabufReader::open(surfaceless(), t.layout, std::move(fds), host, why);
}

/* Reads r into a visible-sized destination with padded rows and checks
 * every byte: inside r, dst byte i = stored byte perm[i]; elsewhere (other
 * pixels, row padding) the fill is untouched. */
void check_read(vmd::DmabufReader &reader, const TestImage &t, const vmd::Rect &r,
                const int perm[4]) {
  const vmd::Rect &v = t.layout.visible;
  const size_t stride = size_t(v.w) * 4 + 12;
  std::vector<uint8_t> dst(stride * v.h, 0x55);
  std::string why;
  fail_unless(reader.read(r, dst.data(), stride, &why), "read: %s", why.c_str());
  fail_unless(eglGetCurrentContext() == EGL_NO_CONTEXT, "a context was left current");
  for (uint32_t y = 0; y < v.h; y++) {
    for (size_t byte = 0; byte < stride; byte++) {
      const uint32_t x = uint32_t(byte / 4), c = uint32_t(byte % 4);
      const bool inside = x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
      const uint8_t want = inside ? vmd_test::stored_pixel(t, x, y)[perm[c]] : 0x55;
      const uint8_t got = dst[y * stride + byte];
      if (got != want)
        fail("%ux%u rect (%u,%u %ux%u): byte %u of pixel (%u,%u) is 0x%02x, want 0x%02x", v.w,
             v.h, r.x, r.y, r.w, r.h, c, x, y, got, want);
    }
  }
}

const int kSame[4] = {0, 1, 2, 3};
const int kSwapRB[4] = {2, 1, 0, 3};

bool gl_clean(vmd::EglDevice &device) {
  vmd::EglDevice::Current current(device);
  return current.ok() && glGetError() == GL_NO_ERROR;
}

}  // namespace

GST_START_TEST(test_device) {
  auto device = surfaceless();
  GST_INFO("%s, %s", device->describe().c_str(), device->gl_version().c_str());
  fail_unless_equals_string(device->describe().c_str(),
                            "EGL on the surfaceless platform (llvmpipe)");
  fail_unless(device->gl_version().find("Mesa 25") != std::string::npos,
              "not Mesa 25: %s (is the prefix's environment set?)", device->gl_version().c_str());
  fail_unless(device->has_dmabuf_import());
  fail_unless(device->has_dmabuf_modifiers());
  fail_unless(eglGetCurrentContext() == EGL_NO_CONTEXT);
  std::string why;
  auto automatic = vmd::EglDevice::open("", &why);
  fail_unless(automatic != nullptr, "%s", why.c_str());
  fail_unless(automatic->has_dmabuf_import());
}
GST_END_TEST;

/* Each fourcc into its host surface format: the read-back bytes are the
 * stored bytes, padding byte included. */
GST_START_TEST(test_formats_exact) {
  const struct {
    uint32_t fourcc;
    GstVideoFormat host;
  } pairs[] = {{kXR24, GST_VIDEO_FORMAT_BGRx},
               {kAR24, GST_VIDEO_FORMAT_BGRA},
               {kXB24, GST_VIDEO_FORMAT_RGBx},
               {kAB24, GST_VIDEO_FORMAT_RGBA}};
  const uint32_t sizes[][3] = {{37, 23, 20}, {1366, 768, 64}}; /* w, h, stride padding */
  for (const auto &p : pairs) {
    for (const auto &s : sizes) {
      TestImage t = vmd_test::make_image(p.fourcc, s[0], s[1], s[2], 4096);
      std::string why;
      auto reader = open_reader(t, p.host, &why);
      fail_unless(reader != nullptr, "open: %s", why.c_str());
      check_read(*reader, t, vmd::Rect{0, 0, s[0], s[1]}, kSame);
    }
  }
}
GST_END_TEST;

/* XR24 into an RGBx surface: R and B change places (the shader's swizzle). */
GST_START_TEST(test_format_converted) {
  TestImage t = vmd_test::make_image(kXR24, 37, 23, 8, 256);
  std::string why;
  auto reader = open_reader(t, GST_VIDEO_FORMAT_RGBx, &why);
  fail_unless(reader != nullptr, "open: %s", why.c_str());
  check_read(*reader, t, vmd::Rect{0, 0, 37, 23}, kSwapRB);
}
GST_END_TEST;

GST_START_TEST(test_subrects) {
  for (bool y0_top : {false, true}) {
    TestImage t = vmd_test::make_image(kXR24, 37, 23, 20, 4096, {}, y0_top);
    std::string why;
    auto reader = open_reader(t, GST_VIDEO_FORMAT_BGRx, &why);
    fail_unless(reader != nullptr, "open: %s", why.c_str());
    const vmd::Rect rects[] = {{0, 0, 37, 23}, {1, 2, 5, 7},  {36, 22, 1, 1},
                               {0, 0, 37, 1},  {0, 22, 37, 1}, {10, 3, 17, 19}};
    for (const vmd::Rect &r : rects)
      check_read(*reader, t, r, kSame);
  }
}
GST_END_TEST;

/* The visible rectangle inside a larger backing, both row orders. */
GST_START_TEST(test_visible_in_backing) {
  for (bool y0_top : {false, true}) {
    TestImage t = vmd_test::make_image(kAB24, 64, 40, 4, 512, vmd::Rect{5, 3, 37, 23}, y0_top);
    std::string why;
    auto reader = open_reader(t, GST_VIDEO_FORMAT_RGBA, &why);
    fail_unless(reader != nullptr, "open: %s", why.c_str());
    check_read(*reader, t, vmd::Rect{0, 0, 37, 23}, kSame);
    check_read(*reader, t, vmd::Rect{3, 4, 11, 9}, kSame);
  }
}
GST_END_TEST;

/* One import at open(); reads reuse the cached EGLImage, and a memfd
 * written after the import shows through (no copy was taken). */
GST_START_TEST(test_cache_hit) {
  TestImage t = vmd_test::make_image(kXR24, 37, 23, 0, 0);
  std::vector<vmd::UniqueFd> fds;
  fds.push_back(vmd_test::make_memfd(t.bytes));
  const int fd = fds[0].get();
  std::string why;
  auto reader = vmd::EglDmabufReader::open(surfaceless(), t.layout, std::move(fds),
                                           GST_VIDEO_FORMAT_BGRx, &why);
  fail_unless(reader != nullptr, "open: %s", why.c_str());
  auto *egl = dynamic_cast<vmd::EglDmabufReader *>(reader.get());
  fail_unless(egl != nullptr);
  fail_unless_equals_int(egl->imports(), 1);
  check_read(*reader, t, vmd::Rect{0, 0, 37, 23}, kSame);
  for (uint8_t &b : t.bytes)
    b = uint8_t(b ^ 0x5a);
  fail_unless(pwrite(fd, t.bytes.data(), t.bytes.size(), 0) == ssize_t(t.bytes.size()));
  check_read(*reader, t, vmd::Rect{2, 2, 30, 15}, kSame);
  fail_unless_equals_int(egl->imports(), 1);
}
GST_END_TEST;

GST_START_TEST(test_tiled_refused) {
  TestImage t = vmd_test::make_image(kXR24, 128, 32, 0, 0);
  t.layout.modifier = vmd::kI915FormatModYTiled;
  std::string why;
  auto reader = open_reader(t, GST_VIDEO_FORMAT_BGRx, &why);
  fail_unless(reader == nullptr);
  GST_INFO("refused: %s", why.c_str());
  fail_unless(why.find("XR24") != std::string::npos, "%s", why.c_str());
  fail_unless(why.find("0x0100000000000002") != std::string::npos, "%s", why.c_str());
  fail_unless(why.find("EGL_BAD_MATCH") != std::string::npos, "%s", why.c_str());
}
GST_END_TEST;

/* Short fds are refused before the import (the driver would not notice);
 * a pipe has no size at all; an fd that shrinks after open fails the read. */
GST_START_TEST(test_short_fd_refused) {
  TestImage t = vmd_test::make_image(kXR24, 37, 23, 20, 4096);
  std::string why;
  TestImage shorter = t;
  shorter.bytes.resize(t.bytes.size() - 1);
  fail_unless(open_reader(shorter, GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  fail_unless(why.find("needs 7960 bytes") != std::string::npos, "%s", why.c_str()); /* 4096 + 168 * 23 */
  fail_unless(why.find("its fd has " + std::to_string(shorter.bytes.size())) != std::string::npos,
              "%s", why.c_str());

  int p[2];
  fail_unless(pipe(p) == 0);
  close(p[1]);
  std::vector<vmd::UniqueFd> fds;
  fds.emplace_back(p[0]);
  fail_unless(vmd::EglDmabufReader::open(surfaceless(), t.layout, std::move(fds),
                                         GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  fail_unless(why.find("not a dma-buf") != std::string::npos, "%s", why.c_str());

  /* A memfd that can shrink (QEMU's are not sealed) could SIGBUS inside the
   * driver's mapping: refused, so the CPU reader (pread) takes it. */
  fds.clear();
  vmd::UniqueFd loose(memfd_create("test-dmabuf", MFD_CLOEXEC));
  fail_unless(pwrite(loose.get(), t.bytes.data(), t.bytes.size(), 0) == ssize_t(t.bytes.size()));
  fds.push_back(std::move(loose));
  fail_unless(vmd::EglDmabufReader::open(surfaceless(), t.layout, std::move(fds),
                                         GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  fail_unless(why.find("can shrink") != std::string::npos, "%s", why.c_str());
}
GST_END_TEST;

/* Bad layouts and formats outside the table are refused with a reason. */
GST_START_TEST(test_bad_input_refused) {
  TestImage t = vmd_test::make_image(kXR24, 37, 23, 0, 0);
  std::string why;
  fail_unless(open_reader(t, GST_VIDEO_FORMAT_NV12, &why) == nullptr);
  fail_unless(why.find("no channel order for XR24 into NV12") != std::string::npos, "%s",
              why.c_str());
  TestImage outside = t;
  outside.layout.visible = vmd::Rect{1, 0, 37, 23};
  fail_unless(open_reader(outside, GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  TestImage narrow = t;
  narrow.layout.planes[0].stride = 37 * 4 - 4;
  fail_unless(open_reader(narrow, GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  fail_unless(why.find("below width * 4") != std::string::npos, "%s", why.c_str());
  auto reader = open_reader(t, GST_VIDEO_FORMAT_BGRx, &why);
  fail_unless(reader != nullptr, "open: %s", why.c_str());
  std::vector<uint8_t> dst(37 * 4 * 23);
  fail_unless(!reader->read(vmd::Rect{30, 0, 8, 1}, dst.data(), 37 * 4, &why));
}
GST_END_TEST;

/* After opens, reads and a refusal, the context has no GL error pending. */
GST_START_TEST(test_gl_clean) {
  auto device = surfaceless();
  TestImage t = vmd_test::make_image(kAR24, 37, 23, 20, 4096, {}, true);
  std::vector<vmd::UniqueFd> fds;
  fds.push_back(vmd_test::make_memfd(t.bytes));
  std::string why;
  auto reader = vmd::EglDmabufReader::open(device, t.layout, std::move(fds),
                                           GST_VIDEO_FORMAT_BGRA, &why);
  fail_unless(reader != nullptr, "open: %s", why.c_str());
  check_read(*reader, t, vmd::Rect{4, 5, 6, 7}, kSame);
  fail_unless(gl_clean(*device));
  TestImage tiled = t;
  tiled.layout.modifier = vmd::kI915FormatModXTiled;
  fds.clear();
  fds.push_back(vmd_test::make_memfd(tiled.bytes));
  fail_unless(vmd::EglDmabufReader::open(device, tiled.layout, std::move(fds),
                                         GST_VIDEO_FORMAT_BGRA, &why) == nullptr);
  fail_unless(gl_clean(*device));
  reader.reset();
  fail_unless(gl_clean(*device));
}
GST_END_TEST;

/* Mesa 22.3: the device opens, import is not there, open() says so. */
GST_START_TEST(test_no_import_on_system_mesa) {
  auto device = surfaceless();
  GST_INFO("%s, %s", device->describe().c_str(), device->gl_version().c_str());
  fail_unless(!device->has_dmabuf_import(), "%s has dma-buf import",
              device->gl_version().c_str());
  TestImage t = vmd_test::make_image(kXR24, 37, 23, 0, 0);
  std::string why;
  fail_unless(open_reader(t, GST_VIDEO_FORMAT_BGRx, &why) == nullptr);
  fail_unless(why.find("dma-buf import unavailable") != std::string::npos, "%s", why.c_str());
  fail_unless(why.find("EGL on the surfaceless platform (llvmpipe)") != std::string::npos, "%s",
              why.c_str());
}
GST_END_TEST;

static Suite *dmabuf_import_suite(bool mesa25) {
  Suite *s = suite_create("dmabuf-import");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  if (!mesa25) {
    tcase_add_test(tc, test_no_import_on_system_mesa);
    return s;
  }
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_device);
  tcase_add_test(tc, test_formats_exact);
  tcase_add_test(tc, test_format_converted);
  tcase_add_test(tc, test_subrects);
  tcase_add_test(tc, test_visible_in_backing);
  tcase_add_test(tc, test_cache_hit);
  tcase_add_test(tc, test_tiled_refused);
  tcase_add_test(tc, test_short_fd_refused);
  tcase_add_test(tc, test_bad_input_refused);
  tcase_add_test(tc, test_gl_clean);
  return s;
}

int main(int argc, char **argv) {
  const char *mode = g_getenv("VMD_GL_MESA");
  const bool mesa25 = mode && strcmp(mode, "25") == 0;
  if (mesa25) {
    const char *vendor = g_getenv("__EGL_VENDOR_LIBRARY_FILENAMES");
    struct stat st;
    if (!vendor || stat(vendor, &st) != 0) {
      g_print("SKIP: Mesa 25 is not installed (%s missing; run scripts/install-mesa-prefix.sh)\n",
              vendor ? vendor : "__EGL_VENDOR_LIBRARY_FILENAMES");
      return 77;
    }
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(dmabuf_import_suite(mesa25), "dmabuf-import", __FILE__);
}
