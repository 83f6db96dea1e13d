/* Element: helixframesrv against a raw HXFR client (testsupport::HxfrClient, built from the
 * hxfr library; no vsockenc): pixel uploads over UNIX and TCP decoded back with avdec_h264
 * (PSNR), forced and requested keyframes, bitrate through CONFIG_REQ, HELLO/PING, malformed
 * and oversized input, the client limit, eight clients at once, a Helix v1 client byte for
 * byte, the scanout (resource-ID) path through a sink pad with ENABLE/DISABLE_SCANOUT,
 * SUBSCRIBE (a subscriber that never reads, and one that reads slowly), a prompt NULL during
 * an encode, the client's HELLO max_payload, and releasing a sink pad. Needs x264enc
 * (gst-plugins-ugly) and avdec_h264 (gst-libav): the test is skipped (exit 77) without
 * them. */
#include "doc-check.h"
#include "h264-nal.h"
#include "hxfr-client.h"

#include <glib/gstdio.h>
#include <gst/app/app.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hx = vmd::hxfr;
using testsupport::has_idr;
using testsupport::HxfrClient;
using testsupport::nal_types;

namespace {

constexpr int kTimeoutMs = 10000;

std::string g_dir;

std::string tmp_socket(const char *name) {
  return "unix://" + g_dir + "/" + name;
}

/* Time bounds widen 5x under valgrind (VMD_VALGRIND=1), as everywhere in the project. */
int slow_ms(int ms) {
  return g_getenv("VMD_VALGRIND") ? ms * 5 : ms;
}

/* ---- a raw HXFR client (testsupport::HxfrClient) ---------------------------------------- */

/* The try_ helpers never use check macros (they run on worker threads too, where a failing
 * check would longjmp across threads with CK_FORK=no): they return an error text, empty on
 * success. The others fail the test in the calling (main) thread. */
std::string try_connect(const std::string &uri, std::unique_ptr<HxfrClient> *out) {
  std::string err;
  *out = HxfrClient::connect(uri, kTimeoutMs, &err);
  return *out ? std::string() : "connect " + uri + ": " + err;
}

std::unique_ptr<HxfrClient> connect_client(const std::string &uri) {
  std::unique_ptr<HxfrClient> c;
  std::string err = try_connect(uri, &c);
  fail_unless(err.empty(), "%s", err.c_str());
  return c;
}

/* HELLO as our vsockenc sends it; *granted: the capabilities granted. */
std::string try_hello(HxfrClient *c, uint32_t *granted, uint32_t caps = hx::cap::kAllKnown,
                      uint32_t max_payload = hx::kDefaultMaxPayload) {
  hx::HelloResponse r;
  if (!c->hello(caps, &r, kTimeoutMs, max_payload))
    return "no HELLO_RESP";
  if (r.version != 2)
    return "HELLO_RESP version " + std::to_string(r.version) + ", not 2";
  *granted = r.capabilities;
  return std::string();
}

/* Returns the granted capabilities. */
uint32_t hello(HxfrClient *c, uint32_t caps = hx::cap::kAllKnown,
               uint32_t max_payload = hx::kDefaultMaxPayload) {
  uint32_t granted = 0;
  std::string err = try_hello(c, &granted, caps, max_payload);
  fail_unless(err.empty(), "%s", err.c_str());
  return granted;
}

/* ---- frames ----------------------------------------------------------------------------- */

/* A smooth moving pattern (gradients and a soft disc): what a desktop or test source gives,
 * and something a 4:2:0 encoder reproduces well above 35 dB. BGRA or RGBA byte order. */
std::vector<uint8_t> make_frame(int w, int h, int index, bool rgba = false) {
  std::vector<uint8_t> f(size_t(w) * h * 4);
  double cx = w * (0.3 + 0.02 * index), cy = h * 0.5, r = h * 0.25;
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      uint8_t *p = &f[(size_t(y) * w + x) * 4];
      double d = std::sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
      double disc = d < r ? 1.0 : d < r + 8 ? 1.0 - (d - r) / 8 : 0.0;
      uint8_t red = uint8_t(40 + 180.0 * x / w);
      uint8_t green = uint8_t(30 + 160.0 * y / h);
      uint8_t blue = uint8_t(60 + 120 * disc + 4 * (index % 10));
      p[0] = rgba ? red : blue;
      p[1] = green;
      p[2] = rgba ? blue : red;
      p[3] = 255;
    }
  }
  return f;
}

std::vector<uint8_t> make_noise(int w, int h, guint32 seed) {
  std::vector<uint8_t> f(size_t(w) * h * 4);
  GRand *rand = g_rand_new_with_seed(seed);
  for (auto &b : f)
    b = uint8_t(g_rand_int(rand));
  g_rand_free(rand);
  return f;
}

hx::FrameRequest pixel_request(int w, int h, const std::vector<uint8_t> &pixels, int64_t pts,
                               uint32_t format = hx::format::kAR24, bool force = false) {
  hx::FrameRequest r;
  r.width = w;
  r.height = h;
  r.format = format;
  r.stride = w * 4;
  r.pts_ns = pts;
  r.duration_ns = GST_SECOND / 30;
  r.force_keyframe = force;
  r.pixels = hx::ByteView{pixels.data(), pixels.size()};
  return r;
}

struct Encoded {
  std::vector<uint8_t> au;
  bool keyframe = false;
  int64_t pts = 0;
  uint16_t session = 0;
};

/* Sends one frame and reads its FRAME_RESPONSE. */
std::string try_encode_one(HxfrClient *c, const hx::FrameRequest &r, uint16_t session,
                           Encoded *out) {
  if (!c->send(hx::encode(r, session)))
    return "FRAME_REQUEST not sent";
  hx::Message m;
  hx::Io io = hx::Io::Ok;
  if (!c->read(&m, kTimeoutMs, &io))
    return std::string("no answer to FRAME_REQUEST (") + hx::io_name(io) + ")";
  if (m.header.type == hx::MsgType::kError) {
    hx::Error e;
    hx::decode(m.header, m.view(), &e);
    return "ERROR " + std::to_string(e.code) + ": " + e.message;
  }
  if (m.header.type != hx::MsgType::kFrameResponse)
    return std::string("answer is ") + hx::msg_type_name(m.header.type) + ", not FRAME_RESPONSE";
  hx::FrameResponse fr;
  if (hx::decode(m.header, m.view(), &fr) != hx::Status::kOk)
    return "undecodable FRAME_RESPONSE";
  if (fr.nals.size() != 1)
    return "FRAME_RESPONSE with " + std::to_string(fr.nals.size()) + " NAL entries, not 1";
  out->au = testsupport::access_unit(fr);
  out->keyframe = fr.is_keyframe;
  out->pts = fr.pts_ns;
  out->session = m.header.session_id;
  return std::string();
}

Encoded encode_one(HxfrClient *c, const hx::FrameRequest &r, uint16_t session = 1) {
  Encoded e;
  std::string err = try_encode_one(c, r, session, &e);
  fail_unless(err.empty(), "%s", err.c_str());
  return e;
}

/* NAL unit types in an Annex-B access unit. */
/* Decodes access units with avdec_h264 to `format`, each frame packed by `pack`. */
std::vector<std::vector<uint8_t>> decode_with(
    const std::vector<Encoded> &aus, const char *format,
    const std::function<std::vector<uint8_t>(const GstVideoFrame &)> &pack) {
  std::string desc =
      std::string(
          "h264parse ! avdec_h264 max-threads=1 direct-rendering=false ! videoconvert ! "
          "capsfilter caps=video/x-raw,format=") +
      format;
  GstHarness *harness = gst_harness_new_parse(desc.c_str());
  gst_harness_set_src_caps_str(harness, "video/x-h264,stream-format=byte-stream,alignment=au");
  for (size_t i = 0; i < aus.size(); i++) {
    GstBuffer *b = gst_buffer_new_memdup(aus[i].au.data(), aus[i].au.size());
    GST_BUFFER_PTS(b) = i * GST_SECOND / 30;
    fail_unless_equals_int(gst_harness_push(harness, b), GST_FLOW_OK);
  }
  gst_harness_push_event(harness, gst_event_new_eos());
  std::vector<std::vector<uint8_t>> out;
  while (GstBuffer *b = gst_harness_try_pull(harness)) {
    GstVideoInfo info;
    GstCaps *caps = gst_pad_get_current_caps(harness->sinkpad);
    fail_unless(gst_video_info_from_caps(&info, caps));
    gst_caps_unref(caps);
    GstVideoFrame frame;
    fail_unless(gst_video_frame_map(&frame, &info, b, GST_MAP_READ));
    out.push_back(pack(frame));
    gst_video_frame_unmap(&frame);
    gst_buffer_unref(b);
  }
  gst_harness_teardown(harness);
  return out;
}

/* The top left w x h pixels of a 4-byte-per-pixel frame, packed. */
std::vector<uint8_t> pack_top_left(const GstVideoFrame &frame, int w, int h) {
  std::vector<uint8_t> pixels(size_t(w) * h * 4);
  for (int y = 0; y < h; y++)
    memcpy(&pixels[size_t(y) * w * 4],
           static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
               y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0),
           size_t(w) * 4);
  return pixels;
}

/* Decodes access units with avdec_h264 to BGRA (or RGBA). */
std::vector<std::vector<uint8_t>> decode_all(const std::vector<Encoded> &aus, int w, int h,
                                             bool rgba = false) {
  return decode_with(aus, rgba ? "RGBA" : "BGRA", [&](const GstVideoFrame &frame) {
    fail_unless_equals_int(GST_VIDEO_FRAME_WIDTH(&frame), w);
    fail_unless_equals_int(GST_VIDEO_FRAME_HEIGHT(&frame), h);
    return pack_top_left(frame, w, h);
  });
}

/* PSNR over the three colour channels (alpha ignored). */
double psnr(const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) {
  double se = 0;
  size_t n = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (i % 4 == 3)
      continue;
    double d = double(a[i]) - double(b[i]);
    se += d * d;
    n++;
  }
  if (se == 0)
    return 100;
  return 10 * std::log10(255.0 * 255.0 / (se / n));
}

/* A pipeline from a description; fails the test with the parser's message. */
GstElement *parse_pipeline(const std::string &desc) {
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  fail_unless(pipeline != nullptr, "cannot build '%s': %s", desc.c_str(),
              err ? err->message : "?");
  g_clear_error(&err);
  return pipeline;
}

/* ---- the element ------------------------------------------------------------------------- */

struct Server {
  GstElement *pipeline = nullptr;
  GstElement *srv = nullptr;
  std::string uri;
};

