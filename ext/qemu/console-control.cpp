/* gst-vmdisplay: keyboard, mouse and resize requests to a QEMU console. */
#include "console-control.h"

#include "raii.h"

namespace vmd {

namespace {

constexpr const char *kKeyboardIface = "org.qemu.Display1.Keyboard";
constexpr const char *kMouseIface = "org.qemu.Display1.Mouse";
constexpr const char *kConsoleIface = "org.qemu.Display1.Console";
constexpr const char *kUnsupportedError = "org.qemu.Display1.Error.Unsupported";

const char *method_name(InputCall::Method m) {
  switch (m) {
    case InputCall::KeyPress:
    case InputCall::ButtonPress:
      return "Press";
    case InputCall::KeyRelease:
    case InputCall::ButtonRelease:
      return "Release";
    case InputCall::SetAbsPosition:
      return "SetAbsPosition";
    case InputCall::RelMotion:
      return "RelMotion";
    case InputCall::ReleaseAll:
      break;
  }
  return "";
}

}  // namespace

/* The logger and the log-once flags, shared with SetUIInfo replies that may
 * arrive after this connection's ConsoleControl is gone. */
struct ConsoleControl::Shared {
  DisplayLogger log;
  InputState *state = nullptr;
  uint32_t console = 0;
  bool told_unsupported = false;
  std::string last_error;
  unsigned unflushed = 0;     /* calls sent since the last completed flush */
  bool flush_pending = false;
};

namespace {

struct ReplyContext {
  std::weak_ptr<ConsoleControl::Shared> shared;
  UiInfo info;
};

void on_ui_info_reply(GObject *source, GAsyncResult *res, gpointer data) {
  std::unique_ptr<ReplyContext> ctx(static_cast<ReplyContext *>(data));
  GError *raw = nullptr;
  GVariantPtr reply(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &raw));
  GErrorPtr err(raw);
  auto shared = ctx->shared.lock();
  if (!shared)
    return;
  const std::string size = std::to_string(ctx->info.width) + "x" + std::to_string(ctx->info.height);
  if (!err) {
    shared->log(LogLevel::Info, "asked QEMU for a " + size + " display");
    return;
  }
  GCharPtr remote(g_dbus_error_get_remote_error(err.get()));
  if (remote && g_str_equal(remote.get(), kUnsupportedError)) {
    /* Not an error: std VGA and others cannot change size on request. */
    if (!shared->told_unsupported)
      shared->log(LogLevel::Info, "the display device of console " +
                                      std::to_string(shared->console) +
                                      " cannot change its size on request (SetUIInfo is "
                                      "unsupported); resize requests are ignored");
    shared->told_unsupported = true;
    return;
  }
  g_dbus_error_strip_remote_error(err.get());
  std::string msg = "QEMU refused a " + size + " display: " + err->message;
  if (msg != shared->last_error)
    shared->log(LogLevel::Info, msg);
  shared->last_error = msg;
}

void on_is_absolute(GObject *source, GAsyncResult *res, gpointer data) {
  std::unique_ptr<std::weak_ptr<ConsoleControl::Shared>> ctx(
      static_cast<std::weak_ptr<ConsoleControl::Shared> *>(data));
  GError *raw = nullptr;
  GVariantPtr reply(g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &raw));
  GErrorPtr err(raw);
  auto shared = ctx->lock();
  if (!shared)
    return; /* the connection is gone */
  if (!reply) {
    g_dbus_error_strip_remote_error(err.get());
    shared->log(LogLevel::Info, std::string("cannot read the console's pointer mode (") +
                                    err->message + "); assuming a relative mouse");
    return;
  }
  GVariant *inner = nullptr;
  g_variant_get(reply.get(), "(v)", &inner);
  GVariantPtr value(inner);
  const bool absolute =
      g_variant_is_of_type(inner, G_VARIANT_TYPE_BOOLEAN) && g_variant_get_boolean(inner);
  shared->state->set_absolute(absolute);
  shared->log(LogLevel::Info, absolute ? "the console's mouse is absolute (a tablet)"
                                       : "the console's mouse is relative");
}

void on_properties_changed(GDBusConnection *, const gchar *, const gchar *, const gchar *,
                           const gchar *, GVariant *params, gpointer data) {
  const gchar *iface = nullptr;
  GVariant *changed = nullptr;
  g_variant_get(params, "(&s@a{sv}@as)", &iface, &changed, nullptr);
  GVariantPtr owned(changed);
  gboolean absolute;
  if (g_str_equal(iface, kMouseIface) && g_variant_lookup(changed, "IsAbsolute", "b", &absolute))
    static_cast<InputState *>(data)->set_absolute(absolute);
}

}  // namespace

ConsoleControl::ConsoleControl(GDBusConnection *conn, const char *dest, uint32_t console,
                               InputState *state, DisplayLogger log, int timeout_ms)
    : conn_(conn),
      dest_(dest ? dest : ""),
      path_("/org/qemu/Display1/Console_" + std::to_string(console)),
      p2p_(dest == nullptr),
      state_(state),
      timeout_ms_(timeout_ms),
      shared_(std::make_shared<Shared>()) {
  shared_->log = std::move(log);
  shared_->console = console;
  shared_->state = state;
}

