/* qemudbusdeviceprovider against scripted QEMUs (tests/check/support/fake-qemu)
 * queued on a private dbus-daemon, which stands in for the session bus; the
 * system bus is pointed at a path that does not exist (or, in one test, at a
 * second private bus), so the real buses are never touched. probe() without
 * start(), a GstDeviceMonitor following VMs that quit (queued and primary
 * owners of org.qemu, separately) and appear (queued behind another), a QEMU
 * that never answers and names unrelated to QEMU, create_element and
 * reconfigure_element. Skips (77) without dbus-daemon. */
#include "doc-check.h"
#include "fake-qemu.h"
#include "qemu-devices.h"
#include "test-vm.h"

#include <gst/check/gstcheck.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using fakeqemu::FakeQemu;
using fakeqemu::FakeQemuOptions;
using testsupport::SeenDevice;
using vmtest::PrivateBus;

namespace {

constexpr const char kProvider[] = "qemudbusdeviceprovider";
constexpr const char kNoSystemBus[] = "unix:path=/nonexistent/gst-vmdisplay-test/system_bus";
const char kUuidA[] = "11111111-2222-3333-4444-555555555555";
const char kUuidB[] = "66666666-7777-8888-9999-000000000000";
const char kUuidC[] = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/* Under valgrind everything in this process is ~20x slower. */
int slow(int ms) { return g_getenv("VMD_VALGRIND") ? ms * 5 : ms; }

int64_t now_ms() { return g_get_monotonic_time() / 1000; }

FakeQemuOptions vm_options(const std::string &name, const std::string &uuid,
                           std::vector<uint32_t> consoles, std::vector<std::string> labels = {},
                           std::vector<std::string> types = {}) {
  FakeQemuOptions o;
  o.vm_name = name;
  o.uuid = uuid;
  o.console_ids = std::move(consoles);
  o.console_labels = std::move(labels);
  o.console_types = std::move(types);
  return o;
}

/* A private bus as the session bus, no system bus. */
struct BusEnv {
  std::unique_ptr<PrivateBus> bus;

  explicit BusEnv(const char *system_bus = kNoSystemBus) {
    std::string error;
    bus = PrivateBus::start(&error);
    fail_unless(bus != nullptr, "%s", error.c_str());
    g_setenv("DBUS_SESSION_BUS_ADDRESS", bus->address().c_str(), TRUE);
    g_setenv("DBUS_SYSTEM_BUS_ADDRESS", system_bus, TRUE);
  }
  std::unique_ptr<FakeQemu> start_vm(const FakeQemuOptions &o) const {
    std::string error;
    auto vm = FakeQemu::start_bus(bus->address(), o, &error);
    fail_unless(vm != nullptr, "%s", error.c_str());
    return vm;
  }
};

GstDeviceProvider *get_provider() {
  GstDeviceProvider *p = gst_device_provider_factory_get_by_name(kProvider);
  fail_unless(p != nullptr, "no %s", kProvider);
  return p;
}

/* probe() (the provider is not started): our devices, sorted by name. The
 * list keeps the devices alive; free it with g_list_free_full. */
std::vector<SeenDevice> probe(GList **list) {
  GstDeviceProvider *p = get_provider();
  *list = gst_device_provider_get_devices(p);
  gst_object_unref(p);
  return testsupport::seen_devices(*list);
}

void free_devices(GList *list) { g_list_free_full(list, gst_object_unref); }

/* A GstDeviceMonitor on Video/Source; only our devices' messages count. */
struct Monitor {
  GstDeviceMonitor *monitor = gst_device_monitor_new();
  GstBus *bus = nullptr;
  int64_t reached_ms = 0; /* when messages() had its count */

