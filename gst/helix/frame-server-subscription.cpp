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
  if (closed_ || too_slow_)
    return false;
  if (frame->keyframe)
    key_requested_ = false; /* whatever happens to it, the request was answered */
  if (queue_.size() >= kSubscriberQueue) {
    /* Behind: this access unit and all up to the next IDR are lost for this subscriber. */
    int64_t now = g_get_monotonic_time();
    if (!behind_since_us_)
      behind_since_us_ = now;
    if (now - behind_since_us_ > int64_t(kBehindLimitMs) * 1000) {
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
    /* Room again, but a P-frame would not decode: skip it and ask for an IDR (once). */
    return !std::exchange(key_requested_, true);
  }
  waiting_keyframe_ = false;
  queue_.push_back(frame);
  cond_.notify_all();
  return false;
}

std::shared_ptr<const StreamFrame> Subscriber::next(int timeout_ms, bool *disconnect) {
  std::unique_lock<std::mutex> g(lock_);
  cond_.wait_for(g, std::chrono::milliseconds(timeout_ms),
                 [this] { return closed_ || too_slow_ || !queue_.empty(); });
  *disconnect = too_slow_;
  if (closed_ || too_slow_ || queue_.empty())
    return nullptr;
  auto f = queue_.front();
  queue_.pop_front();
  return f;
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

ScanoutStream::ScanoutStream(uint32_t scanout, EncoderChoice encoder)
    : scanout_(scanout), encoder_(std::make_unique<FrameEncoder>(std::move(encoder))) {
  thread_ = std::thread([this] { run(); });
}

ScanoutStream::~ScanoutStream() {
  {
    std::lock_guard<std::mutex> g(lock_);
    stop_ = true;
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
