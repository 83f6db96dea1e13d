/* Suite "browser": the bundled test VM watched and driven from real Chromium (Debian's, through
 * tests/browser/driver.mjs) with the project's own page served by vmwebrtcsink:
 *   qemudbussrc show-cursor=false ! vmwebrtcsink
 * - the page plays: frames decoded, the video's size is the VM's, the eight colour bars are
 *   where the guest drew them (sampled from the decoded frame), a screenshot is saved;
 * - control: a click and typed keys reach the guest (its serial log reports the evdev events
 *   with the right codes); a second tab, with control=first, is told view-only and its keys
 *   never reach the guest;
 * - two tabs play at once; "fit VM to window" at 800x600 gives the guest 800x600 (new caps at
 *   qemudbussrc); closing one tab leaves the other playing;
 * - 30 tabs come and go (half with DELETE, half closed abruptly): no webrtcbin is left, RSS
 *   growth of this process (the sink's side) is printed and bounded;
 * and without the VM: vsockenc's H.264 from helixframesrv, passed through, plays too.
 * Skipped (exit 77, with the reason) without Chromium, node/playwright-core or the VM.
 */
#include "crash-trace.h"
#include "browser-driver.h"
#include "sink-inspect.h"
#include "vm-check.h"

#include <gst/video/video.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include <gst/check/gstcheck.h>

