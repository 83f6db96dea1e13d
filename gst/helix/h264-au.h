/* gst-vmdisplay: what kind of H.264 access unit a byte-stream (Annex-B) buffer holds.
 *
 * HXFR's is_keyframe means "an IDR (SPS/PPS in front)": the one picture a decoder can start
 * from, and the one a lost frame must be followed by. GStreamer's DELTA_UNIT flag is not that:
 * h264parse clears it on any picture made of I slices, and x264 codes some content as non-IDR
 * I pictures, which later P pictures may still reference past. So both ends look at the first
 * slice's NAL type instead. Header only, no GStreamer.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmd {

/* The NAL type (1-5) of the first slice of an Annex-B access unit, or 0 when it has none.
 * Stops at that slice: a pass over a few header bytes, not over the picture. */
inline int h264_first_slice_type(const uint8_t *data, size_t size) {
  for (size_t i = 0; i + 3 < size; i++) {
    if (data[i] != 0 || data[i + 1] != 0 || data[i + 2] != 1)
      continue;
    const int type = data[i + 3] & 0x1f;
    if (type >= 1 && type <= 5)
      return type;
    i += 2;
  }
  return 0;
}

/* The same over an access unit in pieces (anything with .data and .size, in order), as if
 * they were one buffer: a start code may span two pieces. */
template <typename Pieces>
int h264_first_slice_type_of_pieces(const Pieces &pieces) {
  int zeros = 0;          /* zero bytes just seen */
  bool at_type = false;   /* the byte after a 00 00 01 start code is next */
  for (const auto &piece : pieces) {
    for (size_t i = 0; i < piece.size; i++) {
      const uint8_t b = piece.data[i];
      if (at_type) {
        const int type = b & 0x1f;
        if (type >= 1 && type <= 5)
          return type;
        at_type = false;
        zeros = b == 0 ? 1 : 0;
      } else if (b == 0) {
        zeros++;
      } else {
        at_type = b == 1 && zeros >= 2;
        zeros = 0;
      }
    }
  }
  return 0;
}

/* True when the access unit starts an IDR picture (its first slice is of type 5). */
inline bool h264_au_is_idr(const uint8_t *data, size_t size) {
  return h264_first_slice_type(data, size) == 5;
}

}  // namespace vmd
