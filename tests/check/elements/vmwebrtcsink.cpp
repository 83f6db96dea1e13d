/* vmwebrtcsink without a browser: a WHEP viewer made of webrtcbin (tests/check/support/
 * whep-client) against the real element, over real sockets on 127.0.0.1:
 * - raw video is encoded once and plays (size, colour); H.264 input is passed through;
 * - WHEP conformance: OPTIONS, 201 + Location + answer, DELETE 200/404, 401 without the
 *   token, 415, 400 for a bad offer, 503 for a full house (max-viewers);
 * - the `input` data channel: control granted, pointer / button / wheel / key / resize /
 *   pointer-rel arrive upstream as navigation and qemu-ui-info events, ping -> pong, the
 *   qemu-cursor event reaches the viewer as cursor and cursor-pos messages;
 * - control=viewer1: the viewer2 viewer is told view-only and its input is dropped, and gets
 *   control when the viewer1 leaves;
 * - 30 viewers come and go (DELETE and abrupt close): no webrtcbin is left in the bin, every
 *   one is finalized (the application's bus is never popped here), and the RSS growth after
 *   a warm-up viewer is printed and bounded.
 */
#include "crash-trace.h"
#include "doc-check.h"
#include "sink-inspect.h"
#include "whep-client.h"

#include <gst/video/video.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <malloc.h>

#include <gst/check/gstcheck.h>

namespace {

double slow() { return g_getenv("VMD_VALGRIND") ? 5.0 : 1.0; }
guint ms(guint base) { return guint(base * slow()); }

/* Upstream events seen at the source's pad. */
struct Seen {
  std::mutex lock;
  std::vector<GstEvent *> events;
  ~Seen() {
    for (GstEvent *e : events)
      gst_event_unref(e);
  }
  size_t count() {
    std::lock_guard<std::mutex> guard(lock);
    return events.size();
  }
  /* Waits until at least n events are there. */
  bool wait(size_t n, guint timeout_ms) {
    for (guint t = 0; t < timeout_ms; t += 10) {
      if (count() >= n)
        return true;
      g_usleep(10000);
    }
    return count() >= n;
  }
  GstEvent *at(size_t i) {
    std::lock_guard<std::mutex> guard(lock);
    return i < events.size() ? events[i] : nullptr;
  }
};

GstPadProbeReturn record_upstream(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *e = GST_PAD_PROBE_INFO_EVENT(info);
  const GstStructure *s = gst_event_get_structure(e);
  const bool nav = GST_EVENT_TYPE(e) == GST_EVENT_NAVIGATION;
  const bool ui = GST_EVENT_TYPE(e) == GST_EVENT_CUSTOM_UPSTREAM && s &&
                  gst_structure_has_name(s, "qemu-ui-info");
  if (nav || ui) {
    auto *seen = static_cast<Seen *>(data);
    std::lock_guard<std::mutex> guard(seen->lock);
    seen->events.push_back(gst_event_ref(e));
  }
  return GST_PAD_PROBE_OK;
}

/* webrtcbins the sink made that are not finalized yet. */
std::atomic<int> g_alive_webrtcbins{0};

void on_deep_element_added(GstBin *, GstBin *, GstElement *element, gpointer) {
  GstElementFactory *f = gst_element_get_factory(element);
  if (!f || !g_str_equal(GST_OBJECT_NAME(f), "webrtcbin"))
    return;
  g_alive_webrtcbins++;
  g_object_weak_ref(G_OBJECT(element), [](gpointer, GObject *) { g_alive_webrtcbins--; },
                    nullptr);
}

struct Served {
  GstElement *pipeline = nullptr, *sink = nullptr, *src = nullptr;
  std::string base, token;
  Seen seen;

