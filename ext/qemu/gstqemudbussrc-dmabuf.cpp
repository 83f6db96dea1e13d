/* gst-vmdisplay: qemudbussrc's DMA-BUF settings (detile, render-node) and
 * the qemudbussrc-path message that says how DMA-BUF scanouts are read. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudbussrc-private.h"

GST_DEBUG_CATEGORY_EXTERN(gst_qemu_dbus_src_debug);
#define GST_CAT_DEFAULT gst_qemu_dbus_src_debug

#define GST_TYPE_QEMU_DETILE (gst_qemu_detile_get_type())
static GType gst_qemu_detile_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(vmd::DetileMode::Auto), "EGL import on a GPU where it works, else the CPU", "auto"},
      {int(vmd::DetileMode::Gl), "EGL import only (an error where it fails)", "gl"},
      {int(vmd::DetileMode::Cpu), "the CPU only: linear, Intel X- and Y-tiled", "cpu"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstQemuDetile", values));
  return type;
}

void qemu_dbus_src_install_dmabuf(GObjectClass *klass, guint prop_detile, guint prop_render_node) {
  const GParamFlags rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                     GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      klass, prop_detile,
      g_param_spec_enum("detile", "Detile",
                        "How DMA-BUF scanouts (QEMU with -display dbus,gl=on) are read: auto "
                        "imports them through EGL (any modifier the GPU driver knows) and falls "
                        "back to the CPU (linear, Intel X/Y-tiled), except that where the only "
                        "EGL is software (llvmpipe) the CPU reads the layouts it knows; gl: EGL "
                        "only; cpu: CPU only. The choice is posted as a qemudbussrc-path element "
                        "message",
                        GST_TYPE_QEMU_DETILE, int(vmd::DetileMode::Auto), rw));
  g_object_class_install_property(
      klass, prop_render_node,
      g_param_spec_string("render-node", "Render node",
                          "DRM render node for the EGL import of DMA-BUF scanouts, e.g. "
                          "/dev/dri/renderD128; NULL: the first /dev/dri/renderD* whose EGL "
                          "works, else EGL's surfaceless platform (Mesa llvmpipe)",
                          nullptr, rw));
  gst_type_mark_as_plugin_api(GST_TYPE_QEMU_DETILE, GstPluginAPIFlags(0));
}

bool qemu_dbus_src_set_dmabuf_property(GstQemuDBusSrc *self, guint prop_id, guint prop_detile,
                                       const GValue *value) {
  std::lock_guard<std::mutex> guard(self->priv->lock);
  vmd::DmabufOptions &o = self->priv->settings.dmabuf;
  if (prop_id == prop_detile) {
    o.mode = vmd::DetileMode(g_value_get_enum(value));
  } else {
    const gchar *v = g_value_get_string(value);
    o.render_node = v ? v : "";
  }
  return true;
}

void qemu_dbus_src_get_dmabuf_property(GstQemuDBusSrc *self, guint prop_id, guint prop_detile,
                                       GValue *value) {
  std::lock_guard<std::mutex> guard(self->priv->lock);
  const vmd::DmabufOptions &o = self->priv->settings.dmabuf;
  if (prop_id == prop_detile)
    g_value_set_enum(value, int(o.mode));
  else
    g_value_set_string(value, o.render_node.empty() ? nullptr : o.render_node.c_str());
}

void qemu_dbus_src_post_path(GstQemuDBusSrc *self, const vmd::FrameStore &store) {
  uint64_t serial = 0;
  std::string path = store.dmabuf_path(&serial);
  if (serial == self->priv->path_serial || path.empty())
    return;
  self->priv->path_serial = serial;
  GST_INFO_OBJECT(self, "reading the display: %s", path.c_str());
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self),
                              gst_structure_new("qemudbussrc-path", "path", G_TYPE_STRING,
                                                path.c_str(), nullptr)));
}
