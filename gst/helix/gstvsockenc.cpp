/* gst-vmdisplay: vsockenc.
 *
 * The GObject glue around vmd::RemoteEncoder (remote-encoder.h), in the style of nvcodec's
 * remote encoders: handle_frame only submits (the frame's task rides along as user data) and
 * releases the stream lock while it waits for a free slot or sends; the RemoteEncoder's reader
 * thread finishes frames in order with gst_video_encoder_finish_frame and the flow return it
 * gets is what handle_frame returns next. Lost frames are finished without an output buffer
 * (GStreamer 1.22's way to drop) and the next frame asks the host for a keyframe. drain waits
 * for every frame in flight (each has a deadline); FLUSH_START wakes every waiter.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvsockenc.h"

#include "hxfr-formats.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"
#include "remote-encoder.h"
#include "virtgpu-resource.h"

#include <gst/allocators/gstdmabuf.h>
#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_vsock_enc_debug);
#define GST_CAT_DEFAULT gst_vsock_enc_debug

namespace hx = vmd::hxfr;

namespace {

constexpr const char *kDefaultAddress = "vsock://2:5000";
constexpr guint kDefaultBitrate = 8000; /* kbit/s */
constexpr guint kMaxBitrate = 2000000;  /* kbit/s: 2 Gbit/s still fits CONFIG_REQ's u32 bps */
constexpr guint kDefaultKeyframeInterval = 60;
constexpr guint kDefaultMaxInFlight = 2;
constexpr guint kMaxMaxInFlight = 16;
constexpr guint kDefaultTimeoutMs = 2000;
/* H.264 profile asked of the host: constrained baseline decodes everywhere (browsers, WebRTC)
 * and has no B-frames, which a frame-by-frame remote encoder cannot use anyway. */
constexpr uint8_t kProfileBaseline = 66;

enum {
  PROP_0,
  PROP_ADDRESS,
  PROP_MODE,
  PROP_DRM_DEVICE,
  PROP_BITRATE,
  PROP_KEYFRAME_INTERVAL,
  PROP_MAX_IN_FLIGHT,
  PROP_TIMEOUT_MS,
  PROP_TOKEN,
};

#define FORMATS "{ BGRx, BGRA, RGBx, RGBA, NV12, I420 }"
#define SIZES "width = (int) [ 1, 16384 ], height = (int) [ 1, 16384 ]"

GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-raw(" GST_CAPS_FEATURE_MEMORY_DMABUF "), format = (string) " FORMATS
                    ", " SIZES ", framerate = " GST_VIDEO_FPS_RANGE "; "
                    "video/x-raw, format = (string) " FORMATS ", " SIZES
                    ", framerate = " GST_VIDEO_FPS_RANGE));

GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-h264, stream-format = (string) byte-stream, "
                    "alignment = (string) au, " SIZES));

struct Settings {
  std::string address = kDefaultAddress;
  GstVsockEncMode mode = GST_VSOCK_ENC_MODE_AUTO;
  std::string drm_device; /* empty: the virtio_gpu render node */
  guint bitrate = kDefaultBitrate;
  guint keyframe_interval = kDefaultKeyframeInterval;
  guint max_in_flight = kDefaultMaxInFlight;
  guint timeout_ms = kDefaultTimeoutMs;
  std::string token; /* empty: none; never logged */
};

/* What rides on each frame as user data while the host works on it. */
struct FrameTask {
  gint64 submitted_us;
  bool force_keyframe;
};

GQuark resource_id_quark() {
  static GQuark q = g_quark_from_static_string("gst-vmdisplay-virtgpu-resource-id");
  return q;
}

}  // namespace

struct GstVsockEncPrivate {
  GstVsockEncPrivate() = default;
  ~GstVsockEncPrivate() {
    remote.reset();
    if (input_state)
      gst_video_codec_state_unref(input_state);
  }

  std::mutex lock; /* settings, and the remote pointer against set_property */
  Settings settings;

  /* Streaming-thread state (and start/stop). */
  std::unique_ptr<vmd::RemoteEncoder> remote;
  GstVideoCodecState *input_state = nullptr;
  guint frames_since_keyframe = 0;
  bool virtgpu_tried = false;
  std::unique_ptr<vmd::VirtgpuResources> virtgpu;
  std::vector<uint8_t> scratch; /* repacked pixels when the planes are not laid out as HXFR's */
  bool told_pixels_fallback = false;
  size_t told_over_limit = 0; /* frame size the over-max_payload warning was posted for */

  std::atomic<GstFlowReturn> last_flow{GST_FLOW_OK};
  std::atomic<bool> resource_ids_refused{false}; /* the host said RESOURCE_NOT_FOUND */
  std::atomic<guint64> dropped{0};
};

