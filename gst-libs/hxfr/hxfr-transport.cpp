/* gst-vmdisplay: HXFR transports (vsock, TCP, UNIX sockets, character devices). */
#include "hxfr-transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <cstring>
#include <vector>

namespace vmd::hxfr {
namespace {

/* Plain POSIX, no GLib: the same code runs in the test VM's static guest
 * programs. */
int64_t now_us() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::string error_string(int err) {
  char buf[256];
  /* GNU strerror_r: returns the message, maybe not in buf. */
  return strerror_r(err, buf, sizeof buf);
}

std::string errno_text(const std::string &what) { return what + ": " + error_string(errno); }

bool parse_u32(const std::string &s, uint64_t max, uint64_t *out) {
  if (s.empty() || s.size() > 10)
    return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > max)
    return false;
  *out = v;
  return true;
}

/* Splits "HOST:PORT" at the last colon; HOST may be "[v6]". */
bool split_host_port(const std::string &rest, std::string *host, std::string *port) {
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos)
    return false;
  *host = rest.substr(0, colon);
  *port = rest.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  return !host->empty();
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0)
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Polls fd for events and cancel_fd for reading until deadline_us. */
Io poll_until(int fd, short events, int64_t deadline_us, int cancel_fd) {
  for (;;) {
    int64_t left_ms = (deadline_us - now_us() + 999) / 1000;
    if (left_ms <= 0)
      return Io::Timeout;
    struct pollfd pfd[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int r = poll(pfd, cancel_fd >= 0 ? 2 : 1, int(std::min<int64_t>(left_ms, INT_MAX)));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return Io::Error;
    }
    if (r == 0)
      continue; /* re-check the deadline */
    if (cancel_fd >= 0 && pfd[1].revents)
      return Io::Cancelled;
    return Io::Ok; /* readable/writable, or HUP/ERR: the next call says which */
  }
}

/* Non-blocking connect with a deadline. */
bool finish_connect(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms,
                    int cancel_fd, const std::string &what, std::string *error) {
  if (connect(fd, sa, len) == 0)
    return true;
  if (errno == EAGAIN && sa->sa_family == AF_UNIX) {
    /* Not "in progress" for a UNIX socket: the listener's queue is full, nothing connected. */
    *error = errno_text("cannot connect to " + what) +
             " (its listen queue is full: the host accepts no more connections now)";
    return false;
  }
  if (errno != EINPROGRESS && errno != EAGAIN) {
    *error = errno_text("cannot connect to " + what);
    return false;
  }
  Io io = poll_until(fd, POLLOUT, now_us() + int64_t(timeout_ms) * 1000, cancel_fd);
  if (io != Io::Ok) {
    *error = "cannot connect to " + what + ": " +
             (io == Io::Timeout ? "no answer within " + std::to_string(timeout_ms) + " ms"
                                : std::string(io_name(io)));
    return false;
  }
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err) {
    *error = "cannot connect to " + what + ": " + error_string(err);
    return false;
  }
  /* Writable with no error is not proof of a connection (a socket that never connected is
   * writable too): ask for the peer. */
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &plen) != 0) {
    *error = errno_text("cannot connect to " + what);
    return false;
  }
  return true;
}

