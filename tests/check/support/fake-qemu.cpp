/* fake-qemu: QEMU's side of the D-Bus display, scripted for tests.
 *
 * Behaviour follows QEMU 7.2-10.x (ui/dbus.c, ui/dbus-console.c,
 * ui/dbus-listener.c, monitor QMP); see fake-qemu.h for the interface.
 * Layout of this file: RAII helpers, a minimal JSON reader/writer for QMP,
 * the introspection data, then FakeQemu::Impl (thread, QMP server, exported
 * objects, listener handling) and the public forwarding methods.
 */
#include "fake-qemu.h"

#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace fakeqemu {
namespace {

constexpr const char *kVmPath = "/org/qemu/Display1/VM";
constexpr const char *kManagerPath = "/org/qemu/Display1";
constexpr const char *kListenerPath = "/org/qemu/Display1/Listener";

constexpr const char *kVmIface = "org.qemu.Display1.VM";
constexpr const char *kConsoleIface = "org.qemu.Display1.Console";
constexpr const char *kKeyboardIface = "org.qemu.Display1.Keyboard";
constexpr const char *kMouseIface = "org.qemu.Display1.Mouse";
constexpr const char *kManagerIface = "org.freedesktop.DBus.ObjectManager";
constexpr const char *kPropertiesIface = "org.freedesktop.DBus.Properties";
constexpr const char *kListenerIface = "org.qemu.Display1.Listener";
constexpr const char *kListenerMapIface = "org.qemu.Display1.Listener.Unix.Map";
constexpr const char *kListenerDmabuf2Iface = "org.qemu.Display1.Listener.Unix.ScanoutDMABUF2";

constexpr const char *kErrorFailed = "org.qemu.Display1.Error.Failed";
constexpr const char *kErrorInvalid = "org.qemu.Display1.Error.Invalid";
constexpr const char *kErrorUnsupported = "org.qemu.Display1.Error.Unsupported";

constexpr int kDefaultCallTimeoutMs = 5000;
constexpr size_t kMaxQmpFds = 16;
constexpr size_t kMaxQmpInput = 1 << 20;

// QEMU's side of the display interfaces, names and signatures as in QEMU's
// ui/dbus-display1.xml (the 7.2 set of server objects), plus the standard
// ObjectManager that QEMU's GDBusObjectManagerServer provides.
constexpr const char *kIntrospectionXml = R"XML(
<node>
  <interface name="org.qemu.Display1.VM">
    <property name="Name" type="s" access="read"/>
    <property name="UUID" type="s" access="read"/>
    <property name="ConsoleIDs" type="au" access="read"/>
  </interface>
  <interface name="org.qemu.Display1.Console">
    <method name="RegisterListener">
      <arg type="h" name="listener" direction="in"/>
    </method>
    <method name="SetUIInfo">
      <arg name="width_mm" type="q" direction="in"/>
      <arg name="height_mm" type="q" direction="in"/>
      <arg name="xoff" type="i" direction="in"/>
      <arg name="yoff" type="i" direction="in"/>
      <arg name="width" type="u" direction="in"/>
      <arg name="height" type="u" direction="in"/>
    </method>
    <property name="Label" type="s" access="read"/>
    <property name="Head" type="u" access="read"/>
    <property name="Type" type="s" access="read"/>
    <property name="Width" type="u" access="read"/>
    <property name="Height" type="u" access="read"/>
    <property name="DeviceAddress" type="s" access="read"/>
  </interface>
  <interface name="org.qemu.Display1.Keyboard">
    <method name="Press">
      <arg type="u" name="keycode" direction="in"/>
    </method>
    <method name="Release">
      <arg type="u" name="keycode" direction="in"/>
    </method>
    <property name="Modifiers" type="u" access="read"/>
  </interface>
  <interface name="org.qemu.Display1.Mouse">
    <method name="Press">
      <arg type="u" name="button" direction="in"/>
    </method>
    <method name="Release">
      <arg type="u" name="button" direction="in"/>
    </method>
    <method name="SetAbsPosition">
      <arg type="u" name="x" direction="in"/>
      <arg type="u" name="y" direction="in"/>
    </method>
    <method name="RelMotion">
      <arg type="i" name="dx" direction="in"/>
      <arg type="i" name="dy" direction="in"/>
    </method>
    <property name="IsAbsolute" type="b" access="read"/>
  </interface>
  <interface name="org.freedesktop.DBus.ObjectManager">
    <method name="GetManagedObjects">
      <arg type="a{oa{sa{sv}}}" name="objects" direction="out"/>
    </method>
    <signal name="InterfacesAdded">
      <arg type="o" name="object_path"/>
      <arg type="a{sa{sv}}" name="interfaces_and_properties"/>
    </signal>
    <signal name="InterfacesRemoved">
      <arg type="o" name="object_path"/>
      <arg type="as" name="interfaces"/>
    </signal>
  </interface>
</node>
)XML";

// ---------------------------------------------------------------- RAII

struct GObjectUnref {
  void operator()(gpointer p) const { g_object_unref(p); }
};
template <typename T>
using GRef = std::unique_ptr<T, GObjectUnref>;

template <typename T>
GRef<T> new_ref(T *p) {
  return GRef<T>(p ? static_cast<T *>(g_object_ref(p)) : nullptr);
}

struct MainContextUnref {
  void operator()(GMainContext *c) const { g_main_context_unref(c); }
};
struct MainLoopUnref {
  void operator()(GMainLoop *l) const { g_main_loop_unref(l); }
};
struct NodeInfoUnref {
  void operator()(GDBusNodeInfo *n) const { g_dbus_node_info_unref(n); }
};
struct SourceDestroy {
  void operator()(GSource *s) const {
    g_source_destroy(s);
    g_source_unref(s);
  }
};
using SourcePtr = std::unique_ptr<GSource, SourceDestroy>;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd &&o) noexcept : fd_(o.release()) {}
  UniqueFd &operator=(UniqueFd &&o) noexcept {
    reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void set_error(std::string *out, const std::string &message) {
  if (out)
    *out = message;
}

// Shut the socket down before closing: close_sync would otherwise wait for
// queued writes that a stalled peer never reads, and this way the peer sees
// EOF at once.
void close_connection_now(GDBusConnection *conn) {
  GIOStream *stream = g_dbus_connection_get_stream(conn);
  if (G_IS_SOCKET_CONNECTION(stream)) {
    GSocket *sock = g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream));
    g_socket_shutdown(sock, TRUE, TRUE, nullptr);
  }
  g_dbus_connection_close_sync(conn, nullptr, nullptr);
}

// ---------------------------------------------------------------- JSON (QMP)

