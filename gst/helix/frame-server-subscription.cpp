/* gst-vmdisplay: SUBSCRIBE streams of helixframesrv. */
#include "frame-server-subscription.h"

#include <gst/video/video.h>

#include <algorithm>
#include <utility>

GST_DEBUG_CATEGORY_EXTERN(helix_frame_server_debug);
#define GST_CAT_DEFAULT helix_frame_server_debug

namespace vmd::helix {

namespace {
constexpr int kStreamEncodeTimeoutMs = 5000;
}

bool Subscriber::offer(const std::shared_ptr<const StreamFrame> &frame) {
  std::lock_guard<std::mutex> g(lock_);
  if (closed_ || too_slow_ || ended_)
    return false;
  if (frame_response_payload(frame->data.size()) > max_payload_) {
    /* The client cannot take it: missed like a frame of a full queue, up to the next IDR
     * that fits. An oversized IDR does not answer the request for one; the request is
     * repeated at most every kKeyRetryMs, so a subscriber whose IDRs never fit does not make
     * the shared stream all-IDR for everyone. */
    waiting_keyframe_ = true;
    if (!oversize_reported_) {
      oversize_reported_ = true;
      oversize_text_ = "access unit of " + std::to_string(frame->data.size()) +
                       " bytes for scanout " + std::to_string(scanout_) +
                       " is over your max_payload of " + std::to_string(max_payload_) +
                       " bytes: skipped up to the next keyframe that fits; lower the bitrate "
                       "(CONFIG_REQ) or accept larger payloads in HELLO";
      cond_.notify_all();
    }
    return ask_keyframe_locked();
  }
  if (frame->keyframe)
    key_requested_ = false; /* whatever happens to it, the request was answered */
  if (queue_.size() >= kSubscriberQueue) {
    /* Behind: this access unit and all up to the next IDR are lost for this subscriber. It is
     * disconnected only when it also stopped reading: full since behind_since_us_ and no
     * access unit taken by its sender since then for kBehindLimitMs. A client that reads
     * slowly gets fewer frames (each run resumed by an IDR), not a disconnect. */
    int64_t now = g_get_monotonic_time();
    if (!behind_since_us_)
      behind_since_us_ = now;
    /* The sender may wait minutes inside one access unit for a slow reader (a UNIX socket is
     * writable again only when three quarters of its buffer were read): bytes leaving the
     * socket count as reading too. */
    const int64_t unsent = unsent_bytes_ ? unsent_bytes_() : -1;
    if (unsent >= 0 && last_unsent_ >= 0 && unsent != last_unsent_)
      last_taken_us_ = now;
    last_unsent_ = unsent;
    const int64_t stalled_since = std::max(behind_since_us_, last_taken_us_);
    if (now - stalled_since > int64_t(kBehindLimitMs) * 1000) {
      too_slow_ = true;
      cond_.notify_all();
      /* Its sender may be stuck in a send: wake it now. Under the lock, so close() (which the
       * client calls before it goes away) cannot pass while the callback runs. */
      if (on_too_slow_)
        on_too_slow_();
      return false;
    }
    waiting_keyframe_ = true;
    return false; /* an IDR is asked for once there is room for it */
  }
  behind_since_us_ = 0;
  if (waiting_keyframe_ && !frame->keyframe) {
    /* Room again, but a P-frame would not decode: skip it and ask for an IDR (once, or
     * again after kKeyRetryMs if the one asked for never came or did not fit). */
    return ask_keyframe_locked();
  }
  waiting_keyframe_ = false;
  oversize_reported_ = false;
  queue_.push_back(frame);
  cond_.notify_all();
  return false;
}

bool Subscriber::ask_keyframe_locked() {
  const int64_t now = g_get_monotonic_time();
  if (key_requested_ && now - key_requested_at_us_ < int64_t(kKeyRetryMs) * 1000)
    return false;
  key_requested_ = true;
  key_requested_at_us_ = now;
  return true;
}

std::shared_ptr<const StreamFrame> Subscriber::next(int timeout_ms, SubscriberNotice *notice) {
  std::unique_lock<std::mutex> g(lock_);
  cond_.wait_for(g, std::chrono::milliseconds(timeout_ms), [this] {
    return closed_ || too_slow_ || ended_ || !oversize_text_.empty() || !queue_.empty();
  });
  *notice = SubscriberNotice();
  if (too_slow_) {
    notice->kind = SubscriberNotice::Kind::kTooSlow;
    return nullptr;
  }
  if (closed_)
    return nullptr;
  if (!oversize_text_.empty()) {
    notice->kind = SubscriberNotice::Kind::kOversize;
    notice->text = std::exchange(oversize_text_, std::string());
    return nullptr;
  }
  if (!queue_.empty()) {
    auto f = queue_.front();
    queue_.pop_front();
    /* The sender finished the previous access unit: the client is reading, however slowly. */
    last_taken_us_ = g_get_monotonic_time();
    return f;
  }
  if (ended_) {
    closed_ = true;
    notice->kind = SubscriberNotice::Kind::kEnded;
    notice->text = end_reason_;
  }
  return nullptr;
}

void Subscriber::end(const std::string &why) {
  std::lock_guard<std::mutex> g(lock_);
  if (closed_ || ended_)
    return;
  ended_ = true;
  end_reason_ = why;
  cond_.notify_all();
}

void Subscriber::close() {
  std::lock_guard<std::mutex> g(lock_);
  closed_ = true;
  queue_.clear();
  cond_.notify_all();
}

bool Subscriber::closed() {
  std::lock_guard<std::mutex> g(lock_);
  return closed_;
}

ScanoutStream::ScanoutStream(uint32_t scanout, encode::EncoderChoice encoder)
    : scanout_(scanout),
      encoder_(std::make_unique<FrameEncoder>(std::move(encoder),
                                              [this] { return cancel_.load(); })) {
  thread_ = std::thread([this] { run(); });
}

ScanoutStream::~ScanoutStream() {
  {
    std::lock_guard<std::mutex> g(lock_);
    stop_ = true;
    cancel_ = true; /* an encode in progress gives up within FrameEncoder::kPollSliceMs */
    cond_.notify_all();
  }
  thread_.join();
  if (pending_)
    gst_sample_unref(pending_);
}

void ScanoutStream::add(std::shared_ptr<Subscriber> s) {
  std::lock_guard<std::mutex> g(lock_);
  subscribers_.push_back(s);
  keyframe_ = true; /* the newcomer starts at an IDR */
}

void ScanoutStream::end_subscribers(const std::string &why) {
  std::vector<std::shared_ptr<Subscriber>> live;
  {
    std::lock_guard<std::mutex> g(lock_);
    for (auto &w : subscribers_)
      if (auto s = w.lock())
        live.push_back(std::move(s));
  }
  for (auto &s : live)
    s->end(why);
}

void ScanoutStream::push(GstSample *sample) {
  GstSample *old;
  {
    std::lock_guard<std::mutex> g(lock_);
    old = pending_;
    pending_ = sample;
    cond_.notify_all();
  }
  if (old)
    gst_sample_unref(old);
}

void ScanoutStream::set_bitrate(uint32_t bitrate_bps) {
  std::lock_guard<std::mutex> g(lock_);
  bitrate_bps_ = bitrate_bps;
  bitrate_changed_ = true;
}

void ScanoutStream::request_keyframe() {
  std::lock_guard<std::mutex> g(lock_);
  keyframe_ = true;
}

void ScanoutStream::run() {
  for (;;) {
    GstSample *sample = nullptr;
    bool keyframe = false;
    uint32_t bitrate = 0;
    std::vector<std::shared_ptr<Subscriber>> targets;
    {
      std::unique_lock<std::mutex> g(lock_);
      cond_.wait(g, [this] { return stop_ || pending_; });
      if (stop_)
        break;
      sample = std::exchange(pending_, nullptr);
      subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                        [](const std::weak_ptr<Subscriber> &w) {
                                          auto s = w.lock();
                                          return !s || s->closed();
                                        }),
                         subscribers_.end());
      for (auto &w : subscribers_)
        if (auto s = w.lock())
          targets.push_back(s);
      if (targets.empty()) {
        gst_sample_unref(sample);
        continue; /* nobody watching: nothing encoded */
      }
      keyframe = std::exchange(keyframe_, false);
      if (bitrate_changed_) {
        bitrate = bitrate_bps_;
        bitrate_changed_ = false;
      }
    }
    if (bitrate)
      encoder_->set_bitrate(bitrate);
    GstVideoInfo info;
    GstCaps *caps = gst_sample_get_caps(sample);
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    if (!caps || !buffer || !gst_video_info_from_caps(&info, caps)) {
      gst_sample_unref(sample);
      continue;
    }
    GstClockTime pts = GST_BUFFER_PTS(buffer);
    GstBuffer *copy = gst_buffer_copy_region(
        buffer, GstBufferCopyFlags(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_META), 0,
        static_cast<gsize>(-1));
    gst_sample_unref(sample);
    EncodedFrame out;
    std::string error;
    if (!encoder_->encode(copy, info, keyframe, kStreamEncodeTimeoutMs, &out, &error)) {
      if (cancel_)
        break; /* stopping */
      GST_WARNING("scanout %u: %s", scanout_, error.c_str());
      std::lock_guard<std::mutex> g(lock_);
      keyframe_ = true; /* a rebuilt encoder starts with one anyway */
      continue;
    }
    if (out.empty)
      continue;
    auto frame = std::make_shared<StreamFrame>();
    frame->data = std::move(out.data);
    frame->keyframe = out.keyframe;
    frame->pts_ns = GST_CLOCK_TIME_IS_VALID(pts) ? int64_t(pts) : 0;
    bool need_key = false;
    for (auto &s : targets)
      need_key |= s->offer(frame);
    if (need_key) {
      std::lock_guard<std::mutex> g(lock_);
      keyframe_ = true;
    }
  }
}

}  // namespace vmd::helix