struct _GstVsockEnc {
  GstVideoEncoder parent;
  GstVsockEncPrivate *priv;
};

G_DEFINE_TYPE(GstVsockEnc, gst_vsock_enc, GST_TYPE_VIDEO_ENCODER);
GST_ELEMENT_REGISTER_DEFINE(vsockenc, "vsockenc", GST_RANK_NONE, GST_TYPE_VSOCK_ENC);

GType gst_vsock_enc_mode_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_VSOCK_ENC_MODE_AUTO, "Resource IDs for virtio-gpu DMA-BUFs, pixels otherwise", "auto"},
      {GST_VSOCK_ENC_MODE_RESOURCE_ID, "Resource IDs only (error for anything else)",
       "resource-id"},
      {GST_VSOCK_ENC_MODE_PIXELS, "Always upload the pixels", "pixels"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstVsockEncMode", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static Settings get_settings(GstVsockEnc *self) {
  std::lock_guard<std::mutex> guard(self->priv->lock);
  return self->priv->settings;
}

/* ---- results from the host (reader thread, or the streaming thread for local drops) ---- */

static void on_result_locked(GstVsockEnc *self, vmd::EncodeResult &&r);

/* Under the stream lock (recursive, and never held by anyone waiting for the
 * reader: handle_frame and finish release it around remote calls), so a
 * flush cannot interleave: frames it threw away are not found, and a
 * FLUSHING from finish_frame cannot overwrite the OK that flush() stores. */
static void on_result(GstVsockEnc *self, vmd::EncodeResult &&r) {
  GST_VIDEO_ENCODER_STREAM_LOCK(self);
  on_result_locked(self, std::move(r));
  GST_VIDEO_ENCODER_STREAM_UNLOCK(self);
}

/* The access unit in a buffer of its own, each NAL copied once, straight from where the
 * reader received it. */
static GstBuffer *output_buffer(const vmd::EncodedAu &au) {
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, au.size(), nullptr);
  GstMapInfo map;
  if (!buf || !gst_buffer_map(buf, &map, GST_MAP_WRITE)) {
    gst_clear_buffer(&buf);
    return nullptr;
  }
  au.copy_to(map.data);
  gst_buffer_unmap(buf, &map);
  return buf;
}

static void on_result_locked(GstVsockEnc *self, vmd::EncodeResult &&r) {
  GstVideoEncoder *enc = GST_VIDEO_ENCODER(self);
  GstVsockEncPrivate *priv = self->priv;
  GstVideoCodecFrame *frame = gst_video_encoder_get_frame(enc, int(r.id));
  if (!frame) /* flushed meanwhile */
    return;
  if (r.used_resource_id && r.error_code == hx::error_code::kResourceNotFound)
    priv->resource_ids_refused = true;
  auto *task = static_cast<FrameTask *>(gst_video_codec_frame_get_user_data(frame));
  if (r.dropped) {
    priv->dropped++;
    GST_INFO_OBJECT(self, "frame %" G_GUINT64_FORMAT " dropped (%s): %s", r.id,
                    vmd::drop_cause_name(r.cause), r.reason.c_str());
    gst_buffer_replace(&frame->output_buffer, nullptr);
  } else {
    frame->output_buffer = output_buffer(r.data);
    if (r.keyframe)
      GST_VIDEO_CODEC_FRAME_SET_SYNC_POINT(frame);
    if (task)
      GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT ": %zu bytes%s after %" G_GINT64_FORMAT
                     " us", r.id, r.data.size(), r.keyframe ? " (keyframe)" : "",
                     g_get_monotonic_time() - task->submitted_us);
  }
  GstFlowReturn ret = gst_video_encoder_finish_frame(enc, frame);
  if (ret != GST_FLOW_OK)
    GST_DEBUG_OBJECT(self, "finish_frame: %s", gst_flow_get_name(ret));
  priv->last_flow = ret;
}

static void on_link(GstVsockEnc *self, bool lost, const std::string &why) {
  if (!lost) {
    GST_INFO_OBJECT(self, "%s", why.c_str());
    return;
  }
  /* Once per outage (RemoteEncoder reports the first failure only). */
  GST_ELEMENT_WARNING(self, RESOURCE, WRITE,
                      ("Remote encoder unavailable: %s", why.c_str()),
                      ("frames are dropped until the host answers again; reconnecting with "
                       "backoff, the next frame will be a keyframe"));
}

/* ---- GstVideoEncoder vfuncs ---- */

