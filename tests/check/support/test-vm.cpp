/* Test support: the bundled test VM under real QEMU. */
#include "test-vm.h"

#include <glib.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace vmtest {
namespace {

std::string env_or_empty(const char *name) {
  const char *v = g_getenv(name);
  return v ? v : "";
}

/* Waits for a child with a bound; true when it was reaped. */
bool reap(pid_t pid, int timeout_ms) {
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD))
      return true;
    if (g_get_monotonic_time() >= deadline)
      return false;
    g_usleep(10000);
  }
}

void stop_child(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  if (!reap(pid, 2000)) {
    kill(pid, SIGKILL);
    reap(pid, 5000);
  }
}

/* A private temporary directory, or "" (with error set) when none can be
 * made: g_dir_make_tmp() returns NULL then. */
std::string make_tmp_dir(const char *tmpl, std::string *error) {
  GError *err = nullptr;
  gchar *dir = g_dir_make_tmp(tmpl, &err);
  if (!dir) {
    *error = std::string("cannot create a temporary directory: ") + err->message;
    g_error_free(err);
    return "";
  }
  std::string s = dir;
  g_free(dir);
  return s;
}

void remove_dir(const std::string &dir) {
  if (dir.empty())
    return;
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  if (d) {
    while (const gchar *name = g_dir_read_name(d)) {
      gchar *path = g_build_filename(dir.c_str(), name, nullptr);
      g_unlink(path);
      g_free(path);
    }
    g_dir_close(d);
  }
  g_rmdir(dir.c_str());
}

/* In the child: die with the test. A test that fails under CK_FORK=no skips the destructors
 * that stop QEMU and dbus-daemon; orphaned, they would keep meson's output pipes open. */
void die_with_test(gpointer) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* envp: the child's whole environment, nullptr: ours. */
bool spawn(const std::vector<std::string> &argv, int stdout_fd, pid_t *pid, std::string *error,
           gchar **envp = nullptr) {
  std::vector<gchar *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<gchar *>(a.c_str()));
  args.push_back(nullptr);
  GError *err = nullptr;
  GPid child;
  gint fds_in[] = {-1, stdout_fd >= 0 ? stdout_fd : -1, -1};
  gboolean ok = g_spawn_async_with_pipes_and_fds(
      nullptr, args.data(), envp,
      GSpawnFlags(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH | G_SPAWN_STDIN_FROM_DEV_NULL),
      die_with_test, nullptr, fds_in[0], fds_in[1], fds_in[2], nullptr, nullptr, 0, &child, nullptr,
      nullptr, nullptr, &err);
  if (!ok) {
    *error = std::string("cannot start ") + argv[0] + ": " + err->message;
    g_error_free(err);
    return false;
  }
  *pid = child;
  return true;
}

/* The -L arguments for $VMD_QEMU_FIRMWARE. */
std::vector<std::string> firmware_args() {
  std::vector<std::string> out;
  if (env_or_empty("VMD_QEMU").empty())
    return out;
  gchar **dirs = g_strsplit(env_or_empty("VMD_QEMU_FIRMWARE").c_str(), ":", -1);
  for (gchar **d = dirs; *d; d++)
    if (**d)
      out.insert(out.end(), {"-L", *d});
  g_strfreev(dirs);
  return out;
}

/* Our environment plus what run-test-vm.sh needs to start qemu_binary(). */
gchar **qemu_environment() {
  gchar **envp = g_get_environ();
  envp = g_environ_setenv(envp, "QEMU", qemu_binary().c_str(), TRUE);
  const std::string modules = env_or_empty("VMD_QEMU_MODULE_DIR");
  if (!env_or_empty("VMD_QEMU").empty() && !modules.empty())
    envp = g_environ_setenv(envp, "QEMU_MODULE_DIR", modules.c_str(), TRUE);
  return envp;
}

}  // namespace

std::string qemu_binary() {
  const std::string own = env_or_empty("VMD_QEMU");
  return own.empty() ? "qemu-system-x86_64" : own;
}

std::string qemu_version() {
  static const std::string version = [] {
    gchar **envp = qemu_environment();
    const std::string bin = qemu_binary();
    const gchar *argv[] = {bin.c_str(), "--version", nullptr};
    gchar *out = nullptr;
    gint status = 0;
    std::string v;
    if (g_spawn_sync(nullptr, const_cast<gchar **>(argv), envp, G_SPAWN_SEARCH_PATH, nullptr,
                     nullptr, &out, nullptr, &status, nullptr) &&
        g_spawn_check_wait_status(status, nullptr) && out) {
      v = out;
      v = v.substr(0, v.find('\n'));
    }
    g_free(out);
    g_strfreev(envp);
    return v;
  }();
  return version;
}

