/* Self-test of fake-qemu: plays a minimal display client with raw GDBus
 * against the fake, in peer-to-peer mode (through QMP) and in bus mode (on a
 * private dbus-daemon it spawns). Exit status 0 on success, 1 on failure,
 * 77 (skip) when dbus-daemon is missing for the bus part.
 */
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake-qemu.h"
#include "selftest-check.h"

using fakeqemu::FakeQemu;
using fakeqemu::FakeQemuOptions;

namespace {

using selftest::g_failures;

#define CHECK_CONTAINS(haystack, needle)                                         \
  do {                                                                           \
    const std::string h_ = (haystack);                                           \
    if (h_.find(needle) == std::string::npos) {                                  \
      std::fprintf(stderr, "%s:%d: expected '%s' in '%s'\n", __FILE__, __LINE__, \
                   std::string(needle).c_str(), h_.c_str());                     \
      g_failures++;                                                              \
    }                                                                            \
  } while (0)

constexpr const char *kPixmanX8R8G8B8 = "0x20020888";
constexpr uint32_t kX8R8G8B8 = 0x20020888;

// The client side of the listener interfaces, as a display client exports it.
constexpr const char *kListenerXml = R"XML(
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
      <arg type="h" name="handle" direction="in"/>
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

struct GObjectUnref {
  void operator()(gpointer p) const { g_object_unref(p); }
};
template <typename T>
using GRef = std::unique_ptr<T, GObjectUnref>;

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0)
      close(fd);
  }
};

std::string hex(uint32_t v) {
  char buf[16];
  g_snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

bool wait_until(const std::function<bool()> &pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end)
      return false;
    g_usleep(5000);
  }
  return true;
}

// ------------------------------------------------------------ client listener

// Registers a listener on a console and records every call it receives, on
// its own thread and main context, as a real client must: the fake blocks
// on the handshake and the GetAll until this side services them.
class ClientListener {
 public:
  ClientListener(GDBusConnection *display, const char *dest, uint32_t console,
                 std::vector<std::string> interfaces)
      : display_(display),
        dest_(dest ? dest : ""),
        console_(console),
        interfaces_(std::move(interfaces)) {}

  ~ClientListener() {
    stop();
    if (loop_)
      g_main_loop_unref(loop_);
    if (ctx_)
      g_main_context_unref(ctx_);
  }

  std::string start() {
    /* Made here and freed only after the join: stop() may still use them
     * when the thread ended early (a failed setup). */
    ctx_ = g_main_context_new();
    loop_ = g_main_loop_new(ctx_, FALSE);
    std::promise<std::string> ready;
    auto result = ready.get_future();
    thread_ = std::thread([this, &ready] { run(&ready); });
    return result.get();
  }

  void stop() {
    if (!thread_.joinable())
      return;
    g_main_context_invoke(
        ctx_,
        [](gpointer l) -> gboolean {
          g_main_loop_quit(static_cast<GMainLoop *>(l));
          return G_SOURCE_REMOVE;
        },
        loop_);
    thread_.join();
  }

