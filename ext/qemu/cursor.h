/* gst-vmdisplay: the guest's cursor (CursorDefine, MouseSet) and drawing it.
 *
 * QEMU sends the cursor image as 32-bit ARGB words in host order with
 * straight (not premultiplied) alpha, and its position with MouseSet as the
 * top-left corner of the image (QEMU's own SPICE display adds the hotspot to
 * it: ui/spice-display.c). The pointer itself, the point a click hits, is
 * that corner plus the hotspot. Nothing here knows about D-Bus or
 * GStreamer: the image checks and the blending are unit-tested directly.
 */
#pragma once

#include "damage.h"
#include "pixman-formats.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vmd {

/* Largest cursor side accepted (QEMU's own limit is 512: ui/cursor.c). */
constexpr int32_t kMaxCursorSide = 512;

struct CursorImage {
  uint32_t width = 0, height = 0;
  uint32_t hot_x = 0, hot_y = 0;
  std::vector<uint32_t> argb; /* width * height, 0xAARRGGBB, straight alpha */
};

/* Checks a CursorDefine and makes the image: an absurd size, a hotspot
 * outside the image or a payload that does not hold width*height words is
 * refused with *why set. */
std::shared_ptr<const CursorImage> cursor_image_from_define(int32_t width, int32_t height,
                                                            int32_t hot_x, int32_t hot_y,
                                                            const uint8_t *data, size_t size,
                                                            std::string *why);

/* Where the cursor is and what it looks like, as the frames should show it. */
struct CursorState {
  std::shared_ptr<const CursorImage> image; /* null: none defined yet */
  int32_t x = 0, y = 0;                     /* MouseSet: top-left of the image */
  bool visible = false;
  uint64_t image_serial = 0; /* changes with every new image */
  uint64_t serial = 0;       /* changes with every change of any field */

  /* The pointer position (hotspot), in surface pixels; MouseSet may say
   * anything in int32, so the sum saturates rather than overflows. */
  int32_t pointer_x() const { return saturated_sum(x, image ? image->hot_x : 0); }
  int32_t pointer_y() const { return saturated_sum(y, image ? image->hot_y : 0); }

  static int32_t saturated_sum(int32_t a, uint32_t b) {
    const int64_t v = int64_t(a) + int64_t(b);
    return v > INT32_MAX ? INT32_MAX : int32_t(v);
  }
};

/* The part of a width x height surface the cursor covers (empty when
 * hidden, undefined or entirely outside). */
Rect cursor_rect(const CursorState &cursor, uint32_t width, uint32_t height);

/* Blends the cursor (straight alpha over) into dst, a width x height
 * surface of `format` with dst_stride, clipped at the edges. Channels the
 * format lacks (alpha of x formats) are left alone; an alpha channel gets
 * the "over" alpha. */
void cursor_blend(const CursorState &cursor, const PixmanFormat &format, uint8_t *dst,
                  size_t dst_stride, uint32_t width, uint32_t height);

}  // namespace vmd