static gboolean gst_vsock_enc_start(GstVideoEncoder *enc) {
  GstVsockEnc *self = GST_VSOCK_ENC(enc);
  GstVsockEncPrivate *priv = self->priv;
  Settings s = get_settings(self);
  vmd::RemoteEncoderConfig config;
  std::string error;
  if (!hx::parse_address(s.address, false, &config.address, &error)) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid address '%s': %s", s.address.c_str(),
                                                 error.c_str()),
                      ("use vsock://CID:PORT (the host is CID 2), tcp://HOST:PORT, "
                       "unix:///PATH or a character device such as "
                       "/dev/virtio-ports/org.helix.frame-export"));
    return FALSE;
  }
  if (s.token.size() > hx::kMaxTokenSize) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("The token is %zu bytes long; HXFR carries at most %u", s.token.size(),
                       hx::kMaxTokenSize),
                      ("set a shorter token, the same on vsockenc and helixframesrv"));
    return FALSE;
  }
  config.token = s.token;
  config.timeout_ms = int(s.timeout_ms);
  config.max_in_flight = s.max_in_flight;
  /* A HELLO answer is only waited for as long as any reply. */
  config.hello_timeout_ms = std::min<int>(hx::kHelloTimeoutMs, int(s.timeout_ms));
  if (s.mode == GST_VSOCK_ENC_MODE_PIXELS)
    config.capabilities &= ~hx::cap::kResourceId;
  auto remote = std::make_unique<vmd::RemoteEncoder>(
      config, [self](vmd::EncodeResult &&r) { on_result(self, std::move(r)); },
      [self](bool lost, const std::string &why) { on_link(self, lost, why); },
      [self](const std::string &note) { GST_INFO_OBJECT(self, "%s", note.c_str()); });
  std::lock_guard<std::mutex> guard(priv->lock);
  priv->remote = std::move(remote);
  priv->last_flow = GST_FLOW_OK;
  priv->frames_since_keyframe = 0;
  priv->virtgpu_tried = false;
  priv->virtgpu.reset();
  priv->resource_ids_refused = false;
  priv->told_pixels_fallback = false;
  priv->told_over_limit = 0;
  priv->dropped = 0;
  return TRUE;
}

static gboolean gst_vsock_enc_stop(GstVideoEncoder *enc) {
  GstVsockEncPrivate *priv = GST_VSOCK_ENC(enc)->priv;
  std::unique_ptr<vmd::RemoteEncoder> remote;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    remote = std::move(priv->remote);
  }
  if (remote)
    remote->stop(); /* joins the reader; pending frames are reported (and ignored) */
  remote.reset();
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    if (priv->input_state) {
      gst_video_codec_state_unref(priv->input_state);
      priv->input_state = nullptr;
    }
  }
  priv->virtgpu.reset();
  priv->scratch.clear();
  priv->scratch.shrink_to_fit();
  return TRUE;
}

static hx::ConfigRequest make_config(const GstVideoInfo *info, guint bitrate_kbps) {
  hx::ConfigRequest c;
  c.width = info ? GST_VIDEO_INFO_WIDTH(info) : 0;
  c.height = info ? GST_VIDEO_INFO_HEIGHT(info) : 0;
  c.bitrate_bps = bitrate_kbps * 1000u;
  c.fps_num = info && GST_VIDEO_INFO_FPS_N(info) > 0 ? guint(GST_VIDEO_INFO_FPS_N(info)) : 0;
  c.fps_den = info && GST_VIDEO_INFO_FPS_N(info) > 0 ? guint(GST_VIDEO_INFO_FPS_D(info)) : 0;
  c.profile = kProfileBaseline;
  c.level_x10 = 0; /* the host picks the level that fits the size and rate */
  c.realtime = true;
  return c;
}

static void update_latency(GstVsockEnc *self, const GstVideoInfo *info, guint max_in_flight) {
  /* A frame waits for up to max_in_flight round trips; with no frame rate assume 30 fps. */
  GstClockTime frame = GST_SECOND / 30;
  if (GST_VIDEO_INFO_FPS_N(info) > 0 && GST_VIDEO_INFO_FPS_D(info) > 0)
    frame = gst_util_uint64_scale(GST_SECOND, GST_VIDEO_INFO_FPS_D(info),
                                  GST_VIDEO_INFO_FPS_N(info));
  GstClockTime latency = frame * max_in_flight;
  gst_video_encoder_set_latency(GST_VIDEO_ENCODER(self), latency, latency);
}

