/* qemudbussrc as a remote desktop against a scripted QEMU
 * (tests/check/support/fake-qemu): navigation events become the
 * Keyboard/Mouse calls QEMU records, in both pointer modes; nothing stays
 * pressed after stop, flush or input=false; the guest cursor is drawn into
 * frames and sent as qemu-cursor events and messages; resize requests reach
 * SetUIInfo, rate-limited, and Unsupported is tolerated. In process, peer
 * to peer through QMP. */
#include "fake-qemu.h"
#include "p2p-fixture.h"
#include "src-pipeline.h"

#include <gst/check/gstcheck.h>
#include <gst/video/navigation.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

using fakeqemu::FakeQemuOptions;
using testsupport::bgrx;
using testsupport::expected_rgb;
using testsupport::Rgb;
using Fixture = testsupport::P2pFixture;

namespace {

constexpr uint32_t kXRGB = 0x20020888;

/* Starts the fixture and shows a w x h surface, so pointer events have a
 * console to land on. */
void show_surface(Fixture &f, int w = 640, int h = 480, int seed = 1) {
  std::string error;
  fail_unless(f.qemu->scanout(w, h, w * 4, kXRGB, bgrx(w, h, seed), &error), "%s", error.c_str());
  GstSample *s = f.pipe->pull_size(w, h, 5000);
  fail_unless(s != nullptr, "no %dx%d frame", w, h);
  gst_sample_unref(s);
}

void send_nav(Fixture &f, GstEvent *event) {
  GstPad *pad = gst_element_get_static_pad(f.pipe->source(), "src");
  fail_unless(gst_pad_send_event(pad, event));
  gst_object_unref(pad);
}

/* Waits until the fake recorded at least n input calls; returns them. */
std::vector<std::string> input_calls(Fixture &f, size_t n, int timeout_ms = 5000) {
  const int64_t until = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  std::vector<std::string> log;
  while ((log = f.qemu->input_log()).size() < n && g_get_monotonic_time() < until)
    g_usleep(10000);
  return log;
}

std::string joined(const std::vector<std::string> &v) {
  std::string s;
  for (const auto &e : v)
    s += e + ";";
  return s;
}

void expect_input(Fixture &f, const std::vector<std::string> &want) {
  const std::vector<std::string> got = input_calls(f, want.size());
  fail_unless(got == want, "QEMU got %s\nexpected %s", joined(got).c_str(), joined(want).c_str());
}

GstEvent *key(const char *name, bool down) {
  return down ? gst_navigation_event_new_key_press(name, GST_NAVIGATION_MODIFIER_NONE)
              : gst_navigation_event_new_key_release(name, GST_NAVIGATION_MODIFIER_NONE);
}

GstEvent *button(int b, double x, double y, bool down) {
  return down ? gst_navigation_event_new_mouse_button_press(b, x, y, GST_NAVIGATION_MODIFIER_NONE)
              : gst_navigation_event_new_mouse_button_release(b, x, y, GST_NAVIGATION_MODIFIER_NONE);
}

GstEvent *move(double x, double y) {
  return gst_navigation_event_new_mouse_move(x, y, GST_NAVIGATION_MODIFIER_NONE);
}

}  // namespace

GST_START_TEST(test_keys_and_absolute_pointer) {
  FakeQemuOptions opts;
  opts.mouse_absolute = true;
  Fixture f("keepalive-ms=0", opts);
  show_surface(f);
  send_nav(f, key("KeyA", true));
  send_nav(f, key("KeyA", false));
  send_nav(f, key("Control_R", true));
  send_nav(f, key("NoSuchKey", true)); /* never sent */
  send_nav(f, key("Control_R", false));
  send_nav(f, move(100, 200));
  send_nav(f, button(1, 100, 200, true));
  send_nav(f, button(1, 100, 200, false));
  send_nav(f, move(5000, -20)); /* outside: clamped to the 640x480 console */
  send_nav(f, button(3, 639, 0, true));
  send_nav(f, button(3, 639, 0, false));
  send_nav(f, gst_navigation_event_new_mouse_scroll(10, 10, 0, -2, GST_NAVIGATION_MODIFIER_NONE));
  expect_input(f, {"kbd.press 30", "kbd.release 30", "kbd.press 157", "kbd.release 157",
                   "mouse.abs 100 200", "mouse.press 0", "mouse.release 0", "mouse.abs 639 0",
                   "mouse.press 2", "mouse.release 2", "mouse.abs 10 10", "mouse.press 4",
                   "mouse.release 4", "mouse.press 4", "mouse.release 4"});
  /* Every navigation event but the unknown key went on. */
  fail_unless_equals_uint64(f.pipe->stat("input-events"), 11);
}
GST_END_TEST;