  explicit Served(const std::string &desc) {
    GError *err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    fail_unless(pipeline != nullptr, "%s", err ? err->message : "");
    g_clear_error(&err);
    sink = gst_bin_get_by_name(GST_BIN(pipeline), "s");
    src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    fail_unless(sink && src);
    g_signal_connect(sink, "deep-element-added", G_CALLBACK(on_deep_element_added), nullptr);
    GstPad *pad = gst_element_get_static_pad(src, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, record_upstream, &seen, nullptr);
    gst_object_unref(pad);
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    guint port = 0;
    gchar *tok = nullptr;
    g_object_get(sink, "bound-port", &port, "token", &tok, nullptr);
    fail_unless(port > 0);
    base = "http://127.0.0.1:" + std::to_string(port);
    token = tok ? tok : "";
    g_free(tok);
    /* The viewer1 frame must have reached the bin before an offer can be answered. */
    for (int i = 0; i < 500 && !stream_ready(); i++)
      g_usleep(10000);
  }
  ~Served() {
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
  }
  bool stream_ready() {
    GstElement *tee = gst_bin_get_by_name(GST_BIN(sink), "tee");
    if (tee)
      gst_object_unref(tee);
    return tee != nullptr;
  }
  guint viewers() { return testsupport::sink_viewers(sink); }
  int webrtcbins() { return testsupport::count_webrtcbins(sink); }
  /* Waits until `n` viewers are counted and, when n is 0, their branches are gone too
   * (teardown runs on the sink's own thread, after the count dropped). */
  bool wait_viewers(guint n, guint timeout_ms) {
    auto done = [&] { return viewers() == n && (n > 0 || webrtcbins() == 0); };
    for (guint t = 0; t < timeout_ms; t += 20) {
      if (done())
        return true;
      g_usleep(20000);
    }
    return done();
  }
};

const char *kRaw =
    "videotestsrc name=src is-live=true pattern=solid-color foreground-color=0xff2040e0 ! "
    "video/x-raw,width=320,height=240,framerate=30/1 ! vmwebrtcsink name=s port=0 ";

void connect_ok(vmtest::WhepClient &c, Served &srv) {
  std::string error;
  fail_unless(c.connect(srv.base, srv.token, &error), "%s", error.c_str());
}


}  // namespace

GST_START_TEST(test_plays_raw) {
  Served srv(kRaw);
  vmtest::WhepClient c;
  connect_ok(c, srv);
  const vmtest::HttpReply &r = c.reply();
  fail_unless(r.content_type.rfind("application/sdp", 0) == 0, "%s", r.content_type.c_str());
  fail_unless(r.location.rfind("/whep/", 0) == 0, "Location %s", r.location.c_str());
  fail_unless(r.body.find("a=sendonly") != std::string::npos, "answer not sendonly:\n%s",
              r.body.c_str());
  fail_unless(c.wait_frames(10, ms(15000)), "%u frames decoded", c.frames());
  fail_unless_equals_int(c.width(), 320);
  fail_unless_equals_int(c.height(), 240);
  guint8 rgb[3];
  fail_unless(c.pixel(160, 120, rgb));
  fail_unless(rgb[0] > 0x10 && rgb[0] < 0x30 && rgb[1] > 0x30 && rgb[1] < 0x50 && rgb[2] > 0xd0,
              "pixel %02x%02x%02x, sent 2040e0", rgb[0], rgb[1], rgb[2]);
  fail_unless_equals_int(int(srv.viewers()), 1);
  fail_unless_equals_int(int(c.hangup(srv.base, srv.token)), 200);
  fail_unless(srv.wait_viewers(0, ms(5000)));
  fail_unless_equals_int(srv.webrtcbins(), 0);
}
GST_END_TEST;

GST_START_TEST(test_h264_passthrough) {
  Served srv("videotestsrc name=src is-live=true ! video/x-raw,width=256,height=144,"
             "framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
             "! video/x-h264,profile=constrained-baseline ! h264parse ! vmwebrtcsink name=s "
             "port=0");
  vmtest::WhepClient c;
  connect_ok(c, srv);
  fail_unless(c.wait_frames(10, ms(15000)), "%u frames decoded", c.frames());
  fail_unless_equals_int(c.width(), 256);
  fail_unless_equals_int(c.height(), 144);
}
GST_END_TEST;

