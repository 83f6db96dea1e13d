/* Benchmark: reading a 1920x1080 XR24 scanout on the CPU (detile.cpp), LINEAR,
 * X-tiled and Y-tiled, full frame and a 256x256 damage rectangle, against a
 * plain memcpy of the same bytes; then the whole CpuDmabufReader (size check,
 * sync ioctl, detile) on a sealed memfd (mapped, as a real DMA-BUF is) and an
 * unsealed one (pread). Prints median and p95 over the runs and the ratio of
 * the medians to memcpy's, once with everything in the cache between runs
 * (hot) and once with the caches flushed before each run (cold). Exits 0 whatever the figures (never a CI gate).
 *
 *   detile-bench [runs]   (default 200)
 */
#include "detile.h"
#include "dmabuf-cpu.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kW = 1920, kH = 1080, kBpp = 4, kStride = kW * kBpp;
constexpr uint32_t kXR24 = 0x34325258;

struct Figures {
  double min_ms, median_ms, p95_ms;
};

/* cold: before each run, write 64 MiB elsewhere so that neither source nor
 * destination is in any cache (as a buffer the GPU just wrote is not). */
bool g_cold = false;
std::vector<uint8_t> g_evict;

void evict_caches() {
  if (g_evict.empty())
    g_evict.resize(size_t(64) << 20);
  for (size_t i = 0; i < g_evict.size(); i += 64)
    g_evict[i]++;
}

Figures time_runs(int runs, const std::function<void()> &fn) {
  fn(); /* warm up: page faults, caches */
  std::vector<double> ms(static_cast<size_t>(runs));
  for (int i = 0; i < runs; i++) {
    if (g_cold)
      evict_caches();
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms[size_t(i)] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(ms.begin(), ms.end());
  return {ms[0], ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 95 / 100)]};
}

void row(const char *name, const Figures &f, const Figures &base) {
  printf("| %-36s | %7.3f | %9.3f | %7.3f | %6.2fx | %8.2fx |\n", name, f.min_ms, f.median_ms,
         f.p95_ms, f.median_ms / base.median_ms, f.min_ms / base.min_ms);
}

/* 1088 rows: whole Y tile rows; filled so every page is really there. */
std::vector<uint8_t> source() {
  std::vector<uint8_t> v(size_t(kStride) * 1088);
  for (size_t i = 0; i < v.size(); i++)
    v[i] = uint8_t(i * 2654435761u >> 24);
  return v;
}

void bench_detile(int runs) {
  std::vector<uint8_t> src = source(), dst(size_t(kStride) * kH);
  const vmd::Rect full{0, 0, kW, kH}, damage{333, 211, 256, 256};
  const size_t full_bytes = size_t(kStride) * kH;

  printf("\n1920x1080 XR24 (stride 7680), %d runs, %s\n\n", runs,
         g_cold ? "cold: caches flushed before each run"
                : "hot: source and destination stay in the cache between runs");
  printf("| %-36s | min ms  | median ms | p95 ms  | ratio   | min ratio |\n", "case");
  printf("|%s|---------|-----------|---------|---------|-----------|\n",
         std::string(38, '-').c_str());
  Figures base = time_runs(runs, [&] { std::memcpy(dst.data(), src.data(), full_bytes); });
  row("full frame: memcpy of 8294400 bytes", base, base);
  const struct {
    const char *name;
    vmd::Tiling t;
    bool bottom_up;
  } cases[] = {
      {"full frame: linear", vmd::Tiling::Linear, false},
      {"full frame: X-tiled", vmd::Tiling::IntelX, false},
      {"full frame: Y-tiled", vmd::Tiling::IntelY, false},
      {"full frame: Y-tiled, bottom-up", vmd::Tiling::IntelY, true},
  };
  for (const auto &c : cases)
    row(c.name, time_runs(runs, [&] {
          vmd::detile_rect(c.t, src.data(), kStride, kBpp, full, c.bottom_up, kH, dst.data(),
                           kStride);
        }),
        base);

  Figures dbase = time_runs(runs, [&] {
    for (uint32_t y = 0; y < damage.h; y++)
      std::memcpy(dst.data() + size_t(y) * kStride,
                  src.data() + size_t(damage.y + y) * kStride + damage.x * kBpp, damage.w * kBpp);
  });
  row("256x256 at 333,211: memcpy rows", dbase, dbase);
  for (vmd::Tiling t : {vmd::Tiling::Linear, vmd::Tiling::IntelX, vmd::Tiling::IntelY}) {
    std::string name = std::string("256x256: ") + vmd::tiling_name(t);
    row(name.c_str(), time_runs(runs, [&] {
          vmd::detile_rect(t, src.data(), kStride, kBpp, damage, false, kH, dst.data(), kStride);
        }),
        dbase);
  }

  /* The whole reader: a memfd stands in for the DMA-BUF. */
  for (int sealed = 1; sealed >= 0; sealed--) {
    int fd = memfd_create("detile-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || pwrite(fd, src.data(), src.size(), 0) != ssize_t(src.size()))
      return;
    if (sealed)
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    vmd::DmabufLayout l;
    l.fourcc = kXR24;
    l.modifier = vmd::kI915FormatModYTiled;
    l.backing_width = kW;
    l.backing_height = kH;
    l.visible = full;
    l.num_planes = 1;
    l.planes[0].stride = kStride;
    std::vector<vmd::UniqueFd> fds;
    fds.emplace_back(fd);
    std::string why;
    auto reader = vmd::CpuDmabufReader::open(l, std::move(fds), &why);
    if (!reader) {
      printf("reader: %s\n", why.c_str());
      return;
    }
    std::string name = sealed ? "reader, Y-tiled, mapped" : "reader, Y-tiled, pread";
    row(name.c_str(), time_runs(runs, [&] { reader->read(full, dst.data(), kStride, &why); }),
        base);
  }
}

}  // namespace

int main(int argc, char **argv) {
  int runs = argc > 1 ? std::max(5, atoi(argv[1])) : 200;
  printf("CPU detiling (ext/qemu/detile.cpp) vs memcpy of the same bytes\n");
  bench_detile(runs);
  g_cold = true;
  bench_detile(runs);
  printf("\nratio = median / median of the memcpy row of its group (full frame or 256x256);\n"
         "min ratio = the same for the fastest run (less disturbed by other load).\n");
  return 0;
}
