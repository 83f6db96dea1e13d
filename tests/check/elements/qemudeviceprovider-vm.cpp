/* qemudbusdeviceprovider against real QEMU (Debian's 7.2) booting the bundled
 * test VM (tests/vm): two VMs on one private bus, `gst-device-monitor-1.0 -f
 * Video/Source` run as a child with that bus as its session bus lists both
 * and reports the one killed as removed, then a third one started as added
 * (queued behind the first: no change of org.qemu's owner); alpha's
 * create_element captures the guest's colour bars. Suite "qemu"; skipped
 * (77, reason printed) without QEMU, the VM image or gst-device-monitor-1.0. */
#include "qemu-devices.h"
#include "src-pipeline.h"
#include "test-vm.h"
#include "vm-check.h"

#include <fcntl.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

using testsupport::SeenDevice;
using vmtest::PrivateBus;
using vmtest::TestVm;
using vmtest::boot;
using vmtest::kBootMs;
using vmtest::slow;
using vmtest::VmOptions;

namespace {

constexpr char kNoSystemBus[] = "unix:path=/nonexistent/gst-vmdisplay-test/system_bus";

/* gst-device-monitor-1.0 -f Video/Source as a child, its stdout read with
 * bounded waits (it prints with g_print, which flushes every line). */
class MonitorProcess {
 public:
  MonitorProcess(const std::string &bus_address, const std::string &registry) {
    gchar **env = g_get_environ();
    env = g_environ_setenv(env, "DBUS_SESSION_BUS_ADDRESS", bus_address.c_str(), TRUE);
    env = g_environ_setenv(env, "DBUS_SYSTEM_BUS_ADDRESS", kNoSystemBus, TRUE);
    env = g_environ_setenv(env, "GST_REGISTRY_1_0", registry.c_str(), TRUE);
    const gchar *argv[] = {"gst-device-monitor-1.0", "-f", "Video/Source", nullptr};
    GError *err = nullptr;
    gboolean ok = g_spawn_async_with_pipes(
        nullptr, const_cast<gchar **>(argv), env,
        GSpawnFlags(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH |
                    G_SPAWN_STDIN_FROM_DEV_NULL),
        [](gpointer) { prctl(PR_SET_PDEATHSIG, SIGKILL); }, nullptr, &pid_, nullptr, &fd_,
        nullptr, &err);
    g_strfreev(env);
    fail_unless(ok, "cannot start gst-device-monitor-1.0: %s", err ? err->message : "?");
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~MonitorProcess() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200 && waitpid(pid_, nullptr, WNOHANG) == 0; i++)
      g_usleep(10000);
    if (waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fd_);
  }
  MonitorProcess(const MonitorProcess &) = delete;
  MonitorProcess &operator=(const MonitorProcess &) = delete;

  /* Reads until `needle` is in the output at or after `from`; its offset,
   * or npos after timeout_ms or when the child closed its output. */
  size_t wait_for(const std::string &needle, int timeout_ms, size_t from = 0) {
    const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
    for (;;) {
      size_t at = out_.find(needle, from);
      if (at != std::string::npos)
        return at;
      const int64_t left_ms = (deadline - g_get_monotonic_time()) / 1000;
      if (left_ms <= 0 || !read_some(int(left_ms)))
        return std::string::npos;
    }
  }
  /* Whatever arrives within ms. */
  void drain(int ms) { wait_for("\x01never", ms); }
  const std::string &output() const { return out_; }

 private:
  bool read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
      return true; /* nothing yet: the caller checks its deadline */
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n > 0)
      out_.append(buf, size_t(n));
    return n != 0;
  }

  GPid pid_ = 0;
  int fd_ = -1;
  std::string out_;
};

/* The display name in the first "name  :" line after `from`. */
std::string name_after(const std::string &text, size_t from) {
  const std::string key = "name  : ";
  size_t at = text.find(key, from);
  if (at == std::string::npos)
    return "";
  at += key.size();
  return text.substr(at, text.find('\n', at) - at);
}

/* The first bar of the guest's pattern is white, the last black. */
bool shows_bars(GstSample *s) {
  int w, h;
  testsupport::sample_size(s, &w, &h);
  testsupport::Rgb first = testsupport::pixel_at(s, w / 16, h / 2);
  testsupport::Rgb last = testsupport::pixel_at(s, w - w / 16, h / 2);
  return first.r == 255 && first.g == 255 && first.b == 255 && last.r == 0 && last.g == 0 &&
         last.b == 0;
}

/* create_element's qemudbussrc into an appsink: a frame of the guest's size
 * showing its bars, within timeout_ms. */
void capture_from(GstDevice *device, int width, int height, int timeout_ms) {
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *src = gst_device_create_element(device, nullptr);
  fail_unless(src != nullptr);
  GstElement *sink = gst_element_factory_make("appsink", nullptr);
  g_object_set(sink, "max-buffers", 2u, "drop", TRUE, "sync", FALSE, nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, sink, nullptr);
  fail_unless(gst_element_link(src, sink));
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  bool seen = false;
  int w = 0, h = 0;
  while (!seen && g_get_monotonic_time() < deadline) {
    GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 500 * GST_MSECOND);
    if (!s)
      continue;
    testsupport::sample_size(s, &w, &h);
    seen = w == width && h == height && shows_bars(s);
    gst_sample_unref(s);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  fail_unless(seen, "no %dx%d frame with the bars (last %dx%d)", width, height, w, h);
}

}  // namespace

