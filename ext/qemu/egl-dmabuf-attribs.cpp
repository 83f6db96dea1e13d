/* gst-vmdisplay: eglCreateImage attributes of a DMA-BUF layout. */
#include "egl-dmabuf-attribs.h"

#include <EGL/egl.h>
#include <EGL/eglext.h>

#include <cstring>

namespace vmd {
namespace {

const EGLint kPlaneAttribs[kMaxDmabufPlanes][5] = {
    {EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE0_PITCH_EXT,
     EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT,
     EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE2_FD_EXT, EGL_DMA_BUF_PLANE2_OFFSET_EXT, EGL_DMA_BUF_PLANE2_PITCH_EXT,
     EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT},
    {EGL_DMA_BUF_PLANE3_FD_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT, EGL_DMA_BUF_PLANE3_PITCH_EXT,
     EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT},
};

}  // namespace

std::vector<int32_t> egl_dmabuf_attribs(const DmabufLayout &layout,
                                        const std::vector<UniqueFd> &fds, uint32_t fourcc,
                                        bool modifiers) {
  std::vector<EGLint> a = {EGL_WIDTH, EGLint(layout.backing_width), EGL_HEIGHT,
                           EGLint(layout.backing_height), EGL_LINUX_DRM_FOURCC_EXT,
                           EGLint(fourcc)};
  modifiers = modifiers && layout.modifier != kDrmFormatModInvalid;
  for (uint32_t p = 0; p < layout.num_planes && p < kMaxDmabufPlanes; p++) {
    a.insert(a.end(), {kPlaneAttribs[p][0], fds[layout.planes[p].fd_index].get(),
                       kPlaneAttribs[p][1], EGLint(layout.planes[p].offset), kPlaneAttribs[p][2],
                       EGLint(layout.planes[p].stride)});
    if (modifiers)
      a.insert(a.end(), {kPlaneAttribs[p][3], EGLint(uint32_t(layout.modifier & 0xffffffffu)),
                         kPlaneAttribs[p][4], EGLint(uint32_t(layout.modifier >> 32))});
  }
  a.push_back(EGL_NONE);
  return a;
}

bool egl_has_extension(const char *list, const char *name) {
  if (!list)
    return false;
  const size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != nullptr; p += n) {
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
      return true;
  }
  return false;
}

}  // namespace vmd
