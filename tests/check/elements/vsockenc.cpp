/* gst-vmdisplay: vsockenc against a scripted HXFR host.
 *
 * The host here is a few lines over the hxfr library (gst/helix): it accepts on a UNIX
 * socket, parses every message, records what it saw, and answers FRAME_REQUEST with a canned
 * access unit that carries the request's pts (so the test can check that each output buffer
 * was matched to its own request), or stays silent. helixframesrv is tested separately.
 * Also the parts of the resource-ID path that need no virtio-gpu: finding the render node in
 * a fake sysfs tree and refusing a device that is not virtio_gpu.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "doc-check.h"

#include "h264-au.h"
#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"
#include "remote-encoder.h"
#include "virtgpu-resource.h"

#include <gst/allocators/gstdmabuf.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hx = vmd::hxfr;

namespace {

constexpr GstClockTime kFrameDur = GST_SECOND / 30;
constexpr int kW = 64, kH = 48;

struct SeenFrame {
  int connection = 0; /* 1 for the first connection the server accepted */
  int64_t pts_ns = 0;
  bool force_keyframe = false;
  uint32_t format = 0, width = 0, height = 0, stride = 0, resource_id = 0;
  std::vector<uint8_t> pixels;
};

struct SeenConfig {
  int connection = 0;
  size_t frames_before = 0; /* frames the server had seen when it arrived */
  uint32_t bitrate_bps = 0;
  uint32_t width = 0, height = 0;
};

/* The scripted host's "access unit": an AUD NAL followed by the pts it answers, 14 bytes. */
constexpr size_t kCannedAuSize = 14;

std::vector<uint8_t> canned_au(int64_t pts) {
  std::vector<uint8_t> au = {0, 0, 0, 1, 0x09, 0xf0};
  for (int i = 0; i < 8; i++)
    au.push_back(uint8_t(uint64_t(pts) >> (8 * i)));
  return au;
}

/* The pts a canned access unit starting at au answers. */
int64_t canned_pts(const uint8_t *au) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= uint64_t(au[6 + i]) << (8 * i);
  return int64_t(v);
}

/* The scripted host. */
class ScriptedHost {
 public:
  struct Behaviour {
    bool answer_hello = true; /* false: act as a v1 host (HELLO skipped) */
    bool silent = false;      /* accept and read, never answer */
    int reply_delay_ms = 0;
    bool hello_error = false; /* answer HELLO with ERROR -1, like the earliest Helix host */
    int error_frame = -1;     /* answer this FRAME_REQUEST (0-based) with ERROR -5 */
    int skip_frame = -1;      /* never answer this FRAME_REQUEST (0-based) */
    int stale_before_frame = -1; /* before answering this one, send an answer with kStalePts */
    bool stale_before_hello = false; /* send an answer with kStalePts before HELLO_RESP */
    size_t padding = 0;       /* bytes added to each access unit */
    /* Non-zero: answer HELLO and each FRAME_REQUEST with something picked at random (seeded):
     * the right answer, or a wrong pts, an ERROR, no NAL or several, an odd HELLO_RESP, an
     * unknown type, silence, garbage, or a closed connection. */
    guint32 random_seed = 0;
    uint32_t hello_max_payload = hx::kDefaultMaxPayload; /* announced in HELLO_RESP */
    bool never_answer_frames = false; /* answer HELLO, read every request, answer none */
    bool hello_unauthorized = false;  /* answer HELLO with ERROR -7, like a host wanting a token */
  };
  /* A pts no test frame has: what a late answer to a request from an earlier connection
   * looks like. */
  static constexpr int64_t kStalePts = 777;