ConsoleControl::~ConsoleControl() {
  if (subscription_)
    g_dbus_connection_signal_unsubscribe(conn_, subscription_);
}

void ConsoleControl::start() {
  subscription_ = g_dbus_connection_signal_subscribe(
      conn_, p2p_ ? nullptr : dest_.c_str(), "org.freedesktop.DBus.Properties",
      "PropertiesChanged", path_.c_str(), kMouseIface, G_DBUS_SIGNAL_FLAGS_NONE,
      on_properties_changed, state_, nullptr);
  /* Asynchronous: QEMU is busy reading our listener's properties right
   * after the handshake and answers once we served that. */
  auto ctx = std::make_unique<std::weak_ptr<Shared>>(shared_);
  g_dbus_connection_call(conn_, p2p_ ? nullptr : dest_.c_str(), path_.c_str(),
                         "org.freedesktop.DBus.Properties", "Get",
                         g_variant_new("(ss)", kMouseIface, "IsAbsolute"), G_VARIANT_TYPE("(v)"),
                         G_DBUS_CALL_FLAGS_NO_AUTO_START, timeout_ms_, nullptr, on_is_absolute,
                         ctx.release());
}

void ConsoleControl::call(const char *iface, const char *method, GVariant *params) {
  /* No callback: sent with NO_REPLY_EXPECTED, nothing waits for QEMU. */
  g_dbus_connection_call(conn_, p2p_ ? nullptr : dest_.c_str(), path_.c_str(), iface, method,
                         params, nullptr, G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, nullptr, nullptr,
                         nullptr);
}

bool ConsoleControl::can_send() const {
  return !(shared_->flush_pending && shared_->unflushed >= kMaxUnflushed);
}

void ConsoleControl::send(const std::vector<InputCall> &calls) {
  shared_->unflushed += unsigned(calls.size());
  if (shared_->unflushed >= kFlushEvery && !shared_->flush_pending) {
    shared_->flush_pending = true;
    auto ctx = std::make_unique<std::weak_ptr<Shared>>(shared_);
    g_dbus_connection_flush(
        conn_, nullptr,
        [](GObject *, GAsyncResult *, gpointer data) {
          std::unique_ptr<std::weak_ptr<Shared>> weak(static_cast<std::weak_ptr<Shared> *>(data));
          if (auto shared = weak->lock()) {
            shared->flush_pending = false;
            shared->unflushed = 0;
          }
        },
        ctx.release());
  }
  for (const InputCall &c : calls) {
    const char *method = method_name(c.method);
    switch (c.method) {
      case InputCall::KeyPress:
      case InputCall::KeyRelease:
        call(kKeyboardIface, method, g_variant_new("(u)", c.code));
        break;
      case InputCall::ButtonPress:
      case InputCall::ButtonRelease:
        call(kMouseIface, method, g_variant_new("(u)", c.code));
        break;
      case InputCall::SetAbsPosition:
        call(kMouseIface, method, g_variant_new("(uu)", guint32(c.x), guint32(c.y)));
        break;
      case InputCall::RelMotion:
        call(kMouseIface, method, g_variant_new("(ii)", c.x, c.y));
        break;
      case InputCall::ReleaseAll: /* InputPacer's marker, never sent */
        break;
    }
  }
}

void ConsoleControl::set_ui_info(const UiInfo &info) {
  const uint16_t wmm = info.width_mm ? info.width_mm : ui_info_mm_at_96dpi(info.width);
  const uint16_t hmm = info.height_mm ? info.height_mm : ui_info_mm_at_96dpi(info.height);
  auto ctx = std::make_unique<ReplyContext>();
  ctx->shared = shared_;
  ctx->info = info;
  g_dbus_connection_call(conn_, p2p_ ? nullptr : dest_.c_str(), path_.c_str(), kConsoleIface,
                         "SetUIInfo",
                         g_variant_new("(qqiiuu)", wmm, hmm, 0, 0, info.width, info.height),
                         nullptr, G_DBUS_CALL_FLAGS_NO_AUTO_START, 5000, nullptr,
                         on_ui_info_reply, ctx.release());
}

void ConsoleControl::flush(GMainContext *context, int timeout_ms) {
  /* The flag outlives us if the flush completes after the timeout. */
  auto done = std::make_shared<bool>(false);
  auto hold = std::make_unique<std::shared_ptr<bool>>(done);
  g_dbus_connection_flush(
      conn_, nullptr,
      [](GObject *, GAsyncResult *, gpointer data) {
        std::unique_ptr<std::shared_ptr<bool>> flag(static_cast<std::shared_ptr<bool> *>(data));
        **flag = true;
      },
      hold.release());
  const int64_t until = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  while (!*done && g_get_monotonic_time() < until) {
    if (!g_main_context_iteration(context, FALSE))
      g_usleep(1000);
  }
}

}  // namespace vmd
