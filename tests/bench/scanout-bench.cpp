/* Benchmark: the host-side path "guest screen -> qemudbussrc -> helixframesrv -> H.264 to a
 * client", on a running VM (run-scanout-bench.sh boots the bundled test VM for it).
 *
 * In this one process:
 *   qemudbussrc address=BUS vm=NAME keepalive-ms=0 ! helixframesrv address=unix://TMP/s.sock
 * a probe on qemudbussrc's src pad records g_get_monotonic_time() for each buffer's PTS as it
 * enters helixframesrv, and a client thread (a raw HXFR client, tests/check/support) measures:
 *
 *   (a) SUBSCRIBE to scanout 0: every FRAME_RESPONSE pushed carries the PTS of the source
 *       buffer it encodes (frame-server-subscription.cpp), so per frame latency = time the
 *       client has the whole message - time that buffer entered helixframesrv (same process,
 *       same clock). Frames that entered during the window and never arrived are "skipped"
 *       (replaced while the shared encoder was busy, or dropped for a full queue).
 *   (b) FRAME_REQUEST by resource ID (scanout 0), one at a time: round trip from the request
 *       sent to the FRAME_RESPONSE received, and the rate that gives.
 *
 * Each phase has --warmup seconds first (encoder start-up, the first IDR) and then --seconds
 * measured. CPU: this whole process (getrusage: capture, encode, server, client) and QEMU's
 * (/proc/PID/stat, with --pid), per 100 encoded frames; and this process's CPU by thread name
 * (/proc/self/task), to see where it goes.
 *
 *   scanout-bench --address BUS [--vm NAME] [--pid QEMU_PID] [--seconds N] [--warmup N]
 *                 [--tmpdir DIR] [--setup-timeout S] [--encoder DESC]
 *
 * --encoder is helixframesrv's encoder property (default auto: x264enc here, with the settings
 * of encoder-factory.cpp), e.g. to try other x264 settings against the default.
 *
 * GST_PLUGIN_PATH must include <build>/ext/qemu and <build>/gst/helix. Prints key=value lines
 * on stdout. Never fails on a timing: exit 1 only when the setup fails (no element, QEMU not
 * on the bus, no frame within --setup-timeout, the server does not answer), 2 on bad usage.
 */
#include "cpu-time.h"
#include "hxfr-client.h"

#include <dirent.h>
#include <gst/gst.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hx = vmd::hxfr;
using testsupport::HxfrClient;

namespace {

constexpr int kIoMs = 10000;    /* no answer or pushed frame for this long: the setup failed */
constexpr int kSliceMs = 200;   /* reads are sliced so a pipeline error stops the client */
constexpr double kGraceS = 1.0; /* after a window, frames that entered in it may still come */

/* ---- clocks --------------------------------------------------------------------------- */

double now_s() { return double(g_get_monotonic_time()) / 1e6; }

using bench::pid_cpu_seconds;
using bench::read_stat;
using bench::self_cpu_seconds;

/* CPU seconds of each thread of this process, by thread id, with its name. */
struct ThreadCpu {
  std::string comm;
  double cpu = 0;
};
std::map<long, ThreadCpu> thread_cpu() {
  std::map<long, ThreadCpu> out;
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return out;
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    ThreadCpu t;
    if (read_stat(std::string("/proc/self/task/") + e->d_name + "/stat", &t.cpu, &t.comm))
      out[atol(e->d_name)] = t;
  }
  closedir(d);
  return out;
}

/* "name:seconds,..." of the CPU spent between two snapshots, by thread name (digits folded),
 * largest first. Threads that ended in between are missing (their time is in the process
 * total). GStreamer names its streaming threads "element:pad", and a thread inherits the name
 * of the thread that started it, so here:
 *   cap:src        qemudbussrc's streaming thread (the copy into the output buffer);
 *   gdbus          GDBus's worker (QEMU's messages read, applied to the host surface);
 *   src:src        helixframesrv's encoding pipelines, whose appsrc is named "src":
 *                  videoconvert, x264enc with its own threads, h264parse;
 *   scanout-bench  the main thread and helixframesrv's server threads (accept, client,
 *                  sender, subscription stream);
 *   bench-client   the client thread. */
