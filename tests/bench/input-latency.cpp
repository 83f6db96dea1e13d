/* How long a navigation event takes to become QEMU's Keyboard/Mouse call:
 * qemudbussrc against the scripted QEMU (tests/check/support/fake-qemu),
 * peer to peer, in one process. Prints the median, 95th percentile and
 * maximum of single key presses and pointer moves (each sent alone, with
 * time between), and how long a typed burst takes to arrive whole (the
 * pacing of key calls, docs/qemudbussrc.md). Never fails on a timing.
 *
 *   build/tests/bench/input-latency [ROUNDS]      (default 200)
 */
#include "fake-qemu.h"

#include <gst/gst.h>
#include <gst/video/navigation.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

/* Waits until QEMU's input log has n entries; the time it took, or -1. */
double wait_log(fakeqemu::FakeQemu &qemu, size_t n, int64_t since_us) {
  const int64_t until = since_us + 5 * G_USEC_PER_SEC;
  while (g_get_monotonic_time() < until) {
    if (qemu.input_log().size() >= n)
      return (g_get_monotonic_time() - since_us) / 1000.0;
    g_usleep(50);
  }
  return -1;
}

void report(const char *what, std::vector<double> ms) {
  if (ms.empty()) {
    std::printf("%-34s no samples\n", what);
    return;
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-34s median %.3f ms  p95 %.3f ms  max %.3f ms  (%zu samples)\n", what,
              ms[ms.size() / 2], ms[ms.size() * 95 / 100], ms.back(), ms.size());
}

void send(GstPad *pad, GstEvent *event) { gst_pad_send_event(pad, event); }

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  const int rounds = argc > 1 ? std::max(1, atoi(argv[1])) : 200;
  gchar *dir = g_dir_make_tmp("input-latency-XXXXXX", nullptr);
  const std::string qmp = std::string(dir) + "/qmp.sock";
  fakeqemu::FakeQemuOptions opts;
  opts.mouse_absolute = true;
  std::string error;
  auto qemu = fakeqemu::FakeQemu::start_p2p(qmp, opts, &error);
  if (!qemu) {
    std::fprintf(stderr, "input-latency: %s\n", error.c_str());
    return 1;
  }
  GstElement *pipe = gst_parse_launch(
      ("qemudbussrc name=src qmp=" + qmp + " keepalive-ms=0 ! fakesink").c_str(), nullptr);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
  GstPad *pad = gst_element_get_static_pad(src, "src");
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  if (!qemu->wait_for_listener(10000)) {
    std::fprintf(stderr, "input-latency: qemudbussrc did not register a listener\n");
    return 1;
  }
  /* A surface for the pointer to land on. */
  qemu->scanout(640, 480, 640 * 4, 0x20020888, std::vector<uint8_t>(640 * 480 * 4, 0x40));
  g_usleep(300000);

  std::vector<double> keys, moves;
  for (int i = 0; i < rounds; i++) {
    const size_t n = qemu->input_log().size();
    const int64_t t0 = g_get_monotonic_time();
    send(pad, gst_navigation_event_new_key_press("KeyA", GST_NAVIGATION_MODIFIER_NONE));
    const double ms = wait_log(*qemu, n + 1, t0);
    if (ms >= 0)
      keys.push_back(ms);
    send(pad, gst_navigation_event_new_key_release("KeyA", GST_NAVIGATION_MODIFIER_NONE));
    wait_log(*qemu, n + 2, g_get_monotonic_time());
    g_usleep(10000); /* beyond the pacing interval: each press is alone */
  }
  for (int i = 0; i < rounds; i++) {
    const size_t n = qemu->input_log().size();
    const int64_t t0 = g_get_monotonic_time();
    send(pad, gst_navigation_event_new_mouse_move(10 + i % 600, 20 + i % 400,
                                                  GST_NAVIGATION_MODIFIER_NONE));
    const double ms = wait_log(*qemu, n + 1, t0);
    if (ms >= 0)
      moves.push_back(ms);
    g_usleep(2000);
  }
  /* 100 characters at once, as a paste or xdotool type would send them. */
  const size_t n = qemu->input_log().size();
  const int64_t t0 = g_get_monotonic_time();
  for (int i = 0; i < 100; i++) {
    send(pad, gst_navigation_event_new_key_press("KeyB", GST_NAVIGATION_MODIFIER_NONE));
    send(pad, gst_navigation_event_new_key_release("KeyB", GST_NAVIGATION_MODIFIER_NONE));
  }
  const double burst_ms = wait_log(*qemu, n + 200, t0);

  std::printf("qemudbussrc input, navigation event -> QEMU's D-Bus call (scripted QEMU, p2p)\n");
  report("key press (alone)", keys);
  report("pointer move (alone, absolute)", moves);
  if (burst_ms >= 0)
    std::printf("%-34s %.0f ms for 200 key calls (%.0f calls/s)\n", "burst of 100 typed keys",
                burst_ms, 200 / (burst_ms / 1000));
  else
    std::printf("%-34s incomplete after 5 s\n", "burst of 100 typed keys");

  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pad);
  gst_object_unref(src);
  gst_object_unref(pipe);
  qemu.reset();
  unlink(qmp.c_str());
  rmdir(dir);
  g_free(dir);
  return 0;
}
