/* gst-vmdisplay: SUBSCRIBE streams of helixframesrv.
 *
 * One ScanoutStream per scanout that has subscribers: its own thread encodes the newest frame
 * of the scanout with one shared FrameEncoder (frames that arrive while it encodes replace each
 * other: they are lost before encoding, for everyone) and offers each access unit to every
 * Subscriber. A Subscriber is a bounded queue drained by its client's sender thread. When the
 * queue is full the subscriber misses that access unit and every later one until the next IDR,
 * which the stream is asked for at once: what it receives always decodes. A subscriber that
 * stays full for kBehindLimitMs is disconnected.
 */
#pragma once

#include "frame-server-encoder.h"

#include <gst/gst.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vmd::helix {

constexpr size_t kSubscriberQueue = 8; /* access units waiting for one subscriber */
constexpr int kBehindLimitMs = 2000;   /* full that long: disconnected */

struct StreamFrame {
  std::vector<uint8_t> data;
  bool keyframe = false;
  int64_t pts_ns = 0;
};

class Subscriber {
 public:
  /* on_too_slow runs once, on the stream thread under the subscriber's lock, when the
   * subscriber is dropped: it must only wake the client (shut its connection down). */
  Subscriber(uint32_t scanout, std::function<void()> on_too_slow)
      : scanout_(scanout), on_too_slow_(std::move(on_too_slow)) {}

  uint32_t scanout() const { return scanout_; }
  /* Stream thread: queue an access unit. Returns true when this subscriber needs an IDR. */
  bool offer(const std::shared_ptr<const StreamFrame> &frame);
  /* Sender thread: the next access unit, waiting up to timeout_ms. nullptr on timeout or
   * once closed; *disconnect is set when it fell behind for too long. */
  std::shared_ptr<const StreamFrame> next(int timeout_ms, bool *disconnect);
  void close();
  bool closed();

 private:
  const uint32_t scanout_;
  const std::function<void()> on_too_slow_;
  std::mutex lock_;
  std::condition_variable cond_;
  std::deque<std::shared_ptr<const StreamFrame>> queue_;
  bool waiting_keyframe_ = true; /* a new subscriber starts at an IDR */
  bool key_requested_ = true;    /* ScanoutStream::add() asks for the first one */
  int64_t behind_since_us_ = 0;
  bool too_slow_ = false;
  bool closed_ = false;
};

class ScanoutStream {
 public:
  ScanoutStream(uint32_t scanout, EncoderChoice encoder);
  ~ScanoutStream(); /* stops and joins */
  ScanoutStream(const ScanoutStream &) = delete;
  ScanoutStream &operator=(const ScanoutStream &) = delete;

  void add(std::shared_ptr<Subscriber> s);
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
  std::unique_ptr<FrameEncoder> encoder_; /* stream thread only */
  std::thread thread_;
};

}  // namespace vmd::helix