namespace {

using testsupport::BrowserDriver;

/* The bars vmpattern draws, left to right (docs/testing.md). */
const guint8 kBars[8][3] = {{255, 255, 255}, {255, 255, 0}, {0, 255, 255}, {0, 255, 0},
                            {255, 0, 255},   {255, 0, 0},   {0, 0, 255},   {0, 0, 0}};

std::unique_ptr<BrowserDriver> start_browser() {
  std::string error;
  auto b = std::make_unique<BrowserDriver>();
  fail_unless(b->start(&error), "browser driver: %s", error.c_str());
  return b;
}

void must(bool ok, const std::string &what, const std::string &error) {
  fail_unless(ok, "%s: %s", what.c_str(), error.c_str());
}

std::string eval(BrowserDriver &b, const std::string &tab, const std::string &expr) {
  std::string value, error;
  must(b.eval(tab, expr, &value, &error), "eval " + expr, error);
  return value;
}

void cmd(BrowserDriver &b, const std::string &json) {
  bool ok = false;
  std::string reply = b.command(json, 30000, &ok);
  fail_unless(ok, "%s -> %s", json.c_str(), reply.c_str());
}

double number(BrowserDriver &b, const std::string &tab, const std::string &expr) {
  return g_ascii_strtod(eval(b, tab, expr).c_str(), nullptr);
}

std::string page_log(BrowserDriver &b, const std::string &tab) {
  bool ok = false;
  const std::string shot = std::string(g_get_tmp_dir()) + "/vmwebrtcsink-failed-" + tab + ".png";
  b.command("{\"cmd\":\"screenshot\",\"id\":\"" + tab + "\",\"path\":" +
                BrowserDriver::quote(shot) + "}",
            10000, &ok);
  return b.command("{\"cmd\":\"log\",\"id\":\"" + tab + "\"}", 10000, &ok);
}

/* The page state, for a failure message. */
std::string diagnostics(BrowserDriver &b, const std::string &tab) {
  return "state " + eval(b, tab, "vmViewer.state") + ", error " + eval(b, tab, "vmViewer.error") +
         ", " +
         eval(b, tab, "JSON.stringify({session: vmViewer.sessionUrl, channel: "
                      "vmViewer.channelOpen, decoded: vmViewer.framesDecoded, diag: "
                      "vmViewer.diagnostics})") +
         ", inbound " + eval(b, tab, "vmViewer.inboundStats().then(JSON.stringify)") +
         ", page log " + page_log(b, tab);
}

bool playing(BrowserDriver &b, const std::string &tab, guint timeout_ms) {
  std::string error;
  return b.wait(tab, "vmViewer.state === 'playing' && vmViewer.framesDecoded > 5", timeout_ms,
                &error);
}

std::string open_cmd(const std::string &tab, const std::string &url, int w, int h);
void cmd(BrowserDriver &b, const std::string &json);

/* Opens the page in a new tab until it plays. Headless Chromium here sometimes leaves a new
 * page stuck before its offer (ICE gathering never ends and the page's 2 s timer never fires;
 * see docs/vmwebrtcsink.md, Known problems): such a tab is closed and opened again, at most
 * three times, and every retry is printed. */
void open_playing(BrowserDriver &b, const std::string &tab, const std::string &url, int w,
                  int h, guint timeout_ms) {
  for (int attempt = 1;; attempt++) {
    cmd(b, open_cmd(tab, url, w, h));
    if (playing(b, tab, timeout_ms))
      return;
    const std::string why = diagnostics(b, tab);
    fail_unless(attempt < 3, "tab %s does not play after %d attempts: %s", tab.c_str(), attempt,
                why.c_str());
    g_print("tab %s did not play (attempt %d: %s); opening it again\n", tab.c_str(), attempt,
            why.c_str());
    cmd(b, "{\"cmd\":\"close\",\"id\":\"" + tab + "\"}");
  }
}

/* The tab decodes at least `more` new frames within timeout_ms. */
void keeps_playing(BrowserDriver &b, const std::string &tab, int more, guint timeout_ms) {
  const int now = int(number(b, tab, "vmViewer.framesDecoded"));
  std::string error;
  must(b.wait(tab, "vmViewer.framesDecoded >= " + std::to_string(now + more), timeout_ms,
              &error),
       "tab " + tab + " keeps playing", error);
}

/* Every bar's middle, sampled in the browser's decoded frame, within 24 levels. */
void check_bars(BrowserDriver &b, const std::string &tab, int w, int h) {
  std::vector<std::array<int, 2>> points;
  for (int i = 0; i < 8; i++)
    points.push_back({int((i + 0.5) * w / 8), h / 2});
  std::vector<std::array<int, 3>> rgb;
  std::string error;
  must(b.sample(tab, points, &rgb, &error), "sample", error);
  fail_unless_equals_int(int(rgb.size()), 8);
  for (int i = 0; i < 8; i++)
    for (int c = 0; c < 3; c++)
      fail_unless(std::abs(rgb[size_t(i)][size_t(c)] - kBars[i][c]) <= 24,
                  "bar %d at (%d,%d): %d,%d,%d, expected %d,%d,%d", i, points[size_t(i)][0],
                  points[size_t(i)][1], rgb[size_t(i)][0], rgb[size_t(i)][1], rgb[size_t(i)][2],
                  kBars[i][0], kBars[i][1], kBars[i][2]);
}


/* The size of the caps qemudbussrc sends (latest). */
struct CapsSeen {
  std::mutex lock;
  int w = 0, h = 0;
};

GstPadProbeReturn on_caps(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(e) == GST_EVENT_CAPS) {
    GstCaps *caps = nullptr;
    gst_event_parse_caps(e, &caps);
    GstVideoInfo vi;
    if (gst_video_info_from_caps(&vi, caps)) {
      auto *seen = static_cast<CapsSeen *>(data);
      std::lock_guard<std::mutex> guard(seen->lock);
      seen->w = GST_VIDEO_INFO_WIDTH(&vi);
      seen->h = GST_VIDEO_INFO_HEIGHT(&vi);
    }
  }
  return GST_PAD_PROBE_OK;
}

