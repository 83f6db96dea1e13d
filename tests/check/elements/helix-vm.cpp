/* HXFR end to end between a real guest and the host: the test VM runs
 * hxfr-probe (our protocol and transport code, static), which sends a frame
 * with pixels over a virtio-serial port; QEMU carries the port to a UNIX
 * socket where helixframesrv listens, encodes it with the host's encoder and
 * answers. And vsockenc's resource-ID lookup against a real virtio-gpu: the
 * guest runs virtgpu-probe (our virtgpu-resource.cpp, static) and the IDs it
 * finds must be the ones QEMU traced. Suite "qemu". */
#include "test-vm.h"

/* The C++ headers first: gstcheck.h defines macros (fail, ...) that clash with them. */
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <unistd.h>

#include "vm-check.h"

GST_START_TEST(test_virtio_serial_round_trip) {
  if (!gst_registry_check_feature_version(gst_registry_get(), "x264enc", 1, 0, 0)) {
    g_print("SKIP: no x264enc\n");
    return;
  }
  gchar *dir = g_dir_make_tmp("helix-vm-XXXXXX", nullptr);
  std::string sock = std::string(dir) + "/helix.sock";
  GError *err = nullptr;
  std::string desc = "helixframesrv address=unix://" + sock;
  GstElement *server = gst_parse_launch(desc.c_str(), &err);
  fail_unless(server != nullptr, "%s", err ? err->message : "");
  fail_unless(gst_element_set_state(server, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  vmtest::VmOptions o;
  o.name = "hxfr";
  o.display = "none";
  o.append = "vmpattern.output=fb vmpattern.modules=virtio_console vmpattern.run=hxfr-probe";
  o.extra_args = {"-device", "virtio-serial-pci", "-chardev", "socket,id=hx,path=" + sock,
                  "-device", "virtserialport,chardev=hx,name=org.helix.frame-export"};
  std::string error;
  auto vm = vmtest::TestVm::start(o, &error);
  fail_unless(vm != nullptr, "%s", error.c_str());
  bool ok = vm->wait_for_serial("HXFR PROBE OK", 120000);
  std::string log = vm->serial_log();
  g_print("%s\n", log.substr(log.find("HXFR PROBE") == std::string::npos ? 0 : log.find("HXFR PROBE"), 80).c_str());
  fail_unless(ok, "the guest got no encoded frame back:\n%s", log.c_str());
  /* Asked as a keyframe, with the request's pts. */
  fail_unless(log.find("keyframe=1 pts=1000000") != std::string::npos, "%s", log.c_str());
  vm.reset();
  gst_element_set_state(server, GST_STATE_NULL);
  gst_object_unref(server);
  rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

namespace {

struct Resource {
  unsigned id = 0, w = 0, h = 0;
};

/* "VIRTGPU PROBE buffer=I size=WxH resource_id=ID node=PATH" lines of the guest. */
std::vector<Resource> probe_buffers(const std::string &log, std::vector<std::string> *nodes) {
  std::vector<Resource> out;
  std::istringstream in(log);
  std::string line;
  const std::string key = "VIRTGPU PROBE buffer=";
  while (std::getline(in, line)) {
    size_t at = line.find(key);
    if (at == std::string::npos)
      continue;
    Resource r;
    int index = 0;
    char node[128] = "";
    if (sscanf(line.c_str() + at, "VIRTGPU PROBE buffer=%d size=%ux%u resource_id=%u node=%127s",
               &index, &r.w, &r.h, &r.id, node) == 5) {
      out.push_back(r);
      nodes->push_back(node);
    }
  }
  return out;
}

/* QEMU's "virtio_gpu_cmd_res_create_2d res 0x3, fmt 0x2, w 64, h 64" (log trace backend; a
 * "PID@TIME:" prefix with -msg timestamp=on is skipped too). */
std::vector<Resource> traced_2d_resources(const std::string &trace) {
  std::vector<Resource> out;
  std::istringstream in(trace);
  std::string line;
  const std::string key = "virtio_gpu_cmd_res_create_2d ";
  while (std::getline(in, line)) {
    size_t at = line.find(key);
    if (at == std::string::npos)
      continue;
    Resource r;
    unsigned fmt = 0;
    if (sscanf(line.c_str() + at + key.size(), "res 0x%x, fmt 0x%x, w %u, h %u", &r.id, &fmt, &r.w,
               &r.h) == 4)
      out.push_back(r);
  }
  return out;
}

}  // namespace

/* vsockenc's DMA-BUF -> resource ID lookup, checked against the host: the guest exports dumb
 * buffers of three sizes nothing else uses as DMA-BUFs and resolves them with our code
 * (VirtgpuResources::open("") -> find_render_node(), resource_id()); QEMU traces every
 * RESOURCE_CREATE_2D with its size (the kernel's fbdev emulation adds one of the display's
 * size). Each printed ID must be the traced ID of the one 2D resource of that size. */
GST_START_TEST(test_virtgpu_resource_ids) {
  gchar *dir = g_dir_make_tmp("helix-vm-XXXXXX", nullptr);
  fail_unless(dir != nullptr);
  std::string trace_path = std::string(dir) + "/qemu-trace.log";

  vmtest::VmOptions o;
  o.name = "virtgpu";
  o.display = "none";
  o.append = "vmpattern.output=fb vmpattern.virtio=1 vmpattern.run=virtgpu-probe";
  o.extra_args = {"-device", "virtio-gpu-pci", "-trace", "virtio_gpu_cmd_res_create_2d",
                  "-D", trace_path};
  std::string error;
  auto vm = vmtest::TestVm::start(o, &error);
  fail_unless(vm != nullptr, "%s", error.c_str());
  bool exited = vm->wait_for_serial("VMPATTERN EXIT status=", 120000);
  /* The guest powers off after the probe: wait for QEMU to end so its trace is complete. */
  for (int i = 0; i < 200 && vm->running(); i++)
    g_usleep(50000);
  std::string log = vm->serial_log();
  bool qemu_ended = !vm->running();

  gchar *contents = nullptr;
  gsize len = 0;
  std::string trace;
  if (g_file_get_contents(trace_path.c_str(), &contents, &len, nullptr))
    trace.assign(contents, len);
  g_free(contents);
  vm.reset();
  g_unlink(trace_path.c_str());
  g_rmdir(dir);
  g_free(dir);

  /* Asserted only now: a failed check ends the test, and QEMU and the files are gone. */
  fail_unless(exited, "the probe did not finish:\n%s", log.c_str());
  fail_unless(qemu_ended, "QEMU did not exit after the guest powered off");
  fail_unless(log.find("VIRTGPU PROBE OK buffers=3") != std::string::npos,
              "the probe failed:\n%s", log.c_str());
  std::vector<std::string> nodes;
  std::vector<Resource> printed = probe_buffers(log, &nodes);
  std::vector<Resource> traced = traced_2d_resources(trace);
  fail_unless_equals_int(printed.size(), 3);
  fail_if(traced.empty(), "QEMU traced no virtio_gpu_cmd_res_create_2d (trace backend not "
                          "\"log\"?):\n%s", trace.c_str());

  std::set<unsigned> ids;
  for (size_t i = 0; i < printed.size(); i++) {
    const Resource &p = printed[i];
    fail_unless(nodes[i].rfind("/dev/dri/renderD", 0) == 0, "looked up on %s, not a render node",
                nodes[i].c_str());
    fail_unless(p.id != 0);
    fail_unless(ids.insert(p.id).second, "resource ID %u printed twice", p.id);
    const Resource *match = nullptr;
    for (const Resource &t : traced) {
      if (t.w != p.w || t.h != p.h)
        continue;
      fail_unless(match == nullptr, "two %ux%u resources in QEMU's trace:\n%s", p.w, p.h,
                  trace.c_str());
      match = &t;
    }
    fail_unless(match != nullptr, "no %ux%u resource in QEMU's trace:\n%s", p.w, p.h,
                trace.c_str());
    g_print("virtgpu %ux%u: guest lookup %u, QEMU traced %u\n", p.w, p.h, p.id, match->id);
    fail_unless_equals_int(p.id, match->id);
  }
  /* The refusals the probe checked were printed (an error text each, no crash). */
  fail_unless(log.find("VIRTGPU PROBE refused memfd: ") != std::string::npos, "%s", log.c_str());
}
GST_END_TEST;

static Suite *helix_vm_suite() {
  Suite *s = suite_create("helix-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_virtio_serial_round_trip);
  tcase_add_test(tc, test_virtgpu_resource_ids);
  return s;
}

int main(int argc, char **argv) {
  return vmtest::vm_suite_main(argc, argv, helix_vm_suite, "helix_vm", __FILE__);
}
