/* Benchmark: HXFR pixel upload to helixframesrv, against the same encoder run locally.
 *
 * In this one process: two helixframesrv elements (unix:///tmp/hxfr-bench-PID.sock and
 * tcp://127.0.0.1:0), and a raw HXFR client built from the hxfr library (not vsockenc, so
 * what is measured is the protocol and the server, not an element): HELLO, CONFIG_REQ
 * (8 Mbit/s, 30 fps), then 1920x1080 frames of moving content uploaded as FRAME_REQUEST with
 * pixels, in NV12 and BGRx (XR24). Frames are generated in memory before anything is timed.
 *
 *   (a) sequential round trip: one frame in flight, from the first byte sent to the
 *       FRAME_RESPONSE fully received (mean, median, p95);
 *   (b) pipelined throughput: 2 and 4 frames in flight (a sender and a receiver thread),
 *       frames / (last response - first send), summed over blocks.
 *
 * helixframesrv does not report its encode time, so the baseline is measured here: the same
 * frames through the pipeline helixframesrv builds for a client (frame-server-encoder.cpp,
 * with the encoder description from encoder-factory.cpp, same bitrate and frame rate):
 *   appsrc ! videoconvert ! <encoder + low-latency settings> ! h264parse config-interval=-1
 *     ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink
 * sequentially (push -> sample out, per frame) and as fast as it goes (a thread pushes, this
 * one pulls). The machine this runs on is shared, so local and remote are interleaved: the
 * sequential figures frame by frame (local frame i, then remote frame i), the throughput
 * figures in --rounds blocks of local / 2 in flight / 4 in flight, order rotated each round.
 * "Overhead" = remote round trip - local encode latency of the same frame, averaged: an
 * estimate (two encoder instances, two measurements), not a measurement inside the server.
 *
 *   hxfr-bench [--frames N] [--warmup N] [--distinct N] [--rounds N] [--encoder auto|FACTORY]
 *              [--plugin-path DIR] [--transports unix,tcp] [--formats nv12,bgrx]
 *
 * GST_PLUGIN_PATH must include <build>/gst/helix, or pass --plugin-path. Prints progress on
 * stderr and a Markdown table on stdout; never fails on a timing (exit 1 only when something
 * does not work at all: no element, no encoder, a refused frame).
 */
#include "encoder-factory.h"
#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"

#include <gst/app/app.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hx = vmd::hxfr;

namespace {

constexpr int kWidth = 1920;
constexpr int kHeight = 1080;
constexpr uint32_t kBitrateBps = 8000000; /* vsockenc's default bitrate */
constexpr uint32_t kFpsNum = 30, kFpsDen = 1;
constexpr int kTimeoutMs = 20000;

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* ---- frames ----------------------------------------------------------------------------- */

struct Format {
  const char *name;        /* for the table */
  uint32_t fourcc;         /* on the wire */
  GstVideoFormat gst;      /* locally */
  uint32_t stride;         /* plane 0; NV12's UV plane uses the same stride */
  size_t size;             /* bytes per frame */
  std::vector<std::vector<uint8_t>> frames;
};

uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352d;
  x ^= x >> 15;
  x *= 0x846ca68b;
  x ^= x >> 16;
  return x;
}

/* A desktop-like moving picture: gradients, a band of blocky "text" scrolling left by 6 px a
 * frame, and a soft disc moving right. Enough detail and motion that the encoder works. */
void make_bgrx(int index, std::vector<uint8_t> *out) {
  out->resize(size_t(kWidth) * kHeight * 4);
  double cx = kWidth * (0.1 + 0.013 * index), cy = kHeight * 0.65, r = kHeight * 0.18;
  int band0 = kHeight / 8, band1 = kHeight * 3 / 8;
  for (int y = 0; y < kHeight; y++) {
    uint8_t *row = out->data() + size_t(y) * kWidth * 4;
    uint8_t green = uint8_t(30 + 160 * y / kHeight);
    bool in_band = y >= band0 && y < band1;
    int line = (y - band0) / 20, in_line = (y - band0) % 20;
    for (int x = 0; x < kWidth; x++) {
      uint8_t *p = row + size_t(x) * 4;
      uint8_t red = uint8_t(40 + 180 * x / kWidth);
      uint8_t blue = uint8_t(60 + 4 * (index % 10));
      if (in_band && in_line < 16) {
        int sx = x + 6 * index; /* scrolling */
        uint32_t glyph = hash32(uint32_t(line * 4099 + sx / 10));
        uint32_t bit = (sx % 10) / 2 + 5 * (in_line / 4);
        if (glyph & 3 && (glyph >> (bit % 30)) & 1)
          red = green = blue = 20;
      }
      double dx = x - cx, dy = y - cy;
      if (std::fabs(dx) < r + 8 && std::fabs(dy) < r + 8) {
        double d = std::sqrt(dx * dx + dy * dy);
        double disc = d < r ? 1.0 : d < r + 8 ? 1.0 - (d - r) / 8 : 0.0;
        blue = uint8_t(blue + (250 - blue) * disc);
        red = uint8_t(red * (1 - 0.6 * disc));
      }
      p[0] = blue;
      p[1] = green;
      p[2] = red;
      p[3] = 255;
    }
  }
}

