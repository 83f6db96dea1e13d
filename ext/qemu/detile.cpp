/* gst-vmdisplay: CPU detiling.
 *
 * Inside one tile row every tiling here is a fixed formula, so a buffer row
 * is read with no per-pixel work:
 *  - X-tiled: byte xb of buffer row y is at
 *      tile_row_base(y / 8) + (xb / 512) * 4096 + (y % 8) * 512 + xb % 512,
 *    so a row is a run of memcpys of up to 512 contiguous bytes.
 *  - Y-tiled: the 16-byte column c = xb / 16 of tile t = c / 8 is at
 *    t * 4096 + (c % 8) * 512 = c * 512 from the tile row's base, so byte xb
 *    of buffer row y is at tile_row_base(y / 32) + (xb / 16) * 512 +
 *    (y % 32) * 16 + xb % 16: a row is a gather of 16-byte chunks 512 bytes
 *    apart (one load and one store each).
 * Rows are walked in buffer order and written in order into dst (upwards
 * when bottom-up), so dst is written sequentially within each row.
 */
#include "detile.h"

#include "string-format.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace vmd {
namespace {

constexpr uint32_t kMaxSide = 16384;
constexpr uint32_t kMaxBytesPerPixel = 16;
constexpr uint32_t kMaxStride = 1u << 20;
constexpr uint32_t kTileBytes = 4096;
/* Y-tiled rectangles of this many bytes or more use non-temporal stores
 * (a 1080p frame does, a 256x256 damage rectangle does not). */
constexpr uint64_t kStreamBytes = uint64_t(4) << 20;

struct TileShape {
  uint32_t width_bytes, rows; /* 1 x 1 for linear */
};

TileShape tile_shape(Tiling t) {
  switch (t) {
    case Tiling::IntelX:
      return {512, 8};
    case Tiling::IntelY:
      return {128, 32};
    case Tiling::Linear:
      break;
  }
  return {1, 1};
}


/* The buffer rows src covers, and where the first of them goes in dst. */
struct RowWalk {
  uint32_t first, end; /* buffer rows [first, end) */
  uint8_t *out;        /* dst row of buffer row `first` */
  ptrdiff_t step;      /* from one buffer row's dst row to the next's */
};

RowWalk walk_rows(const Rect &src, bool bottom_up, uint32_t buffer_height, uint8_t *dst,
                  size_t dst_stride) {
  if (!bottom_up)
    return {src.y, src.y + src.h, dst, ptrdiff_t(dst_stride)};
  uint32_t first = buffer_height - src.y - src.h;
  return {first, first + src.h, dst + (src.h - 1) * dst_stride, -ptrdiff_t(dst_stride)};
}

void copy_linear(const uint8_t *plane, uint32_t stride, size_t xb0, size_t n, const RowWalk &w) {
  uint8_t *out = w.out;
  for (uint32_t y = w.first; y < w.end; y++, out += w.step)
    std::memcpy(out, plane + size_t(y) * stride + xb0, n);
}

/* Tiled layouts are walked a band (one tile row) at a time, and inside it
 * tile by tile: each tile's 4 KiB stays in L1 while its rows are copied out,
 * and the band's reads are sequential. copy_span(tile, y, lo, hi, out)
 * copies bytes [lo, hi) (0..tile width) of row y of one tile. */
template <uint32_t kTileWidth, uint32_t kTileRows, typename CopySpan>
void copy_tiled(const uint8_t *plane, uint32_t stride, size_t xb0, size_t xb1, const RowWalk &w,
                CopySpan copy_span) {
  const size_t band_bytes = size_t(stride / kTileWidth) * kTileBytes;
  for (uint32_t y0 = w.first; y0 < w.end;) {
    const uint32_t band = y0 / kTileRows;
    const uint32_t y1 = std::min(w.end, (band + 1) * kTileRows);
    const uint8_t *band_base = plane + band * band_bytes;
    uint8_t *band_out = w.out + ptrdiff_t(y0 - w.first) * w.step;
    for (size_t tx = xb0 / kTileWidth; tx * kTileWidth < xb1; tx++) {
      const size_t tile_x = tx * kTileWidth;
      const size_t lo = std::max(xb0, tile_x) - tile_x;
      const size_t hi = std::min(xb1, tile_x + kTileWidth) - tile_x;
      const uint8_t *tile = band_base + tx * kTileBytes;
      uint8_t *out = band_out + (tile_x + lo - xb0);
      for (uint32_t y = y0; y < y1; y++, out += w.step)
        copy_span(tile, y % kTileRows, lo, hi, out);
    }
    y0 = y1;
  }
}

/* X tile: 512 bytes x 8 rows, row-major. */
struct XSpan {
  void operator()(const uint8_t *tile, uint32_t y, size_t lo, size_t hi, uint8_t *out) const {
    std::memcpy(out, tile + y * 512 + lo, hi - lo);
  }
};

/* Y tile: byte xb of row y at (xb / 16) * 512 + y * 16 + xb % 16. */
struct YSpan {
  void operator()(const uint8_t *tile, uint32_t y, size_t lo, size_t hi, uint8_t *out) const {
    const uint8_t *row = tile + y * 16;
    if (lo == 0 && hi == 128) { /* the common case: 8 loads and stores */
      for (size_t c = 0; c < 8; c++)
        std::memcpy(out + c * 16, row + c * 512, 16);
      return;
    }
    for (size_t xb = lo; xb < hi;) {
      const size_t n = std::min<size_t>(16 - xb % 16, hi - xb);
      std::memcpy(out + (xb - lo), row + (xb / 16) * 512 + xb % 16, n);
      xb += n;
    }
  }
};

#if defined(__SSE2__)
/* Y-tiled, large rectangles: row by row (each output row is one run of
 * consecutive stores), the whole 16-byte columns with non-temporal stores,
 * as glibc's memcpy does for large copies: the destination lines are not
 * read in first, and the run completes each cache line it writes (only
 * 16-byte alignment is needed). */
void copy_y_streaming(const uint8_t *plane, uint32_t stride, size_t xb0, size_t xb1,
                      const RowWalk &w) {
  const size_t band_bytes = size_t(stride / 128) * kTileBytes;
  const size_t c0 = (xb0 + 15) / 16, c1 = xb1 / 16; /* whole columns, c0 < c1 */
  uint8_t *out = w.out;
  for (uint32_t y = w.first; y < w.end; y++, out += w.step) {
    const uint8_t *row = plane + (y / 32) * band_bytes + (y % 32) * 16;
    if (xb0 % 16)
      std::memcpy(out, row + (xb0 / 16) * 512 + xb0 % 16, c0 * 16 - xb0);
    uint8_t *o = out + (c0 * 16 - xb0);
    const uint8_t *s = row + c0 * 512;
    if ((uintptr_t(o) & 15) == 0) {
      for (size_t c = c0; c < c1; c++, o += 16, s += 512)
        _mm_stream_si128(reinterpret_cast<__m128i *>(o),
                         _mm_loadu_si128(reinterpret_cast<const __m128i *>(s)));
    } else {
      for (size_t c = c0; c < c1; c++, o += 16, s += 512)
        std::memcpy(o, s, 16);
    }
    if (xb1 % 16)
      std::memcpy(o, row + c1 * 512, xb1 % 16);
  }
  _mm_sfence(); /* the stores are visible before the caller reads dst */
}
#endif

}  // namespace

