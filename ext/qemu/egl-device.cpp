/* gst-vmdisplay: EGL display + GLES 3 context (see egl-device.h). */
#include "egl-device.h"

#include "egl-dmabuf-attribs.h"

#include <epoxy/gl.h>
#include <glob.h>

#include <algorithm>
#include <cstring>

/* EGL_EXT_device_drm_render_node (Mesa 21+), newer than libepoxy 1.5.10's tables. */
#ifndef EGL_DRM_RENDER_NODE_FILE_EXT
#define EGL_DRM_RENDER_NODE_FILE_EXT 0x3377
#endif

namespace vmd {
namespace {


const char *client_extensions() {
  return eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
}

std::vector<std::string> render_nodes() {
  std::vector<std::string> nodes;
  glob_t g{};
  if (glob("/dev/dri/renderD*", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++)
      nodes.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  /* renderD128 before renderD129 before renderD1000 */
  std::sort(nodes.begin(), nodes.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return nodes;
}

/* Attributes asking for a reference-counted display where EGL has them, so
 * that our eglTerminate leaves other users of the same display alone. */
std::vector<EGLint> display_attribs(bool *counted) {
  std::vector<EGLint> attribs;
  *counted = egl_has_extension(client_extensions(), "EGL_KHR_display_reference");
  if (*counted)
    attribs = {EGL_TRACK_REFERENCES_KHR, EGL_TRUE};
  attribs.push_back(EGL_NONE);
  return attribs;
}

EGLDisplay device_display(const std::string &node, bool *counted, std::string *why) {
  const char *ext = client_extensions();
  if (!egl_has_extension(ext, "EGL_EXT_device_enumeration") ||
      !egl_has_extension(ext, "EGL_EXT_platform_device")) {
    *why = node + ": EGL has no EGL_EXT_device_enumeration/EGL_EXT_platform_device";
    return EGL_NO_DISPLAY;
  }
  EGLint n = 0;
  if (!eglQueryDevicesEXT(0, nullptr, &n) || n <= 0) {
    *why = node + ": eglQueryDevicesEXT lists no device";
    return EGL_NO_DISPLAY;
  }
  std::vector<EGLDeviceEXT> devices(static_cast<size_t>(n));
  eglQueryDevicesEXT(n, devices.data(), &n);
  for (EGLint i = 0; i < n; i++) {
    const char *dev_ext = eglQueryDeviceStringEXT(devices[size_t(i)], EGL_EXTENSIONS);
    if (!egl_has_extension(dev_ext, "EGL_EXT_device_drm_render_node"))
      continue;
    const char *file = eglQueryDeviceStringEXT(devices[size_t(i)], EGL_DRM_RENDER_NODE_FILE_EXT);
    if (file && node == file) {
      std::vector<EGLint> attribs = display_attribs(counted);
      return eglGetPlatformDisplayEXT(EGL_PLATFORM_DEVICE_EXT, devices[size_t(i)], attribs.data());
    }
  }
  *why = node + ": no EGL device has this render node";
  return EGL_NO_DISPLAY;
}

EGLDisplay surfaceless_display(bool *counted, std::string *why) {
  if (!egl_has_extension(client_extensions(), "EGL_EXT_platform_base") ||
      !egl_has_extension(client_extensions(), "EGL_MESA_platform_surfaceless")) {
    *why = "surfaceless: EGL has no EGL_MESA_platform_surfaceless";
    return EGL_NO_DISPLAY;
  }
  std::vector<EGLint> attribs = display_attribs(counted);
  return eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, attribs.data());
}

std::string gl_string(GLenum name) {
  const GLubyte *s = glGetString(name);
  return s ? reinterpret_cast<const char *>(s) : "";
}

}  // namespace

const char *egl_error_name(EGLint error) {
  switch (error) {
#define CASE(e) \
  case e:       \
    return #e;
    CASE(EGL_SUCCESS)
    CASE(EGL_NOT_INITIALIZED)
    CASE(EGL_BAD_ACCESS)
    CASE(EGL_BAD_ALLOC)
    CASE(EGL_BAD_ATTRIBUTE)
    CASE(EGL_BAD_CONFIG)
    CASE(EGL_BAD_CONTEXT)
    CASE(EGL_BAD_CURRENT_SURFACE)
    CASE(EGL_BAD_DISPLAY)
    CASE(EGL_BAD_MATCH)
    CASE(EGL_BAD_NATIVE_PIXMAP)
    CASE(EGL_BAD_NATIVE_WINDOW)
    CASE(EGL_BAD_PARAMETER)
    CASE(EGL_BAD_SURFACE)
    CASE(EGL_CONTEXT_LOST)
#undef CASE
    default:
      return "unknown EGL error";
  }
}

std::shared_ptr<EglDevice> EglDevice::open_one(const std::string &node, std::string *why) {
  bool counted = false;
  EGLDisplay display = node.empty() ? surfaceless_display(&counted, why)
                                    : device_display(node, &counted, why);
  if (display == EGL_NO_DISPLAY) {
    if (why->empty())
      *why = (node.empty() ? "surfaceless" : node) + ": eglGetPlatformDisplay: " +
             egl_error_name(eglGetError());
    return nullptr;
  }
  auto device = std::make_shared<EglDevice>(Key());
  device->terminate_ = counted;
  if (!device->init(display, node, why))
    return nullptr;
  return device;
}

bool EglDevice::init(EGLDisplay display, const std::string &node, std::string *why) {
  const std::string where = node.empty() ? "surfaceless" : node;
  EGLint major = 0, minor = 0;
  if (!eglInitialize(display, &major, &minor)) {
    *why = where + ": eglInitialize: " + egl_error_name(eglGetError());
    return false;
  }
  display_ = display; /* from here on the destructor undoes it */
  node_ = node;
  const char *ext = eglQueryString(display, EGL_EXTENSIONS);
  if (!egl_has_extension(ext, "EGL_KHR_image_base") ||
      !egl_has_extension(ext, "EGL_KHR_surfaceless_context") ||
      !egl_has_extension(ext, "EGL_KHR_no_config_context")) {
    *why = where + ": EGL lacks EGL_KHR_image_base, EGL_KHR_surfaceless_context or "
                   "EGL_KHR_no_config_context";
    return false;
  }
  create_image_ =
      reinterpret_cast<PFNEGLCREATEIMAGEKHRPROC>(eglGetProcAddress("eglCreateImageKHR"));
  destroy_image_ =
      reinterpret_cast<PFNEGLDESTROYIMAGEKHRPROC>(eglGetProcAddress("eglDestroyImageKHR"));
  if (!create_image_ || !destroy_image_) {
    *why = where + ": eglGetProcAddress finds no eglCreateImageKHR/eglDestroyImageKHR";
    return false;
  }
  dmabuf_import_ = egl_has_extension(ext, "EGL_EXT_image_dma_buf_import");
  dmabuf_modifiers_ = egl_has_extension(ext, "EGL_EXT_image_dma_buf_import_modifiers");
  const EGLint attribs[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 0, EGL_NONE};
  EGLenum prev_api = eglQueryAPI();
  eglBindAPI(EGL_OPENGL_ES_API);
  context_ = eglCreateContext(display, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, attribs);
  eglBindAPI(prev_api);
  if (context_ == EGL_NO_CONTEXT) {
    *why = where + ": eglCreateContext (GLES 3.0): " + egl_error_name(eglGetError());
    return false;
  }
  Current current(*this);
  if (!current.ok()) {
    *why = where + ": eglMakeCurrent: " + egl_error_name(eglGetError());
    return false;
  }
  gl_version_ = gl_string(GL_VERSION);
  if (!epoxy_has_gl_extension("GL_OES_EGL_image")) {
    *why = where + ": GLES has no GL_OES_EGL_image";
    return false;
  }
  std::string renderer = gl_string(GL_RENDERER);
  software_ = renderer.find("llvmpipe") != std::string::npos ||
              renderer.find("softpipe") != std::string::npos;
  if (node.empty()) {
    renderer = renderer.substr(0, renderer.find(" ("));
    description_ = "EGL on the surfaceless platform (" + renderer + ")";
  } else {
    description_ = "EGL on " + node;
  }
  return true;
}

EglDevice::~EglDevice() {
  if (display_ == EGL_NO_DISPLAY)
    return;
  if (context_ != EGL_NO_CONTEXT)
    eglDestroyContext(display_, context_);
  if (terminate_)
    eglTerminate(display_);
  /* Without EGL_KHR_display_reference the display stays initialized: the
   * same EGLDisplay may be someone else's (GStreamer's GL, another device). */
}

std::vector<std::shared_ptr<EglDevice>> EglDevice::open_candidates(const std::string &node,
                                                                   std::string *why) {
  std::vector<std::string> tries = node.empty() ? render_nodes() : std::vector<std::string>{node};
  if (node.empty())
    tries.emplace_back(""); /* the surfaceless platform last */
  std::vector<std::shared_ptr<EglDevice>> devices;
  why->clear();
  for (const std::string &n : tries) {
    std::string reason;
    if (auto device = open_one(n, &reason))
      devices.push_back(std::move(device));
    else
      *why += (why->empty() ? "" : "; ") + reason;
  }
  return devices;
}

std::shared_ptr<EglDevice> EglDevice::open(const std::string &node, std::string *why) {
  std::vector<std::shared_ptr<EglDevice>> devices = open_candidates(node, why);
  for (const auto &device : devices) {
    if (device->has_dmabuf_import())
      return device;
  }
  return devices.empty() ? nullptr : devices.front();
}

EglDevice::Current::Current(EglDevice &device)
    : device_(device),
      lock_(device.lock_),
      prev_display_(eglGetCurrentDisplay()),
      prev_context_(eglGetCurrentContext()),
      prev_draw_(eglGetCurrentSurface(EGL_DRAW)),
      prev_read_(eglGetCurrentSurface(EGL_READ)),
      prev_api_(eglQueryAPI()) {
  eglBindAPI(EGL_OPENGL_ES_API);
  ok_ = eglMakeCurrent(device_.display_, EGL_NO_SURFACE, EGL_NO_SURFACE, device_.context_);
}

EglDevice::Current::~Current() {
  if (prev_context_ != EGL_NO_CONTEXT) {
    eglBindAPI(prev_api_);
    eglMakeCurrent(prev_display_, prev_draw_, prev_read_, prev_context_);
  } else {
    eglMakeCurrent(device_.display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglBindAPI(prev_api_);
  }
}

}  // namespace vmd