/* NV12 (BT.601 limited range) of a BGRx frame; chroma from the top-left pixel of each 2x2. */
void bgrx_to_nv12(const std::vector<uint8_t> &bgrx, std::vector<uint8_t> *out) {
  out->resize(size_t(kWidth) * kHeight * 3 / 2);
  uint8_t *yp = out->data(), *uvp = out->data() + size_t(kWidth) * kHeight;
  for (int y = 0; y < kHeight; y++) {
    const uint8_t *row = bgrx.data() + size_t(y) * kWidth * 4;
    for (int x = 0; x < kWidth; x++) {
      int b = row[x * 4], g = row[x * 4 + 1], r = row[x * 4 + 2];
      yp[size_t(y) * kWidth + x] = uint8_t(16 + ((66 * r + 129 * g + 25 * b + 128) >> 8));
      if (!(x & 1) && !(y & 1)) {
        uint8_t *uv = uvp + size_t(y / 2) * kWidth + x;
        uv[0] = uint8_t(128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8));
        uv[1] = uint8_t(128 + ((112 * r - 94 * g - 18 * b + 128) >> 8));
      }
    }
  }
}

/* ---- statistics ------------------------------------------------------------------------- */

struct Stats {
  double mean = 0, median = 0, p95 = 0;
  size_t n = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v)
    sum += x;
  s.mean = sum / double(v.size());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = size_t(std::ceil(0.95 * double(v.size())));
  s.p95 = v[std::min(v.size() - 1, rank ? rank - 1 : 0)];
  return s;
}

/* ---- the raw HXFR client ---------------------------------------------------------------- */

struct Client {
  std::unique_ptr<hx::Connection> conn;
  hx::Parser parser{hx::kDefaultMaxPayload};
  std::string error;

  bool send(const std::vector<uint8_t> &b) {
    return conn->send_all(b.data(), b.size(), kTimeoutMs) == hx::Io::Ok;
  }
  bool read(hx::Message *m) {
    double deadline = now_ms() + kTimeoutMs;
    for (;;) {
      if (parser.ready()) {
        *m = parser.take();
        return true;
      }
      if (parser.failed()) {
        error = "parser: " + parser.error_detail();
        return false;
      }
      int left = int(deadline - now_ms());
      if (left <= 0) {
        error = "timeout waiting for a reply";
        return false;
      }
      hx::Parser::Space sp = parser.prepare();
      size_t got = 0;
      hx::Io io = conn->recv_some(sp.data, sp.size, &got, left);
      if (io != hx::Io::Ok) {
        error = std::string("recv: ") + hx::io_name(io);
        return false;
      }
      parser.commit(got);
    }
  }
};

/* Connects, HELLO (all capabilities), CONFIG_REQ; waits for HELLO_RESP and CONFIG_RESP. */
std::unique_ptr<Client> connect_client(const std::string &uri, std::string *error) {
  hx::Address a;
  if (!hx::parse_address(uri, false, &a, error))
    return nullptr;
  auto c = std::make_unique<Client>();
  c->conn = hx::connect_to(a, kTimeoutMs, -1, error);
  if (!c->conn)
    return nullptr;
  hx::Hello h;
  h.capabilities = hx::cap::kAllKnown;
  hx::Message m;
  if (!c->send(hx::encode(h, 0)) || !c->read(&m) ||
      m.header.type != hx::MsgType::kHelloResponse) {
    *error = "no HELLO_RESP " + c->error;
    return nullptr;
  }
  hx::HelloResponse hr;
  if (hx::decode(m.header, m.view(), &hr) != hx::Status::kOk ||
      !(hr.capabilities & hx::cap::kExtraFormats) || !(hr.capabilities & hx::cap::kPixelUpload)) {
    *error = "server lacks PIXEL_UPLOAD/EXTRA_FORMATS";
    return nullptr;
  }
  hx::ConfigRequest cr;
  cr.bitrate_bps = kBitrateBps;
  cr.fps_num = kFpsNum;
  cr.fps_den = kFpsDen;
  if (!c->send(hx::encode(cr, 1))) {
    *error = "cannot send CONFIG_REQ";
    return nullptr;
  }
  if (hr.capabilities & hx::cap::kConfigResponse) {
    if (!c->read(&m) || m.header.type != hx::MsgType::kConfigResponse) {
      *error = "no CONFIG_RESP " + c->error;
      return nullptr;
    }
  }
  return c;
}