Server start_server(const std::string &address, guint max_clients = 16,
                    guint max_payload = hx::kDefaultMaxPayload) {
  Server s;
  s.pipeline = gst_pipeline_new(nullptr);
  s.srv = gst_element_factory_make("helixframesrv", nullptr);
  fail_unless(s.srv != nullptr);
  g_object_set(s.srv, "address", address.c_str(), "max-clients", max_clients, "max-payload",
               max_payload, nullptr);
  gst_bin_add(GST_BIN(s.pipeline), s.srv);
  fail_unless(gst_element_set_state(s.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  s.uri = address;
  if (g_str_has_prefix(address.c_str(), "tcp://")) {
    guint port = 0;
    g_object_get(s.srv, "bound-port", &port, nullptr);
    fail_unless(port != 0);
    s.uri = "tcp://127.0.0.1:" + std::to_string(port);
  }
  return s;
}

void stop_server(Server *s) {
  gst_element_set_state(s->pipeline, GST_STATE_NULL);
  gst_object_unref(s->pipeline);
}

/* Uploads frames, decodes what came back, checks PSNR and timestamps. */
void upload_and_check(HxfrClient *c, int w, int h, int frames, bool rgba, uint16_t session = 1) {
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<Encoded> outputs;
  for (int i = 0; i < frames; i++) {
    inputs.push_back(make_frame(w, h, i, rgba));
    int64_t pts = 1000000000LL + i * (GST_SECOND / 30);
    Encoded e = encode_one(
        c, pixel_request(w, h, inputs.back(), pts, rgba ? hx::format::kAB24 : hx::format::kAR24),
        session);
    fail_unless_equals_int64(e.pts, pts);
    if (i == 0)
      fail_unless(e.keyframe && has_idr(e.au), "first frame is not an IDR");
    outputs.push_back(std::move(e));
  }
  std::vector<std::vector<uint8_t>> decoded = decode_all(outputs, w, h, rgba);
  fail_unless_equals_int(int(decoded.size()), frames);
  for (int i = 0; i < frames; i++) {
    double p = psnr(inputs[i], decoded[i]);
    GST_INFO("frame %d: %zu bytes, PSNR %.2f dB", i, outputs[i].au.size(), p);
    fail_unless(p >= 35.0, "frame %d: PSNR %.2f dB < 35", i, p);
  }
}

}  // namespace

GST_START_TEST(test_pixel_upload_unix) {
  Server s = start_server(tmp_socket("upload.sock"));
  auto c = connect_client(s.uri);
  uint32_t caps = hello(c.get());
  fail_unless(caps & hx::cap::kPixelUpload);
  fail_unless(caps & hx::cap::kOneReplyPerFrame);
  fail_unless(caps & hx::cap::kSubscribe);
  fail_if(caps & hx::cap::kScanoutControl, "SCANOUT_CONTROL granted but not implemented");
  upload_and_check(c.get(), 320, 240, 12, false, 5);
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

/* Odd sides, which H.264 4:2:0 cannot code as they are: the server pads one black column or
 * row (before converting to YUV, so the chroma of the last real column is not averaged with
 * the pad), so a bare decoder shows the next even size; the sent picture is in its top left
 * at PSNR >= 35 dB (31 dB when the pad was added after conversion). (Through vsockenc, whose
 * caps keep the size that was sent, h264parse crops the pad: helix-e2e.) */
GST_START_TEST(test_odd_sizes) {
  Server s = start_server(tmp_socket("odd.sock"));
  auto c = connect_client(s.uri);
  hello(c.get());
  const std::pair<int, int> sizes[] = {{161, 121}, {96, 33}, {35, 64}, {3, 1}};
  for (auto [w, h] : sizes) {
    std::vector<uint8_t> in = make_frame(w, h, 0);
    Encoded e = encode_one(c.get(), pixel_request(w, h, in, 0, hx::format::kAR24, true));
    fail_unless(e.keyframe && has_idr(e.au), "%dx%d: not an IDR", w, h);
    auto out = decode_with({e}, "BGRA", [&](const GstVideoFrame &frame) {
      fail_unless_equals_int(GST_VIDEO_FRAME_WIDTH(&frame), w + (w & 1));
      fail_unless_equals_int(GST_VIDEO_FRAME_HEIGHT(&frame), h + (h & 1));
      return pack_top_left(frame, w, h);
    });
    fail_unless_equals_int(int(out.size()), 1);
    const double p = psnr(in, out[0]);
    GST_INFO("%dx%d: PSNR %.2f dB", w, h, p);
    fail_unless(p >= 35.0, "%dx%d: PSNR %.2f dB < 35", w, h, p);
  }
  /* NV12, which the padding element does not take as it is: encoded and decodable too. */
  for (auto [w, h] : sizes) {
    const uint32_t stride = *hx::min_stride(hx::format::kNV12, w);
    std::vector<uint8_t> nv12(size_t(*hx::pixel_bytes_needed(hx::format::kNV12, w, h, stride)));
    for (size_t i = 0; i < nv12.size(); i++)
      nv12[i] = i < size_t(stride) * h ? uint8_t(16 + (i % stride) * 200 / stride) : 128;
    hx::FrameRequest r = pixel_request(w, h, nv12, 1, hx::format::kNV12, true);
    r.stride = stride;
    Encoded e = encode_one(c.get(), r);
    fail_unless(e.keyframe && has_idr(e.au), "NV12 %dx%d: not an IDR", w, h);
    fail_unless_equals_int(int(decode_with({e}, "I420", [&](const GstVideoFrame &frame) {
                                 fail_unless_equals_int(GST_VIDEO_FRAME_WIDTH(&frame), w + (w & 1));
                                 fail_unless_equals_int(GST_VIDEO_FRAME_HEIGHT(&frame), h + (h & 1));
                                 return std::vector<uint8_t>();
                               }).size()),
                           1);
  }
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

GST_START_TEST(test_pixel_upload_tcp) {
  Server s = start_server("tcp://127.0.0.1:0");
  auto c = connect_client(s.uri);
  hello(c.get());
  upload_and_check(c.get(), 320, 240, 8, true);
  /* A size change rebuilds the encoder and starts with an IDR. */
  upload_and_check(c.get(), 256, 192, 4, false);
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

GST_START_TEST(test_force_keyframe) {
  Server s = start_server(tmp_socket("key.sock"));
  auto c = connect_client(s.uri);
  hello(c.get());
  for (int i = 0; i < 8; i++) {
    auto f = make_frame(160, 120, i);
    bool force = i == 4;
    Encoded e = encode_one(c.get(), pixel_request(160, 120, f, i, hx::format::kAR24, force));
    if (i == 0 || force) {
      fail_unless(e.keyframe, "frame %d should be a keyframe", i);
      fail_unless(has_idr(e.au), "frame %d has no IDR slice", i);
      std::vector<int> t = nal_types(e.au);
      fail_unless(std::find(t.begin(), t.end(), 7) != t.end(), "no SPS before the IDR");
    } else {
      fail_if(e.keyframe || has_idr(e.au), "frame %d is an unasked keyframe", i);
    }
  }
  /* KEYFRAME_REQ (v2 capability) makes the next frame an IDR. */
  fail_unless(c->send(hx::encode(hx::KeyframeRequest{}, 1)));
  auto f = make_frame(160, 120, 9);
  Encoded e = encode_one(c.get(), pixel_request(160, 120, f, 9));
  fail_unless(e.keyframe && has_idr(e.au));
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

static size_t encoded_bytes(HxfrClient *c, int first, int count) {
  size_t total = 0;
  for (int i = first; i < first + count; i++) {
    auto f = make_noise(320, 240, guint32(i));
    total += encode_one(c, pixel_request(320, 240, f, i)).au.size();
  }
  return total;
}

GST_START_TEST(test_bitrate_config) {
  Server s = start_server(tmp_socket("rate.sock"));
  auto c = connect_client(s.uri);
  uint32_t caps = hello(c.get());
  fail_unless(caps & hx::cap::kConfigResponse);
  hx::ConfigRequest cfg;
  cfg.bitrate_bps = 4000000;
  cfg.fps_num = 30;
  cfg.fps_den = 1;
  fail_unless(c->send(hx::encode(cfg, 1)));
  hx::Message m;
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kConfigResponse));
  hx::ConfigResponse applied;
  fail_unless(hx::decode(m.header, m.view(), &applied) == hx::Status::kOk);
  fail_unless_equals_int(applied.applied.bitrate_bps, 4000000);
  encoded_bytes(c.get(), 0, 2); /* keyframe out of the way */
  size_t high = encoded_bytes(c.get(), 2, 10);

  cfg.bitrate_bps = 200000; /* applied live, no rebuild */
  fail_unless(c->send(hx::encode(cfg, 1)));
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kConfigResponse));
  encoded_bytes(c.get(), 12, 4); /* let rate control settle */
  size_t low = encoded_bytes(c.get(), 16, 10);
  GST_INFO("10 noise frames: %zu bytes at 4 Mbit/s, %zu bytes at 200 kbit/s", high, low);
  fail_unless(low * 3 < high, "bitrate change had no effect: %zu vs %zu bytes", low, high);

  /* Profile 66 (baseline) rebuilds the encoder: the next frame is an IDR whose SPS says 66. */
  cfg.profile = 66;
  fail_unless(c->send(hx::encode(cfg, 1)));
  fail_unless(c->read(&m));
  fail_unless(hx::decode(m.header, m.view(), &applied) == hx::Status::kOk);
  fail_unless_equals_int(applied.applied.profile, 66);
  auto f = make_frame(320, 240, 0);
  Encoded e = encode_one(c.get(), pixel_request(320, 240, f, 99));
  fail_unless(e.keyframe);
  bool sps_seen = false;
  for (size_t i = 0; i + 4 < e.au.size(); i++) {
    if (e.au[i] == 0 && e.au[i + 1] == 0 && e.au[i + 2] == 1 && (e.au[i + 3] & 0x1f) == 7) {
      fail_unless_equals_int(e.au[i + 4], 66);
      sps_seen = true;
      break;
    }
  }
  fail_unless(sps_seen);
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

GST_START_TEST(test_ping_hello) {
  Server s = start_server(tmp_socket("ping.sock"));
  auto c = connect_client(s.uri);
  /* A client offering only PIXEL_UPLOAD gets only that. */
  fail_unless_equals_int(hello(c.get(), hx::cap::kPixelUpload), hx::cap::kPixelUpload);
  fail_unless(c->send(hx::encode(hx::Ping{}, 0x1234)));
  hx::Message m;
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kPong));
  fail_unless_equals_int(m.header.session_id, 0x1234);
  /* Unknown types are skipped, the connection goes on. */
  hx::Header h;
  h.type = hx::MsgType(0x77);
  h.payload_size = 5;
  std::vector<uint8_t> unknown(hx::kHeaderSize + 5, 0xab);
  hx::encode_header(h, unknown.data());
  fail_unless(c->send(unknown));
  fail_unless(c->send(hx::encode(hx::Ping{}, 7)));
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kPong));
  /* SUBSCRIBE to a scanout without a sink pad, and scanout control, are answered honestly:
   * refused. */
  fail_unless(c->send(hx::encode(hx::Subscribe{3}, 3)));
  fail_unless(c->read(&m));
  hx::SubscribeResponse sr;
  fail_unless(hx::decode(m.header, m.view(), &sr) == hx::Status::kOk);
  fail_unless(!sr.success && sr.scanout_id == 3);
  fail_unless(c->send(hx::encode(hx::EnableScanout{1, 1920, 1080, 60}, 0)));
  fail_unless(c->read(&m));
  hx::ScanoutResponse scr;
  fail_unless(hx::decode(m.header, m.view(), &scr) == hx::Status::kOk);
  fail_unless(!scr.success);
  fail_unless_equals_string(scr.connector.c_str(), "Virtual-2");
  c.reset();
  stop_server(&s);
}
GST_END_TEST;

static void expect_invalid_and_close(HxfrClient *c) {
  hx::Message m;
  fail_unless(c->read(&m), "no ERROR before close");
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kError));
  hx::Error e;
  fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
  fail_unless_equals_int(e.code, hx::error_code::kInvalidMsg);
  fail_unless(c->closed_by_peer(), "connection not closed after INVALID_MSG");
}

GST_START_TEST(test_malformed) {
  Server s = start_server(tmp_socket("bad.sock"), 16, 1024 * 1024);
  auto good = connect_client(s.uri);
  hello(good.get());
  auto f = make_frame(160, 120, 0);
  encode_one(good.get(), pixel_request(160, 120, f, 0));

  /* Bad magic. */
  auto bad = connect_client(s.uri);
  std::vector<uint8_t> garbage = hx::encode(hx::Ping{}, 1);
  garbage[0] = 'X';
  fail_unless(bad->send(garbage));
  expect_invalid_and_close(bad.get());

  /* Over max-payload (1 MiB here): refused from the header alone. */
  bad = connect_client(s.uri);
  auto big = make_frame(640, 480, 0); /* 1.2 MB */
  fail_unless(
      bad->send(hx::encode_frame_request_prefix(pixel_request(640, 480, big, 0), 1, big.size())));
  expect_invalid_and_close(bad.get());

  /* A pixel upload with too few bytes for its size. */
  bad = connect_client(s.uri);
  hx::FrameRequest r = pixel_request(160, 120, f, 0);
  r.pixels.size = 1000;
  fail_unless(bad->send(hx::encode(r, 1)));
  expect_invalid_and_close(bad.get());

  /* A side over 16384. */
  bad = connect_client(s.uri);
  r = pixel_request(160, 120, f, 0);
  r.width = 20000;
  r.stride = 4;
  fail_unless(bad->send(hx::encode(r, 1)));
  expect_invalid_and_close(bad.get());

  /* A v2 client uploading a format nobody knows. */
  bad = connect_client(s.uri);
  hello(bad.get());
  r = pixel_request(160, 120, f, 0, 0x20202020);
  fail_unless(bad->send(hx::encode(r, 1)));
  expect_invalid_and_close(bad.get());

  /* The well-behaved client never noticed. */
  fail_unless(good->send(hx::encode(hx::Ping{}, 2)));
  hx::Message m;
  fail_unless(good->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kPong));
  Encoded e = encode_one(good.get(), pixel_request(160, 120, f, 1));
  fail_unless(!e.au.empty());
  good.reset();
  bad.reset();
  stop_server(&s);
}
GST_END_TEST;

