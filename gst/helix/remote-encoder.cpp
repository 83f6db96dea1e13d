/* gst-vmdisplay: the client side of HXFR remote encoding (see remote-encoder.h). */
#include "remote-encoder.h"

#include "h264-au.h"

#include "hxfr-parser.h"

#include <glib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace vmd {

namespace hx = vmd::hxfr;

namespace {

/* Helix's vsockenc sends session_id 1 for frames; hosts ignore it for FRAME_REQUEST. */
constexpr uint16_t kFrameSession = 1;
/* The reader polls this often when nothing is in flight; wake_fd_ ends the wait sooner. */
constexpr int kIdlePollMs = 1000;

int64_t now_us() { return g_get_monotonic_time(); }

void signal_fd(int fd) {
  uint64_t one = 1;
  ssize_t r = write(fd, &one, sizeof one);
  (void)r; /* an eventfd write only fails on counter overflow, which cannot happen here */
}

void drain_fd(int fd) {
  uint64_t value;
  ssize_t r = read(fd, &value, sizeof value);
  (void)r; /* EAGAIN when it was not signalled: nothing to drain */
}

std::string caps_text(const PeerInfo &p) {
  if (p.version < hx::kVersion2)
    return "protocol v1 (no HELLO answer)";
  return "protocol v" + std::to_string(p.version) + ", capabilities 0x" +
         [](uint32_t v) {
           char buf[16];
           snprintf(buf, sizeof buf, "%x", v);
           return std::string(buf);
         }(p.capabilities);
}

}  // namespace

const char *drop_cause_name(DropCause cause) {
  switch (cause) {
    case DropCause::kNone:
      return "none";
    case DropCause::kNotSent:
      return "not-sent";
    case DropCause::kTimeout:
      return "timeout";
    case DropCause::kClosed:
      return "closed";
    case DropCause::kHostError:
      return "host-error";
    case DropCause::kNoData:
      return "no-data";
    case DropCause::kSkippedByHost:
      return "skipped-by-host";
  }
  return "unknown";
}

RemoteEncoder::RemoteEncoder(RemoteEncoderConfig config, ResultFn on_result, LinkFn on_link,
                             NoteFn on_note)
    : config_(std::move(config)),
      on_result_(std::move(on_result)),
      on_link_(std::move(on_link)),
      on_note_(std::move(on_note)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      flush_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

RemoteEncoder::~RemoteEncoder() { stop(); }

size_t RemoteEncoder::in_flight() {
  std::lock_guard<std::mutex> guard(lock_);
  return pending_.size();
}

bool RemoteEncoder::wait_for_slot() {
  std::unique_lock<std::mutex> lock(lock_);
  /* Each request has a deadline the reader enforces, so this wait ends; the bound below is
   * only a guard against a bug turning into a hang. */
  int64_t guard_until = now_us() + int64_t(config_.timeout_ms) * 3000 + 1000000;
  while (!flushing_ && link_ && pending_.size() >= std::max(1u, config_.max_in_flight)) {
    if (cond_.wait_for(lock, std::chrono::milliseconds(100)) == std::cv_status::timeout &&
        now_us() > guard_until) {
      fail_link_locked(link_, "no reply from the host encoder while waiting for a free slot");
      break;
    }
  }
  return !flushing_;
}

void RemoteEncoder::join_reader(std::unique_lock<std::mutex> &lock) {
  if (!reader_.joinable())
    return;
  signal_fd(wake_fd_.get());
  std::thread t = std::move(reader_);
  lock.unlock();
  t.join();
  lock.lock();
  drain_fd(wake_fd_.get());
}

LinkResult RemoteEncoder::ensure_connected(PeerInfo *peer, std::string *why) {
  std::unique_lock<std::mutex> lock(lock_);
  if (flushing_) {
    *why = "flushing";
    return {LinkStatus::kFlushing};
  }
  if (link_) {
    *peer = link_->peer;
    return {LinkStatus::kOk};
  }
  join_reader(lock);
  if (link_) { /* cannot happen (only this thread connects), kept for safety */
    *peer = link_->peer;
    return {LinkStatus::kOk};
  }
  int64_t now = now_us();
  if (now < retry_at_us_) {
    *why = "not connected to " + config_.address.text + " (next attempt in " +
           std::to_string((retry_at_us_ - now) / 1000 + 1) + " ms)";
    return {LinkStatus::kBackoff};
  }
  LinkStatus status = connect_locked(lock, why);
  if (status == LinkStatus::kOk)
    *peer = link_->peer;
  return {status};
}

/* Reopening a virtio-serial port does not reset its byte stream: late answers meant for the
 * previous link may still be queued. Drops what arrives until the port has been quiet for
 * 100 ms (bounded by timeout_ms). */
void RemoteEncoder::discard_stale_bytes(hxfr::Connection &conn) {
  uint8_t junk[4096];
  const int64_t give_up = now_us() + int64_t(config_.timeout_ms) * 1000;
  size_t got = 0;
  while (now_us() < give_up &&
         conn.recv_some(junk, sizeof junk, &got, 100, flush_fd_.get()) == hxfr::Io::Ok) {
  }
}

/* The configuration goes first on every connection: a new host session starts from its
 * defaults. Nothing to send before set_config(). */
bool RemoteEncoder::send_config(hxfr::Connection &conn, std::string *why) {
  hx::ConfigRequest cfg;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (!have_config_)
      return true;
    cfg = config_req_;
  }
  auto bytes = hx::encode(cfg, kFrameSession);
  hxfr::Io io = conn.send_all(bytes.data(), bytes.size(), config_.timeout_ms, flush_fd_.get());
  if (io != hxfr::Io::Ok) {
    *why = std::string("sending CONFIG_REQ: ") + hxfr::io_name(io);
    return false;
  }
  return true;
}