GST_START_TEST(test_whep_status) {
  Served srv(std::string(kRaw) + "max-viewers=1");
  const std::string whep = srv.base + "/whep";
  vmtest::HttpReply o = vmtest::http_request("OPTIONS", whep, "");
  fail_unless(o.status == 204 || o.status == 200, "OPTIONS %u", o.status);
  fail_unless(o.accept_post.find("application/sdp") != std::string::npos, "Accept-Post '%s'",
              o.accept_post.c_str());

  vmtest::WhepClient c;
  std::string error;
  /* The offer itself, sent wrongly. */
  fail_unless(c.connect(srv.base, "wrong-token", &error) == false);
  fail_unless_equals_int(int(c.reply().status), 401);
  const std::string offer = c.offer();
  vmtest::HttpReply r = vmtest::http_request("POST", whep, "", "application/sdp", offer);
  fail_unless_equals_int(int(r.status), 401);
  fail_unless(r.www_authenticate.find("Bearer") != std::string::npos);
  r = vmtest::http_request("POST", whep, srv.token, "text/plain", offer);
  fail_unless_equals_int(int(r.status), 415);
  fail_unless(!r.body.empty());
  r = vmtest::http_request("POST", whep, srv.token, "application/sdp", "v=0\r\nnonsense\r\n");
  fail_unless_equals_int(int(r.status), 400);
  fail_unless(!r.body.empty());
  fail_unless_equals_int(int(vmtest::http_request("DELETE", whep + "/nope", srv.token).status),
                         404);

  vmtest::WhepClient viewer1;
  connect_ok(viewer1, srv);
  fail_unless(viewer1.reply().link.empty() || viewer1.reply().link.find("ice-server") != std::string::npos);
  vmtest::WhepClient viewer2;
  fail_unless(!viewer2.connect(srv.base, srv.token, &error));
  fail_unless_equals_int(int(viewer2.reply().status), 503);
  fail_unless(viewer2.reply().body.find("max-viewers=1") != std::string::npos, "%s",
              viewer2.reply().body.c_str());
  fail_unless_equals_int(int(vmtest::http_request("DELETE", srv.base + viewer1.reply().location,
                                                  "").status), 401);
  fail_unless_equals_int(int(viewer1.hangup(srv.base, srv.token)), 200);
  fail_unless(srv.wait_viewers(0, ms(5000)));
  fail_unless_equals_int(int(viewer1.hangup(srv.base, srv.token)), 404);
}
GST_END_TEST;

/* The navigation event at i: its type, and for mouse events the button/position. */
void expect_nav(Seen &seen, size_t i, GstNavigationEventType type) {
  GstEvent *e = seen.at(i);
  fail_unless(e != nullptr, "no event %zu", i);
  fail_unless(GST_EVENT_TYPE(e) == GST_EVENT_NAVIGATION, "event %zu: %s", i,
              GST_EVENT_TYPE_NAME(e));
  fail_unless_equals_int(int(gst_navigation_event_get_type(e)), int(type));
}

