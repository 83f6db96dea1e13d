/* gst-vmdisplay: qemudbusdeviceprovider.
 *
 * Thin glue over two plain C++ cores: probe() is qemu_probe_displays()
 * (one bounded listing on the calling thread), start() runs a QemuVmWatch
 * thread whose added/removed callbacks become gst_device_provider_device_add
 * and _remove. Both find QEMU with the same qemu-bus code as qemudbussrc.
 * A device is one graphic console of one VM; create_element gives a
 * qemudbussrc with address, vm and console set.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstqemudeviceprovider.h"

#include "qemu-vm-watch.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

GST_DEBUG_CATEGORY_STATIC(gst_qemu_dbus_device_provider_debug);
#define GST_CAT_DEFAULT gst_qemu_dbus_device_provider_debug

namespace {

constexpr const char *kSourceFactory = "qemudbussrc";

/* Where the provider looks: the session bus and, when it can be read, the
 * system bus; each D-Bus call bounded so a QEMU that does not answer cannot
 * hang gst-device-monitor. */
vmd::QemuWatchConfig watch_config() {
  vmd::QemuWatchConfig config;
  config.displays.buses = {"", "system"};
  config.displays.timeout_ms = 2000;
  return config;
}

}  // namespace

/* ================================================================ device */

struct _GstQemuDBusDevice {
  GstDevice parent;
  vmd::QemuDisplay *display; /* set once by device_new, never changed */
};

G_DEFINE_TYPE(GstQemuDBusDevice, gst_qemu_dbus_device, GST_TYPE_DEVICE);

/* The element's properties for a display: address only for a bus other
 * than the session bus (qemudbussrc's default). */
static void configure_source(const vmd::QemuDisplay &d, GstElement *element) {
  g_object_set(element, "address", d.bus.empty() ? nullptr : d.bus.c_str(), "vm",
               d.vm_name.c_str(), "console", guint(d.console), nullptr);
}

static GstElement *gst_qemu_dbus_device_create_element(GstDevice *device, const gchar *name) {
  GstQemuDBusDevice *self = GST_QEMU_DBUS_DEVICE(device);
  if (!self->display)
    return nullptr; /* not made by the provider */
  GstElement *element = gst_element_factory_make(kSourceFactory, name);
  if (!element) {
    GST_WARNING_OBJECT(self, "no %s element (is the qemu plugin complete?)", kSourceFactory);
    return nullptr;
  }
  configure_source(*self->display, element);
  return element;
}

static gboolean gst_qemu_dbus_device_reconfigure_element(GstDevice *device, GstElement *element) {
  GstElementFactory *factory = gst_element_get_factory(element);
  if (!GST_QEMU_DBUS_DEVICE(device)->display || !factory ||
      !g_str_equal(GST_OBJECT_NAME(factory), kSourceFactory))
    return FALSE;
  configure_source(*GST_QEMU_DBUS_DEVICE(device)->display, element);
  return TRUE;
}

static void gst_qemu_dbus_device_finalize(GObject *object) {
  delete GST_QEMU_DBUS_DEVICE(object)->display;
  G_OBJECT_CLASS(gst_qemu_dbus_device_parent_class)->finalize(object);
}

static void gst_qemu_dbus_device_init(GstQemuDBusDevice *self) { self->display = nullptr; }

static void gst_qemu_dbus_device_class_init(GstQemuDBusDeviceClass *klass) {
  GstDeviceClass *device_class = GST_DEVICE_CLASS(klass);
  device_class->create_element = gst_qemu_dbus_device_create_element;
  device_class->reconfigure_element = gst_qemu_dbus_device_reconfigure_element;
  G_OBJECT_CLASS(klass)->finalize = gst_qemu_dbus_device_finalize;
}

/* What qemudbussrc can produce: its src pad template, read from the
 * registry (no element is made). */
