/* gst-vmdisplay tests: a WHEP viewer without a browser (see whep-client.h). */
#include "whep-client.h"

#include <gst/app/app.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>

#include <chrono>

namespace vmtest {

HttpReply http_request(const std::string &method, const std::string &url,
                       const std::string &token, const std::string &content_type,
                       const std::string &body) {
  HttpReply r;
  SoupSession *session = soup_session_new_with_options("timeout", 10u, nullptr);
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    g_object_unref(session);
    return r;
  }
  SoupMessageHeaders *req = soup_message_get_request_headers(msg);
  if (!token.empty())
    soup_message_headers_replace(req, "Authorization", ("Bearer " + token).c_str());
  if (!content_type.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GError *err = nullptr;
  GBytes *got = soup_session_send_and_read(session, msg, nullptr, &err);
  if (got) {
    gsize n = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(got, &n));
    r.body.assign(data ? data : "", n);
    g_bytes_unref(got);
  }
  g_clear_error(&err);
  r.status = soup_message_get_status(msg);
  SoupMessageHeaders *h = soup_message_get_response_headers(msg);
  auto header = [h](const char *name) {
    const char *v = soup_message_headers_get_list(h, name);
    return std::string(v ? v : "");
  };
  r.content_type = header("Content-Type");
  r.location = header("Location");
  r.link = header("Link");
  r.accept_post = header("Accept-Post");
  r.www_authenticate = header("WWW-Authenticate");
  g_object_unref(msg);
  g_object_unref(session);
  return r;
}

WhepClient::WhepClient() {
  pipeline_ = gst_pipeline_new(nullptr);
  webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", 0u,
               nullptr);
  gst_bin_add(GST_BIN(pipeline_), webrtc_);
  g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
  GstCaps *caps = gst_caps_from_string(
      "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
      "packetization-mode=(string)1,profile-level-id=(string)42e01f");
  GstWebRTCRTPTransceiver *trans = nullptr;
  g_signal_emit_by_name(webrtc_, "add-transceiver",
                        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
  gst_caps_unref(caps);
  if (trans)
    gst_object_unref(trans);
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  GstWebRTCDataChannel *channel = nullptr;
  g_signal_emit_by_name(webrtc_, "create-data-channel", "input", nullptr, &channel);
  channel_ = G_OBJECT(channel);
  if (channel_) {
    g_signal_connect(channel_, "on-open", G_CALLBACK(on_open), this);
    g_signal_connect(channel_, "on-message-string", G_CALLBACK(on_message), this);
  }
}

WhepClient::~WhepClient() {
  drop();
  if (last_)
    gst_sample_unref(last_);
}

void WhepClient::drop() {
  if (!pipeline_)
    return;
  if (channel_) {
    g_signal_handlers_disconnect_by_data(channel_, this);
    g_object_unref(channel_);
    channel_ = nullptr;
  }
  g_signal_handlers_disconnect_by_data(webrtc_, this);
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
  pipeline_ = nullptr;
}

bool WhepClient::make_offer(std::string *error) {
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
    gst_promise_unref(promise);
    *error = "create-offer: no reply";
    return false;
  }
  GstWebRTCSessionDescription *offer = nullptr;
  gst_structure_get(gst_promise_get_reply(promise), "offer",
                    GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
  gst_promise_unref(promise);
  if (!offer) {
    *error = "create-offer: no offer";
    return false;
  }
  g_signal_emit_by_name(webrtc_, "set-local-description", offer, nullptr);
  gst_webrtc_session_description_free(offer);
  for (int i = 0; i < 500; i++) { /* 5 s */
    GstWebRTCICEGatheringState state;
    g_object_get(webrtc_, "ice-gathering-state", &state, nullptr);
    if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
      break;
    g_usleep(10000);
  }
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) {
    *error = "no local description";
    return false;
  }
  gchar *text = gst_sdp_message_as_text(local->sdp);
  offer_ = text;
  g_free(text);
  gst_webrtc_session_description_free(local);
  return true;
}

bool WhepClient::connect(const std::string &base_url, const std::string &token,
                         std::string *error) {
  if (!make_offer(error))
    return false;
  reply_ = http_request("POST", base_url + "/whep", token, "application/sdp", offer_);
  if (reply_.status != 201) {
    *error = "POST /whep: " + std::to_string(reply_.status) + " " + reply_.body;
    return false;
  }
  session_url_ = reply_.location;
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new_from_text(reply_.body.c_str(), &sdp);
  GstWebRTCSessionDescription *answer =
      gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
  gst_promise_wait(promise);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(answer);
  return true;
}