struct RunResult {
  std::vector<double> rtt_ms; /* per frame: send start -> response received */
  double fps = 0;
  double au_bytes = 0; /* mean encoded size */
  bool ok = false;
  std::string error;
};

/* Sends frames first..first+count-1 (cycling over fmt.frames) with at most in_flight
 * outstanding; a sender thread writes, this thread reads the replies. */
RunResult run_remote(Client *c, const Format &fmt, int first, int count, int in_flight) {
  RunResult res;
  std::vector<double> t_send(count), t_recv(count);
  std::mutex lock;
  std::condition_variable cv;
  int outstanding = 0;
  bool stop = false;
  bool send_failed = false;

  std::thread sender([&] {
    for (int i = 0; i < count; i++) {
      {
        std::unique_lock<std::mutex> g(lock);
        cv.wait(g, [&] { return outstanding < in_flight || stop; });
        if (stop)
          return;
        outstanding++;
      }
      int n = first + i;
      const std::vector<uint8_t> &px = fmt.frames[size_t(n) % fmt.frames.size()];
      hx::FrameRequest fr;
      fr.width = kWidth;
      fr.height = kHeight;
      fr.format = fmt.fourcc;
      fr.stride = fmt.stride;
      fr.pts_ns = int64_t(n) * 1000000000LL * kFpsDen / kFpsNum;
      fr.duration_ns = 1000000000LL * kFpsDen / kFpsNum;
      fr.force_keyframe = n == 0;
      t_send[i] = now_ms();
      std::vector<uint8_t> prefix = hx::encode_frame_request_prefix(fr, 1, px.size());
      struct iovec iov[2] = {{prefix.data(), prefix.size()},
                             {const_cast<uint8_t *>(px.data()), px.size()}};
      if (c->conn->send_all(iov, 2, kTimeoutMs) != hx::Io::Ok) {
        std::lock_guard<std::mutex> g(lock);
        send_failed = true;
        return;
      }
    }
  });

  double au_total = 0;
  int got = 0;
  while (got < count) {
    hx::Message m;
    if (!c->read(&m)) {
      res.error = c->error;
      break;
    }
    if (m.header.type == hx::MsgType::kError) {
      hx::Error e;
      hx::decode(m.header, m.view(), &e);
      res.error = "ERROR " + std::to_string(e.code) + ": " + e.message;
      break;
    }
    if (m.header.type != hx::MsgType::kFrameResponse)
      continue;
    t_recv[got] = now_ms();
    hx::FrameResponse fr;
    if (hx::decode(m.header, m.view(), &fr) == hx::Status::kOk)
      for (const hx::ByteView &nal : fr.nals)
        au_total += double(nal.size);
    got++;
    {
      std::lock_guard<std::mutex> g(lock);
      outstanding--;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> g(lock);
    stop = true;
  }
  cv.notify_all();
  if (got < count)
    c->conn->shutdown(); /* unblock a sender stuck in send_all */
  sender.join();
  if (got < count) {
    if (res.error.empty())
      res.error = send_failed ? "send failed" : "short run";
    return res;
  }
  for (int i = 0; i < count; i++)
    res.rtt_ms.push_back(t_recv[i] - t_send[i]);
  res.fps = double(count) * 1000.0 / (t_recv[count - 1] - t_send[0]);
  res.au_bytes = au_total / count;
  res.ok = true;
  return res;
}

/* One frame, nothing else in flight: send, then read its FRAME_RESPONSE (the reply is read
 * only after the whole request is written, which is fine with one request outstanding: the
 * server reads all of it before it answers). */
bool remote_one(Client *c, const Format &fmt, int n, double *ms, double *bytes,
                std::string *error) {
  const std::vector<uint8_t> &px = fmt.frames[size_t(n) % fmt.frames.size()];
  hx::FrameRequest fr;
  fr.width = kWidth;
  fr.height = kHeight;
  fr.format = fmt.fourcc;
  fr.stride = fmt.stride;
  fr.pts_ns = int64_t(n) * 1000000000LL * kFpsDen / kFpsNum;
  fr.duration_ns = 1000000000LL * kFpsDen / kFpsNum;
  fr.force_keyframe = n == 0;
  double t0 = now_ms();
  std::vector<uint8_t> prefix = hx::encode_frame_request_prefix(fr, 1, px.size());
  struct iovec iov[2] = {{prefix.data(), prefix.size()},
                         {const_cast<uint8_t *>(px.data()), px.size()}};
  if (c->conn->send_all(iov, 2, kTimeoutMs) != hx::Io::Ok) {
    *error = "send failed";
    return false;
  }
  for (;;) {
    hx::Message m;
    if (!c->read(&m)) {
      *error = c->error;
      return false;
    }
    if (m.header.type == hx::MsgType::kError) {
      hx::Error e;
      hx::decode(m.header, m.view(), &e);
      *error = "ERROR " + std::to_string(e.code) + ": " + e.message;
      return false;
    }
    if (m.header.type != hx::MsgType::kFrameResponse)
      continue;
    *ms = now_ms() - t0;
    hx::FrameResponse r;
    *bytes = 0;
    if (hx::decode(m.header, m.view(), &r) == hx::Status::kOk)
      for (const hx::ByteView &nal : r.nals)
        *bytes += double(nal.size);
    return true;
  }
}

/* PING -> PONG round trips: the transport's latency with no payload and no encoding. */
Stats ping_rtt(Client *c, int count) {
  std::vector<double> v;
  for (int i = 0; i < count; i++) {
    double t0 = now_ms();
    hx::Message m;
    if (!c->send(hx::encode(hx::Ping{}, 1)))
      break;
    bool ok = false;
    while (c->read(&m))
      if (m.header.type == hx::MsgType::kPong) {
        ok = true;
        break;
      }
    if (!ok)
      break;
    v.push_back(now_ms() - t0);
  }
  return stats(v);
}

/* ---- the local baseline ----------------------------------------------------------------- */

struct Local {
  GstElement *pipeline = nullptr;
  GstElement *appsrc = nullptr;
  GstElement *appsink = nullptr;
  uint64_t count = 0;
  double duration_ns = 1e9 * kFpsDen / kFpsNum;

  ~Local() {
    if (pipeline) {
      gst_element_set_state(pipeline, GST_STATE_NULL);
      gst_object_unref(pipeline);
    }
    if (appsrc)
      gst_object_unref(appsrc);
    if (appsink)
      gst_object_unref(appsink);
  }

  /* helixframesrv's pipeline (frame-server-encoder.cpp), word for word. */
  bool build(const vmd::encode::EncoderChoice &choice, GstVideoFormat format, std::string *error) {
    std::string desc =
        "appsrc name=src format=time is-live=false block=false "
        "! videoconvert name=conv ! " +
        choice.description +
        " ! h264parse config-interval=-1 "
        "! video/x-h264,stream-format=byte-stream,alignment=au"
        " ! appsink name=sink sync=false async=false max-buffers=8 "
        "enable-last-sample=false";
    GError *err = nullptr;
    pipeline = gst_parse_launch_full(desc.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
    if (!pipeline) {
      *error = std::string("cannot build '") + desc + "': " + (err ? err->message : "?");
      g_clear_error(&err);
      return false;
    }
    appsrc = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    appsink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    GstVideoInfo info;
    gst_video_info_set_format(&info, format, kWidth, kHeight);
    GST_VIDEO_INFO_FPS_N(&info) = kFpsNum;
    GST_VIDEO_INFO_FPS_D(&info) = kFpsDen;
    GstCaps *caps = gst_video_info_to_caps(&info);
    gst_app_src_set_caps(GST_APP_SRC(appsrc), caps);
    gst_caps_unref(caps);
    GstElement *enc = vmd::encode::find_encoder_element(pipeline);
    if (!enc || !vmd::encode::set_encoder_bitrate(enc, kBitrateBps))
      fprintf(stderr, "hxfr-bench: local encoder: bitrate not set\n");
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      *error = "cannot start '" + desc + "'";
      return false;
    }
    return true;
  }

  bool push(const std::vector<uint8_t> &px) {
    GstBuffer *b = gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY,
                                               const_cast<uint8_t *>(px.data()), px.size(), 0,
                                               px.size(), nullptr, nullptr);
    GST_BUFFER_PTS(b) = GstClockTime(double(count) * duration_ns);
    GST_BUFFER_DURATION(b) = GstClockTime(duration_ns);
    count++;
    return gst_app_src_push_buffer(GST_APP_SRC(appsrc), b) == GST_FLOW_OK;
  }

  /* Bytes of the next access unit, or -1 on timeout. */
  double pull() {
    GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(appsink),
                                                GstClockTime(kTimeoutMs) * GST_MSECOND);
    if (!s)
      return -1;
    double bytes = double(gst_buffer_get_size(gst_sample_get_buffer(s)));
    gst_sample_unref(s);
    return bytes;
  }
};

