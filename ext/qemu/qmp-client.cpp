/* gst-vmdisplay: minimal QMP client for the D-Bus display's p2p mode. */
#include "qmp-client.h"

#include <glib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace vmd {
namespace {

/* QMP replies to these commands are tiny; anything longer is not QEMU. */
constexpr size_t kMaxLine = 64 * 1024;

class QmpConnection {
 public:
  QmpConnection(UniqueFd fd, int64_t deadline_us, int cancel_fd)
      : fd_(std::move(fd)), deadline_(deadline_us), cancel_fd_(cancel_fd) {}

  bool read_line(std::string *line, std::string *error) {
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line->empty() && line->back() == '\r')
          line->pop_back();
        return true;
      }
      if (buf_.size() > kMaxLine) {
        *error = "QMP sent a line longer than 64 KiB; is this really a QMP socket?";
        return false;
      }
      if (!wait_io(POLLIN, error))
        return false;
      char chunk[4096];
      ssize_t n = recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0) {
        *error = n == 0 ? "QEMU closed the QMP connection" : std::string("QMP read failed: ") + g_strerror(errno);
        return false;
      }
      buf_.append(chunk, size_t(n));
    }
  }

  /* Reads lines until a reply (return or error), skipping events. */
  bool read_reply(const char *command, std::string *error) {
    std::string line;
    for (;;) {
      if (!read_line(&line, error))
        return false;
      switch (qmp_classify(line)) {
        case QmpLine::Event:
          continue;
        case QmpLine::Return:
          return true;
        case QmpLine::Error:
          *error = std::string("QMP ") + command + " failed: " + qmp_error_desc(line);
          return false;
        default:
          *error = std::string("unexpected QMP reply to ") + command + ": " + line.substr(0, 200);
          return false;
      }
    }
  }

  bool send(const std::string &msg, int pass_fd, std::string *error) {
    size_t off = 0;
    while (off < msg.size()) {
      if (!wait_io(POLLOUT, error))
        return false;
      struct iovec iov = {const_cast<char *>(msg.data() + off), msg.size() - off};
      struct msghdr mh = {};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
      } control;
      if (pass_fd >= 0 && off == 0) {
        std::memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
      }
      ssize_t n = sendmsg(fd_.get(), &mh, MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0) {
        *error = std::string("QMP write failed: ") + g_strerror(errno);
        return false;
      }
      off += size_t(n);
    }
    return true;
  }

 private:
  bool wait_io(short events, std::string *error) {
    for (;;) {
      int64_t left_ms = (deadline_ - g_get_monotonic_time()) / 1000;
      if (left_ms <= 0) {
        *error = "QEMU did not answer on QMP in time";
        return false;
      }
      struct pollfd pfd[2] = {{fd_.get(), events, 0}, {cancel_fd_, POLLIN, 0}};
      int r = poll(pfd, cancel_fd_ >= 0 ? 2 : 1, int(left_ms));
      if (r > 0 && cancel_fd_ >= 0 && pfd[1].revents) {
        *error = "cancelled";
        return false;
      }
      if (r > 0)
        return true;
      if (r < 0 && errno != EINTR) {
        *error = std::string("poll on QMP failed: ") + g_strerror(errno);
        return false;
      }
    }
  }

  UniqueFd fd_;
  int64_t deadline_;
  int cancel_fd_;
  std::string buf_;
};

size_t skip_space(const std::string &s, size_t i) {
  while (i < s.size() && g_ascii_isspace(s[i]))
    i++;
  return i;
}

}  // namespace

QmpLine qmp_classify(const std::string &line) {
  size_t i = skip_space(line, 0);
  if (i >= line.size() || line[i] != '{')
    return QmpLine::Invalid;
  i = skip_space(line, i + 1);
  if (i >= line.size() || line[i] != '"')
    return QmpLine::Invalid;
  size_t end = line.find('"', i + 1);
  if (end == std::string::npos)
    return QmpLine::Invalid;
  std::string key = line.substr(i + 1, end - i - 1);
  if (key == "QMP")
    return QmpLine::Greeting;
  if (key == "return")
    return QmpLine::Return;
  if (key == "error")
    return QmpLine::Error;
  if (key == "event" || key == "timestamp")
    return QmpLine::Event;
  return QmpLine::Invalid;
}

std::string qmp_error_desc(const std::string &line) {
  size_t k = line.find("\"desc\"");
  if (k == std::string::npos)
    return line.substr(0, 200);
  size_t colon = line.find(':', k + 6);
  if (colon == std::string::npos)
    return line.substr(0, 200);
  size_t q = skip_space(line, colon + 1);
  if (q >= line.size() || line[q] != '"')
    return line.substr(0, 200);
  std::string out;
  for (size_t i = q + 1; i < line.size() && out.size() < 512; i++) {
    char c = line[i];
    if (c == '"')
      return out;
    if (c == '\\' && i + 1 < line.size())
      c = line[++i];
    out.push_back(c);
  }
  return out;
}

bool qmp_add_dbus_client(const std::string &path, int timeout_ms, int cancel_fd,
                         UniqueFd *dbus_end, std::string *error) {
  static std::atomic<unsigned> counter{0};
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;

  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    *error = "QMP socket path '" + path + "' is empty or too long for a UNIX socket";
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock) {
    *error = std::string("socket() failed: ") + g_strerror(errno);
    return false;
  }
  /* connect() on a local socket completes or fails at once (EAGAIN when the
   * backlog is full, which we report like a refused connection). */
  if (connect(sock.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof addr) != 0) {
    *error = "cannot connect to QMP socket '" + path + "': " + g_strerror(errno) +
             " (is QEMU running with -qmp unix:" + path + ",server=on,wait=off?)";
    return false;
  }
  QmpConnection qmp(std::move(sock), deadline, cancel_fd);

  std::string line;
  if (!qmp.read_line(&line, error))
    return false;
  if (qmp_classify(line) != QmpLine::Greeting) {
    *error = "'" + path + "' did not greet like QMP: " + line.substr(0, 200);
    return false;
  }
  if (!qmp.send("{\"execute\": \"qmp_capabilities\"}\r\n", -1, error) ||
      !qmp.read_reply("qmp_capabilities", error))
    return false;

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    *error = std::string("socketpair() failed: ") + g_strerror(errno);
    return false;
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  GCharPtr fdname(g_strdup_printf("gstvmdisplay-%d-%u", int(getpid()), counter++));
  std::string getfd = std::string("{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"") +
                      fdname.get() + "\"}}\r\n";
  if (!qmp.send(getfd, theirs.get(), error) || !qmp.read_reply("getfd", error))
    return false;
  theirs.reset();
  std::string add = std::string(
                        "{\"execute\": \"add_client\", \"arguments\": {\"protocol\": "
                        "\"@dbus-display\", \"fdname\": \"") +
                    fdname.get() + "\"}}\r\n";
  if (!qmp.send(add, -1, error) || !qmp.read_reply("add_client", error))
    return false;
  *dbus_end = std::move(ours);
  return true;
}

}  // namespace vmd
