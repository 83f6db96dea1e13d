/* gst-vmdisplay: one EGL display with a GLES 3 context, through libepoxy.
 *
 * Either a DRM render node (EGL_EXT_device_enumeration + EGL_EXT_device_query:
 * the EGLDevice whose EGL_DRM_RENDER_NODE_FILE_EXT is the node, on
 * EGL_PLATFORM_DEVICE_EXT) or Mesa's surfaceless platform
 * (EGL_MESA_platform_surfaceless: llvmpipe on a machine without DRM). The
 * device platform needs no libgbm and no fd of ours, and names the node it
 * opened.
 *
 * The context is current only inside a Current scope, which also holds the
 * device's lock: the callers run on threads shared with other code (GDBus's
 * worker), which must never find our context current.
 */
#pragma once

#include <epoxy/egl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vmd {

class EglDevice {
 public:
  /* render_node: a path ("/dev/dri/renderD128") opens exactly that node;
   * "" (auto) the first of each /dev/dri/renderD* in order, then the
   * surfaceless platform, that has dma-buf import (else the first that
   * opened at all). nullptr with *why when nothing opens. */
  static std::shared_ptr<EglDevice> open(const std::string &render_node, std::string *why);

  /* Every device open() would consider, in its order, each opened (for
   * "the first whose EGL imports this buffer"). Reasons for the ones that
   * did not open go to *why, "; "-separated. */
  static std::vector<std::shared_ptr<EglDevice>> open_candidates(const std::string &render_node,
                                                                 std::string *why);

  /* One device: a render node path, or "" for the surfaceless platform. */
  static std::shared_ptr<EglDevice> open_one(const std::string &render_node, std::string *why);

  ~EglDevice();
  EglDevice(const EglDevice &) = delete;
  EglDevice &operator=(const EglDevice &) = delete;

  /* "EGL on /dev/dri/renderD128", "EGL on the surfaceless platform (llvmpipe)" */
  const std::string &describe() const { return description_; }
  const std::string &render_node() const { return node_; } /* "" for surfaceless */
  const std::string &gl_version() const { return gl_version_; }
  bool has_dmabuf_import() const { return dmabuf_import_; }
  /* GL_RENDERER is Mesa's llvmpipe or softpipe: "GPU" work runs on the CPU. */
  bool software() const { return software_; }
  bool has_dmabuf_modifiers() const { return dmabuf_modifiers_; }
  EGLDisplay display() const { return display_; }

  /* EGL_KHR_image_base, resolved once with eglGetProcAddress: libepoxy's
   * own dispatch checks extensions on the *current* display and aborts when
   * none is current (the destructor of a reader runs outside a Current). */
  EGLImageKHR create_image(EGLenum target, const EGLint *attribs) const {
    return create_image_(display_, EGL_NO_CONTEXT, target, nullptr, attribs);
  }
  void destroy_image(EGLImageKHR image) const { destroy_image_(display_, image); }

  /* Makes the context current on this thread for its lifetime (holding the
   * device's lock), then puts back whatever was current before (nothing, on
   * GDBus's worker). ok() is false when eglMakeCurrent failed. */
  class Current {
   public:
    explicit Current(EglDevice &device);
    ~Current();
    Current(const Current &) = delete;
    Current &operator=(const Current &) = delete;
    bool ok() const { return ok_; }

   private:
    EglDevice &device_;
    std::unique_lock<std::mutex> lock_;
    EGLDisplay prev_display_;
    EGLContext prev_context_;
    EGLSurface prev_draw_, prev_read_;
    EGLenum prev_api_;
    bool ok_ = false;
  };

 private:
  struct Key {
    explicit Key() = default;
  };

 public:
  /* Passkey (Key is private): only open_one() builds one, with make_shared. */
  explicit EglDevice(Key) {}

 private:
  bool init(EGLDisplay display, const std::string &node, std::string *why);

  std::mutex lock_;
  EGLDisplay display_ = EGL_NO_DISPLAY;
  EGLContext context_ = EGL_NO_CONTEXT;
  bool terminate_ = false; /* only with EGL_KHR_display_reference (shared displays) */
  std::string node_, description_, gl_version_;
  bool dmabuf_import_ = false, dmabuf_modifiers_ = false, software_ = false;
  PFNEGLCREATEIMAGEKHRPROC create_image_ = nullptr;
  PFNEGLDESTROYIMAGEKHRPROC destroy_image_ = nullptr;
};

/* The EGL error code's name ("EGL_BAD_MATCH"). */
const char *egl_error_name(EGLint error);

}  // namespace vmd
