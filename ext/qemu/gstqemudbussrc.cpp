/* gst-vmdisplay: qemudbussrc.
 *
 * A live push source. The D-Bus work (connection, VM and console choice,
 * the Listener QEMU calls) runs in vmd::DisplayClient on its own thread and
 * GMainContext; display messages land in a vmd::FrameStore, the host-owned
 * copy of the surface. create() waits on the store with deadlines for the
 * frame interval (max-framerate) and the keepalive, renegotiates when the
 * surface changes, and copies only the damage a recycled buffer lacks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudbussrc.h"
#include "gstqemudbussrc-private.h"

#include "display-client.h"
#include "frame-store.h"
#include "pixman-formats.h"

#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

GST_DEBUG_CATEGORY(gst_qemu_dbus_src_debug);
#define GST_CAT_DEFAULT gst_qemu_dbus_src_debug

namespace {

constexpr guint kMaxKeepaliveMs = 60 * 60 * 1000;
constexpr guint kMaxConsole = 1024;
/* Buffers in flight downstream before we stop recycling and allocate. */
constexpr guint kPoolMaxBuffers = 16;
/* How long a new surface must stay before caps follow it (see WaitArgs). */
constexpr int64_t kFormatSettleUs = 100 * 1000;

enum {
  PROP_0,
  PROP_ADDRESS,
  PROP_VM,
  PROP_CONSOLE,
  PROP_QMP,
  PROP_MAX_FRAMERATE,
  PROP_KEEPALIVE_MS,
  PROP_RECONNECT,
  PROP_STATS,
  PROP_INPUT,
  PROP_SHOW_CURSOR,
  PROP_DETILE,
  PROP_RENDER_NODE,
};

GQuark frame_seq_quark() {
  static GQuark q = g_quark_from_static_string("gst-vmdisplay-frame-seq");
  return q;
}

}  // namespace

G_DEFINE_TYPE(GstQemuDBusSrc, gst_qemu_dbus_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(qemudbussrc, "qemudbussrc", GST_RANK_NONE, GST_TYPE_QEMU_DBUS_SRC);

static GstCaps *template_caps() {
  GValue formats = G_VALUE_INIT;
  gst_value_list_init(&formats, 0);
  size_t n;
  const vmd::PixmanFormat *table = vmd::pixman_format_table(&n);
  for (size_t i = 0; i < n; i++) {
    const char *name = gst_video_format_to_string(table[i].gst);
    bool dup = false;
    for (guint j = 0; j < gst_value_list_get_size(&formats); j++)
      dup |= g_str_equal(g_value_get_string(gst_value_list_get_value(&formats, j)), name);
    if (dup)
      continue;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_STRING);
    g_value_set_string(&v, name);
    gst_value_list_append_and_take_value(&formats, &v);
  }
  GstCaps *caps = gst_caps_new_simple("video/x-raw", "width", GST_TYPE_INT_RANGE, 1,
                                      int(vmd::kMaxSurfaceSide), "height", GST_TYPE_INT_RANGE, 1,
                                      int(vmd::kMaxSurfaceSide), "framerate",
                                      GST_TYPE_FRACTION_RANGE, 1, 1, G_MAXINT, 1,
                                      "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, nullptr);
  gst_caps_set_value(caps, "format", &formats);
  g_value_unset(&formats);
  /* After system memory: GLMemory only for downstream that refuses it. */
  gst_caps_append(caps, qemu_dbus_src_gl_template_caps());
  return caps;
}

static void log_from_client(GstQemuDBusSrc *self, vmd::LogLevel level, const std::string &msg) {
  switch (level) {
    case vmd::LogLevel::Debug:
      GST_DEBUG_OBJECT(self, "%s", msg.c_str());
      break;
    case vmd::LogLevel::Info:
      GST_INFO_OBJECT(self, "%s", msg.c_str());
      break;
    case vmd::LogLevel::Warning: {
      GST_WARNING_OBJECT(self, "ignored a message from QEMU: %s", msg.c_str());
      /* Post at most one warning a second: a broken peer must not flood the bus. */
      int64_t now = g_get_monotonic_time();
      int64_t last = self->priv->last_warning_us.load();
      if (now - last >= G_USEC_PER_SEC &&
          self->priv->last_warning_us.compare_exchange_strong(last, now))
        GST_ELEMENT_WARNING(self, STREAM, DECODE, ("Ignored a malformed display message from QEMU"),
                            ("%s", msg.c_str()));
      break;
    }
  }
}

static gboolean gst_qemu_dbus_src_start(GstBaseSrc *base) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(base);
  GstQemuDBusSrcPrivate *priv = self->priv;
  std::lock_guard<std::mutex> guard(priv->lock);
  vmd::DisplayClientConfig config;
  config.address = priv->settings.address;
  config.vm = priv->settings.vm;
  config.console = priv->settings.console;
  config.qmp = priv->settings.qmp;
  config.reconnect = priv->settings.reconnect;
  config.dmabuf = priv->settings.dmabuf;
  priv->store = std::make_shared<vmd::FrameStore>();
  priv->store->set_draw_cursor(priv->settings.show_cursor);
  priv->client = std::make_unique<vmd::DisplayClient>(
      config, priv->store,
      [self](vmd::LogLevel level, const std::string &msg) { log_from_client(self, level, msg); });
  priv->generation = 0;
  priv->last_push_us = 0;
  priv->last_pts = GST_CLOCK_TIME_NONE;
  priv->discont = true;
  priv->keepalive_frames = 0;
  priv->pushed_any = false;
  priv->cursor_serial = priv->cursor_image_serial = 0;
  priv->last_cursor_us = 0;
  gst_clear_buffer(&priv->cursor_image);
  priv->cursor_events = priv->input_events = 0;
  priv->path_serial = 0;
  priv->client->start();
  return TRUE;
}

