/* DRM hotplug notices for vmpattern.follow=1: the kernel's uevents, read
 * from a NETLINK_KOBJECT_UEVENT socket (there is no udev in the guest).
 * virtio-gpu sends one ("SUBSYSTEM=drm", "HOTPLUG=1") after the host
 * changed the display's size (QEMU's SetUIInfo). */
#ifndef VMPATTERN_HOTPLUG_H
#define VMPATTERN_HOTPLUG_H

/* Returns a non-blocking socket, or -1 with errno set. */
int hotplug_open(void);

/* Reads every pending uevent; returns 1 if one of them was a DRM hotplug,
 * else 0. */
int hotplug_read(int fd);

#endif
