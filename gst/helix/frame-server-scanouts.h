/* gst-vmdisplay: the latest frame of each scanout, shared between helixframesrv's sink pads
 * (writers, on their streaming threads) and the client threads (readers).
 *
 * The host's own copy of the guest screen: a sample is a reference to a buffer qemudbussrc
 * pushed (read-only), so a client never reads guest memory the guest may have freed.
 */
#pragma once

#include "encoder-factory.h"
#include "frame-server-subscription.h"

#include <gst/gst.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace vmd::helix {

class ScanoutRegistry {
 public:
  ScanoutRegistry() = default;
  ~ScanoutRegistry();
  ScanoutRegistry(const ScanoutRegistry &) = delete;
  ScanoutRegistry &operator=(const ScanoutRegistry &) = delete;

  /* A sink pad for scanout id exists (frames may not have arrived yet). */
  void add(uint32_t id);
  /* The pad is released: its frame is forgotten (resource-ID requests get
   * RESOURCE_NOT_FOUND) and its SUBSCRIBE streams end (each subscriber is sent ERROR
   * RESOURCE_NOT_FOUND and closed, see Subscriber::end). */
  void remove(uint32_t id);
  bool exists(uint32_t id);
  /* Size of the scanout's latest frame; false without a sink pad or before its first
   * frame. */
  bool current_size(uint32_t id, uint32_t *width, uint32_t *height);
  /* New frame; takes the sample reference. */
  void push(uint32_t id, GstSample *sample);
  /* The latest frame (a new reference) or nullptr before the first one. */
  GstSample *latest(uint32_t id);

  /* Server stopped: drops every frame and stream (scanouts stay, their pads still exist), so
   * a restarted server never serves a picture from before. */
  void clear_frames();

  /* SUBSCRIBE: false when the scanout has no sink pad. The scanout's shared stream (and its
   * encoder, built from `encoder`) is created for the first subscriber. */
  bool subscribe(uint32_t id, std::shared_ptr<Subscriber> subscriber, const encode::EncoderChoice &encoder);
  /* CONFIG_REQ bitrate / KEYFRAME_REQ of a subscriber, for the shared stream. */
  void set_stream_bitrate(uint32_t id, uint32_t bitrate_bps);
  void request_stream_keyframe(uint32_t id);

 private:
  /* The sample again, its pts advanced by the time since it arrived (a new reference). */
  static GstSample *repeat_now(GstSample *sample, int64_t arrived_us);

  std::mutex lock_;
  std::map<uint32_t, GstSample *> scanouts_; /* nullptr until the first frame */
  std::map<uint32_t, int64_t> arrived_us_;   /* monotonic time the latest frame came */
  std::map<uint32_t, std::unique_ptr<ScanoutStream>> streams_;
};

}  // namespace vmd::helix
