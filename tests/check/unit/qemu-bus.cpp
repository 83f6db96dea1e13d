/* Unit: qemu-bus (VM listing, VM picking, console checks) against scripted
 * QEMUs (tests/check/support/fake-qemu) queued on a private dbus-daemon.
 * Skips (77) without dbus-daemon. */
#include "qemu-bus.h"

#include "fake-qemu.h"
#include "test-vm.h"

#include <gst/check/gstcheck.h>

#include <memory>
#include <string>
#include <vector>

using vmd::GObjectPtr;
using vmd::QemuBusError;
using vmd::QemuBusResult;
using vmd::QemuBusWait;
using vmd::QemuVmInfo;

namespace {

/* A private bus, our connection to it, and the thread-default context the
 * qemu-bus handshakes iterate. */
struct BusFixture {
  std::unique_ptr<vmtest::PrivateBus> bus;
  GMainContext *context = g_main_context_new();
  GObjectPtr<GCancellable> cancellable{g_cancellable_new()};
  GObjectPtr<GDBusConnection> conn;
  std::string where;

  BusFixture() {
    g_main_context_push_thread_default(context);
    std::string error;
    bus = vmtest::PrivateBus::start(&error);
    fail_unless(bus != nullptr, "%s", error.c_str());
    QemuBusResult r = vmd::qemu_bus_open(bus->address(), wait(), &conn, &where);
    fail_unless(r.ok(), "%s", r.message.c_str());
  }
  ~BusFixture() {
    conn.reset();
    g_main_context_pop_thread_default(context);
    g_main_context_unref(context);
  }
  QemuBusWait wait() const { return QemuBusWait{context, cancellable.get(), 5000}; }

  std::unique_ptr<fakeqemu::FakeQemu> start_vm(const fakeqemu::FakeQemuOptions &o) {
    std::string error;
    auto vm = fakeqemu::FakeQemu::start_bus(bus->address(), o, &error);
    fail_unless(vm != nullptr, "%s", error.c_str());
    return vm;
  }
};

fakeqemu::FakeQemuOptions vm_options(const std::string &name, const std::string &uuid,
                                     std::vector<uint32_t> consoles) {
  fakeqemu::FakeQemuOptions o;
  o.vm_name = name;
  o.uuid = uuid;
  o.console_ids = std::move(consoles);
  return o;
}

const char kUuidA[] = "11111111-2222-3333-4444-555555555555";
const char kUuidB[] = "66666666-7777-8888-9999-000000000000";

}  // namespace

GST_START_TEST(test_lists_two_vms_with_names_and_consoles) {
  BusFixture f;
  auto alpha = f.start_vm(vm_options("alpha", kUuidA, {0, 1}));
  auto beta = f.start_vm(vm_options("beta", kUuidB, {0}));

  std::vector<QemuVmInfo> vms;
  QemuBusResult r = vmd::qemu_bus_list_vms(f.conn.get(), f.wait(), &vms);
  fail_unless(r.ok(), "%s", r.message.c_str());
  fail_unless_equals_int(vms.size(), 2);
  /* Queue order: the primary owner of org.qemu (the first to ask) first. */
  fail_unless_equals_string(vms[0].name.c_str(), "alpha");
  fail_unless_equals_string(vms[0].uuid.c_str(), kUuidA);
  fail_unless_equals_string(vms[1].name.c_str(), "beta");
  fail_unless_equals_string(vms[1].uuid.c_str(), kUuidB);
  fail_unless(!vms[0].owner.empty() && vms[0].owner[0] == ':', "%s", vms[0].owner.c_str());
  fail_unless(vms[0].owner != vms[1].owner);
  fail_unless_equals_int(vms[0].consoles.size(), 2);
  fail_unless_equals_int(vms[0].consoles[0].id, 0);
  fail_unless_equals_int(vms[0].consoles[1].id, 1);
  fail_unless_equals_int(vms[1].consoles.size(), 1);
  for (const QemuVmInfo &vm : vms) {
    for (const auto &c : vm.consoles) {
      fail_unless_equals_string(c.label.c_str(), "VGA");
      fail_unless_equals_string(c.type.c_str(), "Graphic");
    }
  }

  /* Picking by name finds the queued (not primary) owner. */
  std::string owner;
  r = vmd::qemu_bus_pick_vm(f.conn.get(), "beta", f.where, f.wait(), &owner);
  fail_unless(r.ok(), "%s", r.message.c_str());
  fail_unless_equals_string(owner.c_str(), vms[1].owner.c_str());
  r = vmd::qemu_bus_pick_vm(f.conn.get(), "", f.where, f.wait(), &owner);
  fail_unless(r.ok(), "%s", r.message.c_str());
  fail_unless_equals_string(owner.c_str(), vms[0].owner.c_str());
  r = vmd::qemu_bus_pick_vm(f.conn.get(), "gamma", f.where, f.wait(), &owner);
  fail_unless(r.code == QemuBusError::NoSuchVm, "%s", r.message.c_str());
  fail_unless(r.message.find("'alpha', 'beta'") != std::string::npos, "%s", r.message.c_str());
}
GST_END_TEST;

