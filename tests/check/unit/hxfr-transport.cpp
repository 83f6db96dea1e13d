/* Unit: HXFR transports: address parsing for every scheme, UNIX and TCP
 * loopback round trips, socket file mode and stale-file handling, timeouts
 * and cancellation, a character device (a pty stands in for virtio-serial). */
#include "hxfr-transport.h"

#include <fcntl.h>
#include <gst/check/gstcheck.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

namespace hxfr = vmd::hxfr;
using hxfr::Address;
using hxfr::Io;
using hxfr::TransportKind;

namespace {

std::string tmp_dir() {
  gchar *d = g_dir_make_tmp("hxfr-transport-XXXXXX", nullptr);
  std::string s = d;
  g_free(d);
  return s;
}

/* Accepts one client and echoes what it gets until it closes. */
void echo_server(hxfr::Listener *l) {
  std::string err;
  auto c = l->accept(5000, -1, &err);
  if (!c)
    return;
  char buf[65536];
  for (;;) {
    size_t got;
    if (c->recv_some(buf, sizeof buf, &got, 5000) != Io::Ok)
      return;
    if (c->send_all(buf, got, 5000) != Io::Ok)
      return;
  }
}

void round_trip(const Address &server_addr, Address client_addr) {
  std::string err;
  auto l = hxfr::Listener::listen(server_addr, &err);
  fail_unless(l != nullptr, "%s", err.c_str());
  if (client_addr.kind == TransportKind::Tcp && client_addr.tcp_port == 0)
    client_addr.tcp_port = l->bound_tcp_port();
  std::thread server(echo_server, l.get());
  auto c = hxfr::connect_to(client_addr, 2000, -1, &err);
  fail_unless(c != nullptr, "%s", err.c_str());
  /* 1 MiB through the echo, in one send: partial writes are handled. */
  std::string out(1 << 20, '\0');
  for (size_t i = 0; i < out.size(); i++)
    out[i] = char(i * 31 + 7);
  std::string in(out.size(), '\0');
  std::thread writer([&] { fail_unless(c->send_all(out.data(), out.size(), 5000) == Io::Ok); });
  fail_unless(c->recv_all(&in[0], in.size(), 5000) == Io::Ok);
  writer.join();
  fail_unless(in == out);
  c.reset(); /* closing ends the echo thread */
  server.join();
}

}  // namespace

GST_START_TEST(test_parse) {
  Address a;
  std::string err;
  fail_unless(hxfr::parse_address("vsock://2:5000", false, &a, &err), "%s", err.c_str());
  fail_unless(a.kind == TransportKind::Vsock && a.cid == 2 && a.vsock_port == 5000 && !a.any_cid);
  fail_unless(hxfr::parse_address("vsock://-1:5000", true, &a, &err));
  fail_unless(a.any_cid && a.vsock_port == 5000);
  fail_if(hxfr::parse_address("vsock://-1:5000", false, &a, &err));
  fail_unless(strstr(err.c_str(), "server") != nullptr, "%s", err.c_str());
  fail_if(hxfr::parse_address("vsock://x:5000", false, &a, &err));
  fail_if(hxfr::parse_address("vsock://2:", false, &a, &err));
  fail_if(hxfr::parse_address("vsock://2:99999999999", false, &a, &err));
  fail_unless(hxfr::parse_address("tcp://10.0.2.2:15937", false, &a, &err));
  fail_unless(a.kind == TransportKind::Tcp && a.host == "10.0.2.2" && a.tcp_port == 15937);
  fail_unless(hxfr::parse_address("tcp://[::1]:15937", false, &a, &err));
  fail_unless(a.host == "::1");
  fail_if(hxfr::parse_address("tcp://host:0", false, &a, &err));
  fail_unless(hxfr::parse_address("tcp://127.0.0.1:0", true, &a, &err)); /* any port, for tests */
  fail_if(hxfr::parse_address("tcp://host:65536", false, &a, &err));
  fail_if(hxfr::parse_address("tcp://:80", false, &a, &err));
  fail_unless(hxfr::parse_address("unix:///run/helix.sock", true, &a, &err));
  fail_unless(a.kind == TransportKind::Unix && a.path == "/run/helix.sock");
  fail_if(hxfr::parse_address("unix://relative.sock", true, &a, &err));
  fail_if(hxfr::parse_address("unix:///" + std::string(200, 'x'), true, &a, &err));
  fail_unless(hxfr::parse_address("/dev/virtio-ports/org.helix.frame-export", false, &a, &err));
  fail_unless(a.kind == TransportKind::CharDevice);
  fail_if(hxfr::parse_address("/dev/virtio-ports/x", true, &a, &err));
  fail_if(hxfr::parse_address("http://x", false, &a, &err));
  fail_unless(strstr(err.c_str(), "vsock://CID:PORT") != nullptr);
  fail_if(hxfr::parse_address("", false, &a, &err));
}
GST_END_TEST;

