/* gst-vmdisplay: a viewer's input messages as the upstream events qemudbussrc takes
 * (docs/qemudbussrc.md): GstNavigation mouse-move / mouse-button-press/-release (X button
 * numbers: 0 left -> 1, 1 middle -> 2, 2 right -> 3, 3 back -> 8, 4 forward -> 9, at the
 * last pointer position) / mouse-scroll (delta_y = -dy: up is positive there) / key-press /
 * key-release (key = the KeyboardEvent.code), the custom navigation event
 * "mouse-move-relative" (dx, dy), and the custom upstream event `qemu-ui-info` (width,
 * height) for resize.
 */
#pragma once

#include "viewer-protocol.h"

#include <gst/gst.h>

namespace vmd::webrtc {

class ViewerEvents {
 public:
  /* The upstream event for a message, or nullptr (ping). Remembers the last absolute
   * pointer position for buttons and wheel. Not thread-safe. */
  GstEvent *event_for(const ViewerMessage &m);

 private:
  double x_ = 0, y_ = 0;
};

}  // namespace vmd::webrtc
