/* gst-vmdisplay: following QEMU displays on the message buses. */
#include "qemu-vm-watch.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace vmd {
namespace {

constexpr const char *kQemuName = "org.qemu";

}  // namespace

struct QemuVmWatch::Impl {
  /* One bus followed: its displays, the subscription and the re-list timer. */
  struct Bus {
    Impl *impl = nullptr;
    std::unique_ptr<QemuBusDisplays> displays;
    guint subscription = 0;
    gulong closed_handler = 0;
    GSource *timer = nullptr;
    int64_t due_us = 0;

    ~Bus() {
      if (timer) {
        g_source_destroy(timer);
        g_source_unref(timer);
      }
      if (GDBusConnection *conn = displays->connection()) {
        if (subscription)
          g_dbus_connection_signal_unsubscribe(conn, subscription);
        if (closed_handler)
          g_signal_handler_disconnect(conn, closed_handler);
      }
    }
  };

  Impl(QemuWatchConfig c, QemuWatchEvents e) : config(std::move(c)), events(std::move(e)) {}

  void start();
  void stop();
  void thread_main();
  void open_bus(const std::string &name);
  void refresh(Bus &bus);
  void schedule(Bus &bus, int delay_ms);
  void report(const QemuDisplayChanges &changes);
  void name_owner_changed(Bus &bus, const char *name, const char *old_owner,
                          const char *new_owner);
  QemuBusWait wait() const { return QemuBusWait{context, cancellable, config.displays.timeout_ms}; }

  static void on_name_owner_changed(GDBusConnection *, const gchar *, const gchar *,
                                    const gchar *, const gchar *, GVariant *params, gpointer data);
  static void on_closed(GDBusConnection *, gboolean, GError *, gpointer data);
  static gboolean on_timer(gpointer data);

  QemuWatchConfig config;
  QemuWatchEvents events;
  GMainContext *context = nullptr;
  GCancellable *cancellable = nullptr;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::vector<std::unique_ptr<Bus>> buses; /* the thread's only */

  std::mutex mu;
  std::condition_variable cv;
  bool listed = false; /* the first listing of every bus is done */
};

QemuVmWatch::QemuVmWatch(QemuWatchConfig config, QemuWatchEvents events)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(events))) {}

QemuVmWatch::~QemuVmWatch() { stop(); }

void QemuVmWatch::start() { impl_->start(); }

void QemuVmWatch::stop() { impl_->stop(); }

void QemuVmWatch::Impl::start() {
  if (thread.joinable())
    return;
  stopping = false;
  listed = false;
  context = g_main_context_new();
  cancellable = g_cancellable_new();
  thread = std::thread([this] { thread_main(); });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, std::chrono::milliseconds(config.start_wait_ms), [this] { return listed; });
}

void QemuVmWatch::Impl::stop() {
  if (!thread.joinable())
    return;
  stopping = true;
  g_cancellable_cancel(cancellable);
  g_main_context_wakeup(context);
  thread.join();
  g_clear_object(&cancellable);
  g_main_context_unref(context);
  context = nullptr;
}

void QemuVmWatch::Impl::thread_main() {
  g_main_context_push_thread_default(context);
  for (const std::string &name : config.displays.buses) {
    if (stopping)
      break;
    open_bus(name);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    listed = true;
  }
  cv.notify_all();
  while (!stopping)
    g_main_context_iteration(context, TRUE);
  buses.clear();
  /* Let the connections' close and idle callbacks run before the context goes. */
  for (int i = 0; i < 100 && g_main_context_iteration(context, FALSE); i++) {
  }
  g_main_context_pop_thread_default(context);
}

/* Subscribes before the first listing, so nothing that happens meanwhile
 * is missed (what the listing already saw is handled twice, harmlessly). */
void QemuVmWatch::Impl::open_bus(const std::string &name) {
  auto bus = std::make_unique<Bus>();
  bus->impl = this;
  bus->displays = std::make_unique<QemuBusDisplays>(name, events.log);
  QemuBusResult r = bus->displays->open(wait());
  if (!r.ok()) {
    events.log(LogLevel::Debug, "not following the " + qemu_bus_display_name(name) +
                                    " bus: " + r.message);
    return;
  }
  GDBusConnection *conn = bus->displays->connection();
  bus->subscription = g_dbus_connection_signal_subscribe(
      conn, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", nullptr, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed,
      bus.get(), nullptr);
  bus->closed_handler = g_signal_connect(conn, "closed", G_CALLBACK(on_closed), bus.get());
  /* The first listing may read as long as qemu_probe_displays() does. */
  QemuDisplayChanges changes;
  r = bus->displays->refresh(
      wait(), g_get_monotonic_time() + 2 * int64_t(config.displays.timeout_ms) * 1000, &changes);
  if (!r.ok()) {
    /* e.g. a system bus whose policy does not let us list org.qemu's queue */
    events.log(LogLevel::Debug, "not following the " + qemu_bus_display_name(name) +
                                    " bus: " + r.message);
    return;
  }
  report(changes);
  const int next = bus->displays->next_refresh_ms();
  if (next >= 0)
    schedule(*bus, next);
  buses.push_back(std::move(bus));
}

