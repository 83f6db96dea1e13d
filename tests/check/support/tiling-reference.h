/* The tests' own tiler: byte offsets of LINEAR, Intel X-tiled and Intel
 * Y-tiled buffers written pixel by pixel from the layout definitions
 * (GUIDE section 2), independent of ext/qemu/detile.cpp, which they check. */
#pragma once

#include "detile.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace reftile {

/* Byte offset in the plane of byte xb of buffer row y. */
inline size_t offset(vmd::Tiling t, uint32_t stride, size_t xb, size_t y) {
  switch (t) {
    case vmd::Tiling::Linear:
      return y * stride + xb;
    case vmd::Tiling::IntelX: { /* 512 bytes x 8 rows, row-major in the tile */
      size_t tile = (y / 8) * (stride / 512) + xb / 512;
      return tile * 4096 + (y % 8) * 512 + xb % 512;
    }
    case vmd::Tiling::IntelY: { /* 128 bytes x 32 rows as 8 columns of 16 bytes x 32 rows */
      size_t tile = (y / 32) * (stride / 128) + xb / 128;
      size_t in = xb % 128;
      return tile * 4096 + (in / 16) * 512 + (y % 32) * 16 + in % 16;
    }
  }
  return 0;
}

inline uint32_t tile_rows(vmd::Tiling t) {
  return t == vmd::Tiling::IntelX ? 8 : t == vmd::Tiling::IntelY ? 32 : 1;
}

/* The byte at (xb, buffer row y) of the test images: depends on both, and
 * on the tile, so a misplaced chunk shows. */
inline uint8_t pattern(size_t xb, size_t y) {
  return uint8_t((xb * 7 + y * 131 + (xb >> 8) * 17 + (y >> 5) * 29) ^ (y >> 3));
}

/* width x height pixels of pattern() tiled into stride * whole tile rows
 * bytes, after `lead` bytes; everything else `fill`. */
inline std::vector<uint8_t> tiled_image(vmd::Tiling t, uint32_t width, uint32_t height,
                                        uint32_t bpp, uint32_t stride, size_t lead,
                                        uint8_t fill = 0xee) {
  size_t rows = (height + tile_rows(t) - 1) / tile_rows(t) * tile_rows(t);
  std::vector<uint8_t> mem(lead + size_t(stride) * rows, fill);
  for (size_t y = 0; y < height; y++)
    for (size_t xb = 0; xb < size_t(width) * bpp; xb++)
      mem[lead + offset(t, stride, xb, y)] = pattern(xb, y);
  return mem;
}

/* A top-down image (rows of width*bpp bytes, src_stride apart) laid out in
 * a plane of stride * whole tile rows; bottom_up stores displayed row r as
 * plane row height-1-r. Bytes the image does not cover are `fill`. */
inline std::vector<uint8_t> tile_image(vmd::Tiling t, const uint8_t *src, size_t src_stride,
                                       uint32_t width, uint32_t height, uint32_t bpp,
                                       uint32_t stride, bool bottom_up = false,
                                       uint8_t fill = 0xee) {
  size_t rows = (height + tile_rows(t) - 1) / tile_rows(t) * tile_rows(t);
  std::vector<uint8_t> mem(size_t(stride) * rows, fill);
  for (size_t y = 0; y < height; y++) {
    const size_t stored = bottom_up ? height - 1 - y : y;
    for (size_t xb = 0; xb < size_t(width) * bpp; xb++)
      mem[offset(t, stride, xb, stored)] = src[y * src_stride + xb];
  }
  return mem;
}

}  // namespace reftile