// Just enough JSON for QMP requests: QEMU's parser also takes single-quoted
// strings, so this one does too.
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  std::string text;  // string value, or a number as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;  // in received order

  const Json *get(const char *key) const {
    for (const auto &m : members)
      if (m.first == key)
        return &m.second;
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string &s) : s_(s) {}

  bool parse(Json *out) {
    skip_ws();
    if (!value(out, 0))
      return false;
    skip_ws();
    return pos_ == s_.size();
  }

 private:
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n'))
      ++pos_;
  }

  bool literal(const char *word) {
    size_t n = strlen(word);
    if (s_.compare(pos_, n, word) != 0)
      return false;
    pos_ += n;
    return true;
  }

  bool value(Json *out, int depth) {
    if (depth > 64 || pos_ >= s_.size())
      return false;
    char c = s_[pos_];
    if (c == '{')
      return object(out, depth);
    if (c == '[')
      return array(out, depth);
    if (c == '"' || c == '\'') {
      out->type = Json::Type::String;
      return string(&out->text);
    }
    if (literal("true")) {
      out->type = Json::Type::Bool;
      out->boolean = true;
      return true;
    }
    if (literal("false")) {
      out->type = Json::Type::Bool;
      return true;
    }
    if (literal("null")) {
      out->type = Json::Type::Null;
      return true;
    }
    return number(out);
  }

  bool number(Json *out) {
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-')
      ++pos_;
    size_t digits = pos_;
    while (pos_ < s_.size() &&
           (g_ascii_isdigit(s_[pos_]) || s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E' ||
            ((s_[pos_] == '+' || s_[pos_] == '-') && pos_ > digits &&
             (s_[pos_ - 1] == 'e' || s_[pos_ - 1] == 'E'))))
      ++pos_;
    if (pos_ == digits || !g_ascii_isdigit(s_[digits]))
      return false;
    out->type = Json::Type::Number;
    out->text = s_.substr(start, pos_ - start);
    return true;
  }

  bool hex4(gunichar *out) {
    if (pos_ + 4 > s_.size())
      return false;
    gunichar v = 0;
    for (int i = 0; i < 4; i++) {
      int d = g_ascii_xdigit_value(s_[pos_++]);
      if (d < 0)
        return false;
      v = v * 16 + d;
    }
    *out = v;
    return true;
  }

  bool string(std::string *out) {
    char quote = s_[pos_++];
    out->clear();
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == quote)
        return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size())
        return false;
      char e = s_[pos_++];
      switch (e) {
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          gunichar u;
          if (!hex4(&u))
            return false;
          if (u >= 0xd800 && u < 0xdc00 && s_.compare(pos_, 2, "\\u") == 0) {
            gunichar low;
            pos_ += 2;
            if (!hex4(&low) || low < 0xdc00 || low > 0xdfff)
              return false;
            u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
          }
          char utf8[8];
          out->append(utf8, g_unichar_to_utf8(u, utf8));
          break;
        }
        default:
          out->push_back(e);
          break;  // \" \\ \/ \'
      }
    }
    return false;
  }

  bool array(Json *out, int depth) {
    out->type = Json::Type::Array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      Json item;
      skip_ws();
      if (!value(&item, depth + 1))
        return false;
      out->items.push_back(std::move(item));
      skip_ws();
      if (pos_ >= s_.size())
        return false;
      char c = s_[pos_++];
      if (c == ']')
        return true;
      if (c != ',')
        return false;
    }
  }

  bool object(Json *out, int depth) {
    out->type = Json::Type::Object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        return false;
      std::string key;
      if (!string(&key))
        return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_++] != ':')
        return false;
      skip_ws();
      Json v;
      if (!value(&v, depth + 1))
        return false;
      out->members.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ >= s_.size())
        return false;
      char c = s_[pos_++];
      if (c == '}')
        return true;
      if (c != ',')
        return false;
    }
  }

  const std::string &s_;
  size_t pos_ = 0;
};

std::string json_quote(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      g_snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

// qemu_style: QEMU's own spacing ("a": 1, "b": 2); otherwise compact.
std::string json_write(const Json &v, bool qemu_style) {
  const char *colon = qemu_style ? ": " : ":";
  const char *comma = qemu_style ? ", " : ",";
  switch (v.type) {
    case Json::Type::Null:
      return "null";
    case Json::Type::Bool:
      return v.boolean ? "true" : "false";
    case Json::Type::Number:
      return v.text;
    case Json::Type::String:
      return json_quote(v.text);
    case Json::Type::Array: {
      std::string out = "[";
      for (size_t i = 0; i < v.items.size(); i++)
        out += (i ? comma : "") + json_write(v.items[i], qemu_style);
      return out + "]";
    }
    case Json::Type::Object: {
      std::string out = "{";
      for (size_t i = 0; i < v.members.size(); i++)
        out += (i ? comma : "") + json_quote(v.members[i].first) + colon +
               json_write(v.members[i].second, qemu_style);
      return out + "}";
    }
  }
  return "null";
}

// Cuts the next top-level JSON value off the front of a QMP input stream.
// Returns false while it is incomplete. Input that does not start a JSON
// object or array comes back whole up to the next newline as *garbage.
bool next_json_text(std::string *buf, std::string *text, bool *garbage) {
  size_t start = buf->find_first_not_of(" \t\r\n");
  if (start == std::string::npos) {
    buf->clear();
    return false;
  }
  *garbage = (*buf)[start] != '{' && (*buf)[start] != '[';
  if (*garbage) {
    size_t nl = buf->find('\n', start);
    size_t end = nl == std::string::npos ? buf->size() : nl + 1;
    *text = buf->substr(start, end - start);
    buf->erase(0, end);
    return true;
  }
  int depth = 0;
  char quote = 0;
  bool escaped = false;
  for (size_t i = start; i < buf->size(); i++) {
    char c = (*buf)[i];
    if (quote) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '"' || c == '\'')
      quote = c;
    else if (c == '{' || c == '[')
      depth++;
    else if ((c == '}' || c == ']') && --depth == 0) {
      *text = buf->substr(start, i + 1 - start);
      buf->erase(0, i + 1);
      return true;
    }
  }
  return false;
}