/* Well-formed but odd input, at random (fixed seed; VMD_SEED=N to replay another): sixty
 * connections, with or without HELLO, each sending a few messages of every type with edge
 * values (sides of 0, 1, odd, 16384 and over, unknown formats, strides off by one, too few
 * pixels, zero and huge bitrates and frame rates, unknown scanouts and message types, bytes of
 * garbage). Whatever each gets back, the server must not crash or hang, and a well-behaved
 * client afterwards is served as before. The parser alone is fuzzed elsewhere; this drives
 * the client sessions and the encoders they build. */
GST_START_TEST(test_random_messages) {
  guint32 seed = 20261121;
  if (const char *env = g_getenv("VMD_SEED"))
    seed = guint32(g_ascii_strtoull(env, nullptr, 10));
  g_print("random messages: seed %u (VMD_SEED=%u to replay)\n", seed, seed);
  GRand *rand = g_rand_new_with_seed(seed);
  auto pick = [&](std::initializer_list<uint32_t> v) {
    return *(v.begin() + g_rand_int_range(rand, 0, gint32(v.size())));
  };
  std::string addr = tmp_socket("random.sock");
  std::string desc =
      "videotestsrc is-live=true ! video/x-raw,format=BGRx,width=160,height=120,framerate=30/1 "
      "! helixframesrv name=srv max-payload=2097152 address=" + addr;
  GstElement *pipeline = parse_pipeline(desc);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  int answered = 0, closed = 0;
  const uint32_t formats[] = {hx::format::kAR24, hx::format::kAB24, hx::format::kNV12,
                              hx::format::kXR24, hx::format::kXB24, hx::format::kYU12,
                              0x20202020, 0};
  /* Under valgrind each encoder start costs seconds: fewer connections, same kinds. */
  const int connections = g_getenv("VMD_VALGRIND") ? 20 : 60;
  for (int conn = 0; conn < connections; conn++) {
    auto c = connect_client(addr);
    if (g_rand_boolean(rand)) {
      hx::HelloResponse r;
      c->hello(g_rand_boolean(rand) ? hx::cap::kAllKnown : g_rand_int(rand), &r, kTimeoutMs,
               pick({hx::kDefaultMaxPayload, 260, 4096, 100000}));
    }
    const int count = g_rand_int_range(rand, 1, 7);
    bool sent_all = true;
    for (int i = 0; i < count && sent_all; i++) {
      std::vector<uint8_t> bytes;
      const uint16_t session = uint16_t(pick({0, 1, 2, 0xffff}));
      switch (g_rand_int_range(rand, 0, 10)) {
        case 0:
        case 1:
        case 2: { /* pixel upload with edge sizes */
          hx::FrameRequest r;
          r.width = pick({1, 2, 3, 15, 16, 17, 64, 161, 4096, 16384, 16385});
          r.height = pick({1, 2, 3, 9, 16, 33, 120, 16384});
          r.format = formats[g_rand_int_range(rand, 0, G_N_ELEMENTS(formats))];
          auto min = hx::min_stride(r.format, r.width);
          r.stride = min ? *min + pick({0, 0, 1, 3, 64}) : g_rand_int_range(rand, 0, 70000);
          if (g_rand_int_range(rand, 0, 4) == 0 && r.stride)
            r.stride -= 1;
          r.pts_ns = g_rand_int(rand);
          r.force_keyframe = g_rand_boolean(rand);
          auto need = hx::pixel_bytes_needed(r.format, r.width, r.height, r.stride);
          uint64_t size = need ? *need : g_rand_int_range(rand, 1, 5000);
          if (g_rand_int_range(rand, 0, 5) == 0)
            size = size / 2 + 1; /* too few */
          if (size > 1024 * 1024) { /* keep it quick: the header alone */
            r.width = 16385;
            size = 4;
          }
          std::vector<uint8_t> px(size_t(size), uint8_t(g_rand_int(rand)));
          r.pixels = hx::ByteView{px.data(), px.size()};
          bytes = hx::encode(r, session);
          break;
        }
        case 3: { /* resource ID / scanout request */
          hx::FrameRequest r;
          r.resource_id = pick({1, 7, 0xffffffffu});
          r.width = pick({0, 160, 16385});
          r.pts_ns = g_rand_int(rand);
          bytes = hx::encode(r, session);
          break;
        }
        case 4: {
          hx::ConfigRequest cr;
          cr.width = pick({0, 1, 160, 100000});
          cr.height = pick({0, 1, 120, 100000});
          cr.bitrate_bps = pick({0, 1, 1000, 8000000, 0xffffffffu});
          cr.fps_num = pick({0, 1, 30, 0xffffffffu});
          cr.fps_den = pick({0, 1, 1001, 0xffffffffu});
          cr.profile = uint8_t(pick({0, 66, 77, 100, 255}));
          cr.level_x10 = uint8_t(g_rand_int(rand));
          cr.realtime = g_rand_boolean(rand);
          bytes = hx::encode(cr, session);
          break;
        }
        case 5:
          bytes = hx::encode(hx::Subscribe{pick({0, 1, 0xffffffffu})}, session);
          break;
        case 6:
          bytes = g_rand_boolean(rand)
                      ? hx::encode(hx::EnableScanout{pick({0, 5}), pick({0, 160, 99999}),
                                                     pick({0, 120}), pick({0, 60})},
                                   session)
                      : hx::encode(hx::DisableScanout{pick({0, 5})}, session);
          break;
        case 7:
          bytes = g_rand_boolean(rand) ? hx::encode(hx::KeyframeRequest{}, session)
                                       : hx::encode(hx::Ping{}, session);
          break;
        case 8: { /* an unknown type with a payload */
          bytes = hx::encode(hx::Ping{}, session);
          bytes[4] = uint8_t(pick({0x06, 0x12, 0x42, 0x99, 0xfe}));
          const uint32_t extra = g_rand_int_range(rand, 0, 300);
          bytes[8] = uint8_t(extra);
          bytes[9] = uint8_t(extra >> 8);
          bytes.resize(bytes.size() + extra, 0xab);
          break;
        }
        default: /* garbage */
          bytes.resize(g_rand_int_range(rand, 1, 64));
          for (auto &b : bytes)
            b = uint8_t(g_rand_int(rand));
          break;
      }
      sent_all = c->send(bytes, 2000);
    }
    /* Read what comes back until the server closes or goes quiet. */
    hx::Message m;
    hx::Io io = hx::Io::Ok;
    int messages = 0;
    while (messages < 50 && c->read(&m, 300, &io))
      messages++;
    answered += messages > 0;
    closed += io == hx::Io::Closed || io == hx::Io::Error;
  }
  g_rand_free(rand);
  g_print("random messages: %d connections, %d answered, %d closed by the server\n",
          connections, answered, closed);

  /* The server is fine: a new client is served as usual. */
  auto good = connect_client(addr);
  hello(good.get());
  auto f = make_frame(160, 120, 0);
  Encoded e = encode_one(good.get(), pixel_request(160, 120, f, 1000, hx::format::kAR24, true));
  fail_unless(e.keyframe && has_idr(e.au));
  fail_unless_equals_int(int(decode_all({e}, 160, 120).size()), 1);
  good.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

GST_START_TEST(test_max_clients) {
  Server s = start_server(tmp_socket("max.sock"), 2);
  auto a = connect_client(s.uri);
  auto b = connect_client(s.uri);
  hello(a.get());
  hello(b.get());
  auto c = connect_client(s.uri);
  hx::Message m;
  fail_unless(c->read(&m), "third client got no ERROR");
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kError));
  fail_unless(c->closed_by_peer());
  /* Room again once one leaves. */
  a.reset();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; attempt++) {
    auto d = connect_client(s.uri);
    d->send(hx::encode(hx::Ping{}, 1));
    served = d->read(&m, 2000) && m.header.type == hx::MsgType::kPong;
    if (!served)
      g_usleep(100 * 1000);
  }
  fail_unless(served, "no room after a client left");
  b.reset();
  stop_server(&s);
}
GST_END_TEST;

/* A client over max-clients: ERROR INTERNAL, then closed. Empty, or what went wrong. */
static std::string try_refused(const std::string &uri) {
  std::unique_ptr<HxfrClient> c;
  std::string err = try_connect(uri, &c);
  if (!err.empty())
    return err;
  hx::Message m;
  if (!c->read(&m))
    return "no ERROR";
  hx::Error e;
  if (m.header.type != hx::MsgType::kError || hx::decode(m.header, m.view(), &e) != hx::Status::kOk)
    return std::string("served (") + hx::msg_type_name(m.header.type) + "), not refused";
  if (e.code != hx::error_code::kInternal)
    return "ERROR " + std::to_string(e.code) + " (" + e.message + "), not INTERNAL";
  return c->closed_by_peer() ? std::string() : "not closed after the ERROR";
}

/* Eight clients at once. They overlap for sure: each connects and gets its HELLO_RESP, then
 * waits until all eight have (with max-clients=8 a ninth is refused at that point: the server
 * holds all eight); only then do all eight upload 6 frames each, concurrently, and every
 * frame of every client decodes at PSNR >= 35 dB. Worker threads use no check macro (with
 * CK_FORK=no a failing one would longjmp across threads): they record what went wrong, and
 * the main thread asserts once they are joined. */
GST_START_TEST(test_eight_clients) {
  constexpr int kClients = 8, kFrames = 6;
  const auto kBarrier = std::chrono::milliseconds(slow_ms(20000));
  Server s = start_server(tmp_socket("eight.sock"), kClients);
  enum class Phase { kWait, kGo, kAbort };
  std::mutex lock;
  std::condition_variable cond;
  int arrived = 0; /* threads past connect + HELLO (or failed at it) */
  Phase phase = Phase::kWait;
  std::vector<std::string> failures(kClients);
  std::vector<std::vector<Encoded>> outputs(kClients);
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; t++) {
    threads.emplace_back([&, t] {
      std::unique_ptr<HxfrClient> c;
      std::string err = try_connect(s.uri, &c);
      uint32_t granted = 0;
      if (err.empty())
        err = try_hello(c.get(), &granted);
      {
        std::unique_lock<std::mutex> g(lock);
        arrived++;
        cond.notify_all();
        if (err.empty() && !cond.wait_for(g, kBarrier, [&] { return phase != Phase::kWait; }))
          err = "not released within " + std::to_string(kBarrier.count()) + " ms";
        else if (err.empty() && phase == Phase::kAbort)
          err = "released without the others";
      }
      for (int i = 0; err.empty() && i < kFrames; i++) {
        auto f = make_frame(192, 128, i + t);
        Encoded e;
        err = try_encode_one(c.get(), pixel_request(192, 128, f, i), 1, &e);
        if (err.empty())
          outputs[t].push_back(std::move(e));
        else
          err = "frame " + std::to_string(i) + ": " + err;
      }
      failures[t] = err;
    });
  }
  /* No check macro until every thread is joined. */
  bool all_arrived;
  {
    std::unique_lock<std::mutex> g(lock);
    all_arrived = cond.wait_for(g, kBarrier, [&] { return arrived == kClients; });
  }
  std::string ninth = all_arrived ? try_refused(s.uri) : "not tried";
  {
    std::lock_guard<std::mutex> g(lock);
    phase = all_arrived ? Phase::kGo : Phase::kAbort;
    cond.notify_all();
  }
  for (auto &th : threads)
    th.join();
  for (int t = 0; t < kClients; t++)
    fail_unless(failures[t].empty(), "client %d: %s", t, failures[t].c_str());
  fail_unless(all_arrived, "only %d of %d clients connected and past HELLO", arrived, kClients);
  fail_unless(ninth.empty(), "a ninth client while eight were connected: %s", ninth.c_str());
  for (int t = 0; t < kClients; t++) {
    auto decoded = decode_all(outputs[t], 192, 128);
    fail_unless_equals_int(int(decoded.size()), kFrames);
    for (int i = 0; i < kFrames; i++) {
      double p = psnr(make_frame(192, 128, i + t), decoded[i]);
      fail_unless(p >= 35.0, "client %d frame %d: PSNR %.2f dB < 35", t, i, p);
    }
  }
  stop_server(&s);
}
GST_END_TEST;

