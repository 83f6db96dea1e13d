/* Unit: CpuDmabufReader on memfd-backed stand-ins for DMA-BUFs (this machine
 * has no DRM, udmabuf or dma-heaps). A memfd sealed against shrinking is
 * mapped, like a real DMA-BUF; an unsealed one is read with pread. The
 * expected pixels come from the tests' reference tiler
 * (support/tiling-reference.h). */
#include "dmabuf-cpu.h"
#include "tiling-reference.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

using vmd::DmabufLayout;
using vmd::Rect;
using vmd::Tiling;
using vmd::UniqueFd;

namespace {

constexpr uint32_t kXR24 = 0x34325258, kRG16 = 0x36314752;

UniqueFd memfd_with(const std::vector<uint8_t> &bytes, bool seal_shrink) {
  UniqueFd fd(memfd_create("dmabuf-cpu-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  fail_unless(fd.get() >= 0);
  fail_unless(ftruncate(fd.get(), off_t(bytes.size())) == 0);
  fail_unless(pwrite(fd.get(), bytes.data(), bytes.size(), 0) == ssize_t(bytes.size()));
  if (seal_shrink)
    fail_unless(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK) == 0);
  return fd;
}

std::vector<UniqueFd> one_fd(int fd) {
  std::vector<UniqueFd> fds;
  fds.emplace_back(dup(fd));
  return fds;
}

uint64_t modifier_of(Tiling t) {
  return t == Tiling::IntelX ? vmd::kI915FormatModXTiled
         : t == Tiling::IntelY ? vmd::kI915FormatModYTiled
                               : vmd::kDrmFormatModLinear;
}

DmabufLayout layout_of(uint32_t fourcc, Tiling t, uint32_t bw, uint32_t bh, Rect visible,
                       uint32_t offset, uint32_t stride, bool y0_top) {
  DmabufLayout l;
  l.fourcc = fourcc;
  l.modifier = modifier_of(t);
  l.backing_width = bw;
  l.backing_height = bh;
  l.visible = visible;
  l.num_planes = 1;
  l.planes[0].offset = offset;
  l.planes[0].stride = stride;
  l.y0_top = y0_top;
  return l;
}

/* Reads r of the visible image into a padded surface and checks each byte:
 * what reading the backing's visible rows (flipped when y0_top) says, and
 * the canary everywhere else. */
void check_read(vmd::DmabufReader &reader, const DmabufLayout &l, uint32_t bpp, const Rect &r) {
  const size_t dst_stride = size_t(l.visible.w) * bpp + 20;
  std::vector<uint8_t> dst(dst_stride * l.visible.h, 0x5a);
  std::string why;
  fail_unless(reader.read(r, dst.data(), dst_stride, &why), "read: %s", why.c_str());
  for (uint32_t j = 0; j < l.visible.h; j++) {
    for (size_t i = 0; i < dst_stride; i++) {
      const size_t px = i / bpp;
      const bool inside = j >= r.y && j < r.bottom() && px >= r.x && px < r.right() &&
                          i < size_t(l.visible.w) * bpp;
      uint8_t want = 0x5a;
      if (inside) {
        /* y0_top flips inside the visible rectangle (QEMU's egl_fb_blit). */
        size_t y_buf = l.y0_top ? l.visible.y + l.visible.h - 1 - j : l.visible.y + j;
        want = reftile::pattern(size_t(l.visible.x) * bpp + i, y_buf);
      }
      uint8_t got = dst[j * dst_stride + i];
      if (got != want) {
        fail("%s rect %u,%u %ux%u: visible row %u byte %zu is 0x%02x, want 0x%02x",
             reader.describe().c_str(), r.x, r.y, r.w, r.h, j, i, got, want);
        return;
      }
    }
  }
}

/* One backing with a visible rectangle inside it, mapped and pread, top-down
 * and bottom-up, whole and in pieces. */
void check_layout(uint32_t fourcc, uint32_t bpp, Tiling t, uint32_t bw, uint32_t bh,
                  Rect visible, uint32_t offset, uint32_t stride) {
  std::vector<uint8_t> bytes = reftile::tiled_image(t, bw, bh, bpp, stride, offset);
  for (int sealed = 0; sealed < 2; sealed++) {
    UniqueFd fd = memfd_with(bytes, sealed);
    for (int y0_top = 0; y0_top < 2; y0_top++) {
      DmabufLayout l = layout_of(fourcc, t, bw, bh, visible, offset, stride, y0_top);
      std::string why;
      auto reader = vmd::CpuDmabufReader::open(l, one_fd(fd.get()), &why);
      fail_unless(reader != nullptr, "open: %s", why.c_str());
      std::string d = reader->describe();
      const char *want = t == Tiling::Linear   ? "CPU (linear copy"
                         : t == Tiling::IntelX ? "CPU (I915_X_TILED detile"
                                               : "CPU (I915_Y_TILED detile";
      fail_unless(d.find(want) == 0, "%s", d.c_str());
      fail_unless((d.find("pread") != std::string::npos) == !sealed, "%s", d.c_str());
      const uint32_t w = visible.w, h = visible.h;
      const Rect rects[] = {{0, 0, w, h},         {0, 0, 1, 1},
                            {w - 1, h - 1, 1, 1}, {w / 3, h / 4, w / 2 + 1, h / 2 + 1},
                            {1, 0, w - 1, 1},     {0, h - 1, w, 1}};
      for (const Rect &r : rects) {
        if (!r.empty())
          check_read(*reader, l, bpp, r);
      }
    }
  }
}

}  // namespace

GST_START_TEST(test_linear) {
  check_layout(kXR24, 4, Tiling::Linear, 200, 70, {10, 6, 150, 50}, 256, 200 * 4 + 32);
  check_layout(kXR24, 4, Tiling::Linear, 37, 23, {0, 0, 37, 23}, 0, 37 * 4);
  check_layout(kRG16, 2, Tiling::Linear, 37, 23, {1, 2, 33, 20}, 7, 37 * 2 + 2);
}
GST_END_TEST;

GST_START_TEST(test_x_tiled) {
  check_layout(kXR24, 4, Tiling::IntelX, 200, 70, {10, 6, 150, 50}, 4096, 1024);
  check_layout(kXR24, 4, Tiling::IntelX, 1, 1, {0, 0, 1, 1}, 0, 512);
  check_layout(kRG16, 2, Tiling::IntelX, 300, 37, {5, 3, 290, 30}, 100, 1024);
}
GST_END_TEST;

GST_START_TEST(test_y_tiled) {
  check_layout(kXR24, 4, Tiling::IntelY, 200, 70, {10, 6, 150, 50}, 4096, 896);
  check_layout(kXR24, 4, Tiling::IntelY, 37, 23, {0, 0, 37, 23}, 12, 256);
  /* Big enough for the pread path to need two batches. */
  check_layout(kXR24, 4, Tiling::IntelY, 1366, 768, {3, 1, 1360, 765}, 0, 5504);
}
GST_END_TEST;

namespace {

std::string open_refusal(const DmabufLayout &l, std::vector<UniqueFd> fds) {
  std::string why;
  auto reader = vmd::CpuDmabufReader::open(l, std::move(fds), &why);
  fail_unless(reader == nullptr, "accepted");
  fail_if(why.empty());
  GST_INFO("refused: %s", why.c_str());
  return why;
}

void expect_in(const std::string &why, const char *fragment) {
  fail_unless(why.find(fragment) != std::string::npos, "\"%s\" lacks \"%s\"", why.c_str(),
              fragment);
}

/* A valid 64x40 XR24 Y-tiled layout and a memfd of its exact size. */
struct Hostile {
  DmabufLayout l = layout_of(kXR24, Tiling::IntelY, 64, 40, {0, 0, 64, 40}, 0, 256, false);
  UniqueFd fd = memfd_with(reftile::tiled_image(Tiling::IntelY, 64, 40, 4, 256, 0), false);
};

}  // namespace

GST_START_TEST(test_fd_too_short) {
  Hostile h; /* needs 256 x 64 rows = 16384 bytes */
  fail_unless(ftruncate(h.fd.get(), 16383) == 0);
  std::string why = open_refusal(h.l, one_fd(h.fd.get()));
  expect_in(why, "16383 bytes");
  expect_in(why, "needs 16384");
  /* The same at a plane offset. */
  fail_unless(ftruncate(h.fd.get(), 16384) == 0);
  h.l.planes[0].offset = 1;
  why = open_refusal(h.l, one_fd(h.fd.get()));
  expect_in(why, "16384 bytes, the layout needs 16385");
}
GST_END_TEST;

GST_START_TEST(test_truncated_after_open) {
  Hostile h;
  std::string why;
  auto reader = vmd::CpuDmabufReader::open(h.l, one_fd(h.fd.get()), &why);
  fail_unless(reader != nullptr, "%s", why.c_str());
  std::vector<uint8_t> dst(256 * 40);
  fail_unless(reader->read({0, 0, 64, 40}, dst.data(), 256, &why), "%s", why.c_str());
  fail_unless(ftruncate(h.fd.get(), 4096) == 0);
  fail_if(reader->read({0, 0, 64, 40}, dst.data(), 256, &why));
  expect_in(why, "shrank to 4096 bytes");
  fail_if(reader->read({0, 39, 1, 1}, dst.data(), 256, &why));
  /* Grown back, it reads again. */
  fail_unless(ftruncate(h.fd.get(), 16384) == 0);
  fail_unless(reader->read({0, 0, 64, 40}, dst.data(), 256, &why), "%s", why.c_str());
}
GST_END_TEST;

/* A sealed memfd is mapped: nobody can shrink it under the mapping. */
GST_START_TEST(test_sealed_cannot_shrink) {
  UniqueFd fd = memfd_with(reftile::tiled_image(Tiling::IntelY, 64, 40, 4, 256, 0), true);
  DmabufLayout l = layout_of(kXR24, Tiling::IntelY, 64, 40, {0, 0, 64, 40}, 0, 256, false);
  std::string why;
  auto reader = vmd::CpuDmabufReader::open(l, one_fd(fd.get()), &why);
  fail_unless(reader != nullptr, "%s", why.c_str());
  fail_unless(reader->describe() == "CPU (I915_Y_TILED detile)", "%s",
              reader->describe().c_str());
  fail_unless(ftruncate(fd.get(), 4096) != 0 && errno == EPERM);
}
GST_END_TEST;

GST_START_TEST(test_bad_layouts) {
  Hostile h;
  DmabufLayout l = h.l;
  l.planes[0].stride = 128; /* 64 x 4 = 256 bytes a row */
  expect_in(open_refusal(l, one_fd(h.fd.get())), "stride 128 is too small");
  l = h.l;
  l.planes[0].stride = 320;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "not a multiple of the tile width");
  l = h.l;
  l.fourcc = 0x3231564e; /* NV12 */
  expect_in(open_refusal(l, one_fd(h.fd.get())), "fourcc NV12 (0x3231564e)");
  l.fourcc = 0x00000001;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "fourcc 0x00000001");
  l = h.l;
  l.fourcc = 0x30335258; /* XR30: no GStreamer 1.22 format */
  expect_in(open_refusal(l, one_fd(h.fd.get())), "XR30 has no GStreamer format");
  l = h.l;
  l.num_planes = 2;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "2 planes given for XR24, which has 1");
  l.num_planes = 0;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "0 planes");
  l.num_planes = 5;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "5 planes");
  l = h.l;
  l.planes[0].fd_index = 1;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "refers to fd 1 of 1");
  expect_in(open_refusal(h.l, {}), "refers to fd 0 of 0");
  std::vector<UniqueFd> closed(1);
  expect_in(open_refusal(h.l, std::move(closed)), "not open");
  int pipe_fds[2];
  fail_unless(pipe(pipe_fds) == 0);
  UniqueFd pipe_write(pipe_fds[1]);
  std::vector<UniqueFd> pipe_read(1);
  pipe_read[0].reset(pipe_fds[0]);
  expect_in(open_refusal(h.l, std::move(pipe_read)), "cannot tell the size");
}
GST_END_TEST;