bool write_all(int fd, const std::string &data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- Impl

struct FakeQemu::Impl {
  // User data of one registered D-Bus object.
  struct ObjectCtx {
    enum class Kind { Vm, Console, Manager };
    Impl *impl;
    Kind kind;
    uint32_t console;
  };

  // The one QMP connection being served.
  struct QmpClient {
    UniqueFd fd;
    SourcePtr watch;
    std::string input;
    // fds of the last read that carried any: like QEMU's socket chardev,
    // a new batch replaces (closes) an unclaimed one.
    std::vector<UniqueFd> msgfds;
    bool negotiated = false;
  };

  explicit Impl(const FakeQemuOptions &options) : opts(options) {
    vm_ctx = {this, ObjectCtx::Kind::Vm, 0};
    manager_ctx = {this, ObjectCtx::Kind::Manager, 0};
    for (uint32_t id : opts.console_ids) {
      console_ctxs.push_back({this, ObjectCtx::Kind::Console, id});
      console_size[id] = {opts.console_width, opts.console_height};
    }
    mouse_absolute = opts.mouse_absolute;
  }

  // ---- configuration (read-only once started)
  const FakeQemuOptions opts;
  bool p2p = false;
  std::string qmp_path;
  std::string bus_address;

  // ---- thread and loop
  std::unique_ptr<GMainContext, MainContextUnref> ctx{g_main_context_new()};
  std::unique_ptr<GMainLoop, MainLoopUnref> loop{g_main_loop_new(ctx.get(), FALSE)};
  GRef<GCancellable> cancel{g_cancellable_new()};
  std::thread thread;

  // ---- owned by the fake's thread
  std::unique_ptr<GDBusNodeInfo, NodeInfoUnref> node;
  ObjectCtx vm_ctx{}, manager_ctx{};
  std::vector<ObjectCtx> console_ctxs;  // never resized after construction
  std::vector<guint> registrations;     // on server_conn
  gulong server_closed_handler = 0;
  UniqueFd listen_fd;
  SourcePtr accept_source;
  std::unique_ptr<QmpClient> qmp_client;
  std::map<std::string, UniqueFd> named_fds;  // getfd; outlive QMP connections
  GRef<GCancellable> add_client_cancel;       // pending p2p handshake
  GRef<GDBusConnection> export_pending;       // p2p_export_delay_ms window
  SourcePtr export_timer;
  int pending_async = 0;
  bool shutting_down = false;

  // ---- shared with the test thread, under mu
  mutable std::mutex mu;
  std::condition_variable cv;
  GRef<GDBusConnection> server_conn;  // p2p client connection, or the bus
  GRef<GDBusConnection> listener;
  gulong listener_closed_handler = 0;
  std::string listener_sender;
  int64_t listener_console_id = -1;
  std::vector<std::string> listener_ifaces;
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> console_size;
  bool mouse_absolute = false;
  std::vector<std::string> inputs;
  std::vector<std::string> ui_infos;
  std::string qmp_lines;
  std::atomic<int> call_timeout_ms{kDefaultCallTimeoutMs};

  // ================================================= lifecycle

  std::string start() {
    std::promise<std::string> setup;
    std::future<std::string> result = setup.get_future();
    try {
      thread = std::thread([this, &setup] { thread_main(&setup); });
    } catch (const std::exception &e) {
      return std::string("cannot start thread: ") + e.what();
    }
    return result.get();
  }

  void stop() {
    if (!thread.joinable())
      return;
    // Aborts a blocking handshake or GetAll so the loop gets to the quit.
    g_cancellable_cancel(cancel.get());
    g_main_context_invoke(
        ctx.get(),
        [](gpointer l) -> gboolean {
          g_main_loop_quit(static_cast<GMainLoop *>(l));
          return G_SOURCE_REMOVE;
        },
        loop.get());
    thread.join();
  }

  void thread_main(std::promise<std::string> *setup) {
    g_main_context_push_thread_default(ctx.get());
    std::string error;
    try {
      error = setup_common();
      if (error.empty())
        error = p2p ? setup_p2p() : setup_bus();
    } catch (const std::exception &e) {
      error = e.what();
    }
    bool ok = error.empty();
    setup->set_value(error);
    if (ok)
      g_main_loop_run(loop.get());
    teardown();
    g_main_context_pop_thread_default(ctx.get());
  }

  std::string setup_common() {
    g_autoptr(GError) err = nullptr;
    node.reset(g_dbus_node_info_new_for_xml(kIntrospectionXml, &err));
    if (!node)
      return std::string("introspection XML: ") + err->message;
    return "";
  }

  std::string setup_p2p() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (qmp_path.empty() || qmp_path.size() >= sizeof addr.sun_path)
      return "bad QMP socket path: '" + qmp_path + "'";
    memcpy(addr.sun_path, qmp_path.c_str(), qmp_path.size() + 1);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid())
      return std::string("socket: ") + g_strerror(errno);
    unlink(qmp_path.c_str());  // QEMU replaces a stale socket file too
    if (bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0)
      return "bind " + qmp_path + ": " + g_strerror(errno);
    if (listen(fd.get(), 8) < 0)
      return std::string("listen: ") + g_strerror(errno);
    listen_fd = std::move(fd);
    arm_accept();
    return "";
  }

  std::string setup_bus() {
    g_autoptr(GError) err = nullptr;
    g_autoptr(GDBusConnection) bus = g_dbus_connection_new_for_address_sync(
        bus_address.c_str(),
        static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
        nullptr, cancel.get(), &err);
    if (!bus)
      return "connect to " + bus_address + ": " + err->message;
    std::string error = install_server_conn(bus);
    if (!error.empty())
      return error;
    // Objects first, then the name, in QEMU's order. Flags 0 (= QEMU's
    // G_BUS_NAME_OWNER_FLAGS_NONE): no replacement, queue behind the owner.
    // Synchronous so that the fake is owner or queued when start returns.
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
        g_variant_new("(su)", "org.qemu", 0u), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
        kDefaultCallTimeoutMs, cancel.get(), &err);
    if (!reply)
      return std::string("RequestName org.qemu: ") + err->message;
    return "";
  }

  void teardown() {
    shutting_down = true;
    if (add_client_cancel)
      g_cancellable_cancel(add_client_cancel.get());
    accept_source.reset();
    qmp_client.reset();
    if (listen_fd.valid()) {
      listen_fd.reset();
      unlink(qmp_path.c_str());
    }
    named_fds.clear();
    cancel_delayed_export();
    drop_listener();
    drop_server_conn();
    // Let cancelled handshakes report back and GDBus' idle callbacks (which
    // hold connection references) run, so nothing is left behind.
    gint64 deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
    while ((pending_async > 0 || g_main_context_pending(ctx.get())) &&
           g_get_monotonic_time() < deadline) {
      if (!g_main_context_iteration(ctx.get(), FALSE))
        g_usleep(1000);
    }
  }

  // ================================================= QMP server (p2p)

  void arm_accept() {
    GSource *src = g_unix_fd_source_new(listen_fd.get(), G_IO_IN);
    g_source_set_callback(src, G_SOURCE_FUNC(on_qmp_accept), this, nullptr);
    g_source_attach(src, ctx.get());
    accept_source.reset(src);
  }

  static gboolean on_qmp_accept(gint fd, GIOCondition, gpointer data) {
    auto *self = static_cast<Impl *>(data);
    int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      return G_SOURCE_CONTINUE;  // EAGAIN/EINTR/ECONNABORTED: wait for more
    try {
      self->qmp_open(UniqueFd(c));
    } catch (const std::exception &e) {
      g_printerr("fake-qemu: QMP accept: %s\n", e.what());
    }
    // QEMU's socket chardev serves one client at a time: stop accepting
    // until this one goes; later clients wait in the backlog.
    self->accept_source.reset();
    return G_SOURCE_REMOVE;
  }

  void qmp_open(UniqueFd fd) {
    auto client = std::make_unique<QmpClient>();
    client->fd = std::move(fd);
    GSource *src = g_unix_fd_source_new(client->fd.get(),
                                        static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR));
    g_source_set_callback(src, G_SOURCE_FUNC(on_qmp_readable), this, nullptr);
    g_source_attach(src, ctx.get());
    client->watch.reset(src);
    qmp_client = std::move(client);
    write_all(qmp_client->fd.get(),
              "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
              "\"major\": 7}, \"package\": \"fake-qemu\"}, \"capabilities\": "
              "[\"oob\"]}}\r\n");
  }

  void qmp_close() {
    qmp_client.reset();
    if (!shutting_down && listen_fd.valid())
      arm_accept();
  }

  static gboolean on_qmp_readable(gint fd, GIOCondition, gpointer data) {
    auto *self = static_cast<Impl *>(data);
    try {
      return self->qmp_read(fd);
    } catch (const std::exception &e) {
      g_printerr("fake-qemu: QMP: %s\n", e.what());
      self->qmp_close();
      return G_SOURCE_REMOVE;
    }
  }

  gboolean qmp_read(int fd) {
    char buf[4096];
    union {
      cmsghdr align;
      char space[CMSG_SPACE(sizeof(int) * kMaxQmpFds)];
    } control;
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return G_SOURCE_CONTINUE;

    std::vector<UniqueFd> fds;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int received;
        memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.emplace_back(received);
      }
    }
    if (n <= 0) {
      qmp_close();
      return G_SOURCE_REMOVE;
    }
    if (!fds.empty())
      qmp_client->msgfds = std::move(fds);
    qmp_client->input.append(buf, static_cast<size_t>(n));
    if (qmp_client->input.size() > kMaxQmpInput) {
      qmp_close();
      return G_SOURCE_REMOVE;
    }
    std::string text;
    bool garbage;
    while (next_json_text(&qmp_client->input, &text, &garbage))
      qmp_handle(text, garbage);
    return G_SOURCE_CONTINUE;
  }

  void qmp_send(const std::string &reply) {
    std::string out;
    if (opts.qmp_send_event_before_reply) {
      gint64 now = g_get_real_time();
      char event[160];
      g_snprintf(event, sizeof event,
                 "{\"timestamp\": {\"seconds\": %" G_GINT64_FORMAT
                 ", \"microseconds\": %" G_GINT64_FORMAT
                 "}, \"event\": \"RTC_CHANGE\", \"data\": {\"offset\": 0}}\r\n",
                 now / G_USEC_PER_SEC, now % G_USEC_PER_SEC);
      out = event;
    }
    out += reply + "\r\n";
    write_all(qmp_client->fd.get(), out);
  }

  static std::string with_id(const std::string &body, const Json *id) {
    return id ? body + ", \"id\": " + json_write(*id, true) + "}" : body + "}";
  }

  void qmp_ok(const Json *id) { qmp_send(with_id("{\"return\": {}", id)); }

  void qmp_error(const char *klass, const std::string &desc, const Json *id) {
    qmp_send(with_id(std::string("{\"error\": {\"class\": \"") + klass +
                         "\", \"desc\": " + json_quote(desc) + "}",
                     id));
  }

  void qmp_handle(const std::string &text, bool garbage) {
    Json req;
    if (garbage || !JsonParser(text).parse(&req)) {
      qmp_error("GenericError", "JSON parse error", nullptr);
      return;
    }
    if (req.type != Json::Type::Object) {
      qmp_error("GenericError", "QMP input must be a JSON object", nullptr);
      return;
    }
    const Json *id = req.get("id");
    const Json *execute = req.get("execute");
    if (!execute || execute->type != Json::Type::String) {
      qmp_error("GenericError", "QMP input lacks member 'execute'", id);
      return;
    }
    const Json *args = req.get("arguments");
    if (args && args->type != Json::Type::Object) {
      qmp_error("GenericError", "QMP input member 'arguments' must be an object", id);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      qmp_lines += execute->text;
      if (args)
        qmp_lines += " " + json_write(*args, false);
      qmp_lines += "\n";
    }
    qmp_execute(execute->text, args, id);
  }

  // Fetches a string argument, replying with QEMU's error when it is not one.
  bool qmp_string_arg(const Json *args, const char *key, std::string *out, const Json *id) {
    const Json *v = args ? args->get(key) : nullptr;
    if (!v) {
      qmp_error("GenericError", std::string("Parameter '") + key + "' is missing", id);
      return false;
    }
    if (v->type != Json::Type::String) {
      qmp_error("GenericError",
                std::string("Invalid parameter type for '") + key + "', expected: string", id);
      return false;
    }
    *out = v->text;
    return true;
  }

  void qmp_execute(const std::string &name, const Json *args, const Json *id) {
    QmpClient &client = *qmp_client;
    if (!client.negotiated) {
      if (name != "qmp_capabilities") {
        qmp_error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'",
                  id);
        return;
      }
      client.negotiated = true;
      qmp_ok(id);
      return;
    }
    if (name == "qmp_capabilities") {
      qmp_error("CommandNotFound", "Capabilities negotiation is already complete, command ignored",
                id);
      return;
    }
    if (name == "getfd") {
      std::string fdname;
      if (!qmp_string_arg(args, "fdname", &fdname, id))
        return;
      if (client.msgfds.empty()) {
        qmp_error("GenericError", "No file descriptor supplied via SCM_RIGHTS", id);
        return;
      }
      // QEMU takes the first fd of the batch and closes the others.
      UniqueFd fd = std::move(client.msgfds.front());
      client.msgfds.clear();
      if (!opts.qmp_fail_getfd.empty()) {
        qmp_error("GenericError", opts.qmp_fail_getfd, id);
        return;
      }
      if (g_ascii_isdigit(fdname[0])) {
        qmp_error("GenericError", "Parameter 'fdname' expects a name not starting with a digit",
                  id);
        return;
      }
      named_fds[fdname] = std::move(fd);  // replaces (closes) a same-named one
      qmp_ok(id);
      return;
    }
    if (name == "add_client") {
      std::string protocol, fdname;
      if (!qmp_string_arg(args, "protocol", &protocol, id) ||
          !qmp_string_arg(args, "fdname", &fdname, id))
        return;
      auto it = named_fds.find(fdname);
      if (it == named_fds.end()) {
        qmp_error("GenericError", "File descriptor named '" + fdname + "' has not been found", id);
        return;
      }
      // Like QEMU: the named fd is used up whatever happens next.
      UniqueFd fd = std::move(it->second);
      named_fds.erase(it);
      if (!opts.qmp_fail_add_client.empty()) {
        qmp_error("GenericError", opts.qmp_fail_add_client, id);
        return;
      }
      if (protocol != "@dbus-display") {
        qmp_error("GenericError", "protocol '" + protocol + "' is invalid", id);
        return;
      }
      std::string error = p2p_accept(std::move(fd));
      if (!error.empty()) {
        qmp_error("GenericError", error, id);
        return;
      }
      qmp_ok(id);
      return;
    }
    qmp_error("CommandNotFound", "The command " + name + " has not been found", id);
  }

  // QEMU's add_client for "@dbus-display": cancel a handshake still pending,
  // start an asynchronous authentication-server handshake on the socket and
  // reply to QMP at once; the display objects move to the new connection
  // when the handshake completes.
  std::string p2p_accept(UniqueFd fd) {
    g_autoptr(GError) err = nullptr;
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd.get(), &err);
    if (!sock)
      return std::string("Failed to setup D-Bus socket: ") + err->message;
    fd.release();  // the GSocket owns it now
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(sock);
    if (add_client_cancel)
      g_cancellable_cancel(add_client_cancel.get());
    add_client_cancel.reset(g_cancellable_new());
    g_autofree gchar *guid = g_dbus_generate_guid();
    pending_async++;
    // Delayed processing: calls that arrive before the objects are exported
    // wait instead of failing (see FakeQemuOptions::p2p_export_delay_ms).
    g_dbus_connection_new(
        G_IO_STREAM(stream), guid,
        static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER |
                                          G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING),
        nullptr, add_client_cancel.get(), on_p2p_ready, this);
    return "";
  }

  static void on_p2p_ready(GObject *, GAsyncResult *res, gpointer data) {
    auto *self = static_cast<Impl *>(data);
    self->pending_async--;
    g_autoptr(GError) err = nullptr;
    g_autoptr(GDBusConnection) conn = g_dbus_connection_new_finish(res, &err);
    if (self->shutting_down || g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      if (conn)
        close_connection_now(conn);
      return;
    }
    if (!conn) {
      // QEMU then unexports from (and so drops) the previous client.
      g_printerr("fake-qemu: Failed to accept D-Bus client: %s\n", err->message);
      self->drop_server_conn();
      return;
    }
    self->cancel_delayed_export();
    if (self->opts.p2p_export_delay_ms > 0) {
      g_dbus_connection_start_message_processing(conn);
      self->export_pending = new_ref(conn);
      GSource *timer = g_timeout_source_new(self->opts.p2p_export_delay_ms);
      g_source_set_callback(timer, on_export_timer, self, nullptr);
      g_source_attach(timer, self->ctx.get());
      self->export_timer.reset(timer);
      return;
    }
    self->export_p2p(conn);
    g_dbus_connection_start_message_processing(conn);
  }

  static gboolean on_export_timer(gpointer data) {
    auto *self = static_cast<Impl *>(data);
    GRef<GDBusConnection> conn = std::move(self->export_pending);
    self->export_timer.reset();
    self->export_p2p(conn.get());
    return G_SOURCE_REMOVE;
  }

  void export_p2p(GDBusConnection *conn) {
    std::string error = install_server_conn(conn);
    if (!error.empty())
      g_printerr("fake-qemu: %s\n", error.c_str());
  }

  // A newer client (or shutdown) supersedes a connection still waiting for
  // its delayed export.
  void cancel_delayed_export() {
    export_timer.reset();
    if (GRef<GDBusConnection> conn = std::move(export_pending))
      close_connection_now(conn.get());
  }

  // ================================================= exported objects

  // Replaces the connection the objects are exported on (closing the old
  // one, as QEMU's object manager drops its last reference to it).
  std::string install_server_conn(GDBusConnection *conn) {
    drop_server_conn();
    static const GDBusInterfaceVTable vtable = {
        on_method_call, on_get_property, nullptr, {nullptr}};
    std::string error;
    auto reg = [&](const char *path, const char *iface, ObjectCtx *obj) {
      if (!error.empty())
        return;
      g_autoptr(GError) err = nullptr;
      guint id = g_dbus_connection_register_object(
          conn, path, g_dbus_node_info_lookup_interface(node.get(), iface), &vtable, obj, nullptr,
          &err);
      if (id)
        registrations.push_back(id);
      else
        error = std::string("register ") + path + " " + iface + ": " + err->message;
    };
    reg(kVmPath, kVmIface, &vm_ctx);
    for (ObjectCtx &c : console_ctxs) {
      std::string path = console_path(c.console);
      reg(path.c_str(), kConsoleIface, &c);
      reg(path.c_str(), kKeyboardIface, &c);
      reg(path.c_str(), kMouseIface, &c);
    }
    reg(kManagerPath, kManagerIface, &manager_ctx);
    server_closed_handler = g_signal_connect(conn, "closed", G_CALLBACK(on_server_closed), this);
    std::lock_guard<std::mutex> lock(mu);
    server_conn = new_ref(conn);
    return error;
  }

  void drop_server_conn() {
    GRef<GDBusConnection> conn;
    {
      std::lock_guard<std::mutex> lock(mu);
      conn = std::move(server_conn);
    }
    if (!conn)
      return;
    for (guint id : registrations)
      g_dbus_connection_unregister_object(conn.get(), id);
    registrations.clear();
    g_signal_handler_disconnect(conn.get(), server_closed_handler);
    server_closed_handler = 0;
    close_connection_now(conn.get());
  }

  static void on_server_closed(GDBusConnection *conn, gboolean, GError *, gpointer data) {
    auto *self = static_cast<Impl *>(data);
    bool current;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      current = self->server_conn.get() == conn;
    }
    if (current)
      self->drop_server_conn();
  }

  static std::string console_path(uint32_t id) {
    return "/org/qemu/Display1/Console_" + std::to_string(id);
  }

  // The entry of a per-console option for console id, or fallback.
  std::string per_console(const std::vector<std::string> &values, uint32_t id,
                          const std::string &fallback) const {
    for (size_t i = 0; i < opts.console_ids.size() && i < values.size(); i++)
      if (opts.console_ids[i] == id)
        return values[i];
    return fallback;
  }

  // A new value for a property (floating), or nullptr if there is none.
  GVariant *property_value(const ObjectCtx &obj, const std::string &iface,
                           const std::string &prop) {
    std::lock_guard<std::mutex> lock(mu);
    if (obj.kind == ObjectCtx::Kind::Vm && iface == kVmIface) {
      if (prop == "Name")
        return g_variant_new_string(opts.vm_name.c_str());
      if (prop == "UUID")
        return g_variant_new_string(opts.uuid.c_str());
      if (prop == "ConsoleIDs") {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("au"));
        for (uint32_t id : opts.console_ids)
          g_variant_builder_add(&b, "u", id);
        return g_variant_builder_end(&b);
      }
    }
    if (obj.kind != ObjectCtx::Kind::Console)
      return nullptr;
    if (iface == kConsoleIface) {
      if (prop == "Label")
        return g_variant_new_string(per_console(opts.console_labels, obj.console, "VGA").c_str());
      if (prop == "Head")
        return g_variant_new_uint32(0);
      if (prop == "Type")
        return g_variant_new_string(
            per_console(opts.console_types, obj.console, opts.console_type).c_str());
      if (prop == "Width")
        return g_variant_new_uint32(console_size[obj.console].first);
      if (prop == "Height")
        return g_variant_new_uint32(console_size[obj.console].second);
      if (prop == "DeviceAddress")
        return g_variant_new_string("pci/0000/02.0");
    }
    if (iface == kKeyboardIface && prop == "Modifiers")
      return g_variant_new_uint32(0);
    if (iface == kMouseIface && prop == "IsAbsolute")
      return g_variant_new_boolean(mouse_absolute);
    return nullptr;
  }

  GVariant *interface_properties(const ObjectCtx &obj, const char *iface) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    GDBusInterfaceInfo *info = g_dbus_node_info_lookup_interface(node.get(), iface);
    for (GDBusPropertyInfo **p = info->properties; p && *p; ++p) {
      GVariant *v = property_value(obj, iface, (*p)->name);
      if (v)
        g_variant_builder_add(&b, "{sv}", (*p)->name, v);
    }
    return g_variant_builder_end(&b);
  }

  GVariant *managed_objects() {
    GVariantBuilder objects;
    g_variant_builder_init(&objects, G_VARIANT_TYPE("a{oa{sa{sv}}}"));
    auto add = [&](const std::string &path, const ObjectCtx &obj,
                   std::initializer_list<const char *> ifaces) {
      GVariantBuilder b;
      g_variant_builder_init(&b, G_VARIANT_TYPE("a{sa{sv}}"));
      for (const char *iface : ifaces)
        g_variant_builder_add(&b, "{s@a{sv}}", iface, interface_properties(obj, iface));
      g_variant_builder_add(&objects, "{o@a{sa{sv}}}", path.c_str(), g_variant_builder_end(&b));
    };
    add(kVmPath, vm_ctx, {kVmIface});
    for (const ObjectCtx &c : console_ctxs)
      add(console_path(c.console), c, {kConsoleIface, kKeyboardIface, kMouseIface});
    return g_variant_new("(@a{oa{sa{sv}}})", g_variant_builder_end(&objects));
  }

  void emit_properties_changed(const std::string &path, const char *iface, const char *prop,
                               GVariant *value) {
    GRef<GDBusConnection> conn;
    {
      std::lock_guard<std::mutex> lock(mu);
      conn = new_ref(server_conn.get());
    }
    GVariantBuilder changed;
    g_variant_builder_init(&changed, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&changed, "{sv}", prop, value);
    GVariant *args = g_variant_new("(sa{sv}as)", iface, &changed, nullptr);
    if (!conn) {
      g_variant_unref(g_variant_ref_sink(args));
      return;
    }
    g_dbus_connection_emit_signal(conn.get(), nullptr, path.c_str(), kPropertiesIface,
                                  "PropertiesChanged", args, nullptr);
  }

  static GVariant *on_get_property(GDBusConnection *, const gchar *, const gchar *,
                                   const gchar *iface, const gchar *prop, GError **error,
                                   gpointer data) {
    auto *obj = static_cast<ObjectCtx *>(data);
    GVariant *v = nullptr;
    try {
      v = obj->impl->property_value(*obj, iface, prop);
    } catch (const std::exception &) {
    }
    if (!v)
      g_set_error(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No such property '%s'",
                  prop);
    return v;
  }

  static void on_method_call(GDBusConnection *, const gchar *sender, const gchar *,
                             const gchar *iface, const gchar *method, GVariant *params,
                             GDBusMethodInvocation *inv, gpointer data) {
    auto *obj = static_cast<ObjectCtx *>(data);
    try {
      obj->impl->handle_method(*obj, sender, iface, method, params, inv);
    } catch (const std::exception &e) {
      // Only allocation can throw here, before the invocation is answered.
      g_dbus_method_invocation_return_dbus_error(inv, kErrorFailed, e.what());
    }
  }

  void log_input(std::string entry) {
    std::lock_guard<std::mutex> lock(mu);
    inputs.push_back(std::move(entry));
  }

  void handle_method(const ObjectCtx &obj, const char *sender, const std::string &iface,
                     const std::string &method, GVariant *params, GDBusMethodInvocation *inv) {
    if (iface == kManagerIface && method == "GetManagedObjects") {
      g_dbus_method_invocation_return_value(inv, managed_objects());
      return;
    }
    if (iface == kConsoleIface && method == "RegisterListener") {
      register_listener(obj.console, sender, params, inv);
      return;
    }
    if (iface == kConsoleIface && method == "SetUIInfo") {
      guint16 wmm, hmm;
      gint32 xoff, yoff;
      guint32 w, h;
      g_variant_get(params, "(qqiiuu)", &wmm, &hmm, &xoff, &yoff, &w, &h);
      {
        std::lock_guard<std::mutex> lock(mu);
        ui_infos.push_back(std::to_string(w) + "x" + std::to_string(h) + " " +
                           std::to_string(wmm) + "x" + std::to_string(hmm) + "mm at " +
                           std::to_string(xoff) + "," + std::to_string(yoff));
      }
      if (opts.ui_info_supported)
        g_dbus_method_invocation_return_value(inv, nullptr);
      else  // What QEMU answers for a device that cannot resize (e.g. std VGA).
        g_dbus_method_invocation_return_dbus_error(inv, kErrorUnsupported,
                                                   "SetUIInfo is not supported");
      return;
    }
    if ((iface == kKeyboardIface || iface == kMouseIface) &&
        (method == "Press" || method == "Release")) {
      guint32 code;
      g_variant_get(params, "(u)", &code);
      log_input(std::string(iface == kKeyboardIface ? "kbd." : "mouse.") +
                (method == "Press" ? "press " : "release ") + std::to_string(code));
      g_dbus_method_invocation_return_value(inv, nullptr);
      return;
    }
    if (iface == kMouseIface && method == "SetAbsPosition") {
      guint32 x, y;
      g_variant_get(params, "(uu)", &x, &y);
      bool absolute;
      std::pair<uint32_t, uint32_t> size;
      {
        std::lock_guard<std::mutex> lock(mu);
        absolute = mouse_absolute;
        size = console_size[obj.console];
      }
      if (!absolute) {
        g_dbus_method_invocation_return_dbus_error(inv, kErrorInvalid, "Mouse is not absolute");
      } else if (x >= size.first || y >= size.second) {
        g_dbus_method_invocation_return_dbus_error(inv, kErrorInvalid, "Invalid mouse position");
      } else {
        log_input("mouse.abs " + std::to_string(x) + " " + std::to_string(y));
        g_dbus_method_invocation_return_value(inv, nullptr);
      }
      return;
    }
    if (iface == kMouseIface && method == "RelMotion") {
      gint32 dx, dy;
      g_variant_get(params, "(ii)", &dx, &dy);
      bool absolute;
      {
        std::lock_guard<std::mutex> lock(mu);
        absolute = mouse_absolute;
      }
      if (absolute) {
        g_dbus_method_invocation_return_dbus_error(inv, kErrorInvalid, "Mouse is not relative");
      } else {
        log_input("mouse.rel " + std::to_string(dx) + " " + std::to_string(dy));
        g_dbus_method_invocation_return_value(inv, nullptr);
      }
      return;
    }
    g_dbus_method_invocation_return_dbus_error(inv, "org.freedesktop.DBus.Error.UnknownMethod",
                                               "Unknown method");
  }

  // ================================================= listener

  // QEMU's RegisterListener: reply first, then run the authentication-server
  // handshake on the received socket, blocking the main loop, then read the
  // listener's properties (a blocking GetAll) before it sends anything.
  void register_listener(uint32_t console, const char *sender, GVariant *params,
                         GDBusMethodInvocation *inv) {
    if (!p2p && sender) {
      // QEMU 7.2 keys listeners by sender: one per client on the bus.
      std::lock_guard<std::mutex> lock(mu);
      if (listener && listener_sender == sender) {
        std::string msg = std::string("`") + sender + "` is already registered!";
        g_dbus_method_invocation_return_dbus_error(inv, kErrorInvalid, msg.c_str());
        return;
      }
    }
    gint32 handle;
    g_variant_get(params, "(h)", &handle);
    GUnixFDList *fds = g_dbus_message_get_unix_fd_list(g_dbus_method_invocation_get_message(inv));
    g_autoptr(GError) err = nullptr;
    int fd = fds ? g_unix_fd_list_get(fds, handle, &err) : -1;
    if (fd < 0) {
      std::string msg = std::string("Couldn't get peer fd: ") +
                        (err ? err->message : "no file descriptor attached");
      g_dbus_method_invocation_return_dbus_error(inv, kErrorFailed, msg.c_str());
      return;
    }
    g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &err);
    if (!sock) {
      close(fd);
      std::string msg = std::string("Couldn't make a socket: ") + err->message;
      g_dbus_method_invocation_return_dbus_error(inv, kErrorFailed, msg.c_str());
      return;
    }
    g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(sock);
    std::string who = sender ? sender : "";
    g_dbus_method_invocation_return_value(inv, nullptr);  // consumes inv

    g_autofree gchar *guid = g_dbus_generate_guid();
    g_autoptr(GDBusConnection) conn = g_dbus_connection_new_sync(
        G_IO_STREAM(stream), guid, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER, nullptr,
        cancel.get(), &err);
    if (!conn) {
      if (!g_cancellable_is_cancelled(cancel.get()))
        g_printerr("fake-qemu: Failed to setup peer connection: %s\n", err->message);
      return;
    }
    std::vector<std::string> ifaces;
    if (opts.read_listener_interfaces && !read_listener_properties(conn, &ifaces)) {
      close_connection_now(conn);  // shutting down
      return;
    }
    install_listener(conn, console, who, std::move(ifaces));
  }

  // Returns false only when cancelled. Errors are ignored, as QEMU's
  // GDBusProxy ignores a failing GetAll (it just caches no properties).
  bool read_listener_properties(GDBusConnection *conn, std::vector<std::string> *ifaces) {
    auto get_all = [&](const char *iface) -> GVariant * {
      g_autoptr(GError) err = nullptr;
      return g_dbus_connection_call_sync(conn, nullptr, kListenerPath, kPropertiesIface, "GetAll",
                                         g_variant_new("(s)", iface), G_VARIANT_TYPE("(a{sv})"),
                                         G_DBUS_CALL_FLAGS_NONE, opts.listener_getall_timeout_ms,
                                         cancel.get(), &err);
    };
    g_autoptr(GVariant) all = get_all(kListenerIface);
    if (g_cancellable_is_cancelled(cancel.get()))
      return false;
    if (all) {
      g_autoptr(GVariant) dict = g_variant_get_child_value(all, 0);
      g_autoptr(GVariant) list =
          g_variant_lookup_value(dict, "Interfaces", G_VARIANT_TYPE_STRING_ARRAY);
      if (list) {
        g_autofree const gchar **names = g_variant_get_strv(list, nullptr);
        for (const gchar **n = names; *n; ++n)
          ifaces->emplace_back(*n);
      }
    }
    // Newer QEMU builds one more GDBusProxy, and so does one more GetAll,
    // for each optional interface it is going to use.
    for (const std::string &iface : *ifaces) {
      if (iface != kListenerMapIface && iface != kListenerDmabuf2Iface)
        continue;
      g_autoptr(GVariant) ignored = get_all(iface.c_str());
      if (g_cancellable_is_cancelled(cancel.get()))
        return false;
    }
    return true;
  }

  void install_listener(GDBusConnection *conn, uint32_t console, const std::string &sender,
                        std::vector<std::string> ifaces) {
    gulong handler = g_signal_connect(conn, "closed", G_CALLBACK(on_listener_closed), this);
    if (g_dbus_connection_is_closed(conn)) {
      g_signal_handler_disconnect(conn, handler);
      return;
    }
    GRef<GDBusConnection> old;
    gulong old_handler;
    {
      std::lock_guard<std::mutex> lock(mu);
      old = std::move(listener);
      old_handler = listener_closed_handler;
      listener = new_ref(conn);
      listener_closed_handler = handler;
      listener_sender = sender;
      listener_console_id = console;
      listener_ifaces = std::move(ifaces);
    }
    cv.notify_all();
    if (old) {
      // Only one listener here: the newer one wins, as for QEMU 7.2 in p2p.
      g_signal_handler_disconnect(old.get(), old_handler);
      close_connection_now(old.get());
    }
  }

  // Takes the listener out of the shared state; the caller closes it.
  GRef<GDBusConnection> take_listener(GDBusConnection *only_if = nullptr) {
    GRef<GDBusConnection> conn;
    gulong handler;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!listener || (only_if && listener.get() != only_if))
        return nullptr;
      conn = std::move(listener);
      handler = listener_closed_handler;
      listener_closed_handler = 0;
      listener_sender.clear();
      listener_console_id = -1;
      listener_ifaces.clear();
    }
    g_signal_handler_disconnect(conn.get(), handler);
    return conn;
  }

  static void on_listener_closed(GDBusConnection *conn, gboolean, GError *, gpointer data) {
    static_cast<Impl *>(data)->take_listener(conn);  // dropping the ref is all
  }

  void drop_listener() {
    GRef<GDBusConnection> conn = take_listener();
    if (conn)
      close_connection_now(conn.get());
  }

  GRef<GDBusConnection> current_listener() {
    std::lock_guard<std::mutex> lock(mu);
    return new_ref(listener.get());
  }

  // Sinks params and checks the common preconditions of call_raw/post_raw.
  GRef<GDBusConnection> prepare_call(GVariant *params, std::string *error) {
    if (params && !g_variant_is_of_type(params, G_VARIANT_TYPE_TUPLE)) {
      set_error(error, std::string("parameters must be a tuple, not ") +
                           g_variant_get_type_string(params));
      return nullptr;
    }
    GRef<GDBusConnection> conn = current_listener();
    if (!conn)
      set_error(error, "no listener registered");
    return conn;
  }

  bool call(const char *iface, const char *method, GVariant *params, GUnixFDList *fds,
            std::string *error) {
    g_autoptr(GVariant) owned = params ? g_variant_ref_sink(params) : nullptr;
    GRef<GDBusConnection> conn = prepare_call(owned, error);
    if (!conn)
      return false;
    g_autoptr(GError) err = nullptr;
    g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_sync(
        conn.get(), nullptr, kListenerPath, iface, method, owned, nullptr, G_DBUS_CALL_FLAGS_NONE,
        call_timeout_ms.load(), fds, nullptr, nullptr, &err);
    if (!reply) {
      set_error(error, err->message);
      return false;
    }
    return true;
  }

  bool post(const char *iface, const char *method, GVariant *params, GUnixFDList *fds,
            std::string *error) {
    g_autoptr(GVariant) owned = params ? g_variant_ref_sink(params) : nullptr;
    GRef<GDBusConnection> conn = prepare_call(owned, error);
    if (!conn)
      return false;
    g_autoptr(GDBusMessage) msg =
        g_dbus_message_new_method_call(nullptr, kListenerPath, iface, method);
    if (owned)
      g_dbus_message_set_body(msg, owned);
    if (fds)
      g_dbus_message_set_unix_fd_list(msg, fds);
    g_dbus_message_set_flags(msg, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
    g_autoptr(GError) err = nullptr;
    if (!g_dbus_connection_send_message(conn.get(), msg, G_DBUS_SEND_MESSAGE_FLAGS_NONE, nullptr,
                                        &err) ||
        !g_dbus_connection_flush_sync(conn.get(), nullptr, &err)) {
      set_error(error, err->message);
      return false;
    }
    return true;
  }

  // QEMU resizes the console (and notifies Width/Height) with each new surface.
  void set_listener_console_size(uint32_t w, uint32_t h) {
    int64_t id;
    bool changed;
    {
      std::lock_guard<std::mutex> lock(mu);
      id = listener_console_id;
      if (id < 0 || !console_size.count(static_cast<uint32_t>(id)))
        return;
      auto &size = console_size[static_cast<uint32_t>(id)];
      changed = size != std::make_pair(w, h);
      size = {w, h};
    }
    if (!changed)
      return;
    std::string path = console_path(static_cast<uint32_t>(id));
    emit_properties_changed(path, kConsoleIface, "Width", g_variant_new_uint32(w));
    emit_properties_changed(path, kConsoleIface, "Height", g_variant_new_uint32(h));
  }
};