LinkStatus RemoteEncoder::connect_locked(std::unique_lock<std::mutex> &lock, std::string *why) {
  bool report = !lost_reported_;
  lock.unlock();
  std::string error;
  auto link = std::make_shared<Link>();
  link->conn = hxfr::connect_to(config_.address, config_.timeout_ms, flush_fd_.get(), &error);
  bool ok = link->conn != nullptr;
  if (ok && config_.address.kind == hxfr::TransportKind::CharDevice)
    discard_stale_bytes(*link->conn);
  if (ok) {
    link->peer.peer = link->conn->peer();
    ok = hello(*link->conn, &link->peer, &error) && send_config(*link->conn, &error);
  }
  lock.lock();
  LinkStatus status = ok ? LinkStatus::kOk : LinkStatus::kFailed;
  if (ok && flushing_) {
    status = LinkStatus::kFlushing;
    error = "flushing";
    report = false;
  }
  if (status != LinkStatus::kOk) {
    backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, config_.backoff_max_ms)
                              : config_.backoff_initial_ms;
    retry_at_us_ = now_us() + int64_t(backoff_ms_) * 1000;
    /* connect_to's errors name the address already */
    *why = link->conn ? config_.address.text + ": " + error : error;
    if (report) {
      lost_reported_ = true;
      lock.unlock();
      on_link_(true, *why);
      lock.lock();
    }
    return status;
  }
  start_link_locked(lock, link);
  return LinkStatus::kOk;
}

/* A new connection is up: it becomes the link, with its own reader; the next frame is a
 * keyframe. */
void RemoteEncoder::start_link_locked(std::unique_lock<std::mutex> &lock,
                                      std::shared_ptr<Link> link) {
  link_ = link;
  backoff_ms_ = 0;
  lost_reported_ = false;
  force_keyframe_ = true;
  config_dirty_ = false;
  /* Leftover stop signal from the previous reader, if any, was drained in join_reader(). */
  reader_ = std::thread(&RemoteEncoder::reader_main, this, link);
  std::string text = "connected to " + config_.address.text + ", " + caps_text(link->peer);
  lock.unlock();
  on_link_(false, text);
  lock.lock();
}

