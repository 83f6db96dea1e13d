/* gst-vmdisplay: reading rectangles out of LINEAR, Intel X-tiled and Intel
 * Y-tiled buffers on the CPU. Plain C++, no GLib.
 *
 * Layouts (docs/qemudbussrc.md, "Reading DMA-BUF on the CPU"):
 *  - Linear: row y at y * stride.
 *  - IntelX (I915_FORMAT_MOD_X_TILED): 4 KiB tiles of 512 bytes x 8 rows,
 *    row-major inside the tile.
 *  - IntelY (I915_FORMAT_MOD_Y_TILED): 4 KiB tiles of 128 bytes x 32 rows,
 *    stored as 8 columns of 16 bytes x 32 rows: offset in the tile =
 *    (xbytes / 16) * 512 + y * 16 + xbytes % 16.
 * Tiles follow each other row-major, stride / tile width tiles per row.
 * Intel Tile4 is not here: its layout is not pinned down in drm_fourcc.h.
 */
#pragma once

#include "damage.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace vmd {

enum class Tiling { Linear, IntelX, IntelY };

/* LINEAR and INVALID (implicit: scanouts QEMU exports without a modifier are
 * linear) -> Linear; the two Intel tilings; false for anything else. */
bool tiling_from_modifier(uint64_t modifier, Tiling *out);

/* "linear", "X-tiled", "Y-tiled". */
const char *tiling_name(Tiling t);

/* Bytes of the fd a plane of width x height pixels at `offset` with `stride`
 * needs: offset + stride * rows, rows rounded up to whole tile rows when
 * tiled. False, with *why, when the stride is too small for the width, a
 * tiled stride is not a whole number of tiles, or a value is absurd (a side
 * outside 1..16384, bytes_per_pixel outside 1..16, a stride over 1 MiB). */
bool plane_bytes_needed(Tiling t, uint32_t width, uint32_t height, uint32_t bytes_per_pixel,
                        uint64_t offset, uint32_t stride, uint64_t *needed, std::string *why);

/* Copies rectangle src (buffer pixels, in displayed rows) of a plane into
 * dst, where src's top-left pixel goes, rows dst_stride bytes apart.
 * bottom_up: displayed row Y is stored at buffer row buffer_height - 1 - Y.
 * The caller has checked the plane with plane_bytes_needed for
 * buffer_height rows and src against the buffer: nothing is checked here. */
void detile_rect(Tiling t, const uint8_t *plane, uint32_t stride, uint32_t bytes_per_pixel,
                 const Rect &src, bool bottom_up, uint32_t buffer_height, uint8_t *dst,
                 size_t dst_stride);

}  // namespace vmd
