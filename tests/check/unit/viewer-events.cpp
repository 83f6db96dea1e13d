/* Unit: a viewer's messages as the upstream events qemudbussrc takes
 * (ext/webrtc/viewer-events.h), read back with GstNavigation's own parse functions and, for
 * the two custom events, field by field the way ext/qemu/navigation-input.cpp and
 * ext/qemu/gstqemudbussrc-remote.cpp read them. */
#include "viewer-events.h"

#include <gst/video/navigation.h>

#include <string>

/* After the standard headers: check's fail() macro would break <istream>. */
#include <gst/check/gstcheck.h>

using vmd::webrtc::ViewerMessage;
using T = vmd::webrtc::ViewerMessage::Type;

namespace {

ViewerMessage msg(T type, double x = 0, double y = 0) {
  ViewerMessage m;
  m.type = type;
  m.x = x;
  m.y = y;
  return m;
}

ViewerMessage button(int b, bool down) {
  ViewerMessage m = msg(T::Button);
  m.button = b;
  m.down = down;
  return m;
}

struct EventPtr {
  explicit EventPtr(GstEvent *e) : event(e) {}
  ~EventPtr() {
    if (event)
      gst_event_unref(event);
  }
  GstEvent *event;
};

void check_no_modifiers(GstEvent *e) {
  GstNavigationModifierType state = GstNavigationModifierType(-1);
  fail_unless(gst_navigation_event_parse_modifier_state(e, &state));
  fail_unless_equals_int(state, GST_NAVIGATION_MODIFIER_NONE);
}

void check_button(vmd::webrtc::ViewerEvents &ev, int b, bool down, int x_button, double x,
                  double y) {
  EventPtr e(ev.event_for(button(b, down)));
  fail_unless(e.event != nullptr);
  fail_unless_equals_int(GST_EVENT_TYPE(e.event), GST_EVENT_NAVIGATION);
  fail_unless_equals_int(gst_navigation_event_get_type(e.event),
                         down ? GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS
                              : GST_NAVIGATION_EVENT_MOUSE_BUTTON_RELEASE);
  gint got = -1;
  gdouble ex = -1, ey = -1;
  fail_unless(gst_navigation_event_parse_mouse_button_event(e.event, &got, &ex, &ey));
  fail_unless_equals_int(got, x_button);
  fail_unless_equals_float(ex, x);
  fail_unless_equals_float(ey, y);
  check_no_modifiers(e.event);
}

}  // namespace

GST_START_TEST(test_pointer) {
  vmd::webrtc::ViewerEvents ev;
  EventPtr e(ev.event_for(msg(T::Pointer, 100.5, -3)));
  fail_unless(e.event != nullptr);
  fail_unless_equals_int(GST_EVENT_TYPE(e.event), GST_EVENT_NAVIGATION);
  fail_unless_equals_int(gst_navigation_event_get_type(e.event), GST_NAVIGATION_EVENT_MOUSE_MOVE);
  gdouble x = 0, y = 0;
  fail_unless(gst_navigation_event_parse_mouse_move_event(e.event, &x, &y));
  fail_unless_equals_float(x, 100.5);
  fail_unless_equals_float(y, -3);
  check_no_modifiers(e.event);
}
GST_END_TEST;

/* X numbers (0 -> 1, 1 -> 2, 2 -> 3, 3 -> 8, 4 -> 9) at the last absolute position. */
GST_START_TEST(test_buttons) {
  vmd::webrtc::ViewerEvents ev;
  check_button(ev, 0, true, 1, 0, 0); /* no pointer message yet: at 0,0 */
  EventPtr move(ev.event_for(msg(T::Pointer, 10, 20)));
  const int x_of[] = {1, 2, 3, 8, 9};
  for (int b = 0; b < 5; b++) {
    check_button(ev, b, true, x_of[b], 10, 20);
    check_button(ev, b, false, x_of[b], 10, 20);
  }
  EventPtr move2(ev.event_for(msg(T::Pointer, 640, 480.5)));
  check_button(ev, 4, true, 9, 640, 480.5);
  /* Relative motion does not change the remembered absolute position. */
  EventPtr rel(ev.event_for(msg(T::PointerRel, 5, 5)));
  check_button(ev, 2, false, 3, 640, 480.5);
}
GST_END_TEST;

