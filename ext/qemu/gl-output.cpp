/* gst-vmdisplay: DMA-BUF scanouts on the GPU for GLMemory output (see
 * gl-output.h). GL through GStreamer's GstGLFuncs, EGL through
 * gst_gl_context_get_proc_address: no second GL loader in the context's
 * thread. */
#include "gl-output.h"

#include "egl-dmabuf-attribs.h"

#include <gst/gl/gstglfuncs.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>

#include <cstdio>
#include <cstring>
#include <functional>

namespace vmd {
namespace {

constexpr uint32_t kMaxSide = 16384;


const char kVertexBody[] = R"(
void main() {
  gl_Position = vec4(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID & 2) * 2 - 1), 0.0, 1.0);
}
)";

/* Framebuffer row y is image row y (GLMemory keeps the top row first);
 * visible = (x, y, height - 1) of the visible rectangle in the buffer. */
const char kFragmentBody[] = R"(
precision highp float;
precision highp int;
uniform highp sampler2D tex;
uniform ivec3 visible;
uniform int flip;
out vec4 color;
void main() {
  ivec2 p = ivec2(gl_FragCoord.xy);
  ivec2 t = ivec2(visible.x + p.x, flip != 0 ? visible.y + visible.z - p.y : visible.y + p.y);
  color = texelFetch(tex, t, 0);
}
)";


/* Runs fn in ctx's GL thread and waits for it. */
void run_gl(GstGLContext *ctx, const std::function<void()> &fn) {
  gst_gl_context_thread_add(
      ctx, [](GstGLContext *, gpointer data) { (*static_cast<const std::function<void()> *>(data))(); },
      const_cast<std::function<void()> *>(&fn));
}

std::string gl_errors(const GstGLFuncs *gl) {
  std::string errors;
  for (int i = 0; i < 16; i++) {
    GLenum e = gl->GetError();
    if (e == GL_NO_ERROR)
      break;
    char buf[32];
    snprintf(buf, sizeof buf, "%s0x%04x", errors.empty() ? "" : " ", e);
    errors += buf;
  }
  return errors;
}

GLuint compile(const GstGLFuncs *gl, GLenum type, const std::string &source, std::string *why) {
  GLuint shader = gl->CreateShader(type);
  const char *src = source.c_str();
  gl->ShaderSource(shader, 1, &src, nullptr);
  gl->CompileShader(shader);
  GLint ok = GL_FALSE;
  gl->GetShaderiv(shader, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    char log[512] = "";
    gl->GetShaderInfoLog(shader, sizeof log, nullptr, log);
    *why = std::string("GLMemory output: shader compile: ") + log;
    gl->DeleteShader(shader);
    return 0;
  }
  return shader;
}

}  // namespace

struct GlOutput::Egl {
  PFNEGLGETCURRENTDISPLAYPROC get_current_display = nullptr;
  PFNEGLQUERYSTRINGPROC query_string = nullptr;
  PFNEGLGETERRORPROC get_error = nullptr;
  PFNEGLCREATEIMAGEKHRPROC create_image = nullptr;
  PFNEGLDESTROYIMAGEKHRPROC destroy_image = nullptr;
  EGLDisplay display = EGL_NO_DISPLAY;
  bool modifiers = false;
};

GlOutput::GlOutput(Key, GstGLContext *ctx, uint32_t width, uint32_t height)
    : ctx_(GST_GL_CONTEXT(gst_object_ref(ctx))), width_(width), height_(height),
      egl_(std::make_unique<Egl>()) {}

GlOutput::~GlOutput() {
  run_gl(ctx_, [this] {
    const GstGLFuncs *gl = ctx_->gl_vtable;
    release_image_gl();
    if (program_)
      gl->DeleteProgram(program_);
    if (fbo_)
      gl->DeleteFramebuffers(1, &fbo_);
    if (surface_tex_)
      gl->DeleteTextures(1, &surface_tex_);
    if (vao_)
      gl->DeleteVertexArrays(1, &vao_);
    gl_errors(gl);
  });
  gst_object_unref(ctx_);
}

