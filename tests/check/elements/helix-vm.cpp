/* HXFR end to end between a real guest and the host: the test VM runs
 * hxfr-probe (our protocol and transport code, static), which sends a frame
 * with pixels over a virtio-serial port; QEMU carries the port to a UNIX
 * socket where helixframesrv listens, encodes it with the host's encoder and
 * answers. Suite "qemu". */
#include "test-vm.h"

#include <gst/check/gstcheck.h>
#include <unistd.h>

#include <string>

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

static Suite *helix_vm_suite() {
  Suite *s = suite_create("helix-vm");
  TCase *tc = tcase_create("qemu");
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_virtio_serial_round_trip);
  return s;
}

int main(int argc, char **argv) {
  std::string reason;
  if (!vmtest::test_vm_available(&reason)) {
    g_print("SKIP: %s\n", reason.c_str());
    return 77;
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(helix_vm_suite(), "helix_vm", __FILE__);
}