static gboolean gst_qemu_dbus_src_stop(GstBaseSrc *base) {
  GstQemuDBusSrcPrivate *priv = GST_QEMU_DBUS_SRC(base)->priv;
  std::unique_ptr<vmd::DisplayClient> client;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    client = std::move(priv->client);
  }
  client.reset(); /* joins the D-Bus thread */
  qemu_dbus_src_gl_release(GST_QEMU_DBUS_SRC(base), nullptr);
  {
    /* Let go of the surface, QEMU's last message and any memfd now, not at
     * the next start. */
    std::lock_guard<std::mutex> guard(priv->lock);
    priv->store.reset();
  }
  priv->have_frame = false;
  if (priv->pool) {
    gst_buffer_pool_set_active(priv->pool, FALSE);
    gst_clear_object(&priv->pool);
  }
  return TRUE;
}

static std::shared_ptr<vmd::FrameStore> current_store(GstQemuDBusSrc *self) {
  std::lock_guard<std::mutex> guard(self->priv->lock);
  return self->priv->store;
}

static gboolean gst_qemu_dbus_src_unlock(GstBaseSrc *base) {
  if (auto store = current_store(GST_QEMU_DBUS_SRC(base)))
    store->set_flushing(true);
  /* Flushing, pausing or stopping: nothing stays pressed in the guest. */
  qemu_dbus_src_release_input(GST_QEMU_DBUS_SRC(base));
  return TRUE;
}

static gboolean gst_qemu_dbus_src_event(GstBaseSrc *base, GstEvent *event) {
  if (qemu_dbus_src_upstream_event(GST_QEMU_DBUS_SRC(base), event))
    return TRUE;
  return GST_BASE_SRC_CLASS(gst_qemu_dbus_src_parent_class)->event(base, event);
}

static gboolean gst_qemu_dbus_src_unlock_stop(GstBaseSrc *base) {
  if (auto store = current_store(GST_QEMU_DBUS_SRC(base)))
    store->set_flushing(false);
  return TRUE;
}

