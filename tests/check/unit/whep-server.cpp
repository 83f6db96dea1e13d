/* Unit: the WHEP endpoint and the page (ext/webrtc/whep-server) against a fake handler,
 * through a libsoup client and raw sockets (for what a well-behaved client never sends):
 * status codes, the exact headers, token rules, limits, timeouts, TLS, and done() after
 * timeouts, departures, stop() and destruction. */
#include "whep-server.h"

#include "raii.h"
#include "unique-fd.h"

#include <arpa/inet.h>
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

/* After the standard headers: check's fail() macro would break <istream>. */
#include <gst/check/gstcheck.h>

using vmd::UniqueFd;
using vmd::webrtc::WhepAnswer;
using vmd::webrtc::WhepHandler;
using vmd::webrtc::WhepServer;
using vmd::webrtc::WhepServerConfig;

namespace {

const char *kToken = "s3cr3t-token";
const char *kOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
const char *kAnswerSdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=answer\r\nt=0 0\r\n";

/* How the fake answers an offer. */
enum class Mode { Answer, Full, BadSdp, Never, FromThread };

class FakeHandler : public WhepHandler {
 public:
  explicit FakeHandler(Mode mode) : mode_(mode) {}
  ~FakeHandler() override {
    for (std::thread &t : threads_)
      t.join();
  }

  void on_offer(const std::string &offer, std::function<bool(WhepAnswer)> done) override {
    std::lock_guard<std::mutex> guard(lock_);
    offers_.push_back(offer);
    const std::string id = "session-" + std::to_string(offers_.size());
    switch (mode_) {
      case Mode::Answer:
        sessions_.insert(id);
        fail_unless(done(WhepAnswer{201, "", id, kAnswerSdp}));
        break;
      case Mode::Full:
        fail_unless(done(WhepAnswer{503, "full house: 8 viewers watch already", "", ""}));
        break;
      case Mode::BadSdp:
        fail_unless(done(WhepAnswer{400, "the offer has no video m-line", "", ""}));
        break;
      case Mode::Never:
        kept_.push_back(std::move(done));
        break;
      case Mode::FromThread:
        sessions_.insert(id);
        threads_.emplace_back([this, id, done] {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          thread_result_ = done(WhepAnswer{201, "", id, kAnswerSdp}) ? 1 : 0;
        });
        break;
    }
    changed_.notify_all();
  }

  bool on_delete(const std::string &id) override {
    std::lock_guard<std::mutex> guard(lock_);
    deleted_.push_back(id);
    return sessions_.erase(id) > 0;
  }

  /* Waits (bounded) until n offers came in. */
  bool wait_offers(size_t n) {
    std::unique_lock<std::mutex> guard(lock_);
    return changed_.wait_for(guard, std::chrono::seconds(10), [&] { return offers_.size() >= n; });
  }
  std::vector<std::string> offers() {
    std::lock_guard<std::mutex> guard(lock_);
    return offers_;
  }
  std::vector<std::function<bool(WhepAnswer)>> take_kept() {
    std::lock_guard<std::mutex> guard(lock_);
    return std::move(kept_);
  }
  void join_threads() {
    for (std::thread &t : threads_)
      t.join();
    threads_.clear();
  }
  std::atomic<int> thread_result_{-1};

 private:
  Mode mode_;
  std::mutex lock_;
  std::condition_variable changed_;
  std::vector<std::string> offers_, deleted_;
  std::set<std::string> sessions_;
  std::vector<std::function<bool(WhepAnswer)>> kept_;
  std::vector<std::thread> threads_;
};

WhepAnswer ok_answer() { return WhepAnswer{201, "", "late", kAnswerSdp}; }

WhepServerConfig base_config() {
  WhepServerConfig config;
  config.port = 0;
  config.token = kToken;
  return config;
}

/* ---- a libsoup client ------------------------------------------------------------- */

struct Reply {
  unsigned status = 0;
  std::string body;
  vmd::GObjectPtr<SoupMessage> msg;

