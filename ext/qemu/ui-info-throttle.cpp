/* gst-vmdisplay: rate limit for resize requests (Console.SetUIInfo). */
#include "ui-info-throttle.h"

#include <algorithm>

namespace vmd {

uint16_t ui_info_mm_at_96dpi(uint32_t pixels) {
  const uint64_t mm = (uint64_t(pixels) * 254 + 480) / 960; /* 25.4 mm per inch */
  return uint16_t(std::min<uint64_t>(mm, UINT16_MAX));
}

void UiInfoThrottle::request(const UiInfo &info) {
  latest_ = info;
  pending_ = true;
}

bool UiInfoThrottle::take_due(int64_t now_us, UiInfo *out, int64_t *next_us) {
  *next_us = 0;
  if (!pending_)
    return false;
  const int64_t due = sent_any_ ? last_sent_us_ + interval_us_ : now_us;
  if (now_us < due) {
    *next_us = due;
    return false;
  }
  *out = latest_;
  pending_ = false;
  sent_any_ = true;
  last_sent_us_ = now_us;
  return true;
}

}  // namespace vmd
