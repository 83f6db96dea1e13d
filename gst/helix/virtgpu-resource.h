/* gst-vmdisplay: guest side of the resource-ID path: which virtio-gpu resource a DMA-BUF is.
 *
 * The host can encode a guest buffer without the pixels crossing the socket if it knows the
 * buffer's virtio-gpu resource ID. The kernel tells us through the virtio-gpu DRM node:
 * DRM_IOCTL_PRIME_FD_TO_HANDLE (DMA-BUF -> GEM handle on our fd), then
 * DRM_IOCTL_VIRTGPU_RESOURCE_INFO (GEM handle -> res_handle), then DRM_IOCTL_GEM_CLOSE. Only
 * raw ioctls: libdrm's headers are used, its library is not linked. No GStreamer here.
 *
 * The node lookup reads sysfs: class/drm/renderDNNN/device/driver, or, since virtio-gpu parents
 * its DRM device to the transport (a PCI function driven by "virtio-pci"),
 * class/drm/renderDNNN/device/virtioN/driver -> ".../virtio_gpu". The roots are parameters so
 * tests can hand it a fake tree.
 */
#pragma once

#include "unique-fd.h"

#include <cstdint>
#include <memory>
#include <string>

namespace vmd {

/* The first render node (sorted by name) whose kernel driver is `driver` (the driver of its
 * device or of a virtioN child of it): "/dev/dri/renderD128" or "" when there is none. */
std::string find_render_node(const std::string &driver = "virtio_gpu",
                             const std::string &sysfs_root = "/sys",
                             const std::string &dev_root = "/dev/dri");

/* The kernel driver name of a DRM node, through DRM_IOCTL_VERSION; "" when fd is not DRM. */
std::string drm_driver_name(int fd);

class VirtgpuResources {
 public:
  /* Opens a DRM node and checks that virtio_gpu drives it; nullptr and *error otherwise.
   * Empty device = find_render_node(). */
  static std::unique_ptr<VirtgpuResources> open(const std::string &device, std::string *error);

  /* The virtio-gpu resource ID behind a DMA-BUF fd (never 0 on success). False and *error
   * when the buffer does not belong to this device or the ioctls fail. */
  bool resource_id(int dmabuf_fd, uint32_t *id, std::string *error);

  const std::string &device() const { return device_; }

 private:
  VirtgpuResources(UniqueFd fd, std::string device) : fd_(std::move(fd)), device_(std::move(device)) {}
  UniqueFd fd_;
  std::string device_;
};

}  // namespace vmd