  const char *header(const char *name) const {
    return soup_message_headers_get_one(soup_message_get_response_headers(msg.get()), name);
  }
  std::string header_or_empty(const char *name) const {
    const char *v = header(name);
    return v ? v : "";
  }
  std::vector<std::string> all(const char *name) const {
    std::vector<std::string> values;
    SoupMessageHeadersIter iter;
    soup_message_headers_iter_init(&iter, soup_message_get_response_headers(msg.get()));
    const char *n, *v;
    while (soup_message_headers_iter_next(&iter, &n, &v))
      if (g_ascii_strcasecmp(n, name) == 0)
        values.push_back(v);
    return values;
  }
};

struct Request {
  const char *method = "GET";
  std::string path = "/";
  const char *token = nullptr;
  const char *content_type = nullptr;
  std::string body;
};

vmd::GObjectPtr<SoupSession> new_session() {
  vmd::GObjectPtr<SoupSession> session(soup_session_new());
  soup_session_set_timeout(session.get(), 10);
  return session;
}

gboolean accept_any(SoupMessage *, GTlsCertificate *, GTlsCertificateFlags, gpointer) {
  return TRUE;
}

Reply send(SoupSession *session, const std::string &base, const Request &r) {
  Reply reply;
  const std::string url = base + r.path;
  reply.msg.reset(soup_message_new(r.method, url.c_str()));
  fail_unless(reply.msg != nullptr, "bad url %s", url.c_str());
  SoupMessage *msg = reply.msg.get();
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_any), nullptr);
  SoupMessageHeaders *h = soup_message_get_request_headers(msg);
  if (r.token)
    soup_message_headers_replace(h, "Authorization", (std::string("Bearer ") + r.token).c_str());
  if (r.content_type) {
    GBytes *bytes = g_bytes_new(r.body.data(), r.body.size());
    soup_message_set_request_body_from_bytes(msg, r.content_type, bytes);
    g_bytes_unref(bytes);
  }
  GError *err = nullptr;
  GBytes *body = soup_session_send_and_read(session, msg, nullptr, &err);
  fail_unless(body != nullptr, "%s %s: %s", r.method, url.c_str(), err ? err->message : "?");
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(body, &size));
  reply.body.assign(data ? data : "", size);
  g_bytes_unref(body);
  reply.status = soup_message_get_status(msg);
  return reply;
}

std::string base_url(const WhepServer &server, bool tls = false) {
  return std::string(tls ? "https" : "http") + "://127.0.0.1:" +
         std::to_string(server.bound_port());
}

Request post_offer(const char *token = kToken, std::string body = kOffer) {
  Request r;
  r.method = "POST";
  r.path = "/whep";
  r.token = token;
  r.content_type = "application/sdp";
  r.body = std::move(body);
  return r;
}

/* ---- raw sockets ------------------------------------------------------------------- */

UniqueFd connect_to(unsigned port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  fail_unless(connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  return fd;
}

void send_all(int fd, const std::string &s) {
  fail_unless(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()));
}

/* Everything until the server closes, or 10 s. */
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0)
      break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    out.append(buf, size_t(n));
  }
  return out;
}

