/* gst-vmdisplay: one H.264 encoding pipeline of helixframesrv.
 *
 *   appsrc ! videoconvert ! <encoder> ! h264parse config-interval=-1
 *     ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink
 *
 * Each client has its own (created on first use); encode() is synchronous: it pushes one raw
 * frame and waits, with a timeout, for its access unit. The pipeline is rebuilt when the frame
 * size or format changes (or the frame rate or profile a CONFIG_REQ asked for): nothing is in
 * flight then, and the new encoder starts with an IDR. Bitrate changes are applied live.
 *
 * Stopping never waits for an encoder: encode() waits for its access unit in short slices and
 * gives up as soon as the `cancelled` predicate says so, and a pipeline that may still hold a
 * frame (cancelled, or no output within the timeout) is stopped on GStreamer's async call pool
 * instead of the caller's thread, because the element holding it may not be interruptible
 * (a driver call, a sleeping element).
 * Not thread-safe: one thread (the client's) uses it.
 */
#pragma once

#include "access-unit.h"
#include "encoder-factory.h"

#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vmd::helix {

struct EncodedFrame {
  AccessUnit data; /* one Annex-B access unit, SPS/PPS before each IDR (the encoder's buffer) */
  bool keyframe = false;
  bool empty = true; /* the encoder produced nothing for this frame (yet) */
};

class FrameEncoder {
 public:
  /* cancelled: polled while encode() waits (at least every kPollSliceMs); true makes it give
   * up at once. Called on the encoding thread; may be empty. */
  explicit FrameEncoder(encode::EncoderChoice choice, std::function<bool()> cancelled = nullptr);
  static constexpr int kPollSliceMs = 20;
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder &) = delete;
  FrameEncoder &operator=(const FrameEncoder &) = delete;

  /* Encodes buffer (taken: the caller gives up its reference), whose layout is info plus any
   * GstVideoMeta it carries. False with *error when the pipeline cannot be built or fails; a
   * frame the encoder keeps for later (an encoder with delay) returns true with out->empty. */
  bool encode(GstBuffer *buffer, const GstVideoInfo &info, bool force_keyframe, int timeout_ms,
              EncodedFrame *out, std::string *error);

  /* CONFIG_REQ. 0 keeps the current value. Returns the values in use afterwards. */
  void set_bitrate(uint32_t bitrate_bps);
  void set_framerate(uint32_t num, uint32_t den);
  /* H.264 profile_idc: 66, 77 or 100; anything else lets the encoder choose. */
  void set_profile(uint8_t profile_idc);
  uint32_t bitrate() const { return bitrate_bps_; }
  uint8_t profile() const { return profile_; }
  /* KEYFRAME_REQ: the next frame is an IDR. */
  void request_keyframe() { keyframe_pending_ = true; }

  /* The encoder factory in use (for logs), empty for a custom bin. */
  const std::string &factory() const { return choice_.factory; }

 private:
  bool build(const GstVideoInfo &info, std::string *error);
  void teardown();
  std::string bus_error();

  encode::EncoderChoice choice_;
  std::function<bool()> cancelled_;
  GstElement *pipeline_ = nullptr;
  GstElement *appsrc_ = nullptr;   /* owned by pipeline_ */
  GstElement *appsink_ = nullptr;  /* owned by pipeline_ */
  GstElement *encoder_ = nullptr;  /* owned by pipeline_ */
  GstPad *convert_sink_ = nullptr; /* owned: where force-key-unit events go */
  GstVideoInfo info_;
  bool have_info_ = false;
  bool rebuild_ = false;
  bool keyframe_pending_ = false;
  /* A frame was pushed and its access unit has not come out: the pipeline may be busy. */
  bool frame_inside_ = false;

  uint32_t bitrate_bps_ = 0; /* 0: the encoder's own default */
  uint32_t fps_num_ = 30, fps_den_ = 1;
  uint8_t profile_ = 0;

  /* Timestamps inside the pipeline are our own frame counter (client pts may be anything);
   * this maps them back for encoders that answer late. */
  uint64_t frame_count_ = 0;
};

}  // namespace vmd::helix