struct Pipeline {
  GstElement *pipeline = nullptr, *sink = nullptr;
  std::string url;
  explicit Pipeline(const std::string &desc) {
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr && !err, "%s: %s", desc.c_str(), err ? err->message : "");
    sink = gst_bin_get_by_name(GST_BIN(pipeline), "s");
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    gchar *u = nullptr;
    g_object_get(sink, "url", &u, nullptr);
    fail_unless(u != nullptr);
    url = u;
    g_free(u);
  }
  ~Pipeline() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
  }
  int webrtcbins() { return testsupport::count_webrtcbins(sink); }
  guint viewers() { return testsupport::sink_viewers(sink); }
};

std::string open_cmd(const std::string &tab, const std::string &url, int w, int h) {
  return "{\"cmd\":\"open\",\"id\":\"" + tab + "\",\"url\":" + BrowserDriver::quote(url) +
         ",\"width\":" + std::to_string(w) + ",\"height\":" + std::to_string(h) + "}";
}

bool skip_without_browser() {
  std::string why;
  if (!BrowserDriver::available(&why)) {
    g_print("SKIP: %s\n", why.c_str());
    return true;
  }
  return false;
}

/* evdev EV_KEY code `code` pressed (1) or released (0), seen after `after` bytes. */
bool guest_key(vmtest::TestVm &vm, int code, int value, int timeout_ms, size_t after) {
  return vm.wait_for_serial(" 1 " + std::to_string(code) + " " + std::to_string(value) + "\r",
                            timeout_ms, after) ||
         vm.wait_for_serial(" 1 " + std::to_string(code) + " " + std::to_string(value) + "\n",
                            10, after);
}

}  // namespace