static GstCaps *gst_qemu_dbus_src_get_caps(GstBaseSrc *base, GstCaps *filter) {
  GstCaps *caps = gst_pad_get_current_caps(GST_BASE_SRC_PAD(base));
  if (!caps)
    caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(base));
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = tmp;
  }
  return caps;
}

/* Caps are fixed by QEMU's surface, and set from create() once it is known. */
static gboolean gst_qemu_dbus_src_negotiate(GstBaseSrc *base) {
  GstQemuDBusSrcPrivate *priv = GST_QEMU_DBUS_SRC(base)->priv;
  if (priv->generation == 0)
    return TRUE;
  GstCaps *caps = qemu_dbus_src_gl_caps(GST_QEMU_DBUS_SRC(base));
  if (!caps)
    caps = gst_video_info_to_caps(&priv->info);
  gboolean ok = gst_base_src_set_caps(base, caps);
  gst_caps_unref(caps);
  return ok;
}

static GstClockTime frame_interval(const Settings &s) {
  return gst_util_uint64_scale_int(GST_SECOND, s.fps_d, s.fps_n);
}

static gboolean gst_qemu_dbus_src_query(GstBaseSrc *base, GstQuery *query) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(base);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    /* A frame waits at most one frame interval before it is pushed. */
    GstClockTime latency;
    {
      std::lock_guard<std::mutex> guard(self->priv->lock);
      latency = frame_interval(self->priv->settings);
    }
    gst_query_set_latency(query, TRUE, latency, latency);
    return TRUE;
  }
  if (qemu_dbus_src_gl_query(self, query))
    return TRUE;
  return GST_BASE_SRC_CLASS(gst_qemu_dbus_src_parent_class)->query(base, query);
}

/* GLMemory caps were set (gstqemudbussrc-gl.cpp): the rest of a new format. */
static void new_format(GstQemuDBusSrcPrivate *priv, const GstVideoInfo &info, uint64_t generation) {
  priv->info = info;
  priv->generation = generation;
  priv->have_frame = false;
  priv->discont = true;
}

static bool renegotiate(GstQemuDBusSrc *self, vmd::FrameStore &store, const vmd::FrameFormat &fmt,
                        const Settings &s, bool *flushing) {
  GstQemuDBusSrcPrivate *priv = self->priv;
  GstVideoInfo info;
  if (!gst_video_info_set_format(&info, fmt.format->gst, fmt.width, fmt.height)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Cannot describe a %ux%u %s surface", fmt.width,
                                                fmt.height, fmt.format->name), (nullptr));
    return false;
  }
  info.fps_n = s.fps_n;
  info.fps_d = s.fps_d;
  info.par_n = info.par_d = 1;
  GstCaps *caps = gst_video_info_to_caps(&info);
  GST_INFO_OBJECT(self, "QEMU surface is now %ux%u %s: %" GST_PTR_FORMAT, fmt.width, fmt.height,
                  fmt.format->name, caps);
  /* A sticky caps event is accepted whatever downstream thinks; ask first,
   * so a refusal gets our message instead of a bare not-negotiated. */
  gboolean ok = gst_pad_peer_query_accept_caps(GST_BASE_SRC_PAD(self), caps);
  if (ok) {
    qemu_dbus_src_gl_release(self, &store);
  } else {
    GstVideoInfo gl_info;
    if (qemu_dbus_src_gl_renegotiate(self, store, fmt, s, &gl_info)) {
      gst_caps_unref(caps);
      new_format(priv, gl_info, fmt.generation);
      return true;
    }
  }
  ok = ok && gst_base_src_set_caps(GST_BASE_SRC(self), caps);
  if (!ok && GST_PAD_IS_FLUSHING(GST_BASE_SRC_PAD(self))) {
    /* Shutting down while renegotiating: not downstream's fault. */
    gst_caps_unref(caps);
    *flushing = true;
    return false;
  }
  if (!ok) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("Downstream does not accept the VM's display format"),
                      ("caps %" GST_PTR_FORMAT " were refused; add videoconvert after qemudbussrc",
                       caps));
    gst_caps_unref(caps);
    return false;
  }

  GstBufferPool *pool = gst_video_buffer_pool_new();
  GstStructure *config = gst_buffer_pool_get_config(pool);
  /* min 1: a fast consumer returns the buffer before the next frame, which
   * then needs only the latest damage (buffer age 1). */
  gst_buffer_pool_config_set_params(config, caps, guint(info.size), 1, kPoolMaxBuffers);
  gst_caps_unref(caps);
  if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
    gst_object_unref(pool);
    GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT,
                      ("Cannot allocate buffers for a %ux%u display", fmt.width, fmt.height),
                      (nullptr));
    return false;
  }
  if (priv->pool) {
    gst_buffer_pool_set_active(priv->pool, FALSE);
    gst_object_unref(priv->pool);
  }
  priv->pool = pool;
  new_format(priv, info, fmt.generation);
  return true;
}

