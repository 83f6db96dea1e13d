/* gst-vmdisplay: what both EGL imports of a DMA-BUF share (our own display
 * in dmabuf-import.*, GStreamer's in gl-output.*): the eglCreateImage
 * attribute list of a layout, and EGL extension-string lookup. No EGL
 * header here, so either EGL loader (libepoxy, GStreamer's) can include it. */
#pragma once

#include "dmabuf-layout.h"

#include <cstdint>
#include <vector>

namespace vmd {

/* EGL_LINUX_DMA_BUF_EXT attributes for eglCreateImage: size (the backing),
 * `fourcc` (the one to import as), each plane's fd, offset and pitch, and
 * its modifier when `modifiers` (never for DRM_FORMAT_MOD_INVALID), ending
 * with EGL_NONE. The values are EGLints. */
std::vector<int32_t> egl_dmabuf_attribs(const DmabufLayout &layout,
                                        const std::vector<UniqueFd> &fds, uint32_t fourcc,
                                        bool modifiers);

/* `name` is one of the space-separated extensions in `list` (NULL: none). */
bool egl_has_extension(const char *list, const char *name);

}  // namespace vmd
