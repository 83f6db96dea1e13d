/* gst-vmdisplay: the single-plane RGB DRM fourccs a DMA-BUF scanout can carry,
 * each mapped to the pixman format of identical memory layout (the host
 * surface's format, pixman-formats.h), plus names for fourccs and modifiers
 * in messages. Plain C++, no GLib.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vmd {

constexpr uint32_t drm_fourcc(char a, char b, char c, char d) {
  return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
         uint32_t(uint8_t(d)) << 24;
}

struct DrmFormat {
  uint32_t fourcc;
  const char *name;         /* "XR24" */
  uint32_t pixman_code;     /* same bytes in memory (little-endian host) */
  uint32_t bytes_per_pixel;
  uint32_t num_planes;
};

/* nullptr for a fourcc not in the table. */
const DrmFormat *drm_format_lookup(uint32_t fourcc);

/* The whole table (for tests and documentation). */
const DrmFormat *drm_format_table(size_t *n_entries);

/* "XR24"; 0x%08x when any of the four bytes is not printable. */
std::string drm_fourcc_name(uint32_t fourcc);

/* "LINEAR", "INVALID", "I915_X_TILED", "I915_Y_TILED", ...; 0x%016llx for
 * a modifier without a name here. */
std::string drm_modifier_name(uint64_t modifier);

/* The vendor byte of a modifier as a word ("Intel", "AMD", "NVIDIA", ...),
 * or nullptr when unknown. */
const char *drm_modifier_vendor(uint64_t modifier);

}  // namespace vmd
