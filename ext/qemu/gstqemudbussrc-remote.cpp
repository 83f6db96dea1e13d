/* gst-vmdisplay: qemudbussrc as a remote desktop: keyboard and mouse from
 * upstream navigation events into the VM, the guest cursor downstream as
 * `qemu-cursor` events and messages, and guest resize requests (the
 * `qemu-ui-info` upstream event, the `set-ui-info` action signal).
 *
 * Everything here only queues: D-Bus calls happen on the DisplayClient's
 * thread, so neither a sink's thread nor the streaming thread waits for
 * QEMU.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudbussrc-private.h"

#include "cursor-event.h"

GST_DEBUG_CATEGORY_EXTERN(gst_qemu_dbus_src_debug);
#define GST_CAT_DEFAULT gst_qemu_dbus_src_debug

namespace {

constexpr const char *kUiInfoEvent = "qemu-ui-info";

void navigation(GstQemuDBusSrc *self, GstEvent *event) {
  GstQemuDBusSrcPrivate *priv = self->priv;
  {
    std::lock_guard<std::mutex> guard(priv->lock);
    if (!priv->settings.input)
      return; /* view only */
  }
  std::vector<vmd::InputEvent> input;
  std::string log_line;
  {
    std::lock_guard<std::mutex> guard(priv->nav_lock);
    priv->navigation.translate(event, &input, &log_line);
  }
  if (!log_line.empty())
    GST_WARNING_OBJECT(self, "%s", log_line.c_str());
  GST_LOG_OBJECT(self, "%" GST_PTR_FORMAT " -> %zu input events", gst_event_get_structure(event),
                 input.size());
  if (input.empty())
    return;
  std::lock_guard<std::mutex> guard(priv->lock);
  if (!priv->client || !priv->settings.input)
    return;
  for (const vmd::InputEvent &e : input)
    priv->client->send_input(e);
  priv->input_events++;
}

gboolean ui_info_event(GstQemuDBusSrc *self, GstEvent *event) {
  const GstStructure *s = gst_event_get_structure(event);
  guint width = 0, height = 0, width_mm = 0, height_mm = 0;
  if (!gst_structure_get_uint(s, "width", &width) || !gst_structure_get_uint(s, "height", &height)) {
    GST_WARNING_OBJECT(self, "ignored a %s event without uint width and height: %" GST_PTR_FORMAT,
                       kUiInfoEvent, s);
    return FALSE;
  }
  gst_structure_get_uint(s, "width-mm", &width_mm);
  gst_structure_get_uint(s, "height-mm", &height_mm);
  return qemu_dbus_src_request_ui_info(self, width, height, width_mm, height_mm);
}

gboolean set_ui_info_signal(GstQemuDBusSrc *self, guint width, guint height) {
  return qemu_dbus_src_request_ui_info(self, width, height, 0, 0);
}

}  // namespace

gboolean qemu_dbus_src_upstream_event(GstQemuDBusSrc *self, GstEvent *event) {
  if (GST_EVENT_TYPE(event) == GST_EVENT_NAVIGATION) {
    navigation(self, event);
    return TRUE;
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_UPSTREAM && gst_event_has_name(event, kUiInfoEvent))
    return ui_info_event(self, event);
  return FALSE;
}

gboolean qemu_dbus_src_request_ui_info(GstQemuDBusSrc *self, guint width, guint height,
                                       guint width_mm, guint height_mm) {
  if (width == 0 || height == 0 || width > vmd::kMaxSurfaceSide ||
      height > vmd::kMaxSurfaceSide || width_mm > G_MAXUINT16 || height_mm > G_MAXUINT16) {
    GST_WARNING_OBJECT(self, "ignored a request for a %ux%u display (%ux%u mm): sides must be 1 "
                       "to %u pixels, at most 65535 mm", width, height, width_mm, height_mm,
                       vmd::kMaxSurfaceSide);
    return FALSE;
  }
  std::lock_guard<std::mutex> guard(self->priv->lock);
  if (!self->priv->client) {
    GST_INFO_OBJECT(self, "ignored a %ux%u resize request: not running", width, height);
    return FALSE;
  }
  GST_DEBUG_OBJECT(self, "resize to %ux%u requested", width, height);
  vmd::UiInfo info;
  info.width = width;
  info.height = height;
  info.width_mm = guint16(width_mm);
  info.height_mm = guint16(height_mm);
  self->priv->client->request_ui_info(info);
  return TRUE;
}

void qemu_dbus_src_release_input(GstQemuDBusSrc *self) {
  std::lock_guard<std::mutex> guard(self->priv->lock);
  if (self->priv->client)
    self->priv->client->send_input(vmd::InputEvent::release_all());
}

void qemu_dbus_src_send_cursor(GstQemuDBusSrc *self, const vmd::CursorState &cursor) {
  GstQemuDBusSrcPrivate *priv = self->priv;
  const bool image_changed = cursor.image_serial != priv->cursor_image_serial;
  if (image_changed) {
    gst_clear_buffer(&priv->cursor_image);
    priv->cursor_image = vmd::cursor_image_buffer(cursor.image);
    priv->cursor_image_serial = cursor.image_serial;
  }
  priv->cursor_serial = cursor.serial;
  GstStructure *s = vmd::cursor_structure(cursor, priv->cursor_image, image_changed);
  gst_element_post_message(GST_ELEMENT(self),
                           gst_message_new_element(GST_OBJECT(self), gst_structure_copy(s)));
  gst_pad_push_event(GST_BASE_SRC_PAD(self),
                     gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM_STICKY, s));
  priv->cursor_events++;
}

void qemu_dbus_src_install_remote(GObjectClass *klass, guint prop_input, guint prop_show_cursor) {
  const GParamFlags rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                     GST_PARAM_MUTABLE_PLAYING);
  g_object_class_install_property(
      klass, prop_input,
      g_param_spec_boolean("input", "Input",
                           "Send keyboard and mouse navigation events from downstream (video "
                           "sinks, vmwebrtcsink) to the VM; false: view only, they are dropped "
                           "(and keys still pressed are released)",
                           TRUE, rw));
  g_object_class_install_property(
      klass, prop_show_cursor,
      g_param_spec_boolean("show-cursor", "Show cursor",
                           "Draw the guest's cursor into the frames. The cursor also travels "
                           "downstream as a sticky qemu-cursor event and an element message "
                           "either way: a sink that draws it itself sets this to false",
                           TRUE, rw));
  /**
   * GstQemuDBusSrc::set-ui-info:
   * @width: the wanted guest display width in pixels
   * @height: the wanted height
   *
   * Asks the VM for a new display size (Console.SetUIInfo); the frames
   * follow with new caps once the guest switched. Rate-limited: the latest
   * request wins, one call per 200 ms at most. Returns FALSE when not running
   * or for a size outside 1..16384.
   */
  g_signal_new_class_handler("set-ui-info", G_TYPE_FROM_CLASS(klass),
                             GSignalFlags(G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
                             G_CALLBACK(set_ui_info_signal), nullptr, nullptr, nullptr,
                             G_TYPE_BOOLEAN, 2, G_TYPE_UINT, G_TYPE_UINT);
}
