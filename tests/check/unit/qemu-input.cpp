/* Unit: input for a QEMU console: clamping, relative deltas, pointer mode
 * switches, the bounded queue, release of everything pressed, the resize
 * rate limit, and GstNavigation events turned into input. */
#include "navigation-input.h"
#include "qemu-input.h"
#include "ui-info-throttle.h"

#include <gst/check/gstcheck.h>
#include <gst/video/navigation.h>

#include <string>
#include <vector>

using vmd::InputCall;
using vmd::InputEvent;
using vmd::InputKind;

namespace {

/* The calls as text, one per call, so failures read like QEMU's methods. */
std::string text(const std::vector<InputCall> &calls) {
  std::string out;
  for (const InputCall &c : calls) {
    switch (c.method) {
      case InputCall::KeyPress: out += "kbd.press " + std::to_string(c.code); break;
      case InputCall::KeyRelease: out += "kbd.release " + std::to_string(c.code); break;
      case InputCall::ButtonPress: out += "mouse.press " + std::to_string(c.code); break;
      case InputCall::ButtonRelease: out += "mouse.release " + std::to_string(c.code); break;
      case InputCall::SetAbsPosition:
        out += "mouse.abs " + std::to_string(c.x) + " " + std::to_string(c.y);
        break;
      case InputCall::RelMotion:
        out += "mouse.rel " + std::to_string(c.x) + " " + std::to_string(c.y);
        break;
      case InputCall::ReleaseAll:
        out += "release-all";
        break;
    }
    out += ";";
  }
  return out;
}

std::string run(vmd::InputState &state, const std::vector<InputEvent> &events, uint32_t w = 640,
                uint32_t h = 480) {
  std::vector<InputCall> calls;
  for (const InputEvent &e : events)
    state.translate(e, w, h, &calls);
  return text(calls);
}

}  // namespace

/* A macro would evaluate a temporary string twice: compare copies. */
#define assert_calls(got, want)                                                    \
  do {                                                                            \
    const std::string got_ = (got);                                               \
    fail_unless(got_ == (want), "calls: got '%s', want '%s'", got_.c_str(), want); \
  } while (0)

GST_START_TEST(test_clamp_coordinate) {
  fail_unless_equals_int(vmd::clamp_coordinate(-3.5, 640), 0);
  fail_unless_equals_int(vmd::clamp_coordinate(0.4, 640), 0);
  fail_unless_equals_int(vmd::clamp_coordinate(0.6, 640), 1);
  fail_unless_equals_int(vmd::clamp_coordinate(639.4, 640), 639);
  fail_unless_equals_int(vmd::clamp_coordinate(640, 640), 639);
  fail_unless_equals_int(vmd::clamp_coordinate(1e30, 640), 639);
  fail_unless_equals_int(vmd::clamp_coordinate(NAN, 640), 0);
  fail_unless_equals_int(vmd::clamp_coordinate(5, 1), 0);
}
GST_END_TEST;

GST_START_TEST(test_absolute_pointer) {
  vmd::InputState state;
  state.set_absolute(true);
  assert_calls(
      run(state, {InputEvent::move_to(10, 20), InputEvent::move_to(10.2, 20.1),
                  InputEvent::move_to(-5, 900), InputEvent::move_to(700, -1)}),
      "mouse.abs 10 20;mouse.abs 0 479;mouse.abs 639 0;");
  /* Relative motion in absolute mode moves from the last position, clamped. */
  assert_calls(run(state, {InputEvent::move_by(-10, 5), InputEvent::move_by(1e9, 0)}),
                            "mouse.abs 629 5;mouse.abs 639 5;");
  /* No surface yet: pointer events go nowhere. */
  assert_calls(run(state, {InputEvent::move_to(1, 1)}, 0, 0), "");
}
GST_END_TEST;

GST_START_TEST(test_relative_pointer) {
  vmd::InputState state;
  /* The first position only anchors; then deltas between clamped positions. */
  assert_calls(
      run(state, {InputEvent::move_to(100, 100), InputEvent::move_to(103, 96),
                  InputEvent::move_to(103, 96), InputEvent::move_to(-50, 2000)}),
      "mouse.rel 3 -4;mouse.rel -103 383;");
  /* Relative events: fractions add up, nothing is lost. */
  assert_calls(run(state, {InputEvent::move_by(0.4, -0.4), InputEvent::move_by(0.4, -0.4),
                                        InputEvent::move_by(0.4, -0.4)}),
                            "mouse.rel 1 -1;");
  /* After relative motion the viewer's position is stale: anchor again. */
  assert_calls(run(state, {InputEvent::move_to(5, 5), InputEvent::move_to(6, 5)}),
                            "mouse.rel 1 0;");
  assert_calls(run(state, {InputEvent::move_by(NAN, 1)}), "");
}
GST_END_TEST;