std::string raw_post_head(unsigned port) {
  return "POST /whep HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nAuthorization: Bearer " + kToken + "\r\nContent-Type: application/sdp\r\n";
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool has_prefix(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

/* The Link header values, exactly: STUN, TURN with credentials percent-decoded and
 * quote-escaped, turns:, a query kept; what is not an ICE server URL is left out. */
GST_START_TEST(test_ice_server_links) {
  WhepServerConfig config;
  config.stun_server = "stun://stun.example.org:3478";
  config.turn_servers = {"turn://alice:p%40ss%22w@turn.example.org:3478",
                         "turns://bob:x%5Cy@[2001:db8::1]:5349?transport=tcp",
                         "http://not-ice.example.org", "stun://u:p@stun.example.org",
                         "turn://a:b@host<evil>:1", "turn://a:%0d%0a@host:1"};
  const std::vector<std::string> links = WhepServer::ice_server_links(config);
  const std::vector<std::string> expected = {
      "<stun:stun.example.org:3478>; rel=\"ice-server\"",
      "<turn:turn.example.org:3478>; rel=\"ice-server\"; username=\"alice\"; "
      "credential=\"p@ss\\\"w\"; credential-type=\"password\"",
      "<turns:[2001:db8::1]:5349?transport=tcp>; rel=\"ice-server\"; username=\"bob\"; "
      "credential=\"x\\\\y\"; credential-type=\"password\""};
  fail_unless_equals_int(links.size(), expected.size());
  for (size_t i = 0; i < expected.size(); i++)
    fail_unless_equals_string(links[i].c_str(), expected[i].c_str());

  /* start() refuses what would be left out, with the entry named. */
  WhepServerConfig bad = base_config();
  bad.turn_servers = {"turn.example.org:3478"};
  FakeHandler handler(Mode::Answer);
  WhepServer server(bad, &handler);
  std::string error;
  fail_if(server.start(&error));
  fail_unless(error.find("'turn.example.org:3478'") != std::string::npos, "%s", error.c_str());
}
GST_END_TEST;

/* OPTIONS /whep: 204, Accept-Post, CORS; STUN links for anyone, TURN credentials only
 * with the token. OPTIONS on a session: 204 with CORS. */
GST_START_TEST(test_options) {
  WhepServerConfig config = base_config();
  config.stun_server = "stun://127.0.0.1:3478";
  config.turn_servers = {"turn://user:pass@127.0.0.1:3478"};
  FakeHandler handler(Mode::Answer);
  WhepServer server(config, &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Request r;
  r.method = "OPTIONS";
  r.path = "/whep";
  Reply reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 204);
  fail_unless_equals_string(reply.header("Accept-Post"), "application/sdp");
  fail_unless_equals_string(reply.header("Access-Control-Allow-Origin"), "*");
  fail_unless_equals_string(reply.header("Access-Control-Allow-Methods"),
                            "OPTIONS, POST, DELETE, PATCH");
  fail_unless_equals_string(reply.header("Access-Control-Allow-Headers"),
                            "Authorization, Content-Type");
  fail_unless_equals_string(reply.header("Access-Control-Expose-Headers"), "Location, Link");
  fail_unless_equals_string(reply.header("Allow"), "OPTIONS, POST");
  std::vector<std::string> links = reply.all("Link");
  fail_unless_equals_int(links.size(), 1);
  fail_unless_equals_string(links[0].c_str(), "<stun:127.0.0.1:3478>; rel=\"ice-server\"");

  r.token = kToken;
  reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 204);
  links = reply.all("Link");
  fail_unless_equals_int(links.size(), 2);
  fail_unless_equals_string(links[0].c_str(), "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
  fail_unless_equals_string(links[1].c_str(),
                            "<turn:127.0.0.1:3478>; rel=\"ice-server\"; username=\"user\"; "
                            "credential=\"pass\"; credential-type=\"password\"");

  r.token = nullptr;
  r.path = "/whep/session-1";
  reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 204);
  fail_unless_equals_string(reply.header("Access-Control-Allow-Origin"), "*");
  fail_unless_equals_string(reply.header("Access-Control-Allow-Methods"),
                            "OPTIONS, POST, DELETE, PATCH");
}
GST_END_TEST;

/* A good offer: 201, the handler's SDP as application/sdp, Location, Link, CORS. */
GST_START_TEST(test_post_answer) {
  WhepServerConfig config = base_config();
  config.stun_server = "stun://127.0.0.1:3478";
  config.turn_servers = {"turn://user:pass@127.0.0.1:3478"};
  FakeHandler handler(Mode::Answer);
  WhepServer server(config, &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer());
  fail_unless_equals_int(reply.status, 201);
  fail_unless_equals_string(reply.header("Content-Type"), "application/sdp");
  fail_unless_equals_string(reply.header("Location"), "/whep/session-1");
  fail_unless_equals_string(reply.header("Access-Control-Allow-Origin"), "*");
  fail_unless_equals_string(reply.body.c_str(), kAnswerSdp);
  const std::vector<std::string> links = reply.all("Link");
  fail_unless_equals_int(links.size(), 2);
  fail_unless_equals_string(links[1].c_str(),
                            "<turn:127.0.0.1:3478>; rel=\"ice-server\"; username=\"user\"; "
                            "credential=\"pass\"; credential-type=\"password\"");
  const std::vector<std::string> offers = handler.offers();
  fail_unless_equals_int(offers.size(), 1);
  fail_unless_equals_string(offers[0].c_str(), kOffer);

  /* Parameters after the media type are fine. */
  Request r = post_offer();
  r.content_type = "application/sdp; charset=utf-8";
  reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 201);
  fail_unless_equals_string(reply.header("Location"), "/whep/session-2");
}
GST_END_TEST;

