/* The host side of remote encoding against the real thing: the test VM shows
 * its pattern on QEMU's D-Bus display, `qemudbussrc ! helixframesrv` keeps
 * the host's own copy of that scanout, and an HXFR client asks for it the way
 * a guest does on the resource-ID path (FRAME_REQUEST with a resource ID,
 * scanout 0) and by SUBSCRIBE. What comes back is decoded with avdec_h264 and
 * must show the guest's colour bars and a frame counter that moves.
 * Suite "qemu". */
#include "h264-nal.h"
#include "hxfr-client.h"
#include "src-pipeline.h"
#include "test-vm.h"

#include <gst/check/gstcheck.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace hx = vmd::hxfr;
using testsupport::has_idr;
using testsupport::HxfrClient;
using testsupport::Rgb;
using testsupport::SrcPipeline;

namespace {

constexpr int kWidth = 1024, kHeight = 768;
constexpr int kIoMs = 10000;

const auto &kBars = testsupport::kVmPatternBars;

/* H.264 at the default bitrate keeps flat bars within a few levels; 4:2:0
 * chroma and rounding in the YUV round trip stay well inside this. */
constexpr int kTolerance = 24;

bool near(const Rgb &a, const Rgb &b) {
  return std::abs(a.r - b.r) <= kTolerance && std::abs(a.g - b.g) <= kTolerance &&
         std::abs(a.b - b.b) <= kTolerance;
}

/* "" when the decoded frame shows vmpattern's eight bars, else what differs.
 * Sampled away from bar edges (chroma is shared between pixel pairs). */
std::string check_bars(GstSample *s) {
  int w = 0, h = 0;
  testsupport::sample_size(s, &w, &h);
  if (w != kWidth || h != kHeight)
    return "decoded size " + std::to_string(w) + "x" + std::to_string(h);
  for (int i = 0; i < 8; i++) {
    for (int y : {h / 4, h / 2, h - 4}) {
      const int x = i * w / 8 + w / 16;
      const Rgb c = testsupport::pixel_at(s, x, y);
      if (!near(c, kBars[i])) {
        gchar *m = g_strdup_printf("bar %d at %d,%d is %02x%02x%02x, expected %02x%02x%02x", i, x,
                                   y, c.r, c.g, c.b, kBars[i].r, kBars[i].g, kBars[i].b);
        std::string msg = m;
        g_free(m);
        return msg;
      }
    }
  }
  return "";
}

/* vmpattern's 32-bit frame counter (cells of 16x16 at the top, white = 1),
 * read with a mid-grey threshold from a lossy decode. */
int64_t read_counter(GstSample *s) {
  int64_t v = 0;
  for (int b = 0; b < 32; b++) {
    const Rgb c = testsupport::pixel_at(s, b * 16 + 8, 8);
    if (c.r + c.g + c.b > 3 * 128)
      v |= int64_t(1) << b;
  }
  return v;
}

/* appsrc ! h264parse ! avdec_h264 ! BGRx appsink: one decoded sample per
 * access unit pushed (one decoder thread, so no frame is held back). */
class Decoder {
 public:
  Decoder()
      : pipe_("appsrc name=au format=time caps=video/x-h264,stream-format=byte-stream,"
              "alignment=au ! h264parse ! avdec_h264 max-threads=1 ! videoconvert ! "
              "video/x-raw,format=BGRx") {
    fail_unless(pipe_.play());
  }
  /* The decoded frame of this access unit (owned by the caller), or nullptr. */
  GstSample *decode(const std::vector<uint8_t> &au) {
    GstBuffer *b = gst_buffer_new_memdup(au.data(), au.size());
    GST_BUFFER_PTS(b) = pts_;
    pts_ += GST_SECOND / 30;
    GstFlowReturn ret = GST_FLOW_ERROR;
    g_signal_emit_by_name(pipe_.source(), "push-buffer", b, &ret);
    gst_buffer_unref(b);
    fail_unless_equals_int(ret, GST_FLOW_OK);
    return pipe_.pull(kIoMs);
  }

 private:
  SrcPipeline pipe_;
  GstClockTime pts_ = 0;
};

struct Host {
  std::unique_ptr<vmtest::PrivateBus> bus;
  std::unique_ptr<vmtest::TestVm> vm;
  GstElement *pipeline = nullptr;
  gchar *dir = nullptr;
  std::string uri;

