/* gst-vmdisplay: qemudbussrc's video/x-raw(memory:GLMemory) output.
 *
 * Offered only while the current surface is a DMA-BUF read through EGL, and
 * chosen only when downstream refuses system memory (so existing pipelines
 * are unchanged). The GstGLDisplay and GstGLContext are GStreamer's, found
 * the standard way (GstContext messages and queries, downstream's local
 * context), and shared back through the CONTEXT query. A vmd::GlOutput in
 * that context mirrors the DMA-BUF into a surface texture (the frame store
 * sends it the updates instead of reading them back), and each frame is a
 * GPU copy of it into a GLMemory buffer of a GstGLBufferPool with a sync
 * meta. Anything missing (no GstGL at build time, a display that is not EGL,
 * an import that fails) leaves the system-memory path as it was.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudbussrc-private.h"

#ifdef HAVE_GST_GL
#include "gl-output.h"

#include <gst/gl/gl.h>
#endif

GST_DEBUG_CATEGORY_EXTERN(gst_qemu_dbus_src_debug);
#define GST_CAT_DEFAULT gst_qemu_dbus_src_debug

#ifdef HAVE_GST_GL

struct QemuGlState {
  std::mutex lock; /* display, other, context: set_context and queries come from any thread */
  GstGLDisplay *display = nullptr;
  GstGLContext *other = nullptr;
  GstGLContext *context = nullptr;
  /* streaming thread only */
  std::shared_ptr<vmd::GlOutput> output;
  GstBufferPool *pool = nullptr;
  GstCaps *caps = nullptr;

  void release_output() {
    if (pool) {
      gst_buffer_pool_set_active(pool, FALSE);
      gst_clear_object(&pool);
    }
    gst_clear_caps(&caps);
    output.reset();
  }
  ~QemuGlState() {
    release_output();
    gst_clear_object(&context);
    gst_clear_object(&other);
    gst_clear_object(&display);
  }
};

static QemuGlState &gl_state(GstQemuDBusSrc *self) {
  if (!self->priv->gl)
    self->priv->gl = new QemuGlState();
  return *self->priv->gl;
}

void qemu_dbus_src_gl_free(QemuGlState *gl) {
  delete gl;
}

GstCaps *qemu_dbus_src_gl_template_caps() {
  return gst_caps_from_string(
      "video/x-raw(" GST_CAPS_FEATURE_MEMORY_GL_MEMORY "), format=RGBA, width=[1,16384], "
      "height=[1,16384], framerate=[1/1,2147483647/1], pixel-aspect-ratio=1/1, "
      "texture-target=2D");
}

void qemu_dbus_src_gl_set_context(GstQemuDBusSrc *self, GstContext *context) {
  QemuGlState &gl = gl_state(self);
  std::lock_guard<std::mutex> guard(gl.lock);
  gst_gl_handle_set_context(GST_ELEMENT(self), context, &gl.display, &gl.other);
  if (gl.display)
    gst_gl_display_filter_gl_api(gl.display, GstGLAPI(GST_GL_API_OPENGL3 | GST_GL_API_GLES2));
}

bool qemu_dbus_src_gl_query(GstQemuDBusSrc *self, GstQuery *query) {
  if (GST_QUERY_TYPE(query) != GST_QUERY_CONTEXT)
    return false;
  QemuGlState &gl = gl_state(self);
  std::lock_guard<std::mutex> guard(gl.lock);
  return gst_gl_handle_context_query(GST_ELEMENT(self), query, gl.display, gl.context, gl.other);
}

/* GStreamer's display and a context on it: downstream's, or a new one
 * sharing with the application's. */
static bool ensure_context(GstQemuDBusSrc *self, QemuGlState &gl) {
  /* Posts need-context messages and queries neighbours, whose answers come
   * back through set_context into the same fields (as in GStreamer's own GL
   * elements): gl.lock is not held here, only the streaming thread writes
   * these pointers outside set_context. */
  if (!gst_gl_ensure_element_data(self, &gl.display, &gl.other))
    return false;
  gst_gl_display_filter_gl_api(gl.display, GstGLAPI(GST_GL_API_OPENGL3 | GST_GL_API_GLES2));
  GstGLContext *context = nullptr;
  if (gl.context && gst_gl_context_get_display(gl.context) == gl.display)
    context = GST_GL_CONTEXT(gst_object_ref(gl.context));
  if (!context)
    gst_gl_query_local_gl_context(GST_ELEMENT(self), GST_PAD_SRC, &context);
  if (!context) {
    GError *error = nullptr;
    GST_OBJECT_LOCK(gl.display);
    do {
      gst_clear_object(&context);
      context = gst_gl_display_get_gl_context_for_thread(gl.display, nullptr);
      if (!context && !gst_gl_display_create_context(gl.display, gl.other, &context, &error)) {
        GST_OBJECT_UNLOCK(gl.display);
        GST_INFO_OBJECT(self, "no GL context: %s", error ? error->message : "?");
        g_clear_error(&error);
        return false;
      }
    } while (!gst_gl_display_add_context(gl.display, context));
    GST_OBJECT_UNLOCK(gl.display);
  }
  std::lock_guard<std::mutex> guard(gl.lock);
  gst_object_replace(reinterpret_cast<GstObject **>(&gl.context), GST_OBJECT(context));
  gst_object_unref(context);
  return true;
}

static GstBufferPool *make_pool(GstGLContext *context, GstCaps *caps, const GstVideoInfo &info) {
  GstBufferPool *pool = gst_gl_buffer_pool_new(context);
  GstStructure *config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, guint(info.size), 1, 16);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_GL_SYNC_META);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
    gst_object_unref(pool);
    return nullptr;
  }
  return pool;
}

