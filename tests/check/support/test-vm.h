/* Test support: boot the bundled test VM (tests/vm) under real QEMU, on a
 * private D-Bus bus or peer to peer through QMP, and read its serial console.
 * GLib/GIO only. Every wait is bounded; destructors kill and reap. */
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace vmtest {

/* The end of a suite's main(): its result, except that a failed suite leaves at once
 * (_exit, leak report included under valgrind). With CK_FORK=no (the valgrind setup) a
 * failed check skips the destructors that stop its pipelines, and gst_deinit at exit would
 * wait for their streaming threads forever: the failure must be reported, not hang. */
int finish_suite(int failures);

/* False (and why) when the VM image or QEMU is missing: the test skips. */
bool test_vm_available(std::string *reason);

/* The QEMU the VMs boot: $VMD_QEMU (a private install such as
 * /opt/gst-vmdisplay/qemu-10, see scripts/install-qemu-prefix.sh), else
 * qemu-system-x86_64 from PATH. With VMD_QEMU, VMD_QEMU_FIRMWARE (a
 * ':'-separated list of firmware directories, each passed as -L) and
 * VMD_QEMU_MODULE_DIR (its modules, as QEMU_MODULE_DIR, for that QEMU only)
 * go with it. */
std::string qemu_binary();
/* Its `--version` first line ("QEMU emulator version 10.0.2 (...)"), or "". */
std::string qemu_version();
/* True when that version is at least major.minor. */
bool qemu_at_least(int major, int minor);

/* A private dbus-daemon (session configuration). */
class PrivateBus {
  struct Key {  /* only start() can construct */
    explicit Key() = default;
  };

 public:
  static std::unique_ptr<PrivateBus> start(std::string *error);
  explicit PrivateBus(Key) {}
  ~PrivateBus();
  PrivateBus(const PrivateBus &) = delete;
  PrivateBus &operator=(const PrivateBus &) = delete;
  const std::string &address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string dir_, address_;
};

/* A virtual X server (Xvfb) for tests that drive a video sink's window with
 * xdotool. available() is false (and why) without Xvfb or xdotool. */
class VirtualDisplay {
  struct Key {  /* only start() can construct */
    explicit Key() = default;
  };

 public:
  static bool available(std::string *reason);
  static std::unique_ptr<VirtualDisplay> start(std::string *error);
  explicit VirtualDisplay(Key) {}
  ~VirtualDisplay();
  VirtualDisplay(const VirtualDisplay &) = delete;
  VirtualDisplay &operator=(const VirtualDisplay &) = delete;
  const std::string &name() const { return name_; } /* ":N", for DISPLAY */
  /* Runs xdotool with these arguments on this display; its stdout. */
  bool xdotool(const std::vector<std::string> &args, std::string *out = nullptr);

 private:
  pid_t pid_ = -1;
  std::string dir_, name_;
};

struct VmOptions {
  std::string name = "testvm";
  std::string bus_address;  /* -display dbus,addr=... */
  std::string qmp_path;     /* -display dbus,p2p=yes -qmp unix:... */
  std::string display;      /* any other -display value, e.g. "none" */
  std::string append;       /* kernel arguments, e.g. "vmpattern.output=drm" */
  std::string vga;          /* -vga value; empty: std. "virtio": virtio-gpu as console 0 */
  std::vector<std::string> extra_args; /* more QEMU arguments */
};

class TestVm {
  struct Key {  /* only start() can construct */
    explicit Key() = default;
  };

 public:
  static std::unique_ptr<TestVm> start(const VmOptions &options, std::string *error);
  explicit TestVm(Key) {}
  ~TestVm(); /* SIGTERM, 2 s, SIGKILL; reaps; removes its files */
  TestVm(const TestVm &) = delete;
  TestVm &operator=(const TestVm &) = delete;

  /* Polls the serial log for `needle` (counting only occurrences after
   * `after` bytes); false on timeout or when QEMU exited. */
  bool wait_for_serial(const std::string &needle, int timeout_ms, size_t after = 0);
  std::string serial_log() const;
  pid_t pid() const { return pid_; }
  bool running();
  void kill_now(); /* SIGKILL: a crash, as far as clients can tell */

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string dir_, serial_;
};

}  // namespace vmtest