static gboolean gst_vsock_enc_set_format(GstVideoEncoder *enc, GstVideoCodecState *state) {
  GstVsockEnc *self = GST_VSOCK_ENC(enc);
  GstVsockEncPrivate *priv = self->priv;
  /* Frames of the old format go out first: the host's encoder is rebuilt for the new one. */
  if (priv->remote) {
    GST_VIDEO_ENCODER_STREAM_UNLOCK(enc);
    priv->remote->wait_idle();
    GST_VIDEO_ENCODER_STREAM_LOCK(enc);
  }
  {
    std::lock_guard<std::mutex> guard(priv->lock); /* set_property(bitrate) reads it */
    if (priv->input_state)
      gst_video_codec_state_unref(priv->input_state);
    priv->input_state = gst_video_codec_state_ref(state);
  }

  GstCaps *caps = gst_caps_from_string(
      "video/x-h264, stream-format = (string) byte-stream, alignment = (string) au");
  GstVideoCodecState *out = gst_video_encoder_set_output_state(enc, caps, state);
  /* The output state copies the input's colorimetry. H.264 is YUV: for RGB input the host
   * converts with the default YUV colorimetry for the size (BT.601 up to SD, BT.709 above,
   * BT.2020 from 2160 lines), so that is what the stream carries, not the input's sRGB. YUV
   * input is encoded as is. */
  if (GST_VIDEO_INFO_IS_RGB(&state->info)) {
    GstVideoInfo yuv;
    gst_video_info_set_format(&yuv, GST_VIDEO_FORMAT_I420, GST_VIDEO_INFO_WIDTH(&state->info),
                              GST_VIDEO_INFO_HEIGHT(&state->info));
    out->info.colorimetry = yuv.colorimetry;
    out->info.chroma_site = yuv.chroma_site;
  }
  gst_video_codec_state_unref(out);
  if (!gst_video_encoder_negotiate(enc)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Downstream refused H.264 byte-stream"),
                      ("vsockenc outputs video/x-h264, stream-format=byte-stream, "
                       "alignment=au; add h264parse to convert"));
    return FALSE;
  }
  Settings s = get_settings(self);
  update_latency(self, &state->info, s.max_in_flight);
  if (priv->remote)
    priv->remote->set_config(make_config(&state->info, s.bitrate));
  priv->frames_since_keyframe = 0;
  return TRUE;
}

static void copy_rows(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride,
                      size_t row_bytes, size_t rows) {
  for (size_t y = 0; y < rows; y++)
    memcpy(dst + y * dst_stride, src + y * src_stride, row_bytes);
}

/* Describes the mapped frame as HXFR pixel data: iovecs straight into the mapping when the
 * frame's planes already are the wire's (hxfr::plane_layout for its stride: same planes, same
 * stride chain, see docs/protocol.md "Pixel data"), else a copy repacked at the smallest
 * stride in scratch (I420 sent as NV12: U and V interleaved). Sets m->format and m->stride. */
static size_t layout_pixels(GstVideoFrame *vf, uint32_t fourcc, hx::FrameRequest *m,
                            std::vector<uint8_t> *scratch, std::vector<struct iovec> *iov) {
  const GstVideoInfo *info = &vf->info;
  const uint32_t w = GST_VIDEO_INFO_WIDTH(info), h = GST_VIDEO_INFO_HEIGHT(info);
  auto plane = [vf](int i) { return static_cast<uint8_t *>(GST_VIDEO_FRAME_PLANE_DATA(vf, i)); };
  auto stride = [vf](int i) { return size_t(GST_VIDEO_FRAME_PLANE_STRIDE(vf, i)); };
  m->format = fourcc;
  iov->clear();
  std::optional<hx::PlaneLayout> wire = hx::plane_layout(fourcc, w, h, uint32_t(stride(0)));
  if (!wire)
    return 0;
  const bool same_planes = int(GST_VIDEO_INFO_N_PLANES(info)) == wire->n_planes;
  bool zero_copy = same_planes;
  for (int i = 1; zero_copy && i < wire->n_planes; i++)
    zero_copy = stride(i) == wire->plane[i].stride;
  if (zero_copy) {
    m->stride = uint32_t(stride(0));
    for (int i = 0; i < wire->n_planes; i++)
      iov->push_back({plane(i), size_t(wire->plane[i].stride) * wire->plane[i].rows});
    return wire->total;
  }
  const uint32_t s = hx::min_stride(fourcc, w).value_or(uint32_t(stride(0)));
  wire = hx::plane_layout(fourcc, w, h, s);
  scratch->resize(wire->total);
  const hx::Plane *p = wire->plane;
  if (same_planes) {
    for (int i = 0; i < wire->n_planes; i++)
      copy_rows(scratch->data() + p[i].offset, p[i].stride, plane(i), stride(i), p[i].row_bytes,
                p[i].rows);
  } else { /* I420 -> NV12 for hosts without EXTRA_FORMATS: interleave U and V. */
    copy_rows(scratch->data(), s, plane(0), stride(0), w, h);
    for (size_t y = 0; y < p[1].rows; y++) {
      uint8_t *dst = scratch->data() + p[1].offset + y * p[1].stride;
      const uint8_t *u = plane(1) + y * stride(1), *v = plane(2) + y * stride(2);
      for (size_t x = 0; x < p[1].row_bytes / 2; x++) {
        dst[2 * x] = u[x];
        dst[2 * x + 1] = v[x];
      }
    }
  }
  m->stride = s;
  iov->push_back({scratch->data(), scratch->size()});
  return scratch->size();
}