/* Without the token, a wrong one, another scheme: 401 with WWW-Authenticate: Bearer and a
 * reason; the handler never sees the offer. No token configured: no check. */
GST_START_TEST(test_post_token) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer(nullptr));
  fail_unless_equals_int(reply.status, 401);
  fail_unless(has_prefix(reply.header_or_empty("WWW-Authenticate"), "Bearer"));
  fail_unless(has_prefix(reply.header_or_empty("Content-Type"), "text/plain"));
  fail_unless(reply.body.find("Authorization: Bearer") != std::string::npos, "%s",
              reply.body.c_str());
  reply = send(session.get(), base_url(server), post_offer("wrong-token"));
  fail_unless_equals_int(reply.status, 401);
  fail_unless(reply.header_or_empty("WWW-Authenticate").find("invalid_token") !=
              std::string::npos);
  fail_unless(has_prefix(reply.body, "wrong token"), "%s", reply.body.c_str());
  reply = send(session.get(), base_url(server), post_offer("s3cr3t-toke"));
  fail_unless_equals_int(reply.status, 401);
  {
    /* Another auth scheme. */
    vmd::GObjectPtr<SoupMessage> msg(
        soup_message_new("POST", (base_url(server) + "/whep").c_str()));
    soup_message_headers_replace(soup_message_get_request_headers(msg.get()), "Authorization",
                                 (std::string("Basic ") + kToken).c_str());
    GBytes *bytes = g_bytes_new_static(kOffer, strlen(kOffer));
    soup_message_set_request_body_from_bytes(msg.get(), "application/sdp", bytes);
    g_bytes_unref(bytes);
    GBytes *body = soup_session_send_and_read(session.get(), msg.get(), nullptr, nullptr);
    fail_unless(body != nullptr);
    g_bytes_unref(body);
    fail_unless_equals_int(soup_message_get_status(msg.get()), 401);
  }
  fail_unless_equals_int(handler.offers().size(), 0);

  WhepServerConfig open = base_config();
  open.token.clear();
  WhepServer open_server(open, &handler);
  fail_unless(open_server.start(&error), "%s", error.c_str());
  reply = send(session.get(), base_url(open_server), post_offer(nullptr));
  fail_unless_equals_int(reply.status, 201);
  const std::string url = base_url(open_server) + "/";
  fail_unless(open_server.page_url() == url, "%s", open_server.page_url().c_str());
}
GST_END_TEST;

/* Content type other than application/sdp: 415 (with Accept-Post); an empty offer: 400. */
GST_START_TEST(test_post_content_type) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  for (const char *type : {"text/plain", "application/sdpx", "application/json"}) {
    Request r = post_offer();
    r.content_type = type;
    Reply reply = send(session.get(), base_url(server), r);
    fail_unless_equals_int(reply.status, 415);
    fail_unless_equals_string(reply.header("Accept-Post"), "application/sdp");
    fail_unless(reply.body.find("application/sdp") != std::string::npos);
    fail_unless(reply.body.find(type) != std::string::npos, "%s", reply.body.c_str());
  }
  Reply reply = send(session.get(), base_url(server), post_offer(kToken, ""));
  fail_unless_equals_int(reply.status, 400);
  fail_unless_equals_int(handler.offers().size(), 0);
}
GST_END_TEST;

/* 64 KiB is taken, one byte more is 413: with Content-Length and chunked. */
GST_START_TEST(test_post_size) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer(kToken, std::string(65 * 1024, 'a')));
  fail_unless_equals_int(reply.status, 413);
  fail_unless(reply.body.find("64 KiB") != std::string::npos, "%s", reply.body.c_str());
  reply = send(session.get(), base_url(server), post_offer(kToken, std::string(64 * 1024 + 1, 'a')));
  fail_unless_equals_int(reply.status, 413);
  reply = send(session.get(), base_url(server), post_offer(kToken, std::string(64 * 1024, 'a')));
  fail_unless_equals_int(reply.status, 201);

  /* Chunked: no Content-Length to look at before the body. */
  UniqueFd fd = connect_to(server.bound_port());
  std::string request = raw_post_head(server.bound_port()) +
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 65; i++)
    request += "400\r\n" + std::string(1024, 'b') + "\r\n";
  request += "0\r\n\r\n";
  send_all(fd.get(), request);
  const std::string response = read_all(fd.get());
  fail_unless(has_prefix(response, "HTTP/1.1 413"), "%s", response.substr(0, 80).c_str());
  fail_unless_equals_int(handler.offers().size(), 1);
}
GST_END_TEST;