GST_START_TEST(test_mode_switch) {
  vmd::InputState state;
  run(state, {InputEvent::move_to(100, 100)});
  state.set_absolute(true);
  assert_calls(run(state, {InputEvent::move_to(100, 100)}), "mouse.abs 100 100;");
  state.set_absolute(false);
  /* Back to relative: no jump from the absolute position. */
  assert_calls(run(state, {InputEvent::move_to(300, 300), InputEvent::move_to(301, 300)}),
                            "mouse.rel 1 0;");
}
GST_END_TEST;

/* Everything the pacer lets out, far in the future (no pacing left). */
std::string drain(vmd::InputPacer &p, int64_t *now) {
  std::vector<InputCall> out;
  int64_t next = 0;
  do {
    p.take_due(*now, &out, &next);
    if (next)
      *now = next;
  } while (next);
  return text(out);
}

GST_START_TEST(test_release_all) {
  vmd::InputState state;
  vmd::InputPacer pacer;
  std::vector<InputCall> calls;
  for (const InputEvent &e : {InputEvent::key(0x1d, true), InputEvent::key(0x1e, true),
                              InputEvent::key(0x1e, false), InputEvent::button(0, true),
                              InputEvent::button(9, true) /* not a QEMU button */})
    state.translate(e, 640, 480, &calls);
  pacer.add(calls);
  int64_t now = 0;
  assert_calls(drain(pacer, &now), "kbd.press 29;kbd.press 30;kbd.release 30;mouse.press 0;");
  fail_unless_equals_int(pacer.pressed(), 2);
  /* Release all: what went out pressed, nothing else. */
  calls.clear();
  state.translate(InputEvent::release_all(), 640, 480, &calls);
  pacer.add(calls);
  assert_calls(drain(pacer, &now), "kbd.release 29;mouse.release 0;");
  fail_unless_equals_int(pacer.pressed(), 0);
  pacer.add({{InputCall::ReleaseAll, 0, 0, 0}});
  assert_calls(drain(pacer, &now), "");
}
GST_END_TEST;

/* A burst still waiting when everything is released (stop, flush,
 * input=false) is dropped: the typing stops, and what went out pressed is
 * released at once, before the rest of the burst. */
GST_START_TEST(test_release_all_drops_the_backlog) {
  vmd::InputPacer pacer;
  std::vector<InputCall> burst{{InputCall::KeyPress, 0x2a, 0, 0}};
  for (int i = 0; i < 60; i++) {
    burst.push_back({InputCall::KeyPress, 0x1e, 0, 0});
    burst.push_back({InputCall::KeyRelease, 0x1e, 0, 0});
  }
  burst.push_back({InputCall::KeyRelease, 0x2a, 0, 0});
  pacer.add(burst);
  std::vector<InputCall> out;
  int64_t next = 0;
  pacer.take_due(0, &out, &next);                   /* shift down */
  pacer.take_due(next, &out, &next);                /* a down */
  assert_calls(text(out), "kbd.press 42;kbd.press 30;");
  pacer.add({{InputCall::ReleaseAll, 0, 0, 0}, {InputCall::KeyPress, 0x30, 0, 0}});
  int64_t now = next;
  const std::string rest = drain(pacer, &now);
  fail_unless(rest == "kbd.release 30;kbd.release 42;kbd.press 48;" ||
                  rest == "kbd.release 42;kbd.release 30;kbd.press 48;",
              "%s", rest.c_str());
  /* A new connection: releases of what is still down, the queue dropped. */
  out.clear();
  pacer.take_due(now + 100000, &out, &next);
  pacer.add({{InputCall::KeyPress, 0x10, 0, 0}, {InputCall::KeyPress, 0x11, 0, 0}});
  pacer.take_due(now + 200000, &out, &next);
  pacer.new_connection();
  now += 300000;
  assert_calls(drain(pacer, &now), "kbd.release 16;kbd.release 48;");
}
GST_END_TEST;

