/* Test support: the devices of qemudbusdeviceprovider as plain values, read
 * only through the public GstDevice API (display name, class, properties),
 * so tests compare what an application would see. Header only. */
#pragma once

#include <gst/gst.h>

#include <algorithm>
#include <string>
#include <vector>

namespace testsupport {

struct SeenDevice {
  std::string name, klass, vm_name, uuid, label, bus;
  guint console = G_MAXUINT;
  GstDevice *device = nullptr; /* borrowed from the list it was read from */
};

inline std::string structure_string(const GstStructure *s, const char *field) {
  const gchar *v = s ? gst_structure_get_string(s, field) : nullptr;
  return v ? v : "<none>";
}

/* What a device of ours shows; nullptr-safe for other providers' devices. */
inline SeenDevice seen_device(GstDevice *device) {
  SeenDevice d;
  d.device = device;
  gchar *name = gst_device_get_display_name(device);
  gchar *klass = gst_device_get_device_class(device);
  d.name = name ? name : "";
  d.klass = klass ? klass : "";
  g_free(name);
  g_free(klass);
  GstStructure *props = gst_device_get_properties(device);
  d.vm_name = structure_string(props, "qemu.vm-name");
  d.uuid = structure_string(props, "qemu.uuid");
  d.label = structure_string(props, "qemu.label");
  d.bus = structure_string(props, "qemu.bus");
  if (props)
    gst_structure_get_uint(props, "qemu.console", &d.console);
  if (props)
    gst_structure_free(props);
  return d;
}

inline bool is_qemu_device(GstDevice *device) {
  return g_str_equal(G_OBJECT_TYPE_NAME(device), "GstQemuDBusDevice");
}

/* Our devices in a GList of GstDevice, sorted by display name. */
inline std::vector<SeenDevice> seen_devices(GList *devices) {
  std::vector<SeenDevice> out;
  for (GList *l = devices; l; l = l->next)
    if (is_qemu_device(GST_DEVICE(l->data)))
      out.push_back(seen_device(GST_DEVICE(l->data)));
  std::sort(out.begin(), out.end(),
            [](const SeenDevice &a, const SeenDevice &b) { return a.name < b.name; });
  return out;
}

/* "a: VGA, b: VGA": display names, for messages and comparisons. */
inline std::string names_of(const std::vector<SeenDevice> &devices) {
  std::string out;
  for (const SeenDevice &d : devices)
    out += (out.empty() ? "" : ", ") + d.name;
  return out;
}

}  // namespace testsupport
