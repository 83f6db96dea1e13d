/* gst-vmdisplay: an encoded access unit as the host sent it, not yet copied anywhere.
 *
 * The FRAME_RESPONSE payload stays the buffer the parser read it into (owned here, moved, never
 * copied) and the NALs are views into it, in order. Nothing is concatenated on the way: the
 * element copies each NAL once, straight into its output buffer (gstvsockenc.cpp).
 */
#pragma once

#include "hxfr-bytes.h"
#include "hxfr-parser.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace vmd {

struct EncodedAu {
  hxfr::Payload payload;            /* the message's bytes; nals point into it */
  std::vector<hxfr::ByteView> nals; /* Annex-B pieces, in order */

  /* Bytes of the access unit (the NALs one after the other). */
  size_t size() const {
    size_t total = 0;
    for (const auto &n : nals)
      total += n.size;
    return total;
  }
  bool empty() const { return size() == 0; }
  /* Writes the NALs one after the other to dst, which has room for size() bytes. */
  void copy_to(uint8_t *dst) const {
    for (const auto &n : nals) {
      if (n.size)
        std::memcpy(dst, n.data, n.size);
      dst += n.size;
    }
  }
};

}  // namespace vmd
