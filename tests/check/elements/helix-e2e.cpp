/* vsockenc (guest) against helixframesrv (host), real elements on both ends:
 * - in one process, over UNIX and TCP sockets: known frames go out as pixel uploads, come
 *   back as H.264 from the host's encoder (x264enc here) and decode with avdec_h264 to within
 *   PSNR 35 dB of what was sent, in order, none lost;
 * - across two processes: helixframesrv runs alone in a child `gst-launch-1.0` (pixel uploads
 *   only, no sink pad linked), a moving videotestsrc pattern goes through vsockenc here;
 * - the server killed (-9) and restarted mid-stream: vsockenc reconnects within its bounds,
 *   the first access unit after the outage is an IDR, decoding goes on;
 * - a resolution change mid-stream: the new size decodes, starting at an IDR;
 * - eight vsockenc pipelines, each with its own picture, streaming at once to one
 *   helixframesrv in a child process (max-clients=8: it refuses a ninth connection meanwhile).
 * Every decoded frame is compared (I420 planes) with the input frame of the same pts. */
#include "h264-nal.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using testsupport::nal_types;

namespace {

constexpr int kW = 320, kH = 240, kFrames = 30;

/* A smooth, moving BGRx picture: encodable well at the default bitrate. */
std::vector<uint8_t> make_frame(int n) {
  std::vector<uint8_t> f(size_t(kW) * kH * 4);
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++) {
      uint8_t *p = &f[(size_t(y) * kW + x) * 4];
      /* Smooth waves, no hard edges: what 4:2:0 H.264 keeps well. */
      p[0] = uint8_t(128 + 100 * std::sin((x + n * 4) / 23.0));
      p[1] = uint8_t(128 + 100 * std::sin((y + n * 2) / 19.0));
      p[2] = uint8_t(128 + 100 * std::cos((x + y) / 31.0));
      p[3] = 0xff;
    }
  return f;
}

double psnr_rgb(const std::vector<uint8_t> &a, const uint8_t *b, size_t b_stride) {
  double se = 0;
  size_t n = 0;
  for (int y = 0; y < kH; y++)
    for (int x = 0; x < kW; x++)
      for (int c = 0; c < 3; c++) {
        double d = double(a[(size_t(y) * kW + x) * 4 + c]) - double(b[y * b_stride + x * 4 + c]);
        se += d * d;
        n++;
      }
  double mse = se / double(n);
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

/* The client pipeline desc (with an appsrc "src" and an appsink "sink"), playing. */
GstElement *play_client(const std::string &desc, GstElement **src, GstElement **sink) {
  GError *err = nullptr;
  GstElement *client = gst_parse_launch(desc.c_str(), &err);
  fail_unless(client != nullptr, "%s", err ? err->message : "");
  *src = gst_bin_get_by_name(GST_BIN(client), "src");
  *sink = gst_bin_get_by_name(GST_BIN(client), "sink");
  fail_unless(gst_element_set_state(client, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  return client;
}

/* Frame i of a 30 fps stream into appsrc src. */
void push_frame(GstElement *src, const std::vector<uint8_t> &pixels, int i) {
  GstBuffer *buf = gst_buffer_new_memdup(pixels.data(), pixels.size());
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(i, GST_SECOND, 30);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
  fail_unless(gst_app_src_push_buffer(GST_APP_SRC(src), buf) == GST_FLOW_OK);
}

/* The address a client reaches the playing helixframesrv "srv" in server at, when it
 * listens on tcp://127.0.0.1:0. */
std::string bound_tcp_address(GstElement *server) {
  GstElement *srv = gst_bin_get_by_name(GST_BIN(server), "srv");
  guint port = 0;
  g_object_get(srv ? srv : server, "bound-port", &port, nullptr);
  if (srv)
    gst_object_unref(srv);
  fail_unless(port > 0);
  return "tcp://127.0.0.1:" + std::to_string(port);
}

/* extra_server and extra_client are more properties for helixframesrv and vsockenc. */
void run_e2e(const std::string &server_address, bool tcp, const std::string &extra_server = "",
             const std::string &extra_client = "") {
  if (!gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0) ||
      !gst_registry_check_feature_version(gst_registry_get(), "avdec_h264", 1, 0, 0)) {
    g_print("SKIP: x264enc or avdec_h264 missing\n");
    return;
  }
  GError *err = nullptr;
  std::string srv_desc = "helixframesrv name=srv address=" + server_address + " " + extra_server;
  GstElement *server = gst_parse_launch(srv_desc.c_str(), &err);
  fail_unless(server != nullptr, "%s", err ? err->message : "");
  fail_unless(gst_element_set_state(server, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  const std::string client_address = tcp ? bound_tcp_address(server) : server_address;

  std::string desc = "appsrc name=src format=time caps=video/x-raw,format=BGRx,width=" +
                     std::to_string(kW) + ",height=" + std::to_string(kH) +
                     ",framerate=30/1 ! vsockenc address=" + client_address + " " + extra_client +
                     " timeout-ms=5000 ! h264parse ! avdec_h264 direct-rendering=false max-threads=1"
                     " ! videoconvert ! video/x-raw,format=BGRx ! appsink name=sink sync=false";
  GstElement *src = nullptr, *sink = nullptr;
  GstElement *client = play_client(desc, &src, &sink);

  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < kFrames; i++) {
    sent.push_back(make_frame(i));
    push_frame(src, sent.back(), i);
  }
  gst_app_src_end_of_stream(GST_APP_SRC(src));

  int got = 0;
  double worst = 99;
  while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND)) {
    GstBuffer *b = gst_sample_get_buffer(s);
    GstVideoInfo info;
    fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(s)));
    GstVideoFrame vf;
    fail_unless(gst_video_frame_map(&vf, &info, b, GST_MAP_READ));
    int index = int(gst_util_uint64_scale_round(GST_BUFFER_PTS(b), 30, GST_SECOND));
    fail_unless(index == got, "frame %d came as #%d", index, got);
    double p = psnr_rgb(sent[size_t(index)], static_cast<const uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&vf, 0)),
                        size_t(GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0)));
    worst = std::min(worst, p);
    gst_video_frame_unmap(&vf);
    gst_sample_unref(s);
    got++;
  }
  g_print("%s: %d frames, worst PSNR %.1f dB\n", server_address.c_str(), got, worst);
  fail_unless_equals_int(got, kFrames);
  fail_unless(worst >= 35.0, "PSNR %.1f dB", worst);

  gst_element_set_state(client, GST_STATE_NULL);
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(client);
  gst_object_unref(server);
}


/* ---- two processes, restarts, size changes ---------------------------------------------- */

constexpr int kFps = 30;
constexpr guint kEncTimeoutMs = 5000; /* vsockenc timeout-ms in these tests */
constexpr int kBackoffMaxMs = 2000;   /* vmd::RemoteEncoderConfig::backoff_max_ms */