bool fill_unix(const std::string &path, struct sockaddr_un *sun, std::string *error) {
  std::memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun->sun_path) {
    *error = "UNIX socket path '" + path + "' is empty or longer than " +
             std::to_string(sizeof sun->sun_path - 1) + " bytes";
    return false;
  }
  std::memcpy(sun->sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

const char *io_name(Io io) {
  switch (io) {
    case Io::Ok:
      return "ok";
    case Io::Timeout:
      return "timed out";
    case Io::Closed:
      return "closed by the peer";
    case Io::Cancelled:
      return "cancelled";
    case Io::Error:
      return "I/O error";
  }
  return "?";
}

bool parse_address(const std::string &uri, bool server, Address *out, std::string *error) {
  Address a;
  a.text = uri;
  auto bad = [&](const std::string &why) {
    *error = "address '" + uri + "': " + why +
             " (expected vsock://CID:PORT, tcp://HOST:PORT, unix:///PATH or a device path)";
    return false;
  };
  if (uri.rfind("vsock://", 0) == 0) {
    std::string cid, port;
    if (!split_host_port(uri.substr(8), &cid, &port))
      return bad("no CID:PORT");
    a.kind = TransportKind::Vsock;
    uint64_t v;
    if (cid == "-1") {
      if (!server)
        return bad("CID -1 (any) only makes sense for a server");
      a.any_cid = true;
    } else if (parse_u32(cid, 0xffffffffu, &v)) {
      a.cid = uint32_t(v);
    } else {
      return bad("CID '" + cid + "' is not a number");
    }
    if (!parse_u32(port, 0xffffffffu, &v))
      return bad("port '" + port + "' is not a number");
    a.vsock_port = uint32_t(v);
  } else if (uri.rfind("tcp://", 0) == 0) {
    std::string host, port;
    if (!split_host_port(uri.substr(6), &host, &port))
      return bad("no HOST:PORT");
    uint64_t v;
    if (!parse_u32(port, 65535, &v) || (v == 0 && !server))
      return bad("port '" + port + "' is not between 1 and 65535");
    a.kind = TransportKind::Tcp;
    a.host = host;
    a.tcp_port = uint16_t(v);
  } else if (uri.rfind("unix://", 0) == 0) {
    a.kind = TransportKind::Unix;
    a.path = uri.substr(7);
    if (a.path.empty() || a.path[0] != '/')
      return bad("a UNIX socket path must be absolute (unix:///run/x.sock)");
    struct sockaddr_un sun;
    if (!fill_unix(a.path, &sun, error))
      return false;
  } else if (!uri.empty() && uri[0] == '/') {
    if (server)
      return bad("a character device can only be opened by the guest side (client)");
    a.kind = TransportKind::CharDevice;
    a.path = uri;
  } else {
    return bad("unknown scheme");
  }
  *out = a;
  return true;
}

Connection::Connection(vmd::UniqueFd fd, bool is_socket, std::string peer)
    : fd_(std::move(fd)), is_socket_(is_socket), peer_(std::move(peer)) {
  set_nonblocking(fd_.get());
}

Io Connection::wait(short events, int64_t deadline_us, int cancel_fd) {
  Io io = poll_until(fd_.get(), events, deadline_us, cancel_fd);
  if (io == Io::Error)
    last_error_ = errno_text("poll");
  return io;
}

Io Connection::send_all(const struct iovec *iov, int iovcnt, int timeout_ms, int cancel_fd) {
  return send_iov(iov, iovcnt, timeout_ms, cancel_fd, false);
}

Io Connection::send_all_while_read(const void *data, size_t len, int idle_timeout_ms,
                                   int cancel_fd) {
  struct iovec one = {const_cast<void *>(data), len};
  return send_iov(&one, 1, idle_timeout_ms, cancel_fd, true);
}

Io Connection::send_all_while_read(const struct iovec *iov, int iovcnt, int idle_timeout_ms,
                                   int cancel_fd) {
  return send_iov(iov, iovcnt, idle_timeout_ms, cancel_fd, true);
}

Io Connection::send_iov(const struct iovec *iov_in, int iovcnt, int timeout_ms, int cancel_fd,
                        bool idle) {
  int64_t deadline = now_us() + int64_t(timeout_ms) * 1000;
  std::vector<struct iovec> iov(iov_in, iov_in + iovcnt);
  size_t first = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      first++;
      continue;
    }
    ssize_t n;
    if (is_socket_) {
      struct msghdr mh = {};
      mh.msg_iov = iov.data() + first;
      mh.msg_iovlen = iov.size() - first;
      n = sendmsg(fd_.get(), &mh, MSG_NOSIGNAL);
    } else {
      n = writev(fd_.get(), iov.data() + first, int(iov.size() - first));
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        Io io = wait(POLLOUT, deadline, cancel_fd);
        if (io != Io::Ok)
          return io;
        continue;
      }
      last_error_ = errno_text("send to " + peer_);
      return errno == EPIPE || errno == ECONNRESET ? Io::Closed : Io::Error;
    }
    size_t done = size_t(n);
    if (idle && done > 0)
      deadline = now_us() + int64_t(timeout_ms) * 1000;
    while (done > 0 && first < iov.size()) {
      size_t take = std::min(done, iov[first].iov_len);
      iov[first].iov_base = static_cast<uint8_t *>(iov[first].iov_base) + take;
      iov[first].iov_len -= take;
      done -= take;
      if (iov[first].iov_len == 0)
        first++;
    }
  }
  return Io::Ok;
}

