/* gst-vmdisplay: qemudbussrc's `qemu-cursor` structure (ext/qemu/cursor-event.h: image as
 * ARGB32 words 0xAARRGGBB, straight alpha, width, height, hot-x, hot-y, x, y = the pointer,
 * visible, image-changed) as the viewer's `cursor` (PNG, base64) and `cursor-pos` messages.
 */
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <string>

namespace vmd::webrtc {

/* PNG (8-bit RGBA, zlib) of width x height ARGB32 words, rows stride_bytes apart. Empty for
 * sizes outside 1..512. */
std::string png_from_argb32(const uint8_t *pixels, int width, int height, size_t stride_bytes);

struct CursorMessages {
  std::string image;    /* `cursor` message; empty when the image did not change */
  std::string position; /* `cursor-pos` message */
};

/* False for a structure that is not a well-formed `qemu-cursor` (missing fields, an image
 * buffer smaller than width*height*4). `with_image`: make the `cursor` message even when
 * image-changed is false (a viewer that just joined). */
bool cursor_messages(const GstStructure *cursor, bool with_image, CursorMessages *out);

}  // namespace vmd::webrtc
