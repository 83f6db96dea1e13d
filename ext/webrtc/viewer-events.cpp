/* gst-vmdisplay: a viewer's input messages as upstream events for qemudbussrc
 * (viewer-events.h). What qemudbussrc reads is in ext/qemu/navigation-input.cpp (navigation
 * events, "mouse-move-relative" with double dx, dy) and ext/qemu/gstqemudbussrc-remote.cpp
 * (`qemu-ui-info` with uint width, height).
 */
#include "viewer-events.h"

#include <gst/video/navigation.h>

namespace vmd::webrtc {

namespace {

constexpr GstNavigationModifierType kNoModifiers = GST_NAVIGATION_MODIFIER_NONE;

/* The page's button (MouseEvent.button) as an X button number: 1 left, 2 middle, 3 right,
 * 8 back, 9 forward (4..7 are the wheel in X). */
int x_button_of(int button) {
  static const int kXButtons[] = {1, 2, 3, 8, 9};
  return button >= 0 && button < 5 ? kXButtons[button] : 0;
}

GstEvent *relative_motion(double dx, double dy) {
  return gst_event_new_navigation(gst_structure_new("application/x-gst-navigation", "event",
                                                    G_TYPE_STRING, "mouse-move-relative", "dx",
                                                    G_TYPE_DOUBLE, dx, "dy", G_TYPE_DOUBLE, dy,
                                                    nullptr));
}

GstEvent *ui_info(unsigned width, unsigned height) {
  return gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM,
                              gst_structure_new("qemu-ui-info", "width", G_TYPE_UINT, width,
                                                "height", G_TYPE_UINT, height, nullptr));
}

}  // namespace

GstEvent *ViewerEvents::event_for(const ViewerMessage &m) {
  using T = ViewerMessage::Type;
  switch (m.type) {
    case T::Pointer:
      x_ = m.x;
      y_ = m.y;
      return gst_navigation_event_new_mouse_move(x_, y_, kNoModifiers);
    case T::PointerRel:
      return relative_motion(m.x, m.y);
    case T::Button: {
      const int b = x_button_of(m.button);
      if (!b)
        return nullptr;
      return m.down ? gst_navigation_event_new_mouse_button_press(b, x_, y_, kNoModifiers)
                    : gst_navigation_event_new_mouse_button_release(b, x_, y_,
                                                                          kNoModifiers);
    }
    case T::Wheel:
      /* WheelEvent: dy > 0 scrolls down; GstNavigation: delta_y > 0 is up. */
      return gst_navigation_event_new_mouse_scroll(x_, y_, m.x, -m.y, kNoModifiers);
    case T::Key:
      if (m.code.empty())
        return nullptr;
      return m.down ? gst_navigation_event_new_key_press(m.code.c_str(), kNoModifiers)
                    : gst_navigation_event_new_key_release(m.code.c_str(), kNoModifiers);
    case T::Resize:
      return ui_info(m.width, m.height);
    case T::Ping:
      return nullptr;
  }
  return nullptr;
}

}  // namespace vmd::webrtc
