/* Test support for the programs of suite "qemu": what every check against
 * the real test VM needs (boot or fail, time bounds stretched under
 * valgrind, skip without QEMU or the image). Header-only: it uses the check
 * framework's macros. */
#pragma once

#include "test-vm.h"

#include <gst/check/gstcheck.h>

#include <memory>
#include <string>

namespace vmtest {

/* Boot to READY takes 5-20 s under TCG on two busy cores. */
constexpr int kBootMs = 90000;

/* Under valgrind (the valgrind setup sets VMD_VALGRIND) everything in this
 * process is ~20x slower: waits on it are stretched. */
inline int slow(int ms) { return g_getenv("VMD_VALGRIND") ? ms * 5 : ms; }

/* A started VM, or the test fails saying why. */
inline std::unique_ptr<TestVm> boot(const VmOptions &o) {
  std::string error;
  auto vm = TestVm::start(o, &error);
  fail_unless(vm != nullptr, "%s", error.c_str());
  return vm;
}

/* A private dbus-daemon, or the test fails saying why. */
inline std::unique_ptr<PrivateBus> private_bus() {
  std::string error;
  auto bus = PrivateBus::start(&error);
  fail_unless(bus != nullptr, "%s", error.c_str());
  return bus;
}

/* main() of a suite-"qemu" program: without QEMU or the VM image the whole
 * suite is skipped (exit 77, which meson reports as SKIP) with the reason
 * printed; else the suite runs. */
inline int vm_suite_main(int argc, char **argv, Suite *(*make_suite)(), const char *name,
                         const char *file) {
  std::string reason;
  if (!test_vm_available(&reason)) {
    g_print("SKIP: %s\n", reason.c_str());
    return 77;
  }
  g_print("QEMU: %s (%s)\n", qemu_binary().c_str(), qemu_version().c_str());
  gst_check_init(&argc, &argv);
  return finish_suite(gst_check_run_suite(make_suite(), name, file));
}

}  // namespace vmtest

/* Inside a test: skip it (with the reason) without QEMU or the VM image. */
#define SKIP_WITHOUT_VM()                          \
  do {                                             \
    std::string skip_reason_;                      \
    if (!vmtest::test_vm_available(&skip_reason_)) { \
      g_print("SKIP: %s\n", skip_reason_.c_str()); \
      return;                                      \
    }                                              \
  } while (0)