static GstCaps *source_caps() {
  GstCaps *caps = nullptr;
  GstElementFactory *factory = gst_element_factory_find(kSourceFactory);
  if (factory) {
    for (const GList *l = gst_element_factory_get_static_pad_templates(factory); l && !caps;
         l = l->next) {
      auto *templ = static_cast<GstStaticPadTemplate *>(l->data);
      if (templ->direction == GST_PAD_SRC)
        caps = gst_static_pad_template_get_caps(templ);
    }
    gst_object_unref(factory);
  }
  return caps ? caps : gst_caps_new_empty_simple("video/x-raw");
}

/* "NAME: LABEL"; a console without a label is named by its index. */
static std::string display_name(const vmd::QemuDisplay &d) {
  return d.vm_name + ": " + (d.label.empty() ? "console " + std::to_string(d.console) : d.label);
}

/* A new (floating) device for one display. */
static GstDevice *device_new(const vmd::QemuDisplay &d) {
  GstCaps *caps = source_caps();
  GstStructure *props = gst_structure_new(
      "qemu-proplist", "qemu.vm-name", G_TYPE_STRING, d.vm_name.c_str(), "qemu.console",
      G_TYPE_UINT, guint(d.console), "qemu.uuid", G_TYPE_STRING, d.uuid.c_str(), "qemu.label",
      G_TYPE_STRING, d.label.c_str(), "qemu.bus", G_TYPE_STRING,
      vmd::qemu_bus_display_name(d.bus).c_str(), "qemu.owner", G_TYPE_STRING, d.owner.c_str(),
      nullptr);
  auto *device = static_cast<GstQemuDBusDevice *>(
      g_object_new(GST_TYPE_QEMU_DBUS_DEVICE, "display-name", display_name(d).c_str(), "caps",
                   caps, "device-class", "Video/Source", "properties", props, nullptr));
  gst_caps_unref(caps);
  gst_structure_free(props);
  device->display = new vmd::QemuDisplay(d);
  return GST_DEVICE(device);
}

/* ============================================================== provider */

struct GstQemuDBusDeviceProviderPrivate {
  std::unique_ptr<vmd::QemuVmWatch> watch;
  std::mutex mu;
  /* The devices added while started, each with a reference of ours. */
  std::vector<std::pair<vmd::QemuDisplay, GstDevice *>> devices;

  ~GstQemuDBusDeviceProviderPrivate() {
    for (auto &entry : devices)
      gst_object_unref(entry.second);
  }
};

struct _GstQemuDBusDeviceProvider {
  GstDeviceProvider parent;
  GstQemuDBusDeviceProviderPrivate *priv;
};

G_DEFINE_TYPE(GstQemuDBusDeviceProvider, gst_qemu_dbus_device_provider, GST_TYPE_DEVICE_PROVIDER);
GST_DEVICE_PROVIDER_REGISTER_DEFINE(qemudbusdeviceprovider, "qemudbusdeviceprovider",
                                    GST_RANK_MARGINAL, GST_TYPE_QEMU_DBUS_DEVICE_PROVIDER);

static void log_line(GstQemuDBusDeviceProvider *self, vmd::LogLevel level, const std::string &msg) {
  switch (level) {
    case vmd::LogLevel::Debug:
      GST_DEBUG_OBJECT(self, "%s", msg.c_str());
      break;
    case vmd::LogLevel::Info:
      GST_INFO_OBJECT(self, "%s", msg.c_str());
      break;
    case vmd::LogLevel::Warning:
      GST_WARNING_OBJECT(self, "%s", msg.c_str());
      break;
  }
}

static GList *gst_qemu_dbus_device_provider_probe(GstDeviceProvider *provider) {
  auto *self = GST_QEMU_DBUS_DEVICE_PROVIDER(provider);
  GList *list = nullptr;
  const std::vector<vmd::QemuDisplay> displays = vmd::qemu_probe_displays(
      watch_config().displays,
      [self](vmd::LogLevel level, const std::string &msg) { log_line(self, level, msg); });
  for (const vmd::QemuDisplay &d : displays)
    list = g_list_append(list, device_new(d));
  return list;
}

