/* gst-vmdisplay: the pixman formats QEMU's D-Bus display can send, mapped to
 * GStreamer video formats that have the same memory layout, so frames are
 * passed on without any conversion.
 */
#pragma once

#include <gst/video/video.h>

#include <cstddef>
#include <cstdint>

namespace vmd {

struct PixmanFormat {
  uint32_t code;          /* raw pixman code, as sent over D-Bus */
  const char *name;       /* pixman's name, for messages */
  GstVideoFormat gst;     /* same layout in memory (little-endian host) */
  uint32_t bytes_per_pixel;
  bool alpha_ignored;     /* pixman has alpha bits the GStreamer format calls padding */
};

/* nullptr for a code QEMU is not known to produce. */
const PixmanFormat *pixman_format_lookup(uint32_t code);

/* The whole table (for tests and documentation). */
const PixmanFormat *pixman_format_table(size_t *n_entries);

}  // namespace vmd
