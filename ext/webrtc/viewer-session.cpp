/* gst-vmdisplay: one viewer of vmwebrtcsink (see viewer-session.h). */
#include "viewer-session.h"

#include "webrtc-log.h"

#include <gst/sdp/sdp.h>

#define GST_CAT_DEFAULT vmd_webrtc_debug

namespace vmd::webrtc {

/* The header extensions this branch writes: none. Answering one we do not write breaks
 * playback: with the MID extension negotiated, Chromium 156 accepted no packet without it
 * (no inbound-rtp at all) whenever the answer also named our SSRC. */
static const std::vector<std::string> kSupportedExtensions = {};

/* Marks a viewer's branch elements (qdata: no ref, no name convention to keep). */
static GQuark branch_quark() {
  static GQuark quark = g_quark_from_static_string("vmd-viewer-branch");
  return quark;
}

bool in_viewer_branch(GstObject *object) {
  GstObject *o = object ? GST_OBJECT(gst_object_ref(object)) : nullptr;
  while (o) {
    if (g_object_get_qdata(G_OBJECT(o), branch_quark())) {
      gst_object_unref(o);
      return true;
    }
    GstObject *parent = gst_object_get_parent(o);
    gst_object_unref(o);
    o = parent;
  }
  return false;
}

/* Each callback reaches the session through its token (callback-token.h):
 * nothing runs on a session that is torn down. */
struct ViewerSession::Signals {
  using Token = CallbackToken<ViewerSession>;
  static void remote_set(GstPromise *promise, gpointer data) {
    gst_promise_unref(promise);
    Token::with(data, [](ViewerSession &self) { self.on_remote_set(); });
  }
  static void answer_created(GstPromise *promise, gpointer data) {
    Token::with(data, [promise](ViewerSession &self) { self.on_answer_created(promise); });
    gst_promise_unref(promise);
  }
  static void gathering(GObject *, GParamSpec *, gpointer data) {
    Token::with(data, [](ViewerSession &self) { self.on_gathering_changed(); });
  }
  static void ice_state(GObject *, GParamSpec *, gpointer data) {
    Token::with(data, [](ViewerSession &self) { self.on_ice_state_changed(); });
  }
  static void data_channel(GstElement *, GstWebRTCDataChannel *channel, gpointer data) {
    Token::with(data, [channel](ViewerSession &self) { self.on_data_channel(channel); });
  }
  static void channel_open(GstWebRTCDataChannel *, gpointer data) {
    Token::with(data, [](ViewerSession &self) { self.on_channel_open(); });
  }
  static void channel_close(GstWebRTCDataChannel *, gpointer data) {
    Token::with(data, [](ViewerSession &self) {
      {
        std::lock_guard<std::mutex> guard(self.lock_);
        self.channel_open_ = false;
      }
      if (!self.torn_down_ && self.cb_.gone)
        self.cb_.gone("the data channel closed");
    });
  }
  static void rtcp_seen(GstElement *, guint, guint, gpointer data) {
    Token::with(data, [](ViewerSession &self) { self.alive_us_ = g_get_monotonic_time(); });
  }
  static void rtcp_bye(GstElement *, guint, guint, gpointer data) {
    Token::with(data, [](ViewerSession &self) {
      if (!self.torn_down_ && self.cb_.gone)
        self.cb_.gone("RTCP BYE");
    });
  }
  static void channel_message(GstWebRTCDataChannel *, const gchar *text, gpointer data) {
    Token::with(data, [text](ViewerSession &self) {
      if (text && !self.torn_down_ && self.cb_.message)
        self.cb_.message(text);
    });
  }
};

void ViewerSession::connect(gpointer instance, const char *signal, GCallback callback) {
  g_signal_connect_data(instance, signal, callback, token_.data(),
                        CallbackToken<ViewerSession>::closure_notify, GConnectFlags(0));
}

void ViewerSession::on_channel_open() {
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (channel_open_)
      return; /* on-open, and the ready-state check after connecting to it */
    channel_open_ = true;
  }
  if (!torn_down_ && cb_.channel_open)
    cb_.channel_open();
}

ViewerSession::ViewerSession(std::string id, GstBin *bin, GstElement *tee,
                             SessionSettings settings, Callbacks callbacks)
    : id_(std::move(id)), bin_(bin), tee_(tee), settings_(std::move(settings)),
      cb_(std::move(callbacks)), created_us_(g_get_monotonic_time()), alive_us_(created_us_) {}

ViewerSession::~ViewerSession() { teardown(); }