guint WhepClient::hangup(const std::string &base_url, const std::string &token) {
  if (session_url_.empty())
    return 0;
  std::string url = session_url_.rfind("http", 0) == 0 ? session_url_ : base_url + session_url_;
  return http_request("DELETE", url, token).status;
}

void WhepClient::on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  auto *self = static_cast<WhepClient *>(data);
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC)
    return;
  GstElement *bin = gst_parse_bin_from_description(
      "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB ! "
      "appsink name=out sync=false emit-signals=true max-buffers=2 drop=true",
      TRUE, nullptr);
  gst_bin_add(GST_BIN(self->pipeline_), bin);
  GstElement *out = gst_bin_get_by_name(GST_BIN(bin), "out");
  g_signal_connect(out, "new-sample", G_CALLBACK(on_sample), self);
  gst_object_unref(out);
  gst_element_sync_state_with_parent(bin);
  GstPad *sink = gst_element_get_static_pad(bin, "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

GstFlowReturn WhepClient::on_sample(GstElement *sink, gpointer data) {
  auto *self = static_cast<WhepClient *>(data);
  GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!s)
    return GST_FLOW_OK;
  GstVideoInfo info;
  gst_video_info_from_caps(&info, gst_sample_get_caps(s));
  {
    std::lock_guard<std::mutex> guard(self->lock_);
    if (self->last_)
      gst_sample_unref(self->last_);
    self->last_ = s;
    self->width_ = GST_VIDEO_INFO_WIDTH(&info);
    self->height_ = GST_VIDEO_INFO_HEIGHT(&info);
    self->frames_++;
  }
  self->cond_.notify_all();
  return GST_FLOW_OK;
}

bool WhepClient::pixel(int x, int y, guint8 rgb[3]) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!last_ || x < 0 || y < 0 || x >= width_ || y >= height_)
    return false;
  GstVideoInfo info;
  gst_video_info_from_caps(&info, gst_sample_get_caps(last_));
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &info, gst_sample_get_buffer(last_), GST_MAP_READ))
    return false;
  const guint8 *p = static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                    y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0) + x * 3;
  rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
  gst_video_frame_unmap(&frame);
  return true;
}

bool WhepClient::wait_frames(guint n, guint timeout_ms) {
  std::unique_lock<std::mutex> guard(lock_);
  return cond_.wait_for(guard, std::chrono::milliseconds(timeout_ms),
                        [&] { return frames_ >= n; });
}

void WhepClient::on_open(GObject *, gpointer data) {
  auto *self = static_cast<WhepClient *>(data);
  {
    std::lock_guard<std::mutex> guard(self->lock_);
    self->open_ = true;
  }
  self->cond_.notify_all();
}

void WhepClient::on_message(GObject *, const gchar *text, gpointer data) {
  auto *self = static_cast<WhepClient *>(data);
  {
    std::lock_guard<std::mutex> guard(self->lock_);
    if (self->messages_.size() < 10000)
      self->messages_.push_back(text ? text : "");
  }
  self->cond_.notify_all();
}

bool WhepClient::wait_channel_open(guint timeout_ms) {
  std::unique_lock<std::mutex> guard(lock_);
  return cond_.wait_for(guard, std::chrono::milliseconds(timeout_ms), [&] { return open_; });
}

bool WhepClient::send(const std::string &json) {
  if (!channel_)
    return false;
  GError *err = nullptr;
  bool ok = gst_webrtc_data_channel_send_string_full(GST_WEBRTC_DATA_CHANNEL(channel_),
                                                     json.c_str(), &err);
  g_clear_error(&err);
  return ok;
}

std::string WhepClient::wait_message(const std::string &needle, guint timeout_ms) {
  std::unique_lock<std::mutex> guard(lock_);
  std::string found;
  cond_.wait_for(guard, std::chrono::milliseconds(timeout_ms), [&] {
    for (auto &m : messages_)
      if (m.find(needle) != std::string::npos) {
        found = m;
        return true;
      }
    return false;
  });
  return found;
}

std::vector<std::string> WhepClient::messages() {
  std::lock_guard<std::mutex> guard(lock_);
  return messages_;
}

}  // namespace vmtest