/* Running time now, minus how long ago the content arrived, but never more
 * than the latency we report (max_age): older content (a surface held back
 * while it settled) is stamped as late as the latency allows, so sinks do
 * not drop it. */
static GstClockTime running_time_of(GstQemuDBusSrc *self, int64_t arrival_us,
                                    GstClockTime max_age) {
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
  GstClockTime rt = now > base ? now - base : 0;
  int64_t age_us = g_get_monotonic_time() - arrival_us;
  GstClockTime age = age_us > 0 ? GstClockTime(age_us) * GST_USECOND : 0;
  age = std::min(age, max_age);
  rt = rt > age ? rt - age : 0;
  GstQemuDBusSrcPrivate *priv = self->priv;
  if (GST_CLOCK_TIME_IS_VALID(priv->last_pts) && rt <= priv->last_pts)
    rt = priv->last_pts + 1; /* keep timestamps strictly increasing */
  return rt;
}

static void set_readonly(GstBuffer *buf, bool readonly) {
  for (guint i = 0; i < gst_buffer_n_memory(buf); i++) {
    GstMemory *mem = gst_buffer_peek_memory(buf, i);
    if (readonly)
      GST_MINI_OBJECT_FLAG_SET(mem, GST_MEMORY_FLAG_READONLY);
    else
      GST_MINI_OBJECT_FLAG_UNSET(mem, GST_MEMORY_FLAG_READONLY);
  }
}

/* Fills a buffer with the current surface. Only the damage since the frame a
 * recycled buffer holds is copied, so a keepalive repeat (no new damage) on a
 * buffer that holds the latest frame copies nothing at all. */
static GstFlowReturn fill_system_buffer(GstQemuDBusSrc *self, vmd::FrameStore &store,
                                        GstBuffer **out, int64_t *arrival_us, bool *retry) {
  GstQemuDBusSrcPrivate *priv = self->priv;
  GstBuffer *buf = nullptr;
  GstBufferPoolAcquireParams params = {};
  params.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT;
  uint64_t held = 0;
  if (gst_buffer_pool_acquire_buffer(priv->pool, &buf, &params) == GST_FLOW_OK) {
    held = guintptr(gst_mini_object_get_qdata(GST_MINI_OBJECT(buf), frame_seq_quark()));
    set_readonly(buf, false);
  } else {
    /* Downstream holds every pooled buffer: allocate rather than block. */
    buf = gst_buffer_new_allocate(nullptr, priv->info.size, nullptr);
    if (!buf) {
      GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Out of memory for a video frame"),
                        (nullptr));
      return GST_FLOW_ERROR;
    }
  }
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &priv->info, buf, GST_MAP_WRITE)) {
    gst_buffer_unref(buf);
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot map a video buffer for writing"), (nullptr));
    return GST_FLOW_ERROR;
  }
  uint64_t seq = 0;
  int64_t arrival = 0;
  bool ok = store.take_frame(priv->generation, held,
                             static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                             GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), &seq, &arrival);
  gst_video_frame_unmap(&frame);
  if (!ok) {
    /* The surface changed between wait and copy: negotiate first. */
    gst_mini_object_set_qdata(GST_MINI_OBJECT(buf), frame_seq_quark(), nullptr, nullptr);
    gst_buffer_unref(buf);
    *retry = true;
    return GST_FLOW_OK;
  }
  /* On a 32-bit build the frame number is truncated: after 2^32 frames a
   * recycled buffer may look unknown and get a full copy, never a wrong one. */
  gst_mini_object_set_qdata(GST_MINI_OBJECT(buf), frame_seq_quark(), GUINT_TO_POINTER(guintptr(seq)),
                            nullptr);
  /* Downstream must not write into what we will recycle with only the damage
   * on top: a write map of a read-only memory makes GStreamer copy it, which
   * tags the buffer so the pool drops it instead of returning it. */
  set_readonly(buf, true);
  *arrival_us = arrival;
  *out = buf;
  return GST_FLOW_OK;
}