GST_START_TEST(test_input) {
  Served srv(kRaw);
  vmtest::WhepClient c;
  connect_ok(c, srv);
  fail_unless(c.wait_channel_open(ms(10000)), "the input channel did not open");
  std::string m = c.wait_message("\"control\"", ms(5000));
  fail_unless(m.find("true") != std::string::npos, "control message '%s'", m.c_str());

  c.send("{\"type\":\"pointer\",\"x\":10,\"y\":20}");
  c.send("{\"type\":\"button\",\"button\":2,\"down\":true}");
  c.send("{\"type\":\"button\",\"button\":2,\"down\":false}");
  c.send("{\"type\":\"key\",\"code\":\"KeyA\",\"down\":true}");
  c.send("{\"type\":\"key\",\"code\":\"KeyA\",\"down\":false}");
  c.send("{\"type\":\"wheel\",\"dx\":0,\"dy\":1}");
  c.send("{\"type\":\"resize\",\"width\":800,\"height\":600}");
  c.send("not json at all");
  c.send("{\"type\":\"pointer-rel\",\"dx\":3,\"dy\":-4}");
  fail_unless(srv.seen.wait(8, ms(5000)), "%zu events upstream", srv.seen.count());

  double x = 0, y = 0;
  expect_nav(srv.seen, 0, GST_NAVIGATION_EVENT_MOUSE_MOVE);
  fail_unless(gst_navigation_event_parse_mouse_move_event(srv.seen.at(0), &x, &y));
  fail_unless(x == 10 && y == 20, "move %f,%f", x, y);
  gint button = 0;
  expect_nav(srv.seen, 1, GST_NAVIGATION_EVENT_MOUSE_BUTTON_PRESS);
  fail_unless(gst_navigation_event_parse_mouse_button_event(srv.seen.at(1), &button, &x, &y));
  fail_unless(button == 3 && x == 10 && y == 20, "right button %d at %f,%f", button, x, y);
  expect_nav(srv.seen, 2, GST_NAVIGATION_EVENT_MOUSE_BUTTON_RELEASE);
  const gchar *key = nullptr;
  expect_nav(srv.seen, 3, GST_NAVIGATION_EVENT_KEY_PRESS);
  fail_unless(gst_navigation_event_parse_key_event(srv.seen.at(3), &key));
  fail_unless_equals_string(key, "KeyA");
  expect_nav(srv.seen, 4, GST_NAVIGATION_EVENT_KEY_RELEASE);
  expect_nav(srv.seen, 5, GST_NAVIGATION_EVENT_MOUSE_SCROLL);
  double dx = 0, dy = 0;
  fail_unless(gst_navigation_event_parse_mouse_scroll_event(srv.seen.at(5), &x, &y, &dx, &dy));
  fail_unless(dy < 0, "wheel down gave delta_y %f", dy);
  GstEvent *ui = srv.seen.at(6);
  fail_unless(GST_EVENT_TYPE(ui) == GST_EVENT_CUSTOM_UPSTREAM);
  guint w = 0, h = 0;
  fail_unless(gst_structure_get_uint(gst_event_get_structure(ui), "width", &w));
  fail_unless(gst_structure_get_uint(gst_event_get_structure(ui), "height", &h));
  fail_unless(w == 800 && h == 600, "%ux%u", w, h);
  const GstStructure *rel = gst_event_get_structure(srv.seen.at(7));
  fail_unless(g_str_equal(gst_structure_get_string(rel, "event"), "mouse-move-relative"));

  c.send("{\"type\":\"ping\",\"t\":1234.5}");
  m = c.wait_message("\"pong\"", ms(5000));
  fail_unless(m.find("1234.5") != std::string::npos, "pong '%s'", m.c_str());

  /* The guest cursor, as qemudbussrc sends it. */
  guint32 argb[4] = {0xff000000, 0xffffffff, 0x80ff0000, 0x00000000};
  GstBuffer *image = gst_buffer_new_memdup(argb, sizeof argb);
  GstStructure *s = gst_structure_new(
      "qemu-cursor", "image", GST_TYPE_BUFFER, image, "width", G_TYPE_INT, 2, "height",
      G_TYPE_INT, 2, "hot-x", G_TYPE_INT, 1, "hot-y", G_TYPE_INT, 0, "x", G_TYPE_INT, 50, "y",
      G_TYPE_INT, 60, "visible", G_TYPE_BOOLEAN, TRUE, "image-changed", G_TYPE_BOOLEAN, TRUE,
      nullptr);
  gst_buffer_unref(image);
  GstPad *pad = gst_element_get_static_pad(srv.sink, "sink");
  gst_pad_send_event(pad, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, s));
  gst_object_unref(pad);
  m = c.wait_message("\"cursor\"", ms(5000));
  fail_unless(m.find("\"png\"") != std::string::npos && m.find("\"hot_x\":1") != std::string::npos,
              "cursor '%s'", m.c_str());
  m = c.wait_message("\"cursor-pos\"", ms(5000));
  fail_unless(m.find("\"x\":50") != std::string::npos, "cursor-pos '%s'", m.c_str());
}
GST_END_TEST;