bool ViewerSession::build_branch(const VideoOffer &offer, std::string *why) {
  const std::string q = "viewer-" + id_;
  queue_ = gst_element_factory_make("queue", (q + "-queue").c_str());
  pay_ = gst_element_factory_make("rtph264pay", (q + "-pay").c_str());
  /* Not a capsfilter: rtph264pay limits its input to the level of a downstream
   * profile-level-id (42e01f: level 3.1, too low for 1280x800 at 60 fps) and 1.22 ignores
   * level-asymmetry-allowed. capssetter lets the payloader take any level (it asks nothing
   * upstream) and then writes the offered profile-level-id and payload type into the caps
   * webrtcbin sees; browsers decode by the stream's own SPS. */
  filter_ = gst_element_factory_make("capssetter", (q + "-caps").c_str());
  webrtc_ = gst_element_factory_make("webrtcbin", (q + "-webrtc").c_str());
  if (!queue_ || !pay_ || !filter_ || !webrtc_) {
    *why = !webrtc_ ? "webrtcbin is missing: install gstreamer1.0-plugins-bad"
                    : "rtph264pay or capssetter is missing: install gstreamer1.0-plugins-good";
    for (GstElement **e : {&queue_, &pay_, &filter_, &webrtc_})
      if (*e)
        gst_object_unref(gst_object_ref_sink(*e)), *e = nullptr;
    return false;
  }
  /* A viewer that falls behind loses frames (and asks for a keyframe), never stalls the tee. */
  g_object_set(queue_, "leaky", 2 /* downstream */, "max-size-buffers", 60u,
               "max-size-bytes", 0u, "max-size-time", guint64(GST_SECOND), nullptr);
  g_object_set(pay_, "aggregate-mode", 1 /* zero-latency */, "config-interval", -1, "pt",
               guint(offer.payload_type), nullptr);
  GstCaps *caps = video_rtp_caps(offer, kSupportedExtensions);
  g_object_set(filter_, "caps", caps, "join", TRUE, "replace", FALSE, nullptr);
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  if (!settings_.stun_server.empty())
    g_object_set(webrtc_, "stun-server", settings_.stun_server.c_str(), nullptr);
  if (!settings_.turn_server.empty())
    g_object_set(webrtc_, "turn-server", settings_.turn_server.c_str(), nullptr);

  for (GstElement *e : {queue_, pay_, filter_, webrtc_})
    g_object_set_qdata(G_OBJECT(e), branch_quark(), GINT_TO_POINTER(1));
  gst_bin_add_many(bin_, queue_, pay_, filter_, webrtc_, nullptr);
  GstPad *sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
  bool ok = sink && gst_element_link_many(queue_, pay_, filter_, nullptr);
  if (ok) {
    GstPad *src = gst_element_get_static_pad(filter_, "src");
    ok = gst_pad_link(src, sink) == GST_PAD_LINK_OK;
    gst_object_unref(src);
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(sink, "transceiver", &trans, nullptr);
    if (trans) {
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY,
                   "codec-preferences", caps, nullptr);
      gst_object_unref(trans);
    }
  }
  gst_caps_unref(caps);
  if (sink)
    gst_object_unref(sink);
  if (!ok) {
    *why = "cannot link the viewer's payloader to webrtcbin";
    return false;
  }
  connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(Signals::gathering));
  connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(Signals::ice_state));
  connect(webrtc_, "on-data-channel", G_CALLBACK(Signals::data_channel));
  rtpbin_ = gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin");
  if (rtpbin_) {
    connect(rtpbin_, "on-ssrc-active", G_CALLBACK(Signals::rtcp_seen));
    connect(rtpbin_, "on-bye-ssrc", G_CALLBACK(Signals::rtcp_bye));
  }
  for (GstElement *e : {webrtc_, filter_, pay_, queue_})
    gst_element_sync_state_with_parent(e);

  /* Linked last, when the branch is running: the tee sends it buffers from then on. */
  tee_pad_ = gst_element_request_pad_simple(tee_, "src_%u");
  pay_sink_ = gst_element_get_static_pad(queue_, "sink");
  if (!tee_pad_ || gst_pad_link(tee_pad_, pay_sink_) != GST_PAD_LINK_OK) {
    *why = "cannot link the viewer to the encoded stream";
    return false;
  }
  return true;
}

bool ViewerSession::start(const std::string &offer_sdp, const VideoOffer &offer,
                          std::string *why) {
  if (!build_branch(offer, why))
    return false;
  set_remote_offer(offer_sdp);
  return true;
}

void ViewerSession::set_remote_offer(const std::string &offer_sdp) {
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(offer_sdp.c_str(), &sdp);
  GstWebRTCSessionDescription *desc =
      gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  GstPromise *promise = gst_promise_new_with_change_func(
      Signals::remote_set, token_.data(), CallbackToken<ViewerSession>::destroy_notify);
  g_signal_emit_by_name(webrtc_, "set-remote-description", desc, promise);
  gst_webrtc_session_description_free(desc);
}

void ViewerSession::on_remote_set() {
  if (torn_down_)
    return;
  GstPromise *promise = gst_promise_new_with_change_func(
      Signals::answer_created, token_.data(), CallbackToken<ViewerSession>::destroy_notify);
  g_signal_emit_by_name(webrtc_, "create-answer", nullptr, promise);
}