bool have_codecs() {
  if (gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0) &&
      gst_registry_check_feature_version(gst_registry_get(), "avdec_h264", 1, 0, 0))
    return true;
  g_print("SKIP: x264enc or avdec_h264 missing\n");
  return false;
}

/* Bounds widen 5x under valgrind (VMD_VALGRIND=1), as everywhere in the project. */
gint64 deadline_in(double seconds) {
  double factor = g_getenv("VMD_VALGRIND") ? 5.0 : 1.0;
  return g_get_monotonic_time() + gint64(seconds * factor * G_USEC_PER_SEC);
}

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0)
      close(fd);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
};

/* A fresh directory under $TMPDIR, removed with the files left in it. */
class TempDir {
 public:
  TempDir() {
    gchar *d = g_dir_make_tmp("helix-e2e-XXXXXX", nullptr);
    fail_unless(d != nullptr, "cannot make a temp dir");
    path_ = d;
    g_free(d);
  }
  ~TempDir() {
    std::vector<std::string> names;
    if (GDir *dir = g_dir_open(path_.c_str(), 0, nullptr)) {
      while (const gchar *name = g_dir_read_name(dir))
        names.push_back(path_ + "/" + name);
      g_dir_close(dir);
    }
    for (auto &n : names)
      g_unlink(n.c_str());
    g_rmdir(path_.c_str());
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

/* True when something accepts a connection at unix:///PATH or tcp://IPV4:PORT. The socket
 * file alone is not enough: helixframesrv binds, chmods, then listens. */
bool accepts(const std::string &address) {
  if (g_str_has_prefix(address.c_str(), "unix://")) {
    std::string path = address.substr(strlen("unix://"));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    fail_unless(path.size() < sizeof sa.sun_path, "socket path too long: %s", path.c_str());
    memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return fd.fd >= 0 && connect(fd.fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0;
  }
  fail_unless(g_str_has_prefix(address.c_str(), "tcp://"), "%s", address.c_str());
  size_t colon = address.rfind(':');
  std::string host = address.substr(strlen("tcp://"), colon - strlen("tcp://"));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(std::stoi(address.substr(colon + 1))));
  fail_unless(inet_pton(AF_INET, host.c_str(), &sa.sin_addr) == 1, "%s", address.c_str());
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd.fd >= 0 && connect(fd.fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0;
}

/* Whether /proc/net/unix shows a socket listening (flag __SO_ACCEPTCON) on PATH: readiness
 * without connecting, so no connection of ours takes one of the server's max-clients slots
 * (a closed connection frees its slot only once the server's session thread has noticed).
 * -1 when /proc/net/unix cannot be read. */
int unix_listening(const std::string &path) {
  gchar *text = nullptr;
  if (!g_file_get_contents("/proc/net/unix", &text, nullptr, nullptr))
    return -1;
  /* Num: RefCount Protocol Flags Type St Inode Path */
  bool found = false;
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l && !found; l++) {
    unsigned long flags = 0;
    int path_at = 0;
    if (sscanf(*l, "%*s %*s %*s %lx %*s %*s %*s %n", &flags, &path_at) == 1 && path_at > 0 &&
        path == *l + path_at)
      found = (flags & 0x10000) != 0;
  }
  g_strfreev(lines);
  g_free(text);
  return found ? 1 : 0;
}

/* Listening at ADDRESS: for UNIX sockets checked without connecting where possible. */
bool listening(const std::string &address) {
  if (g_str_has_prefix(address.c_str(), "unix://")) {
    int state = unix_listening(address.substr(strlen("unix://")));
    if (state >= 0)
      return state == 1;
  }
  return accepts(address);
}

/* A loopback port nobody uses right now (the child binds it a moment later; start() reports
 * the rare loss of that race and the caller picks another). */
int free_tcp_port() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  fail_unless(fd.fd >= 0 && bind(fd.fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0 &&
              getsockname(fd.fd, reinterpret_cast<sockaddr *>(&sa), &len) == 0);
  return ntohs(sa.sin_port);
}

/* Our registry copied for the child: it loads without a rescan and never races us on one file.
 * Without ours (not written yet), the child builds its own there. */
std::string child_registry(const TempDir &dir) {
  std::string path = dir.path() + "/child.registry";
  const gchar *ours = g_getenv("GST_REGISTRY_1_0");
  gchar *data = nullptr;
  gsize len = 0;
  if (ours && g_file_get_contents(ours, &data, &len, nullptr)) {
    g_file_set_contents(path.c_str(), data, gssize(len), nullptr);
    g_free(data);
  }
  return path;
}

void die_with_parent(gpointer) {
  /* A failed check leaves the test without running destructors: the server must not outlive
   * the test process (and keep its socket). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* helixframesrv alone in a `gst-launch-1.0` child: pixel uploads only, no sink pad linked. */
class ChildServer {
 public:
  /* props: more `name=value` settings for helixframesrv. */
  ChildServer(std::string address, std::string registry, std::vector<std::string> props = {})
      : address_(std::move(address)), registry_(std::move(registry)), props_(std::move(props)) {}
  ~ChildServer() { stop(); }
  ChildServer(const ChildServer &) = delete;
  ChildServer &operator=(const ChildServer &) = delete;

  const std::string &address() const { return address_; }

  /* Spawns the server and waits (bounded) until it accepts connections. False when it exited
   * before that (e.g. its TCP port was taken meanwhile). */
  bool start() {
    fail_unless(pid_ <= 0, "server already running");
    gchar *launch = g_find_program_in_path("gst-launch-1.0");
    fail_unless(launch != nullptr, "gst-launch-1.0 is not in PATH");
    std::string address_arg = "address=" + address_;
    std::vector<const gchar *> argv = {launch, "-q", "helixframesrv", address_arg.c_str()};
    for (auto &p : props_)
      argv.push_back(p.c_str());
    argv.push_back(nullptr);
    gchar **envp = g_get_environ();
    envp = g_environ_setenv(envp, "GST_REGISTRY_1_0", registry_.c_str(), TRUE);
    GError *err = nullptr;
    GPid pid = 0;
    gboolean ok = g_spawn_async(nullptr, const_cast<gchar **>(argv.data()), envp,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, nullptr, &pid, &err);
    std::string why = err ? err->message : "";
    g_clear_error(&err);
    g_strfreev(envp);
    g_free(launch);
    fail_unless(ok, "spawning gst-launch-1.0: %s", why.c_str());
    pid_ = pid;
    gint64 end = deadline_in(30);
    while (!listening(address_)) {
      int status = 0;
      if (reap(&status)) {
        g_print("helixframesrv (%s) exited with status 0x%x before listening\n",
                address_.c_str(), unsigned(status));
        return false;
      }
      fail_unless(g_get_monotonic_time() < end, "helixframesrv (pid %d) not listening on %s "
                  "after 30 s", int(pid_), address_.c_str());
      g_usleep(20 * 1000);
    }
    return true;
  }

  /* kill -9, as a crash would. */
  void kill_hard() {
    fail_unless(signal_and_wait(SIGKILL, 10), "pid %d survives SIGKILL", int(pid_));
  }

  /* SIGTERM, then SIGKILL after 5 s; bounded either way. */
  void stop() {
    if (pid_ > 0 && !signal_and_wait(SIGTERM, 5))
      signal_and_wait(SIGKILL, 10);
  }

 private:
  bool reap(int *status) {
    pid_t r = waitpid(pid_, status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      g_spawn_close_pid(pid_);
      pid_ = -1;
      return true;
    }
    return false;
  }

  bool signal_and_wait(int sig, double seconds) {
    if (pid_ <= 0)
      return true;
    kill(pid_, sig);
    gint64 end = deadline_in(seconds);
    int status = 0;
    while (!reap(&status)) {
      if (g_get_monotonic_time() > end)
        return false;
      g_usleep(10 * 1000);
    }
    return true;
  }

  std::string address_, registry_;
  std::vector<std::string> props_;
  GPid pid_ = -1;
};

/* A child server on a fresh UNIX socket or loopback TCP port. */
std::unique_ptr<ChildServer> start_child_server(const TempDir &dir, bool tcp,
                                                const std::vector<std::string> &props = {}) {
  std::string registry = child_registry(dir);
  for (int attempt = 0; attempt < 3; attempt++) {
    std::string address = tcp ? "tcp://127.0.0.1:" + std::to_string(free_tcp_port())
                              : "unix://" + dir.path() + "/s.sock";
    auto server = std::make_unique<ChildServer>(address, registry, props);
    if (server->start())
      return server;
  }
  fail("helixframesrv in gst-launch-1.0 did not start (3 attempts)");
  return nullptr;
}

/* Frame number of a timestamp at kFps. */
gint64 index_of(GstClockTime pts) {
  fail_unless(GST_CLOCK_TIME_IS_VALID(pts));
  return gint64(gst_util_uint64_scale_round(pts, kFps, GST_SECOND));
}

/* An I420 picture, planes packed without padding. */
struct Picture {
  int w = 0, h = 0;
  std::vector<uint8_t> data;
};

Picture pack_i420(GstSample *s) {
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(s)));
  fail_unless_equals_int(GST_VIDEO_INFO_FORMAT(&info), GST_VIDEO_FORMAT_I420);
  GstVideoFrame f;
  fail_unless(gst_video_frame_map(&f, &info, gst_sample_get_buffer(s), GST_MAP_READ));
  Picture p;
  p.w = GST_VIDEO_FRAME_WIDTH(&f);
  p.h = GST_VIDEO_FRAME_HEIGHT(&f);
  for (guint c = 0; c < 3; c++) {
    int cw = GST_VIDEO_FRAME_COMP_WIDTH(&f, c), ch = GST_VIDEO_FRAME_COMP_HEIGHT(&f, c);
    const uint8_t *base = static_cast<const uint8_t *>(GST_VIDEO_FRAME_COMP_DATA(&f, c));
    int stride = GST_VIDEO_FRAME_COMP_STRIDE(&f, c);
    for (int y = 0; y < ch; y++)
      p.data.insert(p.data.end(), base + size_t(y) * stride, base + size_t(y) * stride + cw);
  }
  gst_video_frame_unmap(&f);
  return p;
}

/* PSNR over every Y, U and V sample. */
double psnr_i420(const Picture &a, const Picture &b) {
  fail_unless(a.data.size() == b.data.size());
  double se = 0;
  for (size_t i = 0; i < a.data.size(); i++) {
    double d = double(a.data[i]) - double(b.data[i]);
    se += d * d;
  }
  double mse = se / double(a.data.size());
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

/* NAL unit types of an Annex-B access unit. */
/* What vsockenc output, seen on its src pad. */
struct EncodedAu {
  gint64 index = 0;
  bool keyframe = false; /* no DELTA_UNIT flag */
  bool idr = false;      /* NAL type 5 */
  bool sps = false;      /* NAL type 7 */
  size_t bytes = 0;
  gint64 at_us = 0;      /* monotonic time it came out */
};

struct Decoded {
  gint64 index;
  int w, h;
  double psnr;
};

/* Holds streams at a given frame until open() (see Stream::Options::gate). Every wait is
 * bounded; one that ran out is remembered, and the frame then goes on. */
class Gate {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> guard(lock_);
      open_ = true;
    }
    cond_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> guard(lock_);
    double factor = g_getenv("VMD_VALGRIND") ? 5.0 : 1.0;
    auto bound = std::chrono::milliseconds(gint64(kWaitS * 1000 * factor));
    if (!cond_.wait_for(guard, bound, [this] { return open_; }))
      timed_out_ = true;
  }
  bool timed_out() const { return timed_out_; }
  static constexpr double kWaitS = 30;