GST_START_TEST(test_control_first) {
  Served srv(kRaw);
  vmtest::WhepClient viewer1, viewer2;
  connect_ok(viewer1, srv);
  fail_unless(viewer1.wait_channel_open(ms(10000)));
  connect_ok(viewer2, srv);
  fail_unless(viewer2.wait_channel_open(ms(10000)));
  std::string m = viewer2.wait_message("\"control\"", ms(5000));
  fail_unless(m.find("false") != std::string::npos, "second viewer: '%s'", m.c_str());
  viewer2.send("{\"type\":\"key\",\"code\":\"KeyB\",\"down\":true}");
  viewer2.send("{\"type\":\"key\",\"code\":\"KeyB\",\"down\":false}");
  viewer1.send("{\"type\":\"key\",\"code\":\"KeyC\",\"down\":true}");
  fail_unless(srv.seen.wait(1, ms(5000)));
  g_usleep(ms(300) * 1000);
  fail_unless_equals_int(int(srv.seen.count()), 1);
  const gchar *key = nullptr;
  fail_unless(gst_navigation_event_parse_key_event(srv.seen.at(0), &key));
  fail_unless_equals_string(key, "KeyC");
  /* Both play. */
  fail_unless(viewer1.wait_frames(5, ms(15000)) && viewer2.wait_frames(5, ms(15000)));
  /* the first leaves: the second is given control. */
  fail_unless_equals_int(int(viewer1.hangup(srv.base, srv.token)), 200);
  viewer1.drop();
  fail_unless(!viewer2.wait_message("\"granted\":true", ms(5000)).empty(),
              "the second viewer was not given control after the first left");
  const guint before = viewer2.frames();
  fail_unless(viewer2.wait_frames(before + 10, ms(10000)), "the viewer2 stopped playing");
}
GST_END_TEST;

/* UDP sockets this process has open (ICE's; HTTP is TCP): the socket inodes of its fds
 * found in /proc/net/udp and udp6. */
int udp_sockets() {
  std::set<std::string> inodes;
  GDir *dir = g_dir_open("/proc/self/fd", 0, nullptr);
  while (const gchar *name = dir ? g_dir_read_name(dir) : nullptr) {
    gchar *path = g_build_filename("/proc/self/fd", name, nullptr);
    gchar *link = g_file_read_link(path, nullptr);
    unsigned long inode = 0;
    if (link && sscanf(link, "socket:[%lu]", &inode) == 1)
      inodes.insert(std::to_string(inode));
    g_free(link);
    g_free(path);
  }
  if (dir)
    g_dir_close(dir);
  int n = 0;
  for (const char *table : {"/proc/self/net/udp", "/proc/self/net/udp6"}) {
    gchar *text = nullptr;
    if (!g_file_get_contents(table, &text, nullptr, nullptr))
      continue;
    gchar **lines = g_strsplit(text, "\n", -1);
    for (gchar **line = lines; *line; line++) {
      gchar **fields = g_strsplit_set(g_strstrip(*line), " ", -1);
      std::vector<std::string> words;
      for (gchar **f = fields; *f; f++)
        if (**f)
          words.push_back(*f);
      if (words.size() > 9 && inodes.count(words[9]))
        n++;
      g_strfreev(fields);
    }
    g_strfreev(lines);
    g_free(text);
  }
  return n;
}

/* Waits until every webrtcbin the sink made is finalized. */
bool wait_webrtcbins_finalized(guint timeout_ms) {
  for (guint t = 0; t < timeout_ms && g_alive_webrtcbins > 0; t += 20)
    g_usleep(20000);
  return g_alive_webrtcbins == 0;
}

/* RSS with glibc's free lists given back first: its per-thread arenas keep what the viewers
 * still alive at the peak (the abrupt ones wait for session-timeout) freed, so the plain RSS
 * shows that peak, not what is still held. */
long trimmed_rss_kib() {
  malloc_trim(0);
  return testsupport::rss_kib();
}

