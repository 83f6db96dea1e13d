/* gst-vmdisplay: vmwebrtcsink's viewers (see viewer-hub.h). */
#include "viewer-hub.h"

#include "cursor-messages.h"
#include "viewer-protocol.h"
#include "webrtc-log.h"

#define GST_CAT_DEFAULT vmd_webrtc_debug

namespace vmd::webrtc {

namespace {

/* A malformed message is logged at most this often per viewer. */
constexpr gint64 kWarningIntervalUs = 5 * G_USEC_PER_SEC;

struct Invocation {
  ViewerHub *hub;
  std::string id, why;
};

}  // namespace

ViewerHub::ViewerHub(GstBin *bin, HubSettings settings, Hooks hooks)
    : bin_(bin), settings_(std::move(settings)), hooks_(std::move(hooks)) {
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  GSource *timer = g_timeout_source_new_seconds(1);
  g_source_set_callback(
      timer, [](gpointer self) -> gboolean {
        static_cast<ViewerHub *>(self)->reap();
        return G_SOURCE_CONTINUE;
      },
      this, nullptr);
  g_source_attach(timer, context_);
  g_source_unref(timer);
  thread_ = std::thread([this] { run(); });
}

ViewerHub::~ViewerHub() {
  close_all();
  g_main_loop_quit(loop_);
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach(); /* the last reference went in a hook on our own thread */
  else
    thread_.join();
  /* Teardowns still queued on the context find no viewers; run them to free their data. */
  while (g_main_context_iteration(context_, FALSE)) {
  }
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
  if (cursor_)
    gst_structure_free(cursor_);
}

void ViewerHub::run() {
  g_main_context_push_thread_default(context_);
  g_main_loop_run(loop_);
  g_main_context_pop_thread_default(context_);
}

std::string ViewerHub::new_id() {
  gchar *uuid = g_uuid_string_random();
  std::string id = uuid;
  g_free(uuid);
  return id;
}

ViewerHub::ViewerPtr ViewerHub::find_locked(const std::string &id) const {
  auto it = viewers_.find(id);
  return it == viewers_.end() ? nullptr : it->second;
}

/* Serialized, and the count read at the moment of the call: two threads changing the count
 * must not report it out of order (a stale 0 would stop the encoder under a new viewer). */
void ViewerHub::notify_viewers() {
  if (!hooks_.viewers_changed)
    return;
  std::lock_guard<std::mutex> guard(notify_lock_);
  hooks_.viewers_changed(viewers());
}

unsigned ViewerHub::viewers() const {
  std::lock_guard<std::mutex> guard(lock_);
  return unsigned(viewers_.size());
}

ViewerSession::Callbacks ViewerHub::callbacks_for(const std::string &id) {
  ViewerSession::Callbacks cb;
  cb.message = [this, id](const std::string &text) { on_message(id, text); };
  cb.channel_open = [this, id] { on_channel_open(id); };
  cb.connected = [this, id] {
    GST_INFO("viewer %s: connected", id.c_str());
    if (hooks_.keyframe)
      hooks_.keyframe();
  };
  cb.gone = [this, id](const char *why) { schedule_teardown(id, why); };
  return cb;
}

void ViewerHub::on_offer(const std::string &offer_sdp, std::function<bool(WhepAnswer)> done) {
  VideoOffer offer;
  std::string why;
  if (!parse_video_offer(offer_sdp, &offer, &why)) {
    done(WhepAnswer{400, "cannot use this offer: " + why, "", ""});
    return;
  }
  GstElement *tee = hooks_.tee ? hooks_.tee() : nullptr;
  if (!tee) {
    done(WhepAnswer{503, "no video yet: the pipeline has not sent its first frame; retry",
                    "", ""});
    return;
  }
  const std::string id = new_id();
  auto viewer = std::make_shared<Viewer>();
  ViewerSession::Callbacks cb = callbacks_for(id);
  cb.answered = [this, id, done](bool ok, const std::string &sdp_or_reason) {
    bool delivered = ok ? done(WhepAnswer{201, "", id, sdp_or_reason})
                        : done(WhepAnswer{500, sdp_or_reason, "", ""});
    GST_INFO("viewer %s: answer %s", id.c_str(), delivered ? "handed to the server" : "not taken");
    if (!ok || !delivered)
      schedule_teardown(id, ok ? "the answer could not be delivered" : "no answer");
  };
  viewer->session =
      std::make_unique<ViewerSession>(id, bin_, tee, settings_.session, std::move(cb));
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (viewers_.size() >= settings_.max_viewers) {
      done(WhepAnswer{503, "full house: " + std::to_string(viewers_.size()) +
                               " viewers already (max-viewers=" +
                               std::to_string(settings_.max_viewers) + "); try again later",
                      "", ""});
      return;
    }
    viewer->order = next_order_++;
    viewers_[id] = viewer;
    assign_control_locked();
  }
  notify_viewers();
  GST_INFO("viewer %s: offer with H.264 payload type %d (profile-level-id %s)", id.c_str(),
           offer.payload_type, offer.profile_level_id.c_str());
  if (!viewer->session->start(offer_sdp, offer, &why)) {
    done(WhepAnswer{500, why, "", ""});
    schedule_teardown(id, "could not start");
  }
}

bool ViewerHub::on_delete(const std::string &session_id) {
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (!find_locked(session_id))
      return false;
  }
  schedule_teardown(session_id, "DELETE");
  return true;
}

