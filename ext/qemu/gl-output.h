/* gst-vmdisplay: a DMA-BUF scanout kept on the GPU, for qemudbussrc's
 * video/x-raw(memory:GLMemory) output.
 *
 * A GlOutput lives in a GstGLContext on an EGL display (GStreamer's, shared
 * with downstream through GstContext). attach() imports the scanout there
 * (eglCreateImage(EGL_LINUX_DMA_BUF_EXT) with its modifier, like
 * dmabuf-import.*, but on GStreamer's EGLDisplay); draw() copies a damaged
 * rectangle of it into a full-size RGBA8 "surface texture" with a shader
 * (flipping y0_top buffers; the channels in RGBA order: the import names the
 * real fourcc) and waits for the GPU, so QEMU's reply follows the read;
 * copy_to() copies the surface texture into a GLMemory texture (a GPU copy,
 * never a readback). Every GL call runs in the context's thread
 * (gst_gl_context_thread_add), which also serializes them.
 */
#pragma once

#include "dmabuf-layout.h"

#include <gst/gl/gl.h>

#include <memory>
#include <string>
#include <vector>

namespace vmd {

class GlOutput : public DmabufMirror {
 public:
  /* nullptr with *why when ctx is not EGL, lacks EGL_EXT_image_dma_buf_import,
   * or GL 3.3 / GLES 3.0, or the targets cannot be made. */
  static std::shared_ptr<GlOutput> create(GstGLContext *ctx, uint32_t width, uint32_t height,
                                          std::string *why);
  ~GlOutput() override;
  GlOutput(const GlOutput &) = delete;
  GlOutput &operator=(const GlOutput &) = delete;

  bool attach(const DmabufLayout &layout, std::vector<UniqueFd> fds, std::string *why) override;
  bool draw(const Rect &r, std::string *why) override;
  /* mem: a width x height RGBA GLMemory (2D) of this context's display. */
  bool copy_to(GstGLMemory *mem, std::string *why);

  GstGLContext *context() const { return ctx_; }

 private:
  struct Key {
    explicit Key() = default;
  };

 public:
  /* Passkey (Key is private): only create() builds one, with make_shared. */
  GlOutput(Key, GstGLContext *ctx, uint32_t width, uint32_t height);

 private:
  struct Egl;
  bool setup_gl(std::string *why);
  bool make_program_gl(std::string *why);
  bool import_gl(const DmabufLayout &layout, const std::vector<UniqueFd> &fds, std::string *why);
  bool draw_gl(const Rect &r, std::string *why);
  bool copy_gl(GstGLMemory *mem, std::string *why);
  void release_image_gl();

  GstGLContext *ctx_ = nullptr;
  uint32_t width_, height_;
  std::unique_ptr<Egl> egl_;
  DmabufLayout layout_;
  std::vector<UniqueFd> fds_;
  void *image_ = nullptr; /* EGLImageKHR */
  guint image_tex_ = 0; /* GL names */
  guint surface_tex_ = 0, fbo_ = 0, program_ = 0, vao_ = 0;
  gint visible_loc_ = -1, flip_loc_ = -1;
};

}  // namespace vmd