namespace {

/* Sends events from make(i), i = 0, 1, ..., every 20 ms until QEMU's log
 * satisfies done (bounded); returns the log. The element's work is
 * asynchronous (a merged burst, a property change on the D-Bus thread), so
 * tests wait for effects instead of sleeping. */
template <typename Make, typename Done>
std::vector<std::string> send_until(Fixture &f, Make make, Done done, int *sent = nullptr) {
  const int64_t until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  std::vector<std::string> log;
  int i = 0;
  while (!done(log = f.qemu->input_log()) && g_get_monotonic_time() < until) {
    send_nav(f, make(i++));
    g_usleep(20000);
  }
  if (sent)
    *sent = i;
  return log;
}

bool starts(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

GST_START_TEST(test_relative_pointer_and_mode_switch) {
  Fixture f;
  show_surface(f);
  /* Relative: moves along y = 100 until one became a delta (the first
   * position only anchors), then one move to 500,400. */
  int sent = 0;
  std::vector<std::string> log = send_until(
      f, [](int i) { return move(100 + i, 100); },
      [](const std::vector<std::string> &l) { return !l.empty(); }, &sent);
  fail_unless(!log.empty() && starts(log[0], "mouse.rel "), "%s", joined(log).c_str());
  send_nav(f, move(500, 400));
  int sum_dx = 0, sum_dy = 0;
  const int64_t until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (sum_dy != 300 && g_get_monotonic_time() < until) {
    g_usleep(10000);
    sum_dx = sum_dy = 0;
    for (const auto &e : f.qemu->input_log()) {
      int dx, dy;
      if (sscanf(e.c_str(), "mouse.rel %d %d", &dx, &dy) == 2)
        sum_dx += dx, sum_dy += dy;
    }
  }
  /* The deltas add up to the way from the anchor (one of the first moves). */
  fail_unless_equals_int(sum_dy, 300);
  fail_unless(500 - sum_dx >= 100 && 500 - sum_dx < 100 + sent, "dx sum %d", sum_dx);

  /* The guest plugs a tablet: QEMU flips IsAbsolute and we follow; once a
   * move went out absolute, every later one does. */
  f.qemu->set_mouse_absolute(true);
  const size_t before_abs = f.qemu->input_log().size();
  log = send_until(
      f, [](int i) { return move(200 + i, 300); },
      [&](const std::vector<std::string> &l) {
        return l.size() > before_abs && starts(l.back(), "mouse.abs ");
      });
  fail_unless(starts(log.back(), "mouse.abs "), "%s", joined(log).c_str());
  for (int i = 0; i < 3; i++) {
    const size_t n = log.size();
    send_nav(f, move(10 + i, 20));
    log = input_calls(f, n + 1);
    fail_unless(log.size() == n + 1 && log.back() == "mouse.abs " + std::to_string(10 + i) + " 20",
                "%s", joined(log).c_str());
  }

  /* Back to relative, and relative motion from a pointer-locked viewer:
   * QEMU refuses absolute moves at once, so only the relative ones show. */
  f.qemu->set_mouse_absolute(false);
  const size_t before_rel = f.qemu->input_log().size();
  log = send_until(
      f,
      [](int) {
        return gst_event_new_navigation(gst_structure_new(
            "application/x-gst-navigation", "event", G_TYPE_STRING, "mouse-move-relative", "dx",
            G_TYPE_DOUBLE, -7.0, "dy", G_TYPE_DOUBLE, 3.0, nullptr));
      },
      [&](const std::vector<std::string> &l) { return l.size() > before_rel; });
  fail_unless(log.size() > before_rel && log[before_rel] == "mouse.rel -7 3", "%s",
              joined(log).c_str());
}
GST_END_TEST;

/* Keys and buttons still down are released when the stream stops. */
GST_START_TEST(test_release_on_stop) {
  Fixture f;
  show_surface(f);
  send_nav(f, key("ControlLeft", true));
  send_nav(f, key("ShiftLeft", true));
  send_nav(f, key("ShiftLeft", false));
  send_nav(f, button(2, 1, 1, true));
  input_calls(f, 4);
  f.pipe->stop();
  const std::vector<std::string> got = input_calls(f, 6);
  fail_unless(got.size() == 6, "%s", joined(got).c_str());
  std::vector<std::string> tail(got.begin() + 4, got.end());
  std::sort(tail.begin(), tail.end());
  fail_unless(tail == (std::vector<std::string>{"kbd.release 29", "mouse.release 1"}), "%s",
              joined(got).c_str());
}
GST_END_TEST;

/* Keys QEMU saw pressed and not released afterwards. */
std::vector<std::string> still_down(const std::vector<std::string> &log) {
  std::vector<std::string> down;
  for (const auto &e : log) {
    if (e.rfind("kbd.press ", 0) == 0 || e.rfind("mouse.press ", 0) == 0) {
      down.push_back(e.substr(e.find(' ') + 1) + (e[0] == 'k' ? "k" : "m"));
    } else if (e.rfind("kbd.release ", 0) == 0 || e.rfind("mouse.release ", 0) == 0) {
      const std::string code = e.substr(e.find(' ') + 1) + (e[0] == 'k' ? "k" : "m");
      down.erase(std::remove(down.begin(), down.end(), code), down.end());
    }
  }
  return down;
}

/* Typing still queued (paced) when the stream stops or input goes off:
 * what is left is dropped, and nothing stays pressed. */
GST_START_TEST(test_burst_then_stop_or_view_only) {
  for (bool view_only : {false, true}) {
    Fixture f;
    show_surface(f);
    send_nav(f, key("ShiftLeft", true));
    for (int i = 0; i < 60; i++) {
      send_nav(f, key("KeyA", true));
      send_nav(f, key("KeyA", false));
    }
    send_nav(f, key("ShiftLeft", false));
    g_usleep(100000); /* about 12 of the 122 calls went out */
    size_t at_switch = 0;
    if (view_only) {
      g_object_set(f.pipe->source(), "input", FALSE, nullptr);
      g_usleep(300000);
      at_switch = f.qemu->input_log().size();
      g_usleep(300000);
      fail_unless_equals_int(f.qemu->input_log().size(), at_switch);
    } else {
      f.pipe->stop();
    }
    const std::vector<std::string> log = f.qemu->input_log();
    fail_unless(log.size() < 60, "%zu calls: the backlog was sent", log.size());
    fail_unless(still_down(log).empty(), "still pressed: %s", joined(still_down(log)).c_str());
  }
}
GST_END_TEST;

/* ... and on a flush, and when input is switched off; view-only sends nothing. */
GST_START_TEST(test_release_on_flush_and_view_only) {
  Fixture f;
  show_surface(f);
  send_nav(f, key("AltLeft", true));
  expect_input(f, {"kbd.press 56"});
  GstPad *pad = gst_element_get_static_pad(f.pipe->source(), "src");
  fail_unless(gst_pad_send_event(pad, gst_event_new_flush_start()));
  fail_unless(gst_pad_send_event(pad, gst_event_new_flush_stop(FALSE)));
  gst_object_unref(pad);
  expect_input(f, {"kbd.press 56", "kbd.release 56"});
  send_nav(f, key("KeyB", true));
  expect_input(f, {"kbd.press 56", "kbd.release 56", "kbd.press 48"});
  g_object_set(f.pipe->source(), "input", FALSE, nullptr);
  send_nav(f, key("KeyC", true));
  send_nav(f, move(5, 5));
  g_usleep(300000);
  expect_input(f, {"kbd.press 56", "kbd.release 56", "kbd.press 48", "kbd.release 48"});
}
GST_END_TEST;

namespace {

/* Collects qemu-cursor events reaching the appsink's pad. */
struct CursorEvents {
  std::mutex lock;
  std::vector<GstStructure *> seen;
  ~CursorEvents() {
    for (auto *s : seen)
      gst_structure_free(s);
  }
  static GstPadProbeReturn probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
    GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(e) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY && gst_event_has_name(e, "qemu-cursor")) {
      auto *self = static_cast<CursorEvents *>(data);
      std::lock_guard<std::mutex> guard(self->lock);
      self->seen.push_back(gst_structure_copy(gst_event_get_structure(e)));
    }
    return GST_PAD_PROBE_OK;
  }
  /* The latest event whose x equals want_x, within the timeout. */
  GstStructure *wait_x(int want_x, int timeout_ms) {
    const int64_t until = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
    do {
      {
        std::lock_guard<std::mutex> guard(lock);
        for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
          int x;
          if (gst_structure_get_int(*it, "x", &x) && x == want_x)
            return *it;
        }
      }
      g_usleep(10000);
    } while (g_get_monotonic_time() < until);
    return nullptr;
  }
};