GST_START_TEST(test_monitor_lists_two_vms_and_drops_one) {
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions a;
  a.name = "alpha";
  a.bus_address = bus->address();
  a.append = "vmpattern.output=drm vmpattern.modes=800x600";
  VmOptions b = a;
  b.name = "beta";
  b.append = "vmpattern.output=drm vmpattern.modes=1024x768";
  /* alpha first, so beta is queued behind it (not the primary owner). */
  auto vm_a = boot(a);
  fail_unless(vm_a->wait_for_serial("VMPATTERN READY 800x600", kBootMs), "alpha:\n%s",
              vm_a->serial_log().c_str());
  auto vm_b = boot(b);
  std::unique_ptr<TestVm> vm_c;
  fail_unless(vm_b->wait_for_serial("VMPATTERN READY 1024x768", kBootMs), "beta:\n%s",
              vm_b->serial_log().c_str());

  gchar *dir = g_dir_make_tmp("devmon-XXXXXX", nullptr);
  const std::string registry = std::string(dir) + "/registry.bin";
  {
    MonitorProcess monitor(bus->address(), registry);
    /* The first run scans plugins into its own registry. */
    size_t at_a = monitor.wait_for("name  : alpha: ", 30000);
    size_t at_b = monitor.wait_for("name  : beta: ", 5000);
    fail_unless(at_a != std::string::npos && at_b != std::string::npos,
                "both VMs not listed:\n%s", monitor.output().c_str());
    fail_unless(monitor.wait_for("Monitoring devices", 5000) != std::string::npos, "%s",
                monitor.output().c_str());
    monitor.drain(500);
    const size_t before = monitor.output().size();

    /* beta, queued: org.qemu keeps its owner, only beta's unique name goes. */
    vm_b->kill_now();
    const int64_t t0 = g_get_monotonic_time();
    size_t removed = monitor.wait_for("Device removed:", 5000, before);
    fail_unless(removed != std::string::npos, "no removal reported:\n%s",
                monitor.output().c_str());
    g_print("beta reported removed %" G_GINT64_FORMAT " ms after kill -9 of its QEMU\n",
            (g_get_monotonic_time() - t0) / 1000);
    monitor.drain(1000);
    const std::string name = name_after(monitor.output(), removed);
    fail_unless(name.rfind("beta: ", 0) == 0, "removed '%s':\n%s", name.c_str(),
                monitor.output().c_str());
    /* Only beta: no second removal. */
    fail_unless(monitor.output().find("Device removed:", removed + 1) == std::string::npos,
                "%s", monitor.output().c_str());

    /* A third VM queues behind alpha while the monitor runs: QEMU takes
     * the name without org.qemu changing hands. */
    const size_t before_gamma = monitor.output().size();
    VmOptions c = a;
    c.name = "gamma";
    c.append = "vmpattern.output=drm vmpattern.modes=640x480";
    const int64_t t1 = g_get_monotonic_time();
    vm_c = boot(c);
    /* gst-device-monitor-1.0 prints an added device as "Device found:" too. */
    size_t added = monitor.wait_for("name  : gamma: ", kBootMs, before_gamma);
    fail_unless(added != std::string::npos, "gamma not reported:\n%s",
                monitor.output().c_str());
    g_print("gamma reported added %" G_GINT64_FORMAT " ms after its QEMU was started\n",
            (g_get_monotonic_time() - t1) / 1000);
    const size_t header = monitor.output().rfind("Device ", added);
    fail_unless(header != std::string::npos && header >= before_gamma &&
                    monitor.output().compare(header, 13, "Device found:") == 0,
                "%s", monitor.output().c_str());
    g_print("gst-device-monitor-1.0 printed:\n%s\n", monitor.output().c_str());
  }
  unlink(registry.c_str());
  rmdir(dir);
  g_free(dir);

  /* In this process: alpha and gamma are left, and alpha's element
   * captures alpha. */
  g_setenv("DBUS_SESSION_BUS_ADDRESS", bus->address().c_str(), TRUE);
  g_setenv("DBUS_SYSTEM_BUS_ADDRESS", kNoSystemBus, TRUE);
  GstDeviceProvider *provider = gst_device_provider_factory_get_by_name("qemudbusdeviceprovider");
  fail_unless(provider != nullptr);
  GList *list = gst_device_provider_get_devices(provider);
  std::vector<SeenDevice> d = testsupport::seen_devices(list);
  const std::string names = testsupport::names_of(d);
  fail_unless(d.size() == 2 && d[0].vm_name == "alpha" && d[1].vm_name == "gamma", "devices: %s",
              names.c_str());
  g_print("real QEMU's device: '%s', uuid %s, console %u\n", d[0].name.c_str(),
          d[0].uuid.c_str(), d[0].console);
  capture_from(d[0].device, 800, 600, slow(15000));
  g_list_free_full(list, gst_object_unref);
  gst_object_unref(provider);
}
GST_END_TEST;

static Suite *qemudeviceprovider_vm_suite() {
  Suite *s = suite_create("qemudeviceprovider-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_monitor_lists_two_vms_and_drops_one);
  return s;
}

int main(int argc, char **argv) {
  gchar *tool = g_find_program_in_path("gst-device-monitor-1.0");
  if (!tool) {
    g_print("SKIP: gst-device-monitor-1.0 is not installed (Debian package "
            "gstreamer1.0-plugins-base-apps)\n");
    return 77;
  }
  g_free(tool);
  return vmtest::vm_suite_main(argc, argv, qemudeviceprovider_vm_suite, "qemudeviceprovider_vm",
                               __FILE__);
}
