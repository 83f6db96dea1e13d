/* gst-vmdisplay: the client side of HXFR remote encoding, as used by vsockenc.
 *
 * Plain C++ (no GStreamer): one connection to a host encoder at a time, the HELLO exchange,
 * CONFIG_REQ, a FIFO of frames in flight and a reader thread that matches each answer to its
 * request. Hosts echo the request's pts in FRAME_RESPONSE, so a FRAME_RESPONSE goes to the
 * oldest request in flight with that pts: one whose pts matches no request in flight (a late
 * answer to a frame already given up, e.g. on a virtio-serial port whose byte stream outlives
 * the connection) is discarded, and one that matches a later request means the requests
 * before it were not answered: they are reported dropped and the next frame asks for a
 * keyframe. ERROR carries no pts: it goes to the oldest request (FIFO). Requests with equal
 * pts (frames without timestamps are all sent as pts 0) are therefore matched in order.
 * Every wait is bounded: connect, HELLO, each send and each
 * reply have timeout_ms. When a reply is late or the connection breaks, every frame in flight
 * is reported dropped (in order), the link is closed, the next connection attempt waits a
 * backoff (100 ms doubling to 2 s), and the next frame sent asks for a keyframe.
 *
 * Threads: the caller's thread (the element's streaming thread) calls wait_for_slot(),
 * ensure_connected(), submit(), wait_idle(); the reader thread delivers results through the
 * callback; set_flushing() and reset() may come from any thread. The result callback is
 * called without any lock of this class held, always in request order; it may block (the
 * element takes its stream lock in it), so the caller must not hold that lock while it calls
 * any method here that joins the reader (ensure_connected, submit, stop).
 */
#pragma once

#include "encoded-au.h"
#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"
#include "unique-fd.h"

#include <sys/uio.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vmd {

struct RemoteEncoderConfig {
  hxfr::Address address;
  int timeout_ms = 2000;
  unsigned max_in_flight = 2;
  /* Capabilities offered in HELLO. */
  uint32_t capabilities = vmd::hxfr::cap::kPixelUpload | vmd::hxfr::cap::kResourceId |
                          vmd::hxfr::cap::kExtraFormats | vmd::hxfr::cap::kOneReplyPerFrame;
  /* Shared secret sent in HELLO (empty: none). With one, a host that cannot check it (a v1
   * host) is not used. Never put in a log line or a reason. */
  std::string token;
  /* How long to wait for HELLO_RESP; 0 skips HELLO (a pure v1 client). */
  int hello_timeout_ms = vmd::hxfr::kHelloTimeoutMs;
  /* Reconnect backoff after a failure: first delay, doubled per failure up to the maximum. */
  int backoff_initial_ms = 100;
  int backoff_max_ms = 2000;
  /* Largest payload_size accepted from the host: announced in HELLO and enforced on every
   * message read (a larger one is a framing error that ends the connection). */
  uint32_t max_payload = vmd::hxfr::kDefaultMaxPayload;
};

/* What the host answered for one request (or why there is no answer). */
struct EncodeResult {
  uint64_t id = 0;
  bool dropped = false;     /* no output: timeout, disconnect, not connected, or ERROR */
  bool keyframe = false;
  int32_t error_code = 0;   /* the host's ERROR code when it answered ERROR */
  bool used_resource_id = false;
  EncodedAu data;            /* Annex-B access unit: the host's NALs, not yet copied */
  std::string reason;        /* why dropped, for a log line */
};

/* What the connection negotiated. */
struct PeerInfo {
  uint16_t version = vmd::hxfr::kVersion1;
  uint32_t capabilities = 0; /* granted bits; 0 for a v1 peer */
  uint32_t max_payload = vmd::hxfr::kDefaultMaxPayload;
  std::string peer;
  bool has(uint32_t bit) const { return (capabilities & bit) != 0; }
};

/* Why ensure_connected() has no connection to offer (kOk: it has one). */
enum class LinkStatus {
  kOk,
  kFlushing, /* set_flushing(true): the caller gives up the frame */
  kBackoff,  /* the last attempt failed and the next is not due yet */
  kFailed,   /* this attempt failed (the text says why) */
};

/* What ensure_connected() returns beside its text; true when connected. */
struct LinkResult {
  LinkStatus status = LinkStatus::kFailed;
  explicit operator bool() const { return status == LinkStatus::kOk; }
};

class RemoteEncoder {
 public:
  using ResultFn = std::function<void(EncodeResult &&)>;
  /* Connection events for logs and bus messages: lost=true with why, or lost=false on a new
   * connection (reason describes the peer). */
  using LinkFn = std::function<void(bool lost, const std::string &reason)>;
  /* Notes for the debug log (an answer that matched no request and was discarded). Called
   * from the reader thread without any lock of this class held. */
  using NoteFn = std::function<void(const std::string &note)>;

  RemoteEncoder(RemoteEncoderConfig config, ResultFn on_result, LinkFn on_link,
                NoteFn on_note = nullptr);
  ~RemoteEncoder();
  RemoteEncoder(const RemoteEncoder &) = delete;
  RemoteEncoder &operator=(const RemoteEncoder &) = delete;

  /* Waits until fewer than max_in_flight requests are outstanding. False when flushing. */
  bool wait_for_slot();

  /* Connects (with HELLO and CONFIG_REQ) unless connected or inside the backoff delay.
   * Returns the peer when connected; otherwise the status says why not, and *why in words. */
  LinkResult ensure_connected(PeerInfo *peer, std::string *why);