/* A 12x10 cursor: opaque red except a transparent left column. */
std::vector<uint8_t> red_cursor() {
  std::vector<uint8_t> px(12 * 10 * 4);
  for (int y = 0; y < 10; y++)
    for (int x = 0; x < 12; x++) {
      uint32_t argb = x == 0 ? 0x00000000u : 0xffff0000u;
      std::memcpy(&px[(y * 12 + x) * 4], &argb, 4);
    }
  return px;
}

void attach(Fixture &f, CursorEvents *events) {
  GstElement *sink = gst_bin_get_by_name(GST_BIN(f.pipe->pipeline()), "sink");
  if (!sink) {
    GstIterator *it = gst_bin_iterate_sinks(GST_BIN(f.pipe->pipeline()));
    GValue v = G_VALUE_INIT;
    fail_unless(gst_iterator_next(it, &v) == GST_ITERATOR_OK);
    sink = GST_ELEMENT(g_value_dup_object(&v));
    g_value_unset(&v);
    gst_iterator_free(it);
  }
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, CursorEvents::probe, events, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);
}

}  // namespace

GST_START_TEST(test_cursor_drawn_and_sent) {
  Fixture f("keepalive-ms=0");
  CursorEvents events;
  attach(f, &events);
  show_surface(f, 64, 48, 3);
  std::string error;
  fail_unless(f.qemu->cursor_define(12, 10, 2, 3, red_cursor(), &error), "%s", error.c_str());
  fail_unless(f.qemu->mouse_set(20, 15, 1, &error), "%s", error.c_str());
  /* The frame shows it at MouseSet's corner; its left column is see-through. */
  GstSample *s = nullptr;
  for (int i = 0; i < 20; i++) {
    if (s)
      gst_sample_unref(s);
    s = f.pipe->pull(2000);
    fail_unless(s != nullptr);
    if (testsupport::pixel_at(s, 21, 15).r == 255 && testsupport::pixel_at(s, 21, 15).g == 0)
      break;
  }
  Rgb c = testsupport::pixel_at(s, 21, 15), corner = testsupport::pixel_at(s, 31, 24);
  Rgb see = testsupport::pixel_at(s, 20, 15), out = testsupport::pixel_at(s, 33, 25);
  Rgb want_see = expected_rgb(20, 15, 3), want_out = expected_rgb(33, 25, 3);
  fail_unless(c.r == 255 && c.g == 0 && c.b == 0 && corner.r == 255 && corner.g == 0,
              "cursor pixels %02x%02x%02x %02x%02x%02x", c.r, c.g, c.b, corner.r, corner.g, corner.b);
  fail_unless(see.r == want_see.r && see.g == want_see.g && out.g == want_out.g);
  gst_sample_unref(s);
  /* The event: the pointer at the hotspot, the image as ARGB words. */
  GstStructure *ev = events.wait_x(22, 3000);
  fail_unless(ev != nullptr, "no qemu-cursor event at x 22");
  gint y = 0, w = 0, hot_y = 0;
  gboolean visible = FALSE;
  fail_unless(gst_structure_get_int(ev, "y", &y) && y == 18);
  fail_unless(gst_structure_get_int(ev, "width", &w) && w == 12);
  fail_unless(gst_structure_get_int(ev, "hot-y", &hot_y) && hot_y == 3);
  fail_unless(gst_structure_get_boolean(ev, "visible", &visible) && visible);
  const GValue *img = gst_structure_get_value(ev, "image");
  fail_unless(img && GST_VALUE_HOLDS_BUFFER(img));
  GstBuffer *buf = gst_value_get_buffer(img);
  fail_unless_equals_int(gst_buffer_get_size(buf), 12 * 10 * 4);
  uint32_t px;
  gst_buffer_extract(buf, 4, &px, 4);
  fail_unless_equals_int(px, 0xffff0000u);
  /* Moving it: a new frame restores where it was. */
  fail_unless(f.qemu->mouse_set(40, 30, 1, &error));
  fail_unless(events.wait_x(42, 3000) != nullptr);
  s = nullptr;
  for (int i = 0; i < 20; i++) {
    if (s)
      gst_sample_unref(s);
    s = f.pipe->pull(2000);
    fail_unless(s != nullptr);
    if (testsupport::pixel_at(s, 41, 30).r == 255 && testsupport::pixel_at(s, 41, 30).g == 0)
      break;
  }
  Rgb back = testsupport::pixel_at(s, 21, 15);
  Rgb want_back = expected_rgb(21, 15, 3);
  fail_unless(back.r == want_back.r && back.g == want_back.g && back.b == want_back.b,
              "the old cursor position was not restored");
  gst_sample_unref(s);
  fail_unless(f.pipe->stat("cursor-events") >= 2);
}
GST_END_TEST;