  Monitor() {
    fail_unless(gst_device_monitor_add_filter(monitor, "Video/Source", nullptr) > 0);
    bus = gst_device_monitor_get_bus(monitor);
    fail_unless(gst_device_monitor_start(monitor));
  }
  ~Monitor() {
    gst_device_monitor_stop(monitor);
    gst_object_unref(bus);
    gst_object_unref(monitor);
  }
  std::vector<SeenDevice> devices(GList **list) {
    *list = gst_device_monitor_get_devices(monitor);
    return testsupport::seen_devices(*list);
  }
  /* Display names of our devices in DEVICE_ADDED (+) and DEVICE_REMOVED (-)
   * messages, in order, until `count` arrived or timeout_ms passed, then
   * for settle_ms more (to catch any extra one). */
  std::vector<std::string> messages(size_t count, int timeout_ms, int settle_ms = 300) {
    std::vector<std::string> seen;
    int64_t deadline = now_ms() + timeout_ms;
    bool settled = false;
    for (;;) {
      if (!settled && seen.size() >= count) {
        reached_ms = now_ms();
        deadline = reached_ms + settle_ms;
        settled = true;
      }
      const int64_t left = deadline - now_ms();
      if (left <= 0)
        break;
      GstMessage *m = gst_bus_timed_pop_filtered(
          bus, GstClockTime(left) * GST_MSECOND,
          GstMessageType(GST_MESSAGE_DEVICE_ADDED | GST_MESSAGE_DEVICE_REMOVED));
      if (!m)
        break;
      GstDevice *device = nullptr;
      const bool added = GST_MESSAGE_TYPE(m) == GST_MESSAGE_DEVICE_ADDED;
      if (added)
        gst_message_parse_device_added(m, &device);
      else
        gst_message_parse_device_removed(m, &device);
      if (testsupport::is_qemu_device(device))
        seen.push_back((added ? "+" : "-") + testsupport::seen_device(device).name);
      gst_object_unref(device);
      gst_message_unref(m);
    }
    return seen;
  }
};

/* A std::string result against the expected text (fail_unless_equals_string
 * would keep a pointer into a destroyed temporary). */
#define EXPECT_TEXT(expr, want)                                                        \
  do {                                                                                 \
    const std::string got_ = (expr);                                                   \
    fail_unless(got_ == (want), "%s is '%s', expected '%s'", #expr, got_.c_str(), want); \
  } while (0)

std::string joined(const std::vector<std::string> &v) {
  std::string out;
  for (const std::string &s : v)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

/* A peer that takes bus names and never answers a call: a filter drops
 * every incoming method call before GDBus can reply. */
struct SilentPeer {
  GMainContext *context = g_main_context_new();
  GDBusConnection *conn = nullptr;
  guint filter = 0;

  SilentPeer(const std::string &address, const std::vector<std::string> &names) {
    g_main_context_push_thread_default(context);
    GError *err = nullptr;
    conn = g_dbus_connection_new_for_address_sync(
        address.c_str(),
        GDBusConnectionFlags(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                             G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
        nullptr, nullptr, &err);
    g_main_context_pop_thread_default(context);
    fail_unless(conn != nullptr, "%s", err ? err->message : "?");
    filter = g_dbus_connection_add_filter(conn, drop_calls, nullptr, nullptr);
    for (const std::string &name : names) {
      GVariant *r = g_dbus_connection_call_sync(
          conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
          "RequestName", g_variant_new("(su)", name.c_str(), 0u), G_VARIANT_TYPE("(u)"),
          G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, &err);
      fail_unless(r != nullptr, "RequestName %s: %s", name.c_str(), err ? err->message : "?");
      g_variant_unref(r);
    }
  }
  ~SilentPeer() {
    g_dbus_connection_remove_filter(conn, filter);
    g_dbus_connection_close_sync(conn, nullptr, nullptr);
    g_object_unref(conn);
    while (g_main_context_iteration(context, FALSE)) {
    }
    g_main_context_unref(context);
  }
  static GDBusMessage *drop_calls(GDBusConnection *, GDBusMessage *message, gboolean incoming,
                                  gpointer) {
    if (incoming && g_dbus_message_get_message_type(message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL) {
      g_object_unref(message);
      return nullptr;
    }
    return message;
  }
};

/* alpha: a graphic and a text console; beta: two graphic consoles. */
struct TwoVms {
  BusEnv env;
  std::unique_ptr<FakeQemu> alpha, beta;
  explicit TwoVms(const char *system_bus = kNoSystemBus) : env(system_bus) {
    alpha = env.start_vm(vm_options("alpha", kUuidA, {0, 1}, {"VGA", "serial0"}, {"Graphic", "Text"}));
    beta = env.start_vm(vm_options("beta", kUuidB, {0, 2}, {"virtio-gpu-pci", "VGA"}));
  }
};

}  // namespace

GST_START_TEST(test_factory) {
  GstDeviceProviderFactory *f = gst_device_provider_factory_find(kProvider);
  fail_unless(f != nullptr);
  fail_unless_equals_int(gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(f)), GST_RANK_MARGINAL);
  const gchar *classes[] = {"Video", "Source", nullptr};
  fail_unless(gst_device_provider_factory_has_classesv(f, const_cast<gchar **>(classes)));
  gst_object_unref(f);
}
GST_END_TEST;

GST_START_TEST(test_probe_lists_graphic_consoles) {
  TwoVms vms;
  GList *list;
  std::vector<SeenDevice> d = probe(&list);
  fail_unless_equals_int(d.size(), 3);
  /* Sorted by name; alpha's text console (1) is left out. */
  const struct {
    const char *name, *vm, *uuid, *label;
    guint console;
  } want[] = {{"alpha: VGA", "alpha", kUuidA, "VGA", 0},
              {"beta: VGA", "beta", kUuidB, "VGA", 2},
              {"beta: virtio-gpu-pci", "beta", kUuidB, "virtio-gpu-pci", 0}};
  for (size_t i = 0; i < 3; i++) {
    fail_unless_equals_string(d[i].name.c_str(), want[i].name);
    fail_unless_equals_string(d[i].klass.c_str(), "Video/Source");
    fail_unless_equals_string(d[i].vm_name.c_str(), want[i].vm);
    fail_unless_equals_string(d[i].uuid.c_str(), want[i].uuid);
    fail_unless_equals_string(d[i].label.c_str(), want[i].label);
    fail_unless_equals_string(d[i].bus.c_str(), "session");
    fail_unless_equals_int(d[i].console, want[i].console);
  }
  /* Caps: what qemudbussrc produces. */
  GstCaps *caps = gst_device_get_caps(d[0].device);
  GstCaps *bgrx = gst_caps_from_string("video/x-raw,format=BGRx,width=640,height=480");
  fail_unless(caps && gst_caps_can_intersect(caps, bgrx));
  gst_caps_unref(bgrx);
  gst_caps_unref(caps);
  free_devices(list);
}
GST_END_TEST;

GST_START_TEST(test_probe_empty_bus) {
  BusEnv env;
  GList *list;
  fail_unless_equals_int(probe(&list).size(), 0);
  free_devices(list);
}
GST_END_TEST;

GST_START_TEST(test_create_element) {
  TwoVms vms;
  GList *list;
  std::vector<SeenDevice> d = probe(&list);
  fail_unless_equals_int(d.size(), 3);
  /* beta's console 2: beta is queued behind alpha, so vm matters. */
  GstElement *src = gst_device_create_element(d[1].device, "cap");
  fail_unless(src != nullptr);
  fail_unless_equals_string(GST_OBJECT_NAME(gst_element_get_factory(src)), "qemudbussrc");
  fail_unless_equals_string(GST_OBJECT_NAME(src), "cap");
  gchar *address, *vm;
  guint console;
  g_object_get(src, "address", &address, "vm", &vm, "console", &console, nullptr);
  fail_unless(address == nullptr, "address %s on the session bus", address);
  fail_unless_equals_string(vm, "beta");
  fail_unless_equals_int(console, 2);
  g_free(vm);
  /* And it captures that console. */
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *sink = gst_element_factory_make("fakesink", nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, sink, nullptr);
  fail_unless(gst_element_link(src, sink));
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  fail_unless(vms.beta->wait_for_listener(slow(5000)), "no listener on beta");
  fail_unless_equals_int(vms.beta->listener_console(), 2);
  fail_unless_equals_int(vms.alpha->listener_console(), -1);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);

  /* reconfigure_element: a qemudbussrc is set up like a new one; anything else refused. */
  GstElement *other = gst_element_factory_make("qemudbussrc", nullptr);
  g_object_set(other, "vm", "zeta", "console", 7u, "address", "unix:path=/x", nullptr);
  fail_unless(gst_device_reconfigure_element(d[0].device, other));
  g_object_get(other, "address", &address, "vm", &vm, "console", &console, nullptr);
  fail_unless(address == nullptr);
  fail_unless_equals_string(vm, "alpha");
  fail_unless_equals_int(console, 0);
  g_free(vm);
  gst_object_unref(other);
  GstElement *fake = gst_element_factory_make("fakesrc", nullptr);
  fail_if(gst_device_reconfigure_element(d[0].device, fake));
  gst_object_unref(fake);
  free_devices(list);
}
GST_END_TEST;

GST_START_TEST(test_monitor_follows_queued_and_primary) {
  TwoVms vms;
  Monitor m;
  GList *list;
  std::vector<SeenDevice> d = m.devices(&list);
  EXPECT_TEXT(testsupport::names_of(d),
                            "alpha: VGA, beta: VGA, beta: virtio-gpu-pci");
  free_devices(list);
  /* The devices there at start were posted as added during start(). */
  std::vector<std::string> seen = m.messages(3, slow(2000), 0);
  fail_unless_equals_int(seen.size(), 3);

  /* beta is queued, not primary: org.qemu does not change hands, only its
   * unique name leaves the bus. */
  int64_t t0 = now_ms();
  vms.beta.reset();
  seen = m.messages(2, slow(3000));
  EXPECT_TEXT(joined(seen), "-beta: virtio-gpu-pci, -beta: VGA");
  g_print("queued owner gone: removed after %" G_GINT64_FORMAT " ms\n", m.reached_ms - t0);

  /* gamma queues behind alpha: no NameOwnerChanged for org.qemu at all. */
  t0 = now_ms();
  auto gamma = vms.env.start_vm(vm_options("gamma", kUuidC, {0}));
  seen = m.messages(1, slow(3000));
  EXPECT_TEXT(joined(seen), "+gamma: VGA");
  g_print("queued owner new: added after %" G_GINT64_FORMAT " ms\n", m.reached_ms - t0);

  /* alpha, the primary owner, quits: gamma becomes primary and stays. */
  t0 = now_ms();
  vms.alpha.reset();
  seen = m.messages(1, slow(3000), 500);
  EXPECT_TEXT(joined(seen), "-alpha: VGA");
  g_print("primary owner gone: removed after %" G_GINT64_FORMAT " ms\n", m.reached_ms - t0);
  d = m.devices(&list);
  EXPECT_TEXT(testsupport::names_of(d), "gamma: VGA");
  fail_unless_equals_string(d[0].uuid.c_str(), kUuidC);
  free_devices(list);

  /* The last one quits; a new primary owner on the empty bus appears. */
  gamma.reset();
  seen = m.messages(1, slow(3000));
  EXPECT_TEXT(joined(seen), "-gamma: VGA");
  auto delta = vms.env.start_vm(vm_options("delta", kUuidA, {3}, {"bochs-display"}));
  seen = m.messages(1, slow(3000));
  EXPECT_TEXT(joined(seen), "+delta: bochs-display");
}
GST_END_TEST;

GST_START_TEST(test_silent_qemu_and_unrelated_names) {
  /* A QEMU that never answers is queued first on org.qemu; twenty
   * unrelated names on the bus never answer either. probe() is bounded by
   * its 2 s call timeout and lists the VM behind it; the monitor is not held
   * up by them, nor by more unrelated connections arriving. */
  BusEnv env;
  auto silent_qemu = std::make_unique<SilentPeer>(env.bus->address(), std::vector<std::string>{"org.qemu"});
  std::vector<std::string> names;
  for (int i = 0; i < 20; i++)
    names.push_back("org.example.Unrelated" + std::to_string(i));
  SilentPeer unrelated(env.bus->address(), names);
  auto alpha = env.start_vm(vm_options("alpha", kUuidA, {0}));

  int64_t t0 = now_ms();
  GList *list;
  std::vector<SeenDevice> d = probe(&list);
  const int64_t probe_ms = now_ms() - t0;
  g_print("probe with a silent QEMU took %" G_GINT64_FORMAT " ms\n", probe_ms);
  EXPECT_TEXT(testsupport::names_of(d), "alpha: VGA");
  fail_unless(probe_ms < 2000 + slow(1500), "probe took %" G_GINT64_FORMAT " ms", probe_ms);
  free_devices(list);

  t0 = now_ms();
  Monitor m;
  g_print("monitor start with a silent QEMU took %" G_GINT64_FORMAT " ms\n", now_ms() - t0);
  std::vector<std::string> seen = m.messages(1, slow(4000));
  EXPECT_TEXT(joined(seen), "+alpha: VGA");

  /* New unrelated connections, each with a silent name, then a VM quits:
   * its removal must not wait behind calls to them. */
  std::vector<std::unique_ptr<SilentPeer>> more;
  for (int i = 0; i < 10; i++)
    more.push_back(std::make_unique<SilentPeer>(
        env.bus->address(), std::vector<std::string>{"org.example.Late" + std::to_string(i)}));
  auto beta = env.start_vm(vm_options("beta", kUuidB, {0}));
  seen = m.messages(1, slow(4000));
  EXPECT_TEXT(joined(seen), "+beta: VGA");
  t0 = now_ms();
  beta.reset();
  seen = m.messages(1, slow(1000), 0);
  EXPECT_TEXT(joined(seen), "-beta: VGA");
  g_print("removed after %" G_GINT64_FORMAT " ms with silent names around\n", m.reached_ms - t0);
  /* The silent QEMU leaving changes nothing we listed. */
  silent_qemu.reset();
  seen = m.messages(0, 0, 500);
  fail_unless(seen.empty(), "%s", joined(seen).c_str());
}
GST_END_TEST;

GST_START_TEST(test_system_bus) {
  /* A second private bus stands in for the system bus: its devices say
   * so, and their element gets address=system. */
  std::string error;
  auto system_bus = PrivateBus::start(&error);
  fail_unless(system_bus != nullptr, "%s", error.c_str());
  BusEnv env(system_bus->address().c_str());
  auto sys = FakeQemu::start_bus(system_bus->address(), vm_options("sysvm", kUuidC, {0}), &error);
  fail_unless(sys != nullptr, "%s", error.c_str());
  auto alpha = env.start_vm(vm_options("alpha", kUuidA, {0}));
  GList *list;
  std::vector<SeenDevice> d = probe(&list);
  EXPECT_TEXT(testsupport::names_of(d), "alpha: VGA, sysvm: VGA");
  fail_unless_equals_string(d[0].bus.c_str(), "session");
  fail_unless_equals_string(d[1].bus.c_str(), "system");
  GstElement *src = gst_device_create_element(d[1].device, nullptr);
  gchar *address;
  g_object_get(src, "address", &address, nullptr);
  fail_unless_equals_string(address, "system");
  g_free(address);
  gst_object_unref(src);
  free_devices(list);
  {
    Monitor m;
    std::vector<std::string> seen = m.messages(2, slow(2000), 0);
    fail_unless_equals_int(seen.size(), 2);
    sys.reset();
    seen = m.messages(1, slow(3000));
    EXPECT_TEXT(joined(seen), "-sysvm: VGA");
  }
}
GST_END_TEST;

GST_START_TEST(test_docs_cover_device_properties) {
  /* Every field of a device's properties, and the provider's name, are in
   * docs/qemudbussrc.md. */
  const char *dir = g_getenv("VMD_DOCS_DIR");
  if (!dir) {
    GST_INFO("VMD_DOCS_DIR not set; skipped");
    return;
  }
  gchar *doc = nullptr;
  const std::string path = std::string(dir) + "/qemudbussrc.md";
  fail_unless(g_file_get_contents(path.c_str(), &doc, nullptr, nullptr), "cannot read %s",
              path.c_str());
  fail_unless(strstr(doc, "`qemudbusdeviceprovider`") != nullptr);
  BusEnv env;
  auto alpha = env.start_vm(vm_options("alpha", kUuidA, {0}));
  GList *list;
  std::vector<SeenDevice> d = probe(&list);
  fail_unless_equals_int(d.size(), 1);
  GstStructure *props = gst_device_get_properties(d[0].device);
  for (int i = 0; i < gst_structure_n_fields(props); i++) {
    const std::string needle = std::string("`") + gst_structure_nth_field_name(props, i) + "`";
    fail_unless(strstr(doc, needle.c_str()) != nullptr, "%s is not in %s", needle.c_str(),
                path.c_str());
  }
  gst_structure_free(props);
  free_devices(list);
  g_free(doc);
}
GST_END_TEST;

static Suite *qemudeviceprovider_suite() {
  Suite *s = suite_create("qemudeviceprovider");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_factory);
  tcase_add_test(tc, test_docs_cover_device_properties);
  tcase_add_test(tc, test_probe_lists_graphic_consoles);
  tcase_add_test(tc, test_probe_empty_bus);
  tcase_add_test(tc, test_create_element);
  tcase_add_test(tc, test_monitor_follows_queued_and_primary);
  tcase_add_test(tc, test_silent_qemu_and_unrelated_names);
  tcase_add_test(tc, test_system_bus);
  return s;
}

int main(int argc, char **argv) {
  gchar *daemon = g_find_program_in_path("dbus-daemon");
  if (!daemon) {
    g_print("SKIP: dbus-daemon not found\n");
    return 77;
  }
  g_free(daemon);
  gst_check_init(&argc, &argv);
  return vmtest::finish_suite(
      gst_check_run_suite(qemudeviceprovider_suite(), "qemudeviceprovider", __FILE__));
}