/* The handler's 503 (full house) and 400 (bad SDP) reach the client with its reason. */
GST_START_TEST(test_post_refused) {
  for (Mode mode : {Mode::Full, Mode::BadSdp}) {
    FakeHandler handler(mode);
    WhepServer server(base_config(), &handler);
    std::string error;
    fail_unless(server.start(&error), "%s", error.c_str());
    auto session = new_session();
    Reply reply = send(session.get(), base_url(server), post_offer());
    fail_unless_equals_int(reply.status, mode == Mode::Full ? 503 : 400);
    fail_unless(has_prefix(reply.header_or_empty("Content-Type"), "text/plain"));
    fail_unless_equals_string(reply.body.c_str(), mode == Mode::Full
                                                      ? "full house: 8 viewers watch already\n"
                                                      : "the offer has no video m-line\n");
    fail_unless(reply.header("Location") == nullptr);
  }
}
GST_END_TEST;

/* No answer within answer_timeout_ms: 504 with a reason; the late done() returns false. */
GST_START_TEST(test_answer_timeout) {
  WhepServerConfig config = base_config();
  config.answer_timeout_ms = 300;
  FakeHandler handler(Mode::Never);
  WhepServer server(config, &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  const auto begin = std::chrono::steady_clock::now();
  Reply reply = send(session.get(), base_url(server), post_offer());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - begin).count();
  fail_unless_equals_int(reply.status, 504);
  fail_unless(ms >= 290 && ms < 3000, "504 after %d ms", int(ms));
  fail_unless(reply.body.find("300 ms") != std::string::npos, "%s", reply.body.c_str());
  auto kept = handler.take_kept();
  fail_unless_equals_int(kept.size(), 1);
  fail_if(kept[0](ok_answer()));
}
GST_END_TEST;

/* done() from another thread, 100 ms later: 201; it said true; a second call says false. */
GST_START_TEST(test_done_from_thread) {
  FakeHandler handler(Mode::FromThread);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer());
  fail_unless_equals_int(reply.status, 201);
  fail_unless_equals_string(reply.body.c_str(), kAnswerSdp);
  handler.join_threads();
  fail_unless_equals_int(handler.thread_result_, 1);
}
GST_END_TEST;

/* DELETE with the token: 200 for a known session, then 404; 401 without the token;
 * PATCH: 405 with Allow; GET on a session: 405. */
GST_START_TEST(test_delete_patch) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer());
  fail_unless_equals_int(reply.status, 201);
  const std::string location = reply.header_or_empty("Location");
  Request del;
  del.method = "DELETE";
  del.path = location;
  reply = send(session.get(), base_url(server), del);
  fail_unless_equals_int(reply.status, 401);
  del.token = kToken;
  reply = send(session.get(), base_url(server), del);
  fail_unless_equals_int(reply.status, 200);
  reply = send(session.get(), base_url(server), del);
  fail_unless_equals_int(reply.status, 404);
  fail_unless(reply.body.find("session-1") != std::string::npos, "%s", reply.body.c_str());
  del.path = "/whep/no-such-session";
  reply = send(session.get(), base_url(server), del);
  fail_unless_equals_int(reply.status, 404);

  Request patch;
  patch.method = "PATCH";
  patch.path = location;
  patch.token = kToken;
  patch.content_type = "application/trickle-ice-sdpfrag";
  patch.body = "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n";
  reply = send(session.get(), base_url(server), patch);
  fail_unless_equals_int(reply.status, 405);
  fail_unless_equals_string(reply.header("Allow"), "OPTIONS, DELETE");
  fail_unless(reply.body.find("trickle") != std::string::npos);
  Request get;
  get.path = "/whep";
  reply = send(session.get(), base_url(server), get);
  fail_unless_equals_int(reply.status, 405);
  fail_unless_equals_string(reply.header("Allow"), "OPTIONS, POST");
  get.path = "/whepx";
  reply = send(session.get(), base_url(server), get);
  fail_unless_equals_int(reply.status, 404);
}
GST_END_TEST;

