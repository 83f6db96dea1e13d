/* gst-vmdisplay: DRM fourcc table.
 *
 * How each row is derived. Linux's include/uapi/drm/drm_fourcc.h describes
 * every format as channels from the most significant bit of one
 * little-endian pixel word, e.g. XRGB8888 'XR24' "[31:0] x:R:G:B 8:8:8:8
 * little endian". pixman names its formats the same way (channels from the
 * most significant bit of the native pixel word: x8r8g8b8 is x in bits
 * 31:24, b in 7:0), and its codes are PIXMAN_FORMAT(bpp, type, a, r, g, b)
 * with type ARGB (2: ...r g b, b lowest), ABGR (3: ...b g r, r lowest),
 * BGRA (8: b g r a, a lowest) or RGBA (9: r g b a, a lowest). On a
 * little-endian host both describe the same bytes, so a DRM format maps to
 * the pixman format whose name spells the DRM channel list: x:R:G:B 8:8:8:8
 * -> x8r8g8b8 (0x20020888, GStreamer BGRx), x:B:G:R -> x8b8g8r8 (RGBx),
 * R:G:B:x -> r8g8b8x8, B:G:R:x -> b8g8r8x8, and so on. QEMU's own map
 * (ui/qemu-pixman.c, drm_format_pixman_map) agrees for the formats it lists
 * (XR24 <-> PIXMAN_LE_x8r8g8b8, XB24 <-> PIXMAN_LE_x8b8g8r8, RG24 <->
 * PIXMAN_LE_r8g8b8, ...). tests/check/unit/drm-formats.cpp rebuilds each
 * pixel from the DRM description and reads it back through GStreamer.
 *
 * XR30 and XB30 map to pixman's x2r10g10b10 / x2b10g10r10, which
 * pixman-formats.cpp leaves out (GStreamer 1.22 has no 10-bit RGB format
 * without alpha): they are listed so messages can name them, and the
 * readers refuse them because the host surface has no format for them.
 */
#include "drm-formats.h"

#include <cinttypes>
#include <cstdio>
#include <iterator>

namespace vmd {
namespace {

constexpr DrmFormat kFormats[] = {
    /* 32 bpp, 8 bits per channel */
    {drm_fourcc('X', 'R', '2', '4'), "XR24", 0x20020888 /* x8r8g8b8 */, 4, 1},
    {drm_fourcc('A', 'R', '2', '4'), "AR24", 0x20028888 /* a8r8g8b8 */, 4, 1},
    {drm_fourcc('X', 'B', '2', '4'), "XB24", 0x20030888 /* x8b8g8r8 */, 4, 1},
    {drm_fourcc('A', 'B', '2', '4'), "AB24", 0x20038888 /* a8b8g8r8 */, 4, 1},
    {drm_fourcc('R', 'X', '2', '4'), "RX24", 0x20090888 /* r8g8b8x8 */, 4, 1},
    {drm_fourcc('R', 'A', '2', '4'), "RA24", 0x20098888 /* r8g8b8a8 */, 4, 1},
    {drm_fourcc('B', 'X', '2', '4'), "BX24", 0x20080888 /* b8g8r8x8 */, 4, 1},
    {drm_fourcc('B', 'A', '2', '4'), "BA24", 0x20088888 /* b8g8r8a8 */, 4, 1},
    /* 32 bpp, 10 bits per channel */
    {drm_fourcc('X', 'R', '3', '0'), "XR30", 0x20020aaa /* x2r10g10b10 */, 4, 1},
    {drm_fourcc('A', 'R', '3', '0'), "AR30", 0x20022aaa /* a2r10g10b10 */, 4, 1},
    {drm_fourcc('X', 'B', '3', '0'), "XB30", 0x20030aaa /* x2b10g10r10 */, 4, 1},
    {drm_fourcc('A', 'B', '3', '0'), "AB30", 0x20032aaa /* a2b10g10r10 */, 4, 1},
    /* 24 bpp: "[23:0] R:G:B little endian" */
    {drm_fourcc('R', 'G', '2', '4'), "RG24", 0x18020888 /* r8g8b8 */, 3, 1},
    {drm_fourcc('B', 'G', '2', '4'), "BG24", 0x18030888 /* b8g8r8 */, 3, 1},
    /* 16 bpp */
    {drm_fourcc('R', 'G', '1', '6'), "RG16", 0x10020565 /* r5g6b5 */, 2, 1},
    {drm_fourcc('B', 'G', '1', '6'), "BG16", 0x10030565 /* b5g6r5 */, 2, 1},
    {drm_fourcc('X', 'R', '1', '5'), "XR15", 0x10020555 /* x1r5g5b5 */, 2, 1},
    {drm_fourcc('A', 'R', '1', '5'), "AR15", 0x10021555 /* a1r5g5b5 */, 2, 1},
    {drm_fourcc('X', 'B', '1', '5'), "XB15", 0x10030555 /* x1b5g5r5 */, 2, 1},
    {drm_fourcc('A', 'B', '1', '5'), "AB15", 0x10031555 /* a1b5g5r5 */, 2, 1},
};

struct ModifierName {
  uint64_t modifier;
  const char *name;
};

/* fourcc_mod_code(vendor, value) = vendor << 56 | value. */
constexpr ModifierName kModifiers[] = {
    {0, "LINEAR"},
    {0x00ffffffffffffffULL, "INVALID"},
    {0x0100000000000001ULL, "I915_X_TILED"},
    {0x0100000000000002ULL, "I915_Y_TILED"},
    {0x0100000000000003ULL, "I915_Yf_TILED"},
    {0x0100000000000004ULL, "I915_Y_TILED_CCS"},
    {0x0100000000000005ULL, "I915_Yf_TILED_CCS"},
    {0x0100000000000006ULL, "I915_Y_TILED_GEN12_RC_CCS"},
    {0x0100000000000007ULL, "I915_Y_TILED_GEN12_MC_CCS"},
    {0x0100000000000008ULL, "I915_Y_TILED_GEN12_RC_CCS_CC"},
    {0x0100000000000009ULL, "I915_4_TILED"},
};

constexpr const char *kVendors[] = {
    nullptr,  "Intel",   "AMD",    "NVIDIA", "Samsung", "Qualcomm",
    "Vivante", "Broadcom", "ARM",  "Allwinner", "Amlogic",
};

}  // namespace

const DrmFormat *drm_format_lookup(uint32_t fourcc) {
  for (const DrmFormat &f : kFormats) {
    if (f.fourcc == fourcc)
      return &f;
  }
  return nullptr;
}

const DrmFormat *drm_format_table(size_t *n_entries) {
  *n_entries = std::size(kFormats);
  return kFormats;
}

std::string drm_fourcc_name(uint32_t fourcc) {
  char s[16];
  for (int i = 0; i < 4; i++) {
    unsigned char c = uint8_t(fourcc >> (8 * i));
    if (c < 0x20 || c > 0x7e) {
      snprintf(s, sizeof s, "0x%08" PRIx32, fourcc);
      return s;
    }
    s[i] = char(c);
  }
  s[4] = '\0';
  return s;
}

std::string drm_modifier_name(uint64_t modifier) {
  for (const ModifierName &m : kModifiers) {
    if (m.modifier == modifier)
      return m.name;
  }
  char s[24];
  snprintf(s, sizeof s, "0x%016" PRIx64, modifier);
  return s;
}

const char *drm_modifier_vendor(uint64_t modifier) {
  uint64_t vendor = modifier >> 56;
  return vendor < std::size(kVendors) ? kVendors[vendor] : nullptr;
}

}  // namespace vmd