Io Connection::send_all(const void *data, size_t len, int timeout_ms, int cancel_fd) {
  struct iovec one = {const_cast<void *>(data), len};
  return send_all(&one, 1, timeout_ms, cancel_fd);
}

Io Connection::recv_some(void *buf, size_t cap, size_t *got, int timeout_ms, int cancel_fd) {
  const int64_t deadline = now_us() + int64_t(timeout_ms) * 1000;
  *got = 0;
  if (cap == 0) {
    last_error_ = "recv_some with an empty buffer";
    return Io::Error;
  }
  for (;;) {
    ssize_t n = is_socket_ ? recv(fd_.get(), buf, cap, 0) : read(fd_.get(), buf, cap);
    if (n > 0) {
      *got = size_t(n);
      return Io::Ok;
    }
    if (n == 0)
      return Io::Closed;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Io io = wait(POLLIN, deadline, cancel_fd);
      if (io != Io::Ok)
        return io;
      continue;
    }
    last_error_ = errno_text("receive from " + peer_);
    return errno == ECONNRESET ? Io::Closed : Io::Error;
  }
}

Io Connection::recv_all(void *buf, size_t len, int timeout_ms, int cancel_fd) {
  const int64_t deadline = now_us() + int64_t(timeout_ms) * 1000;
  size_t have = 0;
  while (have < len) {
    int left_ms = int(std::max<int64_t>(0, (deadline - now_us()) / 1000));
    size_t got = 0;
    Io io = recv_some(static_cast<uint8_t *>(buf) + have, len - have, &got, left_ms, cancel_fd);
    if (io != Io::Ok)
      return io;
    have += got;
  }
  return Io::Ok;
}

void Connection::shutdown() {
  if (is_socket_)
    ::shutdown(fd_.get(), SHUT_RDWR);
}

std::unique_ptr<Connection> connect_to(const Address &a, int timeout_ms, int cancel_fd,
                                       std::string *error) {
  switch (a.kind) {
    case TransportKind::Unix: {
      struct sockaddr_un sun;
      if (!fill_unix(a.path, &sun, error))
        return nullptr;
      vmd::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd) {
        *error = errno_text("socket(AF_UNIX)");
        return nullptr;
      }
      if (!finish_connect(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof sun, timeout_ms,
                          cancel_fd, a.text, error))
        return nullptr;
      return std::make_unique<Connection>(std::move(fd), true, a.text);
    }
    case TransportKind::Tcp: {
      struct addrinfo hints = {};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICSERV;
      struct addrinfo *res = nullptr;
      std::string port = std::to_string(a.tcp_port);
      int gai = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res);
      if (gai != 0) {
        *error = "cannot resolve '" + a.host + "': " + gai_strerror(gai);
        return nullptr;
      }
      std::string last = "no address for " + a.host;
      for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        vmd::UniqueFd fd(socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd)
          continue;
        set_nodelay(fd.get());
        if (finish_connect(fd.get(), ai->ai_addr, ai->ai_addrlen, timeout_ms, cancel_fd, a.text,
                           &last)) {
          freeaddrinfo(res);
          return std::make_unique<Connection>(std::move(fd), true, a.text);
        }
      }
      freeaddrinfo(res);
      *error = last;
      return nullptr;
    }
    case TransportKind::Vsock: {
      vmd::UniqueFd fd(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd) {
        *error = errno_text("socket(AF_VSOCK) (is the vsock transport loaded? in a guest: "
                            "vmw_vsock_virtio_transport)");
        return nullptr;
      }
      struct sockaddr_vm svm = {};
      svm.svm_family = AF_VSOCK;
      svm.svm_cid = a.cid;
      svm.svm_port = a.vsock_port;
      if (!finish_connect(fd.get(), reinterpret_cast<sockaddr *>(&svm), sizeof svm, timeout_ms,
                          cancel_fd, a.text, error))
        return nullptr;
      return std::make_unique<Connection>(std::move(fd), true, a.text);
    }
    case TransportKind::CharDevice: {
      vmd::UniqueFd fd(open(a.path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
      if (!fd) {
        *error = errno_text("cannot open " + a.path);
        return nullptr;
      }
      struct stat st;
      if (fstat(fd.get(), &st) != 0 || !S_ISCHR(st.st_mode)) {
        *error = a.path + " is not a character device (a virtio-serial port is "
                          "/dev/virtio-ports/NAME)";
        return nullptr;
      }
      return std::make_unique<Connection>(std::move(fd), false, a.text);
    }
  }
  *error = "unknown transport";
  return nullptr;
}

