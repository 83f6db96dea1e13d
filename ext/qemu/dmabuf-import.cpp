/* gst-vmdisplay: DMA-BUF scanouts read through EGL (see dmabuf-import.h). */
#include "dmabuf-import.h"

#include "detile.h"
#include "egl-dmabuf-attribs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace vmd {
namespace {

constexpr uint32_t kMaxSide = 16384;
/* QEMU waits 1 s for the frame's reply; a read that takes a quarter of it is
 * given up (the update is ignored, the reply still goes out in time). */
constexpr uint64_t kFenceTimeoutNs = 250000000;


const char kVertexShader[] = R"(#version 300 es
void main() {
  /* one triangle over the whole viewport */
  gl_Position = vec4(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID & 2) * 2 - 1), 0.0, 1.0);
}
)";

/* Output pixel (x, y) of the framebuffer is destination row y of the
 * rectangle; glReadPixels returns framebuffer row 0 first, so no flip on the
 * way out: the flip of bottom-up buffers is the sign of the texel's y. */
const char kFragmentShader[] = R"(#version 300 es
precision highp float;
precision highp int;
uniform highp sampler2D tex;
uniform ivec2 origin;
uniform int flip;
out vec4 color;
void main() {
  ivec2 p = ivec2(gl_FragCoord.xy);
  ivec2 t = ivec2(origin.x + p.x, flip != 0 ? origin.y - p.y : origin.y + p.y);
  color = texelFetch(tex, t, 0).SWIZZLE;
}
)";

std::string gl_errors() {
  std::string errors;
  for (int i = 0; i < 16; i++) {
    GLenum e = glGetError();
    if (e == GL_NO_ERROR)
      break;
    char buf[32];
    snprintf(buf, sizeof buf, "%s0x%04x", errors.empty() ? "" : " ", e);
    errors += buf;
  }
  return errors;
}

GLuint compile(GLenum type, const std::string &source, std::string *why) {
  GLuint shader = glCreateShader(type);
  const char *src = source.c_str();
  glShaderSource(shader, 1, &src, nullptr);
  glCompileShader(shader);
  GLint ok = GL_FALSE;
  glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    char log[512] = "";
    glGetShaderInfoLog(shader, sizeof log, nullptr, log);
    *why = std::string("shader compile: ") + log;
    glDeleteShader(shader);
    return 0;
  }
  return shader;
}

}  // namespace

bool EglDmabufReader::ImageKey::operator==(const ImageKey &o) const {
  return memcmp(dev, o.dev, sizeof dev) == 0 && memcmp(ino, o.ino, sizeof ino) == 0 &&
         memcmp(offsets, o.offsets, sizeof offsets) == 0 &&
         memcmp(strides, o.strides, sizeof strides) == 0 && modifier == o.modifier &&
         width == o.width && height == o.height;
}

EglDmabufReader::EglDmabufReader(Key, std::shared_ptr<EglDevice> device, const DmabufLayout &layout,
                                 std::vector<UniqueFd> fds, const GlChannelOrder &order)
    : device_(std::move(device)), layout_(layout), fds_(std::move(fds)), order_(order) {}

EglDmabufReader::~EglDmabufReader() {
  {
    EglDevice::Current current(*device_);
    for (const CachedImage &c : images_)
      glDeleteTextures(1, &c.texture);
    glDeleteProgram(program_);
    glDeleteFramebuffers(1, &fbo_);
    glDeleteTextures(1, &target_);
    glDeleteBuffers(1, &pbo_);
    gl_errors(); /* leave nothing behind */
  }
  for (const CachedImage &c : images_)
    device_->destroy_image(c.image);
}

bool EglDmabufReader::mirror_source(DmabufLayout *layout, std::vector<UniqueFd> *fds) const {
  fds->clear();
  for (const UniqueFd &fd : fds_) {
    fds->emplace_back(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!fds->back())
      return false;
  }
  *layout = layout_;
  return true;
}

std::string EglDmabufReader::modifier_text() const {
  char buf[64];
  char name[5];
  snprintf(buf, sizeof buf, "%s modifier 0x%016" PRIx64, fourcc_name(layout_.fourcc, name),
           layout_.modifier);
  return buf;
}

