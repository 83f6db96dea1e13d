/* gst-vmdisplay tests: a memfd standing in for a LINEAR dma-buf, filled with
 * a pattern where every byte of every pixel differs, and the bytes a reader
 * must produce from it (computed from memory order alone: no channel logic,
 * so it checks gl-channel-order's table rather than repeating it). */
#pragma once

#include "dmabuf-layout.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace vmd_test {

inline uint8_t pattern_byte(uint32_t x, uint32_t y, uint32_t c) {
  return uint8_t(x * 13 + y * 31 + c * 71 + ((x * y) >> 3) + (c == 3 ? 0x40 : 0));
}

struct TestImage {
  vmd::DmabufLayout layout;
  std::vector<uint8_t> bytes; /* the whole fd */
};

/* backing w x h, 4 bytes per pixel, stride w*4 + pad, plane at offset; the
 * visible rectangle is the whole backing unless given. */
inline TestImage make_image(uint32_t fourcc, uint32_t w, uint32_t h, uint32_t pad,
                            uint32_t offset, vmd::Rect visible = {}, bool y0_top = false) {
  TestImage t;
  vmd::DmabufLayout &l = t.layout;
  l.fourcc = fourcc;
  l.modifier = vmd::kDrmFormatModLinear;
  l.backing_width = w;
  l.backing_height = h;
  l.visible = visible.empty() ? vmd::Rect{0, 0, w, h} : visible;
  l.num_planes = 1;
  l.planes[0] = {0, offset, w * 4 + pad};
  l.y0_top = y0_top;
  t.bytes.assign(size_t(offset) + size_t(l.planes[0].stride) * h, 0xdd);
  for (uint32_t y = 0; y < h; y++) {
    uint8_t *row = t.bytes.data() + offset + size_t(y) * l.planes[0].stride;
    for (uint32_t x = 0; x < w; x++)
      for (uint32_t c = 0; c < 4; c++)
        row[x * 4 + c] = pattern_byte(x, y, c);
    for (uint32_t p = 0; p < pad; p++)
      row[w * 4 + p] = 0xee;
  }
  return t;
}

inline vmd::UniqueFd make_memfd(const std::vector<uint8_t> &bytes) {
  vmd::UniqueFd fd(memfd_create("test-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (fd && pwrite(fd.get(), bytes.data(), bytes.size(), 0) != ssize_t(bytes.size()))
    fd.reset();
  /* Sealed against shrinking, like a DMA-BUF, whose size never changes (the
   * EGL reader refuses memory files that can shrink). */
  if (fd && fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0)
    fd.reset();
  return fd;
}

/* Pointer to the stored bytes of visible-image pixel (x, y), after the flip
 * of bottom-up (y0_top) buffers inside the visible rows. */
inline const uint8_t *stored_pixel(const TestImage &t, uint32_t x, uint32_t y) {
  const vmd::DmabufLayout &l = t.layout;
  const uint32_t row = l.y0_top ? l.visible.y + l.visible.h - 1 - y : l.visible.y + y;
  return t.bytes.data() + l.planes[0].offset + size_t(row) * l.planes[0].stride +
         size_t(l.visible.x + x) * 4;
}

}  // namespace vmd_test
