/* gst-vmdisplay: vmwebrtcsink's HTTP side (libsoup 3): the WHEP endpoint
 * (draft-ietf-wish-whep) and the viewer page.
 *
 *   GET /, /viewer.js, /viewer.css   the page (GResource /org/gstvmdisplay/webrtc/web/), no
 *                                    token needed (the page reads it from its URL fragment)
 *   OPTIONS /whep                    204, Accept-Post: application/sdp, Link ice-server headers
 *   POST /whep (application/sdp)     201 + answer SDP (Content-Type application/sdp),
 *                                    Location: /whep/<session id>, Link ice-server headers;
 *                                    400 bad SDP, 401 no or wrong Bearer token, 415 other
 *                                    content type, 413 body > 64 KiB, 503 full house, 504
 *                                    answer not ready in time; every 4xx/5xx body a reason
 *   DELETE /whep/<id>                200, 404 unknown session, 401 without the token
 *   PATCH /whep/<id>                 405 (no trickle ICE: the answer holds every candidate)
 *
 * The server runs on its own thread with its own GMainContext. Plain C++ core: no GObject
 * of ours, no GStreamer.
 */
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vmd::webrtc {

struct WhepServerConfig {
  std::string bind = "127.0.0.1";
  unsigned port = 8080; /* 0: any free port (bound_port() tells) */
  std::string token;    /* required as "Authorization: Bearer <token>"; empty = no check */
  std::string tls_certificate, tls_private_key; /* PEM files: HTTPS when both are set */
  /* webrtcbin's formats: "stun://host:port", "turn(s)://user:password@host:port" */
  std::string stun_server;
  std::vector<std::string> turn_servers;
  unsigned answer_timeout_ms = 10000;
};

struct WhepAnswer {
  unsigned status = 201;  /* 201, or the 4xx/5xx to answer */
  std::string reason;     /* body of an error answer */
  std::string session_id; /* 201: [A-Za-z0-9-]+ */
  std::string sdp;        /* 201: the complete answer */
};

class WhepHandler {
 public:
  virtual ~WhepHandler() = default;
  /* On the server's thread. `done` is called once, from any thread, at any time; after the
   * server stopped or after answer_timeout_ms it does nothing (the handler must still
   * forget a session it made for a request that timed out: `done` returns false then). */
  virtual void on_offer(const std::string &offer_sdp,
                        std::function<bool(WhepAnswer)> done) = 0;
  /* On the server's thread. False: no such session (404). */
  virtual bool on_delete(const std::string &session_id) = 0;
};

class WhepServer {
 public:
  /* handler must outlive the server (or its stop()). */
  WhepServer(WhepServerConfig config, WhepHandler *handler);
  ~WhepServer();
  WhepServer(const WhepServer &) = delete;
  WhepServer &operator=(const WhepServer &) = delete;

  /* Loads the TLS files, binds, starts the thread. False with *error in words a user can
   * act on ("cannot listen on 127.0.0.1:8080: Address already in use; choose another port
   * or port=0"). */
  bool start(std::string *error);
  /* Stops answering, fails pending requests with 503, joins the thread. Idempotent. */
  void stop();

  unsigned bound_port() const;
  /* "http(s)://HOST:PORT/#token=TOKEN" (HOST is 127.0.0.1 for bind 0.0.0.0). */
  std::string page_url() const;
  /* The Link header values for the configured STUN/TURN servers. */
  static std::vector<std::string> ice_server_links(const WhepServerConfig &config);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmd::webrtc
