/* gst-vmdisplay: the D-Bus side of qemudbussrc. */
#include "display-client.h"

#include "console-control.h"
#include "dmabuf-scanout.h"
#include "frame-store.h"
#include "qemu-bus.h"
#include "qemu-listener.h"

#include <gio/gio.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace vmd {

namespace {

/* One connection to QEMU and the listener it calls us on. */
struct Session {
  GObjectPtr<GDBusConnection> qemu;      /* bus or p2p connection to QEMU */
  GObjectPtr<GDBusConnection> listener;  /* private connection QEMU calls us on */
  std::unique_ptr<QemuListener> exported; /* our object on `listener` */
  std::unique_ptr<ConsoleControl> control; /* input and resize calls on `qemu` */
  std::string peer;                      /* unique bus name; empty in p2p */
  std::string vm_name;
  gulong closed_qemu = 0, closed_listener = 0;
  bool lost = false;

  ~Session() {
    control.reset();
    exported.reset(); /* filter and objects go before the connection closes */
    if (listener) {
      if (closed_listener)
        g_signal_handler_disconnect(listener.get(), closed_listener);
      g_dbus_connection_close(listener.get(), nullptr, nullptr, nullptr);
    }
    if (qemu) {
      if (closed_qemu)
        g_signal_handler_disconnect(qemu.get(), closed_qemu);
      g_dbus_connection_close(qemu.get(), nullptr, nullptr, nullptr);
    }
  }

  const char *dest() const { return peer.empty() ? nullptr : peer.c_str(); }

  static void on_closed(GDBusConnection *, gboolean, GError *, gpointer data) {
    static_cast<Session *>(data)->lost = true;
  }
};

/* Which failures no retry can cure: the stream ends even with reconnect. */
bool is_fatal(QemuBusError code) {
  return code == QemuBusError::NoBus || code == QemuBusError::NoSuchConsole ||
         code == QemuBusError::NotGraphic;
}

}  // namespace

/* Everything the thread owns; the public class only starts and stops it. */
struct DisplayClient::Impl {
  Impl(DisplayClientConfig config, std::shared_ptr<FrameStore> store, DisplayLogger log)
      : config_(std::move(config)),
        store_(std::move(store)),
        dmabuf_(std::make_shared<DmabufScanouts>(config_.dmabuf)),
        log_(std::move(log)) {}

  void start();
  void stop();
  void thread_main();
  bool connect_once(std::string *error, bool *fatal);
  QemuBusResult open_qemu(Session &session, const QemuBusWait &wait, std::string *where);
  QemuBusResult export_listener(Session &session);
  void serve();
  void drain_fast_logs();
  void pause(int ms);
  void pump_input();
  void start_input(Session &session);
  void wake_at(int64_t at_us);
  void wake();

  /* Why the thread may be asked to send: stop() releases what is pressed. */
  std::mutex input_lock_;
  InputQueue queue_;         /* input_lock_ */
  UiInfoThrottle throttle_;  /* input_lock_ */
  /* D-Bus thread only */
  InputState input_;
  InputPacer pacer_;
  GSource *wake_timer_ = nullptr; /* something waits: a paced call, a resize */
  int64_t wake_timer_at_us_ = 0;

  DisplayClientConfig config_;
  std::shared_ptr<FrameStore> store_;
  std::shared_ptr<DmabufScanouts> dmabuf_;
  DisplayLogger log_;
  std::atomic<bool> stopping_{false};
  GMainContext *context_ = nullptr;
  GCancellable *cancellable_ = nullptr;
  std::unique_ptr<Session> session_;
  std::thread thread_;
};

DisplayClient::DisplayClient(DisplayClientConfig config, std::shared_ptr<FrameStore> store,
                             DisplayLogger log)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(store), std::move(log))) {}

DisplayClient::~DisplayClient() { stop(); }

void DisplayClient::start() { impl_->start(); }

void DisplayClient::stop() { impl_->stop(); }

bool DisplayClient::send_input(const InputEvent &event) {
  bool taken;
  {
    std::lock_guard<std::mutex> guard(impl_->input_lock_);
    taken = impl_->queue_.push(event);
  }
  impl_->wake();
  return taken;
}

void DisplayClient::request_ui_info(const UiInfo &info) {
  {
    std::lock_guard<std::mutex> guard(impl_->input_lock_);
    impl_->throttle_.request(info);
  }
  impl_->wake();
}

uint64_t DisplayClient::input_dropped() const {
  std::lock_guard<std::mutex> guard(impl_->input_lock_);
  return impl_->queue_.dropped();
}