std::unique_ptr<DmabufReader> EglDmabufReader::open(std::shared_ptr<EglDevice> device,
                                                    const DmabufLayout &layout,
                                                    std::vector<UniqueFd> fds,
                                                    GstVideoFormat host_format, std::string *why) {
  char name[5];
  GlChannelOrder order;
  if (!device) {
    *why = "no EGL device";
    return nullptr;
  }
  if (!device->has_dmabuf_import()) {
    *why = device->describe() + " has no EGL_EXT_image_dma_buf_import (dma-buf import unavailable)";
    return nullptr;
  }
  if (!gl_channel_order(layout.fourcc, host_format, &order)) {
    *why = std::string("EGL reader: no channel order for ") + fourcc_name(layout.fourcc, name) +
           " into " + gst_video_format_to_string(host_format);
    return nullptr;
  }
  auto reader =
      std::make_unique<EglDmabufReader>(Key(), std::move(device), layout, std::move(fds), order);
  if (!reader->setup(why))
    return nullptr;
  return reader;
}

std::unique_ptr<DmabufReader> EglDmabufReader::open_first(
    const std::vector<std::shared_ptr<EglDevice>> &devices, const DmabufLayout &layout,
    std::vector<UniqueFd> fds, GstVideoFormat host_format, std::string *why) {
  why->clear();
  for (size_t i = 0; i < devices.size(); i++) {
    std::vector<UniqueFd> mine;
    if (i + 1 == devices.size()) {
      mine = std::move(fds);
    } else {
      for (const UniqueFd &fd : fds)
        mine.emplace_back(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    }
    std::string reason;
    if (auto reader = open(devices[i], layout, std::move(mine), host_format, &reason))
      return reader;
    *why += (why->empty() ? "" : "; ") + reason;
  }
  if (devices.empty())
    *why = "no EGL device";
  return nullptr;
}

/* Layout bounds, fd sizes, the import and one test pixel. */
bool EglDmabufReader::setup(std::string *why) {
  const DmabufLayout &l = layout_;
  if (l.backing_width == 0 || l.backing_height == 0 || l.backing_width > kMaxSide ||
      l.backing_height > kMaxSide || l.visible.empty() ||
      !Rect{0, 0, l.backing_width, l.backing_height}.contains(l.visible) || l.num_planes == 0 ||
      l.num_planes > kMaxDmabufPlanes) {
    *why = "EGL reader: bad layout (" + modifier_text() + ")";
    return false;
  }
  for (uint32_t p = 0; p < l.num_planes; p++) {
    if (l.planes[p].fd_index >= fds_.size() || !fds_[l.planes[p].fd_index]) {
      *why = "EGL reader: plane " + std::to_string(p) + " names no fd";
      return false;
    }
  }
  if (uint64_t(l.planes[0].stride) < uint64_t(l.backing_width) * 4) {
    *why = "EGL reader: stride " + std::to_string(l.planes[0].stride) + " below width * 4";
    return false;
  }
  if (l.modifier != kDrmFormatModInvalid && l.modifier != kDrmFormatModLinear &&
      !device_->has_dmabuf_modifiers()) {
    *why = device_->describe() + " has no EGL_EXT_image_dma_buf_import_modifiers for " +
           modifier_text();
    return false;
  }
  if (!check_sizes(why))
    return false;
  EglDevice::Current current(*device_);
  if (!current.ok()) {
    *why = device_->describe() + ": eglMakeCurrent: " + egl_error_name(eglGetError());
    return false;
  }
  gl_errors();
  if (!image_locked(why) || !make_program_locked(why) || !make_targets_locked(why))
    return false;
  uint8_t pixel[4];
  std::string reason;
  if (!draw_and_read_locked(Rect{0, 0, 1, 1}, pixel, sizeof pixel, &reason)) {
    *why = "EGL test read of " + modifier_text() + " failed: " + reason;
    return false;
  }
  return true;
}

/* Every plane inside its fd: plane 0 holds stride * height bytes from its
 * offset, others (CCS, aux planes of unknown height) at least one row.
 * Validation in the driver is lazy: a short fd imports without an error. */
bool EglDmabufReader::check_sizes(std::string *why) const {
  for (uint32_t p = 0; p < layout_.num_planes; p++) {
    const DmabufPlane &plane = layout_.planes[p];
    const int fd = fds_[plane.fd_index].get();
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
      *why = "EGL reader: plane " + std::to_string(p) + " fd has no size (" + strerror(errno) +
             "): not a dma-buf";
      return false;
    }
    lseek(fd, 0, SEEK_SET);
    /* A memory file that can shrink (QEMU's memfds are not sealed) would be
     * a SIGBUS in the driver's mapping; a real DMA-BUF's size is fixed. */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      int seals = fcntl(fd, F_GET_SEALS);
      if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        *why = "EGL reader: plane " + std::to_string(p) +
               " is a memory file that can shrink (not sealed with F_SEAL_SHRINK); it is read "
               "on the CPU instead";
        return false;
      }
    }
    Tiling tiling;
    const uint32_t tile_rows = !tiling_from_modifier(layout_.modifier, &tiling) ? 1
                               : tiling == Tiling::IntelY                       ? 32
                               : tiling == Tiling::IntelX                       ? 8
                                                                                : 1;
    const uint64_t rows =
        p == 0 ? (uint64_t(layout_.backing_height) + tile_rows - 1) / tile_rows * tile_rows : 1;
    const uint64_t need = uint64_t(plane.offset) + uint64_t(plane.stride) * rows;
    if (uint64_t(size) < need) {
      *why = "EGL reader: plane " + std::to_string(p) + " needs " + std::to_string(need) +
             " bytes (offset + stride * rows), its fd has " + std::to_string(size);
      return false;
    }
  }
  return true;
}