void qemu_dbus_src_gl_release(GstQemuDBusSrc *self, vmd::FrameStore *store) {
  if (!self->priv->gl || !self->priv->gl->output)
    return;
  if (store) {
    std::string why;
    store->set_dmabuf_mirror(nullptr, 0, &why);
  }
  self->priv->gl->release_output();
}

bool qemu_dbus_src_gl_renegotiate(GstQemuDBusSrc *self, vmd::FrameStore &store,
                                  const vmd::FrameFormat &fmt, const Settings &s,
                                  GstVideoInfo *out_info) {
  qemu_dbus_src_gl_release(self, &store);
  if (!store.dmabuf_mirrorable(fmt.generation))
    return false;
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, fmt.width, fmt.height);
  info.fps_n = s.fps_n;
  info.fps_d = s.fps_d;
  info.par_n = info.par_d = 1;
  GstCaps *caps = gst_video_info_to_caps(&info);
  gst_caps_set_features(caps, 0, gst_caps_features_new(GST_CAPS_FEATURE_MEMORY_GL_MEMORY, nullptr));
  gst_caps_set_simple(caps, "texture-target", G_TYPE_STRING, "2D", nullptr);
  if (!gst_pad_peer_query_accept_caps(GST_BASE_SRC_PAD(self), caps)) {
    gst_caps_unref(caps);
    return false;
  }
  QemuGlState &gl = gl_state(self);
  std::string why;
  if (!ensure_context(self, gl)) {
    GST_INFO_OBJECT(self, "GLMemory refused: no GStreamer GL display/context");
    gst_caps_unref(caps);
    return false;
  }
  GstGLContext *context = GST_GL_CONTEXT(gst_object_ref(gl.context));
  auto output = vmd::GlOutput::create(context, fmt.width, fmt.height, &why);
  GstBufferPool *pool = nullptr;
  if (output && store.set_dmabuf_mirror(output, fmt.generation, &why))
    pool = make_pool(context, caps, info);
  gst_object_unref(context);
  if (!pool || !gst_base_src_set_caps(GST_BASE_SRC(self), caps)) {
    GST_INFO_OBJECT(self, "no GLMemory output: %s", why.empty() ? "pool or caps" : why.c_str());
    if (output)
      store.set_dmabuf_mirror(nullptr, 0, &why);
    if (pool) {
      gst_buffer_pool_set_active(pool, FALSE);
      gst_object_unref(pool);
    }
    gst_caps_unref(caps);
    return false;
  }
  GST_INFO_OBJECT(self, "GLMemory output: %" GST_PTR_FORMAT, caps);
  gl.output = std::move(output);
  gl.pool = pool;
  gl.caps = caps;
  *out_info = info;
  return true;
}

GstCaps *qemu_dbus_src_gl_caps(GstQemuDBusSrc *self) {
  QemuGlState *gl = self->priv->gl;
  return gl && gl->caps ? gst_caps_ref(gl->caps) : nullptr;
}

bool qemu_dbus_src_gl_active(GstQemuDBusSrc *self) {
  return self->priv->gl && self->priv->gl->output;
}

GstFlowReturn qemu_dbus_src_gl_fill(GstQemuDBusSrc *self, vmd::FrameStore &store,
                                    GstBuffer **out, int64_t *arrival, bool *retry) {
  QemuGlState &gl = *self->priv->gl;
  uint64_t seq = 0;
  if (!store.take_frame_gl(self->priv->generation, &seq, arrival)) {
    *retry = true; /* the surface changed (or the mirror failed): renegotiate */
    return GST_FLOW_OK;
  }
  GstBuffer *buf = nullptr;
  if (gst_buffer_pool_acquire_buffer(gl.pool, &buf, nullptr) != GST_FLOW_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Cannot get a GLMemory buffer"), (nullptr));
    return GST_FLOW_ERROR;
  }
  GstMemory *mem = gst_buffer_peek_memory(buf, 0);
  std::string why;
  if (!gst_is_gl_memory(mem) || !gl.output->copy_to(reinterpret_cast<GstGLMemory *>(mem), &why)) {
    gst_buffer_unref(buf);
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Cannot fill a GLMemory buffer"), ("%s", why.c_str()));
    return GST_FLOW_ERROR;
  }
  GstGLSyncMeta *sync = gst_buffer_get_gl_sync_meta(buf);
  if (!sync)
    sync = gst_buffer_add_gl_sync_meta(gl.output->context(), buf);
  gst_gl_sync_meta_set_sync_point(sync, gl.output->context());
  *out = buf;
  return GST_FLOW_OK;
}

#else /* !HAVE_GST_GL: system memory only */

struct QemuGlState {};
void qemu_dbus_src_gl_free(QemuGlState *gl) {
  delete gl;
}
GstCaps *qemu_dbus_src_gl_template_caps() {
  return gst_caps_new_empty();
}
void qemu_dbus_src_gl_set_context(GstQemuDBusSrc *, GstContext *) {}
bool qemu_dbus_src_gl_query(GstQemuDBusSrc *, GstQuery *) {
  return false;
}
void qemu_dbus_src_gl_release(GstQemuDBusSrc *, vmd::FrameStore *) {}
bool qemu_dbus_src_gl_renegotiate(GstQemuDBusSrc *, vmd::FrameStore &, const vmd::FrameFormat &,
                                  const Settings &, GstVideoInfo *) {
  return false;
}
GstCaps *qemu_dbus_src_gl_caps(GstQemuDBusSrc *) {
  return nullptr;
}
bool qemu_dbus_src_gl_active(GstQemuDBusSrc *) {
  return false;
}
GstFlowReturn qemu_dbus_src_gl_fill(GstQemuDBusSrc *, vmd::FrameStore &, GstBuffer **, int64_t *,
                                    bool *) {
  return GST_FLOW_ERROR;
}

#endif