std::string thread_breakdown(const std::map<long, ThreadCpu> &before,
                             const std::map<long, ThreadCpu> &after) {
  std::map<std::string, double> by_name;
  for (const auto &[tid, t] : after) {
    auto it = before.find(tid);
    const double d = t.cpu - (it != before.end() ? it->second.cpu : 0.0);
    std::string name;
    for (char c : t.comm)
      name += (c >= '0' && c <= '9') ? 'N' : (c == ' ' || c == ',' || c == '=') ? '_' : c;
    by_name[name] += d;
  }
  std::vector<std::pair<std::string, double>> v(by_name.begin(), by_name.end());
  std::sort(v.begin(), v.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
  std::string s;
  for (const auto &[name, cpu] : v) {
    if (cpu < 0.005)
      continue;
    char num[32];
    snprintf(num, sizeof num, "%.2f", cpu);
    s += (s.empty() ? "" : ",") + name + ":" + num;
  }
  return s.empty() ? "-" : s;
}

struct Stats {
  double mean = 0, p50 = 0, p95 = 0, max = 0;
};
Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v)
    sum += x;
  s.mean = sum / double(v.size());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  s.p50 = at(0.5);
  s.p95 = at(0.95);
  s.max = v.back();
  return s;
}

/* ---- what enters helixframesrv -------------------------------------------------------- */

struct Entered {
  int64_t pts;
  gint64 t_us;
};

class EntryLog {
 public:
  void add(int64_t pts, gint64 t_us) {
    std::lock_guard<std::mutex> g(lock_);
    by_pts_[pts] = t_us;
    all_.push_back({pts, t_us});
  }
  /* Entry time of this PTS, or -1. */
  gint64 find(int64_t pts) {
    std::lock_guard<std::mutex> g(lock_);
    auto it = by_pts_.find(pts);
    return it == by_pts_.end() ? -1 : it->second;
  }
  /* Buffers that entered in [from_us, to_us). */
  size_t count(gint64 from_us, gint64 to_us) {
    std::lock_guard<std::mutex> g(lock_);
    size_t n = 0;
    for (const Entered &e : all_)
      n += (e.t_us >= from_us && e.t_us < to_us);
    return n;
  }
  size_t total() {
    std::lock_guard<std::mutex> g(lock_);
    return all_.size();
  }

 private:
  std::mutex lock_;
  std::unordered_map<int64_t, gint64> by_pts_;
  std::vector<Entered> all_;
};

EntryLog g_entries;

GstPadProbeReturn on_buffer(GstPad *, GstPadProbeInfo *info, gpointer) {
  const gint64 t = g_get_monotonic_time();
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  if (b && GST_BUFFER_PTS_IS_VALID(b))
    g_entries.add(int64_t(GST_BUFFER_PTS(b)), t);
  return GST_PAD_PROBE_OK;
}

/* ---- cleanup on every exit path -------------------------------------------------------- */

/* The socket directory, also removed from a SIGINT/SIGTERM handler (unlink and rmdir are
 * async-signal-safe; the paths are fixed before the handler is installed). */
char g_sock_path[4096];
char g_sock_dir[4096];

void remove_socket_dir() {
  if (g_sock_path[0])
    unlink(g_sock_path);
  if (g_sock_dir[0])
    rmdir(g_sock_dir);
}

void on_signal(int sig) {
  remove_socket_dir();
  signal(sig, SIG_DFL);
  raise(sig);
}

struct SocketDir {
  ~SocketDir() { remove_socket_dir(); }
};

struct Pipeline {
  GstElement *p = nullptr;
  ~Pipeline() {
    if (p) {
      gst_element_set_state(p, GST_STATE_NULL);
      gst_object_unref(p);
    }
  }
};

/* ---- the client ----------------------------------------------------------------------- */

struct Options {
  std::string address;
  std::string vm;
  long pid = 0;
  double seconds = 10;
  double warmup = 2;
  double setup_timeout = 60;
  std::string tmpdir;
  std::string encoder;
};

/* Shared between the client thread and the main thread (which watches the pipeline's bus). */
std::atomic<bool> g_abort{false};
std::string g_failure; /* set by the client thread before it ends, read after join */

bool fail(const std::string &why) {
  if (g_failure.empty())
    g_failure = why;
  return false;
}

/* The next message within kIoMs, read in slices so an abort is seen. */
bool read_msg(HxfrClient *c, hx::Message *m, const char *what) {
  const gint64 deadline = g_get_monotonic_time() + gint64(kIoMs) * 1000;
  for (;;) {
    if (g_abort)
      return fail(std::string("aborted while waiting for ") + what);
    hx::Io io = hx::Io::Ok;
    if (c->read(m, kSliceMs, &io))
      return true;
    if (io != hx::Io::Timeout)
      return fail(std::string("connection closed or broken while waiting for ") + what);
    if (g_get_monotonic_time() >= deadline)
      return fail(std::string("no ") + what + " within " + std::to_string(kIoMs / 1000) + " s");
  }
}