bool RemoteEncoder::hello(hxfr::Connection &conn, PeerInfo *peer, std::string *why) {
  *peer = PeerInfo{hx::kVersion1, 0, hx::kDefaultMaxPayload, conn.peer()};
  if (config_.hello_timeout_ms <= 0)
    return v1_peer_usable(why);
  hx::Hello h;
  h.capabilities = config_.capabilities;
  h.max_payload = config_.max_payload;
  h.token = config_.token;
  auto bytes = hx::encode(h, 0);
  hxfr::Io io = conn.send_all(bytes.data(), bytes.size(), config_.timeout_ms, flush_fd_.get());
  if (io != hxfr::Io::Ok) {
    *why = std::string("sending HELLO: ") + hxfr::io_name(io);
    if (io == hxfr::Io::Error && !conn.last_error().empty())
      *why += " (" + conn.last_error() + ")";
    return false;
  }
  /* Nothing at all within the HELLO timeout means a v1 host. A message that is neither
   * HELLO_RESP nor ERROR can only be a late answer meant for an earlier connection (a
   * character device keeps its byte stream across reopening): skipped, and the wait goes on.
   * The parser reads no byte past the message it is in, so nothing meant for the reader
   * thread is taken here. Bounded: new messages are only started until the HELLO deadline,
   * and one that has started must end within timeout_ms after it. */
  hx::Parser parser(config_.max_payload);
  /* With a token, a v1 host is no use anyway: wait the whole timeout-ms for the answer, so a
   * slow host (loaded, under valgrind) is not taken for a v1 one. */
  const int wait_ms = config_.token.empty() ? config_.hello_timeout_ms
                                            : std::max(config_.hello_timeout_ms,
                                                       config_.timeout_ms);
  const int64_t hello_deadline = now_us() + int64_t(wait_ms) * 1000;
  const int64_t hard_deadline = hello_deadline + int64_t(config_.timeout_ms) * 1000;
  for (;;) {
    if (parser.ready()) {
      bool ok = false;
      if (take_hello_answer(parser.take(), peer, why, &ok))
        return ok;
      continue;
    }
    if (parser.failed()) {
      *why = "bad answer to HELLO: " + parser.error_detail();
      return false;
    }
    const bool inside = !parser.at_boundary();
    const int64_t until = inside ? hard_deadline : hello_deadline;
    int left_ms = int(std::max<int64_t>(0, (until - now_us()) / 1000));
    if (!inside && left_ms == 0)
      return v1_peer_usable(why);
    hx::Parser::Space space = parser.prepare();
    size_t got = 0;
    io = conn.recv_some(space.data, space.size, &got, left_ms, flush_fd_.get());
    if (io == hxfr::Io::Timeout && !inside)
      return v1_peer_usable(why);
    if (io != hxfr::Io::Ok) {
      *why = std::string("reading the HELLO answer: ") + hxfr::io_name(io);
      return false;
    }
    parser.commit(got);
  }
}

/* A host that does not answer HELLO speaks v1: fine, unless a token is set, which such a host
 * cannot check (frames would go to whoever listens there). */
bool RemoteEncoder::v1_peer_usable(std::string *why) const {
  if (config_.token.empty())
    return true;
  *why = "the host speaks protocol v1 (no HELLO answer), which cannot check the token: no "
         "frames are sent to it (update the host, or unset token)";
  return false;
}

/* One message read while waiting for the HELLO answer. True when it settles the wait (*ok:
 * whether the link is usable, *peer filled in); false when it is skipped. */
bool RemoteEncoder::take_hello_answer(const hx::Message &msg, PeerInfo *peer, std::string *why,
                                      bool *ok) {
  if (msg.header.type == hx::MsgType::kHelloResponse) {
    hx::HelloResponse r;
    if (hx::decode(msg.header, msg.view(), &r) != hx::Status::kOk) {
      *why = "malformed HELLO_RESP";
      *ok = false;
      return true;
    }
    if (r.max_payload < hx::kErrorSize) {
      /* Not even an ERROR would fit (helixframesrv refuses such a HELLO the same way). */
      *why = "the host's HELLO_RESP announces a max_payload of " +
             std::to_string(r.max_payload) + " bytes, below the " +
             std::to_string(hx::kErrorSize) + " of an ERROR: not a usable host";
      *ok = false;
      return true;
    }
    peer->version = r.version;
    peer->capabilities = r.capabilities & config_.capabilities;
    peer->max_payload = r.max_payload;
    *ok = true;
    return true;
  }
  if (msg.header.type == hx::MsgType::kError) {
    hx::Error err;
    hx::decode(msg.header, msg.view(), &err);
    if (err.code == hx::error_code::kUnauthorized) {
      *why = config_.token.empty()
                 ? "the host wants a token (ERROR -7): set vsockenc's token to helixframesrv's"
                 : "the host refused the token (ERROR -7): set the same token as "
                   "helixframesrv's";
      *ok = false;
      return true;
    }
    *ok = v1_peer_usable(why); /* the earliest Helix host answers unknown types with ERROR */
    return true;
  }
  if (on_note_)
    on_note_(std::string("skipped a ") + hx::msg_type_name(msg.header.type) +
             " received before the HELLO answer (meant for an earlier connection)");
  return false;
}

