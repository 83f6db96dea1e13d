/* gst-vmdisplay: the byte-view type of the HXFR library.
 *
 * On its own so that hxfr-le.h (the little-endian reader/writer) and hxfr-protocol.h (the
 * messages) can both use it without including each other.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmd::hxfr {

/* A read-only view of bytes owned by someone else (C++17 has no std::span). */
struct ByteView {
  const uint8_t *data = nullptr;
  size_t size = 0;
};

}  // namespace vmd::hxfr