/* The virtio-gpu resource ID of a single-memory DMA-BUF buffer, cached on the memory (a pool
 * recycles the same memories, so each buffer is looked up once). 0 when there is none. */
static uint32_t lookup_resource_id(GstVsockEnc *self, GstBuffer *buf, const Settings &s,
                                   std::string *why) {
  GstVsockEncPrivate *priv = self->priv;
  if (gst_buffer_n_memory(buf) != 1 || !gst_is_dmabuf_memory(gst_buffer_peek_memory(buf, 0))) {
    *why = "the buffer is not a single DMA-BUF (system memory or several memories)";
    return 0;
  }
  GstMemory *mem = gst_buffer_peek_memory(buf, 0);
  guint cached = GPOINTER_TO_UINT(gst_mini_object_get_qdata(GST_MINI_OBJECT(mem),
                                                            resource_id_quark()));
  if (cached)
    return cached;
  if (!priv->virtgpu_tried) {
    priv->virtgpu_tried = true;
    std::string error;
    priv->virtgpu = vmd::VirtgpuResources::open(s.drm_device, &error);
    if (!priv->virtgpu)
      GST_INFO_OBJECT(self, "no resource IDs: %s", error.c_str());
    else
      GST_INFO_OBJECT(self, "resource IDs from %s", priv->virtgpu->device().c_str());
  }
  if (!priv->virtgpu) {
    *why = s.drm_device.empty() ? "no virtio_gpu render node"
                                : "drm-device " + s.drm_device + " is not a usable virtio_gpu node";
    return 0;
  }
  uint32_t id = 0;
  if (!priv->virtgpu->resource_id(gst_dmabuf_memory_get_fd(mem), &id, why))
    return 0;
  gst_mini_object_set_qdata(GST_MINI_OBJECT(mem), resource_id_quark(), GUINT_TO_POINTER(id),
                            nullptr);
  return id;
}

enum class Submitted { kOk, kFlushing, kError };

/* A frame the host's max_payload cannot take: dropped, with a warning once per size. */
static void drop_oversized(GstVsockEnc *self, uint64_t id, const GstVideoInfo *info,
                           size_t bytes, const vmd::PeerInfo &peer) {
  GstVsockEncPrivate *priv = self->priv;
  if (priv->told_over_limit != bytes) { /* once per size, not once per frame */
    priv->told_over_limit = bytes;
    GST_ELEMENT_WARNING(self, STREAM, ENCODE, ("Frames are too large for the host"),
                        ("a %dx%d %s frame is %zu bytes with its request; the host (%s) "
                         "accepts at most %u bytes a message, so these frames are dropped: "
                         "send NV12 (half the bytes of BGRx), a smaller size, or raise the "
                         "host's max-payload",
                         GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info),
                         gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(info)),
                         bytes + hx::kFrameRequestSize, peer.peer.c_str(), peer.max_payload));
  }
  priv->remote->drop(id, "frame of " + std::to_string(bytes) + " bytes is over the host's limit");
}