 private:
  std::mutex lock_;
  std::condition_variable cond_;
  bool open_ = false;
  std::atomic<bool> timed_out_{false};
};

/* Opens the gate when leaving the scope, before the streams held at it are stopped (a held
 * source thread would make their NULL state change wait for the gate's bound). */
struct OpenOnExit {
  Gate &gate;
  ~OpenOnExit() { gate.open(); }
};

/* videotestsrc (by default SMPTE bars scrolling: edges, colours, motion) in I420 ! tee, one
 * branch through vsockenc ! h264parse ! avdec_h264 ! appsink "out", the other straight to
 * appsink "ref". Every decoded frame is compared with the input frame of the same pts. */
class Stream {
 public:
  struct Options {
    std::string address;
    int width = 320, height = 240;
    bool live = false;
    int num_buffers = -1;
    guint keyframe_interval = 60;
    guint bitrate = 0; /* vsockenc bitrate in kbit/s; 0: its default */
    double min_psnr = 35.0; /* every decoded frame against its input */
    std::string pattern = "smpte"; /* videotestsrc pattern */
    int speed = 3;                 /* videotestsrc horizontal-speed */
    /* With a gate: the source's buffer number gate_at (from 0) waits until it opens. */
    Gate *gate = nullptr;
    gint64 gate_at = -1;
    bool keep_inputs = false; /* keep a copy of every input frame (inputs()) */
    std::string label;        /* put before failure messages */
  };