bool qemu_at_least(int major, int minor) {
  const std::string v = qemu_version();
  const char *key = "version ";
  size_t at = v.find(key);
  int got_major = 0, got_minor = 0;
  if (at == std::string::npos || sscanf(v.c_str() + at + strlen(key), "%d.%d", &got_major, &got_minor) != 2)
    return false;
  return got_major > major || (got_major == major && got_minor >= minor);
}

int finish_suite(int failures) {
  if (failures == 0)
    return 0;
  fflush(stdout);
  fflush(stderr);
  _exit(1);
}

bool test_vm_available(std::string *reason) {
  std::string dir = env_or_empty("GST_VMDISPLAY_TEST_VM_DIR");
  if (dir.empty()) {
    *reason = "GST_VMDISPLAY_TEST_VM_DIR is not set (configure with -Dtest-vm=enabled)";
    return false;
  }
  for (const char *f : {"vmlinuz", "initramfs.cpio.gz"}) {
    gchar *path = g_build_filename(dir.c_str(), f, nullptr);
    bool ok = g_file_test(path, G_FILE_TEST_EXISTS);
    g_free(path);
    if (!ok) {
      *reason = dir + "/" + f + " is missing (build the test-vm target)";
      return false;
    }
  }
  const std::string own = env_or_empty("VMD_QEMU");
  if (!own.empty()) {
    if (!g_file_test(own.c_str(), G_FILE_TEST_IS_EXECUTABLE)) {
      *reason = "VMD_QEMU=" + own + " does not exist (run scripts/install-qemu-prefix.sh)";
      return false;
    }
    if (qemu_version().empty()) {
      *reason = "VMD_QEMU=" + own + " --version failed";
      return false;
    }
  } else {
    gchar *qemu = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu) {
      *reason = "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)";
      return false;
    }
    g_free(qemu);
  }
  if (env_or_empty("GST_VMDISPLAY_TEST_VM_SCRIPT").empty()) {
    *reason = "GST_VMDISPLAY_TEST_VM_SCRIPT is not set";
    return false;
  }
  return true;
}

std::unique_ptr<PrivateBus> PrivateBus::start(std::string *error) {
  auto bus = std::make_unique<PrivateBus>(Key());
  bus->dir_ = make_tmp_dir("vmtest-bus-XXXXXX", error);
  if (bus->dir_.empty())
    return nullptr;
  std::string addr_file = bus->dir_ + "/address";
  int fd = open(addr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot create " + addr_file;
    return nullptr;
  }
  bool ok = spawn({"dbus-daemon", "--session", "--nofork", "--print-address=1",
                   "--address=unix:tmpdir=" + bus->dir_},
                  fd, &bus->pid_, error);
  close(fd);
  if (!ok)
    return nullptr;
  const int64_t deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline) {
    gchar *contents = nullptr;
    if (g_file_get_contents(addr_file.c_str(), &contents, nullptr, nullptr)) {
      std::string s = contents;
      g_free(contents);
      size_t nl = s.find('\n');
      if (nl != std::string::npos) {
        bus->address_ = s.substr(0, nl);
        return bus;
      }
    }
    g_usleep(20000);
  }
  *error = "dbus-daemon did not print its address within 5 s";
  return nullptr;
}

PrivateBus::~PrivateBus() {
  stop_child(pid_);
  remove_dir(dir_);
}

bool VirtualDisplay::available(std::string *reason) {
  for (const char *tool : {"Xvfb", "xdotool"}) {
    gchar *path = g_find_program_in_path(tool);
    if (!path) {
      *reason = std::string(tool) + " not found (install xvfb and xdotool)";
      return false;
    }
    g_free(path);
  }
  return true;
}

std::unique_ptr<VirtualDisplay> VirtualDisplay::start(std::string *error) {
  auto x = std::make_unique<VirtualDisplay>(Key());
  x->dir_ = make_tmp_dir("vmtest-x-XXXXXX", error);
  if (x->dir_.empty())
    return nullptr;
  const std::string number_file = x->dir_ + "/display";
  int fd = open(number_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot create " + number_file;
    return nullptr;
  }
  /* -displayfd: Xvfb picks a free display and writes its number. */
  bool ok = spawn({"Xvfb", "-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"},
                  fd, &x->pid_, error);
  close(fd);
  if (!ok)
    return nullptr;
  const int64_t deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < deadline) {
    gchar *contents = nullptr;
    if (g_file_get_contents(number_file.c_str(), &contents, nullptr, nullptr)) {
      std::string s = contents;
      g_free(contents);
      if (s.find('\n') != std::string::npos) {
        x->name_ = ":" + s.substr(0, s.find('\n'));
        return x;
      }
    }
    g_usleep(20000);
  }
  *error = "Xvfb did not report its display within 10 s";
  return nullptr;
}

