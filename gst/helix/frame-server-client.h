/* gst-vmdisplay: one connected HXFR client of helixframesrv.
 *
 * Runs on its own thread: reads messages with the streaming parser (zero copy into the
 * payload), answers them in order, and encodes with its own FrameEncoder. Version 1 (Helix)
 * until the first message is a HELLO; then the negotiated version and capabilities. Any framing
 * error is answered with ERROR INVALID_MSG and ends this connection only. Nothing larger than
 * the max_payload the client announced in HELLO (64 MiB for v1 clients, Helix's own limit)
 * is sent to it: an access unit that would not fit is answered ERROR ENCODE_FAILED instead.
 */
#pragma once

#include "frame-server-encoder.h"
#include "frame-server-picture.h"
#include "frame-server-scanouts.h"
#include "frame-server-subscription.h"
#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace vmd::helix {

/* What this server really implements, announced in HELLO_RESP (intersected with the
 * client's). Not SCANOUT_CONTROL: we cannot plug or unplug the guest's displays (see
 * docs/helixframesrv.md). */
constexpr uint32_t kServerCapabilities =
    vmd::hxfr::cap::kPixelUpload | vmd::hxfr::cap::kResourceId | vmd::hxfr::cap::kSubscribe |
    vmd::hxfr::cap::kExtraFormats | vmd::hxfr::cap::kKeyframeRequest |
    vmd::hxfr::cap::kConfigResponse | vmd::hxfr::cap::kOneReplyPerFrame;

/* Bounds on waiting for a peer. */
constexpr int kSendTimeoutMs = 5000;   /* a client that does not read for this long is dropped */
constexpr int kRecvPollMs = 1000;      /* how often an idle reader checks for stop */
constexpr int kEncodeTimeoutMs = 5000; /* first frame includes the encoder's start-up */

/* Bounds on what one connection may hold (helixframesrv's client-timeout, idle-timeout). */
struct SessionLimits {
  int client_timeout_ms = 10000; /* a started message must be complete within this */
  int idle_timeout_ms = 60000;   /* no request (PING aside), no subscription: closed; 0 never */
};

class ClientSession {
 public:
  ClientSession(uint64_t id, std::unique_ptr<hxfr::Connection> conn, encode::EncoderChoice encoder,
                uint32_t max_payload, std::shared_ptr<ScanoutRegistry> scanouts, int cancel_fd,
                SessionLimits limits, std::string token);
  ~ClientSession(); /* joins */
  ClientSession(const ClientSession &) = delete;
  ClientSession &operator=(const ClientSession &) = delete;

  void start();
  /* Wakes the thread and cancels an encode in progress (the server's cancel fd does both for
   * everyone at stop). */
  void shutdown();
  bool finished() const { return finished_; }

 private:
  void run();
  /* One message handled or one read: false to close. */
  bool step(vmd::hxfr::Parser *parser);
  /* client-timeout and idle-timeout: false (after telling the client) when one has passed. */
  bool within_limits(const vmd::hxfr::Parser &parser);
  bool idle_limited() const;
  static bool counts_as_request(vmd::hxfr::MsgType type, bool first);
  int next_wait_ms(const vmd::hxfr::Parser &parser) const; /* until the next limit or poll */
  /* false: close the connection */
  bool handle(vmd::hxfr::Message msg); /* dispatches to one of: */
  bool on_hello(const vmd::hxfr::Message &msg, bool first);
  bool refuse_unauthorized(const char *why, uint16_t session); /* ERROR UNAUTHORIZED; false: close */
  bool on_ping(const vmd::hxfr::Message &msg);
  bool on_keyframe_request();
  bool on_config(const vmd::hxfr::Message &msg);
  bool on_enable_scanout(const vmd::hxfr::Message &msg);
  bool on_disable_scanout(const vmd::hxfr::Message &msg);
  bool on_subscribe(const vmd::hxfr::Message &msg);
  /* FRAME_REQUEST: the picture (upload or scanout), encoded, answered. */
  bool handle_frame_request(vmd::hxfr::Message msg);
  bool get_picture(const vmd::hxfr::FrameRequest &req, vmd::hxfr::Message msg, Picture *out,
                   PictureRefusal *why);
  bool encode_picture(Picture picture, bool force_keyframe, EncodedFrame *out,
                      std::string *error);
  bool reply_frame(const EncodedFrame &out, int64_t pts_ns, uint16_t session);
  bool handle_config(const vmd::hxfr::ConfigRequest &c, uint16_t session);
  bool handle_subscribe(const vmd::hxfr::Subscribe &s, uint16_t session);
  void sender_loop(); /* subscription frames, on sender_thread_ */
  bool send(const std::vector<uint8_t> &bytes);
  bool send_locked(const uint8_t *data, size_t size); /* send_lock_ held */
  bool send_locked(const struct iovec *iov, int iovcnt); /* send_lock_ held */
  /* A FRAME_RESPONSE with au as its one NAL entry (none when empty), sent from au's buffer. */
  bool send_frame(const vmd::hxfr::FrameResponse &r, const AccessUnit &au, uint16_t session);
  bool send_error(int32_t code, const std::string &text, uint16_t session);
  uint16_t reply_session(uint16_t request_session) const;
  bool has_cap(uint32_t bit) const { return version_ >= 2 && (caps_ & bit); }
  /* True once the server stops or this session is shut down: encodes give up. */
  bool cancelled() const;

  uint64_t id_;
  std::unique_ptr<hxfr::Connection> conn_;
  encode::EncoderChoice encoder_choice_;
  uint32_t max_payload_;
  std::shared_ptr<ScanoutRegistry> scanouts_;
  int cancel_fd_;
  const SessionLimits limits_;
  const std::string token_; /* empty: no authentication */
  std::unique_ptr<std::thread> thread_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> stopping_{false};
  std::mutex send_lock_; /* replies and subscription frames share the connection */

  std::shared_ptr<Subscriber> subscriber_; /* after a successful SUBSCRIBE */
  std::unique_ptr<std::thread> sender_thread_;

  /* client thread only */
  std::unique_ptr<FrameEncoder> encoder_;
  uint16_t version_ = vmd::hxfr::kVersion1;
  uint32_t caps_ = 0;
  /* Largest payload the client accepts (HELLO; v1: Helix's 64 MiB). Written by the client
   * thread before the sender thread exists. */
  uint32_t peer_max_payload_ = vmd::hxfr::kDefaultMaxPayload;
  bool first_message_ = true;
  bool authorized_ = false; /* a HELLO with the token came (or none is wanted) */
  int64_t last_request_us_ = 0;  /* monotonic: the last message other than PING */
  int64_t message_start_us_ = 0; /* the first byte of the message being read came */
  int64_t last_read_us_ = 0;
  /* CONFIG_REQ values, kept until the encoder exists */
  uint32_t bitrate_bps_ = 0, fps_num_ = 0, fps_den_ = 0;
  uint8_t profile_ = 0;
};

}  // namespace vmd::helix
