/* Test VM program: vsockenc's resource-ID lookup (gst/helix/virtgpu-resource.cpp, compiled in
 * here) against a real virtio-gpu. Creates dumb buffers of distinct sizes on the virtio-gpu
 * primary node (render nodes cannot make dumb buffers), exports each as a DMA-BUF and asks our
 * code which resource it is. The host test compares the answers with QEMU's own trace of
 * RESOURCE_CREATE_2D (matched by size). Serial console lines:
 *   VIRTGPU PROBE card=/dev/dri/cardN node=/dev/dri/renderDNNN
 *   VIRTGPU PROBE buffer=I size=WxH resource_id=ID node=/dev/dri/renderDNNN
 *   VIRTGPU PROBE refused <case>: <our error text>
 *   VIRTGPU PROBE OK buffers=N
 *   VIRTGPU PROBE FAIL <why>
 * Static (the initramfs has no libraries), no GLib. Needs vmpattern.virtio=1 (virtio-gpu). */
#include "virtgpu-resource.h"

#include <drm.h>
#include <drm_mode.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

int fail(const std::string &why) {
  printf("VIRTGPU PROBE FAIL %s\n", why.c_str());
  fflush(stdout);
  return 1;
}

/* The virtio-gpu primary node: /dev/dri/cardN whose DRM driver is virtio_gpu (bochs is not
 * loaded in this mode, but do not rely on the numbering). */
std::string find_card() {
  for (int i = 0; i < 16; i++) {
    std::string path = "/dev/dri/card" + std::to_string(i);
    vmd::UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (fd && vmd::drm_driver_name(fd.get()) == "virtio_gpu")
      return path;
  }
  return "";
}

struct Size {
  uint32_t w, h;
};

}  // namespace

int main() {
  /* modprobe returns once the driver is bound, but allow the device nodes a moment. */
  std::string card, node;
  for (int i = 0; i < 100 && (card.empty() || node.empty()); i++) {
    card = find_card();
    node = vmd::find_render_node();
    if (card.empty() || node.empty())
      usleep(100000);
  }
  if (card.empty())
    return fail("no /dev/dri/cardN is driven by virtio_gpu (-device virtio-gpu-pci, "
                "vmpattern.virtio=1?)");
  if (node.empty())
    return fail("no virtio_gpu render node (find_render_node() found none)");
  printf("VIRTGPU PROBE card=%s node=%s\n", card.c_str(), node.c_str());

  vmd::UniqueFd card_fd(open(card.c_str(), O_RDWR | O_CLOEXEC));
  if (!card_fd)
    return fail("cannot open " + card + ": " + strerror(errno));

  /* Our lookup, exactly as vsockenc opens it: empty device = find_render_node(). */
  std::string error;
  auto resources = vmd::VirtgpuResources::open("", &error);
  if (!resources)
    return fail("VirtgpuResources::open: " + error);

  /* Sizes nothing else in the guest uses (the kernel's fbdev emulation makes one resource of
   * the display's size at boot), so the host can find each buffer in QEMU's trace. All stay
   * alive until the end, so their IDs are distinct. */
  const Size sizes[] = {{64, 64}, {96, 48}, {128, 32}};
  std::vector<vmd::UniqueFd> dmabufs;
  std::vector<uint32_t> ids;
  int index = 0;
  for (const Size &s : sizes) {
    struct drm_mode_create_dumb create;
    memset(&create, 0, sizeof create);
    create.width = s.w;
    create.height = s.h;
    create.bpp = 32;
    if (ioctl(card_fd.get(), DRM_IOCTL_MODE_CREATE_DUMB, &create) != 0)
      return fail("DRM_IOCTL_MODE_CREATE_DUMB " + std::to_string(s.w) + "x" +
                  std::to_string(s.h) + ": " + strerror(errno));
    struct drm_prime_handle prime;
    memset(&prime, 0, sizeof prime);
    prime.handle = create.handle;
    prime.flags = DRM_CLOEXEC | DRM_RDWR;
    if (ioctl(card_fd.get(), DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) != 0)
      return fail(std::string("DRM_IOCTL_PRIME_HANDLE_TO_FD: ") + strerror(errno));
    vmd::UniqueFd dmabuf(prime.fd);

    uint32_t id = 0;
    if (!resources->resource_id(dmabuf.get(), &id, &error))
      return fail("resource_id of buffer " + std::to_string(index) + ": " + error);
    /* Asked again, the same answer (the lookup releases its GEM handle, nothing sticks). */
    uint32_t again = 0;
    if (!resources->resource_id(dmabuf.get(), &again, &error))
      return fail("resource_id of buffer " + std::to_string(index) + " again: " + error);
    if (again != id)
      return fail("buffer " + std::to_string(index) + ": resource_id gave " + std::to_string(id) +
                  " then " + std::to_string(again));
    printf("VIRTGPU PROBE buffer=%d size=%ux%u resource_id=%u node=%s\n", index, s.w, s.h, id,
           resources->device().c_str());
    fflush(stdout);
    ids.push_back(id);
    dmabufs.push_back(std::move(dmabuf));
    index++;
  }

  /* Refusals: an error, never a crash and never an ID. */
  {
    vmd::UniqueFd memfd(memfd_create("not-a-dmabuf", MFD_CLOEXEC));
    if (!memfd || ftruncate(memfd.get(), 4096) != 0)
      return fail(std::string("memfd_create: ") + strerror(errno));
    uint32_t id = 0;
    error.clear();
    if (resources->resource_id(memfd.get(), &id, &error))
      return fail("a memfd got resource ID " + std::to_string(id));
    if (error.empty())
      return fail("a memfd was refused without an error text");
    printf("VIRTGPU PROBE refused memfd: %s\n", error.c_str());
  }
  {
    uint32_t id = 0;
    error.clear();
    if (resources->resource_id(-1, &id, &error))
      return fail("fd -1 got resource ID " + std::to_string(id));
    if (error.empty())
      return fail("fd -1 was refused without an error text");
    printf("VIRTGPU PROBE refused fd -1: %s\n", error.c_str());
  }
  {
    error.clear();
    if (vmd::VirtgpuResources::open("/dev/null", &error))
      return fail("VirtgpuResources::open accepted /dev/null");
    printf("VIRTGPU PROBE refused /dev/null: %s\n", error.c_str());
  }
  /* The lookup still works after the refusals. */
  uint32_t id = 0;
  if (!resources->resource_id(dmabufs[0].get(), &id, &error) || id != ids[0])
    return fail("buffer 0 after the refusals: " + (error.empty() ? std::to_string(id) : error));

  printf("VIRTGPU PROBE OK buffers=%zu\n", ids.size());
  fflush(stdout);
  return 0;
}