// ---------------------------------------------------------------- public API

namespace {

GVariant *bytes_variant(const std::vector<uint8_t> &data) {
  g_autoptr(GBytes) bytes = g_bytes_new(data.data(), data.size());
  return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

}  // namespace

FakeQemu::FakeQemu(Key, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FakeQemu::~FakeQemu() {
  impl_->stop();
}

std::unique_ptr<FakeQemu> FakeQemu::start_p2p(const std::string &qmp_path,
                                              const FakeQemuOptions &options, std::string *error) {
  auto impl = std::make_unique<Impl>(options);
  impl->p2p = true;
  impl->qmp_path = qmp_path;
  auto fake = std::make_unique<FakeQemu>(Key{}, std::move(impl));
  std::string err = fake->impl_->start();
  if (!err.empty()) {
    set_error(error, err);
    return nullptr;
  }
  return fake;
}

std::unique_ptr<FakeQemu> FakeQemu::start_bus(const std::string &bus_address,
                                              const FakeQemuOptions &options, std::string *error) {
  auto impl = std::make_unique<Impl>(options);
  impl->bus_address = bus_address;
  auto fake = std::make_unique<FakeQemu>(Key{}, std::move(impl));
  std::string err = fake->impl_->start();
  if (!err.empty()) {
    set_error(error, err);
    return nullptr;
  }
  return fake;
}

bool FakeQemu::wait_for_listener(int timeout_ms) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [this] { return impl_->listener != nullptr; });
}

