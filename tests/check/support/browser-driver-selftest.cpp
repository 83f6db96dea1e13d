/* Self-test of the browser suite's driver and of the viewer page without vmwebrtcsink:
 *  1. the driver's commands against a tiny page of ours (open, eval, wait, click and move in
 *     video pixels, type, press, wheel, screenshot, sample, resize, log, close, errors);
 *  2. the real page (ext/webrtc/web/) against a WHEP endpoint that refuses: OPTIONS then one
 *     POST with the Bearer token, an offer holding recvonly video and the data channel, the
 *     error state and reason shown, Retry; and the page's pure logic (vmViewerInternals:
 *     element -> video coordinates, wheel notches, Link headers, stats);
 *  3. the real page against a fake sink: a second tab of ours answers the page's offer
 *     (canvas video, the `input` channel), so the page plays and its messages are checked
 *     as the sink receives them (pointer in video pixels, buttons, keys by code, wheel
 *     notches, resize, release on blur, pong, control, cursor) and close() DELETEs.
 * Exit 0 on success, 1 on failure, 77 (skip) when BrowserDriver::available() says no.
 */
#include <libsoup/soup.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "browser-driver.h"
#include "selftest-check.h"

using testsupport::BrowserDriver;

namespace {

using selftest::g_failures;

#define CHECK_MSG(cond, what)                                                           \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                          \
      g_failures++;                                                                     \
    }                                                                                   \
  } while (0)

constexpr const char *kToken = "tok-123_abc";

/* ---------------------------------------------------------------- the test's server */

struct Request {
  std::string method, path, content_type, authorization, body;
};

/* libsoup on its own thread: static pages, and /whep either refusing (503 with a reason)
 * or holding each POST until the test answers it. */
class TestServer {
 public:
  explicit TestServer(std::string web_dir) : web_dir_(std::move(web_dir)) {}
  ~TestServer() { stop(); }