  Host() {
    std::string error;
    bus = vmtest::PrivateBus::start(&error);
    fail_unless(bus != nullptr, "%s", error.c_str());
    vmtest::VmOptions o;
    o.name = "scanout";
    o.bus_address = bus->address();
    o.append = "vmpattern.output=drm vmpattern.modes=1024x768";
    vm = vmtest::TestVm::start(o, &error);
    fail_unless(vm != nullptr, "%s", error.c_str());
    /* qemudbussrc needs QEMU on the bus when it starts (reconnect is for later losses). */
    fail_unless(vm->wait_for_serial("VMPATTERN READY 1024x768", 120000), "VM did not boot:\n%s",
                vm->serial_log().c_str());
    dir = g_dir_make_tmp("helix-scanout-XXXXXX", nullptr);
    fail_unless(dir != nullptr);
    uri = std::string("unix://") + dir + "/helix.sock";
    const std::string desc = "qemudbussrc address=\"" + bus->address() +
                             "\" ! helixframesrv address=" + uri;
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s: %s", desc.c_str(), err ? err->message : "?");
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }
  ~Host() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    vm.reset();
    rmdir(dir);
    g_free(dir);
  }
  Host(const Host &) = delete;
  Host &operator=(const Host &) = delete;

  std::unique_ptr<HxfrClient> client() {
    std::string error;
    auto c = HxfrClient::connect(uri, kIoMs, &error);
    fail_unless(c != nullptr, "%s", error.c_str());
    hx::HelloResponse r;
    fail_unless(c->hello(hx::cap::kAllKnown, &r, kIoMs), "no HELLO_RESP");
    fail_unless(r.capabilities & hx::cap::kResourceId);
    fail_unless(r.capabilities & hx::cap::kSubscribe);
    return c;
  }
};

/* One FRAME_REQUEST by resource ID for scanout 0. True with the response,
 * false with *error_code when the host answered ERROR. */
bool request_scanout(HxfrClient *c, int64_t pts, bool force_keyframe, std::vector<uint8_t> *au,
                     bool *keyframe, int32_t *error_code) {
  hx::FrameRequest r;
  r.resource_id = 1; /* any non-zero ID: the host encodes its own copy of scanout 0 */
  r.pts_ns = pts;
  r.force_keyframe = force_keyframe;
  fail_unless(c->send(hx::encode(r, 0), kIoMs));
  hx::Message m;
  fail_unless(c->read(&m, kIoMs), "no answer to FRAME_REQUEST");
  if (m.header.type == hx::MsgType::kError) {
    hx::Error e;
    fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
    *error_code = e.code;
    return false;
  }
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));
  hx::FrameResponse fr;
  fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
  fail_unless_equals_int64(fr.pts_ns, pts);
  *au = testsupport::access_unit(fr);
  *keyframe = fr.is_keyframe;
  return true;
}

}  // namespace

GST_START_TEST(test_resource_id_requests_encode_the_scanout) {
  Host host;
  auto c = host.client();
  Decoder dec;

  /* Until qemudbussrc has delivered the guest's 1024x768 frame the host has
   * nothing to encode: ERROR RESOURCE_NOT_FOUND, then frames. */
  std::vector<uint8_t> au;
  bool key = false;
  int32_t code = 0;
  GstSample *first = nullptr;
  std::string why = "no frame of scanout 0";
  const gint64 boot_deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
  int64_t pts = 0;
  while (!first && g_get_monotonic_time() < boot_deadline) {
    if (!request_scanout(c.get(), pts++, true, &au, &key, &code)) {
      fail_unless_equals_int(code, hx::error_code::kResourceNotFound);
      g_usleep(200 * 1000);
      continue;
    }
    fail_unless(key && has_idr(au), "a forced keyframe is not an IDR");
    GstSample *s = dec.decode(au);
    fail_unless(s != nullptr, "the host's answer does not decode");
    why = check_bars(s);
    if (why.empty())
      first = s;
    else
      gst_sample_unref(s); /* the guest may still be booting (console text, mode set) */
  }
  fail_unless(first != nullptr, "%s\n%s", why.c_str(), host.vm->serial_log().c_str());
  const int64_t counter0 = read_counter(first);
  gst_sample_unref(first);

  /* Then one request after another, as a guest with max-in-flight=1 would:
   * every answer decodes to the bars, the counter moves, and the round trip
   * (host encode of its own 1024x768 copy included) is printed. */
  constexpr int kFrames = 30;
  std::vector<double> rtt_ms;
  int64_t counter = counter0;
  for (int i = 0; i < kFrames; i++) {
    const gint64 t0 = g_get_monotonic_time();
    fail_unless(request_scanout(c.get(), pts++, false, &au, &key, &code), "ERROR %d", code);
    rtt_ms.push_back((g_get_monotonic_time() - t0) / 1000.0);
    GstSample *s = dec.decode(au);
    fail_unless(s != nullptr, "frame %d does not decode", i);
    why = check_bars(s);
    fail_unless(why.empty(), "frame %d: %s", i, why.c_str());
    const int64_t v = read_counter(s);
    fail_unless(v >= counter, "frame %d: counter went back from %" G_GINT64_FORMAT
                " to %" G_GINT64_FORMAT, i, counter, v);
    counter = v;
    gst_sample_unref(s);
    g_usleep(30 * 1000);
  }
  fail_unless(counter > counter0, "the guest's counter never moved (%" G_GINT64_FORMAT ")",
              counter);
  std::sort(rtt_ms.begin(), rtt_ms.end());
  double sum = 0;
  for (double v : rtt_ms)
    sum += v;
  g_print("resource-ID round trip 1024x768 (x264enc): mean %.2f ms, median %.2f ms, max %.2f ms "
          "over %d frames; counter %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT "\n",
          sum / kFrames, rtt_ms[kFrames / 2], rtt_ms.back(), kFrames, counter0, counter);
}
GST_END_TEST;

