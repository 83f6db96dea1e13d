/* gst-vmdisplay: the org.qemu.Display1.Listener object QEMU calls. */
#include "qemu-listener.h"

#include "dmabuf-scanout.h"

#include <gio/gunixfdlist.h>

#include <exception>
#include <mutex>

namespace vmd {
namespace {

constexpr const char *kListenerPath = "/org/qemu/Display1/Listener";
constexpr const char *kListenerIface = "org.qemu.Display1.Listener";
constexpr const char *kMapIface = "org.qemu.Display1.Listener.Unix.Map";
constexpr const char *kDmabuf2Iface = "org.qemu.Display1.Listener.Unix.ScanoutDMABUF2";
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
    <!-- DMA-BUF scanouts (QEMU with gl=on); the reply to UpdateDMABUF is
         the guest's frame acknowledgement. -->
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
  <interface name="org.qemu.Display1.Listener.Unix.ScanoutDMABUF2">
    <method name="ScanoutDMABUF2">
      <arg type="ah" name="dmabuf" direction="in"/>
      <arg type="u" name="x" direction="in"/>
      <arg type="u" name="y" direction="in"/>
      <arg type="u" name="width" direction="in"/>
      <arg type="u" name="height" direction="in"/>
      <arg type="au" name="offset" direction="in"/>
      <arg type="au" name="stride" direction="in"/>
      <arg type="u" name="num_planes" direction="in"/>
      <arg type="u" name="fourcc" direction="in"/>
      <arg type="u" name="backing_width" direction="in"/>
      <arg type="u" name="backing_height" direction="in"/>
      <arg type="t" name="modifier" direction="in"/>
      <arg type="b" name="y0_top" direction="in"/>
    </method>
  </interface>
</node>
)XML";

constexpr const char *kInterfaces[] = {kMapIface, kDmabuf2Iface, nullptr};

GDBusNodeInfo *listener_node_info() {
  static GDBusNodeInfo *info = g_dbus_node_info_new_for_xml(kListenerXml, nullptr);
  return info;
}

/* One display call: applies it (signature already checked) to the store. */
struct CallTarget {
  FrameStore &store;
  DmabufScanouts &dmabuf;
};
using CallHandler = Verdict (*)(CallTarget &to, GVariant *params, GUnixFDList *fds, int64_t now,
                                LogLines *logs);

Verdict on_scanout(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now, LogLines *logs) {
  guint32 w, h, stride, fmt;
  GVariant *bytes = nullptr;
  g_variant_get(params, "(uuuu@ay)", &w, &h, &stride, &fmt, &bytes);
  gsize n = 0;
  const void *p = g_variant_get_fixed_array(bytes, &n, 1);
  /* The message's bytes become the surface: no copy until a partial update. */
  std::shared_ptr<const void> hold(bytes, [](const void *b) {
    g_variant_unref(static_cast<GVariant *>(const_cast<void *>(b)));
  });
  Verdict v =
      to.store.scanout(w, h, stride, fmt, static_cast<const uint8_t *>(p), n, now, std::move(hold));
  if (v.applied)
    logs->emplace_back(LogLevel::Info, "Scanout " + std::to_string(w) + "x" + std::to_string(h));
  return v;
}

Verdict on_update(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now, LogLines *) {
  gint32 x, y, w, h;
  guint32 stride, fmt;
  GVariant *bytes = nullptr;
  g_variant_get(params, "(iiiiuu@ay)", &x, &y, &w, &h, &stride, &fmt, &bytes);
  GVariantPtr owned(bytes);
  gsize n = 0;
  const void *p = g_variant_get_fixed_array(bytes, &n, 1);
  return to.store.update(x, y, w, h, stride, fmt, static_cast<const uint8_t *>(p), n, now);
}

/* Either ScanoutDMABUF form: parsed by `parse` (its wire form), opened
 * for reading, made the surface's source. A refusal ends the old buffer's
 * reign too: its updates no longer describe the guest's display. */
using DmabufParser = bool (*)(GVariant *, GUnixFDList *, DmabufScanoutMsg *, std::string *);
Verdict apply_dmabuf_scanout(CallTarget &to, const char *what, DmabufParser parse,
                             GVariant *params, GUnixFDList *fds, int64_t now, LogLines *logs) {
  DmabufScanoutMsg msg;
  std::string why;
  if (!parse(params, fds, &msg, &why)) {
    to.store.drop_dmabuf();
    return Verdict{false, std::string(what) + ": " + why};
  }
  const uint32_t w = msg.layout.visible.w, h = msg.layout.visible.h;
  DmabufOpened opened = to.dmabuf.open(std::move(msg));
  if (!opened.reader) {
    if (opened.fatal)
      to.store.fail(opened.why);
    to.store.drop_dmabuf();
    return Verdict{false, opened.why};
  }
  Verdict v = to.store.scanout_dmabuf(opened.reader, w, h, opened.host_format, opened.path, now);
  if (v.applied)
    logs->emplace_back(LogLevel::Debug, std::string(what) + ": " + opened.path);
  return v;
}

Verdict on_scanout_dmabuf(CallTarget &to, GVariant *params, GUnixFDList *fds, int64_t now,
                          LogLines *logs) {
  return apply_dmabuf_scanout(to, "ScanoutDMABUF", parse_scanout_dmabuf, params, fds, now, logs);
}

Verdict on_scanout_dmabuf2(CallTarget &to, GVariant *params, GUnixFDList *fds, int64_t now,
                           LogLines *logs) {
  return apply_dmabuf_scanout(to, "ScanoutDMABUF2", parse_scanout_dmabuf2, params, fds, now,
                              logs);
}

Verdict on_update_dmabuf(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now,
                         LogLines *) {
  gint32 x, y, w, h;
  g_variant_get(params, "(iiii)", &x, &y, &w, &h);
  return to.store.update_dmabuf(x, y, w, h, now);
}

Verdict on_disable(CallTarget &to, GVariant *, GUnixFDList *, int64_t, LogLines *logs) {
  to.store.disable();
  logs->emplace_back(LogLevel::Info, "QEMU disabled the display; waiting for the next scanout");
  return Verdict{};
}

Verdict on_scanout_map(CallTarget &to, GVariant *params, GUnixFDList *fds, int64_t now,
                       LogLines *logs) {
  gint32 handle;
  guint32 offset, w, h, stride, fmt;
  g_variant_get(params, "(huuuuu)", &handle, &offset, &w, &h, &stride, &fmt);
  UniqueFd fd;
  if (fds && handle >= 0 && handle < g_unix_fd_list_get_length(fds))
    fd.reset(g_unix_fd_list_get(fds, handle, nullptr));
  Verdict v = fd ? to.store.scanout_map(std::move(fd), offset, w, h, stride, fmt, now)
                 : Verdict{false, "ScanoutMap without a usable file descriptor"};
  if (v.applied)
    logs->emplace_back(LogLevel::Info, "ScanoutMap " + std::to_string(w) + "x" + std::to_string(h));
  return v;
}

Verdict on_update_map(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now, LogLines *) {
  gint32 x, y, w, h;
  g_variant_get(params, "(iiii)", &x, &y, &w, &h);
  return to.store.update_map(x, y, w, h, now);
}

Verdict on_mouse_set(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now, LogLines *) {
  gint32 x, y, on;
  g_variant_get(params, "(iii)", &x, &y, &on);
  to.store.cursor_move(x, y, on != 0, now);
  return Verdict{};
}

Verdict on_cursor_define(CallTarget &to, GVariant *params, GUnixFDList *, int64_t now,
                         LogLines *) {
  gint32 w, h, hot_x, hot_y;
  GVariant *bytes = nullptr;
  g_variant_get(params, "(iiii@ay)", &w, &h, &hot_x, &hot_y, &bytes);
  GVariantPtr owned(bytes);
  gsize n = 0;
  const void *p = g_variant_get_fixed_array(bytes, &n, 1);
  return to.store.cursor_define(w, h, hot_x, hot_y, static_cast<const uint8_t *>(p), n, now);
}

/* Every display call we implement: its interface, name, argument signature
 * (the filter only takes messages whose signature matches exactly) and
 * handler. The introspection XML above declares the same methods. */
struct ListenerCall {
  const char *iface, *method, *signature;
  CallHandler handle;
};
constexpr ListenerCall kCalls[] = {
    {kListenerIface, "Scanout", "uuuuay", on_scanout},
    {kListenerIface, "Update", "iiiiuuay", on_update},
    {kListenerIface, "ScanoutDMABUF", "huuuutb", on_scanout_dmabuf},
    {kListenerIface, "UpdateDMABUF", "iiii", on_update_dmabuf},
    {kListenerIface, "Disable", "", on_disable},
    {kListenerIface, "MouseSet", "iii", on_mouse_set},
    {kListenerIface, "CursorDefine", "iiiiay", on_cursor_define},
    {kMapIface, "ScanoutMap", "huuuuu", on_scanout_map},
    {kMapIface, "UpdateMap", "iiii", on_update_map},
    {kDmabuf2Iface, "ScanoutDMABUF2", "ahuuuuauauuuuutb", on_scanout_dmabuf2},
};

const ListenerCall *find_call(const char *iface, const char *method) {
  for (const auto &c : kCalls) {
    if (g_str_equal(iface, c.iface) && g_str_equal(method, c.method))
      return &c;
  }
  return nullptr;
}

/* No C++ exception may cross back into GDBus (e.g. bad_alloc for a huge
 * surface): it becomes a refused call and a stream error. */
Verdict apply_call_safely(const ListenerCall &call, CallTarget &to, GVariant *params,
                          GUnixFDList *fds, LogLines *logs) {
  try {
    Verdict v = call.handle(to, params, fds, g_get_monotonic_time(), logs);
    if (!v.message.empty())
      logs->emplace_back(v.applied && !v.warn ? LogLevel::Debug : LogLevel::Warning, v.message);
    return v;
  } catch (const std::exception &e) {
    std::string what = std::string("qemudbussrc could not handle ") + call.method + ": " + e.what();
    to.store.fail(what);
    return Verdict{false, what};
  }
}

GVariant *on_get_property(GDBusConnection *, const gchar *, const gchar *, const gchar *,
                          const gchar *name, GError **error, gpointer) {
  if (g_str_equal(name, "Interfaces"))
    return g_variant_new_strv(kInterfaces, -1);
  g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", name);
  return nullptr;
}

}  // namespace