/* Frames one at a time: push -> sample (the warm-up). */
RunResult run_local_sequential(Local *l, const Format &fmt, int first, int count) {
  RunResult res;
  double au_total = 0;
  for (int i = 0; i < count; i++) {
    const std::vector<uint8_t> &px = fmt.frames[size_t(first + i) % fmt.frames.size()];
    double t0 = now_ms();
    if (!l->push(px)) {
      res.error = "appsrc refused a frame";
      return res;
    }
    double bytes = l->pull();
    if (bytes < 0) {
      res.error = "no access unit (encoder with delay, or failed)";
      return res;
    }
    res.rtt_ms.push_back(now_ms() - t0);
    au_total += bytes;
  }
  res.au_bytes = au_total / count;
  res.ok = true;
  return res;
}

/* As fast as it goes: a thread pushes, this one pulls. */
RunResult run_local_throughput(Local *l, const Format &fmt, int first, int count) {
  RunResult res;
  bool push_ok = true;
  double t0 = now_ms();
  std::thread pusher([&] {
    for (int i = 0; i < count; i++)
      if (!l->push(fmt.frames[size_t(first + i) % fmt.frames.size()])) {
        push_ok = false;
        return;
      }
  });
  double au_total = 0;
  int got = 0;
  for (; got < count; got++) {
    double bytes = l->pull();
    if (bytes < 0)
      break;
    au_total += bytes;
  }
  double t1 = now_ms();
  pusher.join();
  if (got < count || !push_ok) {
    res.error = "local throughput run stopped early";
    return res;
  }
  res.fps = 1000.0 * count / (t1 - t0);
  res.au_bytes = au_total / count;
  res.ok = true;
  return res;
}