bool EglDmabufReader::make_key(ImageKey *key, std::string *why) const {
  for (uint32_t p = 0; p < layout_.num_planes; p++) {
    struct stat st;
    if (fstat(fds_[layout_.planes[p].fd_index].get(), &st) != 0) {
      *why = std::string("EGL reader: fstat: ") + strerror(errno);
      return false;
    }
    key->dev[p] = uint64_t(st.st_dev);
    key->ino[p] = uint64_t(st.st_ino);
    key->offsets[p] = layout_.planes[p].offset;
    key->strides[p] = layout_.planes[p].stride;
  }
  key->modifier = layout_.modifier;
  key->width = layout_.backing_width;
  key->height = layout_.backing_height;
  return true;
}

const EglDmabufReader::CachedImage *EglDmabufReader::image_locked(std::string *why) {
  ImageKey key;
  if (!make_key(&key, why))
    return nullptr;
  for (const CachedImage &c : images_) {
    if (c.key == key)
      return &c;
  }
  CachedImage image;
  if (!import_locked(key, &image, why))
    return nullptr;
  images_.push_back(image);
  return &images_.back();
}

bool EglDmabufReader::import_locked(const ImageKey &key, CachedImage *out, std::string *why) {
  /* LINEAR without the modifiers extension: the implicit layout is linear.
   * (The key holds the layout's own sizes, offsets and strides.) */
  const bool modifiers =
      !(layout_.modifier == kDrmFormatModLinear && !device_->has_dmabuf_modifiers());
  std::vector<EGLint> a = egl_dmabuf_attribs(layout_, fds_, order_.import_fourcc, modifiers);
  imports_++;
  EGLImageKHR image = device_->create_image(EGL_LINUX_DMA_BUF_EXT, a.data());
  if (image == EGL_NO_IMAGE_KHR) {
    *why = device_->describe() + " refused " + modifier_text() + ": eglCreateImage: " +
           egl_error_name(eglGetError());
    return false;
  }
  GLuint texture = 0;
  glGenTextures(1, &texture);
  glBindTexture(GL_TEXTURE_2D, texture);
  glEGLImageTargetTexture2DOES(GL_TEXTURE_2D, image);
  /* texelFetch needs a complete texture: no mipmaps */
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glBindTexture(GL_TEXTURE_2D, 0);
  std::string errors = gl_errors();
  if (!errors.empty()) {
    *why = device_->describe() + ": texture from the EGLImage of " + modifier_text() +
           ": GL error " + errors;
    glDeleteTextures(1, &texture);
    device_->destroy_image(image);
    return false;
  }
  out->key = key;
  out->image = image;
  out->texture = texture;
  return true;
}

bool EglDmabufReader::make_program_locked(std::string *why) {
  std::string fragment = kFragmentShader;
  fragment.replace(fragment.find("SWIZZLE"), strlen("SWIZZLE"), order_.swizzle);
  GLuint vs = compile(GL_VERTEX_SHADER, kVertexShader, why);
  GLuint fs = vs ? compile(GL_FRAGMENT_SHADER, fragment, why) : 0;
  if (!fs) {
    glDeleteShader(vs);
    return false;
  }
  program_ = glCreateProgram();
  glAttachShader(program_, vs);
  glAttachShader(program_, fs);
  glLinkProgram(program_);
  glDeleteShader(vs);
  glDeleteShader(fs);
  GLint ok = GL_FALSE;
  glGetProgramiv(program_, GL_LINK_STATUS, &ok);
  if (!ok) {
    *why = "EGL reader: shader program does not link";
    return false;
  }
  glUseProgram(program_);
  glUniform1i(glGetUniformLocation(program_, "tex"), 0);
  glUseProgram(0);
  origin_loc_ = glGetUniformLocation(program_, "origin");
  flip_loc_ = glGetUniformLocation(program_, "flip");
  return true;
}

/* The RGBA8 framebuffer (the visible size: every rectangle fits) and the
 * pixel buffer object it is read into. */