std::shared_ptr<GlOutput> GlOutput::create(GstGLContext *ctx, uint32_t width, uint32_t height,
                                           std::string *why) {
  if (!ctx || gst_gl_context_get_gl_platform(ctx) != GST_GL_PLATFORM_EGL) {
    *why = "GLMemory output: GStreamer's GL context is not an EGL one";
    return nullptr;
  }
  if (width == 0 || height == 0 || width > kMaxSide || height > kMaxSide) {
    *why = "GLMemory output: bad size";
    return nullptr;
  }
  auto out = std::make_shared<GlOutput>(Key(), ctx, width, height);
  bool ok = false;
  run_gl(ctx, [&] { ok = out->setup_gl(why); });
  return ok ? out : nullptr;
}

bool GlOutput::setup_gl(std::string *why) {
  Egl &e = *egl_;
  auto proc = [this](const char *name) { return gst_gl_context_get_proc_address(ctx_, name); };
  e.get_current_display = reinterpret_cast<PFNEGLGETCURRENTDISPLAYPROC>(proc("eglGetCurrentDisplay"));
  e.query_string = reinterpret_cast<PFNEGLQUERYSTRINGPROC>(proc("eglQueryString"));
  e.get_error = reinterpret_cast<PFNEGLGETERRORPROC>(proc("eglGetError"));
  e.create_image = reinterpret_cast<PFNEGLCREATEIMAGEKHRPROC>(proc("eglCreateImageKHR"));
  e.destroy_image = reinterpret_cast<PFNEGLDESTROYIMAGEKHRPROC>(proc("eglDestroyImageKHR"));
  if (!e.get_current_display || !e.query_string || !e.get_error || !e.create_image ||
      !e.destroy_image) {
    *why = "GLMemory output: EGL functions not found";
    return false;
  }
  e.display = e.get_current_display();
  const char *ext = e.display != EGL_NO_DISPLAY ? e.query_string(e.display, EGL_EXTENSIONS) : nullptr;
  if (!egl_has_extension(ext, "EGL_EXT_image_dma_buf_import")) {
    *why = "GLMemory output: GStreamer's EGL display has no EGL_EXT_image_dma_buf_import";
    return false;
  }
  e.modifiers = egl_has_extension(ext, "EGL_EXT_image_dma_buf_import_modifiers");
  const GstGLFuncs *gl = ctx_->gl_vtable;
  if (!gl->EGLImageTargetTexture2D || !gl->GenVertexArrays || !gl->CopyTexSubImage2D) {
    *why = "GLMemory output: GL lacks EGLImage textures or vertex arrays";
    return false;
  }
  if (!make_program_gl(why))
    return false;
  gl->GenVertexArrays(1, &vao_);
  gl->GenTextures(1, &surface_tex_);
  gl->BindTexture(GL_TEXTURE_2D, surface_tex_);
  gl->TexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, GLsizei(width_), GLsizei(height_), 0, GL_RGBA,
                 GL_UNSIGNED_BYTE, nullptr);
  gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  gl->BindTexture(GL_TEXTURE_2D, 0);
  gl->GenFramebuffers(1, &fbo_);
  gl->BindFramebuffer(GL_FRAMEBUFFER, fbo_);
  gl->FramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, surface_tex_, 0);
  GLenum status = gl->CheckFramebufferStatus(GL_FRAMEBUFFER);
  gl->BindFramebuffer(GL_FRAMEBUFFER, 0);
  std::string errors = gl_errors(gl);
  if (status != GL_FRAMEBUFFER_COMPLETE || !errors.empty()) {
    *why = "GLMemory output: surface framebuffer incomplete or GL error " + errors;
    return false;
  }
  return true;
}