  /* path: a UNIX socket path, or a full address such as tcp://127.0.0.1:0. */
  ScriptedHost(const std::string &path, Behaviour b)
      : behaviour_(b), cancel_(eventfd(0, EFD_CLOEXEC)) {
    hx::Address a;
    std::string error;
    std::string uri = path.find("://") == std::string::npos ? "unix://" + path : path;
    fail_unless(hx::parse_address(uri, true, &a, &error), "%s", error.c_str());
    listener_ = hx::Listener::listen(a, &error);
    fail_unless(listener_ != nullptr, "listen: %s", error.c_str());
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedHost() {
    uint64_t one = 1;
    ssize_t r = write(cancel_.get(), &one, sizeof one);
    (void)r;
    thread_.join();
  }

  std::vector<SeenFrame> frames() {
    std::lock_guard<std::mutex> g(lock_);
    return frames_;
  }
  std::vector<SeenConfig> configs() {
    std::lock_guard<std::mutex> g(lock_);
    return configs_;
  }
  int connections() { return connections_; }
  uint16_t tcp_port() { return listener_->bound_tcp_port(); }
  int hellos() { return hellos_; }
  uint32_t hello_max_payload() { return hello_max_payload_; }
  std::string hello_token() {
    std::lock_guard<std::mutex> g(lock_);
    return hello_token_;
  }

 private:
  void run() {
    while (true) {
      std::string error;
      auto conn = listener_->accept(100, cancel_.get(), &error);
      if (!conn) {
        if (cancelled())
          return;
        continue;
      }
      int index = ++connections_;
      serve(*conn, index);
      if (cancelled())
        return;
    }
  }

  bool cancelled() {
    struct pollfd p = {cancel_.get(), POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

  void serve(hx::Connection &conn, int index) {
    hx::Parser parser;
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
      size_t got = 0;
      hx::Io io = conn.recv_some(buf.data(), buf.size(), &got, 100, cancel_.get());
      if (io == hx::Io::Timeout)
        continue;
      if (io != hx::Io::Ok)
        return;
      std::vector<hx::Message> msgs;
      if (parser.feed(buf.data(), got, &msgs) != hx::Status::kOk)
        return;
      for (auto &m : msgs) {
        if (behaviour_.random_seed ? !handle_randomly(conn, m) : (handle(conn, index, m), false))
          return; /* the random host hangs up */
      }
    }
  }

  /* Random answers (behaviour_.random_seed); false: close the connection now. */
  bool handle_randomly(hx::Connection &conn, const hx::Message &m) {
    if (!rand_)
      rand_.reset(g_rand_new_with_seed(behaviour_.random_seed));
    GRand *r = rand_.get();
    const int pick = g_rand_int_range(r, 0, 100);
    if (pick < 3)
      return false;
    if (pick < 6) { /* garbage: the client's parser must give up on this connection */
      std::vector<uint8_t> junk(size_t(g_rand_int_range(r, 1, 40)));
      for (auto &b : junk)
        b = uint8_t(g_rand_int(r));
      send(conn, junk);
      return true;
    }
    if (pick < 10)
      return true; /* silence */
    if (pick < 14) { /* an unknown type, which must be skipped */
      std::vector<uint8_t> unknown = hx::encode(hx::Pong{}, 0);
      unknown[4] = 0x77;
      send(conn, unknown);
    }
    if (m.header.type == hx::MsgType::kHello) {
      hx::Hello h;
      hx::decode(m.header, m.view(), &h);
      hx::HelloResponse resp = hx::negotiate(h, hx::cap::kAllKnown, hx::kDefaultMaxPayload);
      if (pick < 40) {
        resp.capabilities = g_rand_int(r);
        /* Big enough for the frames, or below an ERROR's size (refused); a limit in between
         * is a working host that cannot take these frames (test_host_max_payload_too_small). */
        resp.max_payload = g_rand_boolean(r) ? g_rand_int_range(r, 1 << 20, G_MAXINT32)
                                             : g_rand_int_range(r, 0, 260);
      }
      if (pick >= 40 && pick < 50) {
        hx::Error e;
        e.code = hx::error_code::kInvalidMsg;
        send(conn, hx::encode(e, 1));
        return true;
      }
      send(conn, hx::encode(resp, 0));
      return true;
    }
    if (m.header.type != hx::MsgType::kFrameRequest)
      return true;
    hx::FrameRequest f;
    hx::decode(m.header, m.view(), &f);
    {
      std::lock_guard<std::mutex> g(lock_);
      SeenFrame seen;
      seen.pts_ns = f.pts_ns;
      frames_.push_back(std::move(seen));
    }
    if (pick < 25) { /* an ERROR with any code */
      hx::Error e;
      e.code = int32_t(g_rand_int(r));
      e.message = "random";
      send(conn, hx::encode(e, 1));
    } else if (pick < 35) { /* another frame's answer (its AU says which pts it is for) */
      send_answer(conn, f.pts_ns + int64_t(g_rand_int_range(r, -3, 4)) * int64_t(kFrameDur),
                  g_rand_boolean(r));
    } else if (pick < 42) { /* no NAL at all, or three of them */
      hx::FrameResponse resp;
      resp.pts_ns = f.pts_ns;
      std::vector<uint8_t> au = canned_au(f.pts_ns);
      if (g_rand_boolean(r))
        for (int i = 0; i < 3; i++)
          resp.nals.push_back(hx::ByteView{au.data(), au.size()});
      send(conn, hx::encode(resp, 1));
    } else {
      send_answer(conn, f.pts_ns, f.force_keyframe);
    }
    return true;
  }

  void send(hx::Connection &conn, const std::vector<uint8_t> &bytes) {
    conn.send_all(bytes.data(), bytes.size(), 1000, cancel_.get());
  }

  /* A canned access unit (and the padding) answering pts. */
  void send_answer(hx::Connection &conn, int64_t pts, bool keyframe) {
    std::vector<uint8_t> au = canned_au(pts);
    au.resize(au.size() + behaviour_.padding, 0);
    hx::FrameResponse r;
    r.pts_ns = pts;
    r.dts_ns = pts;
    r.is_keyframe = keyframe;
    r.nals.push_back(hx::ByteView{au.data(), au.size()});
    send(conn, hx::encode(r, 1));
  }

  void handle(hx::Connection &conn, int index, const hx::Message &m) {
    switch (m.header.type) {
      case hx::MsgType::kHello: {
        hellos_++;
        hx::Hello h;
        fail_unless(hx::decode(m.header, m.view(), &h) == hx::Status::kOk);
        hello_max_payload_ = h.max_payload;
        {
          std::lock_guard<std::mutex> g(lock_);
          hello_token_ = h.token;
        }
        if (behaviour_.hello_unauthorized) {
          hx::Error e;
          e.code = hx::error_code::kUnauthorized;
          e.message = "wrong token";
          send(conn, hx::encode(e, 1));
          break;
        }
        if (behaviour_.stale_before_hello)
          send_answer(conn, kStalePts, false);
        if (behaviour_.hello_error) {
          hx::Error e;
          e.code = hx::error_code::kInvalidMsg;
          e.message = "unknown message type";
          send(conn, hx::encode(e, 1));
        } else if (behaviour_.answer_hello && !behaviour_.silent)
          send(conn, hx::encode(hx::negotiate(h, hx::cap::kAllKnown, behaviour_.hello_max_payload), 0));
        break;
      }
      case hx::MsgType::kConfigRequest: {
        hx::ConfigRequest c;
        fail_unless(hx::decode(m.header, m.view(), &c) == hx::Status::kOk);
        std::lock_guard<std::mutex> g(lock_);
        configs_.push_back({index, frames_.size(), c.bitrate_bps, c.width, c.height});
        break;
      }
      case hx::MsgType::kFrameRequest: {
        hx::FrameRequest f;
        fail_unless(hx::decode(m.header, m.view(), &f) == hx::Status::kOk);
        SeenFrame s;
        size_t seen_before;
        {
          std::lock_guard<std::mutex> g(lock_);
          seen_before = frames_.size();
        }
        s.connection = index;
        s.pts_ns = f.pts_ns;
        s.force_keyframe = f.force_keyframe;
        s.format = f.format;
        s.width = f.width;
        s.height = f.height;
        s.stride = f.stride;
        s.resource_id = f.resource_id;
        s.pixels.assign(f.pixels.data, f.pixels.data + f.pixels.size);
        {
          std::lock_guard<std::mutex> g(lock_);
          frames_.push_back(std::move(s));
        }
        if (behaviour_.silent || behaviour_.never_answer_frames ||
            int(seen_before) == behaviour_.skip_frame)
          break;
        if (int(seen_before) == behaviour_.stale_before_frame)
          send_answer(conn, kStalePts, false);
        if (int(seen_before) == behaviour_.error_frame) {
          hx::Error e;
          e.code = hx::error_code::kEncodeFailed;
          e.message = "scripted failure";
          send(conn, hx::encode(e, 1));
          break;
        }
        if (behaviour_.reply_delay_ms)
          std::this_thread::sleep_for(std::chrono::milliseconds(behaviour_.reply_delay_ms));
        send_answer(conn, f.pts_ns, f.force_keyframe);
        break;
      }
      default:
        break;
    }
  }

  Behaviour behaviour_;
  std::unique_ptr<GRand, decltype(&g_rand_free)> rand_{nullptr, g_rand_free};
  vmd::UniqueFd cancel_;
  std::unique_ptr<hx::Listener> listener_;
  std::thread thread_;
  std::mutex lock_;
  std::vector<SeenFrame> frames_;
  std::vector<SeenConfig> configs_;
  std::atomic<int> connections_{0};
  std::atomic<int> hellos_{0};
  std::atomic<uint32_t> hello_max_payload_{0};
  std::string hello_token_;
};

std::string make_socket_path() {
  gchar *dir = g_dir_make_tmp("vsockenc-XXXXXX", nullptr);
  fail_unless(dir != nullptr);
  std::string path = std::string(dir) + "/hxfr.sock";
  g_free(dir);
  return path;
}

void remove_socket_path(const std::string &path) {
  unlink(path.c_str());
  rmdir(path.substr(0, path.rfind('/')).c_str());
}

GstHarness *make_harness(const std::string &path, const std::string &extra,
                         const char *format = "BGRx") {
  std::string uri = path.find("://") == std::string::npos ? "unix://" + path : path;
  std::string desc = "vsockenc address=" + uri + " " + extra;
  GstHarness *h = gst_harness_new_parse(desc.c_str());
  fail_unless(h != nullptr);
  std::string caps = std::string("video/x-raw,format=") + format + ",width=" +
                     std::to_string(kW) + ",height=" + std::to_string(kH) + ",framerate=30/1";
  gst_harness_set_src_caps_str(h, caps.c_str());
  gst_harness_play(h);
  return h;
}

GstBuffer *make_frame(GstHarness *h, int i, GstVideoFormat fmt = GST_VIDEO_FORMAT_BGRx) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, fmt, kW, kH);
  GstBuffer *buf = gst_harness_create_buffer(h, info.size);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  memset(map.data, i & 0xff, map.size);
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = i * kFrameDur;
  GST_BUFFER_DURATION(buf) = kFrameDur;
  return buf;
}

