/* Unit: the QMP client against a scripted peer on a real UNIX socket. */
#include "qmp-client.h"

#include <gst/check/gstcheck.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>

using vmd::UniqueFd;

namespace {

/* A one-connection QMP peer whose behaviour is a function of the client fd. */
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::function<void(int)> script) {
    dir_ = g_dir_make_tmp("qmp-test-XXXXXX", nullptr);
    path_ = std::string(dir_) + "/qmp.sock";
    listener_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    fail_unless(bind(listener_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    fail_unless(listen(listener_.get(), 1) == 0);
    thread_ = std::thread([this, script] {
      UniqueFd client(accept(listener_.get(), nullptr, nullptr));
      if (client)
        script(client.get());
    });
  }
  ~ScriptedPeer() {
    shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
    unlink(path_.c_str());
    rmdir(dir_);
    g_free(dir_);
  }
  const std::string &path() const { return path_; }

 private:
  gchar *dir_;
  std::string path_;
  UniqueFd listener_;
  std::thread thread_;
};

void say(int fd, const std::string &s) { fail_unless(write(fd, s.data(), s.size()) == ssize_t(s.size())); }

/* Reads one line; returns any fd passed with it in *passed. */
std::string hear(int fd, int *passed = nullptr) {
  std::string line;
  char c;
  for (;;) {
    struct iovec iov = {&c, 1};
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } control;
    struct msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.buf;
    mh.msg_controllen = sizeof control.buf;
    ssize_t n = recvmsg(fd, &mh, 0);
    if (n <= 0)
      return line;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_type == SCM_RIGHTS && passed)
        std::memcpy(passed, CMSG_DATA(cm), sizeof(int));
    }
    if (c == '\n')
      return line;
    line.push_back(c);
  }
}

const char kGreeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "
    "\"capabilities\": [\"oob\"]}}\r\n";
const char kEvent[] =
    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"NIC_RX_FILTER_CHANGED\"}\r\n";

}  // namespace

GST_START_TEST(test_classify) {
  fail_unless(vmd::qmp_classify("{\"QMP\": {}}") == vmd::QmpLine::Greeting);
  fail_unless(vmd::qmp_classify("  { \"return\": {}}") == vmd::QmpLine::Return);
  fail_unless(vmd::qmp_classify("{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}") ==
              vmd::QmpLine::Error);
  fail_unless(vmd::qmp_classify(kEvent) == vmd::QmpLine::Event);
  fail_unless(vmd::qmp_classify("{\"event\": \"STOP\"}") == vmd::QmpLine::Event);
  fail_unless(vmd::qmp_classify("") == vmd::QmpLine::Invalid);
  fail_unless(vmd::qmp_classify("[1]") == vmd::QmpLine::Invalid);
  fail_unless(vmd::qmp_classify("{\"retur") == vmd::QmpLine::Invalid);
  const std::string desc =
      vmd::qmp_error_desc("{\"error\": {\"class\": \"GenericError\", \"desc\": \"No \\\"fd\\\" named x\"}}");
  fail_unless_equals_string(desc.c_str(), "No \"fd\" named x");
}
GST_END_TEST;

GST_START_TEST(test_add_client_success) {
  int received = -1;
  std::string commands;
  {
    ScriptedPeer peer([&](int fd) {
      say(fd, kGreeting);
      commands += hear(fd) + "\n";
      say(fd, kEvent);
      say(fd, "{\"return\": {}}\r\n");
      commands += hear(fd, &received) + "\n";
      say(fd, kEvent);
      say(fd, "{\"return\": {}}\r\n");
      commands += hear(fd) + "\n";
      say(fd, "{\"return\": {}}\r\n");
    });
    UniqueFd ours;
    std::string error;
    fail_unless(vmd::qmp_add_dbus_client(peer.path(), 2000, -1, &ours, &error), "%s", error.c_str());
    fail_unless(ours.get() >= 0);
    /* The fd QEMU got is the other end of ours: bytes pass through. */
    fail_unless(received >= 0);
    fail_unless(write(ours.get(), "x", 1) == 1);
    char c = 0;
    fail_unless(read(received, &c, 1) == 1 && c == 'x');
    close(received);
  }
  fail_unless(strstr(commands.c_str(), "qmp_capabilities") != nullptr);
  fail_unless(strstr(commands.c_str(), "\"getfd\"") != nullptr);
  fail_unless(strstr(commands.c_str(), "\"add_client\"") != nullptr);
  fail_unless(strstr(commands.c_str(), "@dbus-display") != nullptr, "%s", commands.c_str());
}
GST_END_TEST;