int64_t FakeQemu::listener_console() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->listener_console_id;
}

std::vector<std::string> FakeQemu::listener_interfaces() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->listener_ifaces;
}

bool FakeQemu::scanout(uint32_t w, uint32_t h, uint32_t stride, uint32_t pixman_format,
                       const std::vector<uint8_t> &data, std::string *error) {
  impl_->set_listener_console_size(w, h);
  return impl_->call(kListenerIface, "Scanout",
                     g_variant_new("(uuuu@ay)", w, h, stride, pixman_format, bytes_variant(data)),
                     nullptr, error);
}

bool FakeQemu::update(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t stride,
                      uint32_t pixman_format, const std::vector<uint8_t> &data,
                      std::string *error) {
  return impl_->call(
      kListenerIface, "Update",
      g_variant_new("(iiiiuu@ay)", x, y, w, h, stride, pixman_format, bytes_variant(data)), nullptr,
      error);
}

bool FakeQemu::scanout_map(int memfd, uint32_t offset, uint32_t w, uint32_t h, uint32_t stride,
                           uint32_t pixman_format, std::string *error) {
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
  g_autoptr(GError) err = nullptr;
  gint handle = g_unix_fd_list_append(fds, memfd, &err);  // dups memfd
  if (handle < 0) {
    set_error(error, err->message);
    return false;
  }
  impl_->set_listener_console_size(w, h);
  return impl_->call(kListenerMapIface, "ScanoutMap",
                     g_variant_new("(huuuuu)", handle, offset, w, h, stride, pixman_format), fds,
                     error);
}

