/* qemudbussrc against real QEMU booting the bundled test VM (tests/vm): exact
 * pixels of the guest's pattern at 32 and 24 bpp, a guest resolution change,
 * virtio-gpu through shared memory (ScanoutMap, QEMU >= 9.2), peer-to-peer
 * through QMP, choosing one of two VMs by name, QEMU killed mid-stream, and
 * reconnection. Suite "qemu" (Debian's 7.2) and suite "qemu-10" (QEMU 10 from
 * bookworm-backports, $VMD_QEMU: see test-vm.h). */
#include "src-pipeline.h"
#include "test-vm.h"
#include "vm-check.h"

#include <gst/check/gstcheck.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

using testsupport::Rgb;
using testsupport::SrcPipeline;
using vmtest::PrivateBus;
using vmtest::TestVm;
using vmtest::boot;
using vmtest::kBootMs;
using vmtest::slow;
using vmtest::VmOptions;

namespace {

const auto &kBars = testsupport::kVmPatternBars;

/* "" when the sample shows vmpattern's bars (static damage mode) exactly,
 * else what differs. */
std::string check_bars(GstSample *s) {
  int w, h;
  testsupport::sample_size(s, &w, &h);
  for (int i = 0; i < 8; i++) {
    for (int y : {h / 4, h / 2, h - 1}) {
      int x = i * w / 8 + w / 16;
      Rgb c = testsupport::pixel_at(s, x, y);
      if (c.r != kBars[i].r || c.g != kBars[i].g || c.b != kBars[i].b) {
        gchar *msg = g_strdup_printf("bar %d at %d,%d is %02x%02x%02x, expected %02x%02x%02x", i, x,
                                     y, c.r, c.g, c.b, kBars[i].r, kBars[i].g, kBars[i].b);
        std::string m = msg;
        g_free(msg);
        return m;
      }
    }
    /* Bar edges: the last pixel of bar i and the first of bar i+1. */
    if (i < 7) {
      int edge = (i + 1) * w / 8;
      Rgb a = testsupport::pixel_at(s, edge - 1, h / 2), b = testsupport::pixel_at(s, edge, h / 2);
      if (a.r != kBars[i].r || a.g != kBars[i].g || a.b != kBars[i].b || b.r != kBars[i + 1].r ||
          b.g != kBars[i + 1].g || b.b != kBars[i + 1].b)
        return "bar edge at x=" + std::to_string(edge) + " is off";
    }
  }
  return "";
}

/* The guest's frame counter: 32 cells of 16x16 at the top, white = 1. -1
 * when a cell is neither black nor white. */
int64_t read_counter(GstSample *s) {
  int64_t v = 0;
  for (int b = 0; b < 32; b++) {
    Rgb c = testsupport::pixel_at(s, b * 16 + 8, 8);
    if (c.r == 255 && c.g == 255 && c.b == 255)
      v |= int64_t(1) << b;
    else if (c.r != 0 || c.g != 0 || c.b != 0)
      return -1;
  }
  return v;
}

/* Pulls samples of the given size until the bars check passes. */
GstSample *pull_pattern(SrcPipeline &pipe, int w, int h, int timeout_ms, std::string *why) {
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  *why = "no " + std::to_string(w) + "x" + std::to_string(h) + " frame";
  while (g_get_monotonic_time() < deadline) {
    GstSample *s = pipe.pull_size(w, h, int((deadline - g_get_monotonic_time()) / 1000));
    if (!s)
      break;
    *why = check_bars(s);
    if (why->empty())
      return s;
    gst_sample_unref(s);
  }
  return nullptr;
}

}  // namespace

/* One 32 bpp VM (bochs-drm) exercises pattern, counter, a resolution change
 * and QEMU dying, to boot as few VMs as possible. */
