/* gst-vmdisplay: upstream GstNavigation events as input for a QEMU console. */
#include "navigation-input.h"

#include "keymap.h"

#include <gst/video/navigation.h>

#include <algorithm>
#include <cmath>

namespace vmd {

int qemu_button_of(int x_button) {
  switch (x_button) {
    case 1:
      return kButtonLeft;
    case 2:
      return kButtonMiddle;
    case 3:
      return kButtonRight;
    case 4:
      return kButtonWheelUp;
    case 5:
      return kButtonWheelDown;
    case 6:
      return kButtonWheelLeft;
    case 7:
      return kButtonWheelRight;
    case 8:
      return kButtonSide;
    case 9:
      return kButtonExtra;
    default:
      return -1;
  }
}

namespace {

bool is_wheel(int b) {
  return b == kButtonWheelUp || b == kButtonWheelDown || b == kButtonWheelLeft ||
         b == kButtonWheelRight;
}

void click(uint32_t button, int times, std::vector<InputEvent> *out) {
  for (int i = 0; i < times; i++) {
    out->push_back(InputEvent::button(button, true));
    out->push_back(InputEvent::button(button, false));
  }
}

/* Whole notches in *acc, at most kMaxNotches each way; the rest stays. */
int take_notches(double *acc) {
  const double whole = std::trunc(*acc);
  *acc -= whole;
  return int(std::clamp(whole, double(-NavigationInput::kMaxNotches),
                        double(NavigationInput::kMaxNotches)));
}

bool relative_motion(GstEvent *event, std::vector<InputEvent> *out) {
  const GstStructure *s = gst_event_get_structure(event);
  const gchar *name = s ? gst_structure_get_string(s, "event") : nullptr;
  double dx, dy;
  if (!name || !g_str_equal(name, "mouse-move-relative") ||
      !gst_structure_get_double(s, "dx", &dx) || !gst_structure_get_double(s, "dy", &dy))
    return false;
  out->push_back(InputEvent::move_by(dx, dy));
  return true;
}

}  // namespace

bool NavigationInput::key(const char *name, bool down, std::vector<InputEvent> *out,
                          std::string *log_line) {
  const uint32_t qnum = keymap_qnum(name);
  if (qnum) {
    out->push_back(InputEvent::key(qnum, down));
    return true;
  }
  const std::string n = name ? name : "(none)";
  if (unknown_.size() < kMaxUnknownNames && unknown_.insert(n).second)
    *log_line = "key '" + n + "' is not in the key table (docs/keymap.md); it is not sent";
  return true;
}

void NavigationInput::scroll(double x, double y, double dx, double dy,
                             std::vector<InputEvent> *out) {
  out->push_back(InputEvent::move_to(x, y));
  if (std::isfinite(dy))
    scroll_y_ += dy;
  if (std::isfinite(dx))
    scroll_x_ += dx;
  const int up = take_notches(&scroll_y_), right = take_notches(&scroll_x_);
  click(up > 0 ? kButtonWheelUp : kButtonWheelDown, std::abs(up), out);
  click(right > 0 ? kButtonWheelRight : kButtonWheelLeft, std::abs(right), out);
}

bool NavigationInput::translate(GstEvent *event, std::vector<InputEvent> *out,
                                std::string *log_line) {
  const gchar *key_name = nullptr;
  gint button = 0;
  gdouble x = 0, y = 0, dx = 0, dy = 0;
  switch (gst_navigation_event_get_type(event)) {
    case GST_NAVIGATION_EVENT_KEY_PRESS:
    case GST_NAVIGATION_EVENT_KEY_RELEASE:
      if (!gst_navigation_event_parse_key_event(event, &key_name))
        return false;
      return key(key_name, gst_navigation_event_get_type(event) == GST_NAVIGATION_EVENT_KEY_PRESS,
                 out, log_line);
    case GST_NAVIGATION_EVENT_MOUSE_MOVE:
      if (!gst_navigation_event_parse_mouse_move_event(event, &x, &y))
        return false;
      out->push_back(InputEvent::move_to(x, y));
      return true;
    case GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS:
    case GST_NAVIGATION_EVENT_MOUSE_BUTTON_RELEASE: {
      if (!gst_navigation_event_parse_mouse_button_event(event, &button, &x, &y))
        return false;
      const bool down =
          gst_navigation_event_get_type(event) == GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS;
      const int b = qemu_button_of(button);
      out->push_back(InputEvent::move_to(x, y));
      if (b >= 0 && is_wheel(b)) {
        if (down) /* X reports a wheel click as a press and a release */
          click(uint32_t(b), 1, out);
      } else if (b >= 0) {
        out->push_back(InputEvent::button(uint32_t(b), down));
      }
      return true;
    }
    case GST_NAVIGATION_EVENT_MOUSE_SCROLL:
      if (!gst_navigation_event_parse_mouse_scroll_event(event, &x, &y, &dx, &dy))
        return false;
      scroll(x, y, dx, dy, out);
      return true;
    default:
      return relative_motion(event, out);
  }
}

}  // namespace vmd
