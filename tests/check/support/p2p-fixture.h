/* Test support: qemudbussrc against a scripted QEMU, peer to peer through
 * QMP, and test pictures whose every pixel is known. */
#pragma once

#include "fake-qemu.h"
#include "src-pipeline.h"

#include <gst/check/gstcheck.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace testsupport {

/* Pixel value that depends on position and a seed, exact in 8 bits. */
inline Rgb expected_rgb(int x, int y, int seed) {
  return Rgb{uint8_t(x * 3 + seed), uint8_t(y * 5 + seed), uint8_t((x ^ y) + seed)};
}

inline std::vector<uint8_t> bgrx(int w, int h, int seed, uint32_t stride = 0) {
  if (!stride)
    stride = uint32_t(w) * 4;
  std::vector<uint8_t> d(size_t(stride) * h, 0);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      Rgb c = expected_rgb(x, y, seed);
      uint8_t *p = &d[size_t(y) * stride + x * 4];
      p[0] = c.b, p[1] = c.g, p[2] = c.r, p[3] = 0xff;
    }
  return d;
}

inline void assert_pixels(GstSample *s, int x0, int y0, int w, int h, int seed, int ox = 0, int oy = 0) {
  for (int y = y0; y < y0 + h; y += 3)
    for (int x = x0; x < x0 + w; x += 3) {
      Rgb got = testsupport::pixel_at(s, x, y);
      Rgb want = expected_rgb(x - ox, y - oy, seed);
      fail_unless(got.r == want.r && got.g == want.g && got.b == want.b,
                  "pixel %d,%d is %02x%02x%02x, expected %02x%02x%02x", x, y, got.r, got.g, got.b,
                  want.r, want.g, want.b);
    }
}

struct P2pFixture {
  gchar *dir = nullptr;
  std::string qmp;
  std::unique_ptr<fakeqemu::FakeQemu> qemu;
  std::unique_ptr<SrcPipeline> pipe;

  /* tail: elements between the source and the appsink, e.g. "! videobalance". */
  explicit P2pFixture(const std::string &props = "keepalive-ms=0",
                   const fakeqemu::FakeQemuOptions &opts = fakeqemu::FakeQemuOptions(), bool wait_listener = true,
                   const std::string &tail = "") {
    dir = g_dir_make_tmp("qemudbussrc-XXXXXX", nullptr);
    qmp = std::string(dir) + "/qmp.sock";
    std::string error;
    qemu = fakeqemu::FakeQemu::start_p2p(qmp, opts, &error);
    fail_unless(qemu != nullptr, "%s", error.c_str());
    pipe = std::make_unique<SrcPipeline>("qemudbussrc qmp=" + qmp + " " + props + " " + tail);
    fail_unless(pipe->play());
    if (wait_listener)
      fail_unless(qemu->wait_for_listener(5000), "no listener registered");
  }
  ~P2pFixture() {
    pipe.reset();
    qemu.reset();
    unlink(qmp.c_str());
    rmdir(dir);
    g_free(dir);
  }
};

}  // namespace testsupport