/* Pulls one buffer, waiting up to timeout_ms; nullptr when none came. */
GstBuffer *pull_within(GstHarness *h, int timeout_ms) {
  gint64 end = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (true) {
    GstBuffer *b = gst_harness_try_pull(h);
    if (b || g_get_monotonic_time() > end)
      return b;
    g_usleep(2000);
  }
}

int64_t embedded_pts(GstBuffer *b) {
  GstMapInfo map;
  fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
  fail_unless_equals_int(map.size, kCannedAuSize);
  const int64_t pts = canned_pts(map.data);
  gst_buffer_unmap(b, &map);
  return pts;
}

/* Warnings posted on bus so far, as (message, debug) pairs. */
std::vector<std::pair<std::string, std::string>> bus_warnings(GstBus *bus) {
  std::vector<std::pair<std::string, std::string>> out;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *e = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning(m, &e, &dbg);
    out.emplace_back(e ? e->message : "", dbg ? dbg : "");
    g_clear_error(&e);
    g_free(dbg);
    gst_message_unref(m);
  }
  return out;
}

template <typename Pred>
bool wait_until(Pred pred, int timeout_ms) {
  gint64 end = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  while (!pred()) {
    if (g_get_monotonic_time() > end)
      return false;
    g_usleep(5000);
  }
  return true;
}

}  // namespace

/* Frames come out in order, each matched to its own answer, with the input pts; the pixels
 * and the layout on the wire are the input's; a v2 host gets BGRx as XR24. */
GST_START_TEST(test_frames_in_order) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {true, false, 5});
    GstHarness *h = make_harness(path, "max-in-flight=3 keyframe-interval=0");
    const int n = 12;
    for (int i = 0; i < n; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    for (int i = 0; i < n; i++) {
      GstBuffer *b = pull_within(h, 3000);
      fail_unless(b != nullptr, "frame %d missing", i);
      fail_unless_equals_uint64(GST_BUFFER_PTS(b), i * kFrameDur);
      fail_unless_equals_int64(embedded_pts(b), int64_t(i * kFrameDur));
      /* only the first frame was asked to be a keyframe */
      fail_unless_equals_int(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT), i != 0);
      gst_buffer_unref(b);
    }
    /* H.264 is YUV: RGB input is announced with the colorimetry the host converts to
     * (BT.601 at this size), not the input's sRGB. */
    GstCaps *out_caps = gst_pad_get_current_caps(h->sinkpad);
    fail_unless(out_caps != nullptr);
    const gchar *cm = gst_structure_get_string(gst_caps_get_structure(out_caps, 0), "colorimetry");
    fail_unless(cm && g_str_equal(cm, "bt601"), "output colorimetry %s", cm ? cm : "(none)");
    gst_caps_unref(out_caps);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), n);
    fail_unless_equals_int(host.hellos(), 1);
    for (int i = 0; i < n; i++) {
      fail_unless_equals_int(frames[i].format, hx::format::kXR24);
      fail_unless_equals_int(frames[i].width, kW);
      fail_unless_equals_int(frames[i].stride, kW * 4);
      fail_unless_equals_int(frames[i].resource_id, 0);
      fail_unless_equals_int(frames[i].pixels.size(), kW * 4 * kH);
      fail_unless_equals_int(frames[i].pixels[100], i);
      fail_unless_equals_int(frames[i].force_keyframe, i == 0);
    }
    /* latency: max-in-flight frames */
    GstQuery *q = gst_query_new_latency();
    fail_unless(gst_pad_peer_query(h->sinkpad, q));
    GstClockTime min_lat;
    gst_query_parse_latency(q, nullptr, &min_lat, nullptr);
    fail_unless_equals_uint64(min_lat, 3 * kFrameDur);
    gst_query_unref(q);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* handle_frame only submits: with max-in-flight=3 and a host that takes 500 ms per frame,
 * three pushes return before any answer; the fourth waits for a free slot. */
GST_START_TEST(test_pipelined) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {true, false, 500});
    GstHarness *h = make_harness(path, "max-in-flight=3");
    for (int i = 0; i < 3; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    GstBuffer *early = gst_harness_try_pull(h);
    fail_unless(early == nullptr, "a push waited for an answer");
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 3)), GST_FLOW_OK);
    GstBuffer *first = pull_within(h, 300); /* the slot frees just before it is pushed */
    GstClockTime first_pts = first ? GST_BUFFER_PTS(first) : GST_CLOCK_TIME_NONE;
    if (first)
      gst_buffer_unref(first);
    fail_unless(first_pts == 0, "the 4th push did not wait for the first answer");
    for (int i = 1; i < 4; i++) {
      GstBuffer *b = pull_within(h, 5000);
      fail_unless(b != nullptr);
      fail_unless_equals_uint64(GST_BUFFER_PTS(b), i * kFrameDur);
      gst_buffer_unref(b);
    }
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* The same over TCP (loopback). */
GST_START_TEST(test_tcp) {
  ScriptedHost host("tcp://127.0.0.1:0", {});
  std::string addr = "tcp://127.0.0.1:" + std::to_string(host.tcp_port());
  GstHarness *h = make_harness(addr, "");
  for (int i = 0; i < 5; i++)
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
  for (int i = 0; i < 5; i++) {
    GstBuffer *b = pull_within(h, 3000);
    fail_unless(b != nullptr, "frame %d missing", i);
    fail_unless_equals_int64(embedded_pts(b), int64_t(i * kFrameDur));
    gst_buffer_unref(b);
  }
  gst_harness_teardown(h);
}
GST_END_TEST;

/* A host that never answers HELLO is a v1 host: BGRx goes as AR24 and I420 as NV12. */
GST_START_TEST(test_v1_host_formats) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {false, false, 0});
    GstHarness *h = make_harness(path, "", "I420");
    GstVideoInfo info;
    gst_video_info_set_format(&info, GST_VIDEO_FORMAT_I420, kW, kH);
    GstBuffer *buf = gst_harness_create_buffer(h, info.size);
    GstMapInfo map;
    gst_buffer_map(buf, &map, GST_MAP_WRITE);
    memset(map.data, 0x10, info.offset[1]);
    memset(map.data + info.offset[1], 0x40, info.offset[2] - info.offset[1]);
    memset(map.data + info.offset[2], 0xc0, info.size - info.offset[2]);
    gst_buffer_unmap(buf, &map);
    GST_BUFFER_PTS(buf) = 0;
    gst_harness_push(h, buf);
    GstBuffer *b = pull_within(h, 3000);
    fail_unless(b != nullptr);
    gst_buffer_unref(b);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 1);
    const SeenFrame &f = frames[0];
    fail_unless_equals_int(f.format, hx::format::kNV12);
    fail_unless_equals_int(f.stride, kW);
    fail_unless_equals_int(f.pixels.size(), kW * kH * 3 / 2);
    fail_unless_equals_int(f.pixels[0], 0x10);
    fail_unless_equals_int(f.pixels[kW * kH], 0x40);     /* U */
    fail_unless_equals_int(f.pixels[kW * kH + 1], 0xc0); /* V */
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host answering HELLO with ERROR is a v1 host; an ERROR for a frame drops that frame
 * only (same connection), and the next frame asks for a keyframe. */