/* Golden messages from docs/protocol.md, as a Helix v1 peer sends them (no HELLO). */
static const uint8_t kGoldenPing[] = {0x48, 0x58, 0x46, 0x52, 0x10, 0x00,
                                      0x07, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t kGoldenPong[] = {0x48, 0x58, 0x46, 0x52, 0x11, 0x00,
                                      0x07, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t kGoldenFrameRequest[] = {
    0x48, 0x58, 0x46, 0x52, 0x01, 0x00, 0x01, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x2a, 0x00,
    0x00, 0x00, 0x80, 0x07, 0x00, 0x00, 0x38, 0x04, 0x00, 0x00, 0x41, 0x52, 0x32, 0x34,
    0x00, 0x1e, 0x00, 0x00, 0x00, 0xca, 0x9a, 0x3b, 0x00, 0x00, 0x00, 0x00, 0x2b, 0x50,
    0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t kGoldenFrameRequestPixels[] = {
    0x48, 0x58, 0x46, 0x52, 0x01, 0x01, 0x01, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x41, 0x52, 0x32, 0x34, 0x08, 0x00,
    0x00, 0x00, 0x2b, 0x50, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b, 0x50, 0xfe, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0xff,
    0x00, 0xff, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t kGoldenConfigReq[] = {
    0x48, 0x58, 0x46, 0x52, 0x04, 0x00, 0x01, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x80, 0x07,
    0x00, 0x00, 0x38, 0x04, 0x00, 0x00, 0x00, 0x12, 0x7a, 0x00, 0x3c, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x42, 0x28, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};

/* Reads exactly n raw bytes (no parser): what a v1 peer sees on the wire. */
static std::vector<uint8_t> read_raw(HxfrClient *c, size_t n) {
  std::vector<uint8_t> b(n);
  fail_unless(c->recv_raw(b.data(), n), "%zu raw bytes did not come", n);
  return b;
}

GST_START_TEST(test_v1_client) {
  Server s = start_server(tmp_socket("v1.sock"));
  /* Scanout 0 exists (a sink pad) but has had no frame yet. */
  GstPad *sink0 = gst_element_request_pad_simple(s.srv, "sink_0");
  fail_unless(sink0 != nullptr);
  auto c = connect_client(s.uri);
  fail_unless(c->send(std::vector<uint8_t>(kGoldenPing, kGoldenPing + sizeof kGoldenPing)));
  std::vector<uint8_t> pong = read_raw(c.get(), sizeof kGoldenPong);
  fail_unless(memcmp(pong.data(), kGoldenPong, sizeof kGoldenPong) == 0);

  /* CONFIG_REQ gets no answer from a v1 host: the next message is the PONG. */
  fail_unless(
      c->send(std::vector<uint8_t>(kGoldenConfigReq, kGoldenConfigReq + sizeof kGoldenConfigReq)));
  fail_unless(c->send(std::vector<uint8_t>(kGoldenPing, kGoldenPing + sizeof kGoldenPing)));
  pong = read_raw(c.get(), sizeof kGoldenPong);
  fail_unless(memcmp(pong.data(), kGoldenPong, sizeof kGoldenPong) == 0);

  /* A resource-ID request before any scanout frame: the golden ERROR, byte for byte
   * (session 1, code -2, "no frame yet for scanout 0", 260-byte payload). */
  fail_unless(c->send(
      std::vector<uint8_t>(kGoldenFrameRequest, kGoldenFrameRequest + sizeof kGoldenFrameRequest)));
  std::vector<uint8_t> err = read_raw(c.get(), hx::kHeaderSize + hx::kErrorSize);
  std::vector<uint8_t> want = {0x48, 0x58, 0x46, 0x52, 0xff, 0x00, 0x01, 0x00,
                               0x04, 0x01, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff};
  const char *text = "no frame yet for scanout 0";
  want.insert(want.end(), text, text + strlen(text));
  want.resize(hx::kHeaderSize + hx::kErrorSize, 0);
  fail_unless(err == want, "ERROR differs from the golden bytes");

  /* The golden 2x2 pixel upload: one FRAME_RESPONSE, session 1, one NAL entry holding the
   * whole access unit, pts echoed, dts = pts, an IDR. */
  fail_unless(c->send(std::vector<uint8_t>(
      kGoldenFrameRequestPixels, kGoldenFrameRequestPixels + sizeof kGoldenFrameRequestPixels)));
  hx::Message m;
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));
  fail_unless_equals_int(m.header.session_id, 1);
  fail_unless_equals_int(m.header.flags, 0);
  hx::FrameResponse fr;
  fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
  fail_unless_equals_int(int(fr.nals.size()), 1);
  fail_unless_equals_int64(fr.pts_ns, 16666667);
  fail_unless_equals_int64(fr.dts_ns, 16666667);
  fail_unless(fr.is_keyframe);
  std::vector<uint8_t> au(fr.nals[0].data, fr.nals[0].data + fr.nals[0].size);
  fail_unless(au.size() > 4 && au[0] == 0 && au[1] == 0 && (au[2] == 1 || au[3] == 1),
              "not Annex-B");
  fail_unless(has_idr(au));
  c.reset();
  gst_element_release_request_pad(s.srv, sink0);
  gst_object_unref(sink0);
  stop_server(&s);
}
GST_END_TEST;

GST_START_TEST(test_scanout_resource_id) {
  std::string addr = tmp_socket("scanout.sock");
  std::string desc =
      "videotestsrc is-live=true pattern=smpte ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! "
      "helixframesrv name=srv address=" +
      addr;
  GstElement *pipeline = parse_pipeline(desc);
  /* READY: listening, no frame yet. */
  fail_unless(gst_element_set_state(pipeline, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS);
  auto c = connect_client(addr);
  uint32_t caps = hello(c.get());
  fail_unless(caps & hx::cap::kResourceId);
  hx::FrameRequest r;
  r.resource_id = 7;
  fail_unless(c->send(hx::encode(r, 0)));
  hx::Message m;
  fail_unless(c->read(&m));
  hx::Error e;
  fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
  fail_unless_equals_int(e.code, hx::error_code::kResourceNotFound);

  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  bool got = false;
  for (int attempt = 0; attempt < 100 && !got; attempt++) {
    r.pts_ns = attempt;
    fail_unless(c->send(hx::encode(r, 0)));
    fail_unless(c->read(&m));
    if (m.header.type == hx::MsgType::kFrameResponse) {
      hx::FrameResponse fr;
      fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
      fail_unless_equals_int(int(fr.nals.size()), 1);
      fail_unless(fr.is_keyframe);
      Encoded enc;
      enc.au.assign(fr.nals[0].data, fr.nals[0].data + fr.nals[0].size);
      fail_unless_equals_int(int(decode_all({enc}, 320, 240).size()), 1);
      got = true;
    } else {
      g_usleep(50 * 1000);
    }
  }
  fail_unless(got, "no frame from scanout 0");
  /* ENABLE_SCANOUT of a scanout we have, at its current size (0 = any): already enabled,
   * success; at another size: refused (we cannot change the guest's mode). DISABLE_SCANOUT
   * is always refused (we cannot unplug the guest's display). */
  struct {
    hx::EnableScanout e;
    bool success;
  } const enables[] = {{{0, 320, 240, 30}, true},  {{0, 0, 0, 60}, true},
                       {{0, 320, 0, 60}, true},    {{0, 1920, 1080, 60}, false},
                       {{0, 320, 200, 60}, false}, {{1, 0, 0, 60}, false}};
  for (const auto &t : enables) {
    fail_unless(c->send(hx::encode(t.e, 0)));
    fail_unless(c->read(&m));
    fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kScanoutResponse));
    hx::ScanoutResponse sr;
    fail_unless(hx::decode(m.header, m.view(), &sr) == hx::Status::kOk);
    fail_unless_equals_int(sr.scanout_id, t.e.scanout_id);
    fail_unless(sr.success == t.success, "ENABLE_SCANOUT %u %ux%u: success %d", t.e.scanout_id,
                t.e.width, t.e.height, sr.success);
  }
  fail_unless(c->send(hx::encode(hx::DisableScanout{0}, 0)));
  fail_unless(c->read(&m));
  hx::ScanoutResponse dr;
  fail_unless(hx::decode(m.header, m.view(), &dr) == hx::Status::kOk);
  fail_unless(!dr.success);
  fail_unless_equals_string(dr.connector.c_str(), "Virtual-1");
  c.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* Reads pushed FRAME_RESPONSEs of a subscription for up to ms. */
static std::vector<Encoded> read_pushed(HxfrClient *c, int count, int ms) {
  std::vector<Encoded> out;
  gint64 end = g_get_monotonic_time() + gint64(ms) * 1000;
  hx::Message m;
  while (int(out.size()) < count && g_get_monotonic_time() < end) {
    if (!c->read(&m, 2000))
      break;
    fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));
    hx::FrameResponse fr;
    fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
    fail_unless_equals_int(int(fr.nals.size()), 1);
    Encoded e;
    e.au.assign(fr.nals[0].data, fr.nals[0].data + fr.nals[0].size);
    e.keyframe = fr.is_keyframe;
    e.pts = fr.pts_ns;
    e.session = m.header.session_id;
    out.push_back(std::move(e));
  }
  return out;
}

static void subscribe_ok(HxfrClient *c, uint32_t scanout) {
  fail_unless(c->send(hx::encode(hx::Subscribe{scanout}, uint16_t(scanout))));
  hx::Message m;
  fail_unless(c->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kSubscribeResponse));
  hx::SubscribeResponse r;
  fail_unless(hx::decode(m.header, m.view(), &r) == hx::Status::kOk);
  fail_unless(r.success && r.scanout_id == scanout);
}

GST_START_TEST(test_subscribe_fanout) {
  std::string addr = tmp_socket("sub.sock");
  /* Noise makes large access units, so a subscriber that does not read fills its socket and
   * its queue quickly. */
  std::string desc =
      "videotestsrc is-live=true pattern=snow ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! "
      "helixframesrv name=srv address=" +
      addr;
  GstElement *pipeline = parse_pipeline(desc);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);

  auto fast = connect_client(addr); /* a v1 client: Helix's Go client subscribes like this */
  auto slow = connect_client(addr);
  subscribe_ok(fast.get(), 0);
  hello(slow.get());
  subscribe_ok(slow.get(), 0);
  /* A bitrate for the subscribed scanout goes to the shared encoder (no reply to v1). */
  hx::ConfigRequest cfg;
  cfg.bitrate_bps = 4000000;
  fail_unless(fast->send(hx::encode(cfg, 0)));

  /* The fast subscriber gets a stream that starts at an IDR and decodes, while the slow one
   * reads nothing. */
  std::vector<Encoded> got = read_pushed(fast.get(), 45, 15000);
  fail_unless(got.size() >= 30, "only %zu pushed frames", got.size());
  fail_unless(got[0].keyframe && has_idr(got[0].au), "stream does not start at an IDR");
  for (auto &e : got)
    fail_unless_equals_int(e.session, 0);
  fail_unless_equals_int(int(decode_all(got, 320, 240).size()), int(got.size()));

  /* The slow subscriber is disconnected once it stays behind; what it had received before
   * still decodes (it only ever misses frames up to an IDR). */
  std::vector<Encoded> slow_got;
  gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  bool closed = false;
  while (!closed && g_get_monotonic_time() < end) {
    read_pushed(fast.get(), 1000, 200); /* keep the fast one drained */
    hx::Message m;
    hx::Io io = hx::Io::Ok;
    if (g_get_monotonic_time() > end - 15 * G_USEC_PER_SEC) {
      /* after 5 s of not reading, read everything queued and see whether it ends */
      while (slow->read(&m, 500, &io)) {
        hx::FrameResponse fr;
        fail_unless(hx::decode(m.header, m.view(), &fr) == hx::Status::kOk);
        Encoded e;
        e.au = testsupport::access_unit(fr);
        e.keyframe = fr.is_keyframe;
        slow_got.push_back(std::move(e));
      }
      closed = io == hx::Io::Closed || io == hx::Io::Error;
    }
  }
  fail_unless(closed, "slow subscriber was never disconnected");
  fail_unless(!slow_got.empty() && slow_got[0].keyframe);
  fail_unless_equals_int(int(decode_all(slow_got, 320, 240).size()), int(slow_got.size()));

  /* The fast one is still served. */
  got = read_pushed(fast.get(), 10, 5000);
  fail_unless(got.size() == 10, "fast subscriber starved after the slow one left");
  fast.reset();
  slow.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* Source frames by pts, from an appsink next to the server (a tee), for PSNR by pts. */
