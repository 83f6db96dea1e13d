/* gst-vmdisplay: SUBSCRIBE streams of helixframesrv.
 *
 * One ScanoutStream per scanout that has subscribers: its own thread encodes the newest frame
 * of the scanout with one shared FrameEncoder (frames that arrive while it encodes replace each
 * other: they are lost before encoding, for everyone) and offers each access unit to every
 * Subscriber. A Subscriber is a bounded queue drained by its client's sender thread. When the
 * queue is full the subscriber misses that access unit and every later one until the next IDR,
 * which the stream is asked for at once: what it receives always decodes. A subscriber whose
 * queue stays full while its sender takes nothing for kBehindLimitMs (the client stopped
 * reading) is disconnected; one that reads slowly only misses frames. An access unit larger than the subscriber's
 * max_payload (HELLO) is handled the same way (missed up to the next IDR that fits, an IDR
 * asked for at most once every kKeyRetryMs), and the sender is told once per run so it can send ERROR ENCODE_FAILED. When
 * the scanout goes away (its sink pad is released) every subscriber is ended: the sender
 * sends what is queued, then ERROR RESOURCE_NOT_FOUND, and closes the connection.
 */
#pragma once

#include "frame-server-encoder.h"
#include "hxfr-protocol.h"

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vmd::helix {

constexpr size_t kSubscriberQueue = 8; /* access units waiting for one subscriber */
constexpr int kBehindLimitMs = 2000;   /* full and not read that long: disconnected */
/* Unsent bytes the kernel may hold for a subscribed connection: what is queued beyond our
 * bounded queue is latency nobody can drop, so it is kept to a few access units. */
constexpr int kSubscriberUnsentBytes = 32 * 1024;
constexpr int kKeyRetryMs = 1000;      /* an IDR asked for and not received is asked again */

struct StreamFrame {
  AccessUnit data; /* the encoder's buffer, shared by every subscriber */
  bool keyframe = false;
  int64_t pts_ns = 0;
};

/* The FRAME_RESPONSE payload that carries an access unit of au_size bytes (one NAL entry). */
constexpr uint64_t frame_response_payload(size_t au_size) {
  return uint64_t(vmd::hxfr::kFrameResponseFixedSize) + 4 /* nal size */ + uint64_t(au_size);
}

/* What next() reports besides frames. */
struct SubscriberNotice {
  enum class Kind { kNone, kTooSlow, kOversize, kEnded };
  Kind kind = Kind::kNone;
  std::string text; /* for kOversize and kEnded: the ERROR message to send */
};

class Subscriber {
 public:
  /* on_too_slow runs once, on the stream thread under the subscriber's lock, when the
   * subscriber is dropped: it must only wake the client (shut its connection down).
   * max_payload: the largest FRAME_RESPONSE payload the client accepts.
   * unsent_bytes (may be empty): bytes written to the client's connection that it has not
   * read yet, or -1 when the transport cannot tell; any change of it shows the client reads
   * even while the sender waits inside one large access unit. */
  Subscriber(uint32_t scanout, uint32_t max_payload, std::function<void()> on_too_slow,
             std::function<int64_t()> unsent_bytes = nullptr)
      : scanout_(scanout),
        max_payload_(max_payload),
        on_too_slow_(std::move(on_too_slow)),
        unsent_bytes_(std::move(unsent_bytes)),
        key_requested_at_us_(g_get_monotonic_time()) {}

  uint32_t scanout() const { return scanout_; }
  /* Stream thread: queue an access unit. Returns true when this subscriber needs an IDR. */
  bool offer(const std::shared_ptr<const StreamFrame> &frame);
  /* Sender thread: the next access unit, waiting up to timeout_ms. nullptr on timeout, once
   * closed, or with a notice: kTooSlow (fell behind for too long: already disconnected),
   * kOversize (an access unit over max_payload was missed; reported once per run), kEnded
   * (the scanout went away; reported once the queue is empty, then closed()). */
  std::shared_ptr<const StreamFrame> next(int timeout_ms, SubscriberNotice *notice);
  /* The scanout went away: no more frames; next() reports kEnded with why. */
  void end(const std::string &why);
  void close();
  bool closed();

 private:
  /* While waiting for an IDR: true when the stream should be asked for one now. */
  bool ask_keyframe_locked();

  const uint32_t scanout_;
  const uint32_t max_payload_;
  const std::function<void()> on_too_slow_;
  const std::function<int64_t()> unsent_bytes_;
  std::mutex lock_;
  std::condition_variable cond_;
  std::deque<std::shared_ptr<const StreamFrame>> queue_;
  bool waiting_keyframe_ = true; /* a new subscriber starts at an IDR */
  bool key_requested_ = true;    /* ScanoutStream::add() asks for the first one */
  int64_t key_requested_at_us_;  /* when key_requested_ was last set */
  int64_t behind_since_us_ = 0;  /* queue full since then (0: not full) */
  int64_t last_taken_us_ = 0;    /* the client last showed it reads (see offer()) */
  int64_t last_unsent_ = -1;     /* unsent_bytes_() when last looked at */
  bool too_slow_ = false;
  bool closed_ = false;
  bool ended_ = false;
  std::string end_reason_;
  std::string oversize_text_;    /* an oversize notice waiting for next() */
  bool oversize_reported_ = false; /* in this run of oversized access units */
};

class ScanoutStream {
 public:
  ScanoutStream(uint32_t scanout, encode::EncoderChoice encoder);
  ~ScanoutStream(); /* stops and joins */
  ScanoutStream(const ScanoutStream &) = delete;
  ScanoutStream &operator=(const ScanoutStream &) = delete;

  void add(std::shared_ptr<Subscriber> s);
  /* The scanout goes away: every subscriber is ended with why (before the stream is
   * destroyed). */
  void end_subscribers(const std::string &why);
  /* A new frame of the scanout (new reference taken). Replaces one not yet encoded. */
  void push(GstSample *sample);
  /* CONFIG_REQ / KEYFRAME_REQ of a subscriber: applied by the stream thread. */
  void set_bitrate(uint32_t bitrate_bps);
  void request_keyframe();

 private:
  void run();

  const uint32_t scanout_;
  std::mutex lock_;
  std::condition_variable cond_;
  GstSample *pending_ = nullptr;
  std::vector<std::weak_ptr<Subscriber>> subscribers_;
  uint32_t bitrate_bps_ = 0;
  bool bitrate_changed_ = false;
  bool keyframe_ = false;
  bool stop_ = false;
  std::atomic<bool> cancel_{false}; /* set with stop_: an encode in progress gives up */
  std::unique_ptr<FrameEncoder> encoder_; /* stream thread only */
  std::thread thread_;
};

}  // namespace vmd::helix
