/* gst-vmdisplay: the D-Bus side of qemudbussrc. */
#include "display-client.h"

#include <gio/gunixfdlist.h>

#include <exception>
#include <mutex>
#include <vector>

namespace vmd {
namespace {

constexpr const char *kListenerPath = "/org/qemu/Display1/Listener";
constexpr const char *kListenerIface = "org.qemu.Display1.Listener";
constexpr const char *kMapIface = "org.qemu.Display1.Listener.Unix.Map";
constexpr const char *kInvalidError = "org.qemu.Display1.Error.Invalid";

/* Our side of ui/dbus-display1.xml: what QEMU calls on us. Signatures here
 * are enforced by GDBus before our handler runs (InvalidArgs otherwise). */
constexpr const char kListenerXml[] = R"XML(
<node>
  <interface name="org.qemu.Display1.Listener">
    <method name="Scanout">
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <method name="Update">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="pixman_format" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <!-- DMA-BUF scanouts (QEMU with gl=on): declared so that they reach us
         and end the stream with a clear error instead of a silent stall. -->
    <method name="ScanoutDMABUF">
      <arg type="h" name="dmabuf" direction="in"/>
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="fourcc" direction="in"/>
      <arg type="t" name="modifier" direction="in"/>
      <arg type="b" name="y0_top" direction="in"/>
    </method>
    <method name="UpdateDMABUF">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
    </method>
    <method name="Disable"/>
    <method name="MouseSet">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="on" direction="in"/>
    </method>
    <method name="CursorDefine">
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
      <arg type="i" name="hot_x" direction="in"/>
      <arg type="i" name="hot_y" direction="in"/>
      <arg type="ay" name="data" direction="in"/>
    </method>
    <property name="Interfaces" type="as" access="read"/>
  </interface>
  <interface name="org.qemu.Display1.Listener.Unix.Map">
    <method name="ScanoutMap">
      <arg type="h" name="memfd" direction="in"/>
      <arg type="u" name="offset" direction="in"/>
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="u" name="stride" direction="in"/>
      <arg type="u" name="pixman_format" direction="in"/>
    </method>
    <method name="UpdateMap">
      <arg type="i" name="x" direction="in"/>
      <arg type="i" name="y" direction="in"/>
      <arg type="i" name="width" direction="in"/>
      <arg type="i" name="height" direction="in"/>
    </method>
  </interface>
</node>
)XML";

constexpr const char *kInterfaces[] = {kMapIface, nullptr};

GDBusNodeInfo *listener_node_info() {
  static GDBusNodeInfo *info = g_dbus_node_info_new_for_xml(kListenerXml, nullptr);
  return info;
}

/* The message of a GError without GDBus's "GDBus.Error:name:" prefix. */
std::string error_text(const GErrorPtr &err) {
  if (!err)
    return "unknown error";
  g_dbus_error_strip_remote_error(err.get());
  return err->message;
}

}  // namespace

struct DisplayClient::Session {
  DisplayClient *owner = nullptr;
  GObjectPtr<GDBusConnection> qemu;      /* bus or p2p connection to QEMU */
  GObjectPtr<GDBusConnection> listener;  /* private connection QEMU calls us on */
  std::string peer;                      /* unique bus name; empty in p2p */
  std::string vm_name;
  guint reg_listener = 0, reg_map = 0, filter = 0;
  DisplayClient::FastPath *fast = nullptr; /* owned by GDBus through the filter */
  gulong closed_qemu = 0, closed_listener = 0;
  bool lost = false;

