/* gst-vmdisplay: the guest's cursor and drawing it. */
#include "cursor.h"

#include <algorithm>
#include <cstring>

namespace vmd {

std::shared_ptr<const CursorImage> cursor_image_from_define(int32_t width, int32_t height,
                                                            int32_t hot_x, int32_t hot_y,
                                                            const uint8_t *data, size_t size,
                                                            std::string *why) {
  if (width <= 0 || height <= 0 || width > kMaxCursorSide || height > kMaxCursorSide) {
    *why = "CursorDefine with a " + std::to_string(width) + "x" + std::to_string(height) +
           " image (at most " + std::to_string(kMaxCursorSide) + " per side)";
    return nullptr;
  }
  const size_t need = size_t(width) * size_t(height) * 4;
  if (size != need) {
    *why = "CursorDefine " + std::to_string(width) + "x" + std::to_string(height) + " with " +
           std::to_string(size) + " bytes of pixels (needs " + std::to_string(need) + ")";
    return nullptr;
  }
  if (hot_x < 0 || hot_y < 0 || hot_x >= width || hot_y >= height) {
    *why = "CursorDefine with its hotspot " + std::to_string(hot_x) + "," +
           std::to_string(hot_y) + " outside the " + std::to_string(width) + "x" +
           std::to_string(height) + " image";
    return nullptr;
  }
  auto image = std::make_shared<CursorImage>();
  image->width = uint32_t(width);
  image->height = uint32_t(height);
  image->hot_x = uint32_t(hot_x);
  image->hot_y = uint32_t(hot_y);
  image->argb.resize(size_t(width) * size_t(height));
  std::memcpy(image->argb.data(), data, need); /* host-order words, as QEMU has them */
  return image;
}

Rect cursor_rect(const CursorState &cursor, uint32_t width, uint32_t height) {
  Rect r;
  if (!cursor.visible || !cursor.image)
    return r;
  clip_rect(cursor.x, cursor.y, cursor.image->width, cursor.image->height, width, height, &r);
  return r;
}

namespace {

/* Where one channel sits in a pixel of a pixman format, and its width. */
struct Channel {
  uint32_t shift = 0, bits = 0;

  uint32_t max() const { return (1u << bits) - 1; }
  uint32_t get8(uint32_t px) const {
    return bits ? (((px >> shift) & max()) * 255 + max() / 2) / max() : 0;
  }
  uint32_t put8(uint32_t px, uint32_t v8) const {
    if (!bits)
      return px;
    const uint32_t v = (v8 * max() + 127) / 255;
    return (px & ~(max() << shift)) | (v << shift);
  }
};

struct Layout {
  uint32_t bytes = 0;
  Channel a, r, g, b;
};

/* pixman's format code: bpp << 24 | type << 16 | a << 12 | r << 8 | g << 4 | b,
 * channels listed from the most significant bits (pixman.h PIXMAN_FORMAT). */
Layout layout_of(uint32_t code) {
  Layout l;
  const uint32_t bpp = code >> 24, type = (code >> 16) & 0xff;
  l.bytes = bpp / 8;
  l.a.bits = (code >> 12) & 0xf;
  l.r.bits = (code >> 8) & 0xf;
  l.g.bits = (code >> 4) & 0xf;
  l.b.bits = code & 0xf;
  Channel *order[4];
  switch (type) {
    case 2: /* ARGB */
      order[0] = &l.a, order[1] = &l.r, order[2] = &l.g, order[3] = &l.b;
      break;
    case 3: /* ABGR */
      order[0] = &l.a, order[1] = &l.b, order[2] = &l.g, order[3] = &l.r;
      break;
    case 8: /* BGRA */
      order[0] = &l.b, order[1] = &l.g, order[2] = &l.r, order[3] = &l.a;
      break;
    default: /* 9: RGBA */
      order[0] = &l.r, order[1] = &l.g, order[2] = &l.b, order[3] = &l.a;
      break;
  }
  if (type >= 8) {
    /* BGRA, RGBA: colours from the top down, alpha (or padding) below. */
    uint32_t top = bpp;
    for (int i = 0; i < 3; i++) {
      top -= order[i]->bits;
      order[i]->shift = top;
    }
    order[3]->shift = 0;
  } else {
    /* ARGB, ABGR: colours from the bottom up, alpha (or padding) on top. */
    uint32_t bottom = 0;
    for (int i = 3; i > 0; i--) {
      order[i]->shift = bottom;
      bottom += order[i]->bits;
    }
    order[0]->shift = bpp - order[0]->bits;
  }
  return l;
}

uint32_t load(const uint8_t *p, uint32_t bytes) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < bytes; i++)
    v |= uint32_t(p[i]) << (8 * i);
  return v;
}

void store(uint8_t *p, uint32_t bytes, uint32_t v) {
  for (uint32_t i = 0; i < bytes; i++)
    p[i] = uint8_t(v >> (8 * i));
}

uint32_t over(uint32_t src8, uint32_t dst8, uint32_t alpha8) {
  return (src8 * alpha8 + dst8 * (255 - alpha8) + 127) / 255;
}

uint32_t blend_pixel(const Layout &l, uint32_t px, uint32_t argb) {
  const uint32_t a = argb >> 24;
  const uint32_t r = (argb >> 16) & 0xff, g = (argb >> 8) & 0xff, b = argb & 0xff;
  px = l.r.put8(px, over(r, l.r.get8(px), a));
  px = l.g.put8(px, over(g, l.g.get8(px), a));
  px = l.b.put8(px, over(b, l.b.get8(px), a));
  if (l.a.bits)
    px = l.a.put8(px, over(255, l.a.get8(px), a));
  return px;
}

}  // namespace

void cursor_blend(const CursorState &cursor, const PixmanFormat &format, uint8_t *dst,
                  size_t dst_stride, uint32_t width, uint32_t height) {
  const Rect r = cursor_rect(cursor, width, height);
  if (r.empty())
    return;
  const Layout l = layout_of(format.code);
  const CursorImage &img = *cursor.image;
  /* r is inside the image: x,y may be negative (clipped at the left/top). */
  const uint32_t sx = uint32_t(int64_t(r.x) - cursor.x), sy = uint32_t(int64_t(r.y) - cursor.y);
  for (uint32_t row = 0; row < r.h; row++) {
    const uint32_t *src = img.argb.data() + size_t(sy + row) * img.width + sx;
    uint8_t *out = dst + size_t(r.y + row) * dst_stride + size_t(r.x) * l.bytes;
    for (uint32_t col = 0; col < r.w; col++, out += l.bytes) {
      const uint32_t argb = src[col];
      if ((argb >> 24) == 0)
        continue; /* transparent: nothing to do */
      store(out, l.bytes, blend_pixel(l, load(out, l.bytes), argb));
    }
  }
}

}  // namespace vmd