GST_START_TEST(test_unix_round_trip_mode_and_stale_file) {
  std::string dir = tmp_dir();
  std::string path = dir + "/helix.sock";
  Address a;
  std::string err;
  fail_unless(hxfr::parse_address("unix://" + path, true, &a, &err));
  /* A stale socket file (nobody listening) is replaced. */
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    fail_unless(bind(fd, reinterpret_cast<sockaddr *>(&sun), sizeof sun) == 0);
    close(fd);
  }
  {
    auto l = hxfr::Listener::listen(a, &err);
    fail_unless(l != nullptr, "stale file not replaced: %s", err.c_str());
    struct stat st;
    fail_unless(stat(path.c_str(), &st) == 0);
    fail_unless_equals_int(st.st_mode & 0777, 0600);
    /* A live one is not. */
    auto second = hxfr::Listener::listen(a, &err);
    fail_unless(second == nullptr);
    fail_unless(strstr(err.c_str(), "another server") != nullptr, "%s", err.c_str());
  }
  /* The listener removed its file. */
  fail_unless(access(path.c_str(), F_OK) != 0);
  /* A regular file is never deleted. */
  fail_unless(g_file_set_contents(path.c_str(), "keep", -1, nullptr));
  fail_unless(hxfr::Listener::listen(a, &err) == nullptr);
  fail_unless(strstr(err.c_str(), "not a socket") != nullptr, "%s", err.c_str());
  unlink(path.c_str());
  round_trip(a, a);
  rmdir(dir.c_str());
}
GST_END_TEST;

GST_START_TEST(test_tcp_round_trip) {
  Address server, client;
  std::string err;
  fail_unless(hxfr::parse_address("tcp://127.0.0.1:0", true, &server, &err));
  fail_unless(hxfr::parse_address("tcp://127.0.0.1:1", false, &client, &err));
  client.tcp_port = 0; /* filled with the bound port */
  round_trip(server, client);
}
GST_END_TEST;