bool VirtualDisplay::xdotool(const std::vector<std::string> &args, std::string *out) {
  std::vector<const gchar *> argv{"xdotool"};
  for (const auto &a : args)
    argv.push_back(a.c_str());
  argv.push_back(nullptr);
  gchar **envp = g_environ_setenv(g_get_environ(), "DISPLAY", name_.c_str(), TRUE);
  gchar *std_out = nullptr;
  gint status = 0;
  gboolean ok = g_spawn_sync(nullptr, const_cast<gchar **>(argv.data()), envp, G_SPAWN_SEARCH_PATH,
                             nullptr, nullptr, &std_out, nullptr, &status, nullptr);
  g_strfreev(envp);
  if (out)
    *out = std_out ? std_out : "";
  g_free(std_out);
  return ok && g_spawn_check_wait_status(status, nullptr);
}

VirtualDisplay::~VirtualDisplay() {
  stop_child(pid_);
  remove_dir(dir_);
}

std::unique_ptr<TestVm> TestVm::start(const VmOptions &o, std::string *error) {
  std::string reason;
  if (!test_vm_available(&reason)) {
    *error = reason;
    return nullptr;
  }
  auto vm = std::make_unique<TestVm>(Key());
  vm->dir_ = make_tmp_dir("vmtest-vm-XXXXXX", error);
  if (vm->dir_.empty())
    return nullptr;
  vm->serial_ = vm->dir_ + "/serial.log";
  std::vector<std::string> argv = {"sh", env_or_empty("GST_VMDISPLAY_TEST_VM_SCRIPT"),
                                   "--vm-dir", env_or_empty("GST_VMDISPLAY_TEST_VM_DIR"),
                                   "--name", o.name, "--serial", vm->serial_};
  if (!o.qmp_path.empty()) {
    argv.insert(argv.end(), {"--p2p", o.qmp_path});
  } else if (!o.bus_address.empty()) {
    argv.insert(argv.end(), {"--bus", o.bus_address});
  } else if (!o.display.empty()) {
    argv.insert(argv.end(), {"--display", o.display});
  }
  if (!o.append.empty())
    argv.insert(argv.end(), {"--append", o.append});
  if (!o.vga.empty())
    argv.insert(argv.end(), {"--vga", o.vga});
  const std::vector<std::string> firmware = firmware_args();
  if (!o.extra_args.empty() || !firmware.empty()) {
    argv.push_back("--");
    argv.insert(argv.end(), firmware.begin(), firmware.end());
    argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  }
  std::string out = vm->dir_ + "/qemu.out";
  int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  gchar **envp = qemu_environment();
  bool ok = spawn(argv, fd, &vm->pid_, error, envp);
  g_strfreev(envp);
  if (fd >= 0)
    close(fd);
  if (!ok)
    return nullptr;
  return vm;
}

TestVm::~TestVm() {
  if (!reaped_)
    stop_child(pid_);
  remove_dir(dir_);
}

std::string TestVm::serial_log() const {
  gchar *contents = nullptr;
  gsize len = 0;
  std::string s;
  if (g_file_get_contents(serial_.c_str(), &contents, &len, nullptr))
    s.assign(contents, len);
  g_free(contents);
  gchar *qemu_out = nullptr;
  std::string out_path = dir_ + "/qemu.out";
  if (g_file_get_contents(out_path.c_str(), &qemu_out, &len, nullptr) && len)
    s += "\n[qemu] " + std::string(qemu_out, len);
  g_free(qemu_out);
  return s;
}

bool TestVm::running() {
  if (reaped_)
    return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    reaped_ = true;
    return false;
  }
  return true;
}

bool TestVm::wait_for_serial(const std::string &needle, int timeout_ms, size_t after) {
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  for (;;) {
    gchar *contents = nullptr;
    gsize len = 0;
    if (g_file_get_contents(serial_.c_str(), &contents, &len, nullptr)) {
      std::string s(contents, len);
      g_free(contents);
      if (s.find(needle, std::min(after, s.size())) != std::string::npos)
        return true;
    }
    if (!running() || g_get_monotonic_time() >= deadline)
      return false;
    g_usleep(50000);
  }
}

void TestVm::kill_now() {
  if (reaped_)
    return;
  kill(pid_, SIGKILL);
  reaped_ = reap(pid_, 5000);
}

}  // namespace vmtest