void RemoteEncoder::fail_link_locked(const std::shared_ptr<Link> &link_ref,
                                     const std::string &why) {
  std::shared_ptr<Link> link = link_ref; /* link_ref may be link_ itself, reset below */
  if (!link || link_ != link)
    return;
  link_.reset();
  link->failure = why;
  force_keyframe_ = true;
  backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, config_.backoff_max_ms)
                            : config_.backoff_initial_ms;
  retry_at_us_ = now_us() + int64_t(backoff_ms_) * 1000;
  link->conn->shutdown();
  signal_fd(wake_fd_.get());
  cond_.notify_all();
}

void RemoteEncoder::submit(uint64_t id, hx::FrameRequest m, const struct iovec *iov, int iovcnt,
                           size_t pixel_bytes) {
  std::unique_lock<std::mutex> lock(lock_);
  if (!link_) {
    lock.unlock();
    drop(id, "not connected");
    return;
  }
  std::shared_ptr<Link> link = link_;
  m.force_keyframe = m.force_keyframe || force_keyframe_;
  force_keyframe_ = false;
  bool send_cfg = config_dirty_;
  config_dirty_ = false;
  hx::ConfigRequest cfg = config_req_;
  /* Queued before it is sent so the reader can never see its answer first. The deadline
   * covers the send and the reply; it is narrowed to the reply once the send is done. */
  enqueue_locked(Pending{id, m.pts_ns, now_us() + int64_t(config_.timeout_ms) * 2000,
                         m.resource_id != 0, false, {}});
  lock.unlock();

  hxfr::Io io = hxfr::Io::Ok;
  std::string what;
  if (send_cfg) {
    auto bytes = hx::encode(cfg, kFrameSession);
    io = link->conn->send_all(bytes.data(), bytes.size(), config_.timeout_ms, flush_fd_.get());
    what = "sending CONFIG_REQ";
  }
  if (io == hxfr::Io::Ok) {
    auto prefix = hx::encode_frame_request_prefix(m, kFrameSession, pixel_bytes);
    if (prefix.empty()) {
      io = hxfr::Io::Error;
      what = "frame too large for HXFR";
    } else {
      std::vector<struct iovec> all;
      all.reserve(size_t(iovcnt) + 1);
      all.push_back({prefix.data(), prefix.size()});
      for (int i = 0; i < iovcnt; i++)
        all.push_back(iov[i]);
      io = link->conn->send_all(all.data(), int(all.size()), config_.timeout_ms,
                                flush_fd_.get());
      what = "sending FRAME_REQUEST";
    }
  }

  lock.lock();
  if (io != hxfr::Io::Ok) {
    std::string why = what + ": " + hxfr::io_name(io);
    bool was_live = link_ == link;
    fail_link_locked(link, why);
    if (was_live && !flushing_) {
      lost_reported_ = true;
      lock.unlock();
      on_link_(true, "connection to " + config_.address.text + " lost (" + why + ")");
      return;
    }
    return;
  }
  for (auto &p : pending_) {
    if (p.id == id && !p.skip) {
      p.deadline_us = now_us() + int64_t(config_.timeout_ms) * 1000;
      if (&p == &pending_.front())
        signal_fd(wake_fd_.get()); /* the reader waits for the wider deadline: a new one */
      break;
    }
  }
}

/* Queues an entry; when it is the new front the reader is woken, as it may be sleeping its
 * idle poll (nothing was in flight) and must wait for this entry's deadline instead. */