struct ReferenceFrames {
  std::mutex lock;
  std::map<int64_t, std::vector<uint8_t>> frames; /* BGRx, packed */

  static GstFlowReturn on_sample(GstAppSink *sink, gpointer self) {
    auto *r = static_cast<ReferenceFrames *>(self);
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (!sample)
      return GST_FLOW_EOS;
    GstVideoInfo info;
    GstBuffer *b = gst_sample_get_buffer(sample);
    GstVideoFrame frame;
    if (gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
        gst_video_frame_map(&frame, &info, b, GST_MAP_READ)) {
      const int w = GST_VIDEO_FRAME_WIDTH(&frame), h = GST_VIDEO_FRAME_HEIGHT(&frame);
      std::vector<uint8_t> pixels(size_t(w) * h * 4);
      for (int y = 0; y < h; y++)
        memcpy(&pixels[size_t(y) * w * 4],
               static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                   y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0),
               size_t(w) * 4);
      gst_video_frame_unmap(&frame);
      std::lock_guard<std::mutex> g(r->lock);
      r->frames[int64_t(GST_BUFFER_PTS(b))] = std::move(pixels);
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  }
};

/* What one subscriber thread received; filled by its thread only, read after the join. */
struct Received {
  std::vector<Encoded> frames;
  std::string failure;            /* what went wrong, empty when nothing */
  bool pong = false;              /* the final PING was answered: still connected */
};

/* Reads one pushed message: a FRAME_RESPONSE of scanout 0 (appended to *r), or a PONG with
 * session 0x50 (r->pong). Anything else, or nothing within timeout_ms, is a failure. */
static bool read_subscribed(HxfrClient *c, int timeout_ms, Received *r) {
  hx::Message m;
  hx::Io io = hx::Io::Ok;
  if (!c->read(&m, timeout_ms, &io)) {
    r->failure = std::string("read failed after ") + std::to_string(r->frames.size()) +
                 " frames (" + hx::io_name(io) + ")";
    return false;
  }
  if (m.header.type == hx::MsgType::kPong && m.header.session_id == 0x50) {
    r->pong = true;
    return true;
  }
  hx::FrameResponse fr;
  if (m.header.type != hx::MsgType::kFrameResponse ||
      hx::decode(m.header, m.view(), &fr) != hx::Status::kOk || fr.nals.size() != 1 ||
      m.header.session_id != 0) {
    r->failure = std::string("unexpected ") + hx::msg_type_name(m.header.type) + " (session " +
                 std::to_string(m.header.session_id) + ") after " +
                 std::to_string(r->frames.size()) + " frames";
    return false;
  }
  Encoded e;
  e.au = testsupport::access_unit(fr);
  e.keyframe = fr.is_keyframe;
  e.pts = fr.pts_ns;
  e.session = m.header.session_id;
  r->frames.push_back(std::move(e));
  return true;
}

/* Runs of a subscription: for each frame of `got` after the first, whether the frame before
 * it in the encoded stream (`stream`, the pts of every access unit encoded, in order) is
 * missing from `got`. */
static std::vector<bool> gaps_before(const std::vector<Encoded> &got,
                                     const std::vector<int64_t> &stream) {
  std::vector<bool> gap(got.size(), false);
  for (size_t i = 1; i < got.size(); i++) {
    auto it = std::find(stream.begin(), stream.end(), got[i].pts);
    gap[i] = it == stream.begin() || it == stream.end() || *(it - 1) != got[i - 1].pts;
  }
  return gap;
}

/* PSNR of every decoded frame against the source frame of its pts; empty, or the first
 * frame below 35 dB. repeat_pts: the pts of the repeat a second SUBSCRIBE makes (the current
 * picture again, its pts advanced): compared with the last source frame before it. */
static std::string check_psnr(const char *who, const std::vector<Encoded> &got,
                              const std::vector<std::vector<uint8_t>> &decoded,
                              ReferenceFrames *ref, double *min_psnr, int64_t repeat_pts = -1) {
  std::lock_guard<std::mutex> g(ref->lock);
  *min_psnr = 100;
  for (size_t i = 0; i < got.size() && i < decoded.size(); i++) {
    auto it = ref->frames.find(got[i].pts);
    if (it == ref->frames.end() && got[i].pts == repeat_pts) {
      it = ref->frames.lower_bound(got[i].pts);
      it = it == ref->frames.begin() ? ref->frames.end() : std::prev(it);
    }
    if (it == ref->frames.end())
      return std::string(who) + " frame " + std::to_string(i) + ": no source frame of pts " +
             std::to_string(got[i].pts);
    double p = psnr(it->second, decoded[i]);
    *min_psnr = std::min(*min_psnr, p);
    if (p < 35.0) {
      char text[160];
      g_snprintf(text, sizeof text, "%s frame %zu (pts %" G_GINT64_FORMAT "): PSNR %.2f dB < 35",
                 who, i, got[i].pts, p);
      return text;
    }
  }
  return std::string();
}

/* SUBSCRIBE with a subscriber that reads all the time, but slowly: one message per 3 frames of
 * the stream (at most 150 ms apart), next to one reading at full rate. Smooth moving content
 * (a zone plate, changing every frame), so every received picture is compared with the source
 * frame of its pts (pushed frames carry the source buffer's pts): PSNR >= 35 dB.
 *
 * The slow one falls behind its bounded queue and misses access units, so it gets fewer than
 * the fast one; after every run of missed ones the next it gets is an IDR (is_keyframe and NAL
 * type 5), so all it gets decodes; and it stays connected to the end of the run (a PING then
 * is answered after what was queued). The fast one is unaffected: it gets every frame the slow
 * one gets and about every source frame, all decoding.
 *
 * Large access units (~20 KB P-frames, ~65 KB IDRs: fixed quantizer 4, ultrafast) fill the
 * subscriber's 32 KiB socket and its queue within a few frames, so the slow one misses access
 * units every few reads; it is never disconnected, as it keeps reading (the server sees bytes
 * leave its socket). */
/* A subscriber that reads very slowly (one access unit a second, its queue full the whole
 * time) is still reading: it misses frames but is not disconnected. Only one that stops
 * reading is (test_subscribe_fanout). */
GST_START_TEST(test_subscribe_very_slow_reader_stays) {
  std::string addr = tmp_socket("veryslow.sock");
  std::string desc =
      "videotestsrc is-live=true pattern=zone-plate kx2=20 ky2=20 kt=1 ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! "
      "helixframesrv name=srv address=" +
      addr +
      " encoder=\"x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=1024 "
      "pass=quant quantizer=4\"";
  GstElement *pipeline = parse_pipeline(desc);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  auto c = connect_client(addr);
  hello(c.get());
  subscribe_ok(c.get(), 0);
  /* 5 s at one message a second, with access units of about 20 kB at 30 a second: the
   * subscriber's queue and its socket are full from the first second on. */
  Received got;
  bool ok = true;
  for (int i = 0; ok && i < 5; i++) {
    ok = read_subscribed(c.get(), slow_ms(5000), &got);
    g_usleep(1000 * 1000);
  }
  fail_unless(ok, "very slow subscriber: %s", got.failure.c_str());
  fail_unless(c->send(hx::encode(hx::Ping{}, 0x50)), "PING not sent: disconnected");
  const gint64 end = g_get_monotonic_time() + gint64(slow_ms(10000)) * 1000;
  while (ok && !got.pong && g_get_monotonic_time() < end)
    ok = read_subscribed(c.get(), slow_ms(5000), &got);
  c.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  fail_unless(got.pong, "the very slow subscriber was disconnected: %s", got.failure.c_str());
  fail_unless(!got.frames.empty() && got.frames.front().keyframe);
}
GST_END_TEST;

/* A new subscriber starts from the current picture even on a static screen; subscribers
 * already on the stream get that picture again as a later frame, never a second frame with a
 * pts they already had. */