/* Runs without the stream lock. */
static Submitted submit_frame(GstVsockEnc *self, GstVideoCodecFrame *frame, GstBuffer *buf,
                              const GstVideoInfo *info, bool force_keyframe) {
  GstVsockEncPrivate *priv = self->priv;
  vmd::RemoteEncoder *remote = priv->remote.get();
  const uint64_t id = frame->system_frame_number;
  if (!remote->wait_for_slot())
    return Submitted::kFlushing;
  vmd::PeerInfo peer;
  std::string why;
  vmd::LinkResult link = remote->ensure_connected(&peer, &why);
  if (!link) {
    if (link.status == vmd::LinkStatus::kFlushing)
      return Submitted::kFlushing;
    remote->drop(id, why);
    return Submitted::kOk;
  }
  Settings s = get_settings(self);
  hx::FrameRequest m;
  m.width = GST_VIDEO_INFO_WIDTH(info);
  m.height = GST_VIDEO_INFO_HEIGHT(info);
  m.pts_ns = GST_CLOCK_TIME_IS_VALID(frame->pts) ? gint64(frame->pts) : 0;
  m.duration_ns = GST_CLOCK_TIME_IS_VALID(frame->duration) ? gint64(frame->duration) : 0;
  m.force_keyframe = force_keyframe;

  /* Resource IDs: v1 hosts ignore the ID and encode their own scanout, which is only what the
   * user means when asking for resource-id mode explicitly. */
  bool want_id = s.mode == GST_VSOCK_ENC_MODE_RESOURCE_ID ||
                 (s.mode == GST_VSOCK_ENC_MODE_AUTO && peer.has(hx::cap::kResourceId) &&
                  !priv->resource_ids_refused);
  if (want_id) {
    uint32_t rid = lookup_resource_id(self, buf, s, &why);
    if (rid) {
      m.resource_id = rid;
      m.format = vmd::helix::sender_fourcc(GST_VIDEO_INFO_FORMAT(info),
                                           peer.has(hx::cap::kExtraFormats));
      m.stride = GST_VIDEO_INFO_PLANE_STRIDE(info, 0);
      remote->submit(id, m, nullptr, 0, 0);
      return Submitted::kOk;
    }
    if (s.mode == GST_VSOCK_ENC_MODE_RESOURCE_ID) {
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                        ("mode=resource-id, but this frame has no virtio-gpu resource ID: %s",
                         why.c_str()),
                        ("feed vsockenc DMA-BUFs allocated on the virtio-gpu device (caps "
                         "video/x-raw(memory:DMABuf)), set drm-device, or use mode=auto or "
                         "mode=pixels to upload pixels"));
      return Submitted::kError;
    }
    if (!priv->told_pixels_fallback) {
      priv->told_pixels_fallback = true;
      GST_INFO_OBJECT(self, "uploading pixels: %s", why.c_str());
    }
  }

  GstVideoFrame vf;
  if (!gst_video_frame_map(&vf, const_cast<GstVideoInfo *>(info), buf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Cannot read the pixels of a frame"),
                      ("gst_video_frame_map failed (a tiled or protected DMA-BUF?); "
                       "use mode=resource-id on virtio-gpu, or convert upstream"));
    return Submitted::kError;
  }
  std::vector<struct iovec> iov;
  uint32_t fourcc =
      vmd::helix::sender_fourcc(GST_VIDEO_INFO_FORMAT(info), peer.has(hx::cap::kExtraFormats));
  size_t bytes = layout_pixels(&vf, fourcc, &m, &priv->scratch, &iov);
  if (bytes + hx::kFrameRequestSize > peer.max_payload) {
    gst_video_frame_unmap(&vf);
    drop_oversized(self, id, info, bytes, peer);
    return Submitted::kOk;
  }
  remote->submit(id, m, iov.data(), int(iov.size()), bytes);
  gst_video_frame_unmap(&vf);
  return Submitted::kOk;
}

static GstFlowReturn gst_vsock_enc_handle_frame(GstVideoEncoder *enc, GstVideoCodecFrame *frame) {
  GstVsockEnc *self = GST_VSOCK_ENC(enc);
  GstVsockEncPrivate *priv = self->priv;
  GstFlowReturn flow = priv->last_flow;
  if (flow != GST_FLOW_OK || !priv->remote || !priv->input_state) {
    gst_video_encoder_finish_frame(enc, frame); /* no output buffer: dropped */
    return flow != GST_FLOW_OK ? flow : GST_FLOW_NOT_NEGOTIATED;
  }
  Settings s = get_settings(self);
  bool force = GST_VIDEO_CODEC_FRAME_IS_FORCE_KEYFRAME(frame) ||
               (s.keyframe_interval > 0 && priv->frames_since_keyframe >= s.keyframe_interval) ||
               priv->frames_since_keyframe == 0;
  if (force)
    priv->frames_since_keyframe = 0;
  priv->frames_since_keyframe++;
  gst_video_codec_frame_set_user_data(frame, new FrameTask{g_get_monotonic_time(), force},
                                      [](gpointer p) { delete static_cast<FrameTask *>(p); });

  GstBuffer *buf = gst_buffer_ref(frame->input_buffer);
  GstVideoInfo info = priv->input_state->info;
  GST_VIDEO_ENCODER_STREAM_UNLOCK(enc);
  Submitted r = submit_frame(self, frame, buf, &info, force);
  GST_VIDEO_ENCODER_STREAM_LOCK(enc);
  gst_buffer_unref(buf);
  gst_video_codec_frame_unref(frame);
  if (r == Submitted::kFlushing)
    return GST_FLOW_FLUSHING;
  if (r == Submitted::kError)
    return GST_FLOW_ERROR;
  return priv->last_flow;
}

static GstFlowReturn gst_vsock_enc_finish(GstVideoEncoder *enc) {
  GstVsockEncPrivate *priv = GST_VSOCK_ENC(enc)->priv;
  if (!priv->remote)
    return GST_FLOW_OK;
  GST_VIDEO_ENCODER_STREAM_UNLOCK(enc);
  bool ok = priv->remote->wait_idle();
  GST_VIDEO_ENCODER_STREAM_LOCK(enc);
  return ok ? priv->last_flow.load() : GST_FLOW_FLUSHING;
}