  bool start() {
    thread_ = std::thread([this] { run(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (port() == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return port() != 0;
  }
  void stop() {
    if (!thread_.joinable())
      return;
    g_main_context_invoke(ctx_, [](gpointer loop) {
      g_main_loop_quit(static_cast<GMainLoop *>(loop));
      return G_SOURCE_REMOVE;
    }, loop_);
    thread_.join();
  }
  unsigned port() {
    std::lock_guard<std::mutex> lock(mu_);
    return port_;
  }
  std::string base() { return "http://127.0.0.1:" + std::to_string(port()); }
  void add_page(const std::string &path, const std::string &html) {
    std::lock_guard<std::mutex> lock(mu_);
    pages_.push_back({path, html});
  }
  void set_hold_offers(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  /* The held POST's offer, waiting up to timeout_ms for one. */
  bool held_offer(std::string *sdp, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (held_) {
          *sdp = held_offer_;
          return true;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  /* Answers the held POST (on the server's thread, within 20 ms). */
  void answer(unsigned status, const std::string &body, const std::string &location) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = {status, body, location};
    answer_ready_ = true;
  }

 private:
  struct Page {
    std::string path, html;
  };
  struct Answer {
    unsigned status = 0;
    std::string body, location;
  };

  void run() {
    ctx_ = g_main_context_new();
    g_main_context_push_thread_default(ctx_);
    loop_ = g_main_loop_new(ctx_, FALSE);
    SoupServer *server = soup_server_new(nullptr, nullptr);
    soup_server_add_handler(server, nullptr, &TestServer::on_request, this, nullptr);
    GError *err = nullptr;
    /* Not soup_server_listen_local / soup_server_get_uris: libsoup 3.2 leaks an address in
     * each; the listener's own socket tells the port. */
    GInetAddress *loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *any_port = g_inet_socket_address_new(loopback, 0);
    g_object_unref(loopback);
    const gboolean listening = soup_server_listen(server, any_port, SoupServerListenOptions(0), &err);
    g_object_unref(any_port);
    if (listening) {
      GSList *listeners = soup_server_get_listeners(server);
      GSocketAddress *bound = g_socket_get_local_address(G_SOCKET(listeners->data), nullptr);
      g_slist_free(listeners);
      std::lock_guard<std::mutex> lock(mu_);
      port_ = bound ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)) : 0;
      if (bound)
        g_object_unref(bound);
    } else {
      std::fprintf(stderr, "test server: %s\n", err->message);
      g_error_free(err);
    }
    GSource *tick = g_timeout_source_new(20);
    g_source_set_callback(tick, &TestServer::on_tick, this, nullptr);
    g_source_attach(tick, ctx_);
    g_main_loop_run(loop_);
    g_source_destroy(tick);
    g_source_unref(tick);
    if (held_)
      g_object_unref(held_);
    /* Close the browsers' keep-alive connections and let their sources finish here. */
    soup_server_disconnect(server);
    g_object_unref(server);
    for (int i = 0; i < 100 && g_main_context_pending(ctx_); i++)
      g_main_context_iteration(ctx_, FALSE);
    g_main_loop_unref(loop_);
    g_main_context_pop_thread_default(ctx_);
    g_main_context_unref(ctx_);
  }

  static gboolean on_tick(gpointer data) {
    auto *self = static_cast<TestServer *>(data);
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->held_ || !self->answer_ready_)
      return G_SOURCE_CONTINUE;
    const Answer &a = self->answer_;
    reply(self->held_, a.status, a.status == 201 ? "application/sdp" : "text/plain", a.body);
    if (!a.location.empty())
      soup_message_headers_append(soup_server_message_get_response_headers(self->held_),
                                  "Location", a.location.c_str());
    soup_server_message_unpause(self->held_);
    g_object_unref(self->held_);
    self->held_ = nullptr;
    self->answer_ready_ = false;
    return G_SOURCE_CONTINUE;
  }

  static void reply(SoupServerMessage *msg, unsigned status, const char *type,
                    const std::string &body) {
    soup_server_message_set_status(msg, status, nullptr);
    soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, body.data(), body.size());
  }

  static std::string file_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                         gpointer data) {
    auto *self = static_cast<TestServer *>(data);
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    Request r;
    r.method = soup_server_message_get_method(msg);
    r.path = path;
    const char *v = soup_message_headers_get_one(h, "Content-Type");
    r.content_type = v ? v : "";
    v = soup_message_headers_get_one(h, "Authorization");
    r.authorization = v ? v : "";
    GBytes *body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
    gsize len = 0;
    const char *bytes = static_cast<const char *>(g_bytes_get_data(body, &len));
    r.body.assign(bytes ? bytes : "", len);
    g_bytes_unref(body);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->requests_.push_back(r);
    self->serve_locked(msg, r);
  }

  void serve_locked(SoupServerMessage *msg, const Request &r) {
    if (r.path == "/whep" && r.method == "OPTIONS") {
      SoupMessageHeaders *out = soup_server_message_get_response_headers(msg);
      soup_message_headers_append(out, "Accept-Post", "application/sdp");
      soup_message_headers_append(out, "Link", "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
      soup_server_message_set_status(msg, 204, nullptr);
    } else if (r.path == "/whep" && r.method == "POST" && hold_ && !held_) {
      held_ = SOUP_SERVER_MESSAGE(g_object_ref(msg));
      held_offer_ = r.body;
      soup_server_message_pause(msg);
    } else if (r.path == "/whep" && r.method == "POST") {
      reply(msg, 503, "text/plain", "test: no sink here");
    } else if (r.path.rfind("/whep/", 0) == 0 && r.method == "DELETE") {
      reply(msg, 200, "text/plain", "");
    } else {
      serve_file_locked(msg, r.path);
    }
  }

  void serve_file_locked(SoupServerMessage *msg, const std::string &path) {
    for (const Page &p : pages_) {
      if (p.path == path)
        return reply(msg, 200, "text/html", p.html);
    }
    const struct {
      const char *path, *file, *type;
    } web[] = {{"/", "index.html", "text/html"},
               {"/viewer.js", "viewer.js", "text/javascript"},
               {"/viewer.css", "viewer.css", "text/css"}};
    for (const auto &w : web) {
      if (path == w.path)
        return reply(msg, 200, w.type, file_text(web_dir_ + "/" + w.file));
    }
    reply(msg, 404, "text/plain", "not here");
  }

  std::string web_dir_;
  std::thread thread_;
  GMainContext *ctx_ = nullptr;
  GMainLoop *loop_ = nullptr;
  std::mutex mu_;
  unsigned port_ = 0;
  bool hold_ = false;
  std::vector<Page> pages_;
  std::vector<Request> requests_;
  SoupServerMessage *held_ = nullptr;
  std::string held_offer_;
  Answer answer_;
  bool answer_ready_ = false;
};

/* ---------------------------------------------------------------- helpers */

std::string eval(BrowserDriver &d, const std::string &id, const std::string &expr) {
  std::string value, error;
  if (!d.eval(id, expr, &value, &error)) {
    std::fprintf(stderr, "eval %s failed: %s\n", expr.c_str(), error.c_str());
    g_failures++;
    return "<error>";
  }
  return value;
}

/* True when the page expression is truthy in time; a failure is counted otherwise. */
bool wait_for(BrowserDriver &d, const std::string &id, const std::string &expr,
              guint timeout_ms = 10000) {
  std::string error;
  if (d.wait(id, expr, timeout_ms, &error))
    return true;
  std::fprintf(stderr, "wait for %s failed: %s\n", expr.c_str(), error.c_str());
  g_failures++;
  return false;
}

std::string cmd(BrowserDriver &d, const std::string &line, bool expect_ok) {
  bool ok = false;
  const std::string reply = d.command(line, 20000, &ok);
  CHECK_MSG(ok == expect_ok, line + " -> " + reply);
  return reply;
}

bool near_rgb(const std::array<int, 3> &got, int r, int g, int b, int tol) {
  return std::abs(got[0] - r) <= tol && std::abs(got[1] - g) <= tol && std::abs(got[2] - b) <= tol;
}

}  // namespace

#include "browser-driver-selftest-pages.h"

namespace {

/* ---------------------------------------------------------------- 1. the driver */

void check_png(const std::string &path, unsigned width, unsigned height) {
  const std::string data = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  CHECK_MSG(data.size() > 33 && data.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0, path);
  if (data.size() <= 33)
    return;
  auto be32 = [&](size_t at) {
    return (unsigned(uint8_t(data[at])) << 24) | (unsigned(uint8_t(data[at + 1])) << 16) |
           (unsigned(uint8_t(data[at + 2])) << 8) | unsigned(uint8_t(data[at + 3]));
  };
  CHECK(be32(16) == width);
  CHECK(be32(20) == height);
}

void test_driver(BrowserDriver &d, TestServer &server, const std::string &tmp) {
  std::string error;
  CHECK_MSG(d.open("t", server.base() + "/test.html", 800, 600, &error), error);
  wait_for(d, "t", "document.querySelector('video').videoWidth === 320");
  CHECK(eval(d, "t", "1 + 2") == "3");
  CHECK(eval(d, "t", "Promise.resolve({a: [1, 'x']})") == "{\"a\":[1,\"x\"]}");
  CHECK(eval(d, "t", "undefined") == "null");
  /* The video is drawn at 2x from (20, 30): video pixel (100, 50) is page [220, 222) x
   * [130, 132); the driver picks whole page pixels. */
  cmd(d, R"J({"cmd":"click","id":"t","x":100,"y":50,"button":2})J", true);
  wait_for(d, "t", "window.clicks.length === 1");
  CHECK_MSG(eval(d, "t", "window.clicks[0]") == "[220,130,2]", eval(d, "t", "window.clicks[0]"));
  cmd(d, R"J({"cmd":"move","id":"t","x":0,"y":0})J", true);
  wait_for(d, "t", "window.moves.length > 0");
  CHECK(eval(d, "t", "window.moves[window.moves.length - 1]") == "[20,30]");
  cmd(d, R"J({"cmd":"type","id":"t","text":"aB"})J", true);
  cmd(d, R"J({"cmd":"press","id":"t","key":"Enter"})J", true);
  /* keyboard.type sends each character's key without Shift ("B" is KeyB alone). */
  CHECK_MSG(eval(d, "t", "window.keys.join(' ')") == "\"KeyA KeyB Enter\"",
            eval(d, "t", "window.keys.join(' ')"));
  cmd(d, R"J({"cmd":"wheel","id":"t","dx":0,"dy":120})J", true);
  wait_for(d, "t", "window.wheels.length === 1");
  CHECK(eval(d, "t", "window.wheels[0]") == "[0,120]");
  std::vector<std::array<int, 3>> rgb;
  CHECK_MSG(d.sample("t", {{10, 10}, {300, 230}}, &rgb, &error), error);
  CHECK(rgb.size() == 2 && near_rgb(rgb[0], 255, 0, 0, 0) && near_rgb(rgb[1], 255, 255, 255, 0));
  const std::string shot = tmp + "/driver-shot.png";
  cmd(d, R"({"cmd":"screenshot","id":"t","path":)" + BrowserDriver::quote(shot) + "}", true);
  check_png(shot, 800, 600);
  cmd(d, R"J({"cmd":"resize","id":"t","width":640,"height":480})J", true);
  CHECK(eval(d, "t", "[innerWidth, innerHeight]") == "[640,480]");
  const std::string log = cmd(d, R"J({"cmd":"log","id":"t"})J", true);
  CHECK_MSG(log.find("log: test page up") != std::string::npos, log);
  /* Failures are answers, and a wait gives up on time. */
  const auto t0 = std::chrono::steady_clock::now();
  const std::string late = cmd(d, R"J({"cmd":"wait","id":"t","expr":"false","timeout_ms":300})J", false);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  CHECK_MSG(late.find("timed out") != std::string::npos, late);
  cmd(d, R"J({"cmd":"eval","id":"t","expr":"nosuchname.x"})J", false);
  cmd(d, R"J({"cmd":"eval","id":"nope","expr":"1"})J", false);
  cmd(d, R"J({"cmd":"frobnicate"})J", false);
  cmd(d, "not json", false);
  cmd(d, R"J({"cmd":"close","id":"t"})J", true);
  cmd(d, R"J({"cmd":"eval","id":"t","expr":"1"})J", false);
  /* A command slower than the caller's bound: the late answer is skipped next time. */
  bool ok = true;
  CHECK_MSG(d.open("t2", server.base() + "/test.html", 320, 240, &error), error);
  d.command(R"J({"cmd":"eval","id":"t2","expr":"new Promise(r => setTimeout(() => r(7), 500))"})J",
            100, &ok);
  CHECK(!ok);
  CHECK(eval(d, "t2", "8") == "8");
  cmd(d, R"J({"cmd":"close","id":"t2"})J", true);
}

}  // namespace

namespace {

/* ---------------------------------------------------------------- 2. the page, refused */

std::vector<Request> whep_requests(TestServer &server, const char *method) {
  std::vector<Request> out;
  for (const Request &r : server.requests()) {
    if (r.method == method && r.path.rfind("/whep", 0) == 0)
      out.push_back(r);
  }
  return out;
}

size_t index_of(TestServer &server, const char *method, const char *path) {
  const std::vector<Request> all = server.requests();
  for (size_t i = 0; i < all.size(); i++) {
    if (all[i].method == method && all[i].path == path)
      return i;
  }
  return all.size();
}

void check_offer(const Request &post) {
  CHECK_MSG(post.content_type == "application/sdp", post.content_type);
  CHECK_MSG(post.authorization == std::string("Bearer ") + kToken, post.authorization);
  for (const char *needle : {"m=video", "a=recvonly", "m=application", "webrtc-datachannel",
                             "a=group:BUNDLE", "a=candidate:"})
    CHECK_MSG(post.body.find(needle) != std::string::npos, std::string(needle) + " in offer");
}

void test_viewer_refused(BrowserDriver &d, TestServer &server) {
  server.set_hold_offers(false);
  std::string error;
  CHECK_MSG(d.open("v", server.base() + "/#token=" + kToken, 800, 600, &error), error);
  wait_for(d, "v", "window.vmViewer && vmViewer.state === 'failed'");
  const std::string reason = eval(d, "v", "vmViewer.error");
  CHECK_MSG(reason.find("503") != std::string::npos, reason);
  CHECK_MSG(reason.find("test: no sink here") != std::string::npos, reason);
  const std::string shown = eval(d, "v", "[document.getElementById('error').hidden, "
                                         "document.getElementById('error-text').textContent, "
                                         "document.getElementById('state').textContent]");
  CHECK_MSG(shown.find("[false,") == 0 && shown.find("test: no sink here") != std::string::npos &&
                shown.find("\"failed\"]") != std::string::npos,
            shown);
  CHECK(index_of(server, "OPTIONS", "/whep") < index_of(server, "POST", "/whep"));
  std::vector<Request> posts = whep_requests(server, "POST");
  CHECK(posts.size() == 1);
  if (!posts.empty())
    check_offer(posts[0]);
  CHECK(eval(d, "v", "vmViewer.sessionUrl") == "null");
  /* Retry: a new attempt, refused again. */
  eval(d, "v", "document.getElementById('retry').click()");
  wait_for(d, "v", "vmViewer.state === 'failed' && document.getElementById('stats') !== null");
  for (int i = 0; i < 100 && whep_requests(server, "POST").size() < 2; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(whep_requests(server, "POST").size() == 2);
  wait_for(d, "v", "vmViewer.state === 'failed'");
}

/* The page's pure logic, in the loaded page (tab "v" from above). */
void test_viewer_logic(BrowserDriver &d, TestServer &) {
  const char *I = "vmViewerInternals.";
  auto e = [&](const std::string &expr) { return eval(d, "v", I + expr); };
  /* Native size: one CSS pixel per video pixel, from the element's corner. */
  CHECK(e("elementToVideo(120.7, 80.2, {left: 20, top: 30, width: 640, height: 480}, 640, "
          "480)") == "{\"x\":100,\"y\":50}");
  /* Fit: 1000x1000 video in a 1000x500 box is drawn at 0.5 from x = 250. */
  const std::string box = "{left: 0, top: 0, width: 1000, height: 500}";
  CHECK(e("elementToVideo(300, 100, " + box + ", 1000, 1000)") == "{\"x\":100,\"y\":200}");
  CHECK(e("elementToVideo(260.9, 10.9, " + box + ", 1000, 1000)") == "{\"x\":21,\"y\":21}");
  CHECK(e("elementToVideo(0, 0, " + box + ", 1000, 1000)") == "{\"x\":0,\"y\":0}");
  CHECK(e("elementToVideo(999, 499, " + box + ", 1000, 1000)") == "{\"x\":999,\"y\":998}");
  CHECK(e("elementToVideo(5, 5, " + box + ", 0, 0)") == "null");
  /* Wheel: 100 px, 3 lines or 1 page a notch; whole notches out, the rest kept. */
  CHECK(eval(d, "v",
             "(() => { const w = vmViewerInternals.makeWheelAccumulator(); return ["
             "w(0, 100, 0), w(0, 40, 0), w(0, 40, 0), w(0, 40, 0), w(0, -150, 0), w(250, 0, 0), w(-260, 0, 0),"
             "w(0, 1, 1), w(0, 1, 1), w(0, 1, 1), w(0, -7, 1),"
             "w(0, 1, 2), w(0, 0.5, 2), w(0, 0.5, 2)].map(n => n.dx + ',' + n.dy).join(' ') })()") ==
        "\"0,1 0,0 0,0 0,1 0,-1 2,0 -2,0 0,0 0,0 0,1 0,-2 0,1 0,0 0,1\"");
  CHECK(eval(d, "v",
             "(() => { const m = vmViewerInternals.makeMotionAccumulator(); return ["
             "m(0.4, -0.4), m(0.4, -0.4), m(0.4, -0.4), m(2.5, 0)].map(n => n.dx + ',' + n.dy)"
             ".join(' ') })()") == "\"0,0 0,0 1,-1 2,0\"");
  /* WHEP's Link headers, as fetch joins them. */
  const std::string links =
      R"(<stun:stun.example.org:3478>; rel="ice-server", )"
      R"(<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="u,1"; )"
      R"(credential="p\"w"; credential-type="password", <https://example.org/>; rel="other")";
  CHECK(e("iceServersFromLinks(vmViewerInternals.parseLinkHeader(" + BrowserDriver::quote(links) +
          "))") ==
        R"([{"urls":"stun:stun.example.org:3478"},{"urls":"turn:turn.example.org:3478?transport=udp",)"
        R"("username":"u,1","credential":"p\"w"}])");
  CHECK(e("parseLinkHeader(null).length") == "0");
  /* Stats: a second of 30 frames, 125000 bytes, 20 ms jitter buffer and 5 ms decode a
   * frame, 4 ms RTT. */
  const std::string stats =
      "computeStats({t: 0, framesDecoded: 0, bytesReceived: 0, jitterBufferDelay: 0, "
      "jitterBufferEmittedCount: 0, totalDecodeTime: 0}, {t: 1000, framesDecoded: 30, "
      "bytesReceived: 125000, jitterBufferDelay: 0.6, jitterBufferEmittedCount: 30, "
      "totalDecodeTime: 0.15, frameWidth: 1024, frameHeight: 768, rtt: 0.004})";
  CHECK_MSG(e("formatStats(vmViewerInternals." + stats + ")") ==
                "\"1024x768 \u00b7 30 fps \u00b7 1.0 Mb/s \u00b7 RTT 4 ms \u00b7 est. latency 27 ms\"",
            e("formatStats(vmViewerInternals." + stats + ")"));
  cmd(d, R"J({"cmd":"close","id":"v"})J", true);
}

/* ---------------------------------------------------------------- 3. the page, fake sink */

std::string unquote(const std::string &json) {
  std::string out;
  BrowserDriver::member_string("{\"v\":" + json + "}", "v", &out);
  return out;
}

/* The sink's received messages, short: p(ointer)X,Y r(el)DX,DY bBUTTON(d|u) wDX,DY
 * KEYCODE(+|-) sW,H. */
constexpr const char *kReceived =
    "received.map(m => m.type === 'pointer' ? `p${m.x},${m.y}` : m.type === 'pointer-rel' ? "
    "`r${m.dx},${m.dy}` : m.type === 'button' ? `b${m.button}${m.down ? 'd' : 'u'}` : "
    "m.type === 'wheel' ? `w${m.dx},${m.dy}` : m.type === 'key' ? `${m.code}${m.down ? '+' : "
    "'-'}` : m.type === 'resize' ? `s${m.width},${m.height}` : m.type).join(' ')";

bool received_ends(BrowserDriver &d, const std::string &tail) {
  const std::string expr =
      std::string("(") + kReceived + ").endsWith(" + BrowserDriver::quote(tail) + ")";
  std::string error;
  if (d.wait("s", expr, 5000, &error))
    return true;
  std::fprintf(stderr, "sink received %s, expected it to end with %s\n",
               eval(d, "s", kReceived).c_str(), tail.c_str());
  return false;
}

bool connect_fake_sink(BrowserDriver &d, TestServer &server) {
  server.set_hold_offers(true);
  std::string error, offer, answer;
  CHECK_MSG(d.open("s", server.base() + "/sink.html", 400, 300, &error), error);
  CHECK_MSG(d.open("v", server.base() + "/#token=" + kToken, 800, 600, &error), error);
  if (!server.held_offer(&offer, 10000)) {
    std::fprintf(stderr, "no offer from the viewer\n");
    g_failures++;
    return false;
  }
  answer = unquote(eval(d, "s", "answerOffer(" + BrowserDriver::quote(offer) + ")"));
  CHECK_MSG(answer.find("a=sendonly") != std::string::npos, answer);
  server.answer(201, answer, "/whep/sess-1");
  return wait_for(d, "v",
                  "vmViewer.state === 'playing' && vmViewer.framesDecoded > 3 && "
                  "vmViewer.videoWidth === 320 && vmViewer.videoHeight === 240 && "
                  "vmViewer.channelOpen",
                  20000);
}

void check_sink_messages(BrowserDriver &d) {
  wait_for(d, "s", "window.channelLabel === 'input'");
  wait_for(d, "v", "vmViewer.lastPong !== null && vmViewer.lastPong.rtt >= 0", 5000);
  if (!wait_for(d, "v", "vmViewer.control === false && !document.getElementById('control').hidden"))
    std::fprintf(stderr, "viewer: control, badge hidden, messages received %s; sink: hello %s\n",
                 eval(d, "v", "[vmViewer.control, document.getElementById('control').hidden, "
                              "vmViewer.messagesReceived]").c_str(),
                 eval(d, "s", "[window.helloState, window.channel.readyState]").c_str());
  eval(d, "s", "sinkSend({type: 'control', granted: true})");
  wait_for(d, "v", "vmViewer.control === true && document.getElementById('control').hidden");
  wait_for(d, "v", "vmViewer.cursor !== null && vmViewer.cursor.x === 10");
  CHECK(eval(d, "v", "[vmViewer.cursor.width, vmViewer.cursor.hot_x, vmViewer.cursor.visible, "
                     "vmViewer.cursor.png === undefined]") == "[1,0,true,true]");
  CHECK(eval(d, "v", "vmViewer.cursorStyle.includes('data:image/png;base64,')") == "true");
  eval(d, "s", "sinkSend({type: 'cursor-pos', x: 1, y: 2, visible: false})");
  wait_for(d, "v", "vmViewer.cursorStyle === 'none' && vmViewer.cursor.visible === false");
  eval(d, "s", "sinkSend({type: 'cursor-pos', x: 1, y: 2, visible: true}); sinkSend('junk')");
  wait_for(d, "v", "vmViewer.cursorStyle.includes('data:image/png')");
}

void check_input(BrowserDriver &d) {
  eval(d, "s", "received.length = 0");
  cmd(d, R"J({"cmd":"move","id":"v","x":100,"y":50})J", true);
  CHECK(received_ends(d, "p100,50"));
  cmd(d, R"J({"cmd":"click","id":"v","x":30,"y":40})J", true);
  CHECK(received_ends(d, "p30,40 b0d b0u"));
  cmd(d, R"J({"cmd":"click","id":"v","x":5,"y":239,"button":2})J", true);
  CHECK(received_ends(d, "p5,239 b2d b2u"));
  CHECK(eval(d, "s", "received.every(m => m.type !== 'pointer' || "
                     "(Number.isInteger(m.x) && Number.isInteger(m.y)))") == "true");
  cmd(d, R"J({"cmd":"type","id":"v","text":"ab"})J", true);
  CHECK(received_ends(d, "KeyA+ KeyA- KeyB+ KeyB-"));
  cmd(d, R"J({"cmd":"press","id":"v","key":"Control+KeyA"})J", true);
  CHECK(received_ends(d, "ControlLeft+ KeyA+ KeyA- ControlLeft-"));
  cmd(d, R"J({"cmd":"move","id":"v","x":160,"y":120})J", true);
  cmd(d, R"J({"cmd":"wheel","id":"v","dx":0,"dy":50})J", true);
  cmd(d, R"J({"cmd":"wheel","id":"v","dx":0,"dy":50})J", true);
  CHECK(received_ends(d, "w0,1"));
  cmd(d, R"J({"cmd":"wheel","id":"v","dx":0,"dy":-100})J", true);
  CHECK(received_ends(d, "w0,1 w0,-1"));
  /* A repeat is not sent; what is down is released when the focus goes. */
  eval(d, "v", "(() => { const s = document.getElementById('screen'); s.focus(); "
               "const k = (code, repeat) => s.dispatchEvent(new KeyboardEvent('keydown', "
               "{code, repeat, bubbles: true, cancelable: true})); "
               "k('KeyQ', false); k('KeyW', false); k('KeyW', true); s.blur(); })()");
  CHECK(received_ends(d, "KeyQ+ KeyW+ KeyQ- KeyW-"));
}

void check_layout(BrowserDriver &d) {
  eval(d, "v", "vmViewer.setFitVm(true)");
  const std::string area = eval(
      d, "v",
      "`s${innerWidth},${Math.floor(innerHeight - "
      "document.getElementById('toolbar').getBoundingClientRect().height)}`");
  CHECK(received_ends(d, unquote(area)));
  cmd(d, R"J({"cmd":"resize","id":"v","width":700,"height":500})J", true);
  const std::string area2 = unquote(eval(
      d, "v",
      "`s${innerWidth},${Math.floor(innerHeight - "
      "document.getElementById('toolbar').getBoundingClientRect().height)}`"));
  CHECK(area2.rfind("s700,", 0) == 0);
  CHECK(received_ends(d, area2));
  eval(d, "v", "vmViewer.setFitVm(false)");
  /* Fit to window: the video scaled up, pointer still in video pixels. */
  eval(d, "v", "vmViewer.setFit(true)");
  CHECK(eval(d, "v", "document.getElementById('video').getBoundingClientRect().width > 400") ==
        "true");
  cmd(d, R"J({"cmd":"click","id":"v","x":160,"y":120})J", true);
  CHECK(received_ends(d, "p160,120 b0d b0u"));
  cmd(d, R"J({"cmd":"click","id":"v","x":319,"y":0})J", true);
  CHECK(received_ends(d, "p319,0 b0d b0u"));
}

void test_viewer_fake_sink(BrowserDriver &d, TestServer &server, const std::string &tmp) {
  if (!connect_fake_sink(d, server)) {
    cmd(d, R"J({"cmd":"close","id":"v"})J", true);
    cmd(d, R"J({"cmd":"close","id":"s"})J", true);
    return;
  }
  CHECK(unquote(eval(d, "v", "vmViewer.sessionUrl")) == server.base() + "/whep/sess-1");
  CHECK(eval(d, "v", "document.getElementById('video').getBoundingClientRect().width") == "320");
  std::vector<std::array<int, 3>> rgb;
  std::string error;
  CHECK_MSG(d.sample("v", {{80, 60}, {240, 60}, {80, 180}, {240, 180}}, &rgb, &error), error);
  CHECK(rgb.size() == 4 && near_rgb(rgb[0], 255, 0, 0, 48) && near_rgb(rgb[1], 0, 255, 0, 48) &&
        near_rgb(rgb[2], 0, 0, 255, 48) && near_rgb(rgb[3], 255, 255, 255, 48));
  check_sink_messages(d);
  check_input(d);
  check_layout(d);
  wait_for(d, "v", "/\\d+x\\d+ .* fps/.test(document.getElementById('stats').textContent)");
  const std::string shot = tmp + "/viewer-shot.png";
  cmd(d, R"({"cmd":"screenshot","id":"v","path":)" + BrowserDriver::quote(shot) + "}", true);
  check_png(shot, 700, 500);
  CHECK(eval(d, "v", "vmViewer.close()") == "200");
  CHECK(eval(d, "v", "vmViewer.state") == "\"closed\"");
  const std::vector<Request> deletes = whep_requests(server, "DELETE");
  CHECK(deletes.size() == 1);
  if (!deletes.empty()) {
    CHECK(deletes[0].path == "/whep/sess-1");
    CHECK(deletes[0].authorization == std::string("Bearer ") + kToken);
  }
  cmd(d, R"J({"cmd":"close","id":"v"})J", true);
  cmd(d, R"J({"cmd":"close","id":"s"})J", true);
}

}  // namespace