std::string error_text(const hx::Message &m) {
  hx::Error e;
  if (hx::decode(m.header, m.view(), &e) != hx::Status::kOk)
    return "malformed ERROR";
  return "ERROR " + std::to_string(e.code) + " \"" + e.message + "\"";
}

std::unique_ptr<HxfrClient> connect_client(const std::string &uri) {
  std::string error;
  auto c = HxfrClient::connect(uri, kIoMs, &error);
  if (!c) {
    fail("cannot connect to helixframesrv at " + uri + ": " + error);
    return nullptr;
  }
  hx::HelloResponse r;
  if (!c->hello(hx::cap::kAllKnown, &r, kIoMs)) {
    fail("no HELLO_RESP from helixframesrv within " + std::to_string(kIoMs / 1000) + " s");
    return nullptr;
  }
  if (!(r.capabilities & hx::cap::kResourceId) || !(r.capabilities & hx::cap::kSubscribe)) {
    fail("helixframesrv did not grant RESOURCE_ID and SUBSCRIBE");
    return nullptr;
  }
  return c;
}

/* One FRAME_REQUEST by resource ID for scanout 0 (v2: session_id = scanout). 1: a frame
 * (*bytes = access unit size), 0: ERROR RESOURCE_NOT_FOUND (no frame yet), -1: failure. */
int request_frame(HxfrClient *c, int64_t pts, size_t *bytes) {
  hx::FrameRequest r;
  r.resource_id = 1; /* any non-zero ID: the host encodes its own copy of scanout 0 */
  r.pts_ns = pts;
  if (!c->send(hx::encode(r, 0), kIoMs)) {
    fail("cannot send FRAME_REQUEST");
    return -1;
  }
  hx::Message m;
  if (!read_msg(c, &m, "answer to FRAME_REQUEST"))
    return -1;
  if (m.header.type == hx::MsgType::kError) {
    hx::Error e;
    if (hx::decode(m.header, m.view(), &e) == hx::Status::kOk &&
        e.code == hx::error_code::kResourceNotFound)
      return 0;
    fail("FRAME_REQUEST answered " + error_text(m));
    return -1;
  }
  hx::FrameResponse fr;
  if (m.header.type != hx::MsgType::kFrameResponse ||
      hx::decode(m.header, m.view(), &fr) != hx::Status::kOk) {
    fail("FRAME_REQUEST answered by message type " + std::to_string(int(m.header.type)));
    return -1;
  }
  *bytes = testsupport::access_unit(fr).size();
  return 1;
}

struct Cpu {
  double self, qemu, t;
  std::map<long, ThreadCpu> threads;
};
Cpu cpu_now(long pid) { return {self_cpu_seconds(), pid_cpu_seconds(pid), now_s(), thread_cpu()}; }

void print_cpu(const char *prefix, const Cpu &a, const Cpu &b, size_t frames) {
  const double self = b.self - a.self, wall = b.t - a.t;
  printf("%s_cpu_s=%.3f %s_cpu_cores=%.2f %s_cpu_s_per_100=%.4f", prefix, self, prefix,
         wall > 0 ? self / wall : 0.0, prefix, frames ? self * 100.0 / double(frames) : 0.0);
  if (a.qemu >= 0 && b.qemu >= 0) {
    const double q = b.qemu - a.qemu;
    printf(" %s_qemu_cpu_s=%.3f %s_qemu_cpu_s_per_100=%.4f", prefix, q, prefix,
           frames ? q * 100.0 / double(frames) : 0.0);
  }
  printf("\n%s_threads=%s\n", prefix, thread_breakdown(a.threads, b.threads).c_str());
}