  bool wait_calls(size_t count, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return calls_.size() >= count; });
  }

  std::string last_call() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_.empty() ? "" : calls_.back();
  }

  bool wait_closed(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return closed_; });
  }

  ClientListener(const ClientListener &) = delete;
  ClientListener &operator=(const ClientListener &) = delete;

 private:
  void record(std::string call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(std::move(call));
    }
    cv_.notify_all();
  }

  void run(std::promise<std::string> *ready) {
    g_main_context_push_thread_default(ctx_);
    std::string error = setup();
    ready->set_value(error);
    if (error.empty())
      g_main_loop_run(loop_);
    if (conn_) {
      for (guint id : registrations_)
        g_dbus_connection_unregister_object(conn_, id);
      g_signal_handlers_disconnect_by_data(conn_, this);
      g_dbus_connection_close_sync(conn_, nullptr, nullptr);
      g_object_unref(conn_);
    }
    if (node_)
      g_dbus_node_info_unref(node_);
    while (g_main_context_iteration(ctx_, FALSE)) {
    }
    g_main_context_pop_thread_default(ctx_);
  }

  std::string setup() {
    g_autoptr(GError) err = nullptr;
    node_ = g_dbus_node_info_new_for_xml(kListenerXml, &err);
    if (!node_)
      return err->message;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
      return "socketpair failed";
    FdCloser theirs{pair[1]};
    g_autoptr(GSocket) sock = g_socket_new_from_fd(pair[0], &err);
    if (!sock) {
      close(pair[0]);
      return err->message;
    }
    g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
    int handle = g_unix_fd_list_append(fds, pair[1], &err);
    std::string path = "/org/qemu/Display1/Console_" + std::to_string(console_);
    g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_sync(
        display_, dest_.empty() ? nullptr : dest_.c_str(), path.c_str(),
        "org.qemu.Display1.Console", "RegisterListener", g_variant_new("(h)", handle), nullptr,
        G_DBUS_CALL_FLAGS_NONE, 5000, fds, nullptr, nullptr, &err);
    if (!reply)
      return std::string("RegisterListener: ") + err->message;
    // The fake replied before its handshake: now be the authentication client.
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(sock);
    conn_ = g_dbus_connection_new_sync(
        G_IO_STREAM(stream), nullptr,
        static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                          G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING),
        nullptr, nullptr, &err);
    if (!conn_)
      return std::string("listener handshake: ") + err->message;
    static const GDBusInterfaceVTable vtable = {on_call, on_get_property, nullptr, {nullptr}};
    for (const char *iface :
         {"org.qemu.Display1.Listener", "org.qemu.Display1.Listener.Unix.Map"}) {
      guint id = g_dbus_connection_register_object(conn_, "/org/qemu/Display1/Listener",
                                                   g_dbus_node_info_lookup_interface(node_, iface),
                                                   &vtable, this, nullptr, &err);
      if (!id)
        return err->message;
      registrations_.push_back(id);
    }
    g_signal_connect(conn_, "closed", G_CALLBACK(on_closed), this);
    g_dbus_connection_start_message_processing(conn_);
    return "";
  }

  static void on_closed(GDBusConnection *, gboolean, GError *, gpointer data) {
    auto *self = static_cast<ClientListener *>(data);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->closed_ = true;
    }
    self->cv_.notify_all();
  }

  static GVariant *on_get_property(GDBusConnection *, const gchar *, const gchar *, const gchar *,
                                   const gchar *, GError **, gpointer data) {
    auto *self = static_cast<ClientListener *>(data);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
    for (const auto &i : self->interfaces_)
      g_variant_builder_add(&b, "s", i.c_str());
    return g_variant_builder_end(&b);
  }

  static void on_call(GDBusConnection *, const gchar *, const gchar *, const gchar *,
                      const gchar *method, GVariant *params, GDBusMethodInvocation *inv,
                      gpointer data) {
    auto *self = static_cast<ClientListener *>(data);
    std::string m = method;
    std::string rec = m;
    if (m == "Scanout") {
      guint32 w, h, stride, fmt;
      g_autoptr(GVariant) bytes = nullptr;
      g_variant_get(params, "(uuuu@ay)", &w, &h, &stride, &fmt, &bytes);
      if (fmt == 0xdeadbeef) {
        g_dbus_method_invocation_return_dbus_error(inv, "org.example.Error.BadFormat",
                                                   "unknown pixman format 0xdeadbeef");
        return;
      }
      rec += " " + std::to_string(w) + " " + std::to_string(h) + " " + std::to_string(stride) +
             " " + hex(fmt) + " " + std::to_string(g_variant_get_size(bytes));
    } else if (m == "Update") {
      gint32 x, y, w, h;
      guint32 stride, fmt;
      g_autoptr(GVariant) bytes = nullptr;
      g_variant_get(params, "(iiiiuu@ay)", &x, &y, &w, &h, &stride, &fmt, &bytes);
      rec += " " + std::to_string(x) + " " + std::to_string(y) + " " + std::to_string(w) + " " +
             std::to_string(h) + " " + std::to_string(stride) + " " + hex(fmt) + " " +
             std::to_string(g_variant_get_size(bytes));
    } else if (m == "ScanoutMap") {
      gint32 handle;
      guint32 offset, w, h, stride, fmt;
      g_variant_get(params, "(huuuuu)", &handle, &offset, &w, &h, &stride, &fmt);
      GUnixFDList *fds = g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(inv));
      int fd = fds ? g_unix_fd_list_get(fds, handle, nullptr) : -1;
      unsigned char px[4] = {0, 0, 0, 0};
      if (fd >= 0) {
        if (pread(fd, px, sizeof px, offset) != static_cast<ssize_t>(sizeof px))
          memset(px, 0xee, sizeof px);
        close(fd);
      }
      char pixels[16];
      g_snprintf(pixels, sizeof pixels, "%02x%02x%02x%02x", px[0], px[1], px[2], px[3]);
      rec += " " + std::to_string(offset) + " " + std::to_string(w) + " " + std::to_string(h) +
             " " + std::to_string(stride) + " " + hex(fmt) + " " + pixels;
    } else if (m == "UpdateMap") {
      gint32 x, y, w, h;
      g_variant_get(params, "(iiii)", &x, &y, &w, &h);
      rec += " " + std::to_string(x) + " " + std::to_string(y) + " " + std::to_string(w) + " " +
             std::to_string(h);
    } else if (m == "MouseSet") {
      gint32 x, y, on;
      g_variant_get(params, "(iii)", &x, &y, &on);
      rec += " " + std::to_string(x) + " " + std::to_string(y) + " " + std::to_string(on);
    } else if (m == "CursorDefine") {
      gint32 w, h, hx, hy;
      g_autoptr(GVariant) bytes = nullptr;
      g_variant_get(params, "(iiii@ay)", &w, &h, &hx, &hy, &bytes);
      rec += " " + std::to_string(w) + " " + std::to_string(h) + " " + std::to_string(hx) + " " +
             std::to_string(hy) + " " + std::to_string(g_variant_get_size(bytes));
    }
    self->record(rec);
    g_dbus_method_invocation_return_value(inv, nullptr);
  }

  GDBusConnection *display_;
  std::string dest_;
  uint32_t console_;
  std::vector<std::string> interfaces_;
  std::thread thread_;
  GMainContext *ctx_ = nullptr;
  GMainLoop *loop_ = nullptr;
  GDBusNodeInfo *node_ = nullptr;
  GDBusConnection *conn_ = nullptr;
  std::vector<guint> registrations_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
  bool closed_ = false;
};