void DisplayClient::Impl::wake() {
  /* context_ is set before the thread starts and cleared after it joined;
   * the element never calls us across stop(). */
  if (context_)
    g_main_context_wakeup(context_);
}

void DisplayClient::Impl::start() {
  stopping_ = false;
  context_ = g_main_context_new();
  cancellable_ = g_cancellable_new();
  thread_ = std::thread([this] { thread_main(); });
}

void DisplayClient::Impl::stop() {
  if (!thread_.joinable())
    return;
  {
    /* No key stays pressed in the guest when the stream stops. */
    std::lock_guard<std::mutex> guard(input_lock_);
    queue_.push(InputEvent::release_all());
  }
  stopping_ = true;
  g_cancellable_cancel(cancellable_);
  g_main_context_wakeup(context_);
  thread_.join();
  g_clear_object(&cancellable_);
  g_main_context_unref(context_);
  context_ = nullptr;
}

void DisplayClient::Impl::pause(int ms) {
  const int64_t until = g_get_monotonic_time() + int64_t(ms) * 1000;
  GSource *timer = g_timeout_source_new(guint(ms));
  g_source_set_callback(timer, [](gpointer) { return G_SOURCE_REMOVE; }, nullptr, nullptr);
  g_source_attach(timer, context_);
  while (!stopping_ && g_get_monotonic_time() < until)
    g_main_context_iteration(context_, TRUE);
  g_source_destroy(timer);
  g_source_unref(timer);
}

QemuBusResult DisplayClient::Impl::open_qemu(Session &session, const QemuBusWait &wait,
                                       std::string *where) {
  if (!config_.qmp.empty())
    return qemu_p2p_open(config_.qmp, wait, &session.qemu, where);
  QemuBusResult r = qemu_bus_open(config_.address, wait, &session.qemu, where);
  if (r.ok())
    r = qemu_bus_pick_vm(session.qemu.get(), config_.vm, *where, wait, &session.peer);
  return r;
}

QemuBusResult DisplayClient::Impl::export_listener(Session &session) {
  session.closed_listener = g_signal_connect(session.listener.get(), "closed",
                                             G_CALLBACK(Session::on_closed), &session);
  session.closed_qemu = g_signal_connect(session.qemu.get(), "closed",
                                         G_CALLBACK(Session::on_closed), &session);
  session.exported = std::make_unique<QemuListener>(store_, dmabuf_, log_);
  std::string error;
  if (!session.exported->export_on(session.listener.get(), context_, &error))
    return QemuBusResult::fail(QemuBusError::SocketFailed, error);
  return {};
}

/* One attempt, step by step: open, pick the VM, read its name (p2p has no
 * bus to search, and QEMU exports its objects a moment after the p2p
 * handshake), check the console, register and export our listener. */
bool DisplayClient::Impl::connect_once(std::string *error, bool *fatal) {
  *fatal = false;
  auto session = std::make_unique<Session>();
  const QemuBusWait wait{context_, cancellable_, config_.timeout_ms};
  std::string where;
  QemuBusResult r = open_qemu(*session, wait, &where);
  if (r.ok())
    r = qemu_read_vm_name(session->qemu.get(), session->dest(), !config_.qmp.empty(), where, wait,
                          &session->vm_name);
  if (r.ok())
    r = qemu_check_console(session->qemu.get(), session->dest(), config_.console,
                           session->vm_name, wait);
  if (r.ok())
    r = qemu_register_listener(session->qemu.get(), session->dest(), config_.console,
                               session->vm_name, wait, &session->listener);
  if (r.ok())
    r = export_listener(*session);
  if (r.ok())
    start_input(*session);
  if (!r.ok()) {
    *error = r.message;
    *fatal = is_fatal(r.code);
    return false;
  }
  log_(LogLevel::Info, "listening to console " + std::to_string(config_.console) + " of VM '" +
                           session->vm_name + "' on " + where);
  session_ = std::move(session);
  return true;
}

void DisplayClient::Impl::serve() {
  /* Every listener call is dispatched from here; QEMU's closing of either
   * connection flags the session as lost. */
  while (!stopping_ && !session_->lost) {
    g_main_context_iteration(context_, TRUE);
    drain_fast_logs();
    pump_input();
  }
  drain_fast_logs();
  if (stopping_ && !session_->lost) {
    /* stop() queued the releases: send them (paced) before the connection
     * goes, within half a second. */
    const int64_t until = g_get_monotonic_time() + 500 * 1000;
    pump_input();
    while (!pacer_.empty() && g_get_monotonic_time() < until) {
      g_main_context_iteration(context_, TRUE);
      pump_input();
    }
    session_->control->flush(context_, 500);
  }
}