/* Sequential, paired: for each frame, the local pipeline encodes it (push -> sample), then
 * the server gets it over HXFR (send -> FRAME_RESPONSE). Alternating keeps the two sides under
 * the same load on a busy machine; each encoder still sees consecutive frames. */
bool run_paired(Client *c, Local *l, const Format &fmt, int first, int count, RunResult *remote,
                RunResult *local, std::vector<double> *diff, std::string *error) {
  double rb = 0, lb = 0;
  for (int i = 0; i < count; i++) {
    int n = first + i;
    double t0 = now_ms();
    if (!l->push(fmt.frames[size_t(n) % fmt.frames.size()])) {
      *error = "appsrc refused a frame";
      return false;
    }
    double bytes = l->pull();
    if (bytes < 0) {
      *error = "no local access unit";
      return false;
    }
    double lms = now_ms() - t0;
    lb += bytes;
    double rms = 0;
    if (!remote_one(c, fmt, n, &rms, &bytes, error))
      return false;
    rb += bytes;
    local->rtt_ms.push_back(lms);
    remote->rtt_ms.push_back(rms);
    diff->push_back(rms - lms);
  }
  remote->au_bytes = rb / count;
  local->au_bytes = lb / count;
  remote->ok = local->ok = true;
  return true;
}

/* ---- a server without an encoder ------------------------------------------------------ */

/* What the protocol and the transport cost on their own: the hxfr library on both ends, the
 * server side reading each FRAME_REQUEST as helixframesrv does (streaming parser, straight into
 * the payload) and answering at once with a FRAME_RESPONSE of au_bytes (the size the real
 * encoder produced). No encoder, so no subtraction and little sensitivity to load. */