GST_START_TEST(test_drm_32bpp_pattern_resize_and_kill) {
  SKIP_WITHOUT_VM();
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "drm32";
  o.bus_address = bus->address();
  o.append = "vmpattern.output=drm vmpattern.modes=1024x768,800x600 vmpattern.switch=6000";
  auto vm = boot(o);
  fail_unless(vm->wait_for_serial("VMPATTERN READY 1024x768 bpp=32", kBootMs), "VM did not boot:\n%s",
              vm->serial_log().c_str());

  SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" vm=drm32 keepalive-ms=200",
                   "max-buffers=2 drop=true");
  fail_unless(pipe.play());
  /* QEMU first shows a new listener its 640x480 placeholder surface; the
   * very first buffer must already be the guest's mode. */
  GstSample *s = pipe.pull(slow(10000));
  fail_unless(s != nullptr);
  int w, h;
  std::string fmt;
  testsupport::sample_size(s, &w, &h, &fmt);
  fail_unless(w == 1024 && h == 768, "first buffer is %dx%d", w, h);
  gst_sample_unref(s);
  std::string why;
  s = pull_pattern(pipe, 1024, 768, slow(10000), &why);
  fail_unless(s != nullptr, "1024x768 pattern: %s", why.c_str());
  testsupport::sample_size(s, &w, &h, &fmt);
  fail_unless_equals_string(fmt.c_str(), "BGRx");
  GstStructure *st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
  gint fn, fd;
  fail_unless(gst_structure_get_fraction(st, "framerate", &fn, &fd) && fn == 60 && fd == 1);
  int64_t c1 = read_counter(s);
  fail_unless(c1 >= 0, "counter cells are not black/white");
  gst_sample_unref(s);

  /* The counter advances (the guest redraws it every 100 ms). */
  g_usleep(1000000);
  s = pipe.pull(slow(5000));
  fail_unless(s != nullptr);
  int64_t c2 = read_counter(s);
  gst_sample_unref(s);
  fail_unless(c2 > c1, "counter did not advance: %" G_GINT64_FORMAT " then %" G_GINT64_FORMAT, c1, c2);

  /* The guest switches to 800x600: new caps, buffers of the new size. */
  s = pull_pattern(pipe, 800, 600, slow(20000), &why);
  fail_unless(s != nullptr, "800x600 pattern: %s", why.c_str());
  GstVideoInfo info;
  gst_video_info_from_caps(&info, gst_sample_get_caps(s));
  fail_unless(gst_buffer_get_size(gst_sample_get_buffer(s)) >= GST_VIDEO_INFO_SIZE(&info));
  fail_unless_equals_int(GST_VIDEO_INFO_SIZE(&info), 800 * 600 * 4);
  gst_sample_unref(s);

  /* Standard VGA: the guest's surface is guest VRAM, never shared memory: it
   * came as a Scanout copy (QEMU 10 maps only its own 640x480 placeholder). */
  g_print("std VGA under %s: scanouts %" G_GUINT64_FORMAT " (map %" G_GUINT64_FORMAT
          "), updates %" G_GUINT64_FORMAT " (map %" G_GUINT64_FORMAT ")\n",
          vmtest::qemu_version().c_str(), pipe.stat("scanouts"), pipe.stat("map-scanouts"),
          pipe.stat("updates"), pipe.stat("map-updates"));
  fail_unless(pipe.stat("scanouts") > pipe.stat("map-scanouts"));

  /* QEMU killed mid-stream: EOS within a second. */
  vm->kill_now();
  int64_t t0 = g_get_monotonic_time();
  fail_unless(pipe.wait_eos(slow(1000)), "no EOS within 1 s of QEMU's death");
  g_print("EOS %" G_GINT64_FORMAT " ms after kill -9 of QEMU\n", (g_get_monotonic_time() - t0) / 1000);
  fail_unless(pipe.stat("ignored") == 0, "QEMU's messages were refused");
}
GST_END_TEST;

/* Shared memory: QEMU >= 9.2 sends ScanoutMap/UpdateMap (the listener lists
 * org.qemu.Display1.Listener.Unix.Map in its Interfaces property) for surfaces
 * it allocates itself as memfds. A std-VGA guest's surface lies over guest
 * VRAM and comes as Scanout copies; a virtio-gpu 2D resource is such a memfd
 * (measured with QEMU 10.0.2 from bookworm-backports). QEMU 7.2 has no Map:
 * there everything must arrive as copies, with the same pixels. */
