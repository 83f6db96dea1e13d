/* gst-vmdisplay: rate limit for resize requests (Console.SetUIInfo).
 *
 * A browser window being dragged asks for a new guest size many times a
 * second; each SetUIInfo makes the guest change its mode. The latest request
 * wins and at most one is sent per interval: the first at once, later ones
 * when the interval since the previous send has passed. Plain values, no
 * locking: the owner locks.
 */
#pragma once

#include <cstdint>

namespace vmd {

/* A requested guest display size (Console.SetUIInfo's arguments). */
struct UiInfo {
  uint32_t width = 0, height = 0;
  uint16_t width_mm = 0, height_mm = 0; /* 0: derived from 96 dpi */

  bool operator==(const UiInfo &o) const {
    return width == o.width && height == o.height && width_mm == o.width_mm &&
           height_mm == o.height_mm;
  }
};

/* Size at 96 dots per inch, in millimetres, as a display reports it. */
uint16_t ui_info_mm_at_96dpi(uint32_t pixels);

class UiInfoThrottle {
 public:
  static constexpr int64_t kDefaultIntervalUs = 200 * 1000;
  explicit UiInfoThrottle(int64_t interval_us = kDefaultIntervalUs) : interval_us_(interval_us) {}

  /* Replaces any request not sent yet. */
  void request(const UiInfo &info);
  /* The request to send at now_us, if one is due: true and *out. Else
   * *next_us is when to ask again (0: nothing pending). */
  bool take_due(int64_t now_us, UiInfo *out, int64_t *next_us);
  bool pending() const { return pending_; }

 private:
  int64_t interval_us_;
  bool pending_ = false;
  UiInfo latest_;
  bool sent_any_ = false;
  int64_t last_sent_us_ = 0;
};

}  // namespace vmd
