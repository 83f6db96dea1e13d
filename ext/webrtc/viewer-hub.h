/* gst-vmdisplay: vmwebrtcsink's viewers: the WHEP handler that makes a ViewerSession per
 * offer (bounded by max-viewers), who has control (`control` = all | none | first), the
 * viewers' input turned into upstream events, the guest cursor sent to every viewer, and the
 * reaping of viewers that left without a DELETE (ICE failed or closed, the channel closed,
 * or no ICE connection for session-timeout). Sessions are torn down on the hub's own thread
 * (own GMainContext), never on a streaming, webrtcbin or HTTP thread.
 */
#pragma once

#include "viewer-events.h"
#include "viewer-session.h"
#include "whep-server.h"

#include <gst/gst.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vmd::webrtc {

enum class ControlPolicy { All = 0, None = 1, First = 2 };

struct HubSettings {
  unsigned max_viewers = 8;
  ControlPolicy control = ControlPolicy::First;
  unsigned session_timeout_s = 30;
  SessionSettings session;
};

class ViewerHub : public WhepHandler {
 public:
  struct Hooks {
    /* The tee viewers link to, nullptr while no stream runs yet (then offers get 503). */
    std::function<GstElement *()> tee;
    /* Sends an upstream event from the bin's sink pad (takes the event). */
    std::function<void(GstEvent *)> push_upstream;
    /* A new viewer connected: ask for a keyframe. */
    std::function<void()> keyframe;
    /* The number of viewers changed. */
    std::function<void(unsigned)> viewers_changed;
  };

  ViewerHub(GstBin *bin, HubSettings settings, Hooks hooks);
  ~ViewerHub() override;

  void on_offer(const std::string &offer_sdp, std::function<bool(WhepAnswer)> done) override;
  bool on_delete(const std::string &session_id) override;

  /* The latest `qemu-cursor` structure (copied); sent to every viewer. Any thread. */
  void set_cursor(const GstStructure *cursor);
  /* Tears every viewer down and waits for it. */
  void close_all();
  unsigned viewers() const;

 private:
  struct Viewer {
    std::unique_ptr<ViewerSession> session;
    unsigned order = 0;        /* join order, for control=first */
    bool control = false;      /* may send input */
    bool told_control = false; /* the control message went out */
    ViewerEvents events;
    gint64 last_warning_us = 0;
  };
  using ViewerPtr = std::shared_ptr<Viewer>;

  ViewerPtr find_locked(const std::string &id) const;
  void notify_viewers();
  ViewerSession::Callbacks callbacks_for(const std::string &id);
  void on_message(const std::string &id, const std::string &text);
  void on_channel_open(const std::string &id);
  void schedule_teardown(const std::string &id, const char *why);
  void teardown_now(const std::string &id, const std::string &why);
  void assign_control_locked();
  void send_control(const ViewerPtr &viewer);
  void send_cursor(const ViewerPtr &viewer, bool with_image);
  void reap();
  std::string new_id();
  void run();

  GstBin *bin_;
  const HubSettings settings_;
  Hooks hooks_;

  std::mutex notify_lock_; /* viewers_changed calls, in order */
  mutable std::mutex lock_;
  std::map<std::string, ViewerPtr> viewers_;
  unsigned next_order_ = 0;
  GstStructure *cursor_ = nullptr;

  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  std::thread thread_;
};

}  // namespace vmd::webrtc