bool EglDmabufReader::make_targets_locked(std::string *why) {
  const Rect &v = layout_.visible;
  glGenTextures(1, &target_);
  glBindTexture(GL_TEXTURE_2D, target_);
  glTexStorage2D(GL_TEXTURE_2D, 1, GL_RGBA8, GLsizei(v.w), GLsizei(v.h));
  glBindTexture(GL_TEXTURE_2D, 0);
  glGenFramebuffers(1, &fbo_);
  glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
  glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, target_, 0);
  GLenum status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  pbo_size_ = size_t(v.w) * v.h * 4;
  glGenBuffers(1, &pbo_);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, pbo_);
  glBufferData(GL_PIXEL_PACK_BUFFER, GLsizeiptr(pbo_size_), nullptr, GL_STREAM_READ);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, 0);
  std::string errors = gl_errors();
  if (status != GL_FRAMEBUFFER_COMPLETE || !errors.empty()) {
    char buf[96];
    snprintf(buf, sizeof buf, "EGL reader: %ux%u RGBA8 framebuffer: status 0x%04x, GL error %s",
             v.w, v.h, status, errors.empty() ? "none" : errors.c_str());
    *why = buf;
    return false;
  }
  return true;
}

bool EglDmabufReader::read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why) {
  if (r.empty())
    return true;
  if (!Rect{0, 0, layout_.visible.w, layout_.visible.h}.contains(r) ||
      dst_stride < size_t(layout_.visible.w) * 4) {
    *why = "EGL reader: rectangle outside the visible image";
    return false;
  }
  if (!check_sizes(why)) /* the fd may have shrunk since the import */
    return false;
  EglDevice::Current current(*device_);
  if (!current.ok()) {
    *why = device_->describe() + ": eglMakeCurrent: " + egl_error_name(eglGetError());
    return false;
  }
  return draw_and_read_locked(r, dst + size_t(r.y) * dst_stride + size_t(r.x) * 4, dst_stride,
                              why);
}

/* dst is the rectangle's first pixel. */
bool EglDmabufReader::draw_and_read_locked(const Rect &r, uint8_t *dst, size_t dst_stride,
                                           std::string *why) {
  const CachedImage *image = image_locked(why);
  if (!image)
    return false;
  const Rect &v = layout_.visible;
  /* y0_top: stored bottom-up inside the visible rectangle's rows (as QEMU's
   * egl_fb_blit flips it), so image row y is stored row v.y + v.h - 1 - y. */
  const GLint origin_y = layout_.y0_top ? GLint(v.y + v.h - 1 - r.y) : GLint(v.y + r.y);
  glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
  glViewport(0, 0, GLsizei(r.w), GLsizei(r.h));
  glUseProgram(program_);
  glUniform2i(origin_loc_, GLint(v.x + r.x), origin_y);
  glUniform1i(flip_loc_, layout_.y0_top ? 1 : 0);
  glActiveTexture(GL_TEXTURE0);
  glBindTexture(GL_TEXTURE_2D, image->texture);
  glDrawArrays(GL_TRIANGLES, 0, 3);
  glBindTexture(GL_TEXTURE_2D, 0);
  glUseProgram(0);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, pbo_);
  glPixelStorei(GL_PACK_ALIGNMENT, 4);
  glReadPixels(0, 0, GLsizei(r.w), GLsizei(r.h), GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
  glBindFramebuffer(GL_FRAMEBUFFER, 0);
  GLsync fence = glFenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0);
  GLenum waited = glClientWaitSync(fence, GL_SYNC_FLUSH_COMMANDS_BIT, kFenceTimeoutNs);
  glDeleteSync(fence);
  const size_t row = size_t(r.w) * 4;
  const void *mapped = nullptr;
  if (waited == GL_ALREADY_SIGNALED || waited == GL_CONDITION_SATISFIED)
    mapped = glMapBufferRange(GL_PIXEL_PACK_BUFFER, 0, GLsizeiptr(row * r.h), GL_MAP_READ_BIT);
  if (mapped) {
    for (uint32_t y = 0; y < r.h; y++)
      memcpy(dst + y * dst_stride, static_cast<const uint8_t *>(mapped) + y * row, row);
    glUnmapBuffer(GL_PIXEL_PACK_BUFFER);
  }
  glBindBuffer(GL_PIXEL_PACK_BUFFER, 0);
  std::string errors = gl_errors();
  if (!mapped || !errors.empty()) {
    *why = device_->describe() + ": reading " + modifier_text() +
           (mapped ? "" : ": the fence did not signal or the PBO did not map") +
           (errors.empty() ? "" : ": GL error " + errors);
    return false;
  }
  return true;
}

}  // namespace vmd
