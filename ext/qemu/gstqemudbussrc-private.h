/* gst-vmdisplay: qemudbussrc's instance data, shared by its two files:
 * gstqemudbussrc.cpp (capture: properties, negotiation, frames) and
 * gstqemudbussrc-remote.cpp (remote desktop: input, cursor, resize).
 */
#pragma once

#include "gstqemudbussrc.h"

#include "cursor.h"
#include "display-client.h"
#include "frame-store.h"
#include "navigation-input.h"

#include <gst/video/video.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

constexpr gint kDefaultFpsN = 60, kDefaultFpsD = 1;
constexpr guint kDefaultKeepaliveMs = 1000;

struct Settings {
  std::string address, vm, qmp;
  guint console = 0;
  gint fps_n = kDefaultFpsN, fps_d = kDefaultFpsD;
  guint keepalive_ms = kDefaultKeepaliveMs;
  bool reconnect = false;
  bool input = true;
  bool show_cursor = true;
  vmd::DmabufOptions dmabuf;
};

struct QemuGlState; /* gstqemudbussrc-gl.cpp */
void qemu_dbus_src_gl_free(QemuGlState *gl);

struct GstQemuDBusSrcPrivate {
  std::mutex lock; /* settings, store and client pointers */
  Settings settings;
  std::shared_ptr<vmd::FrameStore> store;
  std::unique_ptr<vmd::DisplayClient> client;

  /* streaming thread only */
  uint64_t generation = 0;
  GstVideoInfo info;
  GstBufferPool *pool = nullptr;
  bool have_frame = false; /* a frame of this generation was pushed */
  bool pushed_any = false; /* a buffer went out since start: events may follow */
  int64_t last_push_us = 0;
  GstClockTime last_pts = GST_CLOCK_TIME_NONE;
  bool discont = true;
  std::atomic<uint64_t> keepalive_frames{0};
  uint64_t cursor_serial = 0;       /* of the last qemu-cursor event sent */
  uint64_t cursor_image_serial = 0; /* of the image in it */
  int64_t last_cursor_us = 0;       /* when it was sent: one per frame interval */
  GstBuffer *cursor_image = nullptr;
  std::atomic<uint64_t> cursor_events{0};
  uint64_t path_serial = 0; /* of the last qemudbussrc-path message */
  QemuGlState *gl = nullptr; /* GLMemory output, made on first use */

  /* navigation events, from any thread */
  std::mutex nav_lock;
  vmd::NavigationInput navigation;
  std::atomic<uint64_t> input_events{0};

  std::atomic<int64_t> last_warning_us{0};

  ~GstQemuDBusSrcPrivate() {
    if (pool) {
      gst_buffer_pool_set_active(pool, FALSE);
      gst_object_unref(pool);
    }
    gst_clear_buffer(&cursor_image);
    qemu_dbus_src_gl_free(gl);
  }
};

struct _GstQemuDBusSrc {
  GstPushSrc parent;
  GstQemuDBusSrcPrivate *priv;
};

/* ---- gstqemudbussrc-remote.cpp */

/* Navigation and qemu-ui-info events from downstream; FALSE for others. */
gboolean qemu_dbus_src_upstream_event(GstQemuDBusSrc *self, GstEvent *event);
/* The set-ui-info action signal and the event: TRUE when a request was
 * queued (the element is running and the size is sane). */
gboolean qemu_dbus_src_request_ui_info(GstQemuDBusSrc *self, guint width, guint height,
                                       guint width_mm, guint height_mm);
/* Releases every key and button still pressed in the guest. */
void qemu_dbus_src_release_input(GstQemuDBusSrc *self);
/* From create(): sends the current cursor downstream (sticky event) and
 * to the application (element message). */
void qemu_dbus_src_send_cursor(GstQemuDBusSrc *self, const vmd::CursorState &cursor);
/* Installs input, show-cursor and set-ui-info on the class. */
void qemu_dbus_src_install_remote(GObjectClass *klass, guint prop_input, guint prop_show_cursor);

/* ---- gstqemudbussrc-dmabuf.cpp */

/* Installs detile and render-node. */
void qemu_dbus_src_install_dmabuf(GObjectClass *klass, guint prop_detile, guint prop_render_node);
/* detile (prop_id == prop_detile) or render-node. */
bool qemu_dbus_src_set_dmabuf_property(GstQemuDBusSrc *self, guint prop_id, guint prop_detile,
                                       const GValue *value);
void qemu_dbus_src_get_dmabuf_property(GstQemuDBusSrc *self, guint prop_id, guint prop_detile,
                                       GValue *value);
/* From create(): a qemudbussrc-path message when the DMA-BUF path changed. */
void qemu_dbus_src_post_path(GstQemuDBusSrc *self, const vmd::FrameStore &store);

/* ---- gstqemudbussrc-gl.cpp (GLMemory output; stubs without GstGL) */

/* video/x-raw(memory:GLMemory), format=RGBA, texture-target=2D (empty
 * without GstGL): appended to the pad template after system memory. */
GstCaps *qemu_dbus_src_gl_template_caps();
/* GstElement::set_context and the CONTEXT query (TRUE: answered). */
void qemu_dbus_src_gl_set_context(GstQemuDBusSrc *self, GstContext *context);
bool qemu_dbus_src_gl_query(GstQemuDBusSrc *self, GstQuery *query);
/* From renegotiate(), once downstream refused system memory: GLMemory caps
 * when the surface is a DMA-BUF read through EGL and downstream accepts
 * them, with the GL output attached to the store and the caps set; *info
 * then describes the RGBA frames. False leaves everything as it was. */
bool qemu_dbus_src_gl_renegotiate(GstQemuDBusSrc *self, vmd::FrameStore &store,
                                  const vmd::FrameFormat &fmt, const Settings &s,
                                  GstVideoInfo *info);
/* Back to system memory (renegotiating, stop): detaches from the store. */
void qemu_dbus_src_gl_release(GstQemuDBusSrc *self, vmd::FrameStore *store);
/* The GLMemory caps in use (a reference), or nullptr. */
GstCaps *qemu_dbus_src_gl_caps(GstQemuDBusSrc *self);
bool qemu_dbus_src_gl_active(GstQemuDBusSrc *self);
/* A GLMemory frame: *retry when the surface changed meanwhile. */
GstFlowReturn qemu_dbus_src_gl_fill(GstQemuDBusSrc *self, vmd::FrameStore &store,
                                    GstBuffer **out, int64_t *arrival, bool *retry);