GST_START_TEST(test_modifiers_refused) {
  Hostile h;
  DmabufLayout l = h.l;
  l.modifier = 0x0200000000000001ULL;
  std::string why = open_refusal(l, one_fd(h.fd.get()));
  expect_in(why,
            "modifier 0x0200000000000001 (a vendor modifier of AMD) cannot be read on the CPU");
  expect_in(why, "EGL import");
  expect_in(why, "render node");
  l.modifier = 0x0100000000000004ULL;
  expect_in(open_refusal(l, one_fd(h.fd.get())),
            "modifier 0x0100000000000004 (I915_Y_TILED_CCS) cannot");
  l.modifier = 0x0100000000000009ULL;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "(I915_4_TILED)");
  l.modifier = 0xf000000000000000ULL;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "unknown vendor");
  /* INVALID (implicit) reads as linear. */
  UniqueFd lin = memfd_with(reftile::tiled_image(Tiling::Linear, 64, 40, 4, 256, 0), false);
  l = layout_of(kXR24, Tiling::Linear, 64, 40, {0, 0, 64, 40}, 0, 256, false);
  l.modifier = vmd::kDrmFormatModInvalid;
  auto reader = vmd::CpuDmabufReader::open(l, one_fd(lin.get()), &why);
  fail_unless(reader != nullptr, "%s", why.c_str());
  check_read(*reader, l, 4, {0, 0, 64, 40});
}
GST_END_TEST;