static GstFlowReturn produce_frame(GstQemuDBusSrc *self, vmd::FrameStore &store, bool repeat,
                                   GstClockTime latency, GstBuffer **out, bool *retry) {
  GstQemuDBusSrcPrivate *priv = self->priv;
  GstBuffer *buf = nullptr;
  int64_t arrival = 0;
  GstFlowReturn ret = qemu_dbus_src_gl_active(self)
                          ? qemu_dbus_src_gl_fill(self, store, &buf, &arrival, retry)
                          : fill_system_buffer(self, store, &buf, &arrival, retry);
  if (ret != GST_FLOW_OK || *retry)
    return ret;
  GstClockTime pts = running_time_of(self, repeat ? g_get_monotonic_time() : arrival, latency);
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
  if (priv->discont) {
    GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
    priv->discont = false;
  }
  priv->last_pts = pts;
  priv->last_push_us = g_get_monotonic_time();
  priv->have_frame = true;
  if (repeat)
    priv->keepalive_frames++;
  *out = buf;
  return GST_FLOW_OK;
}

static GstFlowReturn gst_qemu_dbus_src_create(GstPushSrc *push, GstBuffer **out) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(push);
  GstQemuDBusSrcPrivate *priv = self->priv;
  Settings s;
  std::shared_ptr<vmd::FrameStore> store;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    s = priv->settings;
    store = priv->store;
  }
  if (!store)
    return GST_FLOW_FLUSHING;
  const int64_t interval_us = int64_t(frame_interval(s) / GST_USECOND);
  /* The buffer of the last call went out, and with it stream-start, caps
   * and segment: custom events may follow. */
  priv->pushed_any |= priv->have_frame;

  for (;;) {
    vmd::WaitArgs args;
    args.generation = priv->generation;
    args.earliest_frame_us = priv->last_push_us ? priv->last_push_us + interval_us : 0;
    args.can_repeat = priv->have_frame;
    args.format_settle_us = kFormatSettleUs;
    args.want_cursor = priv->pushed_any;
    args.cursor_serial = priv->cursor_serial;
    args.earliest_cursor_us = priv->last_cursor_us ? priv->last_cursor_us + interval_us : 0;
    args.keepalive_at_us =
        s.keepalive_ms && priv->last_push_us ? priv->last_push_us + int64_t(s.keepalive_ms) * 1000 : 0;
    vmd::FrameFormat fmt;
    std::string error;
    const vmd::Wake wake = store->wait(args, &fmt, &error);
    qemu_dbus_src_post_path(self, *store);
    switch (wake) {
      case vmd::Wake::Flushing:
        return GST_FLOW_FLUSHING;
      case vmd::Wake::Failed:
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", error.c_str()),
                          ("address=%s vm=%s console=%u qmp=%s",
                           s.address.empty() ? "(session bus)" : s.address.c_str(),
                           s.vm.empty() ? "(primary owner)" : s.vm.c_str(), s.console,
                           s.qmp.empty() ? "(none)" : s.qmp.c_str()));
        return GST_FLOW_ERROR;
      case vmd::Wake::Ended:
        GST_INFO_OBJECT(self, "QEMU went away, sending EOS");
        return GST_FLOW_EOS;
      case vmd::Wake::NewFormat: {
        bool flushing = false;
        if (!renegotiate(self, *store, fmt, s, &flushing))
          return flushing ? GST_FLOW_FLUSHING : GST_FLOW_NOT_NEGOTIATED;
        continue;
      }
      case vmd::Wake::Cursor:
        qemu_dbus_src_send_cursor(self, store->cursor());
        priv->last_cursor_us = g_get_monotonic_time();
        continue;
      case vmd::Wake::Frame:
      case vmd::Wake::Keepalive: {
        bool retry = false;
        GstFlowReturn ret = produce_frame(self, *store, wake == vmd::Wake::Keepalive,
                                          frame_interval(s), out, &retry);
        if (retry)
          continue;
        return ret;
      }
    }
  }
}

