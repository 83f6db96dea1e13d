/* gst-vmdisplay: DMA-BUF -> virtio-gpu resource ID (see virtgpu-resource.h). */
#include "virtgpu-resource.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* libdrm's kernel headers (libdrm-dev, found through pkg-config libdrm). Without them the
 * lookup compiles to a clear error and vsockenc uploads pixels. */
#if __has_include(<virtgpu_drm.h>) && __has_include(<drm.h>)
#include <drm.h>
#include <virtgpu_drm.h>
#define VMD_HAVE_VIRTGPU_DRM 1
#else
#define VMD_HAVE_VIRTGPU_DRM 0
#endif

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

namespace vmd {

namespace {

#if VMD_HAVE_VIRTGPU_DRM
int xioctl(int fd, unsigned long request, void *arg) {
  int r;
  do {
    r = ioctl(fd, request, arg);
  } while (r == -1 && (errno == EINTR || errno == EAGAIN));
  return r;
}
#endif

std::string basename_of(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/* Names in a directory that start with prefix (none when it cannot be read). */
std::vector<std::string> entries_with_prefix(const std::string &dir_path, const char *prefix) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR *)> dir(opendir(dir_path.c_str()), closedir);
  if (!dir)
    return names;
  const size_t len = strlen(prefix);
  while (struct dirent *e = readdir(dir.get()))
    if (strncmp(e->d_name, prefix, len) == 0)
      names.emplace_back(e->d_name);
  return names;
}

/* The name of the driver bound to a sysfs device directory ("" when none). */
std::string driver_of(const std::string &device_dir) {
  std::string link = device_dir + "/driver";
  char target[PATH_MAX];
  ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0)
    return "";
  target[n] = '\0';
  return basename_of(target);
}

/* Whether `driver` drives the DRM node's device. virtio drivers bind to the virtio device
 * (virtioN), but virtio-gpu parents its DRM device to the transport's device above it: with
 * -device virtio-gpu-pci, class/drm/renderD128/device is the PCI function, driven by
 * "virtio-pci", and virtio_gpu is the driver of its child device/virtio0. */
bool driven_by(const std::string &device_dir, const std::string &driver) {
  if (driver_of(device_dir) == driver)
    return true;
  for (const auto &child : entries_with_prefix(device_dir, "virtio"))
    if (driver_of(device_dir + "/" + child) == driver)
      return true;
  return false;
}

}  // namespace

std::string find_render_node(const std::string &driver, const std::string &sysfs_root,
                             const std::string &dev_root) {
  std::string class_dir = sysfs_root + "/class/drm";
  std::vector<std::string> nodes = entries_with_prefix(class_dir, "renderD");
  /* renderD128 before renderD129: same length, so plain ordering works for 128..999. */
  std::sort(nodes.begin(), nodes.end());
  for (const auto &node : nodes) {
    if (driven_by(class_dir + "/" + node + "/device", driver))
      return dev_root + "/" + node;
  }
  return "";
}

#if VMD_HAVE_VIRTGPU_DRM
std::string drm_driver_name(int fd) {
  char name[64] = {};
  struct drm_version v;
  memset(&v, 0, sizeof v);
  v.name = name;
  v.name_len = sizeof name - 1;
  if (xioctl(fd, DRM_IOCTL_VERSION, &v) != 0)
    return "";
  name[std::min<size_t>(v.name_len, sizeof name - 1)] = '\0';
  return name;
}

std::unique_ptr<VirtgpuResources> VirtgpuResources::open(const std::string &device,
                                                         std::string *error) {
  std::string path = device.empty() ? find_render_node() : device;
  if (path.empty()) {
    *error = "no DRM render node is driven by virtio_gpu (is this a VM with -device "
             "virtio-gpu-pci and the virtio-gpu module loaded?)";
    return nullptr;
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    *error = "cannot open " + path + ": " + strerror(errno);
    return nullptr;
  }
  std::string name = drm_driver_name(fd.get());
  if (name != "virtio_gpu") {
    *error = path + " is " + (name.empty() ? "not a DRM device" : "driven by " + name) +
             ", not virtio_gpu";
    return nullptr;
  }
  return std::unique_ptr<VirtgpuResources>(new VirtgpuResources(std::move(fd), path));
}

bool VirtgpuResources::resource_id(int dmabuf_fd, uint32_t *id, std::string *error) {
  struct drm_prime_handle prime;
  memset(&prime, 0, sizeof prime);
  prime.fd = dmabuf_fd;
  if (xioctl(fd_.get(), DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime) != 0) {
    *error = "DRM_IOCTL_PRIME_FD_TO_HANDLE on " + device_ + ": " + strerror(errno) +
             " (the DMA-BUF is not from this virtio-gpu device?)";
    return false;
  }
  struct drm_virtgpu_resource_info info;
  memset(&info, 0, sizeof info);
  info.bo_handle = prime.handle;
  int r = xioctl(fd_.get(), DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info);
  int saved = errno;
  /* The handle is ours to release whatever RESOURCE_INFO said; the resource itself lives on
   * as long as the DMA-BUF does. */
  struct drm_gem_close close_req;
  memset(&close_req, 0, sizeof close_req);
  close_req.handle = prime.handle;
  xioctl(fd_.get(), DRM_IOCTL_GEM_CLOSE, &close_req);
  if (r != 0) {
    *error = "DRM_IOCTL_VIRTGPU_RESOURCE_INFO on " + device_ + ": " + strerror(saved);
    return false;
  }
  if (info.res_handle == 0) {
    *error = "virtio-gpu reported resource ID 0";
    return false;
  }
  *id = info.res_handle;
  return true;
}

#else /* !VMD_HAVE_VIRTGPU_DRM */

std::string drm_driver_name(int) { return ""; }

std::unique_ptr<VirtgpuResources> VirtgpuResources::open(const std::string &, std::string *error) {
  *error = "built without libdrm's headers (install libdrm-dev and rebuild)";
  return nullptr;
}

bool VirtgpuResources::resource_id(int, uint32_t *, std::string *error) {
  *error = "built without libdrm's headers";
  return false;
}

#endif

}  // namespace vmd