GST_START_TEST(test_timeouts_and_cancel) {
  Address server;
  std::string err;
  fail_unless(hxfr::parse_address("tcp://127.0.0.1:0", true, &server, &err));
  auto l = hxfr::Listener::listen(server, &err);
  fail_unless(l != nullptr);
  /* accept times out */
  int64_t t0 = g_get_monotonic_time();
  fail_unless(l->accept(200, -1, &err) == nullptr);
  fail_unless(g_get_monotonic_time() - t0 >= 190000);
  /* A peer that never answers: recv times out within its bound. */
  Address client = server;
  client.tcp_port = l->bound_tcp_port();
  auto c = hxfr::connect_to(client, 2000, -1, &err);
  fail_unless(c != nullptr, "%s", err.c_str());
  auto peer = l->accept(2000, -1, &err);
  fail_unless(peer != nullptr);
  char buf[16];
  size_t got;
  t0 = g_get_monotonic_time();
  fail_unless(c->recv_some(buf, sizeof buf, &got, 300) == Io::Timeout);
  int64_t took = g_get_monotonic_time() - t0;
  fail_unless(took >= 290000 && took < 1500000, "took %" G_GINT64_FORMAT, took);
  /* Cancel wakes a blocked reader at once. */
  int pipefd[2];
  fail_unless(pipe(pipefd) == 0);
  std::thread canceller([&] {
    g_usleep(100000);
    fail_unless(write(pipefd[1], "x", 1) == 1);
  });
  t0 = g_get_monotonic_time();
  fail_unless(c->recv_some(buf, sizeof buf, &got, 10000, pipefd[0]) == Io::Cancelled);
  fail_unless(g_get_monotonic_time() - t0 < 2000000);
  canceller.join();
  close(pipefd[0]);
  close(pipefd[1]);
  /* The peer closes: Closed, not an error or a hang. */
  peer.reset();
  fail_unless(c->recv_some(buf, sizeof buf, &got, 2000) == Io::Closed);
  /* Nobody listening: refused quickly, with the address in the message. */
  l.reset();
  t0 = g_get_monotonic_time();
  fail_unless(hxfr::connect_to(client, 2000, -1, &err) == nullptr);
  fail_unless(strstr(err.c_str(), "127.0.0.1") != nullptr, "%s", err.c_str());
  fail_unless(g_get_monotonic_time() - t0 < 1000000);
}
GST_END_TEST;

/* send_all_while_read: a slow but reading peer gets the whole message however long it takes
 * (send_all's total deadline would fail it); a peer that stops reading fails it within the
 * idle bound. */
