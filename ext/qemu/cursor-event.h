/* gst-vmdisplay: the guest cursor as GStreamer sees it: the `qemu-cursor`
 * structure carried by a custom sticky downstream event and an element
 * message.
 *
 * Fields: image (GstBuffer: width * height native-endian 32-bit ARGB words,
 * 0xAARRGGBB, straight alpha, rows of width * 4 bytes; absent while the
 * guest has defined no cursor), width, height, hot-x, hot-y (int), x, y
 * (int: the pointer position, i.e. the hotspot, in frame pixels; the
 * image's top-left is at x - hot-x, y - hot-y), visible (boolean),
 * image-changed (boolean: the image differs from the previous event's).
 * The image is in every event, not only when it changed: the event is
 * sticky, and an element linked later gets only the last one.
 */
#pragma once

#include "cursor.h"

#include <gst/gst.h>

namespace vmd {

constexpr const char *kCursorStructureName = "qemu-cursor";

/* The image as a read-only GstBuffer that shares the image's memory. */
GstBuffer *cursor_image_buffer(const std::shared_ptr<const CursorImage> &image);

/* A new `qemu-cursor` structure; image may be null. */
GstStructure *cursor_structure(const CursorState &cursor, GstBuffer *image, bool image_changed);

}  // namespace vmd