static GstStructure *make_stats(GstQemuDBusSrc *self) {
  std::shared_ptr<vmd::FrameStore> store = current_store(self);
  vmd::FrameStats st = store ? store->stats() : vmd::FrameStats{};
  return gst_structure_new("qemudbussrc-stats", "scanouts", G_TYPE_UINT64, st.scanouts,
                           "updates", G_TYPE_UINT64, st.updates, "ignored", G_TYPE_UINT64,
                           st.ignored, "frames", G_TYPE_UINT64, st.frames, "keepalive-frames",
                           G_TYPE_UINT64, self->priv->keepalive_frames.load(), "full-copies",
                           G_TYPE_UINT64, st.full_copies, "bytes-in", G_TYPE_UINT64, st.bytes_in,
                           "bytes-out", G_TYPE_UINT64, st.bytes_out, "cursor-events",
                           G_TYPE_UINT64, self->priv->cursor_events.load(), "input-events",
                           G_TYPE_UINT64, self->priv->input_events.load(), "map-scanouts",
                           G_TYPE_UINT64, st.map_scanouts, "map-updates", G_TYPE_UINT64,
                           st.map_updates, "dmabuf-scanouts",
                           G_TYPE_UINT64, st.dmabuf_scanouts, "dmabuf-updates", G_TYPE_UINT64,
                           st.dmabuf_updates, "acks", G_TYPE_UINT64, st.acks, "ack-median-us",
                           G_TYPE_UINT64, guint64(st.ack_median_us), "ack-max-us", G_TYPE_UINT64,
                           guint64(st.ack_max_us), nullptr);
}

/* input and show-cursor take effect at once, also while playing. */
static void set_remote_property(GstQemuDBusSrc *self, guint prop_id, bool on) {
  std::shared_ptr<vmd::FrameStore> store;
  {
    std::lock_guard<std::mutex> guard(self->priv->lock);
    (prop_id == PROP_INPUT ? self->priv->settings.input : self->priv->settings.show_cursor) = on;
    store = self->priv->store;
  }
  if (prop_id == PROP_SHOW_CURSOR && store)
    store->set_draw_cursor(on);
  if (prop_id == PROP_INPUT && !on)
    qemu_dbus_src_release_input(self);
}