static gboolean gst_vsock_enc_flush(GstVideoEncoder *enc) {
  GstVsockEncPrivate *priv = GST_VSOCK_ENC(enc)->priv;
  /* The host may still answer frames the base class just threw away: start over on a new
   * connection (which begins with a keyframe). */
  if (priv->remote)
    priv->remote->reset("flush");
  priv->last_flow = GST_FLOW_OK;
  priv->frames_since_keyframe = 0;
  return TRUE;
}

static gboolean gst_vsock_enc_sink_event(GstVideoEncoder *enc, GstEvent *event) {
  GstVsockEncPrivate *priv = GST_VSOCK_ENC(enc)->priv;
  GstEventType type = GST_EVENT_TYPE(event);
  if (type == GST_EVENT_FLUSH_START) {
    /* Wake a handle_frame waiting for a slot or a send before the base class needs the
     * stream lock. */
    std::lock_guard<std::mutex> guard(priv->lock);
    if (priv->remote)
      priv->remote->set_flushing(true);
  }
  gboolean ret = GST_VIDEO_ENCODER_CLASS(gst_vsock_enc_parent_class)->sink_event(enc, event);
  if (type == GST_EVENT_FLUSH_STOP) {
    std::lock_guard<std::mutex> guard(priv->lock);
    if (priv->remote)
      priv->remote->set_flushing(false);
  }
  return ret;
}

static gboolean gst_vsock_enc_propose_allocation(GstVideoEncoder *enc, GstQuery *query) {
  /* Strided and offset planes are fine: they are sent as they are or repacked. */
  gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);
  return GST_VIDEO_ENCODER_CLASS(gst_vsock_enc_parent_class)->propose_allocation(enc, query);
}

static GstStateChangeReturn gst_vsock_enc_change_state(GstElement *element,
                                                      GstStateChange transition) {
  GstVsockEncPrivate *priv = GST_VSOCK_ENC(element)->priv;
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    /* Wake a handle_frame waiting for the host before the sink pad's deactivation waits for
     * it; stop() then closes the connection. */
    std::lock_guard<std::mutex> guard(priv->lock);
    if (priv->remote)
      priv->remote->set_flushing(true);
  }
  return GST_ELEMENT_CLASS(gst_vsock_enc_parent_class)->change_state(element, transition);
}

/* ---- GObject ---- */