/* The page from the GResource: the repository's files byte for byte, their types, no-store;
 * 404 for other paths; 405 for other methods. */
GST_START_TEST(test_page) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  const char *docs = g_getenv("VMD_DOCS_DIR");
  fail_unless(docs != nullptr);
  const std::string web = std::string(docs) + "/../ext/webrtc/web/";
  auto session = new_session();
  const struct {
    const char *path, *file, *type;
  } files[] = {{"/", "index.html", "text/html; charset=utf-8"},
               {"/viewer.js", "viewer.js", "text/javascript; charset=utf-8"},
               {"/viewer.css", "viewer.css", "text/css; charset=utf-8"}};
  for (const auto &f : files) {
    Request r;
    r.path = f.path;
    Reply reply = send(session.get(), base_url(server), r);
    fail_unless_equals_int(reply.status, 200);
    fail_unless_equals_string(reply.header("Content-Type"), f.type);
    fail_unless_equals_string(reply.header("Cache-Control"), "no-store");
    fail_unless(reply.body == read_file(web + f.file), "%s differs from the repository's",
                f.path);
  }
  Request r;
  r.path = "/nope";
  Reply reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 404);
  fail_unless(has_prefix(reply.header_or_empty("Content-Type"), "text/plain"));
  r.path = "/web.gresource.xml";
  fail_unless_equals_int(send(session.get(), base_url(server), r).status, 404);
  r.path = "/";
  r.method = "HEAD";
  fail_unless_equals_int(send(session.get(), base_url(server), r).status, 200);
  r.method = "POST";
  r.content_type = "text/plain";
  r.body = "x";
  reply = send(session.get(), base_url(server), r);
  fail_unless_equals_int(reply.status, 405);
  fail_unless_equals_string(reply.header("Allow"), "GET, HEAD");
}
GST_END_TEST;

/* port=0 binds a free port and page_url() tells it; the same port again: the actionable
 * error; a bind that is not an address: an error naming it. */
GST_START_TEST(test_ports_and_urls) {
  FakeHandler handler(Mode::Answer);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  const unsigned port = server.bound_port();
  fail_unless(port > 0 && port < 65536);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/#token=" + kToken;
  fail_unless(server.page_url() == url, "%s", server.page_url().c_str());
  WhepServerConfig same = base_config();
  same.port = port;
  WhepServer second(same, &handler);
  fail_if(second.start(&error));
  const std::string expected = "cannot listen on 127.0.0.1:" + std::to_string(port) +
                               ": Address already in use; choose another port or port=0";
  fail_unless_equals_string(error.c_str(), expected.c_str());
  fail_unless_equals_int(second.bound_port(), 0);

  WhepServerConfig any = base_config();
  any.bind = "0.0.0.0";
  WhepServer any_server(any, &handler);
  fail_unless(any_server.start(&error), "%s", error.c_str());
  fail_unless(has_prefix(any_server.page_url(), "http://127.0.0.1:"));
  auto session = new_session();
  Request r;
  fail_unless_equals_int(send(session.get(), base_url(any_server), r).status, 200);

  WhepServerConfig bad = base_config();
  bad.bind = "localhost-ish";
  WhepServer bad_server(bad, &handler);
  fail_if(bad_server.start(&error));
  fail_unless(error.find("'localhost-ish'") != std::string::npos, "%s", error.c_str());
}
GST_END_TEST;