GST_START_TEST(test_subscribe_repeat_has_new_pts) {
  std::string addr = tmp_socket("repeat.sock");
  std::string desc = "appsrc name=src format=time caps=video/x-raw,format=BGRx,width=64,"
                     "height=64,framerate=30/1 ! helixframesrv address=" + addr;
  GstElement *pipeline = parse_pipeline(desc);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  std::vector<uint8_t> pixels = make_frame(64, 64, 0);
  GstBuffer *b = gst_buffer_new_memdup(pixels.data(), pixels.size());
  GST_BUFFER_PTS(b) = 1000;
  GstFlowReturn flow = GST_FLOW_ERROR;
  g_signal_emit_by_name(src, "push-buffer", b, &flow);
  gst_buffer_unref(b);
  fail_unless_equals_int(flow, GST_FLOW_OK);

  auto first = connect_client(addr);
  hello(first.get());
  /* The frame may reach the scanout after SUBSCRIBE is answered: then it comes as new. */
  subscribe_ok(first.get(), 0);
  Received a;
  fail_unless(read_subscribed(first.get(), slow_ms(10000), &a), "%s", a.failure.c_str());
  fail_unless_equals_int64(a.frames.back().pts, 1000);
  fail_unless(a.frames.back().keyframe);

  auto second = connect_client(addr);
  hello(second.get());
  subscribe_ok(second.get(), 0);
  Received b2;
  fail_unless(read_subscribed(second.get(), slow_ms(10000), &b2), "%s", b2.failure.c_str());
  fail_unless(b2.frames.back().keyframe, "the new subscriber did not start with an IDR");
  /* The first subscriber gets the repeat too, later than what it had. */
  fail_unless(read_subscribed(first.get(), slow_ms(10000), &a), "%s", a.failure.c_str());
  fail_unless(a.frames.back().pts > 1000, "repeat with pts %" G_GINT64_FORMAT
              " after pts 1000 (a frame twice)", a.frames.back().pts);
  fail_unless_equals_int64(b2.frames.back().pts, a.frames.back().pts);
  gst_object_unref(src);
  first.reset();
  second.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

GST_START_TEST(test_subscribe_slow_reader) {
  constexpr int kRunMs = 6000;       /* how long the slow one reads slowly */
  constexpr int kSlowEvery = 3;      /* frames of the stream per message it reads */
  constexpr int kSlowMaxGapMs = 150; /* ... but no longer apart than this */
  const int kReadMs = slow_ms(2000);
  std::string addr = tmp_socket("slow.sock");
  std::string desc =
      "videotestsrc is-live=true pattern=zone-plate kx2=20 ky2=20 kt=1 ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! tee name=t ! queue ! "
      "helixframesrv name=srv address=" +
      addr +
      " encoder=\"x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=1024 "
      "pass=quant quantizer=4\" "
      "t. ! queue ! appsink name=ref sync=false";
  GstElement *pipeline = parse_pipeline(desc);
  ReferenceFrames ref;
  GstElement *ref_sink = gst_bin_get_by_name(GST_BIN(pipeline), "ref");
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = ReferenceFrames::on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(ref_sink), &callbacks, &ref, nullptr);
  gst_object_unref(ref_sink);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  auto fast = connect_client(addr);
  auto slow = connect_client(addr);
  hello(fast.get());
  hello(slow.get());
  subscribe_ok(fast.get(), 0);
  subscribe_ok(slow.get(), 0);

  /* No check macro until both threads are joined. */
  Received fast_got, slow_got;
  std::atomic<int> fast_count{0};
  std::atomic<bool> slow_done{false};
  const gint64 t0 = g_get_monotonic_time();
  std::thread fast_thread([&] {
    /* Full rate, until the slow one is done and a little after (for what it got last). */
    gint64 stop_at = G_MAXINT64;
    while (g_get_monotonic_time() < stop_at && read_subscribed(fast.get(), kReadMs, &fast_got)) {
      fast_count = int(fast_got.frames.size());
      if (slow_done && stop_at == G_MAXINT64)
        stop_at = g_get_monotonic_time() + 300 * 1000;
    }
  });
  std::thread slow_thread([&] {
    const gint64 end = t0 + gint64(kRunMs) * 1000;
    bool ok = true;
    while (ok && g_get_monotonic_time() < end) {
      ok = read_subscribed(slow.get(), kReadMs, &slow_got);
      const int mark = fast_count;
      const gint64 next = g_get_monotonic_time() + kSlowMaxGapMs * 1000;
      while (fast_count < mark + kSlowEvery && g_get_monotonic_time() < next)
        g_usleep(5000);
    }
    /* Still connected? What is already in the socket comes first, then the PONG (a
     * connection the server shut down ends instead). Read at full rate now. */
    if (ok && !slow->send(hx::encode(hx::Ping{}, 0x50)))
      slow_got.failure = "PING not sent (connection closed?)";
    const gint64 drain_end = g_get_monotonic_time() + gint64(kReadMs) * 1000;
    while (ok && !slow_got.pong && g_get_monotonic_time() < drain_end)
      ok = read_subscribed(slow.get(), kReadMs, &slow_got);
    slow_done = true;
  });
  slow_thread.join();
  fast_thread.join();
  const double secs = (g_get_monotonic_time() - t0) / 1e6;
  fast.reset();
  slow.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);

  fail_unless(slow_got.failure.empty(), "slow subscriber: %s", slow_got.failure.c_str());
  fail_unless(slow_got.pong, "slow subscriber: no PONG");
  /* The fast thread stops on its own 300 ms after the slow one: by a failed read otherwise. */
  fail_unless(fast_got.failure.empty(), "fast subscriber: %s", fast_got.failure.c_str());
  fail_unless(!fast_got.frames.empty() && !slow_got.frames.empty());

  /* The encoded stream is what the fast one got: increasing pts, from an IDR. When the slow
   * one subscribed after the fast one had a picture, its SUBSCRIBE pushed that picture into
   * the shared stream again as a repeat with a later pts (the slow one starts with it). */
  std::vector<int64_t> stream;
  for (auto &e : fast_got.frames) {
    fail_unless(stream.empty() || e.pts > stream.back(),
                "fast: pts %" G_GINT64_FORMAT " after %" G_GINT64_FORMAT, e.pts, stream.back());
    stream.push_back(e.pts);
  }
  fail_unless(fast_got.frames[0].keyframe && has_idr(fast_got.frames[0].au),
              "fast: the stream does not start with an IDR");

  /* The slow one: only frames of that stream; after every gap (and first) an IDR. */
  std::vector<bool> gap = gaps_before(slow_got.frames, stream);
  int gaps = 0;
  int64_t longest_gap_ns = 0;
  for (size_t i = 0; i < slow_got.frames.size(); i++) {
    const Encoded &e = slow_got.frames[i];
    fail_unless(std::binary_search(stream.begin(), stream.end(), e.pts),
                "slow frame %zu (pts %" G_GINT64_FORMAT ") never reached the fast one", i, e.pts);
    if (i == 0 || gap[i]) {
      fail_unless(e.keyframe && has_idr(e.au),
                  "slow frame %zu (pts %" G_GINT64_FORMAT ") after a gap is not an IDR "
                  "(is_keyframe %d)", i, e.pts, e.keyframe);
    }
    if (i > 0 && gap[i]) {
      gaps++;
      longest_gap_ns = std::max(longest_gap_ns, e.pts - slow_got.frames[i - 1].pts);
    }
  }
  size_t sources;
  {
    std::lock_guard<std::mutex> g(ref.lock);
    sources = std::count_if(ref.frames.begin(), ref.frames.end(), [&](const auto &kv) {
      return kv.first >= stream.front() && kv.first <= stream.back();
    });
  }
  g_print("slow reader: %.1f s; fast got %zu of %zu source frames, slow %zu in %d runs "
          "(longest gap %" G_GINT64_FORMAT " ms)\n", secs, fast_got.frames.size(), sources,
          slow_got.frames.size(), gaps + 1, longest_gap_ns / GST_MSECOND);
  fail_unless(gaps >= 2, "slow subscriber: %d gaps, not behind and back at least twice", gaps);
  /* Fewer frames than the fast one got over the same span: the missed ones. */
  const auto span = std::count_if(stream.begin(), stream.end(), [&](int64_t pts) {
    return pts >= slow_got.frames.front().pts && pts <= slow_got.frames.back().pts;
  });
  fail_unless(size_t(span) > slow_got.frames.size(),
              "slow subscriber got %zu frames, the fast one %zd over the same span",
              slow_got.frames.size(), ssize_t(span));
  /* About every source frame (under valgrind the encoder cannot keep up: frames are then
   * replaced before encoding, for everyone). */
  const double share = g_getenv("VMD_VALGRIND") ? 0.4 : 0.9;
  fail_unless(fast_got.frames.size() >= share * sources, "fast subscriber got %zu of %zu frames",
              fast_got.frames.size(), sources);

  /* Everything both got decodes, to the right pictures. */
  for (const Received *r : {&fast_got, &slow_got}) {
    const char *who = r == &fast_got ? "fast" : "slow";
    auto decoded = decode_all(r->frames, 320, 240);
    fail_unless_equals_int(int(decoded.size()), int(r->frames.size()));
    double min_psnr = 0;
    std::string why =
        check_psnr(who, r->frames, decoded, &ref, &min_psnr, slow_got.frames.front().pts);
    fail_unless(why.empty(), "%s", why.c_str());
    GST_INFO("%s: %zu frames, PSNR >= %.2f dB", who, r->frames.size(), min_psnr);
  }
}
GST_END_TEST;

/* Going to NULL while a client's frame is being encoded returns at once, whether the encoder
 * holds the frame back (lookahead: no output within the encode timeout) or an element is
 * stuck on it and cannot be interrupted (identity sleeping 3 s). */
GST_START_TEST(test_stop_during_encode) {
  for (const char *enc : {"x264enc rc-lookahead=40", "identity sleep-time=3000000 ! x264enc "
                                                     "tune=zerolatency"}) {
    GstElement *pipeline = gst_pipeline_new(nullptr);
    GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
    std::string addr = tmp_socket("stop.sock");
    g_object_set(srv, "address", addr.c_str(), "encoder", enc, nullptr);
    gst_bin_add(GST_BIN(pipeline), srv);
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    auto c = connect_client(addr);
    hello(c.get());
    auto f = make_frame(160, 120, 0);
    fail_unless(c->send(hx::encode(pixel_request(160, 120, f, 0), 1)));
    hx::Message m;
    fail_if(c->read(&m, 500), "%s: answered within 500 ms, no encode in progress to stop", enc);
    gint64 start = g_get_monotonic_time();
    fail_unless(gst_element_set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
    gint64 took_ms = (g_get_monotonic_time() - start) / 1000;
    GST_INFO("%s: NULL took %" G_GINT64_FORMAT " ms", enc, took_ms);
    fail_unless(took_ms < 1000, "%s: going to NULL took %" G_GINT64_FORMAT " ms", enc, took_ms);
    fail_unless(c->closed_by_peer(), "%s: client still connected after NULL", enc);
    gst_object_unref(pipeline);
  }
}
GST_END_TEST;

/* Reads messages for ms and checks none has a payload over max_payload. Returns them. */
static std::vector<hx::Message> read_for(HxfrClient *c, int ms, uint32_t max_payload) {
  std::vector<hx::Message> out;
  gint64 end = g_get_monotonic_time() + gint64(ms) * 1000;
  hx::Message m;
  while (g_get_monotonic_time() < end) {
    if (!c->read(&m, int(std::max<gint64>(1, (end - g_get_monotonic_time()) / 1000))))
      break;
    fail_unless(m.header.payload_size <= max_payload, "%s of %u bytes sent over max_payload %u",
                hx::msg_type_name(m.header.type), m.header.payload_size, max_payload);
    out.push_back(std::move(m));
  }
  return out;
}

/* The max_payload a client announces in HELLO is never exceeded: an access unit that would
 * not fit is answered ERROR ENCODE_FAILED, the connection stays, and the next frame is an
 * IDR; a SUBSCRIBE stream skips what does not fit (one ERROR per run). A max_payload below
 * the size of ERROR is refused. */
GST_START_TEST(test_client_max_payload) {
  const uint32_t kMax = 2000;
  Server s = start_server(tmp_socket("maxpay.sock"));
  auto c = connect_client(s.uri);
  hello(c.get(), hx::cap::kAllKnown, kMax);
  /* A flat frame fits; noise does not. */
  std::vector<uint8_t> flat(64 * 64 * 4, 0x80);
  Encoded e = encode_one(c.get(), pixel_request(64, 64, flat, 1));
  fail_unless(e.keyframe && e.au.size() + 28 <= kMax, "flat IDR of %zu bytes", e.au.size());
  e = encode_one(c.get(), pixel_request(64, 64, flat, 2));
  fail_unless(!e.keyframe);
  auto noise = make_noise(64, 64, 7);
  fail_unless(c->send(hx::encode(pixel_request(64, 64, noise, 3), 1)));
  hx::Message answer;
  fail_unless(c->read(&answer));
  fail_unless(answer.header.payload_size <= kMax, "%s of %u bytes sent over max_payload %u",
              hx::msg_type_name(answer.header.type), answer.header.payload_size, kMax);
  fail_unless_equals_int(int(answer.header.type), int(hx::MsgType::kError));
  hx::Error err;
  fail_unless(hx::decode(answer.header, answer.view(), &err) == hx::Status::kOk);
  fail_unless_equals_int(err.code, hx::error_code::kEncodeFailed);
  fail_unless(err.message.find("max_payload") != std::string::npos, "%s", err.message.c_str());
  /* Still connected, and the next frame is an IDR (the dropped one is no reference). */
  e = encode_one(c.get(), pixel_request(64, 64, flat, 4));
  fail_unless(e.keyframe && has_idr(e.au));
  c.reset();

  c = connect_client(s.uri);
  hx::Hello h;
  h.capabilities = hx::cap::kAllKnown;
  h.max_payload = 100;
  fail_unless(c->send(hx::encode(h, 0)));
  expect_invalid_and_close(c.get());
  c.reset();
  stop_server(&s);

  /* Subscribed: noise access units never fit 2000 bytes. */
  std::string addr = tmp_socket("maxpay-sub.sock");
  std::string desc =
      "videotestsrc is-live=true pattern=snow ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! "
      "helixframesrv name=srv address=" +
      addr;
  GstElement *pipeline = parse_pipeline(desc);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  c = connect_client(addr);
  hello(c.get(), hx::cap::kAllKnown, kMax);
  subscribe_ok(c.get(), 0);
  std::vector<hx::Message> got = read_for(c.get(), 2000, kMax);
  int errors = 0;
  for (auto &m : got) {
    if (m.header.type == hx::MsgType::kError) {
      fail_unless(hx::decode(m.header, m.view(), &err) == hx::Status::kOk);
      fail_unless_equals_int(err.code, hx::error_code::kEncodeFailed);
      fail_unless_equals_int(m.header.session_id, 0);
      errors++;
    }
  }
  fail_unless_equals_int(errors, 1);
  c.reset();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* Releasing sink_N ends its SUBSCRIBE streams (ERROR RESOURCE_NOT_FOUND, then the
 * connection closes), and resource-ID requests for scanout N get RESOURCE_NOT_FOUND instead
 * of the last frame it had. */
GST_START_TEST(test_release_pad_ends_subscription) {
  std::string addr = tmp_socket("release.sock");
  std::string desc =
      "videotestsrc is-live=true ! "
      "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1 ! "
      "helixframesrv name=srv address=" +
      addr;
  GstElement *pipeline = parse_pipeline(desc);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  auto sub = connect_client(addr);
  hello(sub.get());
  subscribe_ok(sub.get(), 0);
  fail_unless(!read_pushed(sub.get(), 3, 5000).empty(), "no pushed frame");
  auto req = connect_client(addr);
  hello(req.get());
  hx::FrameRequest r;
  r.resource_id = 7;
  r.pts_ns = 1;
  fail_unless(req->send(hx::encode(r, 0)));
  hx::Message m;
  fail_unless(req->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));

  GstElement *srv = gst_bin_get_by_name(GST_BIN(pipeline), "srv");
  GstPad *pad = gst_element_get_static_pad(srv, "sink_0");
  fail_unless(pad != nullptr);
  gst_element_release_request_pad(srv, pad);
  gst_object_unref(pad);

  /* The subscriber: maybe frames still queued, then the ERROR, then the close. */
  bool got_error = false;
  hx::Io io = hx::Io::Ok;
  while (sub->read(&m, 3000, &io)) {
    fail_if(got_error, "a message after the ERROR");
    if (m.header.type == hx::MsgType::kError) {
      hx::Error e;
      fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
      fail_unless_equals_int(e.code, hx::error_code::kResourceNotFound);
      fail_unless_equals_int(m.header.session_id, 0);
      fail_unless(e.message.find("sink_0") != std::string::npos, "%s", e.message.c_str());
      got_error = true;
    } else {
      fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kFrameResponse));
    }
  }
  fail_unless(got_error, "subscriber not told its stream ended");
  fail_unless(io == hx::Io::Closed || io == hx::Io::Error, "subscriber not disconnected (%s)",
              hx::io_name(io));

  /* The other client: the scanout is gone, not frozen on its last frame. */
  r.pts_ns = 2;
  fail_unless(req->send(hx::encode(r, 0)));
  fail_unless(req->read(&m));
  fail_unless_equals_int(int(m.header.type), int(hx::MsgType::kError));
  hx::Error e;
  fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
  fail_unless_equals_int(e.code, hx::error_code::kResourceNotFound);
  /* And SUBSCRIBE to it is refused. */
  fail_unless(req->send(hx::encode(hx::Subscribe{0}, 0)));
  fail_unless(req->read(&m));
  hx::SubscribeResponse sr;
  fail_unless(hx::decode(m.header, m.view(), &sr) == hx::Status::kOk);
  fail_unless(!sr.success);
  sub.reset();
  req.reset();
  gst_object_unref(srv);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

