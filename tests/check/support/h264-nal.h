/* Test support: the NAL unit types in an Annex-B access unit, to check what encoders and
 * hosts flag (an IDR is type 5, an SPS type 7). Written apart from gst/helix/h264-au.h on
 * purpose: a test must not check the code under test with that same code. Header only. */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace testsupport {

inline std::vector<int> nal_types(const uint8_t *au, size_t size) {
  std::vector<int> types;
  for (size_t i = 0; i + 3 < size; i++) {
    if (au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1) {
      types.push_back(au[i + 3] & 0x1f);
      i += 2;
    }
  }
  return types;
}

inline std::vector<int> nal_types(const std::vector<uint8_t> &au) {
  return nal_types(au.data(), au.size());
}

/* True when the access unit holds an IDR slice. */
inline bool has_idr(const std::vector<uint8_t> &au) {
  for (int t : nal_types(au))
    if (t == 5)
      return true;
  return false;
}

}  // namespace testsupport
