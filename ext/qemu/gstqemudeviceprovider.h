/* gst-vmdisplay: qemudbusdeviceprovider, the graphic consoles of QEMU VMs
 * (-display dbus) on the session and system buses as GstDevices, and
 * GstQemuDBusDevice, whose create_element gives a configured qemudbussrc.
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_QEMU_DBUS_DEVICE_PROVIDER (gst_qemu_dbus_device_provider_get_type())
G_DECLARE_FINAL_TYPE(GstQemuDBusDeviceProvider, gst_qemu_dbus_device_provider, GST,
                     QEMU_DBUS_DEVICE_PROVIDER, GstDeviceProvider)

#define GST_TYPE_QEMU_DBUS_DEVICE (gst_qemu_dbus_device_get_type())
G_DECLARE_FINAL_TYPE(GstQemuDBusDevice, gst_qemu_dbus_device, GST, QEMU_DBUS_DEVICE, GstDevice)

GST_DEVICE_PROVIDER_REGISTER_DECLARE(qemudbusdeviceprovider);

G_END_DECLS
