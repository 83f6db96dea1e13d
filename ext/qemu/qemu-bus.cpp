/* gst-vmdisplay: finding QEMU's D-Bus display and shaking hands with it. */
#include "qemu-bus.h"

#include "qmp-client.h"

#include <gio/gunixfdlist.h>
#include <sys/socket.h>

#include <cerrno>
#include <functional>

namespace vmd {
namespace {

constexpr const char *kQemuName = "org.qemu";
constexpr const char *kVmPath = "/org/qemu/Display1/VM";
constexpr const char *kVmIface = "org.qemu.Display1.VM";
constexpr const char *kConsoleIface = "org.qemu.Display1.Console";

/* The message of a GError without GDBus's "GDBus.Error:name:" prefix. */
std::string error_text(const GErrorPtr &err) {
  if (!err)
    return "unknown error";
  g_dbus_error_strip_remote_error(err.get());
  return err->message;
}

std::string console_path(uint32_t console) {
  return "/org/qemu/Display1/Console_" + std::to_string(console);
}

/* Runs one asynchronous GIO operation on the current thread's context, with
 * a timeout and the caller's stop cancellable. Returns its result (owned). */
GAsyncResult *await_async(const QemuBusWait &wait,
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
  GSource *timer = g_timeout_source_new(guint(wait.timeout_ms));
  g_source_set_callback(
      timer,
      [](gpointer p) {
        auto *d = static_cast<TimerData *>(p);
        *d->expired = true;
        g_cancellable_cancel(d->op);
        return G_SOURCE_REMOVE;
      },
      &td, nullptr);
  g_source_attach(timer, wait.context);
  const gulong handler =
      wait.cancellable
          ? g_cancellable_connect(
                wait.cancellable,
                G_CALLBACK(+[](GCancellable *, gpointer c) { g_cancellable_cancel(G_CANCELLABLE(c)); }),
                op.get(), nullptr)
          : 0;
  while (!result)
    g_main_context_iteration(wait.context, TRUE);
  if (handler)
    g_cancellable_disconnect(wait.cancellable, handler);
  g_source_destroy(timer);
  g_source_unref(timer);
  *timed_out = expired;
  return result;
}

/* Sleeps ms on the caller's context; returns early when cancelled. */
void pause_on(const QemuBusWait &wait, int ms) {
  const int64_t until = g_get_monotonic_time() + int64_t(ms) * 1000;
  GSource *timer = g_timeout_source_new(guint(ms));
  g_source_set_callback(timer, [](gpointer) { return G_SOURCE_REMOVE; }, nullptr, nullptr);
  g_source_attach(timer, wait.context);
  while (!g_cancellable_is_cancelled(wait.cancellable) && g_get_monotonic_time() < until)
    g_main_context_iteration(wait.context, TRUE);
  g_source_destroy(timer);
  g_source_unref(timer);
}

/* The outcome of a client handshake on a socket we hold one end of. */
struct Handshake {
  GObjectPtr<GDBusConnection> conn;
  bool socket_failed = false; /* the fd could not become a GSocket */
  bool timed_out = false;
  GErrorPtr err;
};

/* The one place where our end of a socket becomes a GDBus connection: the
 * QMP-provided display socket and the listener socket both go through it. */
Handshake client_handshake(UniqueFd fd, GDBusConnectionFlags extra, const QemuBusWait &wait) {
  Handshake hs;
  GError *raw = nullptr;
  GSocket *sock = g_socket_new_from_fd(fd.get(), &raw);
  if (!sock) {
    hs.err.reset(raw);
    hs.socket_failed = true;
    return hs;
  }
  fd.release();
  GObjectPtr<GSocket> sock_owner(sock);
  GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(sock));
  const auto flags = GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | extra);
  GObjectPtr<GAsyncResult> res(await_async(
      wait,
      [&](GCancellable *c, GAsyncReadyCallback cb, gpointer d) {
        g_dbus_connection_new(G_IO_STREAM(stream.get()), nullptr, flags, nullptr, c, cb, d);
      },
      &hs.timed_out));
  hs.conn.reset(g_dbus_connection_new_finish(res.get(), &raw));
  if (!hs.conn)
    hs.err.reset(raw);
  return hs;
}