  explicit Stream(const Options &o)
      : label_(o.label.empty() ? "" : o.label + ": "), keep_inputs_(o.keep_inputs),
        gate_(o.gate), gate_at_(o.gate_at), min_psnr_(o.min_psnr) {
    std::string desc =
        "videotestsrc name=vsrc pattern=" + o.pattern +
        " horizontal-speed=" + std::to_string(o.speed) + " is-live=" +
        (o.live ? "true" : "false") +
        (o.num_buffers > 0 ? " num-buffers=" + std::to_string(o.num_buffers) : "") +
        " ! capsfilter name=cf caps=" + caps_text(o.width, o.height) +
        " ! tee name=t"
        /* A short queue: a vsockenc that held frames back would stall the source. */
        " t. ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0"
        " ! vsockenc name=enc address=" + o.address +
        " timeout-ms=" + std::to_string(kEncTimeoutMs) +
        " keyframe-interval=" + std::to_string(o.keyframe_interval) +
        (o.bitrate ? " bitrate=" + std::to_string(o.bitrate) : std::string()) +
        " ! h264parse ! avdec_h264 max-errors=0 max-threads=1 direct-rendering=false"
        " ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false"
        " t. ! queue ! appsink name=ref sync=false";
    GError *err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline_ != nullptr && err == nullptr, "%s", err ? err->message : "");
    capsfilter_ = gst_bin_get_by_name(GST_BIN(pipeline_), "cf");
    out_ = gst_bin_get_by_name(GST_BIN(pipeline_), "out");
    ref_ = gst_bin_get_by_name(GST_BIN(pipeline_), "ref");
    enc_ = gst_bin_get_by_name(GST_BIN(pipeline_), "enc");
    GstPad *pad = gst_element_get_static_pad(enc_, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, this, nullptr);
    gst_object_unref(pad);
    if (gate_) {
      GstElement *vsrc = gst_bin_get_by_name(GST_BIN(pipeline_), "vsrc");
      pad = gst_element_get_static_pad(vsrc, "src");
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_source, this, nullptr);
      gst_object_unref(pad);
      gst_object_unref(vsrc);
    }
    bus_ = gst_element_get_bus(pipeline_);
    fail_unless(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }

  ~Stream() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(bus_);
    gst_object_unref(ref_);
    gst_object_unref(out_);
    gst_object_unref(capsfilter_);
    gst_object_unref(enc_);
    gst_object_unref(pipeline_);
  }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  /* Takes decoded and input frames until pred() holds (true), `end` passes or the stream
   * ended (false). Fails at once on a bus error, a decoded frame nobody sent, one of the
   * wrong size, or PSNR < 35 dB. */
  bool pump_until(gint64 end, const std::function<bool()> &pred) {
    while (!pred()) {
      check_bus();
      take_inputs(0);
      if (out_eos_ || g_get_monotonic_time() > end)
        return false;
      take_output(50 * GST_MSECOND);
    }
    return true;
  }

  /* One round of pump_until(): bus, inputs, and at most one decoded frame, waited for up to
   * `timeout`. For turns among several streams. */
  void pump_once(GstClockTime timeout) {
    check_bus();
    take_inputs(0);
    if (!out_eos_)
      take_output(timeout);
  }

  bool eos() const { return out_eos_; }

  /* Runs for `seconds` (widened under valgrind), checking what comes out. */
  void pump_for(double seconds) {
    pump_until(deadline_in(seconds), [] { return false; });
  }

  /* True once EOS came out (bounded): vsockenc drained everything before it. */
  bool wait_eos(double seconds) {
    return pump_until(deadline_in(seconds), [this] { return out_eos_; });
  }

  /* EOS from the source, then wait_eos(). */
  bool finish(double seconds) {
    gst_element_send_event(pipeline_, gst_event_new_eos());
    return wait_eos(seconds);
  }

  /* vsockenc's bitrate while playing (sent to the host as CONFIG_REQ). */
  void set_bitrate(guint kbps) { g_object_set(enc_, "bitrate", kbps, nullptr); }

  /* What a downstream element (a WebRTC peer asking for a picture) sends: an upstream
   * force-key-unit event, into vsockenc's src pad. */
  void force_key_unit() {
    GstPad *pad = gst_element_get_static_pad(enc_, "src");
    fail_unless(gst_pad_send_event(
        pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1)));
    gst_object_unref(pad);
  }

  void set_size(int w, int h) {
    GstCaps *caps = gst_caps_from_string(caps_text(w, h).c_str());
    g_object_set(capsfilter_, "caps", caps, nullptr);
    gst_caps_unref(caps);
  }

  const std::vector<Decoded> &decoded() const { return decoded_; }
  const std::string &label() const { return label_; } /* "" or "NAME: " */
  size_t inputs_seen() const { return inputs_seen_; }
  /* Every input frame by index (with keep_inputs). */
  const std::map<gint64, Picture> &inputs() const { return kept_; }
  int encoder_warnings() const { return enc_warnings_; }
  std::vector<EncodedAu> encoded() const {
    std::lock_guard<std::mutex> guard(lock_);
    return encoded_;
  }
  /* Size the input frame had. */
  std::pair<int, int> input_size(gint64 index) const {
    auto it = sizes_.find(index);
    fail_unless(it != sizes_.end(), "no input frame #%" G_GINT64_FORMAT, index);
    return it->second;
  }
  double worst_psnr() const {
    double worst = 99;
    for (auto &d : decoded_)
      worst = std::min(worst, d.psnr);
    return worst;
  }

 private:
  static std::string caps_text(int w, int h) {
    return "video/x-raw,format=I420,width=" + std::to_string(w) +
           ",height=" + std::to_string(h) + ",framerate=" + std::to_string(kFps) + "/1";
  }

  static GstPadProbeReturn on_source(GstPad *, GstPadProbeInfo *, gpointer data) {
    auto *self = static_cast<Stream *>(data);
    /* Counted, not taken from the pts: a live videotestsrc starts its timestamps at the
     * running time it started at, not at 0. Only the source's thread counts. */
    if (self->source_buffers_++ == self->gate_at_)
      self->gate_->wait();
    return GST_PAD_PROBE_OK;
  }

  static GstPadProbeReturn on_encoded(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Stream *>(data);
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    EncodedAu au;
    au.index = gint64(gst_util_uint64_scale_round(GST_BUFFER_PTS(b), kFps, GST_SECOND));
    au.keyframe = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
    au.at_us = g_get_monotonic_time();
    au.bytes = gst_buffer_get_size(b);
    GstMapInfo map;
    if (gst_buffer_map(b, &map, GST_MAP_READ)) {
      for (int t : nal_types(map.data, map.size)) {
        au.idr = au.idr || t == 5;
        au.sps = au.sps || t == 7;
      }
      gst_buffer_unmap(b, &map);
    }
    std::lock_guard<std::mutex> guard(self->lock_);
    self->encoded_.push_back(au);
    return GST_PAD_PROBE_OK;
  }

  void check_bus() {
    while (GstMessage *m = gst_bus_pop_filtered(
               bus_, GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
      GError *e = nullptr;
      gchar *dbg = nullptr;
      bool error = GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR;
      if (error)
        gst_message_parse_error(m, &e, &dbg);
      else
        gst_message_parse_warning(m, &e, &dbg);
      std::string text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) + ": " +
                         (e ? e->message : "") + " (" + (dbg ? dbg : "") + ")";
      if (!error && g_strcmp0(GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), "enc") == 0)
        enc_warnings_++;
      g_clear_error(&e);
      g_free(dbg);
      gst_message_unref(m);
      g_print("%s: %s\n", error ? "ERROR" : "warning", text.c_str());
      fail_if(error, "%s", text.c_str());
    }
  }

  void take_inputs(GstClockTime timeout) {
    while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(ref_), timeout)) {
      timeout = 0;
      gint64 index = index_of(GST_BUFFER_PTS(gst_sample_get_buffer(s)));
      Picture p = pack_i420(s);
      gst_sample_unref(s);
      sizes_[index] = {p.w, p.h};
      if (keep_inputs_)
        kept_[index] = p;
      inputs_[index] = std::move(p);
      inputs_seen_++;
    }
  }

  void take_output(GstClockTime timeout) {
    if (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(out_), timeout))
      take_decoded(s);
    else if (gst_app_sink_is_eos(GST_APP_SINK(out_)))
      out_eos_ = true;
  }

  void take_decoded(GstSample *s) {
    gint64 index = index_of(GST_BUFFER_PTS(gst_sample_get_buffer(s)));
    Picture p = pack_i420(s);
    gst_sample_unref(s);
    /* The input went to the other branch at the same moment; allow for scheduling. */
    gint64 end = deadline_in(10);
    while (inputs_.find(index) == inputs_.end() && g_get_monotonic_time() < end)
      take_inputs(50 * GST_MSECOND);
    auto it = inputs_.find(index);
    fail_unless(it != inputs_.end(), "decoded frame #%" G_GINT64_FORMAT " was never sent",
                index);
    fail_unless(p.w == it->second.w && p.h == it->second.h,
                "frame #%" G_GINT64_FORMAT " decoded at %dx%d, sent at %dx%d", index, p.w, p.h,
                it->second.w, it->second.h);
    double q = psnr_i420(it->second, p);
    decoded_.push_back({index, p.w, p.h, q});
    fail_unless(q >= min_psnr_, "%sframe #%" G_GINT64_FORMAT " (%dx%d): PSNR %.1f dB < %.0f",
                label_.c_str(), index, p.w, p.h, q, min_psnr_);
    /* Output is in input order: what came before this frame will not be asked for. */
    inputs_.erase(inputs_.begin(), std::next(it));
  }

  GstElement *pipeline_ = nullptr, *capsfilter_ = nullptr, *out_ = nullptr, *ref_ = nullptr;
  GstElement *enc_ = nullptr;
  GstBus *bus_ = nullptr;
  std::map<gint64, Picture> inputs_;
  std::string label_;
  bool keep_inputs_ = false;
  std::map<gint64, Picture> kept_;
  Gate *gate_ = nullptr;
  gint64 gate_at_ = -1;
  double min_psnr_ = 35.0;
  gint64 source_buffers_ = 0;
  std::map<gint64, std::pair<int, int>> sizes_;
  size_t inputs_seen_ = 0;
  std::vector<Decoded> decoded_;
  bool out_eos_ = false;
  int enc_warnings_ = 0;
  mutable std::mutex lock_;
  std::vector<EncodedAu> encoded_;
};