GST_START_TEST(test_send_while_read) {
  int sv[2];
  fail_unless(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  hxfr::Connection writer(vmd::UniqueFd(sv[0]), true, "writer");
  hxfr::Connection reader(vmd::UniqueFd(sv[1]), true, "reader");
  std::string msg(192 * 1024, 'x');
  std::atomic<size_t> read_total{0};
  std::atomic<bool> stop_reading{false};
  /* 8 KiB every 40 ms: the message takes about 1 s, far over the 300 ms bound. */
  std::thread slow([&] {
    char buf[8192];
    while (!stop_reading && read_total < msg.size()) {
      size_t got = 0;
      if (reader.recv_some(buf, sizeof buf, &got, 2000) != Io::Ok)
        return;
      read_total += got;
      g_usleep(40 * 1000);
    }
  });
  int64_t t0 = g_get_monotonic_time();
  fail_unless_equals_int(int(writer.send_all_while_read(msg.data(), msg.size(), 300)), int(Io::Ok));
  const int64_t took = g_get_monotonic_time() - t0;
  slow.join();
  fail_unless(took > 300000, "the slow reader was not slow (%" G_GINT64_FORMAT " us)", took);
  while (read_total < msg.size()) { /* the last bytes the writer left in the socket */
    char buf[8192];
    size_t got = 0;
    fail_unless(reader.recv_some(buf, sizeof buf, &got, 2000) == Io::Ok);
    read_total += got;
  }
  fail_unless_equals_uint64(read_total.load(), msg.size());
  /* The same with send_all: its 300 ms cover the whole message, so it times out. */
  read_total = 0;
  std::thread slow2([&] {
    char buf[8192];
    while (!stop_reading) {
      size_t got = 0;
      if (reader.recv_some(buf, sizeof buf, &got, 200) == Io::Ok)
        read_total += got;
      g_usleep(40 * 1000);
    }
  });
  fail_unless_equals_int(int(writer.send_all(msg.data(), msg.size(), 300)), int(Io::Timeout));
  stop_reading = true;
  slow2.join();
  /* Nobody reads: the idle bound ends it. */
  t0 = g_get_monotonic_time();
  fail_unless_equals_int(int(writer.send_all_while_read(msg.data(), msg.size(), 300)),
                         int(Io::Timeout));
  const int64_t idle_took = g_get_monotonic_time() - t0;
  fail_unless(idle_took >= 290000 && idle_took < 2000000, "took %" G_GINT64_FORMAT, idle_took);
}
GST_END_TEST;

/* The iovec form: pieces arrive whole and in order as one stream, to a slow reader too. */
GST_START_TEST(test_send_while_read_pieces) {
  int sv[2];
  fail_unless(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  hxfr::Connection writer(vmd::UniqueFd(sv[0]), true, "writer");
  hxfr::Connection reader(vmd::UniqueFd(sv[1]), true, "reader");
  std::string head(37, 'h'), body(100 * 1024, 'b');
  body[0] = 'B';
  body.back() = 'E';
  std::string got_all;
  std::thread slow([&] {
    char buf[8192];
    while (got_all.size() < head.size() + body.size()) {
      size_t got = 0;
      if (reader.recv_some(buf, sizeof buf, &got, 2000) != Io::Ok)
        return;
      got_all.append(buf, got);
      g_usleep(10 * 1000);
    }
  });
  const struct iovec iov[3] = {{head.data(), head.size()}, {nullptr, 0}, {body.data(), body.size()}};
  fail_unless_equals_int(int(writer.send_all_while_read(iov, 3, 300)), int(Io::Ok));
  slow.join();
  fail_unless(got_all == head + body, "%zu bytes arrived, not the pieces in order", got_all.size());
}
GST_END_TEST;

GST_START_TEST(test_vsock_without_transport) {
  /* This machine has no vsock loopback: connecting fails with a clear
   * message and does not hang. */
  Address a;
  std::string err;
  fail_unless(hxfr::parse_address("vsock://2:5000", false, &a, &err));
  int64_t t0 = g_get_monotonic_time();
  auto c = hxfr::connect_to(a, 1000, -1, &err);
  if (c) {
    GST_INFO("a vsock peer answered on CID 2 port 5000");
    return;
  }
  fail_unless(strstr(err.c_str(), "vsock") != nullptr, "%s", err.c_str());
  fail_unless(g_get_monotonic_time() - t0 < 3000000);
}
GST_END_TEST;

GST_START_TEST(test_char_device) {
  /* A pty slave is a character device, as /dev/virtio-ports/NAME is. */
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  fail_unless(master >= 0);
  fail_unless(grantpt(master) == 0 && unlockpt(master) == 0);
  std::string slave = ptsname(master);
  Address a;
  std::string err;
  fail_unless(hxfr::parse_address(slave, false, &a, &err), "%s", err.c_str());
  auto c = hxfr::connect_to(a, 1000, -1, &err);
  fail_unless(c != nullptr, "%s", err.c_str());
  /* Raw mode on the slave so bytes pass unchanged. */
  struct termios tio;
  fail_unless(tcgetattr(c->fd(), &tio) == 0);
  cfmakeraw(&tio);
  fail_unless(tcsetattr(c->fd(), TCSANOW, &tio) == 0);
  const char msg[] = "HXFR\x01\x02";
  fail_unless(c->send_all(msg, sizeof msg, 1000) == Io::Ok);
  char buf[sizeof msg] = {};
  size_t have = 0;
  while (have < sizeof msg) {
    ssize_t n = read(master, buf + have, sizeof msg - have);
    fail_unless(n > 0);
    have += size_t(n);
  }
  fail_unless(std::memcmp(buf, msg, sizeof msg) == 0);
  close(master);
  /* Not a character device: refused. */
  fail_unless(hxfr::parse_address("/etc/hostname", false, &a, &err));
  fail_unless(hxfr::connect_to(a, 1000, -1, &err) == nullptr);
}
GST_END_TEST;

static Suite *hxfr_transport_suite() {
  Suite *s = suite_create("hxfr-transport");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_parse);
  tcase_add_test(tc, test_unix_round_trip_mode_and_stale_file);
  tcase_add_test(tc, test_tcp_round_trip);
  tcase_add_test(tc, test_timeouts_and_cancel);
  tcase_add_test(tc, test_send_while_read);
  tcase_add_test(tc, test_send_while_read_pieces);
  tcase_add_test(tc, test_vsock_without_transport);
  tcase_add_test(tc, test_char_device);
  return s;
}

GST_CHECK_MAIN(hxfr_transport);
