/* gst-vmdisplay tests: a WHEP viewer without a browser: webrtcbin (recvonly H.264, the
 * `input` data channel created before the offer) in its own pipeline, the offer POSTed with
 * libsoup, the video decoded into an appsink. Written from the WHEP draft and the issue's
 * data channel contract, not from vmwebrtcsink's code.
 */
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace vmtest {

struct HttpReply {
  guint status = 0;
  std::string body;
  std::string content_type, location, link; /* Link: every value, joined by ", " */
  std::string accept_post, www_authenticate;
};

/* One HTTP request (libsoup, synchronous, 10 s timeout). `token` empty: no Authorization. */
HttpReply http_request(const std::string &method, const std::string &url,
                       const std::string &token, const std::string &content_type = "",
                       const std::string &body = "");

class WhepClient {
 public:
  WhepClient();
  ~WhepClient();
  WhepClient(const WhepClient &) = delete;
  WhepClient &operator=(const WhepClient &) = delete;

  /* Makes the offer (waits for ICE gathering), POSTs it to base_url + "/whep", applies the
   * answer. The reply is kept in reply(). False on any failure (with *error). */
  bool connect(const std::string &base_url, const std::string &token, std::string *error);
  const HttpReply &reply() const { return reply_; }
  /* The offer as sent (SDP text). */
  const std::string &offer() const { return offer_; }

  /* DELETE on the session (Location). */
  guint hangup(const std::string &base_url, const std::string &token);
  /* Stops the pipeline without a DELETE (an abrupt close). */
  void drop();

  /* Waits until `n` frames are decoded (true) or timeout. */
  bool wait_frames(guint n, guint timeout_ms);
  guint frames() const { return frames_; }
  int width() const { return width_; }
  int height() const { return height_; }
  /* RGB of the last decoded frame at (x, y); false without a frame. */
  bool pixel(int x, int y, guint8 rgb[3]);

  /* Data channel. */
  bool wait_channel_open(guint timeout_ms);
  bool send(const std::string &json);
  /* Waits for a received message containing `needle`; returns it (empty on timeout). */
  std::string wait_message(const std::string &needle, guint timeout_ms);
  std::vector<std::string> messages();

 private:
  static void on_pad_added(GstElement *, GstPad *pad, gpointer self);
  static GstFlowReturn on_sample(GstElement *sink, gpointer self);
  static void on_message(GObject *, const gchar *text, gpointer self);
  static void on_open(GObject *, gpointer self);
  bool make_offer(std::string *error);

  GstElement *pipeline_ = nullptr, *webrtc_ = nullptr;
  GObject *channel_ = nullptr;
  std::string offer_, session_url_;
  HttpReply reply_;

  std::mutex lock_;
  std::condition_variable cond_;
  std::atomic<guint> frames_{0};
  int width_ = 0, height_ = 0;
  GstSample *last_ = nullptr;
  bool open_ = false;
  std::vector<std::string> messages_;
};

}  // namespace vmtest
