/* EGL dma-buf read cost: a 1920x1080 XR24 LINEAR memfd imported through
 * EglDmabufReader, read whole and as a 256x256 rectangle (draw into the FBO,
 * glReadPixels into the PBO, fence, copy out), median and p99 in ms.
 * Run under Mesa 25's llvmpipe with run-egl-read-bench.sh. Figures only. */
#include "dmabuf-import.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char **argv) {
  const int iterations = argc > 1 ? std::max(10, atoi(argv[1])) : 200;
  const uint32_t w = 1920, h = 1080, stride = w * 4;
  vmd::DmabufLayout layout;
  layout.fourcc = 0x34325258; /* XR24 */
  layout.modifier = vmd::kDrmFormatModLinear;
  layout.backing_width = w;
  layout.backing_height = h;
  layout.visible = vmd::Rect{0, 0, w, h};
  layout.num_planes = 1;
  layout.planes[0] = {0, 0, stride};
  std::vector<uint8_t> bytes(size_t(stride) * h);
  for (size_t i = 0; i < bytes.size(); i++)
    bytes[i] = uint8_t(i * 7 + (i >> 12));
  std::vector<vmd::UniqueFd> fds;
  /* Sealed against shrinking, as a DMA-BUF's size is fixed: EGL imports it. */
  fds.emplace_back(memfd_create("bench-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (pwrite(fds[0].get(), bytes.data(), bytes.size(), 0) != ssize_t(bytes.size()) ||
      fcntl(fds[0].get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0)
    return 1;
  std::string why;
  auto device = vmd::EglDevice::open("", &why);
  if (!device) {
    fprintf(stderr, "no EGL device: %s\n", why.c_str());
    return 1;
  }
  auto reader = vmd::EglDmabufReader::open(device, layout, std::move(fds), GST_VIDEO_FORMAT_BGRx,
                                           &why);
  if (!reader) {
    fprintf(stderr, "%s (%s)\n", why.c_str(), device->gl_version().c_str());
    return 1;
  }
  printf("%s, %s, %d iterations\n", reader->describe().c_str(), device->gl_version().c_str(),
         iterations);
  std::vector<uint8_t> dst(bytes.size());
  const vmd::Rect rects[] = {{0, 0, w, h}, {832, 412, 256, 256}};
  for (const vmd::Rect &r : rects) {
    std::vector<double> ms;
    for (int i = 0; i < iterations; i++) {
      auto t0 = std::chrono::steady_clock::now();
      if (!reader->read(r, dst.data(), stride, &why)) {
        fprintf(stderr, "read: %s\n", why.c_str());
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                       .count());
    }
    std::sort(ms.begin(), ms.end());
    printf("%ux%u: median %.2f ms, p99 %.2f ms, min %.2f ms\n", r.w, r.h, ms[ms.size() / 2],
           ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], ms.front());
  }
  return 0;
}