GST_START_TEST(test_absurd_sizes) {
  Hostile h;
  DmabufLayout l = h.l;
  l.backing_width = 0;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "buffer size 0x40");
  l.backing_width = 20000;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "buffer size 20000x40 is not between");
  l = h.l;
  l.backing_height = 16385;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "not between");
  l = h.l;
  l.visible = {1, 0, 64, 40};
  expect_in(open_refusal(l, one_fd(h.fd.get())), "not inside the 64x40 buffer");
  l.visible = {10, 10, 0, 5};
  expect_in(open_refusal(l, one_fd(h.fd.get())), "empty");
  l.visible = {0xffffffffu, 0, 2, 40}; /* x + w wraps around */
  expect_in(open_refusal(l, one_fd(h.fd.get())), "not inside");
  l.visible = {0, 0xfffffff0u, 64, 0x20};
  expect_in(open_refusal(l, one_fd(h.fd.get())), "not inside");
  l = h.l;
  l.planes[0].stride = 0xffffff00u;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "too large");
  l = h.l; /* an offset past any fd */
  l.planes[0].offset = 0xfffff000u;
  expect_in(open_refusal(l, one_fd(h.fd.get())), "the layout needs");
  /* Rectangles outside the visible image are refused by read(). */
  std::string why;
  l = h.l;
  l.visible = {8, 8, 32, 16};
  auto reader = vmd::CpuDmabufReader::open(l, one_fd(h.fd.get()), &why);
  fail_unless(reader != nullptr, "%s", why.c_str());
  std::vector<uint8_t> dst(128 * 16);
  const Rect bad[] = {{0, 0, 33, 1}, {0, 16, 1, 1}, {31, 15, 2, 1}, {0, 0, 0, 0},
                      {0xffffffffu, 0, 2, 1}, {0, 0xffffffffu, 1, 2}};
  for (const Rect &r : bad) {
    fail_if(reader->read(r, dst.data(), 128, &why), "%u,%u %ux%u read", r.x, r.y, r.w, r.h);
    expect_in(why, "outside the 32x16 image");
  }
  fail_unless(reader->read({31, 15, 1, 1}, dst.data(), 128, &why), "%s", why.c_str());
}
GST_END_TEST;

static Suite *dmabuf_cpu_suite() {
  Suite *s = suite_create("dmabuf-cpu");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_linear);
  tcase_add_test(tc, test_x_tiled);
  tcase_add_test(tc, test_y_tiled);
  tcase_add_test(tc, test_fd_too_short);
  tcase_add_test(tc, test_truncated_after_open);
  tcase_add_test(tc, test_sealed_cannot_shrink);
  tcase_add_test(tc, test_bad_layouts);
  tcase_add_test(tc, test_modifiers_refused);
  tcase_add_test(tc, test_absurd_sizes);
  return s;
}

GST_CHECK_MAIN(dmabuf_cpu);