/* org.freedesktop.DBus.Properties.Get, unboxed; nullptr (and *err) on failure. */
GVariantPtr get_property(GDBusConnection *conn, const char *dest, const std::string &path,
                         const char *iface, const char *prop, const QemuBusWait &wait,
                         GErrorPtr *err) {
  GError *raw = nullptr;
  GVariantPtr reply(g_dbus_connection_call_sync(
      conn, dest, path.c_str(), "org.freedesktop.DBus.Properties", "Get",
      g_variant_new("(ss)", iface, prop), G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE,
      wait.timeout_ms, wait.cancellable, &raw));
  if (!reply) {
    if (err)
      err->reset(raw);
    else
      g_clear_error(&raw);
    return nullptr;
  }
  GVariant *inner;
  g_variant_get(reply.get(), "(v)", &inner);
  return GVariantPtr(inner);
}

/* A string property, or "" when absent or of another type. */
std::string get_string(GDBusConnection *conn, const char *dest, const std::string &path,
                       const char *iface, const char *prop, const QemuBusWait &wait) {
  GVariantPtr v = get_property(conn, dest, path, iface, prop, wait, nullptr);
  if (!v || !g_variant_is_of_type(v.get(), G_VARIANT_TYPE_STRING))
    return "";
  return g_variant_get_string(v.get(), nullptr);
}

/* VM.ConsoleIDs; empty when absent. */
std::vector<uint32_t> console_ids(GDBusConnection *conn, const char *dest, const QemuBusWait &wait) {
  std::vector<uint32_t> ids;
  GVariantPtr all = get_property(conn, dest, kVmPath, kVmIface, "ConsoleIDs", wait, nullptr);
  if (all && g_variant_is_of_type(all.get(), G_VARIANT_TYPE("au"))) {
    gsize n = 0;
    const auto *v = static_cast<const guint32 *>(g_variant_get_fixed_array(all.get(), &n, sizeof(guint32)));
    ids.assign(v, v + n);
  }
  return ids;
}

/* Unique names queued on org.qemu, primary owner first. */
bool queued_owners(GDBusConnection *bus, const QemuBusWait &wait, std::vector<std::string> *owners,
                   GErrorPtr *err) {
  GError *raw = nullptr;
  GVariantPtr reply(g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "ListQueuedOwners", g_variant_new("(s)", kQemuName), G_VARIANT_TYPE("(as)"),
      G_DBUS_CALL_FLAGS_NONE, wait.timeout_ms, wait.cancellable, &raw));
  if (!reply) {
    err->reset(raw);
    return false;
  }
  GVariantIter *iter;
  const gchar *unique;
  g_variant_get(reply.get(), "(as)", &iter);
  while (g_variant_iter_loop(iter, "&s", &unique))
    owners->emplace_back(unique);
  g_variant_iter_free(iter);
  return true;
}

std::string join_names(const std::vector<std::string> &names) {
  std::string out;
  for (const std::string &n : names)
    out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

/* Picks by VM.Name among every QEMU queued on org.qemu. */
QemuBusResult pick_vm_by_name(GDBusConnection *bus, const std::string &vm_name,
                              const std::string &where, const QemuBusWait &wait,
                              std::string *owner) {
  std::vector<std::string> owners, found;
  GErrorPtr err;
  queued_owners(bus, wait, &owners, &err);
  for (const std::string &unique : owners) {
    GVariantPtr name = get_property(bus, unique.c_str(), kVmPath, kVmIface, "Name", wait, nullptr);
    if (!name || !g_variant_is_of_type(name.get(), G_VARIANT_TYPE_STRING))
      continue;
    std::string vm = g_variant_get_string(name.get(), nullptr);
    if (vm == vm_name && owner->empty())
      *owner = unique;
    found.push_back(vm);
  }
  if (owner->empty())
    return QemuBusResult::fail(QemuBusError::NoSuchVm,
                               "no VM named '" + vm_name + "' on " + where + "; VMs found: " +
                                   join_names(found) + " (QEMU's -name sets it)");
  return {};
}

}  // namespace