bool FakeQemu::scanout_dmabuf(int fd, uint32_t w, uint32_t h, uint32_t stride, uint32_t fourcc,
                              uint64_t modifier, bool y0_top, std::string *error) {
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
  g_autoptr(GError) err = nullptr;
  gint handle = g_unix_fd_list_append(fds, fd, &err);  // dups fd
  if (handle < 0) {
    set_error(error, err->message);
    return false;
  }
  impl_->set_listener_console_size(w, h);
  return impl_->call(kListenerIface, "ScanoutDMABUF",
                     g_variant_new("(huuuutb)", handle, w, h, stride, fourcc,
                                   guint64(modifier), gboolean(y0_top)),
                     fds, error);
}

bool FakeQemu::update_dmabuf(int32_t x, int32_t y, int32_t w, int32_t h, std::string *error) {
  return impl_->call(kListenerIface, "UpdateDMABUF", g_variant_new("(iiii)", x, y, w, h),
                     nullptr, error);
}

bool FakeQemu::scanout_dmabuf2(const Dmabuf2 &d, std::string *error) {
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
  GVariantBuilder handles;
  g_variant_builder_init(&handles, G_VARIANT_TYPE("ah"));
  for (int fd : d.fds) {
    g_autoptr(GError) err = nullptr;
    gint handle = g_unix_fd_list_append(fds, fd, &err);
    if (handle < 0) {
      g_variant_builder_clear(&handles);
      set_error(error, err->message);
      return false;
    }
    g_variant_builder_add(&handles, "h", handle);
  }
  auto array = [](const std::vector<uint32_t> &v) {
    return g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, v.data(), v.size(), sizeof(uint32_t));
  };
  impl_->set_listener_console_size(d.w, d.h);
  return impl_->call(kListenerDmabuf2Iface, "ScanoutDMABUF2",
                     g_variant_new("(@ahuuuu@au@auuuuutb)", g_variant_builder_end(&handles), d.x,
                                   d.y, d.w, d.h, array(d.offsets), array(d.strides),
                                   d.num_planes, d.fourcc, d.backing_width, d.backing_height,
                                   guint64(d.modifier), gboolean(d.y0_top)),
                     fds, error);
}