  /* Sends one FRAME_REQUEST (m.pixels ignored: pixel data comes from iov, pixel_bytes in
   * total) and queues it; its result comes through the callback. A frame that cannot be sent
   * is reported dropped through the callback too. force_keyframe is added when a previous
   * frame was lost. Sends a pending CONFIG_REQ first. */
  void submit(uint64_t id, vmd::hxfr::FrameRequest m, const struct iovec *iov, int iovcnt,
              size_t pixel_bytes);

  /* Reports a frame dropped without sending it (in order with the frames in flight). */
  void drop(uint64_t id, const std::string &reason);

  /* Sets the encoder configuration; sent on every connect and, when changed, before the next
   * frame. */
  void set_config(const vmd::hxfr::ConfigRequest &config);

  /* Waits until nothing is in flight (each request has its own deadline, so this ends).
   * False when flushing. */
  bool wait_idle();

  /* Wakes and fails every wait (FLUSH_START); set_flushing(false) to go on. */
  void set_flushing(bool flushing);

  /* Forgets the connection and the frames in flight (FLUSH): they are reported dropped by the
   * reader as it exits; the next frame reconnects at once. Does not block. */
  void reset(const std::string &why);

  /* Closes the connection and joins the reader. Pending frames are reported dropped. */
  void stop();

  /* Outstanding requests right now. */
  size_t in_flight();

 private:
  struct Pending {
    uint64_t id;
    int64_t pts_ns;      /* as sent: a FRAME_RESPONSE is matched to its request by it */
    int64_t deadline_us; /* reply due by then (reader enforces it) */
    bool resource_id;
    bool skip;          /* dropped before sending: reported in order, no reply expected */
    std::string reason; /* why, for skipped frames */
  };
  struct Link {
    std::unique_ptr<hxfr::Connection> conn;
    PeerInfo peer;
    std::string failure; /* why it was closed (set once, under lock_) */
  };

  LinkStatus connect_locked(std::unique_lock<std::mutex> &lock, std::string *why);
  void discard_stale_bytes(hxfr::Connection &conn);
  bool send_config(hxfr::Connection &conn, std::string *why);
  void start_link_locked(std::unique_lock<std::mutex> &lock, std::shared_ptr<Link> link);
  bool hello(hxfr::Connection &conn, PeerInfo *peer, std::string *why);
  bool take_hello_answer(const hxfr::Message &msg, PeerInfo *peer, std::string *why, bool *ok);
  bool v1_peer_usable(std::string *why) const;
  void fail_link_locked(const std::shared_ptr<Link> &link, const std::string &why);
  void join_reader(std::unique_lock<std::mutex> &lock);
  /* Why the reader ends, and whether that is reported as a lost connection. */
  struct ReaderEnd {
    std::string why;
    bool report = true;
  };
  /* The reason a frame in flight taken off the queue unanswered is lost. */
  using LostWhy = std::function<std::string(const Pending &)>;

  /* The reader thread: reads a message, matches it to its request, and at the end reports
   * what is left as dropped. */
  void reader_main(std::shared_ptr<Link> link);
  bool reader_wait_ms(const std::shared_ptr<Link> &link, unsigned unmatched, int *wait_ms,
                      ReaderEnd *end);
  bool read_message(const std::shared_ptr<Link> &link, hxfr::Parser &parser,
                    unsigned unmatched, hxfr::Message *msg, ReaderEnd *end);
  static bool decode_answer(hxfr::Message &&msg, EncodeResult *r, int64_t *pts);
  size_t find_match_locked(bool is_error, int64_t pts) const;
  void match_answer(const std::shared_ptr<Link> &link, hxfr::Message &&msg,
                    unsigned *unmatched);
  void finish_reader(const std::shared_ptr<Link> &link, ReaderEnd end);

  /* Drop reports: takes the first count entries off pending_ (a skipped frame keeps its own
   * reason, a frame in flight gets lost_why's) and returns how many were in flight; then
   * hands results out in order without the lock. */
  size_t take_drops_locked(size_t count, const LostWhy &lost_why,
                           std::vector<EncodeResult> *out);
  void hand_out_locked(std::unique_lock<std::mutex> &lock, std::vector<EncodeResult> *out);
  void deliver_front_locked(std::unique_lock<std::mutex> &lock);
  void enqueue_locked(Pending p);

  const RemoteEncoderConfig config_;
  const ResultFn on_result_;
  const LinkFn on_link_;
  const NoteFn on_note_;

  std::mutex lock_;
  std::condition_variable cond_;
  std::shared_ptr<Link> link_;
  std::deque<Pending> pending_;
  std::thread reader_;
  int delivering_ = 0; /* results taken off pending_ and being handed out right now */
  /* eventfd: readable = the reader must look again at once: its link is gone (exit) or the
   * front of pending_ changed (a new deadline to wait for). The reader drains it. */
  UniqueFd wake_fd_;
  UniqueFd flush_fd_; /* eventfd: readable = waits of the caller's thread give up */
  bool flushing_ = false;
  bool force_keyframe_ = false;
  bool config_dirty_ = false;
  bool have_config_ = false;
  vmd::hxfr::ConfigRequest config_req_;
  int64_t retry_at_us_ = 0;
  int backoff_ms_ = 0;
  bool lost_reported_ = false;
};

}  // namespace vmd