/* show-cursor=false: no cursor in the frames, and a move is an event and a
 * message, not a frame. */
GST_START_TEST(test_cursor_not_drawn) {
  Fixture f("keepalive-ms=0 show-cursor=false max-framerate=10/1");
  CursorEvents events;
  attach(f, &events);
  show_surface(f, 64, 48, 5);
  std::string error;
  fail_unless(f.qemu->cursor_define(12, 10, 0, 0, red_cursor(), &error), "%s", error.c_str());
  fail_unless(f.qemu->mouse_set(10, 10, 1, &error));
  fail_unless(events.wait_x(10, 3000) != nullptr);
  const uint64_t frames = f.pipe->stat("frames"), reports = f.pipe->stat("cursor-events");
  const int64_t t0 = g_get_monotonic_time();
  for (int x = 11; x < 60; x++)
    fail_unless(f.qemu->mouse_set(x, 10, 1, &error));
  const int64_t moving_ms = (g_get_monotonic_time() - t0) / 1000;
  fail_unless(events.wait_x(59, 3000) != nullptr);
  fail_unless_equals_uint64(f.pipe->stat("frames"), frames);
  /* 49 moves, reported at most once per frame interval (100 ms) and once
   * more for the last. */
  const uint64_t sent = f.pipe->stat("cursor-events") - reports;
  fail_unless(sent <= uint64_t(moving_ms / 100 + 2), "%" G_GUINT64_FORMAT " reports for 49 moves in %"
              G_GINT64_FORMAT " ms", sent, moving_ms);
  /* Applications get it as an element message too. */
  GstBus *bus = gst_element_get_bus(f.pipe->pipeline());
  bool message = false;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    message |= gst_message_has_name(m, "qemu-cursor");
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  fail_unless(message, "no qemu-cursor element message");
  /* Switched on while playing: drawn from the next frame. */
  g_object_set(f.pipe->source(), "show-cursor", TRUE, nullptr);
  GstSample *s = f.pipe->pull(3000);
  fail_unless(s != nullptr);
  Rgb c = testsupport::pixel_at(s, 60, 12);
  fail_unless(c.r == 255 && c.g == 0 && c.b == 0);
  gst_sample_unref(s);
}
GST_END_TEST;