GST_START_TEST(test_virtio_gpu_shared_memory) {
  SKIP_WITHOUT_VM();
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "virtio";
  o.bus_address = bus->address();
  o.vga = "virtio";
  o.append = "vmpattern.output=drm vmpattern.virtio=1 vmpattern.modes=800x600";
  auto vm = boot(o);
  fail_unless(vm->wait_for_serial("VMPATTERN READY 800x600 bpp=32", kBootMs), "VM did not boot:\n%s",
              vm->serial_log().c_str());
  SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" vm=virtio keepalive-ms=200",
                   "max-buffers=2 drop=true");
  fail_unless(pipe.play());
  std::string why;
  GstSample *s = pull_pattern(pipe, 800, 600, slow(10000), &why);
  fail_unless(s != nullptr, "virtio-gpu pattern: %s", why.c_str());
  int64_t c1 = read_counter(s);
  gst_sample_unref(s);
  fail_unless(c1 >= 0, "counter cells are not black/white");
  /* The guest redraws its counter every 100 ms: updates flow. */
  g_usleep(1000000);
  s = pull_pattern(pipe, 800, 600, slow(5000), &why);
  fail_unless(s != nullptr, "virtio-gpu pattern later: %s", why.c_str());
  int64_t c2 = read_counter(s);
  gst_sample_unref(s);
  fail_unless(c2 > c1, "counter did not advance: %" G_GINT64_FORMAT " then %" G_GINT64_FORMAT, c1, c2);

  const uint64_t scanouts = pipe.stat("scanouts"), updates = pipe.stat("updates");
  const uint64_t map_scanouts = pipe.stat("map-scanouts"), map_updates = pipe.stat("map-updates");
  g_print("virtio-gpu under %s: scanouts %" G_GUINT64_FORMAT " (map %" G_GUINT64_FORMAT
          "), updates %" G_GUINT64_FORMAT " (map %" G_GUINT64_FORMAT ")\n",
          vmtest::qemu_version().c_str(), scanouts, map_scanouts, updates, map_updates);
  fail_unless(updates > 0, "no updates");
  fail_unless(pipe.stat("ignored") == 0, "QEMU's messages were refused");
  if (vmtest::qemu_at_least(9, 2)) {
    /* QEMU read our Interfaces (else no Map at all) and shared the resource. */
    fail_unless(map_scanouts > 0, "no ScanoutMap from %s", vmtest::qemu_version().c_str());
    fail_unless_equals_uint64(map_updates, updates);
  } else {
    fail_unless_equals_uint64(map_scanouts, 0);
    fail_unless_equals_uint64(map_updates, 0);
  }
}
GST_END_TEST;

GST_START_TEST(test_fb_24bpp_pattern) {
  SKIP_WITHOUT_VM();
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions o;
  o.name = "fb24";
  o.bus_address = bus->address();
  o.append = "vmpattern.output=fb";
  auto vm = boot(o);
  fail_unless(vm->wait_for_serial("VMPATTERN READY 1024x768 bpp=24", kBootMs), "VM did not boot:\n%s",
              vm->serial_log().c_str());
  SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" keepalive-ms=200",
                   "max-buffers=2 drop=true");
  fail_unless(pipe.play());
  std::string why;
  GstSample *s = pull_pattern(pipe, 1024, 768, slow(10000), &why);
  fail_unless(s != nullptr, "24 bpp pattern: %s", why.c_str());
  int w, h;
  std::string fmt;
  testsupport::sample_size(s, &w, &h, &fmt);
  /* QEMU shares a 24 bpp guest framebuffer with a display only when every
   * listener accepts that format; without a check_format hook (QEMU 7.2's
   * D-Bus display) only native 32 bpp is shared, so QEMU converts to
   * x8r8g8b8 itself. Either way the pixels must be exact (checked above);
   * true 24/16 bpp surfaces are covered with the scripted QEMU. */
  fail_unless(fmt == "BGRx" || fmt == "BGR", "unexpected format %s", fmt.c_str());
  g_print("24 bpp guest arrives as %s\n", fmt.c_str());
  fail_unless(read_counter(s) >= 0);
  gst_sample_unref(s);
}
GST_END_TEST;

