/* gst-vmdisplay: the D-Bus side of qemudbussrc. */
#include "display-client.h"

#include "qmp-client.h"

#include <gio/gunixfdlist.h>
#include <sys/socket.h>

#include <exception>
#include <mutex>
#include <vector>

namespace vmd {
namespace {

constexpr const char *kQemuName = "org.qemu";
constexpr const char *kVmPath = "/org/qemu/Display1/VM";
constexpr const char *kVmIface = "org.qemu.Display1.VM";
constexpr const char *kConsoleIface = "org.qemu.Display1.Console";
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

namespace {

/* Runs one asynchronous GIO operation on the current thread's context, with
 * a timeout and the client's stop cancellable. Returns its result (owned). */
GAsyncResult *await_async(GMainContext *ctx, GCancellable *stop, int timeout_ms,
                          const std::function<void(GCancellable *, GAsyncReadyCallback, gpointer)> &begin,
                          bool *timed_out) {
  GObjectPtr<GCancellable> op(g_cancellable_new());
  GAsyncResult *result = nullptr;
  begin(op.get(),
        [](GObject *, GAsyncResult *res, gpointer slot) {
          *static_cast<GAsyncResult **>(slot) = G_ASYNC_RESULT(g_object_ref(res));
        },
        &result);
  bool expired = false;
  struct TimerData {
    GCancellable *op;
    bool *expired;
  } td{op.get(), &expired};
  GSource *timer = g_timeout_source_new(guint(timeout_ms));
  g_source_set_callback(
      timer,
      [](gpointer p) {
        auto *d = static_cast<TimerData *>(p);
        *d->expired = true;
        g_cancellable_cancel(d->op);
        return G_SOURCE_REMOVE;
      },
      &td, nullptr);
  g_source_attach(timer, ctx);
  gulong handler = g_cancellable_connect(
      stop, G_CALLBACK(+[](GCancellable *, gpointer c) { g_cancellable_cancel(G_CANCELLABLE(c)); }),
      op.get(), nullptr);
  while (!result)
    g_main_context_iteration(ctx, TRUE);
  g_cancellable_disconnect(stop, handler);
  g_source_destroy(timer);
  g_source_unref(timer);
  *timed_out = expired;
  return result;
}

std::string join_names(const std::vector<std::string> &names) {
  std::string out;
  for (const std::string &n : names)
    out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

}  // namespace

bool DisplayClient::connect_once(std::string *error, bool *fatal) {
  *fatal = false;
  auto session = std::make_unique<Session>();
  session->owner = this;
  GErrorPtr err;
  GError *raw = nullptr;
  bool timed_out = false;
  const int t = config_.timeout_ms;
  std::string where;

  if (!config_.qmp.empty()) {
    /* Peer to peer: QEMU serves its display objects on a socket we hand it. */
    UniqueFd fd;
    GPollFD cancel_poll = {};
    const bool pollable = g_cancellable_make_pollfd(cancellable_, &cancel_poll);
    const bool qmp_ok = qmp_add_dbus_client(config_.qmp, t, pollable ? cancel_poll.fd : -1, &fd, error);
    if (pollable)
      g_cancellable_release_fd(cancellable_);
    if (!qmp_ok)
      return false;
    GSocket *sock = g_socket_new_from_fd(fd.get(), &raw);
    if (!sock) {
      err.reset(raw);
      *error = "cannot use the D-Bus socket: " + error_text(err);
      return false;
    }
    fd.release();
    GObjectPtr<GSocket> sock_owner(sock);
    GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(sock));
    GObjectPtr<GAsyncResult> res(await_async(
        context_, cancellable_, t,
        [&](GCancellable *c, GAsyncReadyCallback cb, gpointer d) {
          g_dbus_connection_new(G_IO_STREAM(stream.get()), nullptr,
                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, nullptr, c, cb, d);
        },
        &timed_out));
    session->qemu.reset(g_dbus_connection_new_finish(res.get(), &raw));
    if (!session->qemu) {
      err.reset(raw);
      *error = timed_out ? "QEMU did not complete the D-Bus handshake on the QMP-provided socket in time"
                         : "D-Bus handshake with QEMU failed: " + error_text(err);
      return false;
    }
    where = "QMP socket " + config_.qmp;
  } else {
    std::string address = config_.address;
    if (address.empty() || address == "session" || address == "system") {
      GBusType type = address == "system" ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
      GCharPtr a(g_dbus_address_get_for_bus_sync(type, cancellable_, &raw));
      if (!a) {
        err.reset(raw);
        *error = "no D-Bus " + std::string(type == G_BUS_TYPE_SYSTEM ? "system" : "session") +
                 " bus to find QEMU on (" + error_text(err) +
                 "); set the address property or use qmp= for -display dbus,p2p=yes";
        *fatal = true;
        return false;
      }
      address = a.get();
    }
    GObjectPtr<GAsyncResult> res(await_async(
        context_, cancellable_, t,
        [&](GCancellable *c, GAsyncReadyCallback cb, gpointer d) {
          g_dbus_connection_new_for_address(
              address.c_str(),
              GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
              nullptr, c, cb, d);
        },
        &timed_out));
    session->qemu.reset(g_dbus_connection_new_for_address_finish(res.get(), &raw));
    if (!session->qemu) {
      err.reset(raw);
      *error = "cannot connect to D-Bus at '" + address + "': " +
               (timed_out ? std::string("timed out") : error_text(err));
      return false;
    }
    where = "bus " + address;

    /* Pick the VM among every QEMU queued on org.qemu. */
    if (config_.vm.empty()) {
      GVariantPtr owner(g_dbus_connection_call_sync(
          session->qemu.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
          "org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", kQemuName),
          G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, t, cancellable_, &raw));
      if (!owner) {
        err.reset(raw);
        *error = "no QEMU with -display dbus on " + where + " (nobody owns org.qemu)";
        return false;
      }
      const gchar *name;
      g_variant_get(owner.get(), "(&s)", &name);
      session->peer = name;
    } else {
      GVariantPtr owners(g_dbus_connection_call_sync(
          session->qemu.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
          "org.freedesktop.DBus", "ListQueuedOwners", g_variant_new("(s)", kQemuName),
          G_VARIANT_TYPE("(as)"), G_DBUS_CALL_FLAGS_NONE, t, cancellable_, &raw));
      if (!owners)
        err.reset(raw);
      std::vector<std::string> found;
      if (owners) {
        GVariantIter *iter;
        const gchar *unique;
        g_variant_get(owners.get(), "(as)", &iter);
        while (g_variant_iter_loop(iter, "&s", &unique)) {
          GVariantPtr name(g_dbus_connection_call_sync(
              session->qemu.get(), unique, kVmPath, "org.freedesktop.DBus.Properties", "Get",
              g_variant_new("(ss)", kVmIface, "Name"), G_VARIANT_TYPE("(v)"),
              G_DBUS_CALL_FLAGS_NONE, t, cancellable_, nullptr));
          if (!name)
            continue;
          GVariant *inner;
          g_variant_get(name.get(), "(v)", &inner);
          GVariantPtr inner_owned(inner);
          if (!g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING))
            continue;
          std::string vm = g_variant_get_string(inner, nullptr);
          if (vm == config_.vm && session->peer.empty())
            session->peer = unique;
          found.push_back(vm);
        }
        g_variant_iter_free(iter);
      }
      if (session->peer.empty()) {
        *error = "no VM named '" + config_.vm + "' on " + where +
                 "; VMs found: " + join_names(found) + " (QEMU's -name sets it)";
        return false;
      }
    }
  }