void RemoteEncoder::enqueue_locked(Pending p) {
  const bool first = pending_.empty();
  pending_.push_back(std::move(p));
  if (first)
    signal_fd(wake_fd_.get());
}

void RemoteEncoder::drop(uint64_t id, const std::string &reason) {
  std::unique_lock<std::mutex> lock(lock_);
  force_keyframe_ = true; /* the next frame must not refer to this one */
  if (!link_)
    join_reader(lock); /* its last drops go first */
  if (pending_.empty() && delivering_ == 0) {
    lock.unlock();
    EncodeResult r;
    r.id = id;
    r.dropped = true;
    r.cause = DropCause::kNotSent;
    r.reason = reason;
    on_result_(std::move(r));
    return;
  }
  /* Frames before it are still in flight: the reader reports this one after them. */
  enqueue_locked(Pending{id, 0, 0, false, true, reason});
}

void RemoteEncoder::set_config(const hx::ConfigRequest &config) {
  std::lock_guard<std::mutex> guard(lock_);
  bool same = have_config_ && std::memcmp(&config, &config_req_, sizeof config) == 0;
  config_req_ = config;
  have_config_ = true;
  if (!same)
    config_dirty_ = true;
}

bool RemoteEncoder::wait_idle() {
  std::unique_lock<std::mutex> lock(lock_);
  while (!flushing_ && (!pending_.empty() || delivering_ > 0)) {
    if (!link_ && reader_.joinable() && !pending_.empty() && delivering_ == 0) {
      /* Only skipped frames are left and no reader will report them: do it here. */
      join_reader(lock);
      deliver_front_locked(lock);
      continue;
    }
    cond_.wait_for(lock, std::chrono::milliseconds(100));
  }
  return !flushing_;
}

void RemoteEncoder::set_flushing(bool flushing) {
  std::lock_guard<std::mutex> guard(lock_);
  flushing_ = flushing;
  if (flushing)
    signal_fd(flush_fd_.get());
  else
    drain_fd(flush_fd_.get());
  cond_.notify_all();
}

void RemoteEncoder::reset(const std::string &why) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!link_)
    return;
  fail_link_locked(link_, why);
  retry_at_us_ = 0;
  backoff_ms_ = 0;
}

void RemoteEncoder::stop() {
  std::unique_lock<std::mutex> lock(lock_);
  if (link_)
    fail_link_locked(link_, "stopping");
  join_reader(lock);
  deliver_front_locked(lock);
  retry_at_us_ = 0;
  backoff_ms_ = 0;
  lost_reported_ = false;
}

/* Hands out, in order, the entries at the front that need no answer (skipped frames), or
 * every entry when no link is left. Called with the lock held; releases it while calling. */
void RemoteEncoder::deliver_front_locked(std::unique_lock<std::mutex> &lock) {
  for (;;) {
    size_t n = 0;
    while (n < pending_.size() && (pending_[n].skip || !link_))
      n++;
    if (n == 0)
      return;
    std::vector<EncodeResult> out;
    take_drops_locked(n, DropCause::kClosed,
                      [](const Pending &) { return std::string("connection closed"); }, &out);
    hand_out_locked(lock, &out);
  }
}

size_t RemoteEncoder::take_drops_locked(size_t count, DropCause cause, const LostWhy &lost_why,
                                        std::vector<EncodeResult> *out) {
  size_t lost = 0;
  for (size_t i = 0; i < count && !pending_.empty(); i++) {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    EncodeResult d;
    d.id = p.id;
    d.dropped = true;
    d.used_resource_id = p.resource_id;
    if (p.skip) {
      d.cause = DropCause::kNotSent;
      d.reason = std::move(p.reason);
    } else {
      d.cause = cause;
      d.reason = lost_why(p);
      lost++;
    }
    out->push_back(std::move(d));
  }
  return lost;
}

void RemoteEncoder::hand_out_locked(std::unique_lock<std::mutex> &lock,
                                    std::vector<EncodeResult> *out) {
  delivering_ += int(out->size());
  lock.unlock();
  for (auto &result : *out) {
    on_result_(std::move(result));
    std::lock_guard<std::mutex> guard(lock_);
    delivering_--;
    cond_.notify_all();
  }
  out->clear();
  lock.lock();
}