/* I420 planes of a smooth pattern, packed. */
static std::vector<uint8_t> make_i420(int w, int h, int index) {
  std::vector<uint8_t> f(size_t(w) * h * 3 / 2);
  uint8_t *y = f.data(), *u = y + w * h, *v = u + (w / 2) * (h / 2);
  for (int j = 0; j < h; j++)
    for (int i = 0; i < w; i++)
      y[j * w + i] = uint8_t(30 + 170.0 * i / w + 20.0 * j / h + index);
  for (int j = 0; j < h / 2; j++)
    for (int i = 0; i < w / 2; i++) {
      u[j * (w / 2) + i] = uint8_t(100 + 50.0 * i / (w / 2));
      v[j * (w / 2) + i] = uint8_t(150 - 40.0 * j / (h / 2));
    }
  return f;
}

static double psnr_bytes(const uint8_t *a, const uint8_t *b, size_t n) {
  double se = 0;
  for (size_t i = 0; i < n; i++)
    se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return se == 0 ? 100 : 10 * std::log10(255.0 * 255.0 / (se / n));
}

/* Decodes to packed I420. */
static std::vector<std::vector<uint8_t>> decode_i420(const std::vector<Encoded> &aus, int w,
                                                     int h) {
  return decode_with(aus, "I420", [&](const GstVideoFrame &frame) {
    std::vector<uint8_t> packed;
    for (int p = 0; p < 3; p++) {
      int pw = p ? w / 2 : w, ph = p ? h / 2 : h;
      for (int j = 0; j < ph; j++) {
        const uint8_t *row = static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p)) +
                             j * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
        packed.insert(packed.end(), row, row + pw);
      }
    }
    return packed;
  });
}

/* NV12 (v1 format) and YU12 (v2, EXTRA_FORMATS) uploads with padded strides: the wire's plane
 * layout (docs/protocol.md, "Pixel data") reaches the encoder intact. */
GST_START_TEST(test_yuv_uploads) {
  const int w = 320, h = 240, pad = 64;
  Server s = start_server(tmp_socket("yuv.sock"));
  for (uint32_t fourcc : {hx::format::kNV12, hx::format::kYU12}) {
    auto c = connect_client(s.uri);
    fail_unless(hello(c.get()) & hx::cap::kExtraFormats);
    std::vector<std::vector<uint8_t>> inputs;
    std::vector<Encoded> outputs;
    for (int i = 0; i < 5; i++) {
      inputs.push_back(make_i420(w, h, i));
      const uint8_t *y = inputs.back().data(), *u = y + w * h, *v = u + (w / 2) * (h / 2);
      const int stride = w + pad;
      std::vector<uint8_t> wire;
      for (int j = 0; j < h; j++) {
        wire.insert(wire.end(), y + j * w, y + j * w + w);
        wire.insert(wire.end(), pad, 0xee);
      }
      if (fourcc == hx::format::kNV12) {
        for (int j = 0; j < h / 2; j++) {
          for (int i2 = 0; i2 < w / 2; i2++) {
            wire.push_back(u[j * (w / 2) + i2]);
            wire.push_back(v[j * (w / 2) + i2]);
          }
          wire.insert(wire.end(), pad, 0xee);
        }
      } else {
        const int cstride = stride / 2;
        for (const uint8_t *plane : {u, v})
          for (int j = 0; j < h / 2; j++) {
            wire.insert(wire.end(), plane + j * (w / 2), plane + j * (w / 2) + w / 2);
            wire.insert(wire.end(), cstride - w / 2, 0xee);
          }
      }
      hx::FrameRequest r = pixel_request(w, h, wire, i, fourcc);
      r.stride = stride;
      outputs.push_back(encode_one(c.get(), r));
    }
    auto decoded = decode_i420(outputs, w, h);
    fail_unless_equals_int(int(decoded.size()), 5);
    for (int i = 0; i < 5; i++) {
      double p = psnr_bytes(inputs[i].data(), decoded[i].data(), inputs[i].size());
      fail_unless(p >= 35.0, "%s frame %d: PSNR %.2f dB",
                  fourcc == hx::format::kNV12 ? "NV12" : "YU12", i, p);
    }
  }
  stop_server(&s);
}
GST_END_TEST;

/* encoder as a factory name and as a bin description; a missing one is a clear error; the
 * server restarts on the same UNIX path. */