GST_START_TEST(test_p2p_and_reconnect) {
  SKIP_WITHOUT_VM();
  gchar *dir = g_dir_make_tmp("vmtest-p2p-XXXXXX", nullptr);
  std::string qmp = std::string(dir) + "/qmp.sock";
  VmOptions o;
  o.name = "p2p";
  o.qmp_path = qmp;
  o.append = "vmpattern.output=drm vmpattern.modes=800x600";
  auto vm = boot(o);
  fail_unless(vm->wait_for_serial("VMPATTERN READY 800x600", kBootMs), "VM did not boot:\n%s",
              vm->serial_log().c_str());
  {
    SrcPipeline pipe("qemudbussrc qmp=" + qmp + " keepalive-ms=200 reconnect=true",
                     "max-buffers=2 drop=true");
    fail_unless(pipe.play());
    std::string why;
    GstSample *s = pull_pattern(pipe, 800, 600, slow(10000), &why);
    fail_unless(s != nullptr, "p2p pattern: %s", why.c_str());
    gst_sample_unref(s);

    /* QEMU dies; with reconnect the stream waits instead of ending. */
    vm->kill_now();
    vm.reset();
    fail_if(pipe.wait_eos(1500), "EOS despite reconnect=true");
    o.append = "vmpattern.output=drm vmpattern.modes=1024x768";
    vm = boot(o);
    fail_unless(vm->wait_for_serial("VMPATTERN READY 1024x768", kBootMs), "VM did not boot again:\n%s",
                vm->serial_log().c_str());
    s = pull_pattern(pipe, 1024, 768, slow(15000), &why);
    fail_unless(s != nullptr, "after reconnect: %s", why.c_str());
    gst_sample_unref(s);
  }
  vm.reset();
  unlink(qmp.c_str());
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

GST_START_TEST(test_two_vms_by_name) {
  SKIP_WITHOUT_VM();
  std::string error;
  auto bus = vmtest::private_bus();
  VmOptions a;
  a.name = "alpha";
  a.bus_address = bus->address();
  a.append = "vmpattern.output=drm vmpattern.modes=800x600";
  VmOptions b = a;
  b.name = "beta";
  b.append = "vmpattern.output=drm vmpattern.modes=1024x768";
  auto vm_a = boot(a);
  auto vm_b = boot(b);
  fail_unless(vm_a->wait_for_serial("VMPATTERN READY 800x600", kBootMs), "alpha:\n%s",
              vm_a->serial_log().c_str());
  fail_unless(vm_b->wait_for_serial("VMPATTERN READY 1024x768", kBootMs), "beta:\n%s",
              vm_b->serial_log().c_str());
  std::string why;
  for (auto pick : {std::make_pair("beta", 1024), std::make_pair("alpha", 800)}) {
    SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" vm=" + pick.first +
                         " keepalive-ms=200",
                     "max-buffers=2 drop=true");
    fail_unless(pipe.play());
    int h = pick.second == 1024 ? 768 : 600;
    GstSample *s = pull_pattern(pipe, pick.second, h, slow(10000), &why);
    fail_unless(s != nullptr, "vm=%s: %s", pick.first, why.c_str());
    gst_sample_unref(s);
  }
  /* No such VM: the error lists the ones found. */
  {
    SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" vm=gamma");
    pipe.play();
    std::string msg;
    fail_unless(pipe.wait_error(slow(10000), &msg));
    fail_unless(strstr(msg.c_str(), "gamma") && strstr(msg.c_str(), "'alpha'") &&
                    strstr(msg.c_str(), "'beta'"),
                "%s", msg.c_str());
  }
  /* Bus mode with reconnect: beta dies and a new VM named beta comes back
   * (queued behind alpha on org.qemu) with another mode. */
  SrcPipeline pipe("qemudbussrc address=\"" + bus->address() + "\" vm=beta reconnect=true keepalive-ms=200",
                   "max-buffers=2 drop=true");
  fail_unless(pipe.play());
  GstSample *s = pull_pattern(pipe, 1024, 768, slow(10000), &why);
  fail_unless(s != nullptr, "vm=beta: %s", why.c_str());
  gst_sample_unref(s);
  vm_b->kill_now();
  vm_b.reset();
  fail_if(pipe.wait_eos(1500), "EOS despite reconnect=true");
  b.append = "vmpattern.output=drm vmpattern.modes=640x400";
  vm_b = boot(b);
  fail_unless(vm_b->wait_for_serial("VMPATTERN READY 640x400", kBootMs), "beta again:\n%s",
              vm_b->serial_log().c_str());
  s = pull_pattern(pipe, 640, 400, slow(15000), &why);
  fail_unless(s != nullptr, "beta after reconnect: %s", why.c_str());
  gst_sample_unref(s);
}
GST_END_TEST;

static Suite *qemudbussrc_vm_suite() {
  Suite *s = suite_create("qemudbussrc-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_drm_32bpp_pattern_resize_and_kill);
  tcase_add_test(tc, test_fb_24bpp_pattern);
  tcase_add_test(tc, test_virtio_gpu_shared_memory);
  tcase_add_test(tc, test_p2p_and_reconnect);
  tcase_add_test(tc, test_two_vms_by_name);
  return s;
}

int main(int argc, char **argv) {
  return vmtest::vm_suite_main(argc, argv, qemudbussrc_vm_suite, "qemudbussrc_vm", __FILE__);
}