GST_START_TEST(test_console_checks_are_enum_values) {
  BusFixture f;
  auto alpha = f.start_vm(vm_options("alpha", kUuidA, {0, 1}));
  std::string owner;
  QemuBusResult r = vmd::qemu_bus_pick_vm(f.conn.get(), "alpha", f.where, f.wait(), &owner);
  fail_unless(r.ok(), "%s", r.message.c_str());

  r = vmd::qemu_check_console(f.conn.get(), owner.c_str(), 0, "alpha", f.wait());
  fail_unless(r.ok(), "%s", r.message.c_str());
  r = vmd::qemu_check_console(f.conn.get(), owner.c_str(), 7, "alpha", f.wait());
  fail_unless(r.code == QemuBusError::NoSuchConsole, "%s", r.message.c_str());
  fail_unless(r.message.find("consoles: 0, 1") != std::string::npos, "%s", r.message.c_str());

  auto text = vm_options("texty", kUuidB, {0});
  text.console_type = "Text";
  auto texty = f.start_vm(text);
  r = vmd::qemu_bus_pick_vm(f.conn.get(), "texty", f.where, f.wait(), &owner);
  fail_unless(r.ok(), "%s", r.message.c_str());
  r = vmd::qemu_check_console(f.conn.get(), owner.c_str(), 0, "texty", f.wait());
  fail_unless(r.code == QemuBusError::NotGraphic, "%s", r.message.c_str());
}
GST_END_TEST;

GST_START_TEST(test_empty_bus) {
  BusFixture f;
  std::vector<QemuVmInfo> vms{QemuVmInfo()};
  QemuBusResult r = vmd::qemu_bus_list_vms(f.conn.get(), f.wait(), &vms);
  fail_unless(r.ok(), "%s", r.message.c_str());
  fail_unless_equals_int(vms.size(), 0);
  std::string owner;
  r = vmd::qemu_bus_pick_vm(f.conn.get(), "", f.where, f.wait(), &owner);
  fail_unless(r.code == QemuBusError::NoQemu, "%s", r.message.c_str());
}
GST_END_TEST;

GST_START_TEST(test_bad_address) {
  GMainContext *context = g_main_context_new();
  g_main_context_push_thread_default(context);
  GObjectPtr<GDBusConnection> conn;
  std::string where;
  QemuBusResult r = vmd::qemu_bus_open("unix:path=/nonexistent/bus", QemuBusWait{context, nullptr, 2000},
                                       &conn, &where);
  fail_unless(r.code == QemuBusError::ConnectFailed, "%s", r.message.c_str());
  fail_unless(!conn);
  g_main_context_pop_thread_default(context);
  g_main_context_unref(context);
}
GST_END_TEST;

static Suite *qemu_bus_suite() {
  Suite *s = suite_create("qemu-bus");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_lists_two_vms_with_names_and_consoles);
  tcase_add_test(tc, test_console_checks_are_enum_values);
  tcase_add_test(tc, test_empty_bus);
  tcase_add_test(tc, test_bad_address);
  return s;
}

int main(int argc, char **argv) {
  gchar *daemon = g_find_program_in_path("dbus-daemon");
  if (!daemon) {
    g_print("dbus-daemon not found: skipping the qemu-bus tests\n");
    return 77;
  }
  g_free(daemon);
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(qemu_bus_suite(), "qemu-bus", __FILE__);
}