GST_START_TEST(test_queue) {
  vmd::InputQueue q;
  fail_unless(q.push(InputEvent::move_to(1, 1)));
  fail_unless(q.push(InputEvent::move_to(2, 3))); /* replaces */
  fail_unless(q.push(InputEvent::move_by(1, 1)));
  fail_unless(q.push(InputEvent::move_by(2, -3))); /* adds up */
  fail_unless(q.push(InputEvent::key(30, true)));
  std::vector<InputEvent> out;
  q.take(&out);
  fail_unless_equals_int(out.size(), 3);
  fail_unless(out[0].kind == InputKind::MoveTo && out[0].x == 2 && out[0].y == 3);
  fail_unless(out[1].kind == InputKind::MoveBy && out[1].x == 3 && out[1].y == -2);
  fail_unless(out[2].kind == InputKind::Key && out[2].down);
  q.take(&out);
  fail_unless(out.empty());
  /* Full: presses are dropped, releases are still taken, up to twice the
   * capacity. */
  for (size_t i = 0; i < vmd::InputQueue::kCapacity; i++)
    fail_unless(q.push(InputEvent::key(30, true)));
  fail_if(q.push(InputEvent::key(31, true)));
  fail_if(q.push(InputEvent::move_to(5, 5)));
  fail_unless(q.push(InputEvent::key(30, false)));
  fail_unless(q.push(InputEvent::release_all()));
  for (size_t i = 0; i < 2 * vmd::InputQueue::kCapacity; i++)
    q.push(InputEvent::button(0, false));
  q.take(&out);
  fail_unless_equals_int(out.size(), 2 * vmd::InputQueue::kCapacity);
  fail_unless(q.dropped() > 0);
}
GST_END_TEST;

GST_START_TEST(test_pacer) {
  vmd::InputPacer p;
  p.add({{InputCall::KeyPress, 30, 0, 0}, {InputCall::SetAbsPosition, 0, 5, 5},
         {InputCall::KeyRelease, 30, 0, 0}, {InputCall::ButtonPress, 0, 0, 0},
         {InputCall::RelMotion, 0, 1, 1}});
  std::vector<InputCall> out;
  int64_t next = 0;
  /* The first key goes, and the move behind it; the release waits 8 ms. */
  p.take_due(1000, &out, &next);
  assert_calls(text(out), "kbd.press 30;mouse.abs 5 5;");
  fail_unless_equals_int64(next, 1000 + vmd::InputPacer::kIntervalUs);
  out.clear();
  p.take_due(1000 + vmd::InputPacer::kIntervalUs - 1, &out, &next);
  fail_unless(out.empty());
  p.take_due(1000 + vmd::InputPacer::kIntervalUs, &out, &next);
  assert_calls(text(out), "kbd.release 30;");
  out.clear();
  /* Order is kept: the move waits behind the button. */
  p.take_due(1000 + 2 * vmd::InputPacer::kIntervalUs, &out, &next);
  assert_calls(text(out), "mouse.press 0;mouse.rel 1 1;");
  fail_unless(p.empty());
  fail_unless_equals_int64(next, 0);
  /* Bounded; releases still taken. */
  std::vector<InputCall> many(vmd::InputPacer::kCapacity + 10, {InputCall::KeyPress, 30, 0, 0});
  p.add(many);
  fail_unless_equals_int(p.dropped(), 10);
  p.add({{InputCall::KeyRelease, 30, 0, 0}});
  fail_unless_equals_int(p.dropped(), 10);
}
GST_END_TEST;

GST_START_TEST(test_ui_info_throttle) {
  vmd::UiInfoThrottle t(200000);
  vmd::UiInfo out;
  int64_t next = 0;
  fail_if(t.take_due(0, &out, &next));
  fail_unless_equals_int64(next, 0);
  /* The first request goes at once. */
  t.request({1024, 768, 0, 0});
  fail_unless(t.take_due(1000000, &out, &next));
  fail_unless_equals_int(out.width, 1024);
  /* A drag: many requests within the interval, the latest wins, once. */
  for (uint32_t w = 800; w < 900; w++)
    t.request({w, 600, 0, 0});
  fail_if(t.take_due(1100000, &out, &next));
  fail_unless_equals_int64(next, 1200000);
  fail_if(t.take_due(1199999, &out, &next));
  fail_unless(t.take_due(1200000, &out, &next));
  fail_unless_equals_int(out.width, 899);
  fail_if(t.take_due(1200001, &out, &next));
  fail_unless_equals_int64(next, 0);
  /* After a quiet interval a request goes at once again. */
  t.request({640, 480, 0, 0});
  fail_unless(t.take_due(1500000, &out, &next));
  fail_unless_equals_int(vmd::ui_info_mm_at_96dpi(96), 25);
  fail_unless_equals_int(vmd::ui_info_mm_at_96dpi(1920), 508);
}
GST_END_TEST;