GST_START_TEST(test_vm_in_browser) {
  SKIP_WITHOUT_VM();
  if (skip_without_browser())
    return;
  auto bus = vmtest::private_bus();
  vmtest::VmOptions o;
  o.name = "browservm";
  o.bus_address = bus->address();
  o.vga = "virtio";
  o.append = "vmpattern.output=drm vmpattern.virtio=1 vmpattern.follow=1 vmpattern.input=1";
  auto vm = vmtest::boot(o);
  fail_unless(vm->wait_for_serial("VMPATTERN READY", vmtest::slow(vmtest::kBootMs)),
              "the VM did not come up:\n%s", vm->serial_log().c_str());
  int w = 0, h = 0;
  const std::string log = vm->serial_log();
  fail_unless(sscanf(log.c_str() + log.find("VMPATTERN READY"), "VMPATTERN READY %dx%d", &w,
                     &h) == 2);

  /* Before the pipeline: its probe must outlive the pipeline's streaming threads. */
  CapsSeen caps;
  Pipeline p("qemudbussrc name=src address=" + bus->address() +
             " vm=browservm show-cursor=false ! vmwebrtcsink name=s port=0");
  GstElement *src = gst_bin_get_by_name(GST_BIN(p.pipeline), "src");
  GstPad *srcpad = gst_element_get_static_pad(src, "src");
  gst_pad_add_probe(srcpad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_caps, &caps, nullptr);
  gst_object_unref(srcpad);
  gst_object_unref(src);
  auto b = start_browser();
  g_print("Chromium %s, VM at %dx%d, page %s\n", b->version().c_str(), w, h, p.url.c_str());

  /* The page plays the VM at its size, bars where the guest drew them. */
  open_playing(*b, "a", p.url, w + 40, h + 120, vmtest::slow(20000));
  fail_unless_equals_int(int(number(*b, "a", "vmViewer.videoWidth")), w);
  fail_unless_equals_int(int(number(*b, "a", "vmViewer.videoHeight")), h);
  check_bars(*b, "a", w, h);
  const std::string shot = std::string(g_get_tmp_dir()) + "/vmwebrtcsink-browser.png";
  cmd(*b, "{\"cmd\":\"screenshot\",\"id\":\"a\",\"path\":" + BrowserDriver::quote(shot) + "}");
  g_print("screenshot: %s\n", shot.c_str());
  fail_unless(eval(*b, "a", "vmViewer.control") == "true");

  /* A click and keys reach the guest: BTN_LEFT (272), KEY_A (30), KEY_B (48). */
  size_t mark = vm->serial_log().size();
  cmd(*b, "{\"cmd\":\"click\",\"id\":\"a\",\"x\":" + std::to_string(w / 2) + ",\"y\":" +
              std::to_string(h / 2) + "}");
  fail_unless(guest_key(*vm, 272, 1, vmtest::slow(10000), mark), "no click in the guest:\n%s",
              vm->serial_log().substr(mark).c_str());
  fail_unless(guest_key(*vm, 272, 0, vmtest::slow(5000), mark));
  cmd(*b, "{\"cmd\":\"type\",\"id\":\"a\",\"text\":\"ab\"}");
  fail_unless(guest_key(*vm, 30, 1, vmtest::slow(10000), mark) &&
                  guest_key(*vm, 30, 0, vmtest::slow(5000), mark) &&
                  guest_key(*vm, 48, 1, vmtest::slow(5000), mark) &&
                  guest_key(*vm, 48, 0, vmtest::slow(5000), mark),
              "typed 'ab', the guest saw:\n%s", vm->serial_log().substr(mark).c_str());

  /* A second tab plays but may not type (control=first): KEY_C (46) never arrives, while
   * KEY_D (32) from the first tab, typed after it, does. */
  open_playing(*b, "b", p.url, w + 40, h + 120, vmtest::slow(20000));
  std::string error;
  must(b->wait("b", "vmViewer.control === false", vmtest::slow(10000), &error),
       "the second tab is told view-only", error);
  mark = vm->serial_log().size();
  cmd(*b, "{\"cmd\":\"type\",\"id\":\"b\",\"text\":\"c\"}");
  cmd(*b, "{\"cmd\":\"type\",\"id\":\"a\",\"text\":\"d\"}");
  fail_unless(guest_key(*vm, 32, 0, vmtest::slow(10000), mark));
  fail_unless(vm->serial_log().substr(mark).find(" 1 46 1") == std::string::npos,
              "the view-only tab typed into the guest:\n%s",
              vm->serial_log().substr(mark).c_str());
  keeps_playing(*b, "a", 10, vmtest::slow(10000));
  keeps_playing(*b, "b", 10, vmtest::slow(10000));

  /* "Fit VM to window" in an 800x600 area: the guest switches to 800x600. */
  /* The toolbar wraps on a narrow window: size the window until the area under it is
   * 800x600. */
  int height = 600 + 60, stage = 0;
  for (int i = 0; i < 5 && stage != 600; i++) {
    cmd(*b, "{\"cmd\":\"resize\",\"id\":\"a\",\"width\":800,\"height\":" +
                std::to_string(height) + "}");
    stage = int(number(*b, "a", "Math.floor(window.innerHeight - document.getElementById("
                                "'toolbar').getBoundingClientRect().height)"));
    height += 600 - stage;
  }
  fail_unless_equals_int(stage, 600);
  eval(*b, "a", "vmViewer.setFitVm(true), 1");
  fail_unless(vm->wait_for_serial("VMPATTERN READY 800x600", vmtest::slow(20000)),
              "the guest did not switch to 800x600:\n%s", vm->serial_log().c_str());
  for (int i = 0; i < 200; i++) {
    {
      std::lock_guard<std::mutex> guard(caps.lock);
      if (caps.w == 800 && caps.h == 600)
        break;
    }
    g_usleep(50000);
  }
  {
    std::lock_guard<std::mutex> guard(caps.lock);
    fail_unless(caps.w == 800 && caps.h == 600, "caps %dx%d", caps.w, caps.h);
  }
  must(b->wait("a", "vmViewer.videoWidth === 800 && vmViewer.videoHeight === 600",
               vmtest::slow(15000), &error),
       "the page shows 800x600", error);
  eval(*b, "a", "vmViewer.setFitVm(false), 1");

  /* Closing the first tab (abruptly) leaves the second playing. */
  cmd(*b, "{\"cmd\":\"close\",\"id\":\"a\"}");
  keeps_playing(*b, "b", 30, vmtest::slow(15000));
  cmd(*b, "{\"cmd\":\"close\",\"id\":\"b\"}");

  /* 30 tabs come and go: half DELETE (vmViewer.close()), half closed abruptly. */
  for (int i = 0; i < 100 && (p.viewers() > 0 || p.webrtcbins() > 0); i++)
    g_usleep(vmtest::slow(100) * 1000);
  const long rss_before = testsupport::rss_kib();
  for (int i = 0; i < 30; i++) {
    const std::string tab = "t" + std::to_string(i);
    open_playing(*b, tab, p.url, 640, 480, vmtest::slow(20000));
    if (i % 2 == 0)
      eval(*b, tab, "vmViewer.close(), 1");
    cmd(*b, "{\"cmd\":\"close\",\"id\":\"" + tab + "\"}");
  }
  for (int i = 0; i < 600 && (p.viewers() > 0 || p.webrtcbins() > 0); i++)
    g_usleep(100000);
  const long grown = testsupport::rss_kib() - rss_before;
  g_print("30 browser viewers came and went: %u viewers and %d webrtcbins left, RSS %+ld KiB\n",
          p.viewers(), p.webrtcbins(), grown);
  fail_unless_equals_int(int(p.viewers()), 0);
  fail_unless_equals_int(p.webrtcbins(), 0);
  fail_unless(g_getenv("VMD_VALGRIND") || grown < 64 * 1024, "RSS grew by %ld KiB", grown);
}
GST_END_TEST;