QemuBusResult qemu_bus_open(const std::string &address_in, const QemuBusWait &wait,
                            GObjectPtr<GDBusConnection> *bus, std::string *where) {
  std::string address = address_in;
  GError *raw = nullptr;
  GErrorPtr err;
  if (address.empty() || address == "session" || address == "system") {
    GBusType type = address == "system" ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
    GCharPtr a(g_dbus_address_get_for_bus_sync(type, wait.cancellable, &raw));
    if (!a) {
      err.reset(raw);
      return QemuBusResult::fail(
          QemuBusError::NoBus,
          "no D-Bus " + std::string(type == G_BUS_TYPE_SYSTEM ? "system" : "session") +
              " bus to find QEMU on (" + error_text(err) +
              "); set the address property or use qmp= for -display dbus,p2p=yes");
    }
    address = a.get();
  }
  bool timed_out = false;
  GObjectPtr<GAsyncResult> res(await_async(
      wait,
      [&](GCancellable *c, GAsyncReadyCallback cb, gpointer d) {
        g_dbus_connection_new_for_address(
            address.c_str(),
            GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
            nullptr, c, cb, d);
      },
      &timed_out));
  bus->reset(g_dbus_connection_new_for_address_finish(res.get(), &raw));
  if (!*bus) {
    err.reset(raw);
    return QemuBusResult::fail(timed_out ? QemuBusError::Timeout : QemuBusError::ConnectFailed,
                               "cannot connect to D-Bus at '" + address + "': " +
                                   (timed_out ? std::string("timed out") : error_text(err)));
  }
  *where = "bus " + address;
  return {};
}

QemuBusResult qemu_p2p_open(const std::string &qmp_path, const QemuBusWait &wait,
                            GObjectPtr<GDBusConnection> *peer, std::string *where) {
  /* Peer to peer: QEMU serves its display objects on a socket we hand it. */
  UniqueFd fd;
  std::string error;
  GPollFD cancel_poll = {};
  const bool pollable = g_cancellable_make_pollfd(wait.cancellable, &cancel_poll);
  const bool qmp_ok = qmp_add_dbus_client(qmp_path, wait.timeout_ms,
                                          pollable ? cancel_poll.fd : -1, &fd, &error);
  if (pollable)
    g_cancellable_release_fd(wait.cancellable);
  if (!qmp_ok)
    return QemuBusResult::fail(QemuBusError::QmpFailed, error);
  Handshake hs = client_handshake(std::move(fd), G_DBUS_CONNECTION_FLAGS_NONE, wait);
  if (hs.socket_failed)
    return QemuBusResult::fail(QemuBusError::SocketFailed,
                               "cannot use the D-Bus socket: " + error_text(hs.err));
  if (!hs.conn)
    return hs.timed_out
               ? QemuBusResult::fail(QemuBusError::Timeout,
                                     "QEMU did not complete the D-Bus handshake on the "
                                     "QMP-provided socket in time")
               : QemuBusResult::fail(QemuBusError::ConnectFailed,
                                     "D-Bus handshake with QEMU failed: " + error_text(hs.err));
  *peer = std::move(hs.conn);
  *where = "QMP socket " + qmp_path;
  return {};
}