GST_START_TEST(test_host_errors) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.hello_error = true;
    b.error_frame = 2;
    ScriptedHost host(path, b);
    /* one in flight, so frame 3 is sent after the ERROR for frame 2 arrived */
    GstHarness *h = make_harness(path, "keyframe-interval=0 max-in-flight=1");
    for (int i = 0; i < 5; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    const int expected_out[] = {0, 1, 3, 4};
    for (int i : expected_out) {
      GstBuffer *b = pull_within(h, 3000);
      fail_unless(b != nullptr, "frame %d missing", i);
      fail_unless_equals_uint64(GST_BUFFER_PTS(b), i * kFrameDur);
      gst_buffer_unref(b);
    }
    fail_unless(pull_within(h, 100) == nullptr);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 5);
    fail_unless_equals_int(host.connections(), 1);
    fail_unless_equals_int(frames[0].format, hx::format::kAR24); /* v1: BGRx as AR24 */
    const bool forced[] = {true, false, false, true, false};
    for (int i = 0; i < 5; i++)
      fail_unless_equals_int(frames[i].force_keyframe, forced[i]);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* An answer whose pts matches no frame in flight (a late answer to a request given up on an
 * earlier connection, which a virtio-serial port can still deliver) is discarded, not taken
 * for the oldest frame's: every frame gets its own access unit and nothing is dropped. */
GST_START_TEST(test_stale_answer_discarded) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.stale_before_frame = 1;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "max-in-flight=2 keyframe-interval=0");
    const int n = 5;
    for (int i = 0; i < n; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    for (int i = 0; i < n; i++) {
      GstBuffer *out = pull_within(h, 3000);
      fail_unless(out != nullptr, "frame %d missing", i);
      fail_unless_equals_uint64(GST_BUFFER_PTS(out), i * kFrameDur);
      fail_unless_equals_int64(embedded_pts(out), int64_t(i * kFrameDur));
      gst_buffer_unref(out);
    }
    fail_unless(pull_within(h, 100) == nullptr);
    fail_unless_equals_int(host.connections(), 1);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host that skips a request and answers the next one: the skipped frame is reported
 * dropped at once (not after timeout-ms, and without taking the next frame's answer), the
 * others keep their own access units, and the next frame sent asks for a keyframe. */
GST_START_TEST(test_skipped_answer_detected) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.skip_frame = 1;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "max-in-flight=2 keyframe-interval=0 timeout-ms=20000");
    const int n = 6;
    for (int i = 0; i < n; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    for (int i : {0, 2, 3, 4, 5}) {
      GstBuffer *out = pull_within(h, 3000);
      fail_unless(out != nullptr, "frame %d missing", i);
      fail_unless_equals_uint64(GST_BUFFER_PTS(out), i * kFrameDur);
      fail_unless_equals_int64(embedded_pts(out), int64_t(i * kFrameDur));
      gst_buffer_unref(out);
    }
    fail_unless(pull_within(h, 100) == nullptr);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), n);
    fail_unless_equals_int(host.connections(), 1);
    /* frame 3 is the first one sent after frame 2's answer showed frame 1 lost */
    const bool forced[] = {true, false, false, true, false, false};
    for (int i = 0; i < n; i++)
      fail_unless_equals_int(frames[i].force_keyframe, forced[i]);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A stale answer queued before HELLO_RESP (a character device keeps its byte stream) is
 * skipped: the host is still recognised as version 2 (BGRx goes as XR24, not AR24). */
GST_START_TEST(test_stale_answer_before_hello) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.stale_before_hello = true;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "");
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 0)), GST_FLOW_OK);
    GstBuffer *out = pull_within(h, 3000);
    fail_unless(out != nullptr);
    fail_unless_equals_int64(embedded_pts(out), 0);
    gst_buffer_unref(out);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 1);
    fail_unless_equals_int(frames[0].format, hx::format::kXR24);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* The client's max_payload is announced in HELLO and enforced on what the host sends: an
 * answer within it is taken, a larger one ends the connection (its frame dropped). */
GST_START_TEST(test_max_payload_enforced) {
  std::string path = make_socket_path();
  for (size_t padding : {size_t(1000), size_t(8000)}) {
    ScriptedHost::Behaviour b;
    b.padding = padding;
    ScriptedHost host(path, b);
    vmd::RemoteEncoderConfig config;
    std::string error;
    fail_unless(hx::parse_address("unix://" + path, false, &config.address, &error));
    config.max_payload = 4096;
    std::mutex lock;
    std::vector<vmd::EncodeResult> results;
    {
      vmd::RemoteEncoder remote(
          config,
          [&](vmd::EncodeResult &&r) {
            std::lock_guard<std::mutex> g(lock);
            results.push_back(std::move(r));
          },
          [](bool, const std::string &) {});
      vmd::PeerInfo peer;
      fail_unless(remote.ensure_connected(&peer, &error), "%s", error.c_str());
      fail_unless_equals_int(peer.version, 2);
      fail_unless_equals_int(host.hello_max_payload(), 4096);
      hx::FrameRequest m;
      m.resource_id = 9;
      m.width = kW;
      m.height = kH;
      m.format = hx::format::kXR24;
      m.stride = kW * 4;
      m.pts_ns = 1234;
      remote.submit(1, m, nullptr, 0, 0);
      fail_unless(wait_until(
          [&] {
            std::lock_guard<std::mutex> g(lock);
            return !results.empty();
          },
          3000));
      remote.stop();
    }
    fail_unless_equals_int(results.size(), 1);
    if (padding < 4096) {
      fail_unless(!results[0].dropped, "%s", results[0].reason.c_str());
      fail_unless_equals_int(results[0].data.size(), 14 + padding);
    } else {
      fail_unless(results[0].dropped);
      fail_unless(results[0].reason.find("malformed") != std::string::npos, "%s",
                  results[0].reason.c_str());
    }
    unlink(path.c_str());
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A force-key-unit event and keyframe-interval both set force_keyframe on the wire. */
GST_START_TEST(test_force_keyframe) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {});
    GstHarness *h = make_harness(path, "keyframe-interval=4");
    for (int i = 0; i < 10; i++) {
      if (i == 2) {
        fail_unless(gst_harness_push_upstream_event(
            h, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1)));
      }
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    }
    for (int i = 0; i < 10; i++) {
      GstBuffer *b = pull_within(h, 3000);
      fail_unless(b != nullptr);
      gst_buffer_unref(b);
    }
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 10);
    /* 0: first; 2: the event (restarts the interval); 6: interval of 4 */
    const bool expected[10] = {true, false, true, false, false, false, true, false, false, false};
    for (int i = 0; i < 10; i++)
      fail_unless_equals_int(frames[i].force_keyframe, expected[i]);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* bitrate goes out as CONFIG_REQ on connect and again before the next frame when it changes. */