void DisplayClient::Impl::start_input(Session &session) {
  session.control = std::make_unique<ConsoleControl>(session.qemu.get(), session.dest(),
                                                     config_.console, &input_, log_,
                                                     config_.timeout_ms);
  session.control->start();
  input_.forget_position();
  std::vector<InputEvent> stale;
  {
    /* Whatever was queued while there was no connection is not for this one. */
    std::lock_guard<std::mutex> guard(input_lock_);
    queue_.take(&stale);
  }
  pacer_.new_connection(); /* releases what was still pressed on a lost connection */
}

/* Sends what the element queued (paced), and a resize request once due. */
void DisplayClient::Impl::pump_input() {
  std::vector<InputEvent> events;
  UiInfo info;
  bool ui_due = false;
  int64_t ui_next_us = 0;
  const bool connected = session_ && session_->control;
  {
    std::lock_guard<std::mutex> guard(input_lock_);
    queue_.take(&events);
    /* A resize request waits for a connection; input does not. */
    if (connected)
      ui_due = throttle_.take_due(g_get_monotonic_time(), &info, &ui_next_us);
  }
  if (!connected)
    return;
  std::vector<InputCall> calls;
  if (!events.empty()) {
    const FrameFormat surface = store_->format();
    for (const InputEvent &e : events)
      input_.translate(e, surface.width, surface.height, &calls);
    pacer_.add(calls);
    calls.clear();
  }
  int64_t input_next_us = 0;
  /* While QEMU does not read what went out, input waits (a completed
   * flush wakes this thread again). */
  if (session_->control->can_send()) {
    pacer_.take_due(g_get_monotonic_time(), &calls, &input_next_us);
    session_->control->send(calls);
  }
  if (ui_due)
    session_->control->set_ui_info(info);
  const int64_t next_us = ui_next_us && input_next_us ? std::min(ui_next_us, input_next_us)
                                                      : std::max(ui_next_us, input_next_us);
  if (next_us)
    wake_at(next_us);
}

/* One timer wakes the thread for whatever waits (a paced call, a throttled
 * resize); an earlier need replaces a later timer. */
void DisplayClient::Impl::wake_at(int64_t at_us) {
  if (wake_timer_ && wake_timer_at_us_ <= at_us)
    return;
  if (wake_timer_) {
    g_source_destroy(wake_timer_);
    g_source_unref(wake_timer_);
  }
  const int64_t wait_ms = std::max<int64_t>(1, (at_us - g_get_monotonic_time() + 999) / 1000);
  wake_timer_ = g_timeout_source_new(guint(wait_ms));
  wake_timer_at_us_ = at_us;
  g_source_set_callback(
      wake_timer_,
      [](gpointer data) {
        auto *self = static_cast<Impl *>(data);
        g_source_unref(self->wake_timer_);
        self->wake_timer_ = nullptr;
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
  g_source_attach(wake_timer_, context_);
}

void DisplayClient::Impl::drain_fast_logs() {
  if (session_ && session_->exported)
    session_->exported->drain_logs();
}

void DisplayClient::Impl::thread_main() {
  g_main_context_push_thread_default(context_);
  std::string last_error;
  while (!stopping_) {
    std::string error;
    bool fatal = false;
    if (connect_once(&error, &fatal)) {
      last_error.clear();
      serve();
      session_.reset();
      if (stopping_)
        break;
      if (!config_.reconnect) {
        log_(LogLevel::Info, "QEMU closed the display connection; ending the stream");
        store_->connection_lost(false);
        break;
      }
      log_(LogLevel::Info, "QEMU closed the display connection; waiting for it to come back");
      store_->connection_lost(true);
    } else {
      session_.reset();
      if (stopping_)
        break;
      if (fatal || !config_.reconnect) {
        store_->fail(error);
        break;
      }
      if (error != last_error)
        log_(LogLevel::Info, "waiting for QEMU: " + error);
      last_error = error;
    }
    pause(config_.retry_ms);
  }
  session_.reset();
  if (wake_timer_) {
    g_source_destroy(wake_timer_);
    g_source_unref(wake_timer_);
    wake_timer_ = nullptr;
  }
  /* Let pending closes and unrefs run before the context goes. */
  while (g_main_context_iteration(context_, FALSE)) {
  }
  g_main_context_pop_thread_default(context_);
}

}  // namespace vmd