void RemoteEncoder::reader_main(std::shared_ptr<Link> link) {
  hx::Parser parser(config_.max_payload);
  ReaderEnd end;
  /* FRAME_RESPONSEs discarded since the last one that matched a request: a host that does
   * not echo pts shows up as frames timing out with this count in the reason. */
  unsigned unmatched = 0;
  hx::Message msg;
  while (read_message(link, parser, unmatched, &msg, &end))
    match_answer(link, std::move(msg), &unmatched);
  finish_reader(link, std::move(end));
}

/* How long the reader may wait for bytes: until the oldest request's deadline, or the idle
 * poll. False when the reader must end (*end says why). */
bool RemoteEncoder::reader_wait_ms(const std::shared_ptr<Link> &link, unsigned unmatched,
                                   int *wait_ms, ReaderEnd *end) {
  std::unique_lock<std::mutex> lock(lock_);
  if (link_ == link)
    deliver_front_locked(lock);
  if (link_ != link) {
    end->report = false;
    end->why = "connection closed";
    return false;
  }
  *wait_ms = kIdlePollMs;
  if (pending_.empty())
    return true;
  int64_t left = (pending_.front().deadline_us - now_us()) / 1000;
  if (left < 0) {
    end->cause = DropCause::kTimeout;
    end->why = "no reply from the host encoder within " + std::to_string(config_.timeout_ms) +
               " ms";
    if (unmatched)
      end->why += " (" + std::to_string(unmatched) +
                  " answers in the meantime carried a pts no frame in flight has: the host "
                  "must echo each FRAME_REQUEST's pts in its FRAME_RESPONSE)";
    return false;
  }
  *wait_ms = int(std::min<int64_t>(left + 1, kIdlePollMs));
  return true;
}

/* Reads until one whole message is there. False when the reader must end (*end says why). */
bool RemoteEncoder::read_message(const std::shared_ptr<Link> &link, hx::Parser &parser,
                                 unsigned unmatched, hx::Message *msg, ReaderEnd *end) {
  for (;;) {
    int wait_ms = 0;
    if (!reader_wait_ms(link, unmatched, &wait_ms, end))
      return false;
    hx::Parser::Space space = parser.prepare();
    size_t got = 0;
    hxfr::Io io = link->conn->recv_some(space.data, space.size, &got, wait_ms, wake_fd_.get());
    if (io == hxfr::Io::Timeout)
      continue;
    if (io == hxfr::Io::Cancelled) {
      /* Drained before the state is looked at again (under the lock, at the top), so no
       * wake-up is lost: an exit shows there as link_ != link. */
      drain_fd(wake_fd_.get());
      continue;
    }
    if (io != hxfr::Io::Ok) {
      end->why = "connection to " + config_.address.text + " lost (" + hxfr::io_name(io) + ")";
      return false;
    }
    parser.commit(got);
    if (parser.failed()) {
      end->why = "malformed message from the host: " + parser.error_detail();
      return false;
    }
    if (parser.ready()) {
      *msg = parser.take();
      return true;
    }
  }
}

/* The result a FRAME_RESPONSE or an ERROR carries; false for any other type (skipped). */
bool RemoteEncoder::decode_answer(hx::Message &&msg, EncodeResult *r, int64_t *pts) {
  if (msg.header.type == hx::MsgType::kFrameResponse) {
    hx::FrameResponse resp;
    hx::decode(msg.header, msg.view(), &resp); /* validated by the parser */
    *pts = resp.pts_ns;
    /* The NALs stay where the parser put them (the views survive the move: the bytes are on
     * the heap); the element copies them once, into its output buffer. */
    r->data.nals = std::move(resp.nals);
    r->data.payload = std::move(msg.payload);
    /* A sync point only when it really starts an IDR: a host that flags any I picture as a
     * keyframe (GStreamer's DELTA_UNIT does) would otherwise have downstream start decoding
     * where later pictures may refer past it. Without a slice to look at, the flag stands. */
    const int slice = h264_first_slice_type_of_pieces(r->data.nals);
    r->keyframe = resp.is_keyframe && (slice == 0 || slice == 5);
    r->dropped = r->data.empty();
    if (r->dropped) {
      r->cause = DropCause::kNoData;
      r->reason = "the host returned no data for this frame";
    }
    return true;
  }
  if (msg.header.type == hx::MsgType::kError) {
    hx::Error err;
    hx::decode(msg.header, msg.view(), &err);
    r->dropped = true;
    r->cause = DropCause::kHostError;
    r->error_code = err.code;
    r->reason = "host error " + std::to_string(err.code) + ": " + err.message;
    return true;
  }
  return false; /* HELLO_RESP arriving late, CONFIG_RESP, PONG, unknown types */
}

