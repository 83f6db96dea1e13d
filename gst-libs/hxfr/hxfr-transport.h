/* gst-vmdisplay: the byte streams HXFR runs over, behind one interface.
 *
 * Addresses are URIs: vsock://CID:PORT (server: vsock://-1:PORT), tcp://HOST:PORT,
 * unix:///PATH, or a plain character-device path (/dev/virtio-ports/NAME,
 * client side only). Every call that can wait takes a timeout and an
 * optional cancel fd (readable = give up), so no thread ever blocks forever
 * on a peer. No GStreamer here.
 */
#pragma once

#include "unique-fd.h"

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vmd::hxfr {

enum class TransportKind { Vsock, Tcp, Unix, CharDevice };

struct Address {
  TransportKind kind = TransportKind::Tcp;
  std::string host;       /* tcp */
  std::string path;       /* unix, char device */
  uint32_t cid = 0;       /* vsock; any_cid for a server's -1 */
  bool any_cid = false;
  uint16_t tcp_port = 0;
  uint32_t vsock_port = 0;
  std::string text;       /* as given, for messages */
};

/* server: the address is to listen on (vsock -1 allowed, char devices not). */
bool parse_address(const std::string &uri, bool server, Address *out, std::string *error);

enum class Io { Ok, Timeout, Closed, Cancelled, Error };
const char *io_name(Io io);

/* A connected stream: a socket or a character device, non-blocking inside. */
class Connection {
 public:
  Connection(vmd::UniqueFd fd, bool is_socket, std::string peer);
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  /* Writes every byte of the iovecs, or fails once timeout_ms passed. */
  Io send_all(const struct iovec *iov, int iovcnt, int timeout_ms, int cancel_fd = -1);
  Io send_all(const void *data, size_t len, int timeout_ms, int cancel_fd = -1);
  /* Writes every byte, failing only when the peer took none for idle_timeout_ms: a large
   * message to a slow but reading peer takes as long as it takes. */
  Io send_all_while_read(const void *data, size_t len, int idle_timeout_ms, int cancel_fd = -1);
  /* The same for pieces written as one message (writev): a header and a payload held apart. */
  Io send_all_while_read(const struct iovec *iov, int iovcnt, int idle_timeout_ms,
                         int cancel_fd = -1);
  /* Reads what is there (at least one byte), waiting up to timeout_ms.
   * cap must not be 0 (a zero-byte read cannot tell data from a close). */
  Io recv_some(void *buf, size_t cap, size_t *got, int timeout_ms, int cancel_fd = -1);
  /* Reads exactly len bytes within timeout_ms in total. */
  Io recv_all(void *buf, size_t len, int timeout_ms, int cancel_fd = -1);

  int fd() const { return fd_.get(); }
  const std::string &peer() const { return peer_; }
  std::string last_error() const { return last_error_; }
  /* Sockets only: wakes a reader or writer blocked on this connection in
   * another thread. A character device cannot be woken this way: pass a
   * cancel fd to the blocking calls instead. */
  void shutdown();

 private:
  Io wait(short events, int64_t deadline_us, int cancel_fd);
  /* idle: the deadline restarts after every write that took bytes. */
  Io send_iov(const struct iovec *iov, int iovcnt, int timeout_ms, int cancel_fd, bool idle);

  vmd::UniqueFd fd_;
  bool is_socket_;
  std::string peer_;
  std::string last_error_;
};

/* Connects within timeout_ms (TCP_NODELAY on TCP). */
std::unique_ptr<Connection> connect_to(const Address &address, int timeout_ms, int cancel_fd,
                                       std::string *error);

class Listener {
 public:
  /* UNIX sockets are created mode 0600; a stale socket file (nobody
   * accepting on it) is replaced, a live one or a non-socket file is an
   * error. */
  static std::unique_ptr<Listener> listen(const Address &address, std::string *error);
  ~Listener();
  Listener(const Listener &) = delete;
  Listener &operator=(const Listener &) = delete;

  /* A new client, or nullptr on timeout / cancel / error: *status (when given) says which
   * (Io::Ok with a client), *error describes it. */
  std::unique_ptr<Connection> accept(int timeout_ms, int cancel_fd, std::string *error,
                                     Io *status = nullptr);
  int fd() const { return fd_.get(); }
  /* The TCP port actually bound (for tcp://HOST:0 in tests). */
  uint16_t bound_tcp_port() const;

 private:
  Listener(vmd::UniqueFd fd, Address address) : fd_(std::move(fd)), address_(std::move(address)) {}
  vmd::UniqueFd fd_;
  Address address_;
};

}  // namespace vmd::hxfr