namespace {

std::vector<std::string> ui_infos(Fixture &f, size_t n, int timeout_ms) {
  const int64_t until = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  std::vector<std::string> log;
  while ((log = f.qemu->ui_info_log()).size() < n && g_get_monotonic_time() < until)
    g_usleep(10000);
  return log;
}

}  // namespace

GST_START_TEST(test_ui_info_rate_limited) {
  FakeQemuOptions opts;
  opts.ui_info_supported = true;
  Fixture f("keepalive-ms=0", opts);
  show_surface(f);
  gboolean queued = FALSE;
  g_signal_emit_by_name(f.pipe->source(), "set-ui-info", 1024u, 768u, &queued);
  fail_unless(queued);
  fail_unless(ui_infos(f, 1, 3000).size() == 1);
  /* A drag: 40 requests in 100 ms; the latest wins, at most one per 200 ms. */
  const int64_t t0 = g_get_monotonic_time();
  for (guint w = 801; w <= 840; w++) {
    g_signal_emit_by_name(f.pipe->source(), "set-ui-info", w, 600u, &queued);
    g_usleep(2500);
  }
  const int64_t elapsed_ms = (g_get_monotonic_time() - t0) / 1000;
  std::vector<std::string> log = ui_infos(f, 2, 3000);
  g_usleep(500000);
  log = f.qemu->ui_info_log();
  /* One call per 200 ms began while the requests came (however long the
   * loop took on a busy machine), plus the latest one after them. */
  const size_t most = 1 + size_t(elapsed_ms / 200 + 1) + 1;
  fail_unless(log.size() >= 2 && log.size() <= most, "%zu calls in %" G_GINT64_FORMAT " ms",
              log.size(), elapsed_ms);
  fail_unless(log.size() < 20, "no rate limit: %zu calls", log.size());
  fail_unless(log.back().rfind("840x600 ", 0) == 0, "last call %s", log.back().c_str());
  /* 96 dpi when no size in mm was given. */
  fail_unless(log[0] == "1024x768 271x203mm at 0,0", "%s", log[0].c_str());
  /* The event form, with millimetres; the new mode arrives as a Scanout. */
  GstPad *pad = gst_element_get_static_pad(f.pipe->source(), "src");
  GstStructure *s = gst_structure_new("qemu-ui-info", "width", G_TYPE_UINT, 800u, "height",
                                      G_TYPE_UINT, 600u, "width-mm", G_TYPE_UINT, 300u,
                                      "height-mm", G_TYPE_UINT, 225u, nullptr);
  fail_unless(gst_pad_send_event(pad, gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, s)));
  gst_object_unref(pad);
  log = ui_infos(f, log.size() + 1, 3000);
  fail_unless(log.back() == "800x600 300x225mm at 0,0", "%s", log.back().c_str());
  show_surface(f, 800, 600);
  /* Absurd sizes are refused at once. */
  g_signal_emit_by_name(f.pipe->source(), "set-ui-info", 0u, 600u, &queued);
  fail_if(queued);
  g_signal_emit_by_name(f.pipe->source(), "set-ui-info", 100000u, 600u, &queued);
  fail_if(queued);
}
GST_END_TEST;