/* Which request an answer is for: ERROR (no pts) the oldest one; FRAME_RESPONSE the oldest
 * one sent with its pts. pending_.size() when none. */
size_t RemoteEncoder::find_match_locked(bool is_error, int64_t pts) const {
  for (size_t i = 0; i < pending_.size(); i++) {
    if (!pending_[i].skip && (is_error || pending_[i].pts_ns == pts))
      return i;
  }
  return pending_.size();
}

/* Gives an answer to its request. Requests before it were not answered (the host skipped
 * them, or their answers were lost): they are dropped, in order, and the next frame must be a
 * keyframe. An answer no request is waiting for is discarded with a note. */
void RemoteEncoder::match_answer(const std::shared_ptr<Link> &link, hx::Message &&msg,
                                 unsigned *unmatched) {
  EncodeResult r;
  int64_t answer_pts = 0;
  const bool is_error = msg.header.type == hx::MsgType::kError;
  if (!decode_answer(std::move(msg), &r, &answer_pts))
    return;
  std::unique_lock<std::mutex> lock(lock_);
  if (link_ == link)
    deliver_front_locked(lock);
  if (link_ != link)
    return; /* reset meanwhile: the exit path reports the frames */
  /* Only this thread takes entries off pending_ while the link is up (others only append),
   * so the index stays valid until they are popped below. */
  const size_t match = find_match_locked(is_error, answer_pts);
  if (match == pending_.size()) {
    ++*unmatched;
    std::string note =
        is_error ? "discarded an ERROR that arrived with no frame in flight (" + r.reason + ")"
                 : "discarded a FRAME_RESPONSE with pts " + std::to_string(answer_pts) +
                       ": no frame in flight has that pts (a late answer to a frame already "
                       "given up?)";
    lock.unlock();
    if (on_note_)
      on_note_(note);
    return;
  }
  *unmatched = 0;
  std::vector<EncodeResult> out;
  out.reserve(match + 1);
  const size_t lost = take_drops_locked(
      match, DropCause::kSkippedByHost,
      [answer_pts](const Pending &p) {
        return "the host answered a later frame (pts " + std::to_string(answer_pts) +
               ") before this one (pts " + std::to_string(p.pts_ns) + "): lost";
      },
      &out);
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  r.id = p.id;
  r.used_resource_id = p.resource_id;
  if (lost || r.dropped) /* lost frames break the reference chain downstream */
    force_keyframe_ = true;
  out.push_back(std::move(r));
  hand_out_locked(lock, &out);
}

/* The reader's exit: closes the link, reports every frame still in flight on it as lost (in
 * order), and the loss itself once (unless someone else closed it, or we are flushing). */
void RemoteEncoder::finish_reader(const std::shared_ptr<Link> &link, ReaderEnd end) {
  std::unique_lock<std::mutex> lock(lock_);
  bool was_live = link_ == link;
  fail_link_locked(link, end.why);
  if (!was_live && !link->failure.empty()) {
    end.why = link->failure; /* closed by someone else: their reason names the frames' loss */
    end.cause = DropCause::kClosed;
  }
  if (was_live && end.report && !flushing_)
    lost_reported_ = true;
  else
    end.report = false;
  while (!pending_.empty()) {
    std::vector<EncodeResult> out;
    take_drops_locked(pending_.size(), end.cause, [&end](const Pending &) { return end.why; },
                      &out);
    hand_out_locked(lock, &out);
  }
  cond_.notify_all();
  lock.unlock();
  if (end.report)
    on_link_(true, end.why);
}

}  // namespace vmd