GST_START_TEST(test_encoder_property) {
  for (const char *enc : {"x264enc", "x264enc tune=zerolatency bitrate=3000 ! queue"}) {
    GstElement *pipeline = gst_pipeline_new(nullptr);
    GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
    std::string addr = tmp_socket("enc.sock");
    g_object_set(srv, "address", addr.c_str(), "encoder", enc, nullptr);
    gst_bin_add(GST_BIN(pipeline), srv);
    for (int round = 0; round < 2; round++) { /* second round: restart, stale socket file */
      fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
      auto c = connect_client(addr);
      std::vector<Encoded> out;
      for (int i = 0; i < 3; i++) {
        auto f = make_frame(160, 120, i);
        out.push_back(encode_one(c.get(), pixel_request(160, 120, f, i)));
      }
      fail_unless_equals_int(int(decode_all(out, 160, 120).size()), 3);
      c.reset();
      gst_element_set_state(pipeline, GST_STATE_NULL);
    }
    gst_object_unref(pipeline);
  }

  GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
  g_object_set(srv, "address", tmp_socket("noenc.sock").c_str(), "encoder", "nosuchh264enc",
               nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(srv, bus);
  fail_unless_equals_int(gst_element_set_state(srv, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != nullptr);
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error(msg, &err, &dbg);
  fail_unless(g_error_matches(err, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN));
  fail_unless(strstr(dbg, "nosuchh264enc") != nullptr, "%s", dbg);
  g_error_free(err);
  g_free(dbg);
  gst_message_unref(msg);
  gst_element_set_state(srv, GST_STATE_NULL);
  gst_element_set_bus(srv, nullptr);
  gst_object_unref(bus);
  gst_object_unref(srv);
}
GST_END_TEST;

GST_START_TEST(test_bad_address) {
  GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
  g_object_set(srv, "address", "carrier-pigeon://here", nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(srv, bus);
  fail_unless_equals_int(gst_element_set_state(srv, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != nullptr);
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error(msg, &err, &dbg);
  fail_unless(strstr(dbg, "unix:///PATH") != nullptr, "%s", dbg);
  g_error_free(err);
  g_free(dbg);
  gst_message_unref(msg);
  gst_element_set_state(srv, GST_STATE_NULL);
  gst_element_set_bus(srv, nullptr);
  gst_object_unref(bus);
  gst_object_unref(srv);
}
GST_END_TEST;

/* docs/helixframesrv.md documents every property of the element, and each has a real blurb. */
/* ---- slot exhaustion: client-timeout, idle-timeout ---------------------------------------- */

static Server start_limited_server(const std::string &address, guint max_clients,
                                   guint client_timeout_ms, guint idle_timeout_ms) {
  Server s = start_server(address, max_clients);
  /* Set in NULL: restart with the limits. */
  gst_element_set_state(s.pipeline, GST_STATE_NULL);
  g_object_set(s.srv, "client-timeout", client_timeout_ms, "idle-timeout", idle_timeout_ms,
               nullptr);
  fail_unless(gst_element_set_state(s.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  return s;
}

/* A client trickling one byte every 300 ms inside a message is closed client-timeout after
 * the message's first byte, not kept alive by each byte. */
GST_START_TEST(test_client_timeout_trickle) {
  Server s = start_limited_server(tmp_socket("trickle.sock"), 16, 1000, 0);
  auto c = connect_client(s.uri);
  hello(c.get());
  hx::ConfigRequest cfg;
  cfg.bitrate_bps = 1000000;
  std::vector<uint8_t> bytes = hx::encode(cfg, 1);
  const gint64 t0 = g_get_monotonic_time();
  bool closed = false;
  for (size_t i = 0; i + 1 < bytes.size() && !closed; i++) {
    c->send(std::vector<uint8_t>{bytes[i]}, 1000);
    closed = c->closed_by_peer(300);
  }
  const gint64 took_ms = (g_get_monotonic_time() - t0) / 1000;
  fail_unless(closed, "still connected after trickling %zu bytes for %" G_GINT64_FORMAT " ms",
              bytes.size() - 1, took_ms);
  fail_unless(took_ms >= 900 && took_ms <= slow_ms(1700), "closed after %" G_GINT64_FORMAT
              " ms, not about 1 s", took_ms);
  stop_server(&s);
}
GST_END_TEST;

/* A connection that sends nothing (PING aside) is closed after idle-timeout. */
GST_START_TEST(test_idle_timeout) {
  Server s = start_limited_server(tmp_socket("idle.sock"), 16, 10000, 600);
  auto c = connect_client(s.uri);
  hello(c.get());
  const gint64 t0 = g_get_monotonic_time();
  c->send(hx::encode(hx::Ping{}, 1));
  fail_unless(c->closed_by_peer(slow_ms(3000)), "an idle client is still connected after 3 s");
  const gint64 took_ms = (g_get_monotonic_time() - t0) / 1000;
  fail_unless(took_ms >= 500, "closed after %" G_GINT64_FORMAT " ms, before idle-timeout",
              took_ms);
  /* A client that keeps asking stays. */
  auto busy = connect_client(s.uri);
  hello(busy.get());
  for (int i = 0; i < 6; i++) {
    g_usleep(250 * 1000);
    hx::ConfigRequest cfg;
    busy->send(hx::encode(cfg, 1));
    hx::Message m;
    fail_unless(busy->read(&m, 2000), "a busy client was closed (request %d)", i);
  }
  stop_server(&s);
}
GST_END_TEST;

/* Only messages the server acts on keep a connection from being idle: a header of an unknown
 * type now and then does not hold a slot. And a message under way when the idle time runs
 * out is not cut off (client-timeout bounds it): its upload is answered. */
GST_START_TEST(test_idle_timeout_requests_only) {
  Server s = start_limited_server(tmp_socket("idle-req.sock"), 16, 10000, 600);
  auto unknown = connect_client(s.uri);
  hello(unknown.get());
  std::vector<uint8_t> skip = hx::encode(hx::Ping{}, 1);
  skip[4] = 0x99; /* an unknown type: skipped by the server */
  const gint64 t0 = g_get_monotonic_time();
  bool closed = false;
  while (!closed && g_get_monotonic_time() - t0 < gint64(slow_ms(3000)) * 1000) {
    unknown->send(skip);
    closed = unknown->closed_by_peer(250);
  }
  fail_unless(closed, "a client sending only unknown types was not idle-closed in 3 s");
  auto slow_upload = connect_client(s.uri);
  hello(slow_upload.get());
  g_usleep(400 * 1000);
  std::vector<uint8_t> px(64 * 48 * 4, 0x40);
  hx::FrameRequest req;
  req.width = 64;
  req.height = 48;
  req.format = hx::format::kAR24;
  req.stride = 64 * 4;
  req.pts_ns = 5;
  req.pixels = hx::ByteView{px.data(), px.size()};
  const std::vector<uint8_t> msg = hx::encode(req, 1);
  const size_t piece = msg.size() / 8 + 1;
  for (size_t off = 0; off < msg.size(); off += piece) { /* 8 pieces 100 ms apart: past 600 ms */
    const size_t n = std::min(piece, msg.size() - off);
    fail_unless(slow_upload->send(std::vector<uint8_t>(msg.begin() + long(off),
                                                       msg.begin() + long(off + n))),
                "the connection was closed inside the message (at byte %zu)", off);
    g_usleep(100 * 1000);
  }
  hx::Message m;
  fail_unless(slow_upload->read(&m, slow_ms(5000)), "no answer to an upload that spanned the idle timeout");
  fail_unless(m.header.type == hx::MsgType::kFrameResponse, "answered %s",
              hx::msg_type_name(m.header.type));
  stop_server(&s);
}
GST_END_TEST;

/* 16 idle connections hold every max-clients slot only until their idle timeout: then a good
 * client is served. */
GST_START_TEST(test_idle_slots_freed) {
  Server s = start_limited_server(tmp_socket("slots.sock"), 16, 10000, 800);
  std::vector<std::unique_ptr<HxfrClient>> idle;
  for (int i = 0; i < 16; i++) {
    idle.push_back(connect_client(s.uri));
    hello(idle.back().get());
  }
  std::string refused = try_refused(s.uri);
  fail_unless(refused.empty(), "17th client: %s", refused.c_str());
  bool served = false;
  const gint64 t0 = g_get_monotonic_time();
  while (!served && g_get_monotonic_time() - t0 < gint64(slow_ms(5000)) * 1000) {
    g_usleep(200 * 1000);
    std::unique_ptr<HxfrClient> good;
    if (!try_connect(s.uri, &good).empty())
      continue;
    good->send(hx::encode(hx::Ping{}, 1));
    hx::Message m;
    served = good->read(&m, 1000) && m.header.type == hx::MsgType::kPong;
  }
  fail_unless(served, "no slot for a good client 5 s after 16 idle ones connected");
  stop_server(&s);
}
GST_END_TEST;

/* ---- token -------------------------------------------------------------------------------- */

static Server start_token_server(const std::string &address, const char *token) {
  Server s = start_server(address);
  gst_element_set_state(s.pipeline, GST_STATE_NULL);
  g_object_set(s.srv, "token", token, nullptr);
  fail_unless(gst_element_set_state(s.pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  return s;
}

/* Sends bytes in one write, then expects exactly one ERROR UNAUTHORIZED and the close: no
 * HELLO_RESP, no PONG, no FRAME_RESPONSE, no SUBSCRIBE_RESP. */
static void expect_unauthorized(HxfrClient *c, const std::vector<uint8_t> &bytes,
                                const char *who) {
  fail_unless(c->send(bytes), "%s: send failed", who);
  hx::Message m;
  fail_unless(c->read(&m, 5000), "%s: no answer", who);
  fail_unless(m.header.type == hx::MsgType::kError, "%s: answered %s, not ERROR", who,
              hx::msg_type_name(m.header.type));
  hx::Error e;
  fail_unless(hx::decode(m.header, m.view(), &e) == hx::Status::kOk);
  fail_unless_equals_int(e.code, hx::error_code::kUnauthorized);
  fail_unless(e.message.find("token") != std::string::npos, "%s: '%s'", who, e.message.c_str());
  fail_unless(c->closed_by_peer(5000), "%s: not closed after ERROR -7", who);
}

static std::vector<uint8_t> then_requests(std::vector<uint8_t> bytes) {
  hx::Subscribe sub;
  std::vector<uint8_t> more = hx::encode(sub, 0);
  bytes.insert(bytes.end(), more.begin(), more.end());
  std::vector<uint8_t> px(16 * 16 * 4, 0x80);
  hx::FrameRequest req;
  req.width = 16;
  req.height = 16;
  req.format = hx::format::kAR24;
  req.stride = 64;
  req.pixels = hx::ByteView{px.data(), px.size()};
  more = hx::encode(req, 1);
  bytes.insert(bytes.end(), more.begin(), more.end());
  more = hx::encode(hx::Ping{}, 1);
  bytes.insert(bytes.end(), more.begin(), more.end());
  return bytes;
}

GST_START_TEST(test_token) {
  Server s = start_token_server(tmp_socket("token.sock"), "s3cret-token");
  {
    auto good = connect_client(s.uri);
    good->send(hx::encode(hx::Hello(2, hx::cap::kAllKnown, hx::kDefaultMaxPayload,
                                    "s3cret-token"), 0));
    hx::Message m;
    fail_unless(good->read(&m, 5000) && m.header.type == hx::MsgType::kHelloResponse,
                "the right token got no HELLO_RESP");
    upload_and_check(good.get(), 64, 48, 2, false);
  }
  auto wrong = connect_client(s.uri);
  expect_unauthorized(wrong.get(),
                      then_requests(hx::encode(hx::Hello(2, hx::cap::kAllKnown,
                                                         hx::kDefaultMaxPayload, "s3cret-tokeN"),
                                               0)),
                      "wrong token");
  auto none = connect_client(s.uri);
  expect_unauthorized(
      none.get(),
      then_requests(hx::encode(hx::Hello(2, hx::cap::kAllKnown, hx::kDefaultMaxPayload), 0)),
      "no token");
  auto v1 = connect_client(s.uri);
  std::vector<uint8_t> v1_bytes = then_requests({});
  expect_unauthorized(v1.get(), v1_bytes, "v1 client");
  stop_server(&s);
}
GST_END_TEST;

/* Before the token is checked the server takes nothing larger than a HELLO: a v1 client's
 * header announcing a 60 MiB upload is refused at once, without waiting for (or buffering)
 * its payload; a client with the token then uploads as usual. */
GST_START_TEST(test_token_bounds_before_hello) {
  Server s = start_token_server(tmp_socket("token-bound.sock"), "s3cret-token");
  auto big = connect_client(s.uri);
  hx::FrameRequest req;
  req.width = 4096;
  req.height = 4096;
  req.format = hx::format::kAR24;
  req.stride = 4096 * 4;
  std::vector<uint8_t> header =
      hx::encode_frame_request_prefix(req, 1, size_t(req.stride) * req.height - 1000);
  fail_unless(header.size() == hx::kHeaderSize + hx::kFrameRequestSize);
  header.resize(hx::kHeaderSize); /* the header alone: the payload never comes */
  const gint64 t0 = g_get_monotonic_time();
  expect_unauthorized(big.get(), header, "60 MiB upload before HELLO");
  fail_unless(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC, "refused only after %" G_GINT64_FORMAT " us",
              g_get_monotonic_time() - t0);
  auto good = connect_client(s.uri);
  good->send(hx::encode(hx::Hello(2, hx::cap::kAllKnown, hx::kDefaultMaxPayload, "s3cret-token"), 0));
  hx::Message m;
  fail_unless(good->read(&m, 5000) && m.header.type == hx::MsgType::kHelloResponse);
  upload_and_check(good.get(), 640, 480, 2, false); /* 1.2 MB uploads: over a HELLO's size */
  stop_server(&s);
}
GST_END_TEST;

/* Only the warnings (GST_MESSAGE_WARNING) posted while the server starts on address. */
static int open_warnings(const std::string &address, const char *token, std::string *text) {
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
  g_object_set(srv, "address", address.c_str(), "token", token, nullptr);
  gst_bin_add(GST_BIN(pipeline), srv);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_READY) != GST_STATE_CHANGE_FAILURE);
  GstBus *bus = gst_element_get_bus(pipeline);
  int n = 0;
  while (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning(msg, &err, &dbg);
    *text = std::string(err->message) + " / " + (dbg ? dbg : "");
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(msg);
    n++;
  }
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return n;
}

GST_START_TEST(test_tcp_without_token_warns) {
  std::string text;
  fail_unless_equals_int(open_warnings("tcp://127.0.0.1:0", nullptr, &text), 1);
  fail_unless(text.find("set token") != std::string::npos &&
                  text.find("tcp://127.0.0.1:") != std::string::npos &&
                  text.find("tcp://127.0.0.1:0 ") == std::string::npos,
              "warning: %s", text.c_str());
  fail_unless(text.find("see the VM's screen") != std::string::npos, "%s", text.c_str());
  text.clear();
  fail_unless_equals_int(open_warnings("tcp://127.0.0.1:0", "a-token", &text), 0);
  fail_unless_equals_int(open_warnings(tmp_socket("warn.sock"), nullptr, &text), 0);
}
GST_END_TEST;

/* The start-up warning is posted without the element's lock: an application's sync bus
 * handler that reads a property while handling it must not deadlock the state change. */
static GstBusSyncReply read_port_on_warning(GstBus *, GstMessage *msg, gpointer data) {
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
    guint port = 0;
    g_object_get(static_cast<GstElement *>(data), "bound-port", &port, nullptr);
    g_atomic_int_inc(reinterpret_cast<gint *>(g_object_get_data(G_OBJECT(data), "warnings")));
  }
  return GST_BUS_PASS;
}

GST_START_TEST(test_warning_with_sync_handler) {
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
  g_object_set(srv, "address", "tcp://127.0.0.1:0", nullptr);
  gint warnings = 0;
  g_object_set_data(G_OBJECT(srv), "warnings", &warnings);
  gst_bin_add(GST_BIN(pipeline), srv);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(bus, read_port_on_warning, srv, nullptr);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_READY) != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int(g_atomic_int_get(&warnings), 1);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}
GST_END_TEST;

GST_START_TEST(test_docs_cover_every_property) {
  bool skipped = false;
  std::string problem = testsupport::undocumented_property("helixframesrv", "helixframesrv.md", &skipped);
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_if(skipped, "VMD_DOCS_DIR is not set (meson sets it)");
}
GST_END_TEST;

static Suite *helixframesrv_suite() {
  Suite *s = suite_create("helixframesrv");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_docs_cover_every_property);
  tcase_add_test(tc, test_bad_address);
  tcase_add_test(tc, test_ping_hello);
  tcase_add_test(tc, test_pixel_upload_unix);
  tcase_add_test(tc, test_pixel_upload_tcp);
  tcase_add_test(tc, test_odd_sizes);
  tcase_add_test(tc, test_force_keyframe);
  tcase_add_test(tc, test_bitrate_config);
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_max_clients);
  tcase_add_test(tc, test_random_messages);
  tcase_add_test(tc, test_eight_clients);
  tcase_add_test(tc, test_v1_client);
  tcase_add_test(tc, test_scanout_resource_id);
  tcase_add_test(tc, test_subscribe_fanout);
  tcase_add_test(tc, test_subscribe_slow_reader);
  tcase_add_test(tc, test_subscribe_very_slow_reader_stays);
  tcase_add_test(tc, test_subscribe_repeat_has_new_pts);
  tcase_add_test(tc, test_stop_during_encode);
  tcase_add_test(tc, test_client_max_payload);
  tcase_add_test(tc, test_release_pad_ends_subscription);
  tcase_add_test(tc, test_yuv_uploads);
  tcase_add_test(tc, test_encoder_property);
  tcase_add_test(tc, test_client_timeout_trickle);
  tcase_add_test(tc, test_idle_timeout);
  tcase_add_test(tc, test_idle_slots_freed);
  tcase_add_test(tc, test_idle_timeout_requests_only);
  tcase_add_test(tc, test_token);
  tcase_add_test(tc, test_tcp_without_token_warns);
  tcase_add_test(tc, test_warning_with_sync_handler);
  tcase_add_test(tc, test_token_bounds_before_hello);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  GstElementFactory *own = gst_element_factory_find("helixframesrv");
  if (!own) {
    g_printerr("helixframesrv not found: GST_PLUGIN_PATH must include build/gst/helix\n");
    return 1;
  }
  gst_object_unref(own);
  for (const char *f : {"x264enc", "avdec_h264", "h264parse", "videoconvert", "videotestsrc",
                        "appsrc", "appsink"}) {
    GstElementFactory *factory = gst_element_factory_find(f);
    if (!factory) {
      g_print("SKIP: element %s not found (GST_PLUGIN_PATH / plugin whitelist?)\n", f);
      return 77;
    }
    gst_object_unref(factory);
  }
  gchar *d = g_dir_make_tmp("helixframesrv-XXXXXX", nullptr);
  g_dir = d;
  g_free(d);
  Suite *s = helixframesrv_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  /* Socket files are removed with their listeners; the directory is empty by now. */
  g_rmdir(g_dir.c_str());
  return failed == 0 ? 0 : 1;
}
