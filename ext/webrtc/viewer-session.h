/* gst-vmdisplay: one viewer of vmwebrtcsink: its branch of the encoded stream
 *
 *   tee. ! queue (leaky, 1 s) ! rtph264pay ! capssetter (the offer's payload type and
 *   profile-level-id) ! webrtcbin
 *
 * and the negotiation of its WHEP offer (remote offer -> answer -> ICE gathering complete ->
 * the full answer), its `input` data channel, and its ICE state. The webrtcbin's signals
 * arrive on its own threads; the session only records state and calls its callbacks, which
 * must not tear it down inline: teardown() runs on the owner's thread, never a streaming or
 * webrtcbin thread. A PLI/FIR from the viewer needs nothing here: webrtcbin turns it into an
 * upstream force-key-unit that the payloader, queue and tee pass up to the encoder.
 */
#pragma once

#include "callback-token.h"
#include "sdp-offer.h"

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace vmd::webrtc {

struct SessionSettings {
  std::string stun_server; /* webrtcbin's formats */
  std::string turn_server;
};

/* True when `object` (an element or a pad) is one of a viewer's branch elements (queue,
 * payloader, capsfilter, webrtcbin) or inside one (webrtcbin's own children). Any thread.
 * vmwebrtcsink keeps those elements' bookkeeping messages off the application's bus: a
 * message holds a ref on its source until someone pops it, so on a bus nobody pops (a
 * pipeline without a watch) every torn-down viewer stayed alive, about 250 messages each. */
bool in_viewer_branch(GstObject *object);

class ViewerSession {
 public:
  struct Callbacks {
    /* The full answer (ok) or why there is none. Once. */
    std::function<void(bool ok, const std::string &sdp_or_reason)> answered;
    /* A text message on the `input` channel. */
    std::function<void(const std::string &text)> message;
    /* The `input` channel opened (send the current cursor, the control state). */
    std::function<void()> channel_open;
    /* ICE connected: the viewer needs a keyframe now. */
    std::function<void()> connected;
    /* ICE failed or closed, the channel closed, or an RTCP BYE: the viewer is gone. */
    std::function<void(const char *why)> gone;
  };

  ViewerSession(std::string id, GstBin *bin, GstElement *tee, SessionSettings settings,
                Callbacks callbacks);
  ~ViewerSession();
  ViewerSession(const ViewerSession &) = delete;
  ViewerSession &operator=(const ViewerSession &) = delete;

  const std::string &id() const { return id_; }

  /* Adds and links the branch, then starts answering the offer (answered() later). False
   * with *why when the branch cannot be built. */
  bool start(const std::string &offer_sdp, const VideoOffer &offer, std::string *why);

  /* Sends on the `input` channel when it is open. Any thread. */
  bool send(const std::string &text);

  /* Unlinks the branch from the tee, stops and removes its elements. Idempotent. Not on a
   * streaming thread of the bin or a webrtcbin thread. */
  void teardown();

  bool ice_connected() const { return ice_connected_; }
  /* Monotonic microseconds of the last sign of life: the session's creation, ICE becoming
   * connected, or RTCP from the viewer (browsers send receiver reports every second or so;
   * without consent freshness in 1.22 this is how a closed tab is noticed). */
  gint64 alive_us() const { return alive_us_; }

 private:
  struct Signals; /* C callbacks, friends of this class */
  friend struct Signals;
  /* Connects a callback with a token reference as its data. */
  void connect(gpointer instance, const char *signal, GCallback callback);

  bool build_branch(const VideoOffer &offer, std::string *why);
  void set_remote_offer(const std::string &offer_sdp);
  void on_remote_set();
  void on_answer_created(GstPromise *promise);
  void on_gathering_changed();
  void on_ice_state_changed();
  void on_data_channel(GstWebRTCDataChannel *channel);
  void on_channel_open();
  void answer_once(bool ok, const std::string &sdp_or_reason);

  const std::string id_;
  GstBin *bin_;
  GstElement *tee_;
  SessionSettings settings_;
  Callbacks cb_;
  const gint64 created_us_;
  /* Every callback's data: revoked first thing at teardown. */
  CallbackToken<ViewerSession> token_{this};

  GstElement *queue_ = nullptr, *pay_ = nullptr, *filter_ = nullptr, *webrtc_ = nullptr;
  GstPad *tee_pad_ = nullptr;
  GstPad *pay_sink_ = nullptr;

  std::mutex lock_; /* channel_, answered_ */
  GstWebRTCDataChannel *channel_ = nullptr;
  bool channel_open_ = false;
  bool answered_ = false;
  bool local_set_ = false;
  std::atomic<bool> ice_connected_{false};
  std::atomic<gint64> alive_us_;
  GstElement *rtpbin_ = nullptr;
  std::atomic<bool> torn_down_{false};
};

}  // namespace vmd::webrtc