Stats null_round_trip(const std::string &listen_uri, const Format &fmt, size_t au_bytes,
                      int count, std::string *error) {
  hx::Address la;
  if (!hx::parse_address(listen_uri, true, &la, error))
    return {};
  std::unique_ptr<hx::Listener> listener = hx::Listener::listen(la, error);
  if (!listener)
    return {};
  std::string connect_uri = listen_uri;
  if (la.kind == hx::TransportKind::Tcp)
    connect_uri = "tcp://127.0.0.1:" + std::to_string(listener->bound_tcp_port());
  std::vector<uint8_t> au(au_bytes ? au_bytes : 1, 0x55);
  std::thread server([&] {
    std::string err;
    std::unique_ptr<hx::Connection> conn = listener->accept(kTimeoutMs, -1, &err);
    if (!conn)
      return;
    hx::Parser parser(hx::kDefaultMaxPayload);
    for (;;) {
      hx::Parser::Space sp = parser.prepare();
      size_t got = 0;
      if (conn->recv_some(sp.data, sp.size, &got, kTimeoutMs) != hx::Io::Ok)
        return;
      parser.commit(got);
      if (parser.failed())
        return;
      if (!parser.ready())
        continue;
      hx::Message m = parser.take();
      hx::FrameRequest fr;
      if (m.header.type != hx::MsgType::kFrameRequest ||
          hx::decode(m.header, m.view(), &fr) != hx::Status::kOk)
        return;
      hx::FrameResponse r;
      r.pts_ns = r.dts_ns = fr.pts_ns;
      r.nals.push_back(hx::ByteView{au.data(), au.size()});
      std::vector<uint8_t> bytes = hx::encode(r, m.header.session_id);
      if (conn->send_all(bytes.data(), bytes.size(), kTimeoutMs) != hx::Io::Ok)
        return;
    }
  });
  std::vector<double> v;
  {
    hx::Address ca;
    Client c;
    if (hx::parse_address(connect_uri, false, &ca, error))
      c.conn = hx::connect_to(ca, kTimeoutMs, -1, error);
    for (int i = 0; c.conn && i < count; i++) {
      double ms = 0, bytes = 0;
      if (!remote_one(&c, fmt, i, &ms, &bytes, error))
        break;
      v.push_back(ms);
    }
  } /* closing the client ends the server thread */
  server.join();
  if (la.kind == hx::TransportKind::Unix)
    unlink(la.path.c_str());
  return stats(v);
}

/* ---- servers ---------------------------------------------------------------------------- */

struct Server {
  GstElement *pipeline = nullptr;
  std::string uri; /* for clients */
};

bool start_server(const std::string &address, const std::string &encoder, Server *s,
                  std::string *error) {
  GstElement *srv = gst_element_factory_make("helixframesrv", nullptr);
  if (!srv) {
    *error = "no helixframesrv element (GST_PLUGIN_PATH must include <build>/gst/helix, or "
             "pass --plugin-path)";
    return false;
  }
  g_object_set(srv, "address", address.c_str(), "encoder", encoder.c_str(), nullptr);
  s->pipeline = gst_pipeline_new(nullptr);
  gst_bin_add(GST_BIN(s->pipeline), srv);
  if (gst_element_set_state(s->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    *error = "helixframesrv address=" + address + " did not start";
    return false;
  }
  s->uri = address;
  if (g_str_has_prefix(address.c_str(), "tcp://")) {
    guint port = 0;
    g_object_get(srv, "bound-port", &port, nullptr);
    if (!port) {
      *error = "no bound-port";
      return false;
    }
    s->uri = "tcp://127.0.0.1:" + std::to_string(port);
  }
  return true;
}

void stop_server(Server *s) {
  if (s->pipeline) {
    gst_element_set_state(s->pipeline, GST_STATE_NULL);
    gst_object_unref(s->pipeline);
    s->pipeline = nullptr;
  }
}

bool has(const std::string &list, const char *item) {
  std::string l = "," + list + ",";
  return l.find(std::string(",") + item + ",") != std::string::npos;
}

void usage() {
  fprintf(stderr,
          "usage: hxfr-bench [--frames N] [--warmup N] [--distinct N] [--rounds N]\n"
          "                  [--encoder auto|FACTORY]\n"
          "                  [--plugin-path DIR] [--transports unix,tcp] [--formats nv12,bgrx]\n");
}

}  // namespace

