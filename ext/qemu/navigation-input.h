/* gst-vmdisplay: upstream GstNavigation events as input for a QEMU console.
 *
 * Keys are looked up by name in the key table (keymap.*: X keysym names and
 * W3C KeyboardEvent.code names); mouse buttons use X's numbering, as
 * GStreamer's video sinks do (1 left, 2 middle, 3 right, 4/5 wheel up/down,
 * 6/7 wheel left/right, 8 back/side, 9 forward/extra); a scroll event is
 * one wheel click (press and release) per unit of delta, positive y up and
 * positive x right, at most kMaxNotches per event. Besides GstNavigation's
 * own events, "mouse-move-relative" (fields dx, dy: doubles) carries
 * relative motion from a viewer with pointer lock. Positions are in the
 * element's output pixels and are clamped later, against the console.
 */
#pragma once

#include "qemu-input.h"

#include <gst/gst.h>

#include <set>
#include <string>
#include <vector>

namespace vmd {

class NavigationInput {
 public:
  static constexpr int kMaxNotches = 5;
  /* How many unknown key names are remembered (and logged) at most. */
  static constexpr size_t kMaxUnknownNames = 256;

  /* Appends the input for a navigation event. False when the event is not
   * one we use. A key name not in the table gives no input and, the first
   * time it is seen, a line for the log in *log_line. Not thread-safe. */
  bool translate(GstEvent *event, std::vector<InputEvent> *out, std::string *log_line);

 private:
  void scroll(double x, double y, double dx, double dy, std::vector<InputEvent> *out);
  bool key(const char *name, bool down, std::vector<InputEvent> *out, std::string *log_line);

  double scroll_x_ = 0, scroll_y_ = 0; /* fractions of a notch not sent yet */
  std::set<std::string> unknown_;
};

/* The QEMU button for an X button number, or -1 (wheel buttons included). */
int qemu_button_of(int x_button);

}  // namespace vmd