GST_START_TEST(test_add_client_refused) {
  ScriptedPeer peer([&](int fd) {
    say(fd, kGreeting);
    hear(fd);
    say(fd, "{\"return\": {}}\r\n");
    int passed = -1;
    hear(fd, &passed);
    if (passed >= 0)
      close(passed);
    say(fd, "{\"return\": {}}\r\n");
    hear(fd);
    say(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"dbus display is not in p2p mode\"}}\r\n");
  });
  UniqueFd ours;
  std::string error;
  fail_if(vmd::qmp_add_dbus_client(peer.path(), 2000, -1, &ours, &error));
  fail_unless(strstr(error.c_str(), "add_client") && strstr(error.c_str(), "not in p2p mode"),
              "%s", error.c_str());
  fail_unless(ours.get() < 0);
}
GST_END_TEST;

GST_START_TEST(test_not_qmp) {
  ScriptedPeer peer([&](int fd) { say(fd, "SSH-2.0-OpenSSH_9.2\r\n"); });
  UniqueFd ours;
  std::string error;
  fail_if(vmd::qmp_add_dbus_client(peer.path(), 2000, -1, &ours, &error));
  fail_unless(strstr(error.c_str(), "did not greet like QMP") != nullptr, "%s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_silent_peer_times_out) {
  ScriptedPeer peer([&](int fd) {
    char buf[64];
    /* Accept, then say nothing until the client gives up. */
    while (read(fd, buf, sizeof buf) > 0) {
    }
  });
  UniqueFd ours;
  std::string error;
  int64_t t0 = g_get_monotonic_time();
  fail_if(vmd::qmp_add_dbus_client(peer.path(), 300, -1, &ours, &error));
  int64_t took = g_get_monotonic_time() - t0;
  fail_unless(took >= 290000 && took < 2000000, "took %" G_GINT64_FORMAT " us", took);
  fail_unless(strstr(error.c_str(), "in time") != nullptr, "%s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_cancel_is_prompt) {
  ScriptedPeer peer([&](int fd) {
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
  });
  int pipefd[2];
  fail_unless(pipe(pipefd) == 0);
  std::thread canceller([&] {
    g_usleep(100000);
    fail_unless(write(pipefd[1], "x", 1) == 1);
  });
  UniqueFd ours;
  std::string error;
  int64_t t0 = g_get_monotonic_time();
  fail_if(vmd::qmp_add_dbus_client(peer.path(), 5000, pipefd[0], &ours, &error));
  int64_t took = g_get_monotonic_time() - t0;
  canceller.join();
  close(pipefd[0]);
  close(pipefd[1]);
  fail_unless(took < 1000000, "cancel took %" G_GINT64_FORMAT " us", took);
  fail_unless_equals_string(error.c_str(), "cancelled");
}
GST_END_TEST;

GST_START_TEST(test_endless_line) {
  ScriptedPeer peer([&](int fd) {
    std::string junk(70 * 1024, 'a');
    send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  });
  UniqueFd ours;
  std::string error;
  fail_if(vmd::qmp_add_dbus_client(peer.path(), 2000, -1, &ours, &error));
  fail_unless(strstr(error.c_str(), "64 KiB") != nullptr, "%s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_no_socket) {
  UniqueFd ours;
  std::string error;
  fail_if(vmd::qmp_add_dbus_client("/nonexistent/qmp.sock", 500, -1, &ours, &error));
  fail_unless(strstr(error.c_str(), "/nonexistent/qmp.sock") != nullptr, "%s", error.c_str());
  fail_if(vmd::qmp_add_dbus_client(std::string(200, 'x'), 500, -1, &ours, &error));
  fail_unless(strstr(error.c_str(), "too long") != nullptr, "%s", error.c_str());
}
GST_END_TEST;

static Suite *qmp_client_suite() {
  Suite *s = suite_create("qmp-client");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_classify);
  tcase_add_test(tc, test_add_client_success);
  tcase_add_test(tc, test_add_client_refused);
  tcase_add_test(tc, test_not_qmp);
  tcase_add_test(tc, test_silent_peer_times_out);
  tcase_add_test(tc, test_cancel_is_prompt);
  tcase_add_test(tc, test_endless_line);
  tcase_add_test(tc, test_no_socket);
  return s;
}

GST_CHECK_MAIN(qmp_client);