/* vsockenc's output as a decoder needs it: the first access unit, every one that follows a
 * gap (frames dropped before it) and every one that starts a new size is an IDR with SPS and
 * flagged as a keyframe; the flag always matches the NAL types. Returns the number of gaps. */
int check_keyframes(const Stream &st, const std::vector<EncodedAu> &aus) {
  fail_unless(!aus.empty());
  int gaps = 0;
  for (size_t i = 0; i < aus.size(); i++) {
    const EncodedAu &a = aus[i];
    fail_unless(a.keyframe == a.idr, "%sAU #%" G_GINT64_FORMAT ": keyframe flag %d, IDR NAL %d",
                st.label().c_str(), a.index, a.keyframe, a.idr);
    bool gap = i > 0 && a.index != aus[i - 1].index + 1;
    fail_unless(i == 0 || a.index > aus[i - 1].index, "AU #%" G_GINT64_FORMAT " after #%"
                G_GINT64_FORMAT, a.index, aus[i - 1].index);
    bool new_size = i > 0 && st.input_size(a.index) != st.input_size(aus[i - 1].index);
    if (i == 0 || gap || new_size)
      fail_unless(a.keyframe && a.idr && a.sps,
                  "AU #%" G_GINT64_FORMAT " (%s) is not an IDR with SPS (flag %d, IDR %d, SPS %d)",
                  a.index, i == 0 ? "first" : gap ? "after a gap" : "new size", a.keyframe,
                  a.idr, a.sps);
    gaps += gap ? 1 : 0;
  }
  return gaps;
}

/* Every access unit decoded, none rejected or lost by the decoder. */
void check_all_decoded(const Stream &st, const std::vector<EncodedAu> &aus) {
  fail_unless_equals_int(int(st.decoded().size()), int(aus.size()));
  for (size_t i = 0; i < aus.size(); i++)
    fail_unless(st.decoded()[i].index == aus[i].index, "decoded #%" G_GINT64_FORMAT
                " where #%" G_GINT64_FORMAT " was sent", st.decoded()[i].index, aus[i].index);
}

/* Turns among the streams (each waits up to 5 ms for a decoded frame) until pred() holds
 * (true) or `end` passes (false). */
bool pump_all_until(const std::vector<std::unique_ptr<Stream>> &streams, gint64 end,
                    const std::function<bool()> &pred) {
  while (!pred()) {
    if (g_get_monotonic_time() > end)
      return false;
    for (auto &st : streams)
      st->pump_once(5 * GST_MSECOND);
  }
  return true;
}

std::string decoded_counts(const std::vector<std::unique_ptr<Stream>> &streams) {
  std::string text;
  for (auto &st : streams)
    text += (text.empty() ? "" : " ") + std::to_string(st->decoded().size()) + "/" +
            std::to_string(st->encoded().size()) + "/" + std::to_string(st->inputs_seen());
  return text;
}

/* A raw connection to unix://PATH of a server that is full: it is sent ERROR -99 (INTERNAL)
 * naming max-clients=N (a whole 12 + 260 byte message), then closed, all within 10 s. */