// ------------------------------------------------------------ QMP client

class QmpClient {
 public:
  ~QmpClient() {
    if (fd_ >= 0)
      close(fd_);
  }

  bool connect_to(const std::string &path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    g_strlcpy(addr.sun_path, path.c_str(), sizeof addr.sun_path);
    return fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
  }

  // One "\r\n"-terminated line, or "" after timeout_ms.
  std::string read_line(int timeout_ms) {
    for (;;) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return line;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0)
        return "";
      char tmp[1024];
      ssize_t n = read(fd_, tmp, sizeof tmp);
      if (n <= 0)
        return "";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  // Sends a command (with fd as SCM_RIGHTS if >= 0) and returns the first
  // line that is not an event.
  std::string command(const std::string &json, int fd = -1) {
    std::string line = json + "\n";
    iovec iov{const_cast<char *>(line.data()), line.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    union {
      cmsghdr align;
      char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    if (fd >= 0) {
      msg.msg_control = control.space;
      msg.msg_controllen = sizeof control.space;
      cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    if (sendmsg(fd_, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
      return "";
    for (;;) {
      std::string reply = read_line(5000);
      if (reply.find("\"event\"") == std::string::npos)
        return reply;
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// ------------------------------------------------------------ D-Bus helpers

GVariant *get_property(GDBusConnection *c, const char *dest, const char *path, const char *iface,
                       const char *prop) {
  g_autoptr(GError) err = nullptr;
  GVariant *reply = g_dbus_connection_call_sync(
      c, dest, path, "org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", iface, prop),
      G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, &err);
  if (!reply) {
    std::fprintf(stderr, "Get %s.%s: %s\n", iface, prop, err->message);
    return nullptr;
  }
  GVariant *value;
  g_variant_get(reply, "(v)", &value);
  g_variant_unref(reply);
  return value;
}

std::string get_string_property(GDBusConnection *c, const char *dest, const char *path,
                                const char *iface, const char *prop) {
  g_autoptr(GVariant) v = get_property(c, dest, path, iface, prop);
  return v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) ? g_variant_get_string(v, nullptr)
                                                             : "";
}

// Calls a method on the fake's objects; returns "" or the error text.
std::string call(GDBusConnection *c, const char *dest, const char *path, const char *iface,
                 const char *method, GVariant *params) {
  g_autoptr(GError) err = nullptr;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
      c, dest, path, iface, method, params, nullptr, G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, &err);
  return reply ? "" : err->message;
}

// ------------------------------------------------------------ p2p test

// Connects to the fake's QMP socket, hands it one end of a socketpair with
// getfd + add_client and returns the display connection on the other end.
// With check_errors, also checks QEMU's answers to a few wrong commands.
GDBusConnection *open_p2p(QmpClient *qmp, const std::string &path, bool check_errors) {
  CHECK(qmp->connect_to(path));
  CHECK_CONTAINS(qmp->read_line(2000), "{\"QMP\": ");
  if (check_errors)
    CHECK_CONTAINS(qmp->command("{\"execute\": \"query-status\"}"), "CommandNotFound");
  CHECK_CONTAINS(qmp->command("{\"execute\": \"qmp_capabilities\"}"), "{\"return\": {}}");
  if (check_errors) {
    CHECK_CONTAINS(qmp->command("{\"execute\": \"query-foo\", \"id\": 7}"),
                   "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
                   "query-foo has not been found\"}, \"id\": 7}");
    CHECK_CONTAINS(
        qmp->command("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"display\"}}"),
        "No file descriptor supplied via SCM_RIGHTS");
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return nullptr;
  FdCloser theirs{pair[1]};
  CHECK_CONTAINS(
      qmp->command("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"display\"}}", pair[1]),
      "{\"return\": {}}");
  CHECK_CONTAINS(qmp->command("{\"execute\": \"add_client\", \"arguments\": {\"protocol\": "
                              "\"@dbus-display\", \"fdname\": \"display\"}}"),
                 "{\"return\": {}}");
  g_autoptr(GError) err = nullptr;
  g_autoptr(GSocket) sock = g_socket_new_from_fd(pair[0], &err);
  if (!sock) {
    close(pair[0]);
    return nullptr;
  }
  g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(sock);
  GDBusConnection *display = g_dbus_connection_new_sync(
      G_IO_STREAM(stream), nullptr, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, nullptr, nullptr,
      &err);
  if (!display)
    std::fprintf(stderr, "p2p handshake: %s\n", err->message);
  return display;
}

void test_qmp_details(const std::string &dir) {
  std::string path = dir + "/qmp-details.sock";
  FakeQemuOptions opts;
  opts.qmp_fail_add_client = "scripted add_client failure";
  opts.qmp_send_event_before_reply = false;
  std::string error;
  auto fake = FakeQemu::start_p2p(path, opts, &error);
  CHECK(fake);
  if (!fake)
    return;

  auto first = std::make_unique<QmpClient>();
  QmpClient second;
  CHECK(first->connect_to(path));
  CHECK_CONTAINS(first->read_line(2000), "{\"QMP\": {\"version\"");
  // One QMP client at a time: the second waits for the first to leave.
  CHECK(second.connect_to(path));
  CHECK(second.read_line(200).empty());
  CHECK_CONTAINS(first->command("{'execute': 'qmp_capabilities'}"), "{\"return\": {}}");
  int pair[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  FdCloser a{pair[0]}, b{pair[1]};
  CHECK_CONTAINS(
      first->command("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"9x\"}}", pair[1]),
      "a name not starting with a digit");
  CHECK_CONTAINS(
      first->command("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"d\"}}", pair[1]),
      "{\"return\": {}}");
  CHECK_CONTAINS(
      first->command("{\"execute\": \"add_client\", \"arguments\": "
                     "{\"protocol\": \"@dbus-display\", \"fdname\": \"d\"}, \"id\": \"x1\"}"),
      "{\"error\": {\"class\": \"GenericError\", \"desc\": \"scripted add_client "
      "failure\"}, \"id\": \"x1\"}");
  // The failed add_client used the named fd up, as in QEMU.
  CHECK_CONTAINS(first->command("{\"execute\": \"add_client\", \"arguments\": "
                                "{\"protocol\": \"@dbus-display\", \"fdname\": \"d\"}}"),
                 "File descriptor named 'd' has not been found");
  CHECK_CONTAINS(first->command("{\"execute\": \"getfd\"}"), "Parameter 'fdname' is missing");
  CHECK_CONTAINS(first->command("not json"), "GenericError");
  first.reset();
  CHECK_CONTAINS(second.read_line(2000), "{\"QMP\"");
  CHECK_CONTAINS(second.command("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"d\"}}"),
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
}

// Registers a listener from the calling thread and returns the client end of
// the listener socket without doing anything with it.
int register_raw(GDBusConnection *display, uint32_t console) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return -1;
  FdCloser theirs{pair[1]};
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
  int handle = g_unix_fd_list_append(fds, pair[1], nullptr);
  std::string path = "/org/qemu/Display1/Console_" + std::to_string(console);
  g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_sync(
      display, nullptr, path.c_str(), "org.qemu.Display1.Console", "RegisterListener",
      g_variant_new("(h)", handle), nullptr, G_DBUS_CALL_FLAGS_NONE, 5000, fds, nullptr, nullptr,
      nullptr);
  CHECK(reply);
  return pair[0];
}

// Clients that leave QEMU blocked: no handshake at all, or no GetAll answer.
void test_stalled_clients(const std::string &dir) {
  std::string path = dir + "/qmp-stall.sock";
  FakeQemuOptions opts;
  opts.listener_getall_timeout_ms = 300;
  std::string error;
  auto fake = FakeQemu::start_p2p(path, opts, &error);
  CHECK(fake);
  if (!fake)
    return;
  QmpClient qmp;
  g_autoptr(GDBusConnection) display = open_p2p(&qmp, path, false);
  CHECK(display);
  if (!display)
    return;

  // Handshake done but the listener is never serviced: the fake, like QEMU,
  // blocks on GetAll until its timeout, then carries on without Interfaces.
  int fd = register_raw(display, 0);
  g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, nullptr);
  CHECK(sock);
  if (!sock)
    return;
  g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(sock);
  g_autoptr(GDBusConnection) mute = g_dbus_connection_new_sync(
      G_IO_STREAM(stream), nullptr,
      static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                        G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING),
      nullptr, nullptr, nullptr);
  CHECK(mute);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(fake->wait_for_listener(5000));
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited > std::chrono::milliseconds(200));
  CHECK(fake->listener_interfaces().empty());
  // Nobody answers on the listener: calls time out.
  fake->set_call_timeout(200);
  CHECK(!fake->disable(&error));
  CHECK_CONTAINS(error, "Timeout");

  // No handshake at all: the fake is stuck in it, yet stops promptly.
  FdCloser silent{register_raw(display, 0)};
  g_usleep(100 * 1000);
  t0 = std::chrono::steady_clock::now();
  fake.reset();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  if (mute)
    g_dbus_connection_close_sync(mute, nullptr, nullptr);
}

// QEMU's window between the p2p handshake and the export of its objects.
void test_export_delay(const std::string &dir) {
  std::string path = dir + "/qmp-delay.sock";
  FakeQemuOptions opts;
  opts.p2p_export_delay_ms = 300;
  std::string error;
  auto fake = FakeQemu::start_p2p(path, opts, &error);
  CHECK(fake);
  if (!fake)
    return;
  QmpClient qmp;
  g_autoptr(GDBusConnection) display = open_p2p(&qmp, path, false);
  CHECK(display);
  if (!display)
    return;
  CHECK_CONTAINS(call(display, nullptr, "/org/qemu/Display1/VM", "org.freedesktop.DBus.Properties",
                      "GetAll", g_variant_new("(s)", "org.qemu.Display1.VM")),
                 "Object does not exist");
  CHECK(wait_until(
      [&] {
        return call(display, nullptr, "/org/qemu/Display1/VM", "org.freedesktop.DBus.Properties",
                    "GetAll", g_variant_new("(s)", "org.qemu.Display1.VM"))
            .empty();
      },
      5000));
}

void test_p2p(const std::string &dir) {
  std::string path = dir + "/qmp.sock";
  FakeQemuOptions opts;
  opts.vm_name = "selftest-vm";
  opts.console_ids = {0, 1};
  std::string error;
  auto fake = FakeQemu::start_p2p(path, opts, &error);
  CHECK(fake);
  if (!fake) {
    std::fprintf(stderr, "start_p2p: %s\n", error.c_str());
    return;
  }

  // ---- QMP: greeting, negotiation, getfd with SCM_RIGHTS, add_client
  QmpClient qmp;
  g_autoptr(GDBusConnection) display = open_p2p(&qmp, path, true);
  CHECK(display);
  if (!display)
    return;
  std::string log = fake->qmp_log();
  CHECK_CONTAINS(log, "qmp_capabilities\n");
  CHECK_CONTAINS(log, "getfd {\"fdname\":\"display\"}\n");
  CHECK_CONTAINS(log, "add_client {\"protocol\":\"@dbus-display\",\"fdname\":\"display\"}\n");

  // ---- objects and properties
  CHECK(get_string_property(display, nullptr, "/org/qemu/Display1/VM", "org.qemu.Display1.VM",
                            "Name") == "selftest-vm");
  {
    g_autoptr(GVariant) objects = g_dbus_connection_call_sync(
        display, nullptr, "/org/qemu/Display1", "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects", nullptr, G_VARIANT_TYPE("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE,
        5000, nullptr, nullptr);
    CHECK(objects);
    if (objects) {
      g_autoptr(GVariant) dict = g_variant_get_child_value(objects, 0);
      CHECK(g_variant_n_children(dict) == 3);
      g_autoptr(GVariant) console1 =
          g_variant_lookup_value(dict, "/org/qemu/Display1/Console_1", G_VARIANT_TYPE("a{sa{sv}}"));
      CHECK(console1);
    }
  }

  // ---- input
  const char *c0 = "/org/qemu/Display1/Console_0";
  CHECK(call(display, nullptr, c0, "org.qemu.Display1.Keyboard", "Press", g_variant_new("(u)", 30u))
            .empty());
  CHECK(
      call(display, nullptr, c0, "org.qemu.Display1.Keyboard", "Release", g_variant_new("(u)", 30u))
          .empty());
  CHECK(call(display, nullptr, c0, "org.qemu.Display1.Mouse", "RelMotion",
             g_variant_new("(ii)", -3, 4))
            .empty());
  CHECK_CONTAINS(call(display, nullptr, c0, "org.qemu.Display1.Mouse", "SetAbsPosition",
                      g_variant_new("(uu)", 10u, 20u)),
                 "Mouse is not absolute");
  fake->set_mouse_absolute(true);
  {
    g_autoptr(GVariant) abs =
        get_property(display, nullptr, c0, "org.qemu.Display1.Mouse", "IsAbsolute");
    CHECK(abs && g_variant_get_boolean(abs));
  }
  CHECK(call(display, nullptr, c0, "org.qemu.Display1.Mouse", "SetAbsPosition",
             g_variant_new("(uu)", 10u, 20u))
            .empty());
  CHECK_CONTAINS(call(display, nullptr, c0, "org.qemu.Display1.Mouse", "SetAbsPosition",
                      g_variant_new("(uu)", 640u, 0u)),
                 "Invalid mouse position");
  CHECK_CONTAINS(call(display, nullptr, c0, "org.qemu.Display1.Mouse", "RelMotion",
                      g_variant_new("(ii)", 1, 1)),
                 "org.qemu.Display1.Error.Invalid");
  CHECK_CONTAINS(call(display, nullptr, c0, "org.qemu.Display1.Console", "SetUIInfo",
                      g_variant_new("(qqiiuu)", 300, 200, 0, 0, 1024u, 768u)),
                 "org.qemu.Display1.Error.Unsupported");
  CHECK(fake->input_log() == (std::vector<std::string>{"kbd.press 30", "kbd.release 30",
                                                       "mouse.rel -3 4", "mouse.abs 10 20"}));

  // ---- listener
  CHECK(!fake->wait_for_listener(0));
  std::string not_registered;
  CHECK(!fake->disable(&not_registered));
  CHECK_CONTAINS(not_registered, "no listener");
  auto listener = std::make_unique<ClientListener>(
      display, nullptr, 1, std::vector<std::string>{"org.qemu.Display1.Listener.Unix.Map"});
  error = listener->start();
  CHECK(error.empty());
  if (!error.empty()) {
    std::fprintf(stderr, "listener: %s\n", error.c_str());
    return;
  }
  CHECK(fake->wait_for_listener(5000));
  CHECK(fake->listener_console() == 1);
  CHECK(fake->listener_interfaces() ==
        std::vector<std::string>{"org.qemu.Display1.Listener.Unix.Map"});

  CHECK(fake->scanout(4, 2, 16, kX8R8G8B8, std::vector<uint8_t>(32, 0xab), &error));
  CHECK(listener->last_call() == std::string("Scanout 4 2 16 ") + kPixmanX8R8G8B8 + " 32");
  {
    g_autoptr(GVariant) w = get_property(display, nullptr, "/org/qemu/Display1/Console_1",
                                         "org.qemu.Display1.Console", "Width");
    CHECK(w && g_variant_get_uint32(w) == 4);
  }
  CHECK(fake->update(1, 0, 2, 1, 8, kX8R8G8B8, std::vector<uint8_t>(8, 1)));
  CHECK(listener->last_call() == std::string("Update 1 0 2 1 8 ") + kPixmanX8R8G8B8 + " 8");
  CHECK(!fake->scanout(4, 2, 16, 0xdeadbeef, std::vector<uint8_t>(32), &error));
  CHECK_CONTAINS(error, "org.example.Error.BadFormat");
  CHECK_CONTAINS(error, "unknown pixman format 0xdeadbeef");

  int memfd = memfd_create("fake-qemu-selftest", MFD_CLOEXEC);
  CHECK(memfd >= 0);
  FdCloser memfd_closer{memfd};
  CHECK(ftruncate(memfd, 4096) == 0);
  const unsigned char pattern[4] = {0x11, 0x22, 0x33, 0x44};
  CHECK(pwrite(memfd, pattern, sizeof pattern, 64) == 4);
  CHECK(fake->scanout_map(memfd, 64, 4, 2, 16, kX8R8G8B8, &error));
  CHECK(listener->last_call() ==
        std::string("ScanoutMap 64 4 2 16 ") + kPixmanX8R8G8B8 + " 11223344");
  CHECK(fake->update_map(0, 1, 4, 1));
  CHECK(listener->last_call() == "UpdateMap 0 1 4 1");
  CHECK(fake->disable());
  CHECK(listener->last_call() == "Disable");
  CHECK(fake->mouse_set(5, 6, 1));
  CHECK(listener->last_call() == "MouseSet 5 6 1");
  CHECK(fake->cursor_define(2, 2, 1, 1, std::vector<uint8_t>(16, 0xff)));
  CHECK(listener->last_call() == "CursorDefine 2 2 1 1 16");

  // ---- malformed calls
  CHECK(!fake->call_raw("org.qemu.Display1.Listener", "Scanout", g_variant_new("(uu)", 1u, 2u),
                        nullptr, &error));
  CHECK_CONTAINS(error, "org.freedesktop.DBus.Error.InvalidArgs");
  CHECK(!fake->call_raw("org.qemu.Display1.Listener", "NoSuchMethod", nullptr, nullptr, &error));
  CHECK_CONTAINS(error, "org.freedesktop.DBus.Error.UnknownMethod");
  CHECK(!fake->call_raw("org.qemu.Display1.Listener", "Disable", g_variant_new_uint32(1), nullptr,
                        &error));
  CHECK_CONTAINS(error, "must be a tuple");

  // ---- QEMU's fire-and-forget style
  CHECK(fake->post_raw("org.qemu.Display1.Listener", "Update",
                       g_variant_new("(iiiiuu@ay)", 0, 0, 1, 1, 4u, kX8R8G8B8,
                                     g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, pattern, 4, 1)),
                       nullptr, &error));
  CHECK(listener->wait_calls(8, 5000));
  CHECK(listener->last_call() == std::string("Update 0 0 1 1 4 ") + kPixmanX8R8G8B8 + " 4");

  // ---- QEMU dropping the listener; a new one can register
  fake->drop_listener();
  CHECK(listener->wait_closed(5000));
  CHECK(fake->listener_console() == -1);
  CHECK(!fake->disable());
  listener = std::make_unique<ClientListener>(display, nullptr, 0, std::vector<std::string>{});
  CHECK(listener->start().empty());
  CHECK(fake->wait_for_listener(5000));
  CHECK(fake->listener_console() == 0);
  CHECK(fake->listener_interfaces().empty());
  CHECK(fake->disable());

  // ---- shutting the fake down closes both connections
  fake.reset();
  CHECK(listener->wait_closed(5000));
  CHECK(wait_until([&] { return g_dbus_connection_is_closed(display); }, 5000));
  CHECK(access(path.c_str(), F_OK) != 0);
}

// ------------------------------------------------------------ bus test

class DbusDaemon {
 public:
  ~DbusDaemon() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      g_spawn_close_pid(pid_);
    }
  }

  // Returns the bus address, or "" on failure.
  std::string start() {
    const gchar *argv[] = {
        "dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:tmpdir=/tmp",
        nullptr};
    gint out = -1;
    g_autoptr(GError) err = nullptr;
    if (!g_spawn_async_with_pipes(
            nullptr, const_cast<gchar **>(argv), nullptr,
            static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD), nullptr,
            nullptr, &pid_, nullptr, &out, nullptr, &err)) {
      std::fprintf(stderr, "spawn dbus-daemon: %s\n", err->message);
      return "";
    }
    FdCloser closer{out};
    std::string address;
    char c;
    pollfd p{out, POLLIN, 0};
    while (poll(&p, 1, 5000) > 0 && read(out, &c, 1) == 1 && c != '\n')
      address.push_back(c);
    return address;
  }

 private:
  GPid pid_ = 0;
};

std::vector<std::string> queued_owners(GDBusConnection *bus) {
  std::vector<std::string> owners;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "ListQueuedOwners", g_variant_new("(s)", "org.qemu"), G_VARIANT_TYPE("(as)"),
      G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, nullptr);
  if (reply) {
    g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
    g_autofree const gchar **names = g_variant_get_strv(list, nullptr);
    for (const gchar **n = names; *n; ++n)
      owners.emplace_back(*n);
  }
  return owners;
}