GST_START_TEST(test_ui_info_unsupported_tolerated) {
  Fixture f; /* the fake answers Unsupported, like std VGA */
  show_surface(f);
  gboolean queued = FALSE;
  for (int i = 0; i < 3; i++) {
    g_signal_emit_by_name(f.pipe->source(), "set-ui-info", 800u, 600u, &queued);
    fail_unless(queued);
    ui_infos(f, size_t(i) + 1, 3000);
  }
  fail_unless_equals_int(f.qemu->ui_info_log().size(), 3);
  /* Not an error, and the stream goes on. */
  std::string message;
  fail_if(f.pipe->wait_error(300, &message), "%s", message.c_str());
  std::string error;
  fail_unless(f.qemu->scanout(640, 480, 640 * 4, kXRGB, bgrx(640, 480, 9), &error));
  GstSample *s = f.pipe->pull(3000);
  fail_unless(s != nullptr);
  gst_sample_unref(s);
}
GST_END_TEST;

static Suite *qemudbussrc_remote_suite() {
  Suite *s = suite_create("qemudbussrc-remote");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_keys_and_absolute_pointer);
  tcase_add_test(tc, test_relative_pointer_and_mode_switch);
  tcase_add_test(tc, test_release_on_stop);
  tcase_add_test(tc, test_release_on_flush_and_view_only);
  tcase_add_test(tc, test_burst_then_stop_or_view_only);
  tcase_add_test(tc, test_cursor_drawn_and_sent);
  tcase_add_test(tc, test_cursor_not_drawn);
  tcase_add_test(tc, test_ui_info_rate_limited);
  tcase_add_test(tc, test_ui_info_unsupported_tolerated);
  return s;
}

GST_CHECK_MAIN(qemudbussrc_remote);