QemuBusResult qemu_bus_pick_vm(GDBusConnection *bus, const std::string &vm_name,
                               const std::string &where, const QemuBusWait &wait,
                               std::string *owner) {
  owner->clear();
  if (!vm_name.empty())
    return pick_vm_by_name(bus, vm_name, where, wait, owner);
  GVariantPtr reply(g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetNameOwner", g_variant_new("(s)", kQemuName), G_VARIANT_TYPE("(s)"),
      G_DBUS_CALL_FLAGS_NONE, wait.timeout_ms, wait.cancellable, nullptr));
  if (!reply)
    return QemuBusResult::fail(QemuBusError::NoQemu, "no QEMU with -display dbus on " + where +
                                                         " (nobody owns org.qemu)");
  const gchar *name;
  g_variant_get(reply.get(), "(&s)", &name);
  *owner = name;
  return {};
}

QemuBusResult qemu_bus_queued_owners(GDBusConnection *bus, const QemuBusWait &wait,
                                     std::vector<std::string> *owners) {
  owners->clear();
  GErrorPtr err;
  if (queued_owners(bus, wait, owners, &err))
    return {};
  /* Nobody on org.qemu is a normal state: no VMs. */
  if (g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
    return {};
  return QemuBusResult::fail(QemuBusError::ConnectFailed,
                             "cannot list the owners of org.qemu: " + error_text(err));
}

QemuBusResult qemu_bus_list_vms(GDBusConnection *bus, const QemuBusWait &wait,
                                std::vector<QemuVmInfo> *vms) {
  vms->clear();
  std::vector<std::string> owners;
  QemuBusResult r = qemu_bus_queued_owners(bus, wait, &owners);
  if (!r.ok())
    return r;
  for (const std::string &unique : owners) {
    QemuVmInfo vm;
    if (qemu_read_vm(bus, unique.c_str(), wait, &vm).ok())
      vms->push_back(std::move(vm));
  }
  return {};
}

QemuBusResult qemu_read_vm(GDBusConnection *conn, const char *dest, const QemuBusWait &wait,
                           QemuVmInfo *vm) {
  GErrorPtr err;
  GVariantPtr name = get_property(conn, dest, kVmPath, kVmIface, "Name", wait, &err);
  if (!name || !g_variant_is_of_type(name.get(), G_VARIANT_TYPE_STRING))
    return QemuBusResult::fail(QemuBusError::NotDisplay,
                               std::string("the peer ") + (dest ? dest : "on the socket") +
                                   " is not a QEMU D-Bus display: " +
                                   (err ? error_text(err) : "VM.Name is not a string"));
  vm->owner = dest ? dest : "";
  vm->name = g_variant_get_string(name.get(), nullptr);
  vm->uuid = get_string(conn, dest, kVmPath, kVmIface, "UUID", wait);
  vm->consoles.clear();
  for (uint32_t id : console_ids(conn, dest, wait)) {
    QemuConsoleInfo c;
    c.id = id;
    c.label = get_string(conn, dest, console_path(id), kConsoleIface, "Label", wait);
    c.type = get_string(conn, dest, console_path(id), kConsoleIface, "Type", wait);
    vm->consoles.push_back(std::move(c));
  }
  return {};
}

QemuBusResult qemu_read_vm_name(GDBusConnection *conn, const char *dest, bool retry_unexported,
                                const std::string &where, const QemuBusWait &wait,
                                std::string *name) {
  GVariantPtr value;
  GErrorPtr err;
  const int64_t retry_until = g_get_monotonic_time() + int64_t(wait.timeout_ms) * 1000;
  for (;;) {
    err.reset();
    value = get_property(conn, dest, kVmPath, kVmIface, "Name", wait, &err);
    if (value)
      break;
    const bool not_yet = g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
                         g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
                         g_error_matches(err.get(), G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE);
    if (!retry_unexported || !not_yet || g_cancellable_is_cancelled(wait.cancellable) ||
        g_get_monotonic_time() >= retry_until)
      return QemuBusResult::fail(QemuBusError::NotDisplay, "the peer on " + where +
                                                               " is not a QEMU D-Bus display: " +
                                                               error_text(err));
    pause_on(wait, 20);
  }
  *name = g_variant_is_of_type(value.get(), G_VARIANT_TYPE_STRING)
              ? g_variant_get_string(value.get(), nullptr)
              : "?";
  return {};
}

QemuBusResult qemu_check_console(GDBusConnection *conn, const char *dest, uint32_t console,
                                 const std::string &vm_name, const QemuBusWait &wait) {
  GErrorPtr err;
  GVariantPtr type = get_property(conn, dest, console_path(console), kConsoleIface, "Type", wait, &err);
  if (!type) {
    std::string list;
    for (uint32_t id : console_ids(conn, dest, wait))
      list += (list.empty() ? "" : ", ") + std::to_string(id);
    return QemuBusResult::fail(QemuBusError::NoSuchConsole,
                               "VM '" + vm_name + "' has no console " + std::to_string(console) +
                                   " (consoles: " + (list.empty() ? "none" : list) +
                                   "): " + error_text(err));
  }
  const char *kind = g_variant_is_of_type(type.get(), G_VARIANT_TYPE_STRING)
                         ? g_variant_get_string(type.get(), nullptr)
                         : "";
  if (!g_str_equal(kind, "Graphic"))
    return QemuBusResult::fail(QemuBusError::NotGraphic,
                               "console " + std::to_string(console) + " of VM '" + vm_name +
                                   "' is a " + (kind[0] ? kind : "non-graphic") +
                                   " console, not a graphic one; pick another with the console "
                                   "property");
  return {};
}

QemuBusResult qemu_register_listener(GDBusConnection *conn, const char *dest, uint32_t console,
                                     const std::string &vm_name, const QemuBusWait &wait,
                                     GObjectPtr<GDBusConnection> *listener) {
  /* RegisterListener: QEMU replies, then runs the server side of a D-Bus
   * handshake on the socket we passed, blocking its main loop meanwhile. */
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return QemuBusResult::fail(QemuBusError::SocketFailed,
                               std::string("socketpair() failed: ") + g_strerror(errno));
  UniqueFd ours(pair[0]), theirs(pair[1]);
  GError *raw = nullptr;
  GErrorPtr err;
  GObjectPtr<GUnixFDList> fds(g_unix_fd_list_new());
  if (g_unix_fd_list_append(fds.get(), theirs.get(), &raw) < 0) {
    err.reset(raw);
    return QemuBusResult::fail(QemuBusError::SocketFailed,
                               "cannot pass the listener socket: " + error_text(err));
  }
  theirs.reset();
  GVariantPtr reg(g_dbus_connection_call_with_unix_fd_list_sync(
      conn, dest, console_path(console).c_str(), kConsoleIface, "RegisterListener",
      g_variant_new("(h)", 0), nullptr, G_DBUS_CALL_FLAGS_NONE, wait.timeout_ms, fds.get(),
      nullptr, wait.cancellable, &raw));
  if (!reg) {
    err.reset(raw);
    return QemuBusResult::fail(QemuBusError::RegisterFailed,
                               "RegisterListener on console " + std::to_string(console) +
                                   " of VM '" + vm_name + "' failed: " + error_text(err));
  }
  Handshake hs = client_handshake(std::move(ours), G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING, wait);
  if (hs.socket_failed)
    return QemuBusResult::fail(QemuBusError::SocketFailed,
                               "cannot use the listener socket: " + error_text(hs.err));
  if (!hs.conn)
    return hs.timed_out ? QemuBusResult::fail(QemuBusError::Timeout,
                                              "QEMU did not complete the listener handshake in time")
                        : QemuBusResult::fail(QemuBusError::ConnectFailed,
                                              "listener handshake with QEMU failed: " +
                                                  error_text(hs.err));
  *listener = std::move(hs.conn);
  return {};
}

}  // namespace vmd