GST_START_TEST(test_bitrate_config) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {});
    GstHarness *h = make_harness(path, "bitrate=3000");
    for (int i = 0; i < 3; i++)
      gst_harness_push(h, make_frame(h, i));
    GstElement *enc = gst_harness_find_element(h, "vsockenc");
    g_object_set(enc, "bitrate", 1500u, nullptr);
    gst_object_unref(enc);
    for (int i = 3; i < 5; i++)
      gst_harness_push(h, make_frame(h, i));
    for (int i = 0; i < 5; i++) {
      GstBuffer *b = pull_within(h, 3000);
      fail_unless(b != nullptr);
      gst_buffer_unref(b);
    }
    auto configs = host.configs();
    fail_unless_equals_int(configs.size(), 2);
    fail_unless_equals_int(configs[0].bitrate_bps, 3000000);
    fail_unless_equals_int(configs[0].frames_before, 0);
    fail_unless_equals_int(configs[0].width, kW);
    fail_unless_equals_int(configs[0].height, kH);
    fail_unless_equals_int(configs[1].bitrate_bps, 1500000);
    fail_unless_equals_int(configs[1].frames_before, 3);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host that accepts and never answers: frames are dropped within timeout-ms, nothing hangs,
 * vsockenc reconnects and the first frame on the new connection asks for a keyframe. */
GST_START_TEST(test_silent_host_recovers) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {false, true, 0});
    GstHarness *h = make_harness(path, "timeout-ms=300 max-in-flight=2 keyframe-interval=0");
    gint64 start = g_get_monotonic_time();
    for (int i = 0; i < 3; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    /* the third push waited for a slot: 300 ms HELLO wait + 300 ms reply timeout at most */
    gint64 took_ms = (g_get_monotonic_time() - start) / 1000;
    fail_unless(took_ms < 1500, "pushing 3 frames took %" G_GINT64_FORMAT " ms", took_ms);
    /* keep feeding until a frame went out on a second connection */
    bool reconnected = false;
    for (int i = 3; i < 60 && !reconnected; i++) {
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
      for (auto &f : host.frames())
        reconnected = reconnected || f.connection >= 2;
      g_usleep(20000);
    }
    fail_unless(reconnected, "no reconnection");
    auto frames = host.frames();
    bool checked = false;
    for (size_t i = 0; i < frames.size(); i++) {
      if (frames[i].connection == 2) {
        fail_unless(frames[i].force_keyframe, "first frame after reconnect is not forced");
        checked = true;
        break;
      }
    }
    fail_unless(checked);
    fail_unless(gst_harness_try_pull(h) == nullptr, "a silent host produced output");
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host that answers HELLO, reads every request and never answers: no push and no EOS drain
 * holds upstream longer than timeout-ms (plus 50 ms of slack), whatever timeout-ms is. */
GST_START_TEST(test_silent_host_bounded_by_timeout) {
  for (int timeout_ms : {10, 50, 200, 500}) {
    std::string path = make_socket_path();
    {
      ScriptedHost::Behaviour b;
      b.never_answer_frames = true;
      ScriptedHost host(path, b);
      std::string extra = "timeout-ms=" + std::to_string(timeout_ms) +
                          " max-in-flight=2 keyframe-interval=0";
      GstHarness *h = make_harness(path, extra);
      /* Three connections, each with two frames in flight and a third waiting for a slot,
       * then (after the reconnect backoff) one frame in flight at EOS. */
      gint64 worst_push_ms = 0;
      int n = 0;
      for (int round = 0; round < 4; round++) {
        for (int i = 0; i < (round < 3 ? 3 : 1); i++, n++) {
          gint64 start = g_get_monotonic_time();
          fail_unless_equals_int(gst_harness_push(h, make_frame(h, n)), GST_FLOW_OK);
          worst_push_ms = std::max(worst_push_ms, (g_get_monotonic_time() - start) / 1000);
        }
        if (round < 3)
          g_usleep(150000); /* past the first reconnect backoff (100 ms) */
      }
      gint64 start = g_get_monotonic_time();
      fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
      gint64 drain_ms = (g_get_monotonic_time() - start) / 1000;
      g_printerr("silent host, timeout-ms=%d: longest push %" G_GINT64_FORMAT
                 " ms, EOS drain %" G_GINT64_FORMAT " ms, %zu frames sent\n",
                 timeout_ms, worst_push_ms, drain_ms, host.frames().size());
      fail_unless(!host.frames().empty(), "no frame reached the host");
      fail_unless(worst_push_ms <= timeout_ms + 50,
                  "timeout-ms=%d, but a push held upstream %" G_GINT64_FORMAT " ms",
                  timeout_ms, worst_push_ms);
      fail_unless(drain_ms <= timeout_ms + 50,
                  "timeout-ms=%d, but the EOS drain held upstream %" G_GINT64_FORMAT " ms",
                  timeout_ms, drain_ms);
      gst_harness_teardown(h);
    }
    remove_socket_path(path);
  }
}
GST_END_TEST;

/* A host whose HELLO_RESP allows fewer bytes than a frame needs: the frames are dropped
 * (never sent), with one warning on the bus that says why and what to do; one that allows
 * less than an ERROR is not used at all (the connection fails, as helixframesrv refuses such
 * a HELLO). */
GST_START_TEST(test_host_max_payload_too_small) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.hello_max_payload = 4096; /* a 64x48 BGRx frame is 12288 bytes */
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "timeout-ms=300 keyframe-interval=0");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    for (int i = 0; i < 5; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    fail_unless(gst_harness_try_pull(h) == nullptr);
    fail_unless_equals_int(int(host.frames().size()), 0);
    auto warnings = bus_warnings(bus);
    fail_unless_equals_int(int(warnings.size()), 1);
    const std::string &dbg = warnings[0].second;
    fail_unless(dbg.find("12332 bytes") != std::string::npos &&
                    dbg.find("at most 4096") != std::string::npos,
                "%s", dbg.c_str());
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  {
    ScriptedHost::Behaviour b;
    b.hello_max_payload = 100;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "timeout-ms=300 keyframe-interval=0");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    for (int i = 0; i < 3; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    fail_unless_equals_int(int(host.frames().size()), 0);
    auto warnings = bus_warnings(bus);
    fail_unless(std::any_of(warnings.begin(), warnings.end(),
                            [](const auto &w) {
                              return w.first.find("max_payload of 100 bytes") != std::string::npos;
                            }),
                "no warning naming the host's max_payload of 100");
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host that answers at random (seeded; VMD_SEED=N replays another): right answers mixed
 * with wrong pts, ERRORs of any code, empty and multi-NAL answers, odd HELLO_RESPs, unknown
 * types, silence, garbage and hang-ups. vsockenc must neither crash nor hang, must never give
 * a frame another frame's data (each canned access unit carries the pts it answers), and
 * must keep output in order. */
GST_START_TEST(test_random_host) {
  guint32 seed = 20261121;
  if (const char *env = g_getenv("VMD_SEED"))
    seed = guint32(g_ascii_strtoull(env, nullptr, 10));
  g_print("random host: seed %u (VMD_SEED=%u to replay)\n", seed, seed);
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.random_seed = seed;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "timeout-ms=200 max-in-flight=3 keyframe-interval=0");
    const int n = 120;
    int out = 0;
    GstClockTime last_pts = 0;
    const gint64 start = g_get_monotonic_time();
    auto take = [&](GstBuffer *buf) {
      /* One canned access unit, or several of the same answer (a multi-NAL answer). */
      GstMapInfo map;
      fail_unless(gst_buffer_map(buf, &map, GST_MAP_READ));
      fail_unless(map.size >= kCannedAuSize && map.size % kCannedAuSize == 0,
                  "output of %zu bytes", map.size);
      for (size_t at = 0; at < map.size; at += kCannedAuSize)
        fail_unless_equals_int64(canned_pts(map.data + at), int64_t(GST_BUFFER_PTS(buf)));
      gst_buffer_unmap(buf, &map);
      fail_unless(out == 0 || GST_BUFFER_PTS(buf) > last_pts, "output out of order");
      last_pts = GST_BUFFER_PTS(buf);
      out++;
      gst_buffer_unref(buf);
    };
    for (int i = 0; i < n; i++) {
      GstFlowReturn flow = gst_harness_push(h, make_frame(h, i));
      fail_unless(flow == GST_FLOW_OK, "frame %d: %s", i, gst_flow_get_name(flow));
      while (GstBuffer *buf = gst_harness_try_pull(h))
        take(buf);
      g_usleep(25000); /* 3 s in all: longer than the longest reconnect backoff (2 s) */
    }
    fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
    while (GstBuffer *buf = gst_harness_try_pull(h))
      take(buf);
    const double secs = (g_get_monotonic_time() - start) / 1e6;
    g_print("random host: %d of %d frames out, %d connections, %.1f s\n", out, n,
            host.connections(), secs);
    /* It keeps trying: frames came out, or it reconnected after the host failed it. */
    fail_unless(out > 0 || host.connections() > 1, "no output and no reconnection");
    fail_unless(secs < 30, "%.1f s for %d frames: something waited unbounded", secs, n);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* The host goes away mid-stream and comes back on the same path: vsockenc reconnects, the
 * stream goes on with a keyframe, frames come out in order. */
GST_START_TEST(test_host_restart) {
  std::string path = make_socket_path();
  auto host = std::make_unique<ScriptedHost>(path, ScriptedHost::Behaviour{});
  GstHarness *h = make_harness(path, "timeout-ms=500 keyframe-interval=0");
  for (int i = 0; i < 3; i++)
    gst_harness_push(h, make_frame(h, i));
  for (int i = 0; i < 3; i++) {
    GstBuffer *b = pull_within(h, 3000);
    fail_unless(b != nullptr);
    gst_buffer_unref(b);
  }
  host.reset(); /* closes the connection; the socket file stays behind, stale */
  host = std::make_unique<ScriptedHost>(path, ScriptedHost::Behaviour{});
  GstClockTime last = 2 * kFrameDur;
  bool got_key = false;
  for (int i = 3; i < 100 && !got_key; i++) {
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    while (GstBuffer *b = pull_within(h, 50)) {
      fail_unless(GST_BUFFER_PTS(b) > last, "out of order");
      last = GST_BUFFER_PTS(b);
      got_key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
      gst_buffer_unref(b);
    }
  }
  fail_unless(got_key, "no keyframe from the restarted host");
  fail_unless(host->frames().front().force_keyframe);
  gst_harness_teardown(h);
  host.reset();
  remove_socket_path(path);
}
GST_END_TEST;

/* EOS waits for every frame in flight. */
GST_START_TEST(test_eos_drains) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {true, false, 40});
    GstHarness *h = make_harness(path, "max-in-flight=4");
    for (int i = 0; i < 6; i++)
      gst_harness_push(h, make_frame(h, i));
    fail_unless(gst_harness_push_event(h, gst_event_new_eos()));
    for (int i = 0; i < 6; i++) {
      GstBuffer *b = gst_harness_try_pull(h);
      fail_unless(b != nullptr, "frame %d not out after EOS", i);
      fail_unless_equals_uint64(GST_BUFFER_PTS(b), i * kFrameDur);
      gst_buffer_unref(b);
    }
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* FLUSH_START wakes a push waiting for a free slot at once (not after timeout-ms), and the
 * stream goes on after FLUSH_STOP on a new connection, starting with a keyframe. */
GST_START_TEST(test_flush_wakes_waiter) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {true, true, 0});
    GstHarness *h = make_harness(path, "timeout-ms=20000 max-in-flight=1");
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 0)), GST_FLOW_OK);
    std::atomic<int> flow{-1000};
    std::thread pusher([&] { flow = gst_harness_push(h, make_frame(h, 1)); });
    g_usleep(200000);
    fail_unless_equals_int(flow.load(), -1000); /* still waiting for the slot */
    gint64 start = g_get_monotonic_time();
    fail_unless(gst_harness_push_event(h, gst_event_new_flush_start()));
    pusher.join();
    fail_unless((g_get_monotonic_time() - start) / 1000 < 2000);
    fail_unless_equals_int(flow.load(), GST_FLOW_FLUSHING);
    fail_unless(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    gst_harness_push_event(h, gst_event_new_segment([] {
      static GstSegment seg;
      gst_segment_init(&seg, GST_FORMAT_TIME);
      return &seg;
    }()));
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 2)), GST_FLOW_OK);
    fail_unless(wait_until([&] { return host.connections() >= 2 && host.frames().size() >= 2; },
                           3000));
    auto frames = host.frames();
    fail_unless_equals_int(frames.back().connection, 2);
    fail_unless(frames.back().force_keyframe);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A BGRx frame in one DMA-BUF memory (a memfd stands in for the GPU buffer: mappable, but
 * not from any DRM device), optionally with a resource ID already cached on it the way
 * vsockenc caches what the ioctls found. */