int main(int argc, char **argv) {
  int frames = 60, warmup = 5, distinct = 60, rounds = 4;
  std::string encoder = "auto", transports = "unix,tcp", formats = "nv12,bgrx";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    bool more = i + 1 < argc;
    if (a == "--frames" && more)
      frames = atoi(argv[++i]);
    else if (a == "--warmup" && more)
      warmup = atoi(argv[++i]);
    else if (a == "--rounds" && more)
      rounds = atoi(argv[++i]);
    else if (a == "--distinct" && more)
      distinct = atoi(argv[++i]);
    else if (a == "--encoder" && more)
      encoder = argv[++i];
    else if (a == "--transports" && more)
      transports = argv[++i];
    else if (a == "--formats" && more)
      formats = argv[++i];
    else if (a == "--plugin-path" && more) {
      const char *old = g_getenv("GST_PLUGIN_PATH");
      std::string p = std::string(argv[++i]) + (old && *old ? std::string(":") + old : "");
      g_setenv("GST_PLUGIN_PATH", p.c_str(), TRUE);
    } else {
      usage();
      return 2;
    }
  }
  if (frames < 2 || warmup < 0 || distinct < 1 || rounds < 1) {
    usage();
    return 2;
  }
  gst_init(&argc, &argv);

  vmd::encode::EncoderChoice choice;
  std::string error;
  if (!vmd::encode::choose_encoder(encoder, &choice, &error)) {
    fprintf(stderr, "hxfr-bench: %s\n", error.c_str());
    return 1;
  }
  fprintf(stderr, "hxfr-bench: encoder '%s', %d frames per run after %d warm-up, %d distinct\n",
          choice.description.c_str(), frames, warmup, distinct);

  /* Frames first: nothing below times their making. */
  double tg = now_ms();
  Format nv12{"NV12", hx::format::kNV12, GST_VIDEO_FORMAT_NV12, kWidth,
              size_t(kWidth) * kHeight * 3 / 2, {}};
  Format bgrx{"BGRx", hx::format::kXR24, GST_VIDEO_FORMAT_BGRx, kWidth * 4,
              size_t(kWidth) * kHeight * 4, {}};
  std::vector<Format *> fmts;
  if (has(formats, "nv12"))
    fmts.push_back(&nv12);
  if (has(formats, "bgrx"))
    fmts.push_back(&bgrx);
  for (int i = 0; i < distinct; i++) {
    std::vector<uint8_t> b;
    make_bgrx(i, &b);
    if (has(formats, "nv12")) {
      std::vector<uint8_t> n;
      bgrx_to_nv12(b, &n);
      nv12.frames.push_back(std::move(n));
    }
    if (has(formats, "bgrx"))
      bgrx.frames.push_back(std::move(b));
  }
  fprintf(stderr, "hxfr-bench: frames generated in %.1f s\n", (now_ms() - tg) / 1000);

  std::string sock = "/tmp/hxfr-bench-" + std::to_string(getpid()) + ".sock";
  struct Transport {
    const char *name;
    std::string address;
    Server server;
  };
  std::vector<Transport> tps;
  if (has(transports, "unix"))
    tps.push_back({"UNIX", "unix://" + sock, {}});
  if (has(transports, "tcp"))
    tps.push_back({"TCP loopback", "tcp://127.0.0.1:0", {}});
  for (Transport &t : tps) {
    if (!start_server(t.address, encoder, &t.server, &error)) {
      fprintf(stderr, "hxfr-bench: %s\n", error.c_str());
      return 1;
    }
  }

  struct Row {
    std::string transport, format;
    RunResult seq, p2, p4, local_seq, local_tp;
    std::vector<double> diff; /* paired: remote - local, per frame */
    Stats ping;
    Stats null_rtt; /* the same uploads to a server without an encoder */
  };
  std::vector<Row> rows;
  int status = 0;
  for (Format *f : fmts) {
    /* The local pipeline for this format, warmed up. Its figures are taken below next to each
     * transport's (sequential: paired frame by frame; throughput: just before and just after
     * the pipelined runs), so both sides see the same load on a busy machine. */
    Local local;
    if (!local.build(choice, f->gst, &error)) {
      fprintf(stderr, "hxfr-bench: %s\n", error.c_str());
      return 1;
    }
    int next = 0;
    RunResult lw = run_local_sequential(&local, *f, next, std::max(warmup, 1));
    next += std::max(warmup, 1);
    if (!lw.ok) {
      fprintf(stderr, "hxfr-bench: local %s: %s\n", f->name, lw.error.c_str());
      return 1;
    }

    for (Transport &t : tps) {
      Row row;
      row.transport = t.name;
      row.format = f->name;
      std::unique_ptr<Client> c = connect_client(t.server.uri, &error);
      if (!c) {
        fprintf(stderr, "hxfr-bench: %s: %s\n", t.server.uri.c_str(), error.c_str());
        return 1;
      }
      row.ping = ping_rtt(c.get(), 200);
      /* The first frame builds the client's encoder on the server: warm up first. */
      RunResult w = run_remote(c.get(), *f, 0, std::max(warmup, 1), 1);
      if (!w.ok || !run_paired(c.get(), &local, *f, next, frames, &row.seq, &row.local_seq,
                               &row.diff, &error)) {
        fprintf(stderr, "hxfr-bench: %s %s: %s\n", t.name, f->name,
                w.ok ? error.c_str() : w.error.c_str());
        status = 1;
        break;
      }
      next += frames;
      /* Throughput, interleaved: `rounds` blocks each of local, 2 in flight and 4 in flight
       * (order rotated every round), so that load changes on a busy machine hit all three
       * alike. fps = frames / summed block times (each block: first send to last reply). */
      int block = std::max(2, frames / rounds);
      double t_local = 0, t_p2 = 0, t_p4 = 0, b_local = 0, b_p2 = 0, b_p4 = 0;
      int n_local = 0, n_p2 = 0, n_p4 = 0;
      std::string run_error;
      for (int round = 0; round < rounds && run_error.empty(); round++) {
        for (int k = 0; k < 3 && run_error.empty(); k++) {
          int which = (k + round) % 3;
          RunResult r = which == 0 ? run_local_throughput(&local, *f, next, block)
                                   : run_remote(c.get(), *f, next, block, which == 1 ? 2 : 4);
          next += block;
          if (!r.ok) {
            run_error = r.error;
            break;
          }
          double ms = 1000.0 * block / r.fps;
          (which == 0 ? t_local : which == 1 ? t_p2 : t_p4) += ms;
          (which == 0 ? b_local : which == 1 ? b_p2 : b_p4) += r.au_bytes * block;
          (which == 0 ? n_local : which == 1 ? n_p2 : n_p4) += block;
        }
      }
      if (!run_error.empty()) {
        fprintf(stderr, "hxfr-bench: %s %s: %s\n", t.name, f->name, run_error.c_str());
        status = 1;
        break;
      }
      row.local_tp.fps = 1000.0 * n_local / t_local;
      row.local_tp.au_bytes = b_local / n_local;
      row.p2.fps = 1000.0 * n_p2 / t_p2;
      row.p2.au_bytes = b_p2 / n_p2;
      row.p4.fps = 1000.0 * n_p4 / t_p4;
      row.p4.au_bytes = b_p4 / n_p4;
      std::string null_uri = t.address.rfind("unix://", 0) == 0
                                 ? "unix://" + sock + "-null"
                                 : std::string("tcp://127.0.0.1:0");
      row.null_rtt =
          null_round_trip(null_uri, *f, size_t(row.seq.au_bytes), frames, &error);
      if (!row.null_rtt.n)
        fprintf(stderr, "hxfr-bench: %s %s: no-encoder run failed: %s\n", t.name, f->name,
                error.c_str());
      Stats rs = stats(row.seq.rtt_ms), ls = stats(row.local_seq.rtt_ms);
      fprintf(stderr,
              "hxfr-bench: %s %s: %.2f ms round trip mean vs %.2f local, %.1f / %.1f fps (2 / "
              "4 in flight)\n",
              t.name, f->name, rs.mean, ls.mean, row.p2.fps, row.p4.fps);
      rows.push_back(std::move(row));
    }
    if (status)
      break;
  }
  for (Transport &t : tps)
    stop_server(&t.server);
  unlink(sock.c_str());

  printf("Encoder: `%s` at %u kbit/s, 30 fps caps; 1920x1080 moving content; %d frames per "
         "run after %d warm-up frames.\n\n",
         choice.description.c_str(), kBitrateBps / 1000, frames, warmup);
  printf("| transport | format | round trip ms mean / p95 | local encode ms mean / p95 | "
         "overhead ms mean / median | fps 2 in flight | fps 4 in flight | local fps | "
         "ratio 2 / 4 in flight vs local |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Row &r : rows) {
    Stats rs = stats(r.seq.rtt_ms), ls = stats(r.local_seq.rtt_ms), d = stats(r.diff);
    printf("| %s | %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.1f | %.1f | %.1f | "
           "%.2f / %.2f |\n",
           r.transport.c_str(), r.format.c_str(), rs.mean, rs.p95, ls.mean, ls.p95, d.mean,
           d.median, r.p2.fps, r.p4.fps, r.local_tp.fps, r.p2.fps / r.local_tp.fps,
           r.p4.fps / r.local_tp.fps);
  }
  printf("\nDetails: medians; the same uploads to a server with no encoder (hxfr library on both "
         "ends, answering each FRAME_REQUEST at once with a FRAME_RESPONSE of the mean encoded "
         "size): the protocol and transport cost measured directly; PING round trip (no "
         "payload); mean bytes per access unit (same settings give similar sizes):\n\n");
  printf("| transport | format | round trip ms median | local encode ms median | upload + reply "
         "without encoder ms mean / median / p95 | PING ms mean / p95 | AU bytes remote / local "
         "(sequential) | AU bytes remote 4 in flight / local throughput |\n"
         "|---|---|---|---|---|---|---|---|\n");
  for (const Row &r : rows) {
    Stats rs = stats(r.seq.rtt_ms), ls = stats(r.local_seq.rtt_ms);
    printf("| %s | %s | %.2f | %.2f | %.2f / %.2f / %.2f | %.3f / %.3f | %.0f / %.0f | %.0f / "
           "%.0f |\n",
           r.transport.c_str(), r.format.c_str(), rs.median, ls.median, r.null_rtt.mean,
           r.null_rtt.median, r.null_rtt.p95, r.ping.mean, r.ping.p95,
           r.seq.au_bytes, r.local_seq.au_bytes, r.p4.au_bytes, r.local_tp.au_bytes);
  }
  return status;
}