void ViewerSession::on_answer_created(GstPromise *promise) {
  if (torn_down_)
    return;
  const GstStructure *reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription *answer = nullptr;
  if (reply)
    gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
  if (!answer) {
    GError *err = nullptr;
    if (reply)
      gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr);
    answer_once(false, std::string("webrtcbin could not answer the offer: ") +
                           (err ? err->message : "no reason given"));
    g_clear_error(&err);
    return;
  }
  g_signal_emit_by_name(webrtc_, "set-local-description", answer, nullptr);
  gst_webrtc_session_description_free(answer);
  {
    std::lock_guard<std::mutex> guard(lock_);
    local_set_ = true;
  }
  on_gathering_changed(); /* gathering may be complete already */
}

void ViewerSession::on_gathering_changed() {
  GstWebRTCICEGatheringState state = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
  g_object_get(webrtc_, "ice-gathering-state", &state, nullptr);
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (!local_set_ || answered_ || state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
      return;
  }
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) {
    answer_once(false, "webrtcbin has no local description");
    return;
  }
  gchar *text = gst_sdp_message_as_text(local->sdp);
  answer_once(true, text);
  g_free(text);
  gst_webrtc_session_description_free(local);
}

void ViewerSession::answer_once(bool ok, const std::string &sdp_or_reason) {
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (answered_)
      return;
    answered_ = true;
  }
  GST_INFO("viewer %s: %s (%zu bytes)", id_.c_str(), ok ? "answer complete" : "no answer",
           sdp_or_reason.size());
  if (cb_.answered)
    cb_.answered(ok, sdp_or_reason);
}

void ViewerSession::on_ice_state_changed() {
  GstWebRTCICEConnectionState state = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
  g_object_get(webrtc_, "ice-connection-state", &state, nullptr);
  GST_DEBUG("viewer %s: ICE connection state %d", id_.c_str(), int(state));
  const bool connected = state == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
                         state == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED;
  const bool was = ice_connected_.exchange(connected);
  if (connected && !was) {
    alive_us_ = g_get_monotonic_time();
    if (cb_.connected && !torn_down_)
      cb_.connected();
  }
  if ((state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED ||
       state == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED) && cb_.gone && !torn_down_)
    cb_.gone(state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED ? "ICE failed" : "ICE closed");
}

void ViewerSession::on_data_channel(GstWebRTCDataChannel *channel) {
  gchar *label = nullptr;
  g_object_get(channel, "label", &label, nullptr);
  const bool input = label && g_str_equal(label, "input");
  GST_INFO("viewer %s: data channel '%s'%s", id_.c_str(), label ? label : "",
           input ? "" : " ignored (only 'input' is ours)");
  g_free(label);
  if (!input)
    return;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (channel_ || torn_down_)
      return; /* one input channel per viewer; none after teardown */
    channel_ = GST_WEBRTC_DATA_CHANNEL(gst_object_ref(channel));
  }
  connect(channel, "on-open", G_CALLBACK(Signals::channel_open));
  connect(channel, "on-close", G_CALLBACK(Signals::channel_close));
  connect(channel, "on-message-string", G_CALLBACK(Signals::channel_message));
  GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CONNECTING;
  g_object_get(channel, "ready-state", &state, nullptr);
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
    on_channel_open();
}

bool ViewerSession::send(const std::string &text) {
  GstWebRTCDataChannel *channel = nullptr;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (!channel_ || !channel_open_ || torn_down_)
      return false;
    channel = GST_WEBRTC_DATA_CHANNEL(gst_object_ref(channel_));
  }
  GError *err = nullptr;
  bool ok = gst_webrtc_data_channel_send_string_full(channel, text.c_str(), &err);
  if (!ok)
    GST_DEBUG("viewer %s: send failed: %s", id_.c_str(), err ? err->message : "?");
  g_clear_error(&err);
  gst_object_unref(channel);
  return ok;
}

void ViewerSession::teardown() {
  if (torn_down_.exchange(true))
    return;
  /* No callback runs on this session from here on (one under way on
   * webrtcbin's thread is waited out). */
  token_.revoke();
  GstWebRTCDataChannel *channel = nullptr;
  {
    std::lock_guard<std::mutex> guard(lock_);
    std::swap(channel, channel_);
    channel_open_ = false;
  }
  if (channel)
    gst_object_unref(channel);
  if (rtpbin_) {
    gst_object_unref(rtpbin_);
    rtpbin_ = nullptr;
  }
  if (tee_pad_) {
    /* tee's release unlinks the pad and is safe while it streams. */
    gst_element_release_request_pad(tee_, tee_pad_);
    gst_object_unref(tee_pad_);
    tee_pad_ = nullptr;
  }
  if (pay_sink_) {
    gst_object_unref(pay_sink_);
    pay_sink_ = nullptr;
  }
  for (GstElement **e : {&webrtc_, &filter_, &pay_, &queue_}) {
    if (!*e)
      continue;
    gst_element_set_locked_state(*e, TRUE);
    gst_element_set_state(*e, GST_STATE_NULL);
    gst_bin_remove(bin_, *e);
    *e = nullptr;
  }
  GST_INFO("viewer %s: gone", id_.c_str());
}

}  // namespace vmd::webrtc