/* State the filter needs on GDBus's worker thread. GDBus frees it (through
 * the destroy notify) only once the filter can no longer run, so it owns a
 * reference to the store rather than pointing into the listener. */
struct QemuListener::FastPath {
  std::shared_ptr<FrameStore> store;
  std::shared_ptr<DmabufScanouts> dmabuf;
  GMainContext *context; /* to wake our thread for the log lines */
  std::mutex lock;
  LogLines logs;

  FastPath(std::shared_ptr<FrameStore> s, std::shared_ptr<DmabufScanouts> d, GMainContext *ctx)
      : store(std::move(s)), dmabuf(std::move(d)), context(g_main_context_ref(ctx)) {}
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
    const ListenerCall *want = find_call(iface, method);
    const char *have = g_dbus_message_get_signature(message);
    if (!want || !g_str_equal(want->signature, have ? have : ""))
      return message; /* GDBus answers UnknownMethod / InvalidArgs itself */

    FastPath *self = static_cast<FastPath *>(data);
    const int64_t arrived = g_get_monotonic_time();
    GVariant *body = g_dbus_message_get_body(message);
    GVariantPtr empty(body ? nullptr : g_variant_ref_sink(g_variant_new("()")));
    LogLines logs;
    CallTarget to{*self->store, *self->dmabuf};
    Verdict v = apply_call_safely(*want, to, body ? body : empty.get(),
                                  g_dbus_message_get_unix_fd_list(message), &logs);
    if (!(g_dbus_message_get_flags(message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED)) {
      /* For ScanoutMap an error makes QEMU fall back to Scanout copies. */
      GObjectPtr<GDBusMessage> reply(
          v.applied ? g_dbus_message_new_method_reply(message)
                    : g_dbus_message_new_method_error_literal(message, kInvalidError,
                                                              v.message.c_str()));
      g_dbus_connection_send_message(connection, reply.get(), G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                     nullptr, nullptr);
      /* The reply to UpdateDMABUF releases the guest's GPU queue. */
      if (want->handle == on_update_dmabuf)
        self->store->record_ack(g_get_monotonic_time() - arrived);
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

QemuListener::QemuListener(std::shared_ptr<FrameStore> store,
                           std::shared_ptr<DmabufScanouts> dmabuf, DisplayLogger log)
    : store_(std::move(store)), dmabuf_(std::move(dmabuf)), log_(std::move(log)) {}

QemuListener::~QemuListener() {
  if (!conn_)
    return;
  if (filter_)
    g_dbus_connection_remove_filter(conn_.get(), filter_);
  if (reg_listener_)
    g_dbus_connection_unregister_object(conn_.get(), reg_listener_);
  if (reg_map_)
    g_dbus_connection_unregister_object(conn_.get(), reg_map_);
  if (reg_dmabuf2_)
    g_dbus_connection_unregister_object(conn_.get(), reg_dmabuf2_);
}

bool QemuListener::export_on(GDBusConnection *conn, GMainContext *context, std::string *error) {
  conn_.reset(G_DBUS_CONNECTION(g_object_ref(conn)));
  GError *raw = nullptr;
  static const GDBusInterfaceVTable vtable = {handle_method, on_get_property, nullptr, {nullptr}};
  GDBusNodeInfo *node = listener_node_info();
  reg_listener_ = g_dbus_connection_register_object(
      conn, kListenerPath, g_dbus_node_info_lookup_interface(node, kListenerIface), &vtable, this,
      nullptr, &raw);
  if (reg_listener_)
    reg_map_ = g_dbus_connection_register_object(
        conn, kListenerPath, g_dbus_node_info_lookup_interface(node, kMapIface), &vtable, this,
        nullptr, &raw);
  if (reg_map_)
    reg_dmabuf2_ = g_dbus_connection_register_object(
        conn, kListenerPath, g_dbus_node_info_lookup_interface(node, kDmabuf2Iface), &vtable,
        this, nullptr, &raw);
  if (!reg_listener_ || !reg_map_ || !reg_dmabuf2_) {
    GErrorPtr err(raw);
    g_dbus_error_strip_remote_error(err.get());
    *error = "cannot export the listener: " + std::string(err ? err->message : "unknown error");
    return false;
  }
  dmabuf_->forget(); /* buffers of an earlier connection */
  auto fast = std::make_unique<FastPath>(store_, dmabuf_, context);
  fast_ = fast.get();
  /* GDBus owns it from here and frees it once the filter cannot run any more. */
  filter_ = g_dbus_connection_add_filter(
      conn, FastPath::filter, fast.release(),
      [](gpointer p) { std::unique_ptr<FastPath> owned(static_cast<FastPath *>(p)); });
  g_dbus_connection_start_message_processing(conn);
  return true;
}

void QemuListener::drain_logs() {
  if (!fast_)
    return;
  LogLines lines;
  {
    std::lock_guard<std::mutex> guard(fast_->lock);
    lines.swap(fast_->logs);
  }
  for (const auto &line : lines)
    log_(line.first, line.second);
}

void QemuListener::handle_method(GDBusConnection *, const gchar *, const gchar *,
                                 const gchar *iface, const gchar *method, GVariant *params,
                                 GDBusMethodInvocation *inv, gpointer data) {
  /* Reached only if the filter let a call through (it handles every display
   * call with the right signature); kept so both paths behave the same. */
  auto *self = static_cast<QemuListener *>(data);
  const ListenerCall *call = find_call(iface, method);
  if (!call) {
    g_dbus_method_invocation_return_error(inv, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                          "%s.%s is not implemented", iface, method);
    return;
  }
  LogLines logs;
  CallTarget to{*self->store_, *self->dmabuf_};
  Verdict v = apply_call_safely(
      *call, to, params,
      g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(inv)), &logs);
  for (const auto &line : logs)
    self->log_(line.first, line.second);
  if (v.applied)
    g_dbus_method_invocation_return_value(inv, nullptr);
  else
    g_dbus_method_invocation_return_dbus_error(inv, kInvalidError, v.message.c_str());
}

}  // namespace vmd