namespace {

/* Self-signed for 127.0.0.1 (prime256v1, valid until 2126), made with openssl req -x509. */
const char *kCertPem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkDCCATagAwIBAgIUe9yEGx9WGOiPZ7r6WUG6HZzuSG8wCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMjEzNTAzN1oYDzIxMjYxMTA4\n"
    "MTM1MDM3WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAAR0M4OjQPQbQEbLSvUYsnd8F+HO6X+Ew3iuvJs+p+bL7ZOST8kRr3/M\n"
    "OK/UX5/PIkDLN1PHni9fszeXr9E2mfRBo2QwYjAdBgNVHQ4EFgQUafXP4qKGof5g\n"
    "ZcjMs5Js2/uSxmIwHwYDVR0jBBgwFoAUafXP4qKGof5gZcjMs5Js2/uSxmIwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC\n"
    "IA/zWdbnqrtI+gdhO9GRGn/uJBGIyGasTJQMjFp/tBp0AiEAgJgv3yn1ybEKnwLz\n"
    "kljXN+JLxjm48qcCDWEE0e9omDY=\n"
    "-----END CERTIFICATE-----\n";
const char *kKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMAk9SBEjNqKNae6q\n"
    "pfzwmSNYYdSOYNTM+2PsXcNOJh+hRANCAAR0M4OjQPQbQEbLSvUYsnd8F+HO6X+E\n"
    "w3iuvJs+p+bL7ZOST8kRr3/MOK/UX5/PIkDLN1PHni9fszeXr9E2mfRB\n"
    "-----END PRIVATE KEY-----\n";

class TempDir {
 public:
  TempDir() : path_(g_dir_make_tmp("whep-test-XXXXXX", nullptr)) {}
  ~TempDir() {
    for (const std::string &f : files_)
      unlink(f.c_str());
    rmdir(path_.get());
  }
  std::string write(const char *name, const std::string &text) {
    const std::string file = std::string(path_.get()) + "/" + name;
    fail_unless(g_file_set_contents(file.c_str(), text.data(), gssize(text.size()), nullptr));
    files_.push_back(file);
    return file;
  }
  std::string path(const char *name) const { return std::string(path_.get()) + "/" + name; }

 private:
  vmd::GCharPtr path_;
  std::vector<std::string> files_;
};

}  // namespace

/* HTTPS with a certificate and key from PEM files; the client accepts the self-signed
 * certificate. Missing or broken files: errors naming them. */
GST_START_TEST(test_tls) {
  TempDir dir;
  WhepServerConfig config = base_config();
  config.tls_certificate = dir.write("cert.pem", kCertPem);
  config.tls_private_key = dir.write("key.pem", kKeyPem);
  FakeHandler handler(Mode::Answer);
  WhepServer server(config, &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  fail_unless(has_prefix(server.page_url(), "https://127.0.0.1:"), "%s",
              server.page_url().c_str());
  auto session = new_session();
  Request r;
  Reply reply = send(session.get(), base_url(server, true), r);
  fail_unless_equals_int(reply.status, 200);
  reply = send(session.get(), base_url(server, true), post_offer());
  fail_unless_equals_int(reply.status, 201);

  WhepServerConfig missing = config;
  missing.tls_private_key = dir.path("nonexistent.pem");
  WhepServer missing_server(missing, &handler);
  fail_if(missing_server.start(&error));
  fail_unless(error.find("nonexistent.pem") != std::string::npos, "%s", error.c_str());

  WhepServerConfig broken = config;
  broken.tls_certificate = dir.write("broken.pem", "not a certificate\n");
  WhepServer broken_server(broken, &handler);
  fail_if(broken_server.start(&error));
  fail_unless(error.find("broken.pem") != std::string::npos, "%s", error.c_str());
  fail_unless(error.find("PEM") != std::string::npos, "%s", error.c_str());

  WhepServerConfig half = config;
  half.tls_private_key.clear();
  WhepServer half_server(half, &handler);
  fail_if(half_server.start(&error));
  fail_unless(error.find("both") != std::string::npos, "%s", error.c_str());
}
GST_END_TEST;

/* stop() with an offer pending: the client gets 503, the kept done() returns false, and
 * so does one called after the server is destroyed. */
GST_START_TEST(test_stop_with_pending) {
  FakeHandler handler(Mode::Never);
  auto server = std::make_unique<WhepServer>(base_config(), &handler);
  std::string error;
  fail_unless(server->start(&error), "%s", error.c_str());
  const std::string base = base_url(*server);
  std::atomic<unsigned> status{0};
  std::string body;
  std::thread client([&] {
    auto session = new_session();
    Reply reply = send(session.get(), base, post_offer());
    body = reply.body;
    status = reply.status;
  });
  fail_unless(handler.wait_offers(1));
  server->stop();
  client.join();
  fail_unless_equals_int(status, 503);
  fail_unless(body.find("stopping") != std::string::npos, "%s", body.c_str());
  auto kept = handler.take_kept();
  fail_unless_equals_int(kept.size(), 1);
  fail_if(kept[0](ok_answer()));
  server->stop(); /* idempotent */
  server.reset();
  fail_if(kept[0](ok_answer()));
}
GST_END_TEST;

/* Destroyed (no stop()) with offers pending; the handler's done() then comes from another
 * thread: false, no crash (valgrind sees the rest). */
GST_START_TEST(test_done_after_destruction) {
  FakeHandler handler(Mode::Never);
  auto server = std::make_unique<WhepServer>(base_config(), &handler);
  std::string error;
  fail_unless(server->start(&error), "%s", error.c_str());
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; i++) {
    clients.push_back(connect_to(server->bound_port()));
    send_all(clients.back().get(),
             raw_post_head(server->bound_port()) + "Content-Length: " +
                 std::to_string(strlen(kOffer)) + "\r\n\r\n" + kOffer);
  }
  fail_unless(handler.wait_offers(3));
  server.reset();
  auto kept = handler.take_kept();
  fail_unless_equals_int(kept.size(), 3);
  std::atomic<int> accepted{0};
  std::thread late([&] {
    for (auto &done : kept)
      accepted += done(ok_answer()) ? 1 : 0;
  });
  late.join();
  fail_unless_equals_int(accepted, 0);
  for (UniqueFd &fd : clients)
    fail_unless(has_prefix(read_all(fd.get()), "HTTP/1.1 503"));
}
GST_END_TEST;