static GstBuffer *make_dmabuf_frame(int i, guint cached_resource_id) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_BGRx, kW, kH);
  int fd = memfd_create("vsockenc-test", MFD_CLOEXEC);
  fail_unless(fd >= 0);
  fail_unless(ftruncate(fd, off_t(info.size)) == 0);
  void *p = mmap(nullptr, info.size, PROT_WRITE, MAP_SHARED, fd, 0);
  fail_unless(p != MAP_FAILED);
  memset(p, i & 0xff, info.size);
  munmap(p, info.size);
  GstAllocator *alloc = gst_dmabuf_allocator_new();
  GstMemory *mem = gst_dmabuf_allocator_alloc(alloc, fd, info.size);
  gst_object_unref(alloc);
  if (cached_resource_id)
    gst_mini_object_set_qdata(GST_MINI_OBJECT(mem),
                              g_quark_from_static_string("gst-vmdisplay-virtgpu-resource-id"),
                              GUINT_TO_POINTER(cached_resource_id), nullptr);
  GstBuffer *buf = gst_buffer_new();
  gst_buffer_append_memory(buf, mem);
  GST_BUFFER_PTS(buf) = i * kFrameDur;
  GST_BUFFER_DURATION(buf) = kFrameDur;
  return buf;
}

/* mode=auto with DMA-BUF frames and a host granting RESOURCE_ID: a frame whose resource ID is
 * known goes as the ID alone (no pixels); one without (no virtio-gpu node here) falls back to
 * uploading its pixels. A v1 host always gets pixels. */
