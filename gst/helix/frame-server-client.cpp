/* gst-vmdisplay: one connected HXFR client of helixframesrv. */
#include "frame-server-client.h"

#include <poll.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

GST_DEBUG_CATEGORY_EXTERN(helix_frame_server_debug);
#define GST_CAT_DEFAULT helix_frame_server_debug

namespace vmd::helix {

namespace hx = vmd::hxfr;

ClientSession::ClientSession(uint64_t id, std::unique_ptr<hxfr::Connection> conn,
                             encode::EncoderChoice encoder, uint32_t max_payload,
                             std::shared_ptr<ScanoutRegistry> scanouts, int cancel_fd,
                             SessionLimits limits, std::string token)
    : id_(id),
      conn_(std::move(conn)),
      encoder_choice_(std::move(encoder)),
      max_payload_(max_payload),
      scanouts_(std::move(scanouts)),
      cancel_fd_(cancel_fd),
      limits_(limits),
      token_(std::move(token)),
      authorized_(token_.empty()) {}

ClientSession::~ClientSession() {
  if (thread_) {
    shutdown();
    thread_->join();
  }
}

void ClientSession::start() {
  thread_ = std::make_unique<std::thread>([this] { run(); });
}

void ClientSession::shutdown() {
  stopping_ = true;
  conn_->shutdown();
}

bool ClientSession::cancelled() const {
  if (stopping_)
    return true;
  struct pollfd p = {cancel_fd_, POLLIN, 0};
  return cancel_fd_ >= 0 && poll(&p, 1, 0) > 0;
}

uint16_t ClientSession::reply_session(uint16_t request_session) const {
  /* Helix's host answers every FRAME_REQUEST with session 1; v2 peers get theirs back. */
  return version_ >= 2 ? request_session : 1;
}

bool ClientSession::send(const std::vector<uint8_t> &bytes) {
  if (bytes.empty())
    return false;
  std::lock_guard<std::mutex> g(send_lock_);
  return send_locked(bytes.data(), bytes.size());
}

bool ClientSession::send_locked(const uint8_t *data, size_t size) {
  struct iovec one = {const_cast<uint8_t *>(data), size};
  return send_locked(&one, 1);
}

bool ClientSession::send_locked(const struct iovec *iov, int iovcnt) {
  /* Bounded by the client's reading, not by the message's size: a slow reader of a large
   * access unit is served; one that reads nothing for kSendTimeoutMs is dropped. */
  hxfr::Io io = conn_->send_all_while_read(iov, iovcnt, kSendTimeoutMs, cancel_fd_);
  if (io != hxfr::Io::Ok) {
    GST_WARNING("client %" G_GUINT64_FORMAT " (%s): send failed (%s%s%s): closing", id_,
                conn_->peer().c_str(), hxfr::io_name(io), conn_->last_error().empty() ? "" : ": ",
                conn_->last_error().c_str());
    return false;
  }
  return true;
}

bool ClientSession::send_frame(const hx::FrameResponse &r, const AccessUnit &au,
                               uint16_t session) {
  if (au.empty()) /* no NAL entry */
    return send(hx::encode(r, session));
  /* The access unit goes from the encoder's buffer, after its prefix, in one writev: no
   * copy, and no separate small packet for the prefix. */
  std::vector<uint8_t> prefix = hx::encode_frame_response_prefix(r, session, au.size());
  if (prefix.empty())
    return false;
  const struct iovec iov[2] = {{prefix.data(), prefix.size()},
                               {const_cast<uint8_t *>(au.data()), au.size()}};
  std::lock_guard<std::mutex> g(send_lock_);
  return send_locked(iov, 2);
}

bool ClientSession::send_error(int32_t code, const std::string &text, uint16_t session) {
  hx::Error e;
  e.code = code;
  e.message = text;
  return send(hx::encode(e, session));
}

void ClientSession::run() {
  /* Before a token is checked nothing but a HELLO is taken: no payload larger than one is
   * accepted (and buffered) from a client that may not be allowed in at all. */
  hx::Parser parser(authorized_ ? max_payload_ : hx::kHelloMaxSize);
  last_request_us_ = g_get_monotonic_time();
  while (step(&parser)) {
  }
  if (subscriber_)
    subscriber_->close();
  if (sender_thread_)
    sender_thread_->join();
  encoder_.reset(); /* the pipeline is torn down on this thread */
  conn_->shutdown();
  finished_ = true;
}

bool ClientSession::step(hx::Parser *parser) {
  if (parser->ready()) {
    hx::Message msg = parser->take();
    if (counts_as_request(msg.header.type, first_message_))
      last_request_us_ = g_get_monotonic_time();
    /* What follows in the parser arrived with the last read at the latest. */
    message_start_us_ = parser->at_boundary() ? 0 : last_read_us_;
    if (!handle(std::move(msg)))
      return false;
    if (authorized_)
      parser->set_max_payload(max_payload_);
    return true;
  }
  if (parser->failed() && !authorized_) /* e.g. a v1 client's pixel upload, over a HELLO's size */
    return refuse_unauthorized("first message is not a valid HELLO", 1);
  if (parser->failed()) {
    GST_WARNING("client %" G_GUINT64_FORMAT " (%s): malformed message (%s): closing", id_,
                conn_->peer().c_str(), parser->error_detail().c_str());
    send_error(hx::error_code::kInvalidMsg,
               std::string("invalid message: ") + parser->error_detail(), version_ >= 2 ? 0 : 1);
    return false;
  }
  if (!within_limits(*parser))
    return false;
  hx::Parser::Space space = parser->prepare();
  size_t got = 0;
  hxfr::Io io = conn_->recv_some(space.data, space.size, &got, next_wait_ms(*parser), cancel_fd_);
  if (io == hxfr::Io::Timeout)
    return true;
  if (io != hxfr::Io::Ok) {
    if (io == hxfr::Io::Closed && parser->at_boundary())
      GST_INFO("client %" G_GUINT64_FORMAT " (%s) disconnected", id_, conn_->peer().c_str());
    else if (io != hxfr::Io::Cancelled)
      GST_WARNING("client %" G_GUINT64_FORMAT
                  " (%s): connection ended inside a message "
                  "(%s%s%s)",
                  id_, conn_->peer().c_str(), hxfr::io_name(io),
                  conn_->last_error().empty() ? "" : ": ", conn_->last_error().c_str());
    return false;
  }
  last_read_us_ = g_get_monotonic_time();
  if (parser->at_boundary())
    message_start_us_ = last_read_us_; /* the first byte of a message */
  parser->commit(got);
  return true;
}

/* What keeps a connection from being idle: a message the server acts on. PING, a late HELLO
 * and types it skips do not (a client could otherwise hold a max-clients slot for good with a
 * header of an unknown type now and then). */
bool ClientSession::counts_as_request(hx::MsgType type, bool first) {
  switch (type) {
    case hx::MsgType::kFrameRequest:
    case hx::MsgType::kKeyframeRequest:
    case hx::MsgType::kConfigRequest:
    case hx::MsgType::kEnableScanout:
    case hx::MsgType::kDisableScanout:
    case hx::MsgType::kSubscribe:
      return true;
    case hx::MsgType::kHello:
      return first;
    default:
      return false;
  }
}

bool ClientSession::idle_limited() const {
  return limits_.idle_timeout_ms > 0 && !subscriber_;
}

int ClientSession::next_wait_ms(const hx::Parser &parser) const {
  const int64_t now = g_get_monotonic_time();
  int64_t wait_us = int64_t(kRecvPollMs) * 1000;
  if (!parser.at_boundary())
    wait_us = std::min(wait_us, message_start_us_ + limits_.client_timeout_ms * int64_t(1000) - now);
  if (idle_limited() && parser.at_boundary())
    wait_us = std::min(wait_us, last_request_us_ + limits_.idle_timeout_ms * int64_t(1000) - now);
  return int(std::max<int64_t>(wait_us / 1000 + 1, 1));
}

bool ClientSession::within_limits(const hx::Parser &parser) {
  const int64_t now = g_get_monotonic_time();
  /* A client that stops or trickles inside a message would hold its slot and its payload
   * buffer: the whole message must come within client-timeout of its first byte. */
  if (!parser.at_boundary() && now - message_start_us_ > limits_.client_timeout_ms * int64_t(1000)) {
    GST_WARNING("client %" G_GUINT64_FORMAT " (%s): message not completed within %d ms "
                "(client-timeout): closing", id_, conn_->peer().c_str(), limits_.client_timeout_ms);
    send_error(hx::error_code::kInvalidMsg,
               "message not completed within " + std::to_string(limits_.client_timeout_ms) +
                   " ms of its first byte (helixframesrv client-timeout)",
               version_ >= 2 ? 0 : 1);
    return false;
  }
  /* Idle only between messages: one under way is bounded by client-timeout instead. */
  if (idle_limited() && parser.at_boundary() &&
      now - last_request_us_ > limits_.idle_timeout_ms * int64_t(1000)) {
    GST_INFO("client %" G_GUINT64_FORMAT " (%s): no request for %d ms (idle-timeout): closing",
             id_, conn_->peer().c_str(), limits_.idle_timeout_ms);
    return false;
  }
  return true;
}

bool ClientSession::handle(hx::Message msg) {
  const hx::Header &h = msg.header;
  bool first = first_message_;
  first_message_ = false;
  GST_LOG("client %" G_GUINT64_FORMAT ": %s, %u bytes", id_, hx::msg_type_name(h.type),
          h.payload_size);
  /* With a token, nothing but HELLO (first) is answered before it is checked. */
  if (!authorized_ && !(first && h.type == hx::MsgType::kHello))
    return refuse_unauthorized(first ? "first message is not HELLO (a v1 client)"
                                     : "request before HELLO",
                               1);
  switch (h.type) {
    case hx::MsgType::kHello:
      return on_hello(msg, first);
    case hx::MsgType::kPing:
      return on_ping(msg);
    case hx::MsgType::kFrameRequest:
      return handle_frame_request(std::move(msg));
    case hx::MsgType::kKeyframeRequest:
      return on_keyframe_request();
    case hx::MsgType::kConfigRequest:
      return on_config(msg);
    case hx::MsgType::kEnableScanout:
      return on_enable_scanout(msg);
    case hx::MsgType::kDisableScanout:
      return on_disable_scanout(msg);
    case hx::MsgType::kSubscribe:
      return on_subscribe(msg);
    default:
      /* Unknown types, and host-to-client types a client should not send: skipped, as
       * Helix's host does (this is what keeps v1 and v2 peers compatible). */
      GST_DEBUG("client %" G_GUINT64_FORMAT ": skipping %s (0x%02x)", id_,
                hx::msg_type_name(h.type), unsigned(h.type));
      return true;
  }
}

bool ClientSession::on_hello(const hx::Message &msg, bool first) {
  if (!first) {
    /* A host treats a client that did not start with HELLO as v1 for good; v1 hosts
     * skip the type, so we do too. */
    GST_DEBUG("client %" G_GUINT64_FORMAT ": late HELLO ignored", id_);
    return true;
  }
  hx::Hello hello;
  if (hx::decode(msg.header, msg.view(), &hello) != hx::Status::kOk) {
    send_error(hx::error_code::kInvalidMsg, "invalid HELLO", 0);
    return false;
  }
  if (hello.max_payload < hx::kErrorSize) {
    /* Every fixed-size answer (ERROR is the largest) must fit. */
    GST_WARNING("client %" G_GUINT64_FORMAT ": HELLO max_payload %u is below %u: closing",
                id_, hello.max_payload, hx::kErrorSize);
    send_error(hx::error_code::kInvalidMsg,
               "HELLO max_payload " + std::to_string(hello.max_payload) +
                   " is below " + std::to_string(hx::kErrorSize) +
                   " bytes, the size of an ERROR: a client must accept at least that",
               0);
    return false;
  }
  if (!authorized_) {
    if (hello.token.empty() || !hx::tokens_equal(hello.token, token_))
      return refuse_unauthorized(hello.token.empty() ? "HELLO without a token"
                                                     : "HELLO with a wrong token",
                                 0);
    authorized_ = true;
  }
  hx::HelloResponse r = hx::negotiate(hello, kServerCapabilities, max_payload_);
  version_ = r.version;
  caps_ = r.capabilities;
  peer_max_payload_ = hello.max_payload;
  GST_INFO("client %" G_GUINT64_FORMAT ": HELLO v%u, capabilities 0x%x granted, accepts "
           "payloads up to %u bytes", id_, version_, caps_, peer_max_payload_);
  return send(hx::encode(r, 0));
}

bool ClientSession::refuse_unauthorized(const char *why, uint16_t session) {
  GST_WARNING("client %" G_GUINT64_FORMAT " (%s): %s, but helixframesrv has a token: closing",
              id_, conn_->peer().c_str(), why);
  send_error(hx::error_code::kUnauthorized,
             "token missing or wrong: set vsockenc token=... to helixframesrv's token",
             session);
  return false;
}

bool ClientSession::on_ping(const hx::Message &msg) {
  return send(hx::encode(hx::Pong{}, msg.header.session_id));
}

bool ClientSession::on_keyframe_request() {
  if (encoder_)
    encoder_->request_keyframe();
  if (subscriber_)
    scanouts_->request_stream_keyframe(subscriber_->scanout());
  return true;
}

bool ClientSession::on_config(const hx::Message &msg) {
  hx::ConfigRequest c;
  if (hx::decode(msg.header, msg.view(), &c) != hx::Status::kOk) {
    send_error(hx::error_code::kInvalidMsg, "invalid CONFIG_REQ",
               reply_session(msg.header.session_id));
    return false;
  }
  return handle_config(c, msg.header.session_id);
}

bool ClientSession::on_enable_scanout(const hx::Message &msg) {
  hx::EnableScanout e;
  if (hx::decode(msg.header, msg.view(), &e) != hx::Status::kOk)
    return false;
  /* We cannot plug a display into the guest or change its mode. A scanout that already
   * feeds one of our sink pads at the size asked for (0 = any) is "enabled" already;
   * anything else is refused. */
  hx::ScanoutResponse r;
  r.scanout_id = e.scanout_id;
  if (e.width == 0 && e.height == 0) {
    r.success = scanouts_->exists(e.scanout_id);
  } else {
    uint32_t w = 0, h2 = 0;
    r.success = scanouts_->current_size(e.scanout_id, &w, &h2) &&
                (e.width == 0 || e.width == w) && (e.height == 0 || e.height == h2);
  }
  GST_INFO("client %" G_GUINT64_FORMAT ": ENABLE_SCANOUT %u %ux%u: %s", id_, e.scanout_id,
           e.width, e.height, r.success ? "already enabled at that size" : "refused");
  r.connector = "Virtual-" + std::to_string(uint64_t(e.scanout_id) + 1);
  return send(hx::encode(r, msg.header.session_id));
}

bool ClientSession::on_disable_scanout(const hx::Message &msg) {
  hx::DisableScanout d;
  if (hx::decode(msg.header, msg.view(), &d) != hx::Status::kOk)
    return false;
  hx::ScanoutResponse r; /* we cannot unplug the guest's display: refused */
  r.scanout_id = d.scanout_id;
  r.success = false;
  r.connector = "Virtual-" + std::to_string(uint64_t(d.scanout_id) + 1);
  return send(hx::encode(r, msg.header.session_id));
}

bool ClientSession::on_subscribe(const hx::Message &msg) {
  hx::Subscribe sub;
  if (hx::decode(msg.header, msg.view(), &sub) != hx::Status::kOk)
    return false;
  return handle_subscribe(sub, msg.header.session_id);
}

bool ClientSession::handle_config(const hx::ConfigRequest &c, uint16_t session) {
  if (c.bitrate_bps)
    bitrate_bps_ = c.bitrate_bps;
  if (c.fps_num && c.fps_den) {
    fps_num_ = c.fps_num;
    fps_den_ = c.fps_den;
  }
  if (c.profile)
    profile_ = c.profile;
  if (subscriber_ && c.bitrate_bps) /* Helix: applied to the subscribed scanout */
    scanouts_->set_stream_bitrate(subscriber_->scanout(), c.bitrate_bps);
  if (encoder_) {
    encoder_->set_bitrate(bitrate_bps_);
    encoder_->set_framerate(fps_num_, fps_den_);
    encoder_->set_profile(profile_);
  }
  GST_INFO("client %" G_GUINT64_FORMAT ": CONFIG_REQ bitrate %u bit/s, %u/%u fps, profile %u", id_,
           c.bitrate_bps, c.fps_num, c.fps_den, c.profile);
  if (!has_cap(hx::cap::kConfigResponse))
    return true; /* v1: no reply */
  hx::ConfigResponse r;
  r.applied = c;
  r.applied.bitrate_bps = bitrate_bps_;
  r.applied.fps_num = fps_num_;
  r.applied.fps_den = fps_den_;
  r.applied.profile = (profile_ == 66 || profile_ == 77 || profile_ == 100) ? profile_ : 0;
  r.applied.level_x10 = 0; /* the encoder picks the level */
  r.applied.realtime = true;
  return send(hx::encode(r, session));
}

bool ClientSession::handle_subscribe(const hx::Subscribe &sub, uint16_t session) {
  hx::SubscribeResponse r;
  r.scanout_id = sub.scanout_id;
  /* One subscription per connection (Helix's clients open one connection per stream). */
  if (subscriber_) {
    GST_INFO("client %" G_GUINT64_FORMAT ": second SUBSCRIBE (scanout %u) refused", id_,
             sub.scanout_id);
    return send(hx::encode(r, session));
  }
  auto subscriber = std::make_shared<Subscriber>(sub.scanout_id, peer_max_payload_, [this] {
    GST_WARNING("client %" G_GUINT64_FORMAT
                " (%s): subscriber read nothing for %d ms with its queue full: "
                "disconnecting",
                id_, conn_->peer().c_str(), kBehindLimitMs);
    conn_->shutdown();
  }, [this]() -> int64_t {
    int unsent = 0; /* SIOCOUTQ: UNIX, TCP (unsent + unacknowledged) and vsock sockets */
    return ioctl(conn_->fd(), SIOCOUTQ, &unsent) == 0 ? unsent : -1;
  });
  /* Subscribed before the answer is sent, so the answer is true when it leaves (a pad
   * released meanwhile ends the subscription the usual way); frames queue on the subscriber
   * until the sender thread starts after the answer, so the answer always goes out first. */
  r.success = scanouts_->subscribe(sub.scanout_id, subscriber, encoder_choice_);
  if (r.success) {
    subscriber_ = subscriber;
    /* Little unsent data in the kernel keeps a slow reader's backlog in the subscriber's
     * queue, where access units can be skipped up to an IDR, instead of hundreds of kB of
     * stale stream in the socket. TCP: TCP_NOTSENT_LOWAT bounds only the unsent part, so the
     * window (and throughput over a long round trip) is untouched; a small SO_SNDBUF would
     * turn off the kernel's buffer autotuning. UNIX: a small SO_SNDBUF. Best effort. */
    int domain = 0;
    socklen_t len = sizeof domain;
    const int limit = kSubscriberUnsentBytes;
    int r = 0;
    if (getsockopt(conn_->fd(), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
        (domain == AF_INET || domain == AF_INET6))
      r = setsockopt(conn_->fd(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &limit, sizeof limit);
    else if (domain == AF_UNIX)
      r = setsockopt(conn_->fd(), SOL_SOCKET, SO_SNDBUF, &limit, sizeof limit);
    if (r != 0)
      GST_DEBUG("client %" G_GUINT64_FORMAT ": send buffer limit not set: %s", id_,
                g_strerror(errno));
  }
  if (!send(hx::encode(r, session)))
    return false;
  if (!r.success) {
    GST_INFO("client %" G_GUINT64_FORMAT
             ": SUBSCRIBE to scanout %u refused: no sink pad "
             "sink_%u",
             id_, sub.scanout_id, sub.scanout_id);
    return true;
  }
  sender_thread_ = std::make_unique<std::thread>([this] { sender_loop(); });
  GST_INFO("client %" G_GUINT64_FORMAT ": subscribed to scanout %u", id_, sub.scanout_id);
  return true;
}

void ClientSession::sender_loop() {
  const uint16_t session = uint16_t(subscriber_->scanout());
  for (;;) {
    SubscriberNotice notice;
    std::shared_ptr<const StreamFrame> f = subscriber_->next(kRecvPollMs, &notice);
    switch (notice.kind) {
      case SubscriberNotice::Kind::kTooSlow:
        return; /* the connection was shut down by the stream (on_too_slow) */
      case SubscriberNotice::Kind::kOversize:
        GST_WARNING("client %" G_GUINT64_FORMAT ": %s", id_, notice.text.c_str());
        if (!send_error(hx::error_code::kEncodeFailed, notice.text, session)) {
          conn_->shutdown();
          return;
        }
        continue;
      case SubscriberNotice::Kind::kEnded:
        /* The stream is over for good: say why, then close, so any client notices (a
         * Helix client reconnects on close). */
        GST_INFO("client %" G_GUINT64_FORMAT ": %s: closing", id_, notice.text.c_str());
        send_error(hx::error_code::kResourceNotFound, notice.text, session);
        conn_->shutdown();
        return;
      case SubscriberNotice::Kind::kNone:
        break;
    }
    if (!f) {
      if (subscriber_->closed())
        return;
      continue;
    }
    hx::FrameResponse r;
    r.pts_ns = f->pts_ns;
    r.dts_ns = f->pts_ns;
    r.is_keyframe = f->keyframe;
    if (!send_frame(r, f->data, session)) {
      conn_->shutdown();
      return;
    }
  }
}

bool ClientSession::handle_frame_request(hx::Message msg) {
  const uint16_t session = reply_session(msg.header.session_id);
  hx::FrameRequest req;
  if (hx::decode(msg.header, msg.view(), &req) != hx::Status::kOk) { /* parser checked it */
    send_error(hx::error_code::kInvalidMsg, "invalid FRAME_REQUEST", session);
    return false;
  }
  Picture picture;
  PictureRefusal refusal;
  if (!get_picture(req, std::move(msg), &picture, &refusal)) {
    if (refusal.close)
      GST_WARNING("client %" G_GUINT64_FORMAT ": %s (0x%08x; or too few bytes): closing", id_,
                  refusal.text.c_str(), req.format);
    bool sent = send_error(refusal.code, refusal.text, session);
    return sent && !refusal.close;
  }
  EncodedFrame out;
  std::string error;
  if (!encode_picture(std::move(picture), req.force_keyframe, &out, &error)) {
    GST_WARNING("client %" G_GUINT64_FORMAT ": %s", id_, error.c_str());
    return send_error(hx::error_code::kEncodeFailed, error, session);
  }
  return reply_frame(out, req.pts_ns, session);
}

bool ClientSession::get_picture(const hx::FrameRequest &req, hx::Message msg, Picture *out,
                                PictureRefusal *why) {
  if (req.pixels.size)
    return upload_picture(req, std::move(msg.payload), has_cap(hx::cap::kExtraFormats),
                          version_ < 2, out, why);
  /* Resource ID / scanout: Helix's host encodes its own copy of scanout 0 whatever the
   * resource ID says; v2 peers name the scanout in session_id. */
  uint32_t scanout = version_ >= 2 ? msg.header.session_id : 0;
  return scanout_picture(*scanouts_, scanout, out, why);
}

bool ClientSession::encode_picture(Picture picture, bool force_keyframe, EncodedFrame *out,
                                   std::string *error) {
  if (!encoder_) {
    encoder_ = std::make_unique<FrameEncoder>(encoder_choice_, [this] { return cancelled(); });
    encoder_->set_bitrate(bitrate_bps_);
    encoder_->set_framerate(fps_num_, fps_den_);
    encoder_->set_profile(profile_);
  }
  return encoder_->encode(picture.buffer.release(), picture.info, force_keyframe,
                          kEncodeTimeoutMs, out, error);
}

bool ClientSession::reply_frame(const EncodedFrame &out, int64_t pts_ns, uint16_t session) {
  if (!out.empty && frame_response_payload(out.data.size()) > peer_max_payload_) {
    /* The client said it cannot take a message this large. The frame is lost for it, and
     * the next one must not refer to it: an IDR. The connection stays. */
    encoder_->request_keyframe();
    std::string text = "access unit of " + std::to_string(out.data.size()) +
                       " bytes is over your max_payload of " +
                       std::to_string(peer_max_payload_) +
                       " bytes: frame dropped, the next one will be a keyframe; lower the "
                       "bitrate (CONFIG_REQ) or accept larger payloads in HELLO";
    GST_WARNING("client %" G_GUINT64_FORMAT ": %s", id_, text.c_str());
    return send_error(hx::error_code::kEncodeFailed, text, session);
  }
  hx::FrameResponse r;
  r.pts_ns = pts_ns;
  r.dts_ns = pts_ns; /* no B-frames: decode order is presentation order */
  r.is_keyframe = !out.empty && out.keyframe;
  /* one entry: the whole access unit (v1 peers read only the first); none when empty */
  return send_frame(r, out.data, session);
}

}  // namespace vmd::helix