/* A client that leaves while its offer is pending: done() returns false, the server goes
 * on serving. */
GST_START_TEST(test_client_leaves) {
  FakeHandler handler(Mode::Never);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  {
    UniqueFd fd = connect_to(server.bound_port());
    send_all(fd.get(), raw_post_head(server.bound_port()) + "Content-Length: " +
                           std::to_string(strlen(kOffer)) + "\r\n\r\n" + kOffer);
    fail_unless(handler.wait_offers(1));
  }
  auto kept = handler.take_kept();
  fail_unless_equals_int(kept.size(), 1);
  /* The server sees the end of file at once; give it 300 ms. */
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  fail_if(kept[0](ok_answer()), "done() took an answer for a client that left");
  auto session = new_session();
  Request r;
  fail_unless_equals_int(send(session.get(), base_url(server), r).status, 200);
}
GST_END_TEST;

/* At most 64 offers wait for an answer; the 65th: 503. */
GST_START_TEST(test_pending_limit) {
  FakeHandler handler(Mode::Never);
  WhepServer server(base_config(), &handler);
  std::string error;
  fail_unless(server.start(&error), "%s", error.c_str());
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 64; i++) {
    clients.push_back(connect_to(server.bound_port()));
    send_all(clients.back().get(),
             raw_post_head(server.bound_port()) + "Content-Length: " +
                 std::to_string(strlen(kOffer)) + "\r\n\r\n" + kOffer);
  }
  fail_unless(handler.wait_offers(64));
  auto session = new_session();
  Reply reply = send(session.get(), base_url(server), post_offer());
  fail_unless_equals_int(reply.status, 503);
  fail_unless(reply.body.find("too many") != std::string::npos, "%s", reply.body.c_str());
  server.stop();
  for (UniqueFd &fd : clients)
    fail_unless(has_prefix(read_all(fd.get()), "HTTP/1.1 503"));
}
GST_END_TEST;

static Suite *whep_server_suite() {
  Suite *s = suite_create("whep-server");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_ice_server_links);
  tcase_add_test(tc, test_options);
  tcase_add_test(tc, test_post_answer);
  tcase_add_test(tc, test_post_token);
  tcase_add_test(tc, test_post_content_type);
  tcase_add_test(tc, test_post_size);
  tcase_add_test(tc, test_post_refused);
  tcase_add_test(tc, test_answer_timeout);
  tcase_add_test(tc, test_done_from_thread);
  tcase_add_test(tc, test_delete_patch);
  tcase_add_test(tc, test_page);
  tcase_add_test(tc, test_ports_and_urls);
  tcase_add_test(tc, test_tls);
  tcase_add_test(tc, test_stop_with_pending);
  tcase_add_test(tc, test_done_after_destruction);
  tcase_add_test(tc, test_client_leaves);
  tcase_add_test(tc, test_pending_limit);
  return s;
}

GST_CHECK_MAIN(whep_server);
