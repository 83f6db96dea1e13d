/* How long the guest's GPU queue stands still per frame with gl=on: the
 * time from an UpdateDMABUF to qemudbussrc's reply, against the scripted
 * QEMU (tests/check/support/fake-qemu), peer to peer, in one process, with
 * a memfd standing in for the DMA-BUF. For each layout it prints the
 * element's own figure (stats: arrival to reply) and the round trip the
 * QEMU side sees (call to reply, D-Bus included): median, p99, max.
 * Never fails on a timing.
 *
 *   build/tests/bench/dmabuf-ack-bench [ROUNDS [WIDTH HEIGHT [DETILE]]]
 *   (default 300 1920 1080 cpu; DETILE gl makes LINEAR go through EGL
 *   where the EGL import works, e.g. under Mesa 25: tests/bench/run-dmabuf-bench.sh)
 */
#include "fake-qemu.h"
#include "tiling-reference.h"

#include <gst/gst.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kXR24 = 0x34325258;

struct Layout {
  const char *name;
  vmd::Tiling tiling;
  uint64_t modifier;
  uint32_t stride_align;
};

uint64_t stat_of(GstElement *src, const char *field) {
  GstStructure *st = nullptr;
  g_object_get(src, "stats", &st, nullptr);
  guint64 v = 0;
  if (st) {
    gst_structure_get_uint64(st, field, &v);
    gst_structure_free(st);
  }
  return v;
}

void report(const char *what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  if (ms.empty())
    return;
  std::printf("  %-28s median %7.3f ms  p99 %7.3f ms  max %7.3f ms  (%zu)\n", what,
              ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back(), ms.size());
}

/* One layout: a full-frame UpdateDMABUF per round, the guest changing the
 * buffer in between (as it would). */
bool run_layout(fakeqemu::FakeQemu &qemu, GstElement *src, const Layout &l, bool sealed,
                int rounds, uint32_t w, uint32_t h) {
  const uint32_t stride = (w * 4 + l.stride_align - 1) / l.stride_align * l.stride_align;
  std::vector<uint8_t> img(size_t(w) * 4 * h);
  for (size_t i = 0; i < img.size(); i++)
    img[i] = uint8_t(i * 7);
  std::vector<uint8_t> plane =
      reftile::tile_image(l.tiling, img.data(), size_t(w) * 4, w, h, 4, stride);
  int fd = memfd_create("bench-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, off_t(plane.size())) != 0 ||
      pwrite(fd, plane.data(), plane.size(), 0) != ssize_t(plane.size()))
    return false;
  /* Sealed against shrinking, the memfd is what a real DMA-BUF is (its size
   * never changes) and the CPU reader maps it; unsealed (QEMU's own memfds)
   * it reads with pread. */
  if (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
    return false;
  std::string error;
  if (!qemu.scanout_dmabuf(fd, w, h, stride, kXR24, l.modifier, false, &error)) {
    std::printf("%s: ScanoutDMABUF refused: %s\n", l.name, error.c_str());
    close(fd);
    return false;
  }
  std::vector<double> round_trip;
  const uint64_t acks_before = stat_of(src, "acks");
  for (int i = 0; i < rounds; i++) {
    uint8_t b = uint8_t(i);
    if (pwrite(fd, &b, 1, off_t((i * 4096) % plane.size())) != 1)
      break;
    int64_t t0 = g_get_monotonic_time();
    if (!qemu.update_dmabuf(0, 0, int32_t(w), int32_t(h), &error)) {
      std::printf("%s: UpdateDMABUF failed: %s\n", l.name, error.c_str());
      break;
    }
    round_trip.push_back((g_get_monotonic_time() - t0) / 1000.0);
  }
  std::printf("%s %ux%u %s (stride %u, %zu rounds, %" G_GUINT64_FORMAT " acks):\n", l.name, w,
              h, sealed ? "sealed (as a DMA-BUF: mapped)" : "unsealed memfd (pread)", stride,
              round_trip.size(), stat_of(src, "acks") - acks_before);
  std::printf("  %-28s median %7.3f ms  (stats: last 256)\n", "element: arrival to reply",
              stat_of(src, "ack-median-us") / 1000.0);
  report("QEMU side: call to reply", round_trip);
  close(fd);
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const int rounds = argc > 1 ? std::max(1, atoi(argv[1])) : 300;
  const uint32_t w = argc > 3 ? uint32_t(atoi(argv[2])) : 1920;
  const uint32_t h = argc > 3 ? uint32_t(atoi(argv[3])) : 1080;
  const std::string detile = argc > 4 ? argv[4] : "cpu";
  gchar *dir = g_dir_make_tmp("dmabuf-ack-XXXXXX", nullptr);
  const std::string qmp = std::string(dir) + "/qmp.sock";
  std::string error;
  auto qemu = fakeqemu::FakeQemu::start_p2p(qmp, fakeqemu::FakeQemuOptions(), &error);
  if (!qemu) {
    std::fprintf(stderr, "dmabuf-ack-bench: %s\n", error.c_str());
    return 1;
  }
  const std::string desc =
      "qemudbussrc name=src keepalive-ms=0 detile=" + detile + " qmp=" + qmp + " ! fakesink";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline) {
    std::fprintf(stderr, "dmabuf-ack-bench: %s\n", err ? err->message : "cannot build");
    return 1;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  if (!qemu->wait_for_listener(10000)) {
    std::fprintf(stderr, "dmabuf-ack-bench: qemudbussrc did not register a listener\n");
    return 1;
  }
  std::printf("dmabuf-ack-bench: qemudbussrc detile=%s, %d full-frame UpdateDMABUF per layout\n",
              detile.c_str(), rounds);
  const Layout layouts[] = {
      {"LINEAR", vmd::Tiling::Linear, 0, 64},
      {"I915_X_TILED", vmd::Tiling::IntelX, 0x0100000000000001ULL, 512},
      {"I915_Y_TILED", vmd::Tiling::IntelY, 0x0100000000000002ULL, 128},
  };
  /* The element's median covers its last 256 replies: with 256 rounds or
   * more per layout, that layout's alone. */
  for (bool sealed : {true, false})
    for (const Layout &l : layouts)
      run_layout(*qemu, src, l, sealed, std::max(rounds, 256), w, h);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(pipeline);
  qemu.reset();
  rmdir(dir);
  g_free(dir);
  return 0;
}
