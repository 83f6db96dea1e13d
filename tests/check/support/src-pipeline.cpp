/* Test support: source pipeline with appsink. */
#include "src-pipeline.h"

#include <gst/check/gstcheck.h>

#include <algorithm>
#include <vector>

namespace testsupport {

SrcPipeline::SrcPipeline(const std::string &source, const std::string &sink_props) {
  /* wait-on-eos=false: EOS never waits in appsink for samples nobody pulls. With the default,
   * a test that fails with samples queued (CK_FORK=no under valgrind skips the destructor
   * that stops the pipeline) left the streaming thread blocked there and the test binary
   * hung at exit in gst_task_cleanup_all instead of reporting the failure. */
  std::string desc = source +
                     " ! appsink name=testsink sync=false emit-signals=false enable-last-sample=false"
                     " wait-on-eos=false " +
                     sink_props;
  GError *err = nullptr;
  pipeline_ = gst_parse_launch(desc.c_str(), &err);
  fail_unless(pipeline_ != nullptr, "cannot build '%s': %s", desc.c_str(),
              err ? err->message : "?");
  g_clear_error(&err);
  sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "testsink");
  GstIterator *it = gst_bin_iterate_sources(GST_BIN(pipeline_));
  GValue v = G_VALUE_INIT;
  if (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    source_ = GST_ELEMENT(g_value_dup_object(&v));
    g_value_unset(&v);
  }
  gst_iterator_free(it);
}

SrcPipeline::~SrcPipeline() {
  stop();
  gst_clear_object(&source_);
  gst_clear_object(&sink_);
  gst_clear_object(&pipeline_);
}

bool SrcPipeline::play() {
  return gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

void SrcPipeline::stop() {
  if (pipeline_)
    gst_element_set_state(pipeline_, GST_STATE_NULL);
}

GstSample *SrcPipeline::pull(int timeout_ms) {
  return gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), GstClockTime(timeout_ms) * GST_MSECOND);
}

GstSample *SrcPipeline::pull_size(int width, int height, int timeout_ms) {
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  for (;;) {
    int64_t left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0)
      return nullptr;
    GstSample *s = pull(int(left));
    if (!s)
      return nullptr;
    int w, h;
    if (sample_size(s, &w, &h) && w == width && h == height)
      return s;
    gst_sample_unref(s);
  }
}

int SrcPipeline::count_samples(int window_ms) {
  const int64_t deadline = g_get_monotonic_time() + int64_t(window_ms) * 1000;
  int n = 0;
  for (;;) {
    int64_t left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0)
      return n;
    GstSample *s = pull(int(left));
    if (!s)
      return n;
    gst_sample_unref(s);
    n++;
  }
}

GstMessage *SrcPipeline::pop_bus(GstMessageType types, int timeout_ms) {
  GstBus *bus = gst_element_get_bus(pipeline_);
  const int64_t deadline = g_get_monotonic_time() + int64_t(timeout_ms) * 1000;
  GstMessage *found = nullptr;
  while (!found) {
    /* A zero timeout still drains what is queued. */
    int64_t left = std::max<int64_t>(deadline - g_get_monotonic_time(), 0);
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, GstClockTime(left) * GST_USECOND,
        GstMessageType(types | GST_MESSAGE_WARNING | GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
    if (!msg)
      break;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_warning(msg, &err, &dbg);
      warnings_ += std::string(err->message) + " | " + (dbg ? dbg : "") + "\n";
      g_clear_error(&err);
      g_free(dbg);
    }
    if (GST_MESSAGE_TYPE(msg) & types)
      found = msg;
    else
      gst_message_unref(msg);
  }
  gst_object_unref(bus);
  return found;
}

bool SrcPipeline::wait_error(int timeout_ms, std::string *message, std::string *debug) {
  GstMessage *msg = pop_bus(GST_MESSAGE_ERROR, timeout_ms);
  if (!msg)
    return false;
  GError *err = nullptr;
  gchar *dbg = nullptr;
  gst_message_parse_error(msg, &err, &dbg);
  if (message)
    *message = err->message;
  if (debug)
    *debug = dbg ? dbg : "";
  g_clear_error(&err);
  g_free(dbg);
  gst_message_unref(msg);
  return true;
}

bool SrcPipeline::wait_eos(int timeout_ms) {
  GstMessage *msg = pop_bus(GST_MESSAGE_EOS, timeout_ms);
  if (!msg)
    return false;
  gst_message_unref(msg);
  return true;
}

std::string SrcPipeline::warnings() {
  GstMessage *msg = pop_bus(GST_MESSAGE_WARNING, 0);
  if (msg)
    gst_message_unref(msg);
  return warnings_;
}

uint64_t SrcPipeline::stat(const char *field) {
  GstStructure *st = nullptr;
  g_object_get(source_, "stats", &st, nullptr);
  guint64 v = 0;
  if (st) {
    gst_structure_get_uint64(st, field, &v);
    gst_structure_free(st);
  }
  return v;
}

bool sample_size(GstSample *sample, int *width, int *height, std::string *format) {
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, gst_sample_get_caps(sample)))
    return false;
  *width = GST_VIDEO_INFO_WIDTH(&info);
  *height = GST_VIDEO_INFO_HEIGHT(&info);
  if (format)
    *format = gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info));
  return true;
}

Rgb pixel_at(GstSample *sample, int x, int y) {
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
  GstVideoFrame frame;
  fail_unless(gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ));
  fail_unless(x >= 0 && y >= 0 && x < GST_VIDEO_INFO_WIDTH(&info) && y < GST_VIDEO_INFO_HEIGHT(&info));
  /* Let GStreamer unpack the row to ARGB: valid for every format we output. */
  const GstVideoFormatInfo *finfo = info.finfo;
  int width = GST_VIDEO_INFO_WIDTH(&info);
  std::vector<uint8_t> row(size_t(width) * 8);
  gpointer data[GST_VIDEO_MAX_PLANES] = {GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)};
  gint stride[GST_VIDEO_MAX_PLANES] = {GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0)};
  finfo->unpack_func(finfo, GST_VIDEO_PACK_FLAG_NONE, row.data(), data, stride, 0, y, width);
  Rgb px;
  if (finfo->unpack_format == GST_VIDEO_FORMAT_ARGB64) {
    const uint16_t *p = reinterpret_cast<const uint16_t *>(row.data()) + 4 * x;
    px = Rgb{uint8_t(p[1] >> 8), uint8_t(p[2] >> 8), uint8_t(p[3] >> 8)};
  } else {
    const uint8_t *p = row.data() + 4 * x;
    px = Rgb{p[1], p[2], p[3]};
  }
  gst_video_frame_unmap(&frame);
  return px;
}

}  // namespace testsupport