GST_START_TEST(test_resource_id_auto) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {});
    GstHarness *h = make_harness(path, "drm-device=/nonexistent/renderD128");
    gst_harness_set_src_caps_str(
        h, "video/x-raw(memory:DMABuf),format=BGRx,width=64,height=48,framerate=30/1");
    fail_unless_equals_int(gst_harness_push(h, make_dmabuf_frame(0, 42)), GST_FLOW_OK);
    fail_unless_equals_int(gst_harness_push(h, make_dmabuf_frame(1, 0)), GST_FLOW_OK);
    for (int i = 0; i < 2; i++) {
      GstBuffer *b = pull_within(h, 3000);
      fail_unless(b != nullptr);
      gst_buffer_unref(b);
    }
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 2);
    fail_unless_equals_int(frames[0].resource_id, 42);
    fail_unless_equals_int(frames[0].pixels.size(), 0);
    fail_unless_equals_int(frames[0].format, hx::format::kXR24);
    fail_unless_equals_int(frames[0].width, kW);
    fail_unless_equals_int(frames[1].resource_id, 0);
    fail_unless_equals_int(frames[1].pixels.size(), kW * kH * 4);
    fail_unless_equals_int(frames[1].pixels[0], 1);
    gst_harness_teardown(h);
  }
  {
    ScriptedHost host(path, {false, false, 0}); /* v1 */
    GstHarness *h = make_harness(path, "");
    fail_unless_equals_int(gst_harness_push(h, make_dmabuf_frame(0, 42)), GST_FLOW_OK);
    GstBuffer *b = pull_within(h, 3000);
    fail_unless(b != nullptr);
    gst_buffer_unref(b);
    auto frames = host.frames();
    fail_unless_equals_int(frames.size(), 1);
    fail_unless_equals_int(frames[0].resource_id, 0);
    fail_unless_equals_int(frames[0].pixels.size(), kW * kH * 4);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* No host at all: frames are dropped, pushes return at once, a warning is posted. */
GST_START_TEST(test_no_host) {
  std::string path = make_socket_path();
  GstHarness *h = make_harness(path, "timeout-ms=200");
  gint64 start = g_get_monotonic_time();
  for (int i = 0; i < 10; i++)
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
  fail_unless((g_get_monotonic_time() - start) / 1000 < 2000);
  fail_unless(gst_harness_try_pull(h) == nullptr);
  gst_harness_teardown(h);
  remove_socket_path(path);
}
GST_END_TEST;

/* A UNIX listener whose tiny queue is full (it never accepts): the warning says that the
 * connect to that address failed and why (the errno text), not that sending HELLO did. */
GST_START_TEST(test_listen_queue_full) {
  std::string path = make_socket_path();
  vmd::UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  g_strlcpy(sun.sun_path, path.c_str(), sizeof sun.sun_path);
  fail_unless(bind(listener.get(), reinterpret_cast<sockaddr *>(&sun), sizeof sun) == 0);
  fail_unless(listen(listener.get(), 0) == 0);
  std::vector<vmd::UniqueFd> fillers;
  for (int i = 0; i < 16; i++) {
    vmd::UniqueFd c(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    const bool full = connect(c.get(), reinterpret_cast<sockaddr *>(&sun), sizeof sun) != 0 &&
                      errno == EAGAIN;
    if (full)
      break;
    fillers.push_back(std::move(c));
  }
  GstHarness *h = make_harness(path, "timeout-ms=200");
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  for (int i = 0; i < 3; i++)
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
  auto warnings = bus_warnings(bus);
  fail_unless(!warnings.empty(), "no warning");
  const std::string &text = warnings[0].first;
  fail_unless(text.find("cannot connect to unix://" + path) != std::string::npos, "%s",
              text.c_str());
  fail_unless(text.find(g_strerror(EAGAIN)) != std::string::npos ||
                  text.find(g_strerror(ENOTCONN)) != std::string::npos,
              "%s", text.c_str());
  fail_unless(text.find("HELLO") == std::string::npos, "%s", text.c_str());
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
  remove_socket_path(path);
}
GST_END_TEST;

/* The slice-type scan over an access unit in pieces (the NALs as received, never
 * concatenated) agrees with the scan of the same bytes in one buffer, wherever the pieces are
 * cut, start codes split across two pieces included. */
GST_START_TEST(test_slice_type_of_pieces) {
  const std::vector<std::vector<uint8_t>> units = {
      {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88},
      {0, 0, 1, 0x41, 0x9a},
      {0, 0, 1, 0x06, 0, 0, 0, 1, 0x21},
      {0, 0, 0, 0, 1, 0, 0, 1, 0x25},
      {0, 0, 1, 0x09, 0x10},
      {0, 0, 1},
      {1, 2, 3},
  };
  for (const auto &u : units) {
    const int whole = vmd::h264_first_slice_type(u.data(), u.size());
    for (size_t cut1 = 0; cut1 <= u.size(); cut1++) {
      for (size_t cut2 = cut1; cut2 <= u.size(); cut2++) {
        std::vector<hx::ByteView> pieces = {{u.data(), cut1},
                                            {u.data() + cut1, cut2 - cut1},
                                            {u.data() + cut2, u.size() - cut2}};
        fail_unless_equals_int(vmd::h264_first_slice_type_of_pieces(pieces), whole);
      }
    }
  }
}
GST_END_TEST;

/* The token property goes into HELLO byte for byte, and frames flow as without one. */
GST_START_TEST(test_token_sent) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {});
    const std::string token = "s3cr\xc3\xa9t, with spaces & more";
    GstHarness *h = make_harness(path, "token=\"" + token + "\"");
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 0)), GST_FLOW_OK);
    GstBuffer *b = pull_within(h, 3000);
    fail_unless(b != nullptr, "no output with a token set");
    gst_buffer_unref(b);
    fail_unless(host.hello_token() == token, "HELLO carried '%s'", host.hello_token().c_str());
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A host that answers HELLO with ERROR -7: one warning that says the token was refused and
 * what to do, no frame sent, and reconnection attempts as after any failed connection. */