/* (a) SUBSCRIBE: latency of pushed frames, frames received vs captured. */
bool run_subscribe(const std::string &uri, const Options &o) {
  auto c = connect_client(uri);
  if (!c)
    return false;
  if (!c->send(hx::encode(hx::Subscribe{0}, 0), kIoMs))
    return fail("cannot send SUBSCRIBE");
  hx::Message m;
  if (!read_msg(c.get(), &m, "SUBSCRIBE_RESP"))
    return false;
  hx::SubscribeResponse sr;
  if (m.header.type != hx::MsgType::kSubscribeResponse ||
      hx::decode(m.header, m.view(), &sr) != hx::Status::kOk || !sr.success)
    return fail("SUBSCRIBE to scanout 0 refused (" +
                (m.header.type == hx::MsgType::kError ? error_text(m)
                                                      : "type " + std::to_string(int(m.header.type))) +
                ")");

  struct Got {
    int64_t pts;
    gint64 t_us;
    size_t bytes;
    bool key;
  };
  std::vector<Got> got;
  const gint64 start_us = g_get_monotonic_time() + gint64(o.warmup * 1e6);
  const gint64 end_us = start_us + gint64(o.seconds * 1e6);
  const gint64 grace_us = end_us + gint64(kGraceS * 1e6);
  Cpu c0{}, c1{};
  bool started = false, ended = false;
  for (;;) {
    if (!read_msg(c.get(), &m, "pushed FRAME_RESPONSE"))
      return false;
    const gint64 t = g_get_monotonic_time();
    if (m.header.type == hx::MsgType::kError)
      return fail("subscription ended: " + error_text(m));
    hx::FrameResponse fr;
    if (m.header.type != hx::MsgType::kFrameResponse ||
        hx::decode(m.header, m.view(), &fr) != hx::Status::kOk)
      return fail("subscription sent message type " + std::to_string(int(m.header.type)));
    if (!started && t >= start_us) {
      c0 = cpu_now(o.pid);
      started = true;
    }
    if (started && !ended && t >= end_us) {
      c1 = cpu_now(o.pid);
      ended = true;
    }
    size_t bytes = 0;
    for (const hx::ByteView &nal : fr.nals)
      bytes += nal.size;
    got.push_back({fr.pts_ns, t, bytes, fr.is_keyframe});
    /* Frames that entered before the end may still be on their way; stop at the first one
     * that entered after it (or after the grace period). */
    if (ended) {
      const gint64 entered = g_entries.find(fr.pts_ns);
      if (t >= grace_us || entered >= end_us)
        break;
    }
  }
  /* c0/c1 are taken at the first frame received at or after each mark: the window in wall
   * time is [c0.t, c1.t], and the frames counted are those that entered in it. */
  const gint64 w0 = gint64(c0.t * 1e6), w1 = gint64(c1.t * 1e6);
  const double wall = c1.t - c0.t;
  std::vector<double> lat_ms;
  size_t keys = 0, bytes = 0, unknown = 0;
  for (const Got &g : got) {
    const gint64 entered = g_entries.find(g.pts);
    if (entered < 0) {
      unknown += (g.t_us >= w0 && g.t_us < w1);
      continue;
    }
    if (entered < w0 || entered >= w1)
      continue;
    lat_ms.push_back(double(g.t_us - entered) / 1000.0);
    keys += g.key;
    bytes += g.bytes;
  }
  const size_t captured = g_entries.count(w0, w1), delivered = lat_ms.size();
  const Stats s = stats_of(lat_ms);
  printf("sub_seconds=%.2f sub_captured=%zu sub_frames=%zu sub_skipped=%zu captured_fps=%.2f "
         "sub_fps=%.2f sub_lat_mean_ms=%.2f sub_lat_p50_ms=%.2f sub_lat_p95_ms=%.2f "
         "sub_lat_max_ms=%.2f sub_keyframes=%zu sub_au_bytes_mean=%.0f sub_kbit_s=%.0f"
         " sub_unknown_pts=%zu\n",
         wall, captured, delivered, captured > delivered ? captured - delivered : size_t(0),
         wall > 0 ? double(captured) / wall : 0.0, wall > 0 ? double(delivered) / wall : 0.0,
         s.mean, s.p50, s.p95, s.max, keys,
         delivered ? double(bytes) / double(delivered) : 0.0,
         wall > 0 ? double(bytes) * 8 / wall / 1000 : 0.0, unknown);
  print_cpu("sub", c0, c1, delivered);
  return true; /* the connection closes here: the scanout's stream stops encoding */
}