/* vsockenc's H.264, encoded by helixframesrv, passed through to the browser. */
GST_START_TEST(test_vsockenc_passthrough) {
  if (skip_without_browser())
    return;
  gchar *dir = g_dir_make_tmp("vmwebrtc-XXXXXX", nullptr);
  const std::string address = std::string("unix://") + dir + "/helix.sock";
  GError *err = nullptr;
  GstElement *host = gst_parse_launch(("helixframesrv address=" + address).c_str(), &err);
  fail_unless(host && !err);
  fail_unless(gst_element_set_state(host, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  {
    Pipeline p("videotestsrc is-live=true pattern=solid-color foreground-color=0xff20c040 ! "
               "video/x-raw,format=BGRx,width=640,height=360,framerate=30/1 ! vsockenc "
               "address=" + address + " ! h264parse ! vmwebrtcsink name=s port=0");
    auto b = start_browser();
    open_playing(*b, "p", p.url, 800, 600, vmtest::slow(20000));
    fail_unless_equals_int(int(number(*b, "p", "vmViewer.videoWidth")), 640);
    std::vector<std::array<int, 3>> rgb;
    std::string error;
    must(b->sample("p", {{320, 180}}, &rgb, &error), "sample", error);
    fail_unless(std::abs(rgb[0][0] - 0x20) <= 24 && std::abs(rgb[0][1] - 0xc0) <= 24 &&
                    std::abs(rgb[0][2] - 0x40) <= 24,
                "passthrough pixel %d,%d,%d, sent 20c040", rgb[0][0], rgb[0][1], rgb[0][2]);
  }
  gst_element_set_state(host, GST_STATE_NULL);
  gst_object_unref(host);
  unlink((std::string(dir) + "/helix.sock").c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

static Suite *browser_suite() {
  Suite *s = suite_create("vmwebrtcsink-browser");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_vsockenc_passthrough);
  tcase_add_test(tc, test_vm_in_browser);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  /* A teardown crash was seen twice in CI runs (never by hand): name where. */
  testsupport::install_crash_trace();
  return vmtest::finish_suite(gst_check_run_suite(browser_suite(), "vmwebrtcsink-browser",
                                                  __FILE__));
}