bool GlOutput::make_program_gl(std::string *why) {
  const GstGLFuncs *gl = ctx_->gl_vtable;
  std::string version;
  if (gst_gl_context_get_gl_api(ctx_) & GST_GL_API_GLES2) {
    if (!gst_gl_context_check_gl_version(ctx_, GST_GL_API_GLES2, 3, 0)) {
      *why = "GLMemory output: needs GLES 3.0";
      return false;
    }
    version = "#version 300 es\n";
  } else {
    if (!gst_gl_context_check_gl_version(ctx_, GstGLAPI(GST_GL_API_OPENGL | GST_GL_API_OPENGL3), 3, 3)) {
      *why = "GLMemory output: needs OpenGL 3.3";
      return false;
    }
    version = "#version 330\n";
  }
  GLuint vs = compile(gl, GL_VERTEX_SHADER, version + kVertexBody, why);
  GLuint fs = vs ? compile(gl, GL_FRAGMENT_SHADER, version + kFragmentBody, why) : 0;
  if (!fs) {
    if (vs)
      gl->DeleteShader(vs);
    return false;
  }
  program_ = gl->CreateProgram();
  gl->AttachShader(program_, vs);
  gl->AttachShader(program_, fs);
  gl->LinkProgram(program_);
  gl->DeleteShader(vs);
  gl->DeleteShader(fs);
  GLint ok = GL_FALSE;
  gl->GetProgramiv(program_, GL_LINK_STATUS, &ok);
  if (!ok) {
    *why = "GLMemory output: shader program does not link";
    return false;
  }
  gl->UseProgram(program_);
  gl->Uniform1i(gl->GetUniformLocation(program_, "tex"), 0);
  gl->UseProgram(0);
  visible_loc_ = gl->GetUniformLocation(program_, "visible");
  flip_loc_ = gl->GetUniformLocation(program_, "flip");
  return true;
}

void GlOutput::release_image_gl() {
  if (image_tex_)
    ctx_->gl_vtable->DeleteTextures(1, &image_tex_);
  image_tex_ = 0;
  if (image_)
    egl_->destroy_image(egl_->display, EGLImageKHR(image_));
  image_ = nullptr;
}

bool GlOutput::attach(const DmabufLayout &layout, std::vector<UniqueFd> fds, std::string *why) {
  const Rect &v = layout.visible;
  if (v.w != width_ || v.h != height_ || layout.num_planes == 0 ||
      layout.num_planes > kMaxDmabufPlanes || layout.backing_width > kMaxSide ||
      layout.backing_height > kMaxSide ||
      !Rect{0, 0, layout.backing_width, layout.backing_height}.contains(v)) {
    *why = "GLMemory output: the buffer does not match the surface";
    return false;
  }
  for (uint32_t p = 0; p < layout.num_planes; p++) {
    if (layout.planes[p].fd_index >= fds.size() || !fds[layout.planes[p].fd_index]) {
      *why = "GLMemory output: a plane names no fd";
      return false;
    }
  }
  bool ok = false;
  run_gl(ctx_, [&] { ok = import_gl(layout, fds, why); });
  if (ok) {
    layout_ = layout;
    fds_ = std::move(fds);
  }
  return ok;
}

bool GlOutput::import_gl(const DmabufLayout &layout, const std::vector<UniqueFd> &fds,
                         std::string *why) {
  release_image_gl();
  const bool modifiers = layout.modifier != kDrmFormatModInvalid &&
                         !(layout.modifier == kDrmFormatModLinear && !egl_->modifiers);
  if (modifiers && !egl_->modifiers) {
    *why = "GLMemory output: no EGL_EXT_image_dma_buf_import_modifiers";
    return false;
  }
  std::vector<EGLint> a = egl_dmabuf_attribs(layout, fds, layout.fourcc, modifiers);
  EGLImageKHR image =
      egl_->create_image(egl_->display, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, nullptr, a.data());
  if (image == EGL_NO_IMAGE_KHR) {
    char buf[96];
    snprintf(buf, sizeof buf, "GLMemory output: eglCreateImage: EGL error 0x%04x",
             unsigned(egl_->get_error()));
    *why = buf;
    return false;
  }
  image_ = image;
  const GstGLFuncs *gl = ctx_->gl_vtable;
  gl->GenTextures(1, &image_tex_);
  gl->BindTexture(GL_TEXTURE_2D, image_tex_);
  gl->EGLImageTargetTexture2D(GL_TEXTURE_2D, image);
  gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  gl->BindTexture(GL_TEXTURE_2D, 0);
  std::string errors = gl_errors(gl);
  if (!errors.empty()) {
    *why = "GLMemory output: texture from the EGLImage: GL error " + errors;
    release_image_gl();
    return false;
  }
  return true;
}

