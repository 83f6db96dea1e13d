/* gst-vmdisplay: user data for GLib/GStreamer callbacks of an object that
 * can go away while one of them is under way.
 *
 * GLib's g_signal_handlers_disconnect_*() stops future emissions, not one
 * that another thread is already in, and a GstPromise's change function runs
 * whenever webrtcbin answers it (even while webrtcbin closes, after the
 * object that asked is gone). So a callback gets a reference to this shared
 * state instead of a raw pointer: revoke() (at teardown) clears the target
 * under the lock, waiting out a callback that is running, and every later
 * callback finds nothing. The lock is recursive: a callback may end up
 * revoking on its own thread. */
#pragma once

#include <glib-object.h>

#include <memory>
#include <mutex>

namespace vmd::webrtc {

template <typename T>
class CallbackToken {
 public:
  explicit CallbackToken(T *target) : state_(std::make_shared<State>(target)) {}

  /* A new reference for one callback's user data, released by
   * closure_notify (signals) or destroy_notify (promises). */
  gpointer data() const { return std::make_unique<std::shared_ptr<State>>(state_).release(); }
  static void closure_notify(gpointer data, GClosure *) { destroy_notify(data); }
  static void destroy_notify(gpointer data) {
    std::unique_ptr<std::shared_ptr<State>> owned(static_cast<std::shared_ptr<State> *>(data));
  }

  /* Runs f(target) unless revoked; revoke() waits until it returns. */
  template <typename F>
  static void with(gpointer data, F &&f) {
    State &s = **static_cast<std::shared_ptr<State> *>(data);
    std::lock_guard<std::recursive_mutex> guard(s.lock);
    if (s.target)
      f(*s.target);
  }

  void revoke() {
    std::lock_guard<std::recursive_mutex> guard(state_->lock);
    state_->target = nullptr;
  }

 private:
  struct State {
    explicit State(T *t) : target(t) {}
    std::recursive_mutex lock;
    T *target;
  };
  std::shared_ptr<State> state_;
};

}  // namespace vmd::webrtc