GST_START_TEST(test_churn) {
  /* Under valgrind ICE and DTLS take seconds: a 3 s timeout would reap viewers still
   * connecting, and 30 of them would not fit the run's timeout (the RSS is not checked). */
  Served srv(std::string(kRaw) + "session-timeout=" + std::to_string(ms(3000) / 1000));
  {
    /* The first viewer loads what all later ones share (libnice, OpenSSL, usrsctp, the
     * client's H.264 decoder: about 40 MB of library pages, one-time allocations, the
     * allocator's arenas): growth is counted from after it. */
    vmtest::WhepClient warmup;
    connect_ok(warmup, srv);
    fail_unless(warmup.wait_frames(1, ms(15000)), "warm-up viewer: no frame");
    fail_unless_equals_int(int(warmup.hangup(srv.base, srv.token)), 200);
  }
  fail_unless(srv.wait_viewers(0, ms(15000)));
  fail_unless(wait_webrtcbins_finalized(ms(2000)), "%d webrtcbins alive after the warm-up",
              g_alive_webrtcbins.load());
  const int udp_before = udp_sockets();
  const long rss_start = testsupport::rss_kib();
  const long rss_before = trimmed_rss_kib();
  const int n = g_getenv("VMD_CHURN")      ? atoi(g_getenv("VMD_CHURN"))
                : g_getenv("VMD_VALGRIND") ? 6
                                           : 30;
  for (int i = 0; i < n; i++) {
    vmtest::WhepClient c;
    connect_ok(c, srv);
    fail_unless(c.wait_frames(1, ms(15000)), "viewer %d: no frame", i);
    if (i % 2 == 0)
      fail_unless_equals_int(int(c.hangup(srv.base, srv.token)), 200);
    c.drop(); /* odd ones: abrupt, found by session-timeout (or their RTCP BYE) */
  }
  fail_unless(srv.wait_viewers(0, ms(15000)), "%u viewers, %d webrtcbins left", srv.viewers(),
              srv.webrtcbins());
  wait_webrtcbins_finalized(ms(2000));
  /* Removed and finalized: nothing (a message on the application's bus, which nobody pops
   * here) holds a ref on any of them. */
  fail_unless_equals_int(g_alive_webrtcbins.load(), 0);
  fail_unless_equals_int(srv.webrtcbins(), 0);
  /* A message left on the bus from a viewer's nicesink kept its ICE agent and sockets. */
  int udp_after = udp_sockets();
  for (guint t = 0; t < ms(3000) && udp_after > udp_before; t += 50) {
    g_usleep(50000); /* libnice closes an agent's sockets from its own threads */
    udp_after = udp_sockets();
  }
  fail_unless(udp_after <= udp_before, "%d UDP sockets open, %d before", udp_after, udp_before);
  const long peak = testsupport::rss_kib() - rss_start;
  const long grown = trimmed_rss_kib() - rss_before;
  g_print("%d viewers came and went: RSS grew by %ld KiB (%ld KiB before malloc_trim), "
          "%d UDP sockets open (%d before)\n", n, grown, peak, udp_after, udp_before);
  fail_unless(g_getenv("VMD_VALGRIND") || grown < 20 * 1024, "RSS grew by %ld KiB", grown);
  fail_unless(g_getenv("VMD_VALGRIND") || peak < 64 * 1024, "RSS grew by %ld KiB untrimmed",
              peak);
  vmtest::WhepClient last;
  connect_ok(last, srv);
  fail_unless(last.wait_frames(5, ms(15000)), "a viewer after the churn does not play");
}
GST_END_TEST;

GST_START_TEST(test_properties_documented) {
  bool skipped = false;
  std::string problem =
      testsupport::undocumented_property("vmwebrtcsink", "vmwebrtcsink.md", &skipped);
  fail_unless(problem.empty(), "%s", problem.c_str());
}
GST_END_TEST;

static Suite *vmwebrtcsink_suite() {
  Suite *s = suite_create("vmwebrtcsink");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 180);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_properties_documented);
  tcase_add_test(tc, test_plays_raw);
  tcase_add_test(tc, test_h264_passthrough);
  tcase_add_test(tc, test_whep_status);
  tcase_add_test(tc, test_input);
  tcase_add_test(tc, test_control_first);
  tcase_add_test(tc, test_churn);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  testsupport::install_crash_trace();
  return gst_check_run_suite(vmwebrtcsink_suite(), "vmwebrtcsink", __FILE__);
}