namespace {

std::vector<InputEvent> nav(vmd::NavigationInput &n, GstEvent *event, std::string *log = nullptr) {
  std::vector<InputEvent> out;
  std::string line;
  n.translate(event, &out, &line);
  if (log)
    *log = line;
  gst_event_unref(event);
  return out;
}

}  // namespace

GST_START_TEST(test_navigation_keys) {
  vmd::NavigationInput n;
  auto out = nav(n, gst_navigation_event_new_key_press("KeyA", GST_NAVIGATION_MODIFIER_NONE));
  fail_unless_equals_int(out.size(), 1);
  fail_unless(out[0].kind == InputKind::Key && out[0].code == 0x1e && out[0].down);
  out = nav(n, gst_navigation_event_new_key_release("Control_R", GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 1 && out[0].code == 0x9d && !out[0].down);
  std::string log;
  out = nav(n, gst_navigation_event_new_key_press("NoSuchKey", GST_NAVIGATION_MODIFIER_NONE), &log);
  fail_unless(out.empty());
  fail_unless(log.find("NoSuchKey") != std::string::npos);
  /* Logged once per name. */
  nav(n, gst_navigation_event_new_key_release("NoSuchKey", GST_NAVIGATION_MODIFIER_NONE), &log);
  fail_unless(log.empty());
}
GST_END_TEST;

GST_START_TEST(test_navigation_pointer) {
  vmd::NavigationInput n;
  auto out = nav(n, gst_navigation_event_new_mouse_button_press(3, 10, 20, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless_equals_int(out.size(), 2);
  fail_unless(out[0].kind == InputKind::MoveTo && out[0].x == 10 && out[0].y == 20);
  fail_unless(out[1].kind == InputKind::Button && out[1].code == vmd::kButtonRight && out[1].down);
  out = nav(n, gst_navigation_event_new_mouse_button_release(8, 10, 20, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 2 && out[1].code == vmd::kButtonSide && !out[1].down);
  /* X's wheel buttons: one click on press, nothing on release. */
  out = nav(n, gst_navigation_event_new_mouse_button_press(5, 1, 1, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 3 && out[1].code == vmd::kButtonWheelDown && out[1].down &&
              !out[2].down);
  out = nav(n, gst_navigation_event_new_mouse_button_release(5, 1, 1, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless_equals_int(out.size(), 1);
  /* Scroll: a click per unit, fractions kept, at most 5 per event. */
  out = nav(n, gst_navigation_event_new_mouse_scroll(1, 2, 0, 1, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 3 && out[1].code == vmd::kButtonWheelUp);
  out = nav(n, gst_navigation_event_new_mouse_scroll(1, 2, 0.5, -0.5, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless_equals_int(out.size(), 1);
  out = nav(n, gst_navigation_event_new_mouse_scroll(1, 2, 0.5, -0.5, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 5 && out[1].code == vmd::kButtonWheelDown &&
              out[3].code == vmd::kButtonWheelRight);
  out = nav(n, gst_navigation_event_new_mouse_scroll(1, 2, -20, 0, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(out.size() == 11 && out[1].code == vmd::kButtonWheelLeft);
  /* Relative motion from a pointer-locked viewer. */
  GstStructure *s = gst_structure_new("application/x-gst-navigation", "event", G_TYPE_STRING,
                                      "mouse-move-relative", "dx", G_TYPE_DOUBLE, -3.0, "dy",
                                      G_TYPE_DOUBLE, 4.5, nullptr);
  out = nav(n, gst_event_new_navigation(s));
  fail_unless(out.size() == 1 && out[0].kind == InputKind::MoveBy && out[0].x == -3 &&
              out[0].y == 4.5);
}
GST_END_TEST;

static Suite *qemu_input_suite() {
  Suite *s = suite_create("qemu-input");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_clamp_coordinate);
  tcase_add_test(tc, test_absolute_pointer);
  tcase_add_test(tc, test_relative_pointer);
  tcase_add_test(tc, test_mode_switch);
  tcase_add_test(tc, test_release_all);
  tcase_add_test(tc, test_release_all_drops_the_backlog);
  tcase_add_test(tc, test_queue);
  tcase_add_test(tc, test_pacer);
  tcase_add_test(tc, test_ui_info_throttle);
  tcase_add_test(tc, test_navigation_keys);
  tcase_add_test(tc, test_navigation_pointer);
  return s;
}

GST_CHECK_MAIN(qemu_input);