  ~Session() {
    if (listener) {
      if (filter)
        g_dbus_connection_remove_filter(listener.get(), filter);
      if (reg_listener)
        g_dbus_connection_unregister_object(listener.get(), reg_listener);
      if (reg_map)
        g_dbus_connection_unregister_object(listener.get(), reg_map);
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

  static void handle_method(GDBusConnection *, const gchar *, const gchar *, const gchar *iface,
                            const gchar *method, GVariant *params, GDBusMethodInvocation *inv,
                            gpointer data);
  static GVariant *on_get_property(GDBusConnection *, const gchar *, const gchar *,
                                   const gchar *, const gchar *name, GError **error, gpointer) {
    if (g_str_equal(name, "Interfaces"))
      return g_variant_new_strv(kInterfaces, -1);
    g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", name);
    return nullptr;
  }
};

namespace {

using LogLines = std::vector<std::pair<LogLevel, std::string>>;

/* The argument signature of each display call we implement, or nullptr. */
const char *listener_signature(const char *iface, const char *method) {
  static const struct {
    const char *iface, *method, *signature;
  } kCalls[] = {
      {kListenerIface, "Scanout", "uuuuay"},
      {kListenerIface, "Update", "iiiiuuay"},
      {kListenerIface, "ScanoutDMABUF", "huuuutb"},
      {kListenerIface, "UpdateDMABUF", "iiii"},
      {kListenerIface, "Disable", ""},
      {kListenerIface, "MouseSet", "iii"},
      {kListenerIface, "CursorDefine", "iiiiay"},
      {kMapIface, "ScanoutMap", "huuuuu"},
      {kMapIface, "UpdateMap", "iiii"},
  };
  for (const auto &c : kCalls) {
    if (g_str_equal(iface, c.iface) && g_str_equal(method, c.method))
      return c.signature;
  }
  return nullptr;
}

/* Applies one display call (signature already checked) to the store. */
Verdict apply_listener_call(FrameStore &store, const char *iface, const char *method,
                            GVariant *params, GUnixFDList *fds, LogLines *logs) {
  const int64_t now = g_get_monotonic_time();
  Verdict v;
  if (g_str_equal(iface, kListenerIface) && g_str_equal(method, "Scanout")) {
    guint32 w, h, stride, fmt;
    GVariant *bytes = nullptr;
    g_variant_get(params, "(uuuu@ay)", &w, &h, &stride, &fmt, &bytes);
    gsize n = 0;
    const void *p = g_variant_get_fixed_array(bytes, &n, 1);
    /* The message's bytes become the surface: no copy until a partial update. */
    std::shared_ptr<const void> hold(bytes, [](const void *b) {
      g_variant_unref(static_cast<GVariant *>(const_cast<void *>(b)));
    });
    v = store.scanout(w, h, stride, fmt, static_cast<const uint8_t *>(p), n, now, std::move(hold));
    if (v.applied)
      logs->emplace_back(LogLevel::Info, "Scanout " + std::to_string(w) + "x" + std::to_string(h));
  } else if (g_str_equal(iface, kListenerIface) && g_str_equal(method, "Update")) {
    gint32 x, y, w, h;
    guint32 stride, fmt;
    GVariant *bytes = nullptr;
    g_variant_get(params, "(iiiiuu@ay)", &x, &y, &w, &h, &stride, &fmt, &bytes);
    GVariantPtr owned(bytes);
    gsize n = 0;
    const void *p = g_variant_get_fixed_array(bytes, &n, 1);
    v = store.update(x, y, w, h, stride, fmt, static_cast<const uint8_t *>(p), n, now);
  } else if (g_str_equal(iface, kListenerIface) &&
             (g_str_equal(method, "ScanoutDMABUF") || g_str_equal(method, "UpdateDMABUF"))) {
    /* The fd, if any, is closed with the message. */
    const char *msg =
        "QEMU sends its display as DMA-BUF (it runs with gl=on), which qemudbussrc cannot "
        "read yet; start QEMU with -display dbus,gl=off";
    store.fail(msg);
    v = Verdict{false, msg};
  } else if (g_str_equal(iface, kListenerIface) && g_str_equal(method, "Disable")) {
    store.disable();
    logs->emplace_back(LogLevel::Info, "QEMU disabled the display; waiting for the next scanout");
  } else if (g_str_equal(iface, kMapIface) && g_str_equal(method, "ScanoutMap")) {
    gint32 handle;
    guint32 offset, w, h, stride, fmt;
    g_variant_get(params, "(huuuuu)", &handle, &offset, &w, &h, &stride, &fmt);
    UniqueFd fd;
    if (fds && handle >= 0 && handle < g_unix_fd_list_get_length(fds))
      fd.reset(g_unix_fd_list_get(fds, handle, nullptr));
    if (!fd)
      v = Verdict{false, "ScanoutMap without a usable file descriptor"};
    else
      v = store.scanout_map(std::move(fd), offset, w, h, stride, fmt, now);
    if (v.applied)
      logs->emplace_back(LogLevel::Info, "ScanoutMap " + std::to_string(w) + "x" + std::to_string(h));
  } else if (g_str_equal(iface, kMapIface) && g_str_equal(method, "UpdateMap")) {
    gint32 x, y, w, h;
    g_variant_get(params, "(iiii)", &x, &y, &w, &h);
    v = store.update_map(x, y, w, h, now);
  }
  /* MouseSet, CursorDefine: the guest cursor is not composited into frames yet. */
  if (!v.message.empty())
    logs->emplace_back(v.applied ? LogLevel::Debug : LogLevel::Warning, v.message);
  return v;
}

/* No C++ exception may cross back into GDBus (e.g. bad_alloc for a huge
 * surface): it becomes a refused call and a stream error. */
Verdict apply_listener_call_safely(FrameStore &store, const char *iface, const char *method,
                                   GVariant *params, GUnixFDList *fds, LogLines *logs) {
  try {
    return apply_listener_call(store, iface, method, params, fds, logs);
  } catch (const std::exception &e) {
    std::string what = std::string("qemudbussrc could not handle ") + method + ": " + e.what();
    store.fail(what);
    return Verdict{false, what};
  }
}

}  // namespace

/* State the filter needs on GDBus's worker thread. GDBus frees it (through
 * the destroy notify) only once the filter can no longer run, so it owns a
 * reference to the store rather than pointing into the client. */
struct DisplayClient::FastPath {
  std::shared_ptr<FrameStore> store;
  GMainContext *context; /* to wake our thread for the log lines */
  std::mutex lock;
  LogLines logs;

  FastPath(std::shared_ptr<FrameStore> s, GMainContext *ctx)
      : store(std::move(s)), context(g_main_context_ref(ctx)) {}
  ~FastPath() { g_main_context_unref(context); }

  static GDBusMessage *filter(GDBusConnection *connection, GDBusMessage *message,
                              gboolean incoming, gpointer data) {
    if (!incoming || g_dbus_message_get_message_type(message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
      return message;
    const char *path = g_dbus_message_get_path(message);
    const char *iface = g_dbus_message_get_interface(message);
    const char *method = g_dbus_message_get_member(message);
    if (!path || !iface || !method || !g_str_equal(path, kListenerPath))
      return message;
    const char *want = listener_signature(iface, method);
    const char *have = g_dbus_message_get_signature(message);
    if (!want || !g_str_equal(want, have ? have : ""))
      return message; /* GDBus answers UnknownMethod / InvalidArgs itself */

    FastPath *self = static_cast<FastPath *>(data);
    GVariant *body = g_dbus_message_get_body(message);
    GVariantPtr empty(body ? nullptr : g_variant_ref_sink(g_variant_new("()")));
    LogLines logs;
    Verdict v = apply_listener_call_safely(*self->store, iface, method, body ? body : empty.get(),
                                           g_dbus_message_get_unix_fd_list(message), &logs);
    if (!(g_dbus_message_get_flags(message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED)) {
      /* For ScanoutMap an error makes QEMU fall back to Scanout copies. */
      GObjectPtr<GDBusMessage> reply(
          v.applied ? g_dbus_message_new_method_reply(message)
                    : g_dbus_message_new_method_error_literal(message, kInvalidError,
                                                              v.message.c_str()));
      g_dbus_connection_send_message(connection, reply.get(), G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                     nullptr, nullptr);
    }
    if (!logs.empty()) {
      std::lock_guard<std::mutex> guard(self->lock);
      /* Bounded: a flood of bad messages keeps the first lines only. */
      for (auto &line : logs) {
        if (self->logs.size() < 64)
          self->logs.push_back(std::move(line));
      }
      g_main_context_wakeup(self->context);
    }
    g_object_unref(message);
    return nullptr; /* consumed */
  }
};

void DisplayClient::Session::handle_method(GDBusConnection *, const gchar *, const gchar *,
                                           const gchar *iface, const gchar *method,
                                           GVariant *params, GDBusMethodInvocation *inv,
                                           gpointer data) {
  /* Reached only if the filter let a call through (it handles every display
   * call with the right signature); kept so both paths behave the same. */
  Session *self = static_cast<Session *>(data);
  DisplayClient *client = self->owner;
  if (!listener_signature(iface, method)) {
    g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                          "%s.%s is not implemented", iface, method);
    return;
  }
  LogLines logs;
  Verdict v = apply_listener_call_safely(
      *client->store_, iface, method, params,
      g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(inv)), &logs);
  for (const auto &line : logs)
    client->log_(line.first, line.second);
  if (v.applied)
    g_dbus_method_invocation_return_value(inv, nullptr);
  else
    g_dbus_method_invocation_return_dbus_error(inv, kInvalidError, v.message.c_str());
}

DisplayClient::DisplayClient(DisplayClientConfig config, std::shared_ptr<FrameStore> store,
                             DisplayLogger log)
    : config_(std::move(config)), store_(std::move(store)), log_(std::move(log)) {}

DisplayClient::~DisplayClient() { stop(); }

void DisplayClient::start() {
  stopping_ = false;
  context_ = g_main_context_new();
  cancellable_ = g_cancellable_new();
  thread_ = std::thread([this] { thread_main(); });
}

void DisplayClient::stop() {
  if (!thread_.joinable())
    return;
  stopping_ = true;
  g_cancellable_cancel(cancellable_);
  g_main_context_wakeup(context_);
  thread_.join();
  g_clear_object(&cancellable_);
  g_main_context_unref(context_);
  context_ = nullptr;
}

void DisplayClient::pause(int ms) {
  const int64_t until = g_get_monotonic_time() + int64_t(ms) * 1000;
  GSource *timer = g_timeout_source_new(guint(ms));
  g_source_set_callback(timer, [](gpointer) { return G_SOURCE_REMOVE; }, nullptr, nullptr);
  g_source_attach(timer, context_);
  while (!stopping_ && g_get_monotonic_time() < until)
    g_main_context_iteration(context_, TRUE);
  g_source_destroy(timer);
  g_source_unref(timer);
}

/* Which failures no retry can cure: the stream ends even with reconnect. */
static bool is_fatal(QemuBusError code) {
  return code == QemuBusError::NoBus || code == QemuBusError::NoSuchConsole ||
         code == QemuBusError::NotGraphic;
}

QemuBusResult DisplayClient::open_qemu(Session &session, const QemuBusWait &wait,
                                       std::string *where) {
  if (!config_.qmp.empty())
    return qemu_p2p_open(config_.qmp, wait, &session.qemu, where);
  QemuBusResult r = qemu_bus_open(config_.address, wait, &session.qemu, where);
  if (r.ok())
    r = qemu_bus_pick_vm(session.qemu.get(), config_.vm, *where, wait, &session.peer);
  return r;
}

QemuBusResult DisplayClient::export_listener(Session &session) {
  GError *raw = nullptr;
  static const GDBusInterfaceVTable vtable = {Session::handle_method, Session::on_get_property,
                                              nullptr, {nullptr}};
  GDBusNodeInfo *node = listener_node_info();
  session.reg_listener = g_dbus_connection_register_object(
      session.listener.get(), kListenerPath, g_dbus_node_info_lookup_interface(node, kListenerIface),
      &vtable, &session, nullptr, &raw);
  if (session.reg_listener)
    session.reg_map = g_dbus_connection_register_object(
        session.listener.get(), kListenerPath, g_dbus_node_info_lookup_interface(node, kMapIface),
        &vtable, &session, nullptr, &raw);
  if (!session.reg_listener || !session.reg_map) {
    GErrorPtr err(raw);
    return QemuBusResult::fail(QemuBusError::SocketFailed,
                               "cannot export the listener: " + error_text(err));
  }
  session.closed_listener = g_signal_connect(session.listener.get(), "closed",
                                             G_CALLBACK(Session::on_closed), &session);
  session.closed_qemu = g_signal_connect(session.qemu.get(), "closed",
                                         G_CALLBACK(Session::on_closed), &session);
  auto fast = std::make_unique<FastPath>(store_, context_);
  session.fast = fast.get();
  /* GDBus owns it from here and frees it once the filter cannot run any more. */
  session.filter = g_dbus_connection_add_filter(
      session.listener.get(), FastPath::filter, fast.release(),
      [](gpointer p) { std::unique_ptr<FastPath> owned(static_cast<FastPath *>(p)); });
  g_dbus_connection_start_message_processing(session.listener.get());
  return {};
}

/* One attempt, step by step: open, pick the VM, read its name (p2p has no
 * bus to search, and QEMU exports its objects a moment after the p2p
 * handshake), check the console, register and export our listener. */
bool DisplayClient::connect_once(std::string *error, bool *fatal) {
  *fatal = false;
  auto session = std::make_unique<Session>();
  session->owner = this;
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

void DisplayClient::serve() {
  /* Every listener call is dispatched from here; QEMU's closing of either
   * connection flags the session as lost. */
  while (!stopping_ && !session_->lost) {
    g_main_context_iteration(context_, TRUE);
    drain_fast_logs();
  }
  drain_fast_logs();
}

void DisplayClient::drain_fast_logs() {
  if (!session_ || !session_->fast)
    return;
  LogLines lines;
  {
    std::lock_guard<std::mutex> guard(session_->fast->lock);
    lines.swap(session_->fast->logs);
  }
  for (const auto &line : lines)
    log_(line.first, line.second);
}

void DisplayClient::thread_main() {
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
  /* Let pending closes and unrefs run before the context goes. */
  while (g_main_context_iteration(context_, FALSE)) {
  }
  g_main_context_pop_thread_default(context_);
}

}  // namespace vmd