static void gst_qemu_dbus_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                           GParamSpec *pspec) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(object);
  if (prop_id == PROP_INPUT || prop_id == PROP_SHOW_CURSOR) {
    set_remote_property(self, prop_id, g_value_get_boolean(value));
    return;
  }
  if (prop_id == PROP_DETILE || prop_id == PROP_RENDER_NODE) {
    qemu_dbus_src_set_dmabuf_property(self, prop_id, PROP_DETILE, value);
    return;
  }
  std::lock_guard<std::mutex> guard(self->priv->lock);
  Settings &s = self->priv->settings;
  auto str = [&](std::string &field) {
    const gchar *v = g_value_get_string(value);
    field = v ? v : "";
  };
  switch (prop_id) {
    case PROP_ADDRESS:
      str(s.address);
      break;
    case PROP_VM:
      str(s.vm);
      break;
    case PROP_CONSOLE:
      s.console = g_value_get_uint(value);
      break;
    case PROP_QMP:
      str(s.qmp);
      break;
    case PROP_MAX_FRAMERATE:
      s.fps_n = gst_value_get_fraction_numerator(value);
      s.fps_d = gst_value_get_fraction_denominator(value);
      break;
    case PROP_KEEPALIVE_MS:
      s.keepalive_ms = g_value_get_uint(value);
      break;
    case PROP_RECONNECT:
      s.reconnect = g_value_get_boolean(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_qemu_dbus_src_get_property(GObject *object, guint prop_id, GValue *value,
                                           GParamSpec *pspec) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(object);
  if (prop_id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  if (prop_id == PROP_DETILE || prop_id == PROP_RENDER_NODE) {
    qemu_dbus_src_get_dmabuf_property(self, prop_id, PROP_DETILE, value);
    return;
  }
  std::lock_guard<std::mutex> guard(self->priv->lock);
  const Settings &s = self->priv->settings;
  auto str = [&](const std::string &field) {
    g_value_set_string(value, field.empty() ? nullptr : field.c_str());
  };
  switch (prop_id) {
    case PROP_ADDRESS:
      str(s.address);
      break;
    case PROP_VM:
      str(s.vm);
      break;
    case PROP_CONSOLE:
      g_value_set_uint(value, s.console);
      break;
    case PROP_QMP:
      str(s.qmp);
      break;
    case PROP_MAX_FRAMERATE:
      gst_value_set_fraction(value, s.fps_n, s.fps_d);
      break;
    case PROP_KEEPALIVE_MS:
      g_value_set_uint(value, s.keepalive_ms);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean(value, s.reconnect);
      break;
    case PROP_INPUT:
      g_value_set_boolean(value, s.input);
      break;
    case PROP_SHOW_CURSOR:
      g_value_set_boolean(value, s.show_cursor);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_qemu_dbus_src_set_context(GstElement *element, GstContext *context) {
  qemu_dbus_src_gl_set_context(GST_QEMU_DBUS_SRC(element), context);
  GST_ELEMENT_CLASS(gst_qemu_dbus_src_parent_class)->set_context(element, context);
}

static void gst_qemu_dbus_src_finalize(GObject *object) {
  GstQemuDBusSrc *self = GST_QEMU_DBUS_SRC(object);
  /* Normally stop() did this; joining first keeps the D-Bus thread from
   * logging through an object being torn down. */
  self->priv->client.reset();
  delete self->priv;
  G_OBJECT_CLASS(gst_qemu_dbus_src_parent_class)->finalize(object);
}

static void gst_qemu_dbus_src_init(GstQemuDBusSrc *self) {
  self->priv = new GstQemuDBusSrcPrivate();
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
  gst_base_src_set_do_timestamp(GST_BASE_SRC(self), FALSE);
}

static void gst_qemu_dbus_src_class_init(GstQemuDBusSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *base_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass *push_class = GST_PUSH_SRC_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_qemu_dbus_src_debug, "qemudbussrc", 0,
                          "QEMU D-Bus display source");

  gobject_class->set_property = gst_qemu_dbus_src_set_property;
  gobject_class->get_property = gst_qemu_dbus_src_get_property;
  gobject_class->finalize = gst_qemu_dbus_src_finalize;

  const GParamFlags rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                     GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_ADDRESS,
      g_param_spec_string("address", "D-Bus address",
                          "D-Bus address of the bus QEMU's display is on (as in "
                          "-display dbus,addr=...), \"system\" for the system bus, or NULL for "
                          "the session bus. Ignored when qmp is set",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_VM,
      g_param_spec_string("vm", "VM name",
                          "Capture the VM whose name (QEMU's -name) matches, among every QEMU "
                          "queued on org.qemu; NULL for the current owner of org.qemu. Ignored "
                          "when qmp is set",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_CONSOLE,
      g_param_spec_uint("console", "Console",
                        "Index N of the graphic console to capture "
                        "(/org/qemu/Display1/Console_N)",
                        0, kMaxConsole, 0, rw));
  g_object_class_install_property(
      gobject_class, PROP_QMP,
      g_param_spec_string("qmp", "QMP socket",
                          "Path of QEMU's QMP UNIX socket. When set, connect peer to peer "
                          "(-display dbus,p2p=yes) through QMP getfd + add_client, and ignore "
                          "address and vm",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_MAX_FRAMERATE,
      gst_param_spec_fraction("max-framerate", "Maximum frame rate",
                              "At most this many buffers per second; faster updates are merged "
                              "into the next buffer (damage is never lost). Also the caps "
                              "framerate",
                              1, 1, 1000, 1, kDefaultFpsN, kDefaultFpsD, rw));
  g_object_class_install_property(
      gobject_class, PROP_KEEPALIVE_MS,
      g_param_spec_uint("keepalive-ms", "Keepalive (ms)",
                        "On a static screen, repeat the last frame after this many "
                        "milliseconds so encoders and late joiners keep getting frames "
                        "(0 = off)",
                        0, kMaxKeepaliveMs, kDefaultKeepaliveMs, rw));
  g_object_class_install_property(
      gobject_class, PROP_RECONNECT,
      g_param_spec_boolean("reconnect", "Reconnect",
                           "When QEMU goes away (or is not there yet), wait for it or for a VM "
                           "with the same vm name and continue with new caps, instead of "
                           "ending the stream",
                           FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Counters since start: scanouts, updates, ignored (malformed "
                         "messages), frames, keepalive-frames, full-copies, bytes-in (copied "
                         "from QEMU's messages), bytes-out (copied into buffers), "
                         "cursor-events (qemu-cursor events sent), input-events (navigation "
                         "events sent on to the VM), map-scanouts, map-updates (of those, through "
                         "shared memory), dmabuf-scanouts, dmabuf-updates, acks "
                         "(UpdateDMABUF replies), ack-median-us and ack-max-us (how long the "
                         "guest waited for them)",
                         GST_TYPE_STRUCTURE,
                         GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  qemu_dbus_src_install_remote(gobject_class, PROP_INPUT, PROP_SHOW_CURSOR);
  qemu_dbus_src_install_dmabuf(gobject_class, PROP_DETILE, PROP_RENDER_NODE);

  GstCaps *caps = template_caps();
  gst_element_class_add_pad_template(element_class,
                                     gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref(caps);
  gst_element_class_set_static_metadata(
      element_class, "QEMU D-Bus display source", "Source/Video",
      "Captures the screen of a QEMU virtual machine through QEMU's D-Bus display "
      "(-display dbus), without conversion, and sends keyboard and mouse navigation events "
      "back to it",
      "gst-vmdisplay developers");

  element_class->set_context = gst_qemu_dbus_src_set_context;
  base_class->start = gst_qemu_dbus_src_start;
  base_class->stop = gst_qemu_dbus_src_stop;
  base_class->unlock = gst_qemu_dbus_src_unlock;
  base_class->unlock_stop = gst_qemu_dbus_src_unlock_stop;
  base_class->get_caps = gst_qemu_dbus_src_get_caps;
  base_class->negotiate = gst_qemu_dbus_src_negotiate;
  base_class->query = gst_qemu_dbus_src_query;
  base_class->event = gst_qemu_dbus_src_event;
  push_class->create = gst_qemu_dbus_src_create;
}