std::unique_ptr<Listener> Listener::listen(const Address &a, std::string *error) {
  vmd::UniqueFd fd;
  switch (a.kind) {
    case TransportKind::Unix: {
      struct sockaddr_un sun;
      if (!fill_unix(a.path, &sun, error))
        return nullptr;
      struct stat st;
      if (lstat(a.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
          *error = a.path + " exists and is not a socket; not replacing it";
          return nullptr;
        }
        /* A socket file: live if someone accepts on it, else stale. */
        vmd::UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe && connect(probe.get(), reinterpret_cast<sockaddr *>(&sun), sizeof sun) == 0) {
          *error = "another server is listening on " + a.path;
          return nullptr;
        }
        if (errno != ECONNREFUSED && errno != ENOENT) {
          *error = errno_text("cannot tell whether " + a.path + " is stale");
          return nullptr;
        }
        unlink(a.path.c_str());
      }
      fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      /* Owner only, before anyone can connect: listen() comes after chmod. */
      if (!fd || bind(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof sun) != 0 ||
          chmod(a.path.c_str(), 0600) != 0) {
        *error = errno_text("cannot create UNIX socket " + a.path);
        if (fd)
          unlink(a.path.c_str());
        return nullptr;
      }
      break;
    }
    case TransportKind::Tcp: {
      struct addrinfo hints = {};
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
      struct addrinfo *res = nullptr;
      std::string port = std::to_string(a.tcp_port);
      int gai = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res);
      if (gai != 0) {
        *error = "cannot resolve '" + a.host + "': " + gai_strerror(gai);
        return nullptr;
      }
      fd.reset(socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      int one = 1;
      bool ok = fd && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                bind(fd.get(), res->ai_addr, res->ai_addrlen) == 0;
      freeaddrinfo(res);
      if (!ok) {
        *error = errno_text("cannot bind " + a.text);
        return nullptr;
      }
      break;
    }
    case TransportKind::Vsock: {
      fd.reset(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      struct sockaddr_vm svm = {};
      svm.svm_family = AF_VSOCK;
      svm.svm_cid = a.any_cid ? VMADDR_CID_ANY : a.cid;
      svm.svm_port = a.vsock_port;
      if (!fd || bind(fd.get(), reinterpret_cast<sockaddr *>(&svm), sizeof svm) != 0) {
        *error = errno_text("cannot bind " + a.text + " (on the host: modprobe vhost_vsock)");
        return nullptr;
      }
      break;
    }
    case TransportKind::CharDevice:
      *error = "cannot listen on a character device";
      return nullptr;
  }
  if (::listen(fd.get(), 16) != 0) {
    *error = errno_text("cannot listen on " + a.text);
    if (a.kind == TransportKind::Unix)
      unlink(a.path.c_str());
    return nullptr;
  }
  return std::unique_ptr<Listener>(new Listener(std::move(fd), a));
}

Listener::~Listener() {
  if (address_.kind == TransportKind::Unix && fd_)
    unlink(address_.path.c_str());
}

uint16_t Listener::bound_tcp_port() const {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd_.get(), reinterpret_cast<sockaddr *>(&ss), &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
  return 0;
}

std::unique_ptr<Connection> Listener::accept(int timeout_ms, int cancel_fd, std::string *error,
                                             Io *status) {
  Io ignored;
  Io &st = status ? *status : ignored;
  st = Io::Ok;
  const int64_t deadline = now_us() + int64_t(timeout_ms) * 1000;
  for (;;) {
    vmd::UniqueFd client(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (client) {
      if (address_.kind == TransportKind::Tcp)
        set_nodelay(client.get());
      return std::make_unique<Connection>(std::move(client), true, address_.text + " client");
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = errno_text("accept on " + address_.text);
      st = Io::Error;
      return nullptr;
    }
    Io io = poll_until(fd_.get(), POLLIN, deadline, cancel_fd);
    if (io != Io::Ok) {
      *error = io_name(io);
      st = io;
      return nullptr;
    }
  }
}

}  // namespace vmd::hxfr