bool test_bus() {
  g_autofree gchar *program = g_find_program_in_path("dbus-daemon");
  if (!program)
    return false;
  DbusDaemon daemon;
  std::string address = daemon.start();
  CHECK(!address.empty());
  if (address.empty())
    return true;

  FakeQemuOptions one, two;
  one.vm_name = "vm-one";
  two.vm_name = "vm-two";
  std::string error;
  auto fake1 = FakeQemu::start_bus(address, one, &error);
  CHECK(fake1);
  auto fake2 = FakeQemu::start_bus(address, two, &error);
  CHECK(fake2);
  if (!fake1 || !fake2) {
    std::fprintf(stderr, "start_bus: %s\n", error.c_str());
    return true;
  }

  g_autoptr(GError) err = nullptr;
  g_autoptr(GDBusConnection) bus = g_dbus_connection_new_for_address_sync(
      address.c_str(),
      static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
      nullptr, nullptr, &err);
  CHECK(bus);
  if (!bus)
    return true;

  std::vector<std::string> owners = queued_owners(bus);
  CHECK(owners.size() == 2);
  std::string unique_two;
  std::set<std::string> names;
  for (const auto &owner : owners) {
    std::string name = get_string_property(bus, owner.c_str(), "/org/qemu/Display1/VM",
                                           "org.qemu.Display1.VM", "Name");
    names.insert(name);
    if (name == "vm-two")
      unique_two = owner;
  }
  CHECK(names == (std::set<std::string>{"vm-one", "vm-two"}));
  // The primary owner answers on the well-known name.
  CHECK(get_string_property(bus, "org.qemu", "/org/qemu/Display1/VM", "org.qemu.Display1.VM",
                            "Name") == "vm-one");

  // A listener registered through the bus on the queued VM.
  auto listener =
      std::make_unique<ClientListener>(bus, unique_two.c_str(), 0, std::vector<std::string>{});
  CHECK(listener->start().empty());
  CHECK(fake2->wait_for_listener(5000));
  CHECK(!fake1->wait_for_listener(0));
  CHECK(fake2->scanout(2, 2, 8, kX8R8G8B8, std::vector<uint8_t>(16, 7)));
  CHECK(listener->last_call() == std::string("Scanout 2 2 8 ") + kPixmanX8R8G8B8 + " 16");
  {
    // QEMU 7.2 allows one listener per bus client.
    int pair[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    FdCloser a{pair[0]}, b{pair[1]};
    g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
    int handle = g_unix_fd_list_append(fds, pair[1], nullptr);
    g_autoptr(GError) again_err = nullptr;
    g_autoptr(GVariant) again = g_dbus_connection_call_with_unix_fd_list_sync(
        bus, unique_two.c_str(), "/org/qemu/Display1/Console_0", "org.qemu.Display1.Console",
        "RegisterListener", g_variant_new("(h)", handle), nullptr, G_DBUS_CALL_FLAGS_NONE, 5000,
        fds, nullptr, nullptr, &again_err);
    CHECK(!again);
    if (again_err)
      CHECK_CONTAINS(again_err->message, "is already registered!");
  }

  // The next queued fake takes over the name when the owner goes.
  fake1.reset();
  CHECK(wait_until(
      [&] {
        return get_string_property(bus, "org.qemu", "/org/qemu/Display1/VM", "org.qemu.Display1.VM",
                                   "Name") == "vm-two";
      },
      5000));
  CHECK(queued_owners(bus) == std::vector<std::string>{unique_two});

  fake2.reset();
  CHECK(listener->wait_closed(5000));
  listener.reset();
  g_dbus_connection_close_sync(bus, nullptr, nullptr);
  return true;
}

}  // namespace

int main() {
  g_autofree gchar *dir = g_dir_make_tmp("fake-qemu-XXXXXX", nullptr);
  if (!dir) {
    std::fprintf(stderr, "cannot make a temporary directory\n");
    return 1;
  }
  test_qmp_details(dir);
  test_export_delay(dir);
  test_stalled_clients(dir);
  test_p2p(dir);
  bool ran_bus = test_bus();
  rmdir(dir);
  if (g_failures) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  if (!ran_bus) {
    std::fprintf(stderr, "dbus-daemon not found: bus mode skipped\n");
    return 77;
  }
  std::printf("fake-qemu selftest: all checks passed\n");
  return 0;
}