GST_START_TEST(test_token_refused) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.hello_unauthorized = true;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "token=wrong timeout-ms=200");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    for (int i = 0; i < 20; i++) {
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
      g_usleep(20000);
    }
    auto warnings = bus_warnings(bus);
    fail_unless_equals_int(int(warnings.size()), 1);
    fail_unless(warnings[0].first.find("the host refused the token (ERROR -7): set the same "
                                       "token as helixframesrv's") != std::string::npos,
                "%s", warnings[0].first.c_str());
    fail_unless(warnings[0].first.find("wrong") == std::string::npos, "token in a warning");
    fail_unless(host.hellos() >= 2, "no reconnection attempt (%d HELLOs)", host.hellos());
    fail_unless_equals_int(int(host.frames().size()), 0);
    fail_unless(gst_harness_try_pull(h) == nullptr);
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* With a token, a v1 host (no HELLO answer) is not used: it cannot check the token. */
GST_START_TEST(test_token_v1_host_refused) {
  std::string path = make_socket_path();
  {
    ScriptedHost::Behaviour b;
    b.answer_hello = false;
    ScriptedHost host(path, b);
    GstHarness *h = make_harness(path, "token=secret timeout-ms=100");
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    for (int i = 0; i < 5; i++)
      fail_unless_equals_int(gst_harness_push(h, make_frame(h, i)), GST_FLOW_OK);
    auto warnings = bus_warnings(bus);
    fail_unless_equals_int(int(warnings.size()), 1);
    fail_unless(warnings[0].first.find("cannot check the token") != std::string::npos, "%s",
                warnings[0].first.c_str());
    fail_unless_equals_int(int(host.frames().size()), 0);
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* A token longer than HXFR carries fails at start with an error that says so. */
GST_START_TEST(test_token_too_long) {
  GstElement *e = gst_element_factory_make("vsockenc", nullptr);
  fail_unless(e != nullptr);
  std::string token(hx::kMaxTokenSize + 1, 'x');
  g_object_set(e, "address", "unix:///nonexistent/hxfr.sock", "token", token.c_str(), nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  fail_unless_equals_int(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(m != nullptr);
  GError *err = nullptr;
  gst_message_parse_error(m, &err, nullptr);
  fail_unless(strstr(err->message, "at most 128") != nullptr, "%s", err->message);
  fail_unless(strstr(err->message, "xxxx") == nullptr, "token in the error");
  g_clear_error(&err);
  gst_message_unref(m);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_element_set_bus(e, nullptr);
  gst_object_unref(bus);
  gst_object_unref(e);
}
GST_END_TEST;

/* An address that cannot be parsed fails at start with an error that says why. */
GST_START_TEST(test_bad_address) {
  GstElement *e = gst_element_factory_make("vsockenc", nullptr);
  fail_unless(e != nullptr);
  g_object_set(e, "address", "carrier-pigeon://nowhere", nullptr);
  fail_unless_equals_int(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
}
GST_END_TEST;

/* Resource-ID path, the part that needs no virtio-gpu: node lookup in a fake sysfs tree. */
GST_START_TEST(test_find_render_node) {
  gchar *root = g_dir_make_tmp("vsockenc-sysfs-XXXXXX", nullptr);
  std::string r = root;
  auto mk = [&](const std::string &node, const std::string &driver) {
    std::string d = r + "/class/drm/" + node + "/device";
    g_mkdir_with_parents(d.c_str(), 0755);
    std::string target = "../../../bus/pci/drivers/" + driver;
    fail_unless(symlink(target.c_str(), (d + "/driver").c_str()) == 0);
  };
  mk("card0", "virtio_gpu");
  mk("renderD128", "i915");
  mk("renderD129", "virtio_gpu");
  std::string found = vmd::find_render_node("virtio_gpu", r, "/dev/dri");
  fail_unless_equals_string(found.c_str(), "/dev/dri/renderD129");
  found = vmd::find_render_node("i915", r, "/dev/dri");
  fail_unless_equals_string(found.c_str(), "/dev/dri/renderD128");
  found = vmd::find_render_node("amdgpu", r, "/dev/dri");
  fail_unless_equals_string(found.c_str(), "");
  found = vmd::find_render_node("virtio_gpu", r + "/nope", "/dev/dri");
  fail_unless_equals_string(found.c_str(), "");
  /* What a real guest has (-device virtio-gpu-pci): the node's device is the PCI function,
   * driven by virtio-pci, and virtio_gpu drives its child virtio0. */
  std::string r2 = r + "/real";
  std::string pci = r2 + "/class/drm/renderD128/device";
  g_mkdir_with_parents((pci + "/virtio0").c_str(), 0755);
  fail_unless(symlink("../../bus/pci/drivers/virtio-pci", (pci + "/driver").c_str()) == 0);
  fail_unless(symlink("../../../bus/virtio/drivers/virtio_gpu",
                      (pci + "/virtio0/driver").c_str()) == 0);
  found = vmd::find_render_node("virtio_gpu", r2, "/dev/dri");
  fail_unless_equals_string(found.c_str(), "/dev/dri/renderD128");
  found = vmd::find_render_node("virtio-pci", r2, "/dev/dri");
  fail_unless_equals_string(found.c_str(), "/dev/dri/renderD128");
  gchar *cmd = g_strdup_printf("rm -rf '%s'", root);
  fail_unless(system(cmd) == 0);
  g_free(cmd);
  g_free(root);
}
GST_END_TEST;

/* A node that is not virtio_gpu is refused with a reason. */
GST_START_TEST(test_virtgpu_open_refuses) {
  std::string error;
  fail_unless(vmd::VirtgpuResources::open("/dev/null", &error) == nullptr);
  fail_unless(error.find("not a DRM device") != std::string::npos, "%s", error.c_str());
  fail_unless(vmd::VirtgpuResources::open("/nonexistent/renderD128", &error) == nullptr);
  fail_unless(error.find("cannot open") != std::string::npos, "%s", error.c_str());
}
GST_END_TEST;

/* mode=resource-id with system-memory frames is an error that names the way out. */
GST_START_TEST(test_resource_id_mode_needs_dmabuf) {
  std::string path = make_socket_path();
  {
    ScriptedHost host(path, {});
    GstHarness *h = make_harness(path, "mode=resource-id");
    fail_unless_equals_int(gst_harness_push(h, make_frame(h, 0)), GST_FLOW_ERROR);
    fail_unless_equals_int(host.frames().size(), 0);
    gst_harness_teardown(h);
  }
  remove_socket_path(path);
}
GST_END_TEST;

/* docs/vsockenc.md documents every property of the element, and each has a real blurb. */
GST_START_TEST(test_docs_cover_every_property) {
  bool skipped = false;
  std::string problem = testsupport::undocumented_property("vsockenc", "vsockenc.md", &skipped);
  fail_unless(problem.empty(), "%s", problem.c_str());
  fail_if(skipped, "VMD_DOCS_DIR is not set (meson sets it)");
}
GST_END_TEST;

static Suite *vsockenc_suite(void) {
  Suite *s = suite_create("vsockenc");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_docs_cover_every_property);
  tcase_add_test(tc, test_frames_in_order);
  tcase_add_test(tc, test_pipelined);
  tcase_add_test(tc, test_tcp);
  tcase_add_test(tc, test_v1_host_formats);
  tcase_add_test(tc, test_host_errors);
  tcase_add_test(tc, test_stale_answer_discarded);
  tcase_add_test(tc, test_skipped_answer_detected);
  tcase_add_test(tc, test_stale_answer_before_hello);
  tcase_add_test(tc, test_max_payload_enforced);
  tcase_add_test(tc, test_force_keyframe);
  tcase_add_test(tc, test_bitrate_config);
  tcase_add_test(tc, test_silent_host_recovers);
  tcase_add_test(tc, test_silent_host_bounded_by_timeout);
  tcase_add_test(tc, test_random_host);
  tcase_add_test(tc, test_host_max_payload_too_small);
  tcase_add_test(tc, test_host_restart);
  tcase_add_test(tc, test_eos_drains);
  tcase_add_test(tc, test_flush_wakes_waiter);
  tcase_add_test(tc, test_no_host);
  tcase_add_test(tc, test_listen_queue_full);
  tcase_add_test(tc, test_slice_type_of_pieces);
  tcase_add_test(tc, test_token_sent);
  tcase_add_test(tc, test_token_refused);
  tcase_add_test(tc, test_token_v1_host_refused);
  tcase_add_test(tc, test_token_too_long);
  tcase_add_test(tc, test_bad_address);
  tcase_add_test(tc, test_find_render_node);
  tcase_add_test(tc, test_virtgpu_open_refuses);
  tcase_add_test(tc, test_resource_id_mode_needs_dmabuf);
  tcase_add_test(tc, test_resource_id_auto);
  return s;
}

GST_CHECK_MAIN(vsockenc);