/* (b) FRAME_REQUEST by resource ID, one at a time. */
bool run_requests(HxfrClient *c, const Options &o, int64_t *pts) {
  const double start = now_s() + o.warmup, end = start + o.seconds;
  std::vector<double> rtt_ms;
  size_t bytes = 0;
  Cpu c0{};
  bool started = false;
  for (;;) {
    const double t0 = now_s();
    if (!started && t0 >= start) {
      c0 = cpu_now(o.pid);
      started = true;
    }
    if (t0 >= end)
      break;
    size_t n = 0;
    const int r = request_frame(c, (*pts)++, &n);
    if (r < 0)
      return false;
    if (r == 0)
      return fail("scanout 0 lost its frame (ERROR RESOURCE_NOT_FOUND) during the run");
    if (started) {
      rtt_ms.push_back((now_s() - t0) * 1000.0);
      bytes += n;
    }
  }
  const Cpu c1 = cpu_now(o.pid);
  const double wall = c1.t - c0.t;
  const Stats s = stats_of(rtt_ms);
  printf("req_seconds=%.2f req_frames=%zu req_fps=%.2f req_rtt_mean_ms=%.2f req_rtt_p50_ms=%.2f "
         "req_rtt_p95_ms=%.2f req_rtt_max_ms=%.2f req_au_bytes_mean=%.0f captured_fps_req=%.2f\n",
         wall, rtt_ms.size(), wall > 0 ? double(rtt_ms.size()) / wall : 0.0, s.mean, s.p50, s.p95,
         s.max, rtt_ms.empty() ? 0.0 : double(bytes) / double(rtt_ms.size()),
         wall > 0 ? double(g_entries.count(gint64(c0.t * 1e6), gint64(c1.t * 1e6))) / wall : 0.0);
  print_cpu("req", c0, c1, rtt_ms.size());
  return true;
}

void client_main(const std::string &uri, const Options &o, GstPad *src_pad,
                 std::atomic<bool> *done) {
  pthread_setname_np(pthread_self(), "bench-client");
  auto finish = [&] { done->store(true); };
  /* The resource-ID connection first: it waits (bounded) for the scanout's first frame. */
  auto req = connect_client(uri);
  if (!req)
    return finish();
  int64_t pts = 0;
  const double deadline = now_s() + o.setup_timeout;
  for (;;) {
    size_t n = 0;
    const int r = request_frame(req.get(), pts++, &n);
    if (r < 0)
      return finish();
    if (r > 0)
      break;
    if (now_s() >= deadline) {
      fail("no frame of scanout 0 reached helixframesrv within " +
           std::to_string(int(o.setup_timeout)) + " s (" + std::to_string(g_entries.total()) +
           " buffers from qemudbussrc)");
      return finish();
    }
    g_usleep(100 * 1000);
  }
  if (GstCaps *caps = gst_pad_get_current_caps(src_pad)) {
    GstStructure *st = gst_caps_get_structure(caps, 0);
    int w = 0, h = 0;
    gst_structure_get_int(st, "width", &w);
    gst_structure_get_int(st, "height", &h);
    const char *fmt = gst_structure_get_string(st, "format");
    printf("mode=%dx%d format=%s\n", w, h, fmt ? fmt : "?");
    gst_caps_unref(caps);
  }
  fflush(stdout);
  if (run_subscribe(uri, o)) {
    fflush(stdout);
    run_requests(req.get(), o, &pts);
  }
  fflush(stdout);
  finish();
}

/* The first ERROR on the bus as text, or "". */
std::string bus_error(GstBus *bus, int timeout_ms) {
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, GstClockTime(timeout_ms) * GST_MSECOND,
                                               GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  if (!msg)
    return "";
  std::string text = "unexpected EOS";
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg, &err, &dbg);
    text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + err->message +
           (dbg ? std::string(" (") + dbg + ")" : "");
    g_clear_error(&err);
    g_free(dbg);
  }
  gst_message_unref(msg);
  return text;
}

