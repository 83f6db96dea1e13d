/* vsockenc (guest) against helixframesrv (host), real elements on both ends:
 * - in one process, over UNIX and TCP sockets: known frames go out as pixel uploads, come
 *   back as H.264 from the host's encoder (x264enc here) and decode with avdec_h264 to within
 *   PSNR 35 dB of what was sent, in order, none lost;
 * - across two processes: helixframesrv runs alone in a child `gst-launch-1.0` (pixel uploads
 *   only, no sink pad linked), a moving videotestsrc pattern goes through vsockenc here;
 * - the server killed (-9) and restarted mid-stream: vsockenc reconnects within its bounds,
 *   the first access unit after the outage is an IDR, decoding goes on;
 * - a resolution change mid-stream: the new size decodes, starting at an IDR.
 * Every decoded frame is compared (I420 planes) with the input frame of the same pts. */
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

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

void run_e2e(const std::string &server_address, bool tcp) {
  if (!gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0) ||
      !gst_registry_check_feature_version(gst_registry_get(), "avdec_h264", 1, 0, 0)) {
    g_print("SKIP: x264enc or avdec_h264 missing\n");
    return;
  }
  GError *err = nullptr;
  std::string srv_desc = "helixframesrv name=srv address=" + server_address;
  GstElement *server = gst_parse_launch(srv_desc.c_str(), &err);
  fail_unless(server != nullptr, "%s", err ? err->message : "");
  fail_unless(gst_element_set_state(server, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  std::string client_address = server_address;
  if (tcp) {
    GstElement *srv = gst_bin_get_by_name(GST_BIN(server), "srv");
    guint port = 0;
    g_object_get(srv ? srv : server, "bound-port", &port, nullptr);
    if (srv)
      gst_object_unref(srv);
    fail_unless(port > 0);
    client_address = "tcp://127.0.0.1:" + std::to_string(port);
  }

  std::string desc = "appsrc name=src format=time caps=video/x-raw,format=BGRx,width=" +
                     std::to_string(kW) + ",height=" + std::to_string(kH) +
                     ",framerate=30/1 ! vsockenc address=" + client_address +
                     " timeout-ms=5000 ! h264parse ! avdec_h264 direct-rendering=false max-threads=1"
                     " ! videoconvert ! video/x-raw,format=BGRx ! appsink name=sink sync=false";
  GstElement *client = gst_parse_launch(desc.c_str(), &err);
  fail_unless(client != nullptr, "%s", err ? err->message : "");
  GstElement *src = gst_bin_get_by_name(GST_BIN(client), "src");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(client), "sink");
  fail_unless(gst_element_set_state(client, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < kFrames; i++) {
    sent.push_back(make_frame(i));
    GstBuffer *buf = gst_buffer_new_memdup(sent.back().data(), sent.back().size());
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(i, GST_SECOND, 30);
    GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
    fail_unless(gst_app_src_push_buffer(GST_APP_SRC(src), buf) == GST_FLOW_OK);
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
  ChildServer(std::string address, std::string registry)
      : address_(std::move(address)), registry_(std::move(registry)) {}
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
    const gchar *argv[] = {launch, "-q", "helixframesrv", address_arg.c_str(), nullptr};
    gchar **envp = g_get_environ();
    envp = g_environ_setenv(envp, "GST_REGISTRY_1_0", registry_.c_str(), TRUE);
    GError *err = nullptr;
    GPid pid = 0;
    gboolean ok = g_spawn_async(nullptr, const_cast<gchar **>(argv), envp,
                                G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, nullptr, &pid, &err);
    std::string why = err ? err->message : "";
    g_clear_error(&err);
    g_strfreev(envp);
    g_free(launch);
    fail_unless(ok, "spawning gst-launch-1.0: %s", why.c_str());
    pid_ = pid;
    gint64 end = deadline_in(30);
    while (!accepts(address_)) {
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
  GPid pid_ = -1;
};

/* A child server on a fresh UNIX socket or loopback TCP port. */
std::unique_ptr<ChildServer> start_child_server(const TempDir &dir, bool tcp) {
  std::string registry = child_registry(dir);
  for (int attempt = 0; attempt < 3; attempt++) {
    std::string address = tcp ? "tcp://127.0.0.1:" + std::to_string(free_tcp_port())
                              : "unix://" + dir.path() + "/s.sock";
    auto server = std::make_unique<ChildServer>(address, registry);
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
std::vector<int> nal_types(const uint8_t *au, size_t size) {
  std::vector<int> t;
  for (size_t i = 0; i + 3 < size; i++) {
    if (au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1) {
      t.push_back(au[i + 3] & 0x1f);
      i += 2;
    }
  }
  return t;
}

/* What vsockenc output, seen on its src pad. */
struct EncodedAu {
  gint64 index = 0;
  bool keyframe = false; /* no DELTA_UNIT flag */
  bool idr = false;      /* NAL type 5 */
  bool sps = false;      /* NAL type 7 */
  gint64 at_us = 0;      /* monotonic time it came out */
};

struct Decoded {
  gint64 index;
  int w, h;
  double psnr;
};

/* videotestsrc (SMPTE bars scrolling: edges, colours, motion) in I420 ! tee, one branch
 * through vsockenc ! h264parse ! avdec_h264 ! appsink "out", the other straight to appsink
 * "ref". Every decoded frame is compared with the input frame of the same pts. */
class Stream {
 public:
  struct Options {
    std::string address;
    int width = 320, height = 240;
    bool live = false;
    int num_buffers = -1;
    guint keyframe_interval = 60;
  };

  explicit Stream(const Options &o) {
    std::string desc =
        std::string("videotestsrc pattern=smpte horizontal-speed=3 is-live=") +
        (o.live ? "true" : "false") +
        (o.num_buffers > 0 ? " num-buffers=" + std::to_string(o.num_buffers) : "") +
        " ! capsfilter name=cf caps=" + caps_text(o.width, o.height) +
        " ! tee name=t"
        /* A short queue: a vsockenc that held frames back would stall the source. */
        " t. ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0"
        " ! vsockenc name=enc address=" + o.address +
        " timeout-ms=" + std::to_string(kEncTimeoutMs) +
        " keyframe-interval=" + std::to_string(o.keyframe_interval) +
        " ! h264parse ! avdec_h264 max-errors=0 max-threads=1 direct-rendering=false"
        " ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false"
        " t. ! queue ! appsink name=ref sync=false";
    GError *err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline_ != nullptr && err == nullptr, "%s", err ? err->message : "");
    capsfilter_ = gst_bin_get_by_name(GST_BIN(pipeline_), "cf");
    out_ = gst_bin_get_by_name(GST_BIN(pipeline_), "out");
    ref_ = gst_bin_get_by_name(GST_BIN(pipeline_), "ref");
    GstElement *enc = gst_bin_get_by_name(GST_BIN(pipeline_), "enc");
    GstPad *pad = gst_element_get_static_pad(enc, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(enc);
    bus_ = gst_element_get_bus(pipeline_);
    fail_unless(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }

  ~Stream() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(bus_);
    gst_object_unref(ref_);
    gst_object_unref(out_);
    gst_object_unref(capsfilter_);
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
      GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(out_), 50 * GST_MSECOND);
      if (s)
        take_decoded(s);
      else if (gst_app_sink_is_eos(GST_APP_SINK(out_)))
        out_eos_ = true;
    }
    return true;
  }

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

  void set_size(int w, int h) {
    GstCaps *caps = gst_caps_from_string(caps_text(w, h).c_str());
    g_object_set(capsfilter_, "caps", caps, nullptr);
    gst_caps_unref(caps);
  }

  const std::vector<Decoded> &decoded() const { return decoded_; }
  size_t inputs_seen() const { return inputs_seen_; }
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

  static GstPadProbeReturn on_encoded(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Stream *>(data);
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    EncodedAu au;
    au.index = gint64(gst_util_uint64_scale_round(GST_BUFFER_PTS(b), kFps, GST_SECOND));
    au.keyframe = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
    au.at_us = g_get_monotonic_time();
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
      inputs_[index] = std::move(p);
      inputs_seen_++;
    }
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
    fail_unless(q >= 35.0, "frame #%" G_GINT64_FORMAT " (%dx%d): PSNR %.1f dB < 35", index,
                p.w, p.h, q);
    /* Output is in input order: what came before this frame will not be asked for. */
    inputs_.erase(inputs_.begin(), std::next(it));
  }

  GstElement *pipeline_ = nullptr, *capsfilter_ = nullptr, *out_ = nullptr, *ref_ = nullptr;
  GstBus *bus_ = nullptr;
  std::map<gint64, Picture> inputs_;
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
    fail_unless(a.keyframe == a.idr, "AU #%" G_GINT64_FORMAT ": keyframe flag %d, IDR NAL %d",
                a.index, a.keyframe, a.idr);
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
  st.set_size(352, 288);
  fail_unless(st.pump_until(deadline_in(30), [&] { return count_at(352, 288) >= 20; }),
              "only %zu frames at 352x288", count_at(352, 288));
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
  fail_unless(order[1] == std::make_pair(640, 480) && order[2] == std::make_pair(352, 288));
  std::string idrs;
  for (auto &a : aus)
    if (a.idr)
      idrs += " #" + std::to_string(a.index);
  g_print("resolution change: %zu frames, IDRs at%s, worst PSNR %.1f dB\n", st.decoded().size(),
          idrs.c_str(), st.worst_psnr());
}
GST_END_TEST;

static Suite *helix_e2e_suite() {
  Suite *s = suite_create("helix-e2e");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unix);
  tcase_add_test(tc, test_tcp);
  tcase_add_test(tc, test_two_processes_unix);
  tcase_add_test(tc, test_two_processes_tcp);
  tcase_add_test(tc, test_server_restart);
  tcase_add_test(tc, test_resolution_change);
  return s;
}

GST_CHECK_MAIN(helix_e2e);
