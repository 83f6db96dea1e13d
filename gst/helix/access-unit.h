/* gst-vmdisplay: an encoded access unit as the encoder gave it: the GstBuffer (a reference)
 * kept mapped for reading, so its bytes go to the socket without a copy. Move-only; the
 * buffer is unmapped and released when it goes. */
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace vmd::helix {

class AccessUnit {
 public:
  AccessUnit() = default;
  /* Takes a new reference of buffer and maps it; empty() when it cannot be mapped. */
  explicit AccessUnit(GstBuffer *buffer) {
    if (buffer && gst_buffer_map(buffer, &map_, GST_MAP_READ))
      buffer_ = gst_buffer_ref(buffer);
  }
  ~AccessUnit() { reset(); }
  AccessUnit(AccessUnit &&o) noexcept : buffer_(std::exchange(o.buffer_, nullptr)), map_(o.map_) {}
  AccessUnit &operator=(AccessUnit &&o) noexcept {
    if (this != &o) {
      reset();
      buffer_ = std::exchange(o.buffer_, nullptr);
      map_ = o.map_;
    }
    return *this;
  }
  AccessUnit(const AccessUnit &) = delete;
  AccessUnit &operator=(const AccessUnit &) = delete;

  const uint8_t *data() const { return buffer_ ? map_.data : nullptr; }
  size_t size() const { return buffer_ ? map_.size : 0; }
  bool empty() const { return size() == 0; }

 private:
  void reset() {
    if (buffer_) {
      gst_buffer_unmap(buffer_, &map_);
      gst_buffer_unref(buffer_);
      buffer_ = nullptr;
    }
  }
  GstBuffer *buffer_ = nullptr;
  GstMapInfo map_ = GST_MAP_INFO_INIT;
};

}  // namespace vmd::helix