int main() {
  std::string why;
  if (!BrowserDriver::available(&why)) {
    std::printf("SKIP: %s\n", why.c_str());
    return 77;
  }
  const char *web = g_getenv("VMD_WEB_DIR");
  if (!web || !g_file_test((std::string(web) + "/viewer.js").c_str(), G_FILE_TEST_EXISTS)) {
    std::fprintf(stderr, "VMD_WEB_DIR must point at ext/webrtc/web\n");
    return 1;
  }
  TestServer server(web);
  server.add_page("/test.html", kTestPage);
  server.add_page("/sink.html", kSinkPage);
  if (!server.start()) {
    std::fprintf(stderr, "the test server did not start\n");
    return 1;
  }
  vmd::GCharPtr tmp(g_dir_make_tmp("browser-selftest-XXXXXX", nullptr));
  {
    BrowserDriver driver;
    std::string error;
    if (!driver.start(&error)) {
      std::fprintf(stderr, "driver: %s\n", error.c_str());
      return 1;
    }
    std::printf("chromium %s\n", driver.version().c_str());
    CHECK(!driver.version().empty());
    test_driver(driver, server, tmp.get());
    test_viewer_refused(driver, server);
    test_viewer_logic(driver, server);
    test_viewer_fake_sink(driver, server, tmp.get());
    const auto t0 = std::chrono::steady_clock::now();
    driver.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    bool ok = true;
    driver.command(R"J({"cmd":"eval","id":"x","expr":"1"})J", 1000, &ok);
    CHECK(!ok);
  }
  server.stop();
  std::printf("%s\n", g_failures ? "FAIL" : "PASS");
  return g_failures ? 1 : 0;
}