bool FakeQemu::update_map(int32_t x, int32_t y, int32_t w, int32_t h, std::string *error) {
  return impl_->call(kListenerMapIface, "UpdateMap", g_variant_new("(iiii)", x, y, w, h), nullptr,
                     error);
}

bool FakeQemu::disable(std::string *error) {
  return impl_->call(kListenerIface, "Disable", nullptr, nullptr, error);
}

bool FakeQemu::mouse_set(int32_t x, int32_t y, int32_t on, std::string *error) {
  return impl_->call(kListenerIface, "MouseSet", g_variant_new("(iii)", x, y, on), nullptr, error);
}

bool FakeQemu::cursor_define(int32_t w, int32_t h, int32_t hot_x, int32_t hot_y,
                             const std::vector<uint8_t> &argb, std::string *error) {
  return impl_->call(kListenerIface, "CursorDefine",
                     g_variant_new("(iiii@ay)", w, h, hot_x, hot_y, bytes_variant(argb)), nullptr,
                     error);
}

bool FakeQemu::call_raw(const std::string &interface, const std::string &method, GVariant *params,
                        GUnixFDList *fds, std::string *error) {
  return impl_->call(interface.c_str(), method.c_str(), params, fds, error);
}

bool FakeQemu::post_raw(const std::string &interface, const std::string &method, GVariant *params,
                        GUnixFDList *fds, std::string *error) {
  return impl_->post(interface.c_str(), method.c_str(), params, fds, error);
}

void FakeQemu::set_call_timeout(int timeout_ms) {
  impl_->call_timeout_ms = timeout_ms;
}

void FakeQemu::drop_listener() {
  impl_->drop_listener();
}

std::vector<std::string> FakeQemu::input_log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->inputs;
}

std::vector<std::string> FakeQemu::ui_info_log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->ui_infos;
}

void FakeQemu::set_mouse_absolute(bool absolute) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->mouse_absolute == absolute)
      return;
    impl_->mouse_absolute = absolute;
  }
  for (const auto &c : impl_->console_ctxs)
    impl_->emit_properties_changed(Impl::console_path(c.console), kMouseIface, "IsAbsolute",
                                   g_variant_new_boolean(absolute));
}

std::string FakeQemu::qmp_log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->qmp_lines;
}

}  // namespace fakeqemu
