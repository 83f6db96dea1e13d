/* qemudbussrc as a remote desktop against real QEMU (Debian's 7.2) and the
 * bundled test VM, which reports the input it receives on its serial
 * console (vmpattern.input=1: "VMINPUT ev N TYPE CODE VALUE", Linux codes)
 * and shows a hardware cursor (vmpattern.cursor=): navigation events arrive
 * as the right key codes, buttons, relative motion (PS/2 mouse) and
 * absolute positions (virtio tablet); nothing stays pressed after stop; the
 * guest cursor appears in the frames where the guest put it and as a
 * qemu-cursor event; set-ui-info gives new caps on virtio-gpu and is
 * tolerated on std VGA; and a person's view: ximagesink in a virtual X
 * server, typed into and clicked with xdotool. Suite "qemu". */
#include <sstream> /* before gstcheck.h, whose fail() macro breaks <ios> */

#include "src-pipeline.h"
#include "test-vm.h"
#include "vm-check.h"

#include <gst/check/gstcheck.h>
#include <gst/video/navigation.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using testsupport::Rgb;
using testsupport::SrcPipeline;
using vmtest::PrivateBus;
using vmtest::TestVm;
using vmtest::boot;
using vmtest::kBootMs;
using vmtest::slow;
using vmtest::VmOptions;

namespace {


/* Linux input codes (linux/input-event-codes.h), written here by hand. */
enum : int {
  EV_KEY = 1, EV_REL = 2, EV_ABS = 3,
  KEY_ENTER = 28, KEY_A = 30, KEY_B = 48, KEY_LEFTSHIFT = 42, KEY_F12 = 88, KEY_KPENTER = 96,
  KEY_RIGHTCTRL = 97, KEY_UP = 103, KEY_DELETE = 111,
  BTN_LEFT = 272, BTN_RIGHT = 273, BTN_MIDDLE = 274,
  REL_X = 0, REL_Y = 1, REL_WHEEL = 8, ABS_X = 0, ABS_Y = 1,
};

struct Ev {
  int type, code, value;
  bool operator==(const Ev &o) const { return type == o.type && code == o.code && value == o.value; }
};

/* The VMINPUT events in the serial log after `from` bytes. */
std::vector<Ev> guest_events(TestVm &vm, size_t from) {
  std::vector<Ev> out;
  std::istringstream lines(vm.serial_log().substr(from));
  std::string line;
  while (std::getline(lines, line)) {
    int n, t, c, v;
    if (sscanf(line.c_str(), "VMINPUT ev %d %d %d %d", &n, &t, &c, &v) == 4)
      out.push_back({t, c, v});
  }
  return out;
}

std::string describe(const std::vector<Ev> &evs) {
  std::string s;
  for (const Ev &e : evs)
    s += std::to_string(e.type) + ":" + std::to_string(e.code) + "=" + std::to_string(e.value) + " ";
  return s;
}

/* Waits until `want` appears in order (other events may come between). */
bool wait_sequence(TestVm &vm, size_t from, const std::vector<Ev> &want, int timeout_ms,
                   std::string *got) {
  const int64_t until = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  do {
    const std::vector<Ev> evs = guest_events(vm, from);
    size_t i = 0;
    for (const Ev &e : evs)
      if (i < want.size() && e == want[i])
        i++;
    *got = describe(evs);
    if (i == want.size())
      return true;
    g_usleep(50000);
  } while (g_get_monotonic_time() < until);
  return false;
}

/* Sum of the values of one relative axis. */
int rel_sum(TestVm &vm, size_t from, int code) {
  int sum = 0;
  for (const Ev &e : guest_events(vm, from))
    if (e.type == EV_REL && e.code == code)
      sum += e.value;
  return sum;
}

/* The last value of an absolute axis, or -1. */
int last_abs(TestVm &vm, size_t from, int code) {
  int v = -1;
  for (const Ev &e : guest_events(vm, from))
    if (e.type == EV_ABS && e.code == code)
      v = e.value;
  return v;
}

void send(SrcPipeline &pipe, GstEvent *event) {
  GstPad *pad = gst_element_get_static_pad(pipe.source(), "src");
  fail_unless(gst_pad_send_event(pad, event));
  gst_object_unref(pad);
}

void key(SrcPipeline &pipe, const char *name) {
  send(pipe, gst_navigation_event_new_key_press(name, GST_NAVIGATION_MODIFIER_NONE));
  send(pipe, gst_navigation_event_new_key_release(name, GST_NAVIGATION_MODIFIER_NONE));
}

void click(SrcPipeline &pipe, int button, double x, double y) {
  send(pipe, gst_navigation_event_new_mouse_button_press(button, x, y, GST_NAVIGATION_MODIFIER_NONE));
  send(pipe, gst_navigation_event_new_mouse_button_release(button, x, y, GST_NAVIGATION_MODIFIER_NONE));
}

void move(SrcPipeline &pipe, double x, double y) {
  send(pipe, gst_navigation_event_new_mouse_move(x, y, GST_NAVIGATION_MODIFIER_NONE));
}

std::unique_ptr<TestVm> boot_until(const VmOptions &o, const std::string &ready) {
  auto vm = boot(o);
  fail_unless(vm->wait_for_serial(ready, kBootMs), "VM did not boot:\n%s", vm->serial_log().c_str());
  return vm;
}

GstSample *pull_frame(SrcPipeline &pipe, int w, int h) {
  GstSample *s = pipe.pull_size(w, h, slow(15000));
  fail_unless(s != nullptr, "no %dx%d frame", w, h);
  return s;
}

}  // namespace