int usage() {
  fprintf(stderr, "usage: scanout-bench --address BUS [--vm NAME] [--pid QEMU_PID] [--seconds N] "
                  "[--warmup N] [--tmpdir DIR] [--setup-timeout S] [--encoder DESC]\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  Options o;
  for (int i = 1; i < argc; i++) {
    const bool has = i + 1 < argc;
    if (!strcmp(argv[i], "--address") && has)
      o.address = argv[++i];
    else if (!strcmp(argv[i], "--vm") && has)
      o.vm = argv[++i];
    else if (!strcmp(argv[i], "--pid") && has)
      o.pid = atol(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && has)
      o.seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && has)
      o.warmup = atof(argv[++i]);
    else if (!strcmp(argv[i], "--setup-timeout") && has)
      o.setup_timeout = atof(argv[++i]);
    else if (!strcmp(argv[i], "--tmpdir") && has)
      o.tmpdir = argv[++i];
    else if (!strcmp(argv[i], "--encoder") && has)
      o.encoder = argv[++i];
    else
      return usage();
  }
  if (o.address.empty() || o.seconds <= 0 || o.warmup < 0 || o.setup_timeout <= 0)
    return usage();
  for (const char *f : {"qemudbussrc", "helixframesrv"}) {
    GstElementFactory *factory = gst_element_factory_find(f);
    if (!factory) {
      fprintf(stderr, "scanout-bench: no element %s (GST_PLUGIN_PATH must include build/ext/qemu "
                      "and build/gst/helix)\n", f);
      return 1;
    }
    gst_object_unref(factory);
  }

  /* A private directory for the server's UNIX socket, removed on every way out. */
  const std::string tmpl =
      (o.tmpdir.empty() ? std::string(g_get_tmp_dir()) : o.tmpdir) + "/scanout-bench-XXXXXX";
  if (tmpl.size() + strlen("/helix.sock") >= 100) { /* sockaddr_un holds 108 bytes */
    fprintf(stderr, "scanout-bench: %s: too long for a UNIX socket path\n", tmpl.c_str());
    return 1;
  }
  memcpy(g_sock_dir, tmpl.c_str(), tmpl.size() + 1);
  if (!g_mkdtemp(g_sock_dir)) {
    fprintf(stderr, "scanout-bench: cannot create %s: %s\n", tmpl.c_str(), g_strerror(errno));
    g_sock_dir[0] = 0;
    return 1;
  }
  const std::string sock_path = std::string(g_sock_dir) + "/helix.sock";
  memcpy(g_sock_path, sock_path.c_str(), sock_path.size() + 1);
  SocketDir socket_dir;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);
  const std::string uri = "unix://" + sock_path;

  Pipeline pipeline;
  gchar *addr = g_strescape(o.address.c_str(), nullptr);
  gchar *vm = g_strescape(o.vm.c_str(), nullptr);
  const std::string desc = std::string("qemudbussrc name=cap address=\"") + addr + "\"" +
                           (o.vm.empty() ? "" : std::string(" vm=\"") + vm + "\"") +
                           " keepalive-ms=0 ! helixframesrv name=srv address=" + uri;
  g_free(addr);
  g_free(vm);
  GError *err = nullptr;
  pipeline.p = gst_parse_launch(desc.c_str(), &err);
  if (pipeline.p && !err && !o.encoder.empty()) {
    GstElement *srv = gst_bin_get_by_name(GST_BIN(pipeline.p), "srv");
    g_object_set(srv, "encoder", o.encoder.c_str(), nullptr);
    gst_object_unref(srv);
  }
  if (!pipeline.p || err) {
    fprintf(stderr, "scanout-bench: %s: %s\n", desc.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    return 1;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline.p), "cap");
  GstPad *src_pad = gst_element_get_static_pad(src, "src");
  gst_object_unref(src);
  gst_pad_add_probe(src_pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, nullptr, nullptr);

  GstBus *bus = gst_element_get_bus(pipeline.p);
  int rc = 0;
  if (gst_element_set_state(pipeline.p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    const std::string e = bus_error(bus, 0);
    fprintf(stderr, "scanout-bench: the pipeline does not start%s%s\n", e.empty() ? "" : ": ",
            e.c_str());
    rc = 1;
  } else {
    std::atomic<bool> done{false};
    std::thread client(client_main, uri, std::cref(o), src_pad, &done);
    /* Watch the bus while the client works; a hard limit over the whole run in case a wait
     * somewhere is not bounded as it should be. */
    const double limit = now_s() + o.setup_timeout + 2 * (o.warmup + o.seconds + kGraceS) +
                         4.0 * kIoMs / 1000;
    std::string pipeline_error;
    while (!done) {
      pipeline_error = bus_error(bus, 100);
      if (!pipeline_error.empty() || now_s() > limit) {
        if (pipeline_error.empty())
          pipeline_error = "the run did not end in time";
        g_abort = true;
        break;
      }
    }
    client.join();
    if (!pipeline_error.empty()) {
      fprintf(stderr, "scanout-bench: %s\n", pipeline_error.c_str());
      rc = 1;
    } else if (!g_failure.empty()) {
      fprintf(stderr, "scanout-bench: %s\n", g_failure.c_str());
      rc = 1;
    }
  }
  gst_object_unref(bus);
  gst_object_unref(src_pad);
  return rc;
}