/* WheelEvent's dy > 0 is down; GstNavigation's delta_y > 0 is up. dx > 0 is right in both. */
GST_START_TEST(test_wheel) {
  vmd::webrtc::ViewerEvents ev;
  EventPtr move(ev.event_for(msg(T::Pointer, 7, 8)));
  const struct {
    double dx, dy, delta_x, delta_y;
  } cases[] = {{0, 1, 0, -1}, {0, -2, 0, 2}, {1.5, 0, 1.5, 0}, {-1, 0.5, -1, -0.5}};
  for (const auto &c : cases) {
    EventPtr e(ev.event_for(msg(T::Wheel, c.dx, c.dy)));
    fail_unless(e.event != nullptr);
    fail_unless_equals_int(gst_navigation_event_get_type(e.event),
                           GST_NAVIGATION_EVENT_MOUSE_SCROLL);
    gdouble x = 0, y = 0, dx = 0, dy = 0;
    fail_unless(gst_navigation_event_parse_mouse_scroll_event(e.event, &x, &y, &dx, &dy));
    fail_unless_equals_float(x, 7);
    fail_unless_equals_float(y, 8);
    fail_unless_equals_float(dx, c.delta_x);
    fail_unless_equals_float(dy, c.delta_y);
    check_no_modifiers(e.event);
  }
}
GST_END_TEST;

GST_START_TEST(test_key) {
  vmd::webrtc::ViewerEvents ev;
  for (const char *code : {"KeyA", "ShiftLeft", "F12", "Digit1"}) {
    for (bool down : {true, false}) {
      ViewerMessage m = msg(T::Key);
      m.code = code;
      m.down = down;
      EventPtr e(ev.event_for(m));
      fail_unless(e.event != nullptr);
      fail_unless_equals_int(gst_navigation_event_get_type(e.event),
                             down ? GST_NAVIGATION_EVENT_KEY_PRESS
                                  : GST_NAVIGATION_EVENT_KEY_RELEASE);
      const gchar *key = nullptr;
      fail_unless(gst_navigation_event_parse_key_event(e.event, &key));
      fail_unless_equals_string(key, code);
      check_no_modifiers(e.event);
    }
  }
}
GST_END_TEST;

/* The custom navigation event exactly as navigation-input.cpp reads it: structure field
 * "event" = "mouse-move-relative", doubles dx and dy. */
GST_START_TEST(test_pointer_rel) {
  vmd::webrtc::ViewerEvents ev;
  EventPtr e(ev.event_for(msg(T::PointerRel, -4, 2.5)));
  fail_unless(e.event != nullptr);
  fail_unless_equals_int(GST_EVENT_TYPE(e.event), GST_EVENT_NAVIGATION);
  fail_unless_equals_int(gst_navigation_event_get_type(e.event), GST_NAVIGATION_EVENT_INVALID);
  const GstStructure *s = gst_event_get_structure(e.event);
  fail_unless(gst_structure_has_name(s, "application/x-gst-navigation"));
  fail_unless_equals_string(gst_structure_get_string(s, "event"), "mouse-move-relative");
  fail_unless(gst_structure_get_field_type(s, "dx") == G_TYPE_DOUBLE);
  fail_unless(gst_structure_get_field_type(s, "dy") == G_TYPE_DOUBLE);
  gdouble dx = 0, dy = 0;
  fail_unless(gst_structure_get_double(s, "dx", &dx));
  fail_unless(gst_structure_get_double(s, "dy", &dy));
  fail_unless_equals_float(dx, -4);
  fail_unless_equals_float(dy, 2.5);
}
GST_END_TEST;

/* `qemu-ui-info` as qemudbussrc reads it (docs/qemudbussrc.md, "Resize on request"): a
 * custom upstream event, uint width and height. */
GST_START_TEST(test_resize) {
  vmd::webrtc::ViewerEvents ev;
  ViewerMessage m = msg(T::Resize);
  m.width = 1280;
  m.height = 800;
  EventPtr e(ev.event_for(m));
  fail_unless(e.event != nullptr);
  fail_unless_equals_int(GST_EVENT_TYPE(e.event), GST_EVENT_CUSTOM_UPSTREAM);
  fail_unless(gst_event_has_name(e.event, "qemu-ui-info"));
  const GstStructure *s = gst_event_get_structure(e.event);
  fail_unless(gst_structure_get_field_type(s, "width") == G_TYPE_UINT);
  fail_unless(gst_structure_get_field_type(s, "height") == G_TYPE_UINT);
  guint w = 0, h = 0;
  fail_unless(gst_structure_get_uint(s, "width", &w));
  fail_unless(gst_structure_get_uint(s, "height", &h));
  fail_unless_equals_int(w, 1280);
  fail_unless_equals_int(h, 800);
  fail_unless_equals_int(gst_structure_n_fields(s), 2);
}
GST_END_TEST;

GST_START_TEST(test_ping) {
  vmd::webrtc::ViewerEvents ev;
  ViewerMessage m = msg(T::Ping);
  m.t = 5;
  fail_unless(ev.event_for(m) == nullptr);
}
GST_END_TEST;

static Suite *viewer_events_suite(void) {
  Suite *s = suite_create("viewer-events");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_pointer);
  tcase_add_test(tc, test_buttons);
  tcase_add_test(tc, test_wheel);
  tcase_add_test(tc, test_key);
  tcase_add_test(tc, test_pointer_rel);
  tcase_add_test(tc, test_resize);
  tcase_add_test(tc, test_ping);
  return s;
}

GST_CHECK_MAIN(viewer_events);