void check_refused(const std::string &address, unsigned max_clients) {
  fail_unless(g_str_has_prefix(address.c_str(), "unix://"), "%s", address.c_str());
  std::string path = address.substr(strlen("unix://"));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  fail_unless(path.size() < sizeof sa.sun_path);
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  fail_unless(fd.fd >= 0 && connect(fd.fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0,
              "connect %s: %s", path.c_str(), g_strerror(errno));
  std::vector<uint8_t> got;
  bool closed = false;
  gint64 end = deadline_in(10);
  while (!closed) {
    gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
    fail_unless(left_ms > 0, "ninth connection: %zu bytes and no close within 10 s", got.size());
    pollfd p{fd.fd, POLLIN, 0};
    if (poll(&p, 1, int(left_ms)) <= 0)
      continue;
    uint8_t buf[512];
    ssize_t n = read(fd.fd, buf, sizeof buf);
    fail_unless(n >= 0 || errno == EINTR || errno == ECONNRESET, "read: %s", g_strerror(errno));
    closed = n == 0 || (n < 0 && errno == ECONNRESET);
    if (n > 0)
      got.insert(got.end(), buf, buf + n);
  }
  auto le32 = [&](size_t at) {
    return uint32_t(got[at]) | uint32_t(got[at + 1]) << 8 | uint32_t(got[at + 2]) << 16 |
           uint32_t(got[at + 3]) << 24;
  };
  fail_unless_equals_int(int(got.size()), 12 + 260); /* one ERROR, nothing else */
  fail_unless(le32(0) == 0x52465848 && got[4] == 0xff && le32(8) == 260,
              "ninth connection: not an ERROR header (type 0x%02x)", got[4]);
  int32_t code = int32_t(le32(12));
  std::string text(reinterpret_cast<const char *>(&got[16]), strnlen(
      reinterpret_cast<const char *>(&got[16]), 256));
  fail_unless(code == -99, "ninth connection: ERROR %d (%s), expected -99", int(code),
              text.c_str());
  std::string expected = "max-clients=" + std::to_string(max_clients);
  fail_unless(text.find(expected) != std::string::npos, "ninth connection: \"%s\"", text.c_str());
  g_print("ninth connection refused: ERROR %d \"%s\"\n", int(code), text.c_str());
}

void run_two_processes(bool tcp) {
  if (!have_codecs())
    return;
  constexpr int kCount = 60;
  TempDir dir;
  auto server = start_child_server(dir, tcp);
  Stream::Options o;
  o.address = server->address();
  o.num_buffers = kCount;
  Stream st(o);
  fail_unless(st.wait_eos(40), "no EOS within 40 s: %zu frames decoded", st.decoded().size());
  auto aus = st.encoded();
  /* Every frame, in order. */
  fail_unless_equals_int(int(st.decoded().size()), kCount);
  for (int i = 0; i < kCount; i++)
    fail_unless_equals_int64(st.decoded()[size_t(i)].index, i);
  check_all_decoded(st, aus);
  fail_unless_equals_int(check_keyframes(st, aus), 0);
  g_print("two processes, %s: %d frames, worst PSNR %.1f dB\n", server->address().c_str(),
          kCount, st.worst_psnr());
  fail_unless_equals_int(st.encoder_warnings(), 0);
}

}  // namespace