bool tiling_from_modifier(uint64_t modifier, Tiling *out) {
  switch (modifier) {
    case 0:                     /* DRM_FORMAT_MOD_LINEAR */
    case 0x00ffffffffffffffULL: /* DRM_FORMAT_MOD_INVALID: implicit, linear */
      *out = Tiling::Linear;
      return true;
    case 0x0100000000000001ULL:
      *out = Tiling::IntelX;
      return true;
    case 0x0100000000000002ULL:
      *out = Tiling::IntelY;
      return true;
    default:
      return false;
  }
}

const char *tiling_name(Tiling t) {
  switch (t) {
    case Tiling::IntelX:
      return "X-tiled";
    case Tiling::IntelY:
      return "Y-tiled";
    case Tiling::Linear:
      break;
  }
  return "linear";
}

bool plane_bytes_needed(Tiling t, uint32_t width, uint32_t height, uint32_t bytes_per_pixel,
                        uint64_t offset, uint32_t stride, uint64_t *needed, std::string *why) {
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide) {
    *why = format_string("size %" PRIu32 "x%" PRIu32 " is not between 1x1 and %ux%u", width, height,
                  kMaxSide, kMaxSide);
    return false;
  }
  if (bytes_per_pixel < 1 || bytes_per_pixel > kMaxBytesPerPixel) {
    *why = format_string("%" PRIu32 " bytes per pixel is not between 1 and %u", bytes_per_pixel,
                  kMaxBytesPerPixel);
    return false;
  }
  const uint64_t row = uint64_t(width) * bytes_per_pixel;
  if (stride < row || stride > kMaxStride) {
    *why = format_string("stride %" PRIu32 " is %s (width %" PRIu32 " x %" PRIu32
                  " bytes per pixel = %" PRIu64 ", at most %u)",
                  stride, stride < row ? "too small" : "too large", width, bytes_per_pixel, row,
                  kMaxStride);
    return false;
  }
  const TileShape tile = tile_shape(t);
  if (stride % tile.width_bytes) {
    *why = format_string("stride %" PRIu32 " of a %s buffer is not a multiple of the tile width, %" PRIu32
                  " bytes",
                  stride, tiling_name(t), tile.width_bytes);
    return false;
  }
  /* Linear: the last row needs only its pixels. Tiled: whole tile rows. */
  const uint64_t bytes = t == Tiling::Linear
                             ? uint64_t(stride) * (height - 1) + row
                             : uint64_t(stride) * ((uint64_t(height) + tile.rows - 1) / tile.rows *
                                                   tile.rows);
  if (offset > UINT64_MAX - bytes) {
    *why = format_string("offset %" PRIu64 " + %" PRIu64 " bytes overflows", offset, bytes);
    return false;
  }
  *needed = offset + bytes;
  return true;
}

void detile_rect(Tiling t, const uint8_t *plane, uint32_t stride, uint32_t bytes_per_pixel,
                 const Rect &src, bool bottom_up, uint32_t buffer_height, uint8_t *dst,
                 size_t dst_stride) {
  if (src.empty())
    return;
  const RowWalk w = walk_rows(src, bottom_up, buffer_height, dst, dst_stride);
  const size_t xb0 = size_t(src.x) * bytes_per_pixel;
  const size_t xb1 = xb0 + size_t(src.w) * bytes_per_pixel;
  switch (t) {
    case Tiling::Linear:
      copy_linear(plane, stride, xb0, xb1 - xb0, w);
      break;
    case Tiling::IntelX:
      copy_tiled<512, 8>(plane, stride, xb0, xb1, w, XSpan());
      break;
    case Tiling::IntelY:
#if defined(__SSE2__)
      if (uint64_t(xb1 - xb0) * src.h >= kStreamBytes) {
        copy_y_streaming(plane, stride, xb0, xb1, w);
        break;
      }
#endif
      copy_tiled<128, 32>(plane, stride, xb0, xb1, w, YSpan());
      break;
  }
}

}  // namespace vmd
