/* gst-vmdisplay: reading a DMA-BUF scanout through EGL (any modifier the
 * driver imports).
 *
 * open() imports the buffer (eglCreateImage(EGL_LINUX_DMA_BUF_EXT), every
 * plane, PLANEn_MODIFIER_LO/HI unless the modifier is INVALID) and reads one
 * pixel back, so a refusal is known before the first frame: nullptr with a
 * reason naming the fourcc, the modifier and the EGL error, and the caller
 * reads on the CPU instead. read() draws the rectangle into an RGBA8
 * framebuffer with a shader that flips y0_top buffers and puts the channels
 * in the host surface's byte order (gl-channel-order.h), reads it back
 * through a pixel buffer object and waits for a fence.
 *
 * One reader per scanout: its EGLImages (cached per fd identity, modifier,
 * size, offsets and strides) go with it when the next scanout replaces it.
 * Every GL call happens inside an EglDevice::Current scope.
 */
#pragma once

#include "dmabuf-layout.h"
#include "egl-device.h"
#include "gl-channel-order.h"

#include <epoxy/gl.h>
#include <gst/video/video.h>

#include <memory>
#include <string>
#include <vector>

namespace vmd {

class EglDmabufReader : public DmabufReader {
 public:
  /* nullptr with *why when the device cannot import this buffer (no
   * EGL_EXT_image_dma_buf_import, a modifier the driver refuses, an fd
   * shorter than its planes, a format outside gl-channel-order's table). */
  static std::unique_ptr<DmabufReader> open(std::shared_ptr<EglDevice> device,
                                            const DmabufLayout &layout, std::vector<UniqueFd> fds,
                                            GstVideoFormat host_format, std::string *why);

  /* The first device (EglDevice::open_candidates order) that imports the
   * buffer; the reasons of all that did not, "; "-separated. */
  static std::unique_ptr<DmabufReader> open_first(
      const std::vector<std::shared_ptr<EglDevice>> &devices, const DmabufLayout &layout,
      std::vector<UniqueFd> fds, GstVideoFormat host_format, std::string *why);

  ~EglDmabufReader() override;

  bool read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why) override;
  std::string describe() const override { return device_->describe(); }
  bool mirror_source(DmabufLayout *layout, std::vector<UniqueFd> *fds) const override;

  /* eglCreateImage calls so far (the cache's misses), for tests. */
  unsigned imports() const { return imports_; }

 private:
  struct ImageKey {
    uint64_t dev[kMaxDmabufPlanes] = {}, ino[kMaxDmabufPlanes] = {};
    uint32_t offsets[kMaxDmabufPlanes] = {}, strides[kMaxDmabufPlanes] = {};
    uint64_t modifier = 0;
    uint32_t width = 0, height = 0;
    bool operator==(const ImageKey &o) const;
  };
  struct CachedImage {
    ImageKey key;
    EGLImageKHR image = EGL_NO_IMAGE_KHR;
    GLuint texture = 0;
  };

  struct Key {
    explicit Key() = default;
  };

 public:
  /* Passkey (Key is private): only open() builds one, through make_unique. */
  EglDmabufReader(Key, std::shared_ptr<EglDevice> device, const DmabufLayout &layout,
                  std::vector<UniqueFd> fds, const GlChannelOrder &order);

 private:
  bool setup(std::string *why);
  bool check_sizes(std::string *why) const;
  bool make_key(ImageKey *key, std::string *why) const;
  const CachedImage *image_locked(std::string *why);
  bool import_locked(const ImageKey &key, CachedImage *out, std::string *why);
  bool make_program_locked(std::string *why);
  bool make_targets_locked(std::string *why);
  bool draw_and_read_locked(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why);
  std::string modifier_text() const;

  std::shared_ptr<EglDevice> device_;
  DmabufLayout layout_;
  std::vector<UniqueFd> fds_;
  GlChannelOrder order_;
  std::vector<CachedImage> images_;
  unsigned imports_ = 0;
  GLuint program_ = 0, fbo_ = 0, target_ = 0, pbo_ = 0;
  size_t pbo_size_ = 0;
  GLint origin_loc_ = -1, flip_loc_ = -1;
};

}  // namespace vmd