GST_START_TEST(test_unix) {
  gchar *dir = g_dir_make_tmp("helix-e2e-XXXXXX", nullptr);
  run_e2e(std::string("unix://") + dir + "/helix.sock", false);
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

GST_START_TEST(test_tcp) { run_e2e("tcp://127.0.0.1:0", true); }
GST_END_TEST;

/* Both ends with the same token: served as without one. With another token, the host refuses
 * the client: vsockenc warns that the token was refused and outputs nothing. (timeout-ms, which
 * bounds the HELLO wait with a token, is 5 s: under valgrind on a loaded machine the server
 * once answered after more than 1 s, and vsockenc took it for a v1 host.) */
GST_START_TEST(test_token) {
  run_e2e("tcp://127.0.0.1:0", true, "token=e2e-s3cret", "token=e2e-s3cret");
  if (!have_codecs())
    return;
  GError *err = nullptr;
  GstElement *server =
      gst_parse_launch("helixframesrv name=srv address=tcp://127.0.0.1:0 token=e2e-s3cret", &err);
  fail_unless(server != nullptr, "%s", err ? err->message : "");
  fail_unless(gst_element_set_state(server, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  std::string desc = "appsrc name=src format=time caps=video/x-raw,format=BGRx,width=" +
                     std::to_string(kW) + ",height=" + std::to_string(kH) +
                     ",framerate=30/1 ! vsockenc address=" + bound_tcp_address(server) +
                     " token=wr0ng-t0ken-x9 timeout-ms=5000 ! appsink name=sink sync=false";
  GstElement *src = nullptr, *sink = nullptr;
  GstElement *client = play_client(desc, &src, &sink);
  for (int i = 0; i < 10; i++) {
    push_frame(src, make_frame(i), i);
  }
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  int outputs = 0;
  while (GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 5 * GST_SECOND)) {
    outputs++;
    gst_sample_unref(s);
  }
  fail_unless_equals_int(outputs, 0);
  GstBus *bus = gst_element_get_bus(client);
  bool refused = false;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *w = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_warning(m, &w, &dbg);
    const std::string text = std::string(w->message) + " " + (dbg ? dbg : "");
    refused = refused || text.find("refused the token") != std::string::npos;
    fail_unless(text.find("wr0ng-t0ken-x9") == std::string::npos, "the token was logged: %s", text.c_str());
    fail_unless(text.find("e2e-s3cret") == std::string::npos, "the token was logged");
    g_error_free(w);
    g_free(dbg);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  fail_unless(refused, "no warning that the host refused the token");
  gst_element_set_state(client, GST_STATE_NULL);
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(client);
  gst_object_unref(server);
}
GST_END_TEST;

GST_START_TEST(test_two_processes_unix) { run_two_processes(false); }
GST_END_TEST;

GST_START_TEST(test_two_processes_tcp) { run_two_processes(true); }
GST_END_TEST;

/* The host crashes (kill -9) mid-stream and comes back on the same socket: vsockenc says so
 * once, drops frames meanwhile without holding upstream, reconnects within its backoff and
 * timeout, resumes with an IDR, and everything it outputs decodes. */
GST_START_TEST(test_server_restart) {
  if (!have_codecs())
    return;
  TempDir dir;
  auto server = start_child_server(dir, false);
  Stream::Options o;
  o.address = server->address();
  o.live = true;
  o.keyframe_interval = 0; /* IDRs only where the stream needs them */
  Stream st(o);
  fail_unless(st.pump_until(deadline_in(30), [&] { return st.decoded().size() >= 30; }),
              "only %zu frames decoded in 30 s", st.decoded().size());

  server->kill_hard();
  size_t inputs_at_kill = st.inputs_seen();
  /* Upstream keeps running through the outage (1 s of frames), reported by one warning. */
  fail_unless(st.pump_until(deadline_in(20), [&] {
    return st.encoder_warnings() >= 1 && st.inputs_seen() >= inputs_at_kill + kFps;
  }), "after the kill: %d warnings, %zu frames went in", st.encoder_warnings(),
              st.inputs_seen() - inputs_at_kill);
  size_t aus_before = st.encoded().size();
  size_t decoded_before = st.decoded().size();

  fail_unless(server->start(), "the server did not come back");
  gint64 ready_us = g_get_monotonic_time();
  /* The next attempt comes within the backoff (at most 2 s); connecting, HELLO and the first
   * answer within timeout-ms. Plus slack for a loaded machine. */
  double bound_s = (kEncTimeoutMs + kBackoffMaxMs) / 1000.0 + 10;
  fail_unless(st.pump_until(deadline_in(bound_s), [&] { return st.encoded().size() > aus_before; }),
              "no output %.0f s after the server came back", bound_s);
  EncodedAu first = st.encoded()[aus_before];
  g_print("restart: first access unit (#%" G_GINT64_FORMAT ") %.2f s after the server "
          "listened again\n", first.index, double(first.at_us - ready_us) / G_USEC_PER_SEC);
  fail_unless(first.keyframe && first.idr && first.sps,
              "first AU after the restart: keyframe %d, IDR %d, SPS %d", first.keyframe,
              first.idr, first.sps);
  fail_unless(
      st.pump_until(deadline_in(30), [&] { return st.decoded().size() >= decoded_before + 30; }),
      "only %zu frames decoded after the restart", st.decoded().size() - decoded_before);

  fail_unless(st.finish(30), "no EOS within 30 s");
  auto aus = st.encoded();
  check_all_decoded(st, aus);
  fail_unless(check_keyframes(st, aus) >= 1, "no frame was dropped during the outage");
  fail_unless(std::any_of(aus.begin(), aus.end(), [](const EncodedAu &a) { return !a.idr; }),
              "no P frames: the IDR checks prove nothing");
  fail_unless_equals_int(st.encoder_warnings(), 1); /* one per outage */
  g_print("restart: %zu frames decoded, worst PSNR %.1f dB\n", st.decoded().size(),
          st.worst_psnr());
}
GST_END_TEST;

/* vsockenc's controls reach the real host: a bitrate change while playing (CONFIG_REQ)
 * changes the size of what comes back, and a force-key-unit event from downstream gives an
 * IDR after the request (a few frames later: those already queued or in flight), the only one
 * after the first frame. */
GST_START_TEST(test_bitrate_and_force_keyframe) {
  if (!have_codecs())
    return;
  TempDir dir;
  auto server = start_child_server(dir, false);
  Stream::Options o;
  o.address = server->address();
  /* Not live: a live source under valgrind skips frames, and a gap rightly brings an IDR. */
  o.keyframe_interval = 0;
  o.bitrate = 4000;
  /* 1000 kbit/s is deliberately tight for this content (34-36 dB): the test is about the
   * size, so the quality bound is looser here. */
  o.min_psnr = 30.0;
  Stream st(o);
  fail_unless(st.pump_until(deadline_in(30), [&] { return st.encoded().size() >= 45; }),
              "only %zu frames encoded in 30 s", st.encoded().size());
  const size_t at_change = st.encoded().size();
  st.set_bitrate(1000);
  fail_unless(st.pump_until(deadline_in(30), [&] { return st.encoded().size() >= at_change + 60; }),
              "only %zu frames encoded after the bitrate change", st.encoded().size() - at_change);
  const size_t at_request = st.encoded().size();
  st.force_key_unit();
  fail_unless(
      st.pump_until(deadline_in(30), [&] { return st.encoded().size() >= at_request + 20; }),
      "only %zu frames encoded after the keyframe request", st.encoded().size() - at_request);
  fail_unless(st.finish(30), "no EOS within 30 s");
  auto aus = st.encoded();
  check_all_decoded(st, aus);
  fail_unless_equals_int(check_keyframes(st, aus), 0);

  /* Mean P-frame size before (frames 10..44) and well after the change (allowing the rate
   * control 15 frames to settle). */
  auto mean_p = [&](size_t from, size_t to) {
    double sum = 0;
    int n = 0;
    for (size_t i = from; i < to && i < aus.size(); i++)
      if (!aus[i].idr) {
        sum += double(aus[i].bytes);
        n++;
      }
    fail_unless(n > 0);
    return sum / n;
  };
  const double high = mean_p(10, at_change), low = mean_p(at_change + 20, at_change + 60);
  g_print("bitrate 4000 -> 1000 kbit/s: mean P-frame %.0f -> %.0f bytes\n", high, low);
  /* Measured 7.9 -> 4.4 kB (0.56); unchanged would be about 1. */
  fail_unless(low < 0.75 * high, "bitrate change: mean P-frame %.0f -> %.0f bytes", high, low);

  /* The requested IDR: the only one after the first frame, after the request point (a few
   * frames later: those already queued or in flight; the bound is loose because the source
   * is not live and runs on while this thread may wait for a core). */
  std::vector<size_t> idrs;
  for (size_t i = 1; i < aus.size(); i++)
    if (aus[i].idr)
      idrs.push_back(i);
  fail_unless_equals_int(int(idrs.size()), 1);
  fail_unless(idrs[0] >= at_request && idrs[0] < at_request + 40,
              "the IDR came at frame %zu, the request at %zu", idrs[0], at_request);
  fail_unless(aus[idrs[0]].keyframe && aus[idrs[0]].sps);
  g_print("force-key-unit at frame %zu: IDR at frame %zu\n", at_request, idrs[0]);
}
GST_END_TEST;

/* The guest's resolution changes mid-stream (up, then down to a third size): each new size
 * starts with an IDR and decodes at that size, no frame lost. */
GST_START_TEST(test_resolution_change) {
  if (!have_codecs())
    return;
  TempDir dir;
  auto server = start_child_server(dir, false);
  Stream::Options o;
  o.address = server->address();
  o.keyframe_interval = 0;
  Stream st(o);
  auto count_at = [&](int w, int h) {
    return size_t(std::count_if(st.decoded().begin(), st.decoded().end(),
                                [&](const Decoded &d) { return d.w == w && d.h == h; }));
  };
  fail_unless(st.pump_until(deadline_in(30), [&] { return count_at(320, 240) >= 20; }),
              "only %zu frames at 320x240", count_at(320, 240));
  st.set_size(640, 480);
  fail_unless(st.pump_until(deadline_in(30), [&] { return count_at(640, 480) >= 20; }),
              "only %zu frames at 640x480", count_at(640, 480));
  st.set_size(353, 287);
  fail_unless(st.pump_until(deadline_in(30), [&] { return count_at(353, 287) >= 20; }),
              "only %zu frames at 353x287", count_at(353, 287));
  fail_unless(st.finish(30), "no EOS within 30 s");

  auto aus = st.encoded();
  check_all_decoded(st, aus);
  fail_unless_equals_int(check_keyframes(st, aus), 0);
  for (size_t i = 0; i < st.decoded().size(); i++)
    fail_unless_equals_int64(st.decoded()[i].index, gint64(i)); /* none lost */
  /* The sizes came in this order, each once. */
  std::vector<std::pair<int, int>> order;
  for (auto &d : st.decoded())
    if (order.empty() || order.back() != std::make_pair(d.w, d.h))
      order.emplace_back(d.w, d.h);
  fail_unless_equals_int(int(order.size()), 3);
  fail_unless(order[1] == std::make_pair(640, 480) && order[2] == std::make_pair(353, 287));
  std::string idrs;
  for (auto &a : aus)
    if (a.idr)
      idrs += " #" + std::to_string(a.index);
  g_print("resolution change: %zu frames, IDRs at%s, worst PSNR %.1f dB\n", st.decoded().size(),
          idrs.c_str(), st.worst_psnr());
}
GST_END_TEST;

/* Eight vsockenc pipelines stream to one helixframesrv at the same time. The server runs in
 * a child gst-launch-1.0 like a real host, so its eight client sessions and x264 encoders are
 * one process, apart from the eight clients here. Each client has its own picture (pattern,
 * and scroll speed where the pattern scrolls; checked to be far apart, so a frame served to
 * the wrong client would fail its PSNR bound). To make them overlap for sure, every source
 * holds its frame kGateAt (counting from 0) until all eight have decoded their first kGateAt
 * frames: all are then connected and mid-stream at once, and the server (max-clients=8) must
 * refuse a ninth connection. Then all run to EOS: each decodes every frame in order, starting
 * with an IDR, at PSNR >= 35 dB against its own input, with no bus error and no vsockenc
 * warning. "colors" is there because x264 codes it as non-IDR I pictures, which a host must
 * not flag as keyframes (HXFR's is_keyframe means IDR). */
GST_START_TEST(test_eight_vsockenc_clients) {
  if (!have_codecs())
    return;
  constexpr int kClients = 8, kCount = 20, kGateAt = 10;
  const char *const kPatterns[kClients] = {"smpte",  "ball",     "pinwheel", "checkers-8",
                                           "spokes", "colors",   "gradient", "checkers-4"};
  TempDir dir;
  auto server = start_child_server(dir, false, {"max-clients=" + std::to_string(kClients)});
  gint64 start_us = g_get_monotonic_time();

  Gate gate;
  std::vector<std::unique_ptr<Stream>> streams;
  OpenOnExit opener{gate}; /* destroyed before the streams */
  for (int i = 0; i < kClients; i++) {
    Stream::Options o;
    o.address = server->address();
    /* Not 192x128: there x264 (sliced threads, as zerolatency sets) makes a first IDR of
     * about 14 dB out of SMPTE bars, with or without helix in between. */
    o.width = 176;
    o.height = 144;
    o.live = true;
    o.num_buffers = kCount;
    o.pattern = kPatterns[i];
    o.speed = i + 1;
    o.gate = &gate;
    o.gate_at = kGateAt;
    o.keep_inputs = true;
    o.label = "client " + std::to_string(i) + " (" + kPatterns[i] + ")";
    streams.push_back(std::make_unique<Stream>(o));
  }

  auto all = [&](const std::function<bool(const Stream &)> &f) {
    return std::all_of(streams.begin(), streams.end(), [&](auto &st) { return f(*st); });
  };
  fail_unless(pump_all_until(streams, deadline_in(20), [&] {
    return all([](const Stream &st) { return st.decoded().size() >= size_t(kGateAt); });
  }), "frames decoded before the gate (need %d each): %s", kGateAt,
              decoded_counts(streams).c_str());
  gint64 gate_us = g_get_monotonic_time();
  /* The gate held: nobody is past its frame kGateAt-1, so all eight are mid-stream now. */
  for (auto &st : streams)
    fail_unless(st->decoded().size() == size_t(kGateAt) && !st->eos(),
                "a stream got past the gate: %s", decoded_counts(streams).c_str());
  check_refused(server->address(), kClients);

  gate.open();
  fail_unless(pump_all_until(streams, deadline_in(20),
                             [&] { return all([](const Stream &st) { return st.eos(); }); }),
              "not every stream reached EOS within 20 s; frames decoded: %s",
              decoded_counts(streams).c_str());
  fail_if(gate.timed_out(), "a source waited out the gate's bound");
  gint64 end_us = g_get_monotonic_time();

  double worst = 99;
  for (int i = 0; i < kClients; i++) {
    const Stream &st = *streams[size_t(i)];
    auto aus = st.encoded();
    /* Every input frame decoded, in order (the indices count from the live source's first
     * timestamp, which is not 0). */
    fail_unless_equals_int(int(st.inputs().size()), kCount);
    fail_unless_equals_int(int(st.decoded().size()), kCount);
    auto in = st.inputs().begin();
    for (int k = 0; k < kCount; k++, ++in)
      fail_unless(st.decoded()[size_t(k)].index == in->first,
                  "%sdecoded #%" G_GINT64_FORMAT " where #%" G_GINT64_FORMAT " was sent",
                  st.label().c_str(), st.decoded()[size_t(k)].index, in->first);
    check_all_decoded(st, aus);
    fail_unless_equals_int(check_keyframes(st, aus), 0); /* first an IDR with SPS, no gaps */
    fail_unless(std::any_of(aus.begin(), aus.end(), [](const EncodedAu &a) { return !a.idr; }),
                "client %d: no P frames", i);
    fail_unless(st.encoder_warnings() == 0, "client %d: %d vsockenc warnings", i,
                st.encoder_warnings());
    worst = std::min(worst, st.worst_psnr());
  }

  /* Any picture of one client is far from any picture of another, so a frame served to the
   * wrong client would fail the 35 dB bound. (Each client's distinct pictures only: most
   * patterns are still or repeat.) */
  std::vector<std::vector<const Picture *>> distinct(kClients);
  for (int i = 0; i < kClients; i++)
    for (auto &in : streams[size_t(i)]->inputs()) {
      auto &mine = distinct[size_t(i)];
      if (std::none_of(mine.begin(), mine.end(),
                       [&](const Picture *p) { return p->data == in.second.data; }))
        mine.push_back(&in.second);
    }
  double closest = 0;
  for (int i = 0; i < kClients; i++)
    for (int j = i + 1; j < kClients; j++)
      for (const Picture *a : distinct[size_t(i)])
        for (const Picture *b : distinct[size_t(j)]) {
          double q = psnr_i420(*a, *b);
          closest = std::max(closest, q);
          fail_unless(q < 25.0, "clients %d (%s) and %d (%s) sent alike pictures: %.1f dB", i,
                      kPatterns[i], j, kPatterns[j], q);
        }
  g_print("eight clients: %d frames each, worst PSNR %.1f dB, closest two clients' inputs "
          "%.1f dB; all mid-stream %.2f s after start, all done %.2f s after start\n",
          kCount, worst, closest, double(gate_us - start_us) / G_USEC_PER_SEC,
          double(end_us - start_us) / G_USEC_PER_SEC);
}
GST_END_TEST;

static Suite *helix_e2e_suite() {
  Suite *s = suite_create("helix-e2e");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unix);
  tcase_add_test(tc, test_tcp);
  tcase_add_test(tc, test_token);
  tcase_add_test(tc, test_two_processes_unix);
  tcase_add_test(tc, test_two_processes_tcp);
  tcase_add_test(tc, test_server_restart);
  tcase_add_test(tc, test_resolution_change);
  tcase_add_test(tc, test_bitrate_and_force_keyframe);
  tcase_add_test(tc, test_eight_vsockenc_clients);
  return s;
}

GST_CHECK_MAIN(helix_e2e);