void ViewerHub::on_message(const std::string &id, const std::string &text) {
  ViewerMessage m;
  std::string why;
  const bool parsed = text.size() <= kMaxViewerMessage && parse_viewer_message(text, &m, &why);
  GstEvent *event = nullptr;
  ViewerPtr viewer;
  {
    std::lock_guard<std::mutex> guard(lock_);
    viewer = find_locked(id);
    if (!viewer)
      return;
    if (!parsed) {
      const gint64 now = g_get_monotonic_time();
      if (now - viewer->last_warning_us >= kWarningIntervalUs) {
        viewer->last_warning_us = now;
        GST_WARNING("viewer %s: ignoring a message (%s): %.80s", id.c_str(),
                    text.size() > kMaxViewerMessage ? "too long" : why.c_str(), text.c_str());
      }
      return;
    }
    if (m.type != ViewerMessage::Type::Ping && viewer->control) {
      if (m.type == ViewerMessage::Type::Resize) {
        /* Even sizes: every encoder takes them, and guests pick even modes. */
        m.width = std::max(2u, m.width & ~1u);
        m.height = std::max(2u, m.height & ~1u);
      }
      event = viewer->events.event_for(m);
    }
  }
  if (m.type == ViewerMessage::Type::Ping) {
    viewer->session->send(pong_message(m.t));
    return;
  }
  if (event && hooks_.push_upstream)
    hooks_.push_upstream(event);
  else if (event)
    gst_event_unref(event);
}

void ViewerHub::on_channel_open(const std::string &id) {
  ViewerPtr viewer;
  {
    std::lock_guard<std::mutex> guard(lock_);
    viewer = find_locked(id);
  }
  if (!viewer)
    return;
  GST_INFO("viewer %s: input channel open", id.c_str());
  /* DTLS is up now (the channel runs over it); a keyframe sent when ICE connected may have
   * gone out before SRTP could carry it, and the browser may wait long for the next one. */
  if (hooks_.keyframe)
    hooks_.keyframe();
  send_control(viewer);
  send_cursor(viewer, true);
}

void ViewerHub::send_control(const ViewerPtr &viewer) {
  bool control;
  {
    std::lock_guard<std::mutex> guard(lock_);
    control = viewer->control;
  }
  if (viewer->session->send(control_message(control))) {
    std::lock_guard<std::mutex> guard(lock_);
    viewer->told_control = true;
  }
}

void ViewerHub::send_cursor(const ViewerPtr &viewer, bool with_image) {
  CursorMessages msgs;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (!cursor_ || !cursor_messages(cursor_, with_image, &msgs))
      return;
  }
  if (!msgs.image.empty())
    viewer->session->send(msgs.image);
  viewer->session->send(msgs.position);
}

void ViewerHub::set_cursor(const GstStructure *cursor) {
  CursorMessages msgs;
  std::vector<ViewerPtr> all;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (cursor_)
      gst_structure_free(cursor_);
    cursor_ = gst_structure_copy(cursor);
    if (!cursor_messages(cursor_, false, &msgs))
      return;
    for (auto &kv : viewers_)
      all.push_back(kv.second);
  }
  for (auto &v : all) {
    if (!msgs.image.empty())
      v->session->send(msgs.image);
    v->session->send(msgs.position);
  }
}

void ViewerHub::assign_control_locked() {
  const Viewer *first = nullptr;
  for (auto &kv : viewers_)
    if (!first || kv.second->order < first->order)
      first = kv.second.get();
  for (auto &kv : viewers_) {
    Viewer &v = *kv.second;
    const bool control = settings_.control == ControlPolicy::All ||
                         (settings_.control == ControlPolicy::First && &v == first);
    if (control != v.control && v.told_control)
      v.told_control = false; /* tell again: it changed */
    v.control = control;
  }
}

void ViewerHub::schedule_teardown(const std::string &id, const char *why) {
  auto inv = std::make_unique<Invocation>(Invocation{this, id, why ? why : ""});
  g_main_context_invoke_full(
      context_, G_PRIORITY_DEFAULT,
      [](gpointer data) -> gboolean {
        auto *i = static_cast<Invocation *>(data);
        i->hub->teardown_now(i->id, i->why);
        return G_SOURCE_REMOVE;
      },
      inv.release(), [](gpointer data) { std::unique_ptr<Invocation>(static_cast<Invocation *>(data)); });
}

void ViewerHub::teardown_now(const std::string &id, const std::string &why) {
  ViewerPtr viewer;
  std::vector<ViewerPtr> retell;
  {
    std::lock_guard<std::mutex> guard(lock_);
    auto it = viewers_.find(id);
    if (it == viewers_.end())
      return;
    viewer = it->second;
    viewers_.erase(it);
    assign_control_locked();
    for (auto &kv : viewers_)
      if (!kv.second->told_control)
        retell.push_back(kv.second);
  }
  GST_INFO("viewer %s: tearing down (%s)", id.c_str(), why.c_str());
  viewer->session->teardown();
  notify_viewers();
  for (auto &v : retell)
    send_control(v);
}

void ViewerHub::reap() {
  const gint64 now = g_get_monotonic_time();
  const gint64 timeout = gint64(settings_.session_timeout_s) * G_USEC_PER_SEC;
  std::vector<std::string> dead;
  {
    std::lock_guard<std::mutex> guard(lock_);
    for (auto &kv : viewers_)
      if (now - kv.second->session->alive_us() > timeout)
        dead.push_back(kv.first);
  }
  for (auto &id : dead)
    teardown_now(id, "no sign of life (ICE, RTCP) for session-timeout=" +
                         std::to_string(settings_.session_timeout_s) + " s");
}

void ViewerHub::close_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> guard(lock_);
    for (auto &kv : viewers_)
      ids.push_back(kv.first);
  }
  for (auto &id : ids)
    teardown_now(id, "the sink stops");
}

}  // namespace vmd::webrtc