GST_START_TEST(test_subscribe_streams_the_scanout) {
  Host host;
  auto c = host.client();
  /* Wait for the first frame of the guest's mode via a request, as above. */
  std::vector<uint8_t> au;
  bool key = false;
  int32_t code = 0;
  const gint64 boot_deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
  bool ready = false;
  int64_t pts = 0;
  Decoder probe;
  while (!ready && g_get_monotonic_time() < boot_deadline) {
    if (request_scanout(c.get(), pts++, true, &au, &key, &code)) {
      GstSample *s = probe.decode(au);
      ready = s && check_bars(s).empty();
      if (s)
        gst_sample_unref(s);
    }
    if (!ready)
      g_usleep(200 * 1000);
  }
  fail_unless(ready, "the guest's pattern never reached the host:\n%s",
              host.vm->serial_log().c_str());

  /* SUBSCRIBE on a fresh connection: every new frame of scanout 0 pushed,
   * starting with a keyframe, all decodable, the counter strictly moving. */
  auto sub = host.client();
  fail_unless(sub->send(hx::encode(hx::Subscribe{0}, 0), kIoMs));
  hx::Message m;
  fail_unless(sub->read(&m, kIoMs));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kSubscribeResponse));
  hx::SubscribeResponse sr;
  fail_unless(hx::decode(m.header, m.view(), &sr) == hx::Status::kOk);
  fail_unless(sr.success);

  Decoder dec;
  constexpr int kPushed = 20;
  int64_t last = -1;
  const gint64 t0 = g_get_monotonic_time();
  for (int i = 0; i < kPushed; i++) {
    fail_unless(sub->read(&m, kIoMs), "pushed frame %d did not come", i);
    fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));
    fail_unless_equals_int(m.header.session_id, 0);
    hx::FrameResponse fr;
    fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
    std::vector<uint8_t> pushed = testsupport::access_unit(fr);
    if (i == 0)
      fail_unless(fr.is_keyframe && has_idr(pushed), "the first pushed frame is not an IDR");
    GstSample *s = dec.decode(pushed);
    fail_unless(s != nullptr, "pushed frame %d does not decode", i);
    const std::string why = check_bars(s);
    fail_unless(why.empty(), "pushed frame %d: %s", i, why.c_str());
    const int64_t v = read_counter(s);
    fail_unless(v > last, "pushed frame %d: counter %" G_GINT64_FORMAT " after %" G_GINT64_FORMAT
                " (a frame pushed twice?)", i, v, last);
    last = v;
    gst_sample_unref(s);
  }
  const double secs = (g_get_monotonic_time() - t0) / 1e6;
  g_print("SUBSCRIBE: %d frames of 1024x768 in %.2f s (%.1f fps), counter reached %" G_GINT64_FORMAT
          "\n", kPushed, secs, kPushed / secs, last);
}
GST_END_TEST;

static Suite *helix_scanout_vm_suite() {
  Suite *s = suite_create("helix-scanout-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_resource_id_requests_encode_the_scanout);
  tcase_add_test(tc, test_subscribe_streams_the_scanout);
  return s;
}

int main(int argc, char **argv) {
  std::string reason;
  if (!vmtest::test_vm_available(&reason)) {
    g_print("SKIP: %s\n", reason.c_str());
    return 77;
  }
  gst_check_init(&argc, &argv);
  if (!gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0) ||
      !gst_registry_check_feature_version(gst_registry_get(), "avdec_h264", 1, 0, 0)) {
    g_print("SKIP: needs x264enc (gstreamer1.0-plugins-ugly) and avdec_h264 (gstreamer1.0-libav)\n");
    return 77;
  }
  return vmtest::finish_suite(gst_check_run_suite(helix_scanout_vm_suite(), "helix_scanout_vm", __FILE__));
}