  /* VM name, for messages; p2p has no bus to search so we read it here.
   * In p2p mode QEMU exports its objects from a main-loop callback after the
   * handshake, so the first call may find nothing yet: retry briefly. */
  {
    GVariantPtr name;
    const int64_t retry_until = g_get_monotonic_time() + int64_t(t) * 1000;
    for (;;) {
      name.reset(g_dbus_connection_call_sync(
          session->qemu.get(), session->dest(), kVmPath, "org.freedesktop.DBus.Properties", "Get",
          g_variant_new("(ss)", kVmIface, "Name"), G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE,
          t, cancellable_, &raw));
      if (name)
        break;
      err.reset(raw);
      raw = nullptr;
      const bool not_yet = g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
                           g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
                           g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE);
      if (!config_.qmp.empty() && not_yet && !stopping_ && g_get_monotonic_time() < retry_until) {
        pause(20);
        continue;
      }
      break;
    }
    if (!name) {
      *error = "the peer on " + where + " is not a QEMU D-Bus display: " + error_text(err);
      return false;
    }
    GVariant *inner;
    g_variant_get(name.get(), "(v)", &inner);
    GVariantPtr inner_owned(inner);
    session->vm_name = g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING)
                           ? g_variant_get_string(inner, nullptr)
                           : "?";
  }

  /* The console must exist and be graphical. */
  GCharPtr console_path(g_strdup_printf("/org/qemu/Display1/Console_%u", config_.console));
  {
    GVariantPtr type(g_dbus_connection_call_sync(
        session->qemu.get(), session->dest(), console_path.get(),
        "org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", kConsoleIface, "Type"),
        G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, t, cancellable_, &raw));
    if (!type) {
      err.reset(raw);
      std::vector<std::string> ids;
      GVariantPtr all(g_dbus_connection_call_sync(
          session->qemu.get(), session->dest(), kVmPath, "org.freedesktop.DBus.Properties", "Get",
          g_variant_new("(ss)", kVmIface, "ConsoleIDs"), G_VARIANT_TYPE("(v)"),
          G_DBUS_CALL_FLAGS_NONE, t, cancellable_, nullptr));
      if (all) {
        GVariant *inner;
        g_variant_get(all.get(), "(v)", &inner);
        GVariantPtr inner_owned(inner);
        if (g_variant_is_of_type(inner, G_VARIANT_TYPE("au"))) {
          gsize n = 0;
          const guint32 *v = static_cast<const guint32 *>(g_variant_get_fixed_array(inner, &n, sizeof(guint32)));
          for (gsize i = 0; i < n; i++)
            ids.push_back(std::to_string(v[i]));
        }
      }
      std::string list;
      for (const std::string &id : ids)
        list += (list.empty() ? "" : ", ") + id;
      *error = "VM '" + session->vm_name + "' has no console " + std::to_string(config_.console) +
               " (consoles: " + (list.empty() ? "none" : list) + "): " + error_text(err);
      *fatal = true;
      return false;
    }
    GVariant *inner;
    g_variant_get(type.get(), "(v)", &inner);
    GVariantPtr inner_owned(inner);
    const char *kind = g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING)
                           ? g_variant_get_string(inner, nullptr)
                           : "";
    if (!g_str_equal(kind, "Graphic")) {
      *error = "console " + std::to_string(config_.console) + " of VM '" + session->vm_name +
               "' is a " + (kind[0] ? kind : "non-graphic") +
               " console, not a graphic one; pick another with the console property";
      *fatal = true;
      return false;
    }
  }

  /* RegisterListener: QEMU replies, then runs the server side of a D-Bus
   * handshake on the socket we passed, blocking its main loop meanwhile. */
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    *error = std::string("socketpair() failed: ") + g_strerror(errno);
    return false;
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  GObjectPtr<GUnixFDList> fds(g_unix_fd_list_new());
  if (g_unix_fd_list_append(fds.get(), theirs.get(), &raw) < 0) {
    err.reset(raw);
    *error = "cannot pass the listener socket: " + error_text(err);
    return false;
  }
  theirs.reset();
  GVariantPtr reg(g_dbus_connection_call_with_unix_fd_list_sync(
      session->qemu.get(), session->dest(), console_path.get(), kConsoleIface,
      "RegisterListener", g_variant_new("(h)", 0), nullptr, G_DBUS_CALL_FLAGS_NONE, t, fds.get(),
      nullptr, cancellable_, &raw));
  if (!reg) {
    err.reset(raw);
    *error = "RegisterListener on console " + std::to_string(config_.console) + " of VM '" +
             session->vm_name + "' failed: " + error_text(err);
    return false;
  }
  GSocket *sock = g_socket_new_from_fd(ours.get(), &raw);
  if (!sock) {
    err.reset(raw);
    *error = "cannot use the listener socket: " + error_text(err);
    return false;
  }
  ours.release();
  GObjectPtr<GSocket> sock_owner(sock);
  GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(sock));
  GObjectPtr<GAsyncResult> res(await_async(
      context_, cancellable_, t,
      [&](GCancellable *c, GAsyncReadyCallback cb, gpointer d) {
        g_dbus_connection_new(G_IO_STREAM(stream.get()), nullptr,
                              GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING),
                              nullptr, c, cb, d);
      },
      &timed_out));
  session->listener.reset(g_dbus_connection_new_finish(res.get(), &raw));
  if (!session->listener) {
    err.reset(raw);
    *error = timed_out ? "QEMU did not complete the listener handshake in time"
                       : "listener handshake with QEMU failed: " + error_text(err);
    return false;
  }

  static const GDBusInterfaceVTable vtable = {Session::handle_method, Session::on_get_property,
                                              nullptr, {nullptr}};
  GDBusNodeInfo *node = listener_node_info();
  session->reg_listener = g_dbus_connection_register_object(
      session->listener.get(), kListenerPath, g_dbus_node_info_lookup_interface(node, kListenerIface),
      &vtable, session.get(), nullptr, &raw);
  if (session->reg_listener)
    session->reg_map = g_dbus_connection_register_object(
        session->listener.get(), kListenerPath, g_dbus_node_info_lookup_interface(node, kMapIface),
        &vtable, session.get(), nullptr, &raw);
  if (!session->reg_listener || !session->reg_map) {
    err.reset(raw);
    *error = "cannot export the listener: " + error_text(err);
    return false;
  }
  session->closed_listener = g_signal_connect(session->listener.get(), "closed",
                                              G_CALLBACK(Session::on_closed), session.get());
  session->closed_qemu = g_signal_connect(session->qemu.get(), "closed",
                                          G_CALLBACK(Session::on_closed), session.get());
  auto fast = std::make_unique<FastPath>(store_, context_);
  session->fast = fast.get();
  /* GDBus owns it from here and frees it once the filter cannot run any more. */
  session->filter = g_dbus_connection_add_filter(
      session->listener.get(), FastPath::filter, fast.release(),
      [](gpointer p) { std::unique_ptr<FastPath> owned(static_cast<FastPath *>(p)); });
  g_dbus_connection_start_message_processing(session->listener.get());

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