void QemuVmWatch::Impl::refresh(Bus &bus) {
  QemuDisplayChanges changes;
  QemuBusResult r = bus.displays->refresh(
      wait(), g_get_monotonic_time() + int64_t(config.displays.timeout_ms) * 1000, &changes);
  if (!r.ok())
    events.log(LogLevel::Debug, "re-listing the " + qemu_bus_display_name(bus.displays->bus()) +
                                    " bus failed: " + r.message);
  report(changes);
  const int next = bus.displays->next_refresh_ms();
  if (next >= 0)
    schedule(bus, next);
}

/* One timer per bus; an earlier request moves it forward, a later one
 * leaves it (so a stream of signals cannot postpone a re-list forever). */
void QemuVmWatch::Impl::schedule(Bus &bus, int delay_ms) {
  const int64_t due = g_get_monotonic_time() + int64_t(delay_ms) * 1000;
  if (bus.timer) {
    if (bus.due_us <= due)
      return;
    g_source_destroy(bus.timer);
    g_source_unref(bus.timer);
  }
  bus.due_us = due;
  bus.timer = g_timeout_source_new(guint(delay_ms));
  g_source_set_callback(bus.timer, on_timer, &bus, nullptr);
  g_source_attach(bus.timer, context);
}

void QemuVmWatch::Impl::report(const QemuDisplayChanges &changes) {
  for (const QemuDisplay &d : changes.removed)
    if (events.removed)
      events.removed(d);
  for (const QemuDisplay &d : changes.added)
    if (events.added)
      events.added(d);
}

void QemuVmWatch::Impl::name_owner_changed(Bus &bus, const char *name, const char *old_owner,
                                           const char *new_owner) {
  if (g_str_equal(name, kQemuName)) {
    schedule(bus, config.settle_ms);
    return;
  }
  if (name[0] != ':')
    return; /* another well-known name: none of our business */
  if (!new_owner[0]) {
    QemuDisplayChanges changes;
    bus.displays->disconnected(name, &changes);
    report(changes);
  } else if (!old_owner[0]) {
    bus.displays->connected(name);
    const int next = bus.displays->next_refresh_ms();
    schedule(bus, next >= 0 ? next : config.settle_ms);
  }
}

void QemuVmWatch::Impl::on_name_owner_changed(GDBusConnection *, const gchar *, const gchar *,
                                              const gchar *, const gchar *, GVariant *params,
                                              gpointer data) {
  auto *bus = static_cast<Bus *>(data);
  if (bus->impl->stopping || !g_variant_is_of_type(params, G_VARIANT_TYPE("(sss)")))
    return;
  const gchar *name, *old_owner, *new_owner;
  g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
  try {
    bus->impl->name_owner_changed(*bus, name, old_owner, new_owner);
  } catch (const std::exception &e) {
    bus->impl->events.log(LogLevel::Warning, std::string("NameOwnerChanged: ") + e.what());
  }
}

void QemuVmWatch::Impl::on_closed(GDBusConnection *, gboolean, GError *, gpointer data) {
  auto *bus = static_cast<Bus *>(data);
  try {
    bus->impl->events.log(LogLevel::Info, "the " + qemu_bus_display_name(bus->displays->bus()) +
                                              " bus closed: its VMs are gone");
    QemuDisplayChanges changes;
    bus->displays->clear(&changes);
    bus->impl->report(changes);
  } catch (const std::exception &e) {
    bus->impl->events.log(LogLevel::Warning, std::string("bus closed: ") + e.what());
  }
}

gboolean QemuVmWatch::Impl::on_timer(gpointer data) {
  auto *bus = static_cast<Bus *>(data);
  g_source_unref(bus->timer);
  bus->timer = nullptr;
  if (bus->impl->stopping)
    return G_SOURCE_REMOVE;
  try {
    bus->impl->refresh(*bus);
  } catch (const std::exception &e) {
    bus->impl->events.log(LogLevel::Warning, std::string("re-listing: ") + e.what());
  }
  return G_SOURCE_REMOVE;
}

}  // namespace vmd
