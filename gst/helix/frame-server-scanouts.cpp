/* gst-vmdisplay: the latest frame of each scanout. */
#include "frame-server-scanouts.h"

#include <gst/video/video.h>

#include <algorithm>

#include <utility>
#include <vector>

namespace vmd::helix {

ScanoutRegistry::~ScanoutRegistry() {
  streams_.clear(); /* joins their threads */
  for (auto &s : scanouts_)
    if (s.second)
      gst_sample_unref(s.second);
}

void ScanoutRegistry::add(uint32_t id) {
  std::lock_guard<std::mutex> g(lock_);
  scanouts_.emplace(id, nullptr);
}

void ScanoutRegistry::remove(uint32_t id) {
  GstSample *old = nullptr;
  std::unique_ptr<ScanoutStream> stream;
  {
    std::lock_guard<std::mutex> g(lock_);
    auto it = scanouts_.find(id);
    if (it == scanouts_.end())
      return;
    old = it->second;
    scanouts_.erase(it);
    arrived_us_.erase(id);
    auto st = streams_.find(id);
    if (st != streams_.end()) {
      stream = std::move(st->second);
      streams_.erase(st);
    }
  }
  if (stream)
    stream->end_subscribers("scanout " + std::to_string(id) + " was removed (pad sink_" +
                            std::to_string(id) +
                            " released): its stream has ended; subscribe again once it is "
                            "back");
  stream.reset(); /* joins, outside the lock */
  if (old)
    gst_sample_unref(old);
}

void ScanoutRegistry::clear_frames() {
  std::vector<GstSample *> old;
  std::map<uint32_t, std::unique_ptr<ScanoutStream>> streams;
  {
    std::lock_guard<std::mutex> g(lock_);
    for (auto &s : scanouts_)
      if (s.second)
        old.push_back(std::exchange(s.second, nullptr));
    streams.swap(streams_);
  }
  streams.clear(); /* joins, outside the lock */
  for (GstSample *s : old)
    gst_sample_unref(s);
}

bool ScanoutRegistry::subscribe(uint32_t id, std::shared_ptr<Subscriber> subscriber,
                                const encode::EncoderChoice &encoder) {
  std::lock_guard<std::mutex> g(lock_);
  auto it = scanouts_.find(id);
  if (it == scanouts_.end())
    return false;
  std::unique_ptr<ScanoutStream> &stream = streams_[id];
  const bool existed = stream != nullptr;
  if (!stream)
    stream = std::make_unique<ScanoutStream>(id, encoder);
  stream->add(std::move(subscriber));
  /* Start from the current picture: static screens send nothing new. To a stream that already
   * had it, it goes again as a repeat at the time it is now (its pts moved on by the time
   * since it arrived), so existing subscribers never get two frames with one pts. */
  if (it->second)
    stream->push(existed ? repeat_now(it->second, arrived_us_[id]) : gst_sample_ref(it->second));
  return true;
}

GstSample *ScanoutRegistry::repeat_now(GstSample *sample, int64_t arrived_us) {
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  if (!buffer || !GST_BUFFER_PTS_IS_VALID(buffer))
    return gst_sample_ref(sample);
  GstBuffer *copy = gst_buffer_copy(buffer); /* shares the memory */
  /* Later than the frame, and earlier than the next one can be: the time since it arrived,
   * at most half its duration (1 ms when it has none). A next frame that arrives later than
   * its own pts says could otherwise come out with a pts below the repeat's. */
  const bool has_duration = GST_BUFFER_DURATION_IS_VALID(buffer) && GST_BUFFER_DURATION(buffer) > 1;
  const GstClockTime cap = has_duration ? GST_BUFFER_DURATION(buffer) / 2 : GST_MSECOND;
  const int64_t elapsed_us = std::max<int64_t>(1, g_get_monotonic_time() - arrived_us);
  GST_BUFFER_PTS(copy) += std::min(GstClockTime(elapsed_us) * GST_USECOND, cap);
  GST_BUFFER_DTS(copy) = GST_CLOCK_TIME_NONE;
  GstSample *repeat = gst_sample_new(copy, gst_sample_get_caps(sample),
                                     gst_sample_get_segment(sample), nullptr);
  gst_buffer_unref(copy);
  return repeat;
}

void ScanoutRegistry::set_stream_bitrate(uint32_t id, uint32_t bitrate_bps) {
  std::lock_guard<std::mutex> g(lock_);
  auto st = streams_.find(id);
  if (st != streams_.end())
    st->second->set_bitrate(bitrate_bps);
}

void ScanoutRegistry::request_stream_keyframe(uint32_t id) {
  std::lock_guard<std::mutex> g(lock_);
  auto st = streams_.find(id);
  if (st != streams_.end())
    st->second->request_keyframe();
}

bool ScanoutRegistry::exists(uint32_t id) {
  std::lock_guard<std::mutex> g(lock_);
  return scanouts_.count(id) != 0;
}

void ScanoutRegistry::push(uint32_t id, GstSample *sample) {
  GstSample *old = nullptr;
  {
    std::lock_guard<std::mutex> g(lock_);
    auto it = scanouts_.find(id);
    if (it == scanouts_.end()) {
      old = sample; /* a late frame of a released pad */
    } else {
      old = it->second;
      it->second = sample;
      arrived_us_[id] = g_get_monotonic_time();
    }
    auto st = streams_.find(id);
    if (st != streams_.end() && it != scanouts_.end())
      st->second->push(gst_sample_ref(sample));
  }
  if (old) /* unref outside the lock: it may free a large buffer */
    gst_sample_unref(old);
}

bool ScanoutRegistry::current_size(uint32_t id, uint32_t *width, uint32_t *height) {
  GstSample *sample = latest(id);
  if (!sample)
    return false;
  GstVideoInfo info;
  GstCaps *caps = gst_sample_get_caps(sample);
  bool ok = caps && gst_video_info_from_caps(&info, caps);
  if (ok) {
    *width = uint32_t(GST_VIDEO_INFO_WIDTH(&info));
    *height = uint32_t(GST_VIDEO_INFO_HEIGHT(&info));
  }
  gst_sample_unref(sample);
  return ok;
}

GstSample *ScanoutRegistry::latest(uint32_t id) {
  std::lock_guard<std::mutex> g(lock_);
  auto it = scanouts_.find(id);
  return it != scanouts_.end() && it->second ? gst_sample_ref(it->second) : nullptr;
}

}  // namespace vmd::helix
