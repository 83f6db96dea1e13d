/* Benchmark: runs "<source> ! fakesink" in this process for a while and
 * prints delivered frames, fps and CPU seconds (this process: every thread,
 * and optionally another process such as QEMU) per 100 frames.
 *
 *   capture-bench [--seconds N] [--warmup N] [--pid PID] "<source description>"
 *
 * One line of key=value figures on stdout; never fails on a timing.
 */
#include "cpu-time.h"

#include <gst/gst.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::atomic<uint64_t> g_frames{0};

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer) {
  g_frames++;
  return GST_PAD_PROBE_OK;
}

using bench::pid_cpu_seconds;
using bench::self_cpu_seconds;

bool run_for(GstElement *pipeline, double seconds) {
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, GstClockTime(seconds * GST_SECOND),
                                               GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  bool ok = true;
  if (msg) {
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error(msg, &err, nullptr);
      fprintf(stderr, "capture-bench: error: %s\n", err->message);
      g_clear_error(&err);
    } else {
      fprintf(stderr, "capture-bench: unexpected EOS\n");
    }
    ok = false;
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
  return ok;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  double seconds = 10, warmup = 2;
  long pid = 0;
  const char *source = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atof(argv[++i]);
    else if (!strcmp(argv[i], "--pid") && i + 1 < argc)
      pid = atol(argv[++i]);
    else
      source = argv[i];
  }
  if (!source) {
    fprintf(stderr, "usage: capture-bench [--seconds N] [--warmup N] [--pid PID] \"<source>\"\n");
    return 2;
  }
  std::string desc = std::string(source) + " ! fakesink name=benchsink sync=false";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  if (!pipeline) {
    fprintf(stderr, "capture-bench: %s\n", err->message);
    return 2;
  }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "benchsink");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, nullptr, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);

  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  bool ok = run_for(pipeline, warmup);
  uint64_t f0 = g_frames.load();
  double c0 = self_cpu_seconds(), p0 = pid_cpu_seconds(pid);
  gint64 t0 = g_get_monotonic_time();
  ok = ok && run_for(pipeline, seconds);
  uint64_t frames = g_frames.load() - f0;
  double cpu = self_cpu_seconds() - c0;
  double peer = p0 >= 0 ? pid_cpu_seconds(pid) - p0 : -1;
  double wall = double(g_get_monotonic_time() - t0) / 1e6;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  if (!ok)
    return 1;
  printf("frames=%" G_GUINT64_FORMAT " seconds=%.2f fps=%.2f cpu_s=%.3f cpu_s_per_100=%.4f", frames,
         wall, double(frames) / wall, cpu, frames ? cpu * 100.0 / double(frames) : 0.0);
  if (peer >= 0)
    printf(" peer_cpu_s=%.3f peer_cpu_s_per_100=%.4f", peer,
           frames ? peer * 100.0 / double(frames) : 0.0);
  printf("\n");
  return 0;
}