/* On the watch thread. */
static void on_added(GstQemuDBusDeviceProvider *self, const vmd::QemuDisplay &d) {
  GstDevice *device = device_new(d);
  GST_INFO_OBJECT(self, "added %s (console %u of %s on the %s bus)", display_name(d).c_str(),
                  d.console, d.owner.c_str(), vmd::qemu_bus_display_name(d.bus).c_str());
  {
    std::lock_guard<std::mutex> lock(self->priv->mu);
    self->priv->devices.emplace_back(d, GST_DEVICE(gst_object_ref_sink(device)));
  }
  gst_device_provider_device_add(GST_DEVICE_PROVIDER(self), device);
}

/* On the watch thread. */
static void on_removed(GstQemuDBusDeviceProvider *self, const vmd::QemuDisplay &d) {
  GstDevice *device = nullptr;
  {
    std::lock_guard<std::mutex> lock(self->priv->mu);
    auto &devices = self->priv->devices;
    for (auto it = devices.begin(); it != devices.end(); ++it) {
      if (it->first.same_as(d)) {
        device = it->second;
        devices.erase(it);
        break;
      }
    }
  }
  if (!device)
    return;
  GST_INFO_OBJECT(self, "removed %s", display_name(d).c_str());
  gst_device_provider_device_remove(GST_DEVICE_PROVIDER(self), device);
  gst_object_unref(device);
}

static gboolean gst_qemu_dbus_device_provider_start(GstDeviceProvider *provider) {
  auto *self = GST_QEMU_DBUS_DEVICE_PROVIDER(provider);
  vmd::QemuWatchEvents events;
  events.added = [self](const vmd::QemuDisplay &d) { on_added(self, d); };
  events.removed = [self](const vmd::QemuDisplay &d) { on_removed(self, d); };
  events.log = [self](vmd::LogLevel level, const std::string &msg) { log_line(self, level, msg); };
  self->priv->watch = std::make_unique<vmd::QemuVmWatch>(watch_config(), std::move(events));
  self->priv->watch->start();
  return TRUE;
}

static void gst_qemu_dbus_device_provider_stop(GstDeviceProvider *provider) {
  auto *self = GST_QEMU_DBUS_DEVICE_PROVIDER(provider);
  /* Joined first: no callback runs after this. The base class drops the
   * devices it holds; ours go here. */
  self->priv->watch.reset();
  std::lock_guard<std::mutex> lock(self->priv->mu);
  for (auto &entry : self->priv->devices)
    gst_object_unref(entry.second);
  self->priv->devices.clear();
}

static void gst_qemu_dbus_device_provider_finalize(GObject *object) {
  auto *self = GST_QEMU_DBUS_DEVICE_PROVIDER(object);
  self->priv->watch.reset();
  delete self->priv;
  G_OBJECT_CLASS(gst_qemu_dbus_device_provider_parent_class)->finalize(object);
}

static void gst_qemu_dbus_device_provider_init(GstQemuDBusDeviceProvider *self) {
  self->priv = new GstQemuDBusDeviceProviderPrivate();
}

static void gst_qemu_dbus_device_provider_class_init(GstQemuDBusDeviceProviderClass *klass) {
  GstDeviceProviderClass *provider_class = GST_DEVICE_PROVIDER_CLASS(klass);
  GST_DEBUG_CATEGORY_INIT(gst_qemu_dbus_device_provider_debug, "qemudbusdeviceprovider", 0,
                          "QEMU D-Bus display device provider");
  G_OBJECT_CLASS(klass)->finalize = gst_qemu_dbus_device_provider_finalize;
  provider_class->probe = gst_qemu_dbus_device_provider_probe;
  provider_class->start = gst_qemu_dbus_device_provider_start;
  provider_class->stop = gst_qemu_dbus_device_provider_stop;
  gst_device_provider_class_set_static_metadata(
      provider_class, "QEMU D-Bus display device provider", "Video/Source",
      "Lists the graphic consoles of QEMU VMs with -display dbus on the session bus and the "
      "system bus, and follows VMs coming and going",
      "gst-vmdisplay developers");
}
