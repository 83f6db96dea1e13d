/* gst-vmdisplay: vmwebrtcsink's shared H.264 stream, built inside the bin when the first
 * caps arrive:
 *
 *   raw video: in ! videoconvert ! I420 ! ENCODER ! profile=constrained-baseline
 *              ! h264parse config-interval=-1 ! byte-stream/au ! tee
 *   H.264:     in ! h264parse config-interval=-1 ! byte-stream/au ! tee
 *
 * ENCODER is what helixframesrv would use (gst-libs/encoder: encoder=auto or a factory with
 * our low-latency settings, or a bin description). The tee always feeds a fakesink (so the
 * bin is a sink with or without viewers, and EOS gets out); each viewer takes a tee pad.
 * Raw frames are dropped before the encoder while nobody watches (no CPU spent on a stream
 * nobody sees); the first viewer asks for a keyframe anyway.
 */
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <mutex>
#include <cstdint>
#include <string>

namespace vmd::webrtc {

class EncodedStream {
 public:
  struct Settings {
    std::string encoder = "auto";
    uint32_t bitrate_kbps = 6000;
  };

  /* `bin` is the sink bin; `in` its first element (the ghost pad's target), already in the
   * bin. Not a new reference to either. */
  EncodedStream(GstBin *bin, GstElement *in, Settings settings);
  ~EncodedStream();
  EncodedStream(const EncodedStream &) = delete;
  EncodedStream &operator=(const EncodedStream &) = delete;

  /* Builds the chain for these caps (first caps only; later caps of the same kind flow into
   * the same chain, which renegotiates). False with *error for caps of the other kind than
   * the chain was built for, a missing encoder, or a link failure. Streaming thread. */
  bool build_for(GstCaps *caps, std::string *error);
  bool built() const { return tee_.load() != nullptr; }
  bool raw() const { return raw_; }

  /* The tee viewers link to (nullptr before build_for). Not a new reference. */
  GstElement *tee() const { return tee_.load(); }
  /* While false, raw frames are dropped before the encoder. Any thread. */
  void set_watched(bool watched) { watched_ = watched; }
  /* Sends an upstream force-key-unit (all headers) from the tee. Any thread. */
  void request_keyframe();
  /* Applies a bitrate to the running encoder (raw input only). Any thread. */
  void set_bitrate(uint32_t kbps);
  /* The encoder setting for a chain not built yet. */
  void set_encoder(const std::string &encoder);

 private:
  /* The encoder bin (floating), or nullptr with *error. */
  GstElement *build_encoder(std::string *error);
  bool add_and_link(GstElement *const *chain, size_t n, std::string *error);
  static GstPadProbeReturn drop_unwatched(GstPad *, GstPadProbeInfo *info, gpointer self);

  GstBin *bin_;
  GstElement *in_;
  std::mutex lock_; /* settings_ */
  Settings settings_;
  bool raw_ = false;
  std::atomic<GstElement *> tee_{nullptr}; /* set once, by build_for() */
  std::atomic<GstElement *> encoder_{nullptr}; /* the encoder inside, for bitrate */
  std::atomic<bool> watched_{false};
};

}  // namespace vmd::webrtc