/* std VGA with a PS/2 keyboard and mouse (relative): keys of both naming
 * schemes, buttons, wheel, relative motion, release on stop, and
 * set-ui-info answered Unsupported without harm. */
GST_START_TEST(test_keyboard_and_relative_mouse) {
  SKIP_WITHOUT_VM();
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "ps2";
  o.bus_address = bus->address();
  o.append = "vmpattern.output=drm vmpattern.input=1";
  auto vm = boot_until(o, "VMPATTERN READY 1024x768");
  fail_unless(vm->wait_for_serial("Explorer Mouse", slow(20000)), "no PS/2 mouse:\n%s",
              vm->serial_log().c_str());
  auto pipe = std::make_unique<SrcPipeline>("qemudbussrc address=\"" + bus->address() +
                                            "\" keepalive-ms=200", "max-buffers=2 drop=true");
  fail_unless(pipe->play());
  gst_sample_unref(pull_frame(*pipe, 1024, 768));
  size_t from = vm->serial_log().size();
  key(*pipe, "KeyA");          /* W3C code */
  key(*pipe, "Return");        /* X keysym */
  key(*pipe, "ControlRight");  /* extended */
  key(*pipe, "ArrowUp");
  key(*pipe, "NumpadEnter");
  key(*pipe, "F12");
  key(*pipe, "Delete");
  click(*pipe, 1, 10, 10);
  click(*pipe, 3, 10, 10);
  click(*pipe, 2, 10, 10);
  /* Keyboard and mouse are two devices in the guest: each in its order. */
  std::string got;
  fail_unless(wait_sequence(*vm, from,
                            {{EV_KEY, KEY_A, 1}, {EV_KEY, KEY_A, 0}, {EV_KEY, KEY_ENTER, 1},
                             {EV_KEY, KEY_ENTER, 0}, {EV_KEY, KEY_RIGHTCTRL, 1},
                             {EV_KEY, KEY_RIGHTCTRL, 0}, {EV_KEY, KEY_UP, 1}, {EV_KEY, KEY_UP, 0},
                             {EV_KEY, KEY_KPENTER, 1}, {EV_KEY, KEY_KPENTER, 0},
                             {EV_KEY, KEY_F12, 1}, {EV_KEY, KEY_F12, 0}, {EV_KEY, KEY_DELETE, 1},
                             {EV_KEY, KEY_DELETE, 0}},
                            slow(10000), &got),
              "the guest's keyboard saw: %s", got.c_str());
  fail_unless(wait_sequence(*vm, from,
                            {{EV_KEY, BTN_LEFT, 1}, {EV_KEY, BTN_LEFT, 0}, {EV_KEY, BTN_RIGHT, 1},
                             {EV_KEY, BTN_RIGHT, 0}, {EV_KEY, BTN_MIDDLE, 1},
                             {EV_KEY, BTN_MIDDLE, 0}},
                            slow(10000), &got),
              "the guest's mouse saw: %s", got.c_str());

  /* Relative: the pointer's moves, as deltas from the last position (the
   * clicks above were at 10,10). */
  move(*pipe, 100, 100);
  fail_unless(wait_sequence(*vm, from, {{EV_REL, REL_X, 90}}, slow(5000), &got), "%s", got.c_str());
  g_usleep(300000);
  from = vm->serial_log().size();
  move(*pipe, 400, 50);
  g_usleep(300000);
  move(*pipe, 350, 250);
  send(*pipe, gst_navigation_event_new_mouse_scroll(350, 250, 0, 1, GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(wait_sequence(*vm, from, {{EV_REL, REL_WHEEL, 1}}, slow(10000), &got), "%s",
              got.c_str());
  g_usleep(300000);
  fail_unless_equals_int(rel_sum(*vm, from, REL_X), 250);
  fail_unless_equals_int(rel_sum(*vm, from, REL_Y), 150);

  /* A resize request to std VGA: Unsupported, logged, no error. */
  gboolean queued = FALSE;
  g_signal_emit_by_name(pipe->source(), "set-ui-info", 800u, 600u, &queued);
  fail_unless(queued);
  std::string message;
  fail_if(pipe->wait_error(1000, &message), "%s", message.c_str());
  gst_sample_unref(pull_frame(*pipe, 1024, 768));

  /* Shift held when the pipeline stops: released in the guest. */
  from = vm->serial_log().size();
  send(*pipe, gst_navigation_event_new_key_press("ShiftLeft", GST_NAVIGATION_MODIFIER_NONE));
  fail_unless(wait_sequence(*vm, from, {{EV_KEY, KEY_LEFTSHIFT, 1}}, slow(5000), &got), "%s",
              got.c_str());
  pipe.reset();
  fail_unless(wait_sequence(*vm, from, {{EV_KEY, KEY_LEFTSHIFT, 1}, {EV_KEY, KEY_LEFTSHIFT, 0}},
                            slow(5000), &got),
              "shift stuck after stop: %s", got.c_str());
}
GST_END_TEST;

namespace {

/* qemu-cursor events seen by the appsink. */
struct CursorProbe {
  std::mutex lock;
  GstStructure *last = nullptr;
  ~CursorProbe() {
    if (last)
      gst_structure_free(last);
  }
  static GstPadProbeReturn probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
    GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
    if (gst_event_has_name(e, "qemu-cursor")) {
      auto *self = static_cast<CursorProbe *>(data);
      std::lock_guard<std::mutex> guard(self->lock);
      if (self->last)
        gst_structure_free(self->last);
      self->last = gst_structure_copy(gst_event_get_structure(e));
    }
    return GST_PAD_PROBE_OK;
  }
  int field(const char *name) {
    std::lock_guard<std::mutex> guard(lock);
    gint v = -1;
    if (last)
      gst_structure_get_int(last, name, &v);
    return v;
  }
};

void probe_sink(SrcPipeline &pipe, CursorProbe *probe) {
  GstIterator *it = gst_bin_iterate_sinks(GST_BIN(pipe.pipeline()));
  GValue v = G_VALUE_INIT;
  fail_unless(gst_iterator_next(it, &v) == GST_ITERATOR_OK);
  GstPad *pad = gst_element_get_static_pad(GST_ELEMENT(g_value_get_object(&v)), "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, CursorProbe::probe, probe, nullptr);
  gst_object_unref(pad);
  g_value_unset(&v);
  gst_iterator_free(it);
}

bool is(Rgb c, uint8_t r, uint8_t g, uint8_t b) { return c.r == r && c.g == g && c.b == b; }

}  // namespace

/* virtio-vga with a virtio tablet: the guest's hardware cursor in the
 * frames and as an event, set-ui-info to a new mode the guest follows, and
 * absolute positions scaled as QEMU scales them. */
GST_START_TEST(test_cursor_resize_and_tablet) {
  SKIP_WITHOUT_VM();
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "virtio";
  o.bus_address = bus->address();
  o.vga = "virtio";
  /* QEMU 7.2 gives a listener only cursors defined after it registered:
   * the guest shows its cursor a while after it is ready. */
  o.append = "vmpattern.output=drm vmpattern.virtio=1 vmpattern.input=1 vmpattern.follow=1 "
             "vmpattern.cursor=100,50,3,5 vmpattern.cursor-delay-ms=" +
             std::to_string(slow(4000));
  o.extra_args = {"-device", "virtio-tablet-pci"};
  auto vm = boot_until(o, "VMPATTERN READY 1280x800");
  SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" keepalive-ms=200",
                   "max-buffers=2 drop=true");
  CursorProbe cursor;
  probe_sink(pipe, &cursor);
  fail_unless(pipe.play());
  gst_sample_unref(pull_frame(pipe, 1280, 800));
  fail_unless(vm->wait_for_serial("VMPATTERN cursor 100,50 hot 3,5", slow(20000)), "%s",
              vm->serial_log().c_str());
  /* The image's top-left is where the guest put it: magenta, then green. */
  const int64_t until = g_get_monotonic_time() + int64_t(slow(10000)) * 1000;
  bool drawn = false;
  while (!drawn && g_get_monotonic_time() < until) {
    GstSample *s = pipe.pull(slow(2000));
    fail_unless(s != nullptr);
    drawn = is(testsupport::pixel_at(s, 100, 50), 255, 0, 255) &&
            is(testsupport::pixel_at(s, 115, 65), 255, 0, 255) &&
            is(testsupport::pixel_at(s, 116, 50), 0, 255, 0) &&
            is(testsupport::pixel_at(s, 131, 65), 0, 255, 0) &&
            !is(testsupport::pixel_at(s, 132, 50), 0, 255, 0) &&
            !is(testsupport::pixel_at(s, 100, 66), 255, 0, 255);
    gst_sample_unref(s);
  }
  fail_unless(drawn, "the guest cursor is not in the frames at 100,50");
  /* The event: the pointer (hotspot) at 103,55, a 64x64 image. Reports
   * come once per frame interval, so the one with the position may follow
   * the frame that shows it. */
  const int64_t until_event = g_get_monotonic_time() + int64_t(slow(3000)) * 1000;
  while (cursor.field("x") != 103 && g_get_monotonic_time() < until_event)
    g_usleep(10000);
  fail_unless_equals_int(cursor.field("x"), 103);
  fail_unless_equals_int(cursor.field("y"), 55);
  fail_unless_equals_int(cursor.field("width"), 64);
  fail_unless_equals_int(cursor.field("hot-y"), 5);

  /* Resize on request: the guest follows, the caps follow the guest. */
  gboolean queued = FALSE;
  g_signal_emit_by_name(pipe.source(), "set-ui-info", 800u, 600u, &queued);
  fail_unless(queued);
  gst_sample_unref(pull_frame(pipe, 800, 600));
  fail_unless(vm->wait_for_serial("VMPATTERN READY 800x600", slow(5000)));

  /* The tablet: QEMU scales x to floor(x * 32767 / width). */
  fail_unless(vm->wait_for_serial("QEMU Virtio Tablet", slow(10000)));
  size_t from = vm->serial_log().size();
  std::string got;
  move(pipe, 400, 300);
  fail_unless(wait_sequence(*vm, from, {{EV_ABS, ABS_X, 16383}, {EV_ABS, ABS_Y, 16383}},
                            slow(10000), &got),
              "%s", got.c_str());
  move(pipe, 5000, 5000); /* outside: clamped to 799,599 */
  click(pipe, 1, 5000, 5000);
  fail_unless(wait_sequence(*vm, from, {{EV_ABS, ABS_X, 32726}, {EV_KEY, BTN_LEFT, 1},
                                        {EV_KEY, BTN_LEFT, 0}},
                            slow(10000), &got),
              "%s", got.c_str());
  fail_unless_equals_int(last_abs(*vm, from, ABS_Y), 32712);
}
GST_END_TEST;

/* What a person does: watch the VM in a window (ximagesink on a virtual X
 * server), type and click in it (xdotool); the guest gets the keys and the
 * click. */
GST_START_TEST(test_viewer_window) {
  SKIP_WITHOUT_VM();
  std::string error;
  if (!vmtest::VirtualDisplay::available(&error) ||
      !gst_registry_check_feature_version(gst_registry_get(), "ximagesink", 1, 0, 0)) {
    g_print("SKIP: %s\n", error.empty() ? "no ximagesink (install gstreamer1.0-x)" : error.c_str());
    return;
  }
  auto x = vmtest::VirtualDisplay::start(&error);
  fail_unless(x != nullptr, "%s", error.c_str());
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "viewer";
  o.bus_address = bus->address();
  o.append = "vmpattern.output=drm vmpattern.input=1";
  auto vm = boot_until(o, "VMPATTERN READY 1024x768");
  fail_unless(vm->wait_for_serial("Explorer Mouse", slow(20000)), "no PS/2 mouse:\n%s",
              vm->serial_log().c_str());
  g_setenv("DISPLAY", x->name().c_str(), TRUE);
  GstElement *pipeline = gst_parse_launch(("qemudbussrc address=\"" + bus->address() +
                                           "\" ! videoconvert ! ximagesink").c_str(),
                                          nullptr);
  fail_unless(pipeline != nullptr);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  /* The sink's window, once it is mapped. */
  std::string window;
  const int64_t until = g_get_monotonic_time() + int64_t(slow(20000)) * 1000;
  while (window.empty() && g_get_monotonic_time() < until) {
    std::string ids;
    x->xdotool({"search", "--onlyvisible", "--name", "."}, &ids);
    window = ids.substr(0, ids.find('\n'));
    if (window.empty())
      g_usleep(200000);
  }
  fail_unless(!window.empty(), "no video window");
  g_usleep(500000);
  size_t from = vm->serial_log().size();
  fail_unless(x->xdotool({"mousemove", "--window", window, "200", "150", "click", "1"}));
  fail_unless(x->xdotool({"windowfocus", window, "key", "--window", window, "a", "b", "Return"}));
  std::string got;
  bool ok = wait_sequence(*vm, from,
                          {{EV_KEY, KEY_A, 1}, {EV_KEY, KEY_A, 0}, {EV_KEY, KEY_B, 1},
                           {EV_KEY, KEY_B, 0}, {EV_KEY, KEY_ENTER, 1}, {EV_KEY, KEY_ENTER, 0}},
                          slow(10000), &got) &&
            wait_sequence(*vm, from, {{EV_KEY, BTN_LEFT, 1}, {EV_KEY, BTN_LEFT, 0}}, slow(10000),
                          &got);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  fail_unless(ok, "the guest saw: %s", got.c_str());
}
GST_END_TEST;

static Suite *qemudbussrc_input_vm_suite() {
  Suite *s = suite_create("qemudbussrc-input-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_keyboard_and_relative_mouse);
  tcase_add_test(tc, test_cursor_resize_and_tablet);
  tcase_add_test(tc, test_viewer_window);
  return s;
}

int main(int argc, char **argv) {
  return vmtest::vm_suite_main(argc, argv, qemudbussrc_input_vm_suite, "qemudbussrc_input_vm",
                               __FILE__);
}