bool GlOutput::draw(const Rect &r, std::string *why) {
  if (r.empty())
    return true;
  if (!Rect{0, 0, width_, height_}.contains(r)) {
    *why = "GLMemory output: rectangle outside the surface";
    return false;
  }
  bool ok = false;
  run_gl(ctx_, [&] { ok = draw_gl(r, why); });
  return ok;
}

bool GlOutput::draw_gl(const Rect &r, std::string *why) {
  if (!image_tex_) {
    *why = "GLMemory output: no buffer attached";
    return false;
  }
  const GstGLFuncs *gl = ctx_->gl_vtable;
  const Rect &v = layout_.visible;
  gl->BindFramebuffer(GL_FRAMEBUFFER, fbo_);
  gl->Viewport(0, 0, GLsizei(width_), GLsizei(height_));
  gl->Enable(GL_SCISSOR_TEST);
  gl->Scissor(GLint(r.x), GLint(r.y), GLsizei(r.w), GLsizei(r.h));
  gl->Disable(GL_BLEND);
  gl->UseProgram(program_);
  gl->Uniform3i(visible_loc_, GLint(v.x), GLint(v.y), GLint(v.h) - 1);
  gl->Uniform1i(flip_loc_, layout_.y0_top ? 1 : 0);
  gl->ActiveTexture(GL_TEXTURE0);
  gl->BindTexture(GL_TEXTURE_2D, image_tex_);
  gl->BindVertexArray(vao_);
  gl->DrawArrays(GL_TRIANGLES, 0, 3);
  gl->BindVertexArray(0);
  gl->BindTexture(GL_TEXTURE_2D, 0);
  gl->UseProgram(0);
  gl->Disable(GL_SCISSOR_TEST);
  gl->BindFramebuffer(GL_FRAMEBUFFER, 0);
  /* QEMU's reply lets the guest write the buffer again: the GPU must be done. */
  gl->Finish();
  std::string errors = gl_errors(gl);
  if (!errors.empty()) {
    *why = "GLMemory output: drawing the update: GL error " + errors;
    return false;
  }
  return true;
}

bool GlOutput::copy_to(GstGLMemory *mem, std::string *why) {
  if (!mem || gst_gl_memory_get_texture_width(mem) != gint(width_) ||
      gst_gl_memory_get_texture_height(mem) != gint(height_)) {
    *why = "GLMemory output: the buffer is not the surface's size";
    return false;
  }
  bool ok = false;
  run_gl(ctx_, [&] { ok = copy_gl(mem, why); });
  return ok;
}

bool GlOutput::copy_gl(GstGLMemory *mem, std::string *why) {
  GstMapInfo map;
  if (!gst_memory_map(GST_MEMORY_CAST(mem), &map, GstMapFlags(GST_MAP_WRITE | GST_MAP_GL))) {
    *why = "GLMemory output: cannot map the GLMemory";
    return false;
  }
  const GLuint texture = *reinterpret_cast<const guint *>(map.data);
  const GstGLFuncs *gl = ctx_->gl_vtable;
  gl->BindFramebuffer(GL_FRAMEBUFFER, fbo_);
  gl->BindTexture(GL_TEXTURE_2D, texture);
  gl->CopyTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, 0, 0, GLsizei(width_), GLsizei(height_));
  gl->BindTexture(GL_TEXTURE_2D, 0);
  gl->BindFramebuffer(GL_FRAMEBUFFER, 0);
  gst_memory_unmap(GST_MEMORY_CAST(mem), &map);
  std::string errors = gl_errors(gl);
  if (!errors.empty()) {
    *why = "GLMemory output: copying the surface: GL error " + errors;
    return false;
  }
  return true;
}

}  // namespace vmd