static void gst_vsock_enc_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec) {
  GstVsockEnc *self = GST_VSOCK_ENC(object);
  GstVsockEncPrivate *priv = self->priv;
  std::lock_guard<std::mutex> guard(priv->lock);
  Settings &s = priv->settings;
  switch (prop_id) {
    case PROP_ADDRESS: {
      const gchar *v = g_value_get_string(value);
      s.address = v ? v : kDefaultAddress;
      break;
    }
    case PROP_MODE:
      s.mode = GstVsockEncMode(g_value_get_enum(value));
      break;
    case PROP_DRM_DEVICE: {
      const gchar *v = g_value_get_string(value);
      s.drm_device = v ? v : "";
      break;
    }
    case PROP_BITRATE:
      s.bitrate = g_value_get_uint(value);
      /* Applied while playing: the next frame carries a CONFIG_REQ before it. */
      if (priv->remote && priv->input_state)
        priv->remote->set_config(make_config(&priv->input_state->info, s.bitrate));
      break;
    case PROP_KEYFRAME_INTERVAL:
      s.keyframe_interval = g_value_get_uint(value);
      break;
    case PROP_MAX_IN_FLIGHT:
      s.max_in_flight = g_value_get_uint(value);
      break;
    case PROP_TIMEOUT_MS:
      s.timeout_ms = g_value_get_uint(value);
      break;
    case PROP_TOKEN: {
      const gchar *v = g_value_get_string(value);
      s.token = v ? v : "";
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_vsock_enc_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec) {
  GstVsockEnc *self = GST_VSOCK_ENC(object);
  std::lock_guard<std::mutex> guard(self->priv->lock);
  const Settings &s = self->priv->settings;
  switch (prop_id) {
    case PROP_ADDRESS:
      g_value_set_string(value, s.address.c_str());
      break;
    case PROP_MODE:
      g_value_set_enum(value, s.mode);
      break;
    case PROP_DRM_DEVICE:
      g_value_set_string(value, s.drm_device.empty() ? nullptr : s.drm_device.c_str());
      break;
    case PROP_BITRATE:
      g_value_set_uint(value, s.bitrate);
      break;
    case PROP_KEYFRAME_INTERVAL:
      g_value_set_uint(value, s.keyframe_interval);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint(value, s.max_in_flight);
      break;
    case PROP_TIMEOUT_MS:
      g_value_set_uint(value, s.timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_vsock_enc_finalize(GObject *object) {
  GstVsockEnc *self = GST_VSOCK_ENC(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_vsock_enc_parent_class)->finalize(object);
}

static void gst_vsock_enc_init(GstVsockEnc *self) { self->priv = new GstVsockEncPrivate(); }

static void gst_vsock_enc_class_init(GstVsockEncClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstVideoEncoderClass *enc_class = GST_VIDEO_ENCODER_CLASS(klass);

  gobject_class->set_property = gst_vsock_enc_set_property;
  gobject_class->get_property = gst_vsock_enc_get_property;
  gobject_class->finalize = gst_vsock_enc_finalize;

  const auto rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  const auto rw_ready = GParamFlags(rw | GST_PARAM_MUTABLE_READY);
  const auto rw_playing = GParamFlags(rw | GST_PARAM_MUTABLE_PLAYING);

  g_object_class_install_property(
      gobject_class, PROP_ADDRESS,
      g_param_spec_string("address", "Host address",
                          "Where the host encoder (helixframesrv, or Helix's host) listens: "
                          "vsock://CID:PORT (the host is CID 2), tcp://HOST:PORT, "
                          "unix:///PATH, or a character device path such as "
                          "/dev/virtio-ports/org.helix.frame-export",
                          kDefaultAddress, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
                        "How frames reach the host: auto sends the virtio-gpu resource ID of "
                        "DMA-BUF frames when the host supports it and uploads pixels otherwise; "
                        "resource-id never uploads (an error for frames without an ID); pixels "
                        "always uploads",
                        GST_TYPE_VSOCK_ENC_MODE, GST_VSOCK_ENC_MODE_AUTO, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_DRM_DEVICE,
      g_param_spec_string("drm-device", "DRM device",
                          "DRM node used to look up resource IDs of DMA-BUFs (NULL: the render "
                          "node whose driver is virtio_gpu)",
                          nullptr, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_BITRATE,
      g_param_spec_uint("bitrate", "Bitrate",
                        "Target bitrate in kbit/s, sent to the host as CONFIG_REQ on connect and "
                        "whenever it changes (also while playing)",
                        1, kMaxBitrate, kDefaultBitrate, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_KEYFRAME_INTERVAL,
      g_param_spec_uint("keyframe-interval", "Keyframe interval",
                        "Ask for a keyframe every this many frames (0: only on force-key-unit "
                        "events and after lost frames)",
                        0, G_MAXINT, kDefaultKeyframeInterval, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_MAX_IN_FLIGHT,
      g_param_spec_uint("max-in-flight", "Frames in flight",
                        "Requests sent before an answer is waited for; more hides the round "
                        "trip but adds one frame of latency each",
                        1, kMaxMaxInFlight, kDefaultMaxInFlight, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_TIMEOUT_MS,
      g_param_spec_uint("timeout-ms", "Timeout",
                        "Bound in milliseconds on connecting, on each send and on each answer; "
                        "past it the frames in flight are dropped and the element reconnects",
                        10, 600000, kDefaultTimeoutMs, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_TOKEN,
      g_param_spec_string("token", "Token",
                          "Shared secret sent in HELLO to a host that wants one (the same as "
                          "helixframesrv's token); NULL sends none. Write-only (kept out of property dumps such as "
                          "pipeline graphs), never logged",
                          nullptr,
                          GParamFlags(G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
                                      GST_PARAM_MUTABLE_READY)));

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_vsock_enc_change_state);
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Remote H.264 encoder over HXFR", "Codec/Encoder/Video/Hardware",
      "Has the VM host encode H.264: sends frames (pixels or virtio-gpu resource IDs) over "
      "vsock, TCP, UNIX sockets or virtio-serial with Helix's HXFR protocol",
      "gst-vmdisplay");

  enc_class->start = GST_DEBUG_FUNCPTR(gst_vsock_enc_start);
  enc_class->stop = GST_DEBUG_FUNCPTR(gst_vsock_enc_stop);
  enc_class->set_format = GST_DEBUG_FUNCPTR(gst_vsock_enc_set_format);
  enc_class->handle_frame = GST_DEBUG_FUNCPTR(gst_vsock_enc_handle_frame);
  enc_class->finish = GST_DEBUG_FUNCPTR(gst_vsock_enc_finish);
  enc_class->flush = GST_DEBUG_FUNCPTR(gst_vsock_enc_flush);
  enc_class->sink_event = GST_DEBUG_FUNCPTR(gst_vsock_enc_sink_event);
  enc_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_vsock_enc_propose_allocation);

  GST_DEBUG_CATEGORY_INIT(gst_vsock_enc_debug, "vsockenc", 0, "HXFR remote H.264 encoder");
  gst_type_mark_as_plugin_api(GST_TYPE_VSOCK_ENC_MODE, GstPluginAPIFlags(0));
}
