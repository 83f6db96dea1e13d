/* gst-vmdisplay: the guest cursor as the viewer's `cursor` and `cursor-pos` messages
 * (cursor-messages.h). The page sets the image as a CSS cursor (a data: URL of the PNG) with
 * its hotspot, so a cursor move costs a small message and no video frame.
 */
#include "cursor-messages.h"

#include "raii.h"
#include "viewer-protocol.h"

#include <zlib.h>

#include <cstring>
#include <vector>

namespace vmd::webrtc {

namespace {

/* QEMU's own limit on a cursor side (ui/cursor.c), as in ext/qemu/cursor.h. */
constexpr int kMaxCursorSide = 512;

void put_u32(std::string *out, uint32_t v) {
  const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out->append(b, 4);
}

/* Length, type, data, CRC-32 of type and data (PNG spec, 5.3). */
void put_chunk(std::string *out, const char type[4], const uint8_t *data, size_t len) {
  put_u32(out, uint32_t(len));
  const size_t start = out->size();
  out->append(type, 4);
  if (len)
    out->append(reinterpret_cast<const char *>(data), len);
  const auto *crc_data = reinterpret_cast<const Bytef *>(out->data() + start);
  put_u32(out, uint32_t(crc32(crc32(0, nullptr, 0), crc_data, uInt(len + 4))));
}

/* Scanlines of filter type 0 (none) followed by RGBA bytes, as PNG's IDAT compresses them. */
std::vector<uint8_t> rgba_scanlines(const uint8_t *pixels, int width, int height,
                                    size_t stride_bytes) {
  std::vector<uint8_t> raw;
  raw.reserve(size_t(height) * (1 + size_t(width) * 4));
  for (int y = 0; y < height; y++) {
    const uint8_t *row = pixels + size_t(y) * stride_bytes;
    raw.push_back(0);
    for (int x = 0; x < width; x++) {
      uint32_t argb;
      memcpy(&argb, row + size_t(x) * 4, 4); /* native-endian 0xAARRGGBB */
      raw.push_back(uint8_t(argb >> 16));
      raw.push_back(uint8_t(argb >> 8));
      raw.push_back(uint8_t(argb));
      raw.push_back(uint8_t(argb >> 24));
    }
  }
  return raw;
}

struct CursorFields {
  int width = 0, height = 0, hot_x = 0, hot_y = 0, x = 0, y = 0;
  gboolean visible = FALSE, image_changed = FALSE;
  GstBuffer *image = nullptr; /* borrowed from the structure */
};

bool read_fields(const GstStructure *s, CursorFields *f) {
  if (!s || !gst_structure_has_name(s, "qemu-cursor"))
    return false;
  if (!gst_structure_get_int(s, "width", &f->width) ||
      !gst_structure_get_int(s, "height", &f->height) ||
      !gst_structure_get_int(s, "hot-x", &f->hot_x) ||
      !gst_structure_get_int(s, "hot-y", &f->hot_y) || !gst_structure_get_int(s, "x", &f->x) ||
      !gst_structure_get_int(s, "y", &f->y) ||
      !gst_structure_get_boolean(s, "visible", &f->visible) ||
      !gst_structure_get_boolean(s, "image-changed", &f->image_changed))
    return false;
  const GValue *v = gst_structure_get_value(s, "image");
  if (!v)
    return true; /* no cursor defined yet: a position only */
  if (!GST_VALUE_HOLDS_BUFFER(v) || !gst_value_get_buffer(v))
    return false;
  f->image = gst_value_get_buffer(v);
  if (f->width < 1 || f->width > kMaxCursorSide || f->height < 1 || f->height > kMaxCursorSide ||
      f->hot_x < 0 || f->hot_x >= f->width || f->hot_y < 0 || f->hot_y >= f->height)
    return false;
  return gst_buffer_get_size(f->image) >= size_t(f->width) * size_t(f->height) * 4;
}

/* The `cursor` message of the image, or empty if the buffer is too small. */
std::string image_message(const CursorFields &f) {
  GstMapInfo map;
  if (!gst_buffer_map(f.image, &map, GST_MAP_READ))
    return {};
  const size_t stride = size_t(f.width) * 4;
  std::string png;
  if (map.size >= stride * size_t(f.height))
    png = png_from_argb32(map.data, f.width, f.height, stride);
  gst_buffer_unmap(f.image, &map);
  if (png.empty())
    return {};
  GCharPtr b64(g_base64_encode(reinterpret_cast<const guchar *>(png.data()), png.size()));
  return cursor_message(f.width, f.height, f.hot_x, f.hot_y, b64.get());
}

}  // namespace

std::string png_from_argb32(const uint8_t *pixels, int width, int height, size_t stride_bytes) {
  if (!pixels || width < 1 || height < 1 || width > kMaxCursorSide || height > kMaxCursorSide ||
      stride_bytes < size_t(width) * 4)
    return {};
  const std::vector<uint8_t> raw = rgba_scanlines(pixels, width, height, stride_bytes);
  uLongf zlen = compressBound(uLong(raw.size()));
  std::vector<uint8_t> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), uLong(raw.size()), Z_DEFAULT_COMPRESSION) != Z_OK)
    return {};

  static const char kSignature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  std::string png(kSignature, sizeof kSignature);
  png.reserve(8 + 25 + 12 + zlen + 12);
  /* IHDR: width, height, bit depth 8, colour type 6 (RGBA), deflate, filter 0, no interlace. */
  uint8_t ihdr[13] = {0};
  for (int i = 0; i < 4; i++) {
    ihdr[i] = uint8_t(uint32_t(width) >> (24 - 8 * i));
    ihdr[4 + i] = uint8_t(uint32_t(height) >> (24 - 8 * i));
  }
  ihdr[8] = 8;
  ihdr[9] = 6;
  put_chunk(&png, "IHDR", ihdr, sizeof ihdr);
  put_chunk(&png, "IDAT", z.data(), zlen);
  put_chunk(&png, "IEND", nullptr, 0);
  return png;
}

bool cursor_messages(const GstStructure *cursor, bool with_image, CursorMessages *out) {
  CursorFields f;
  if (!read_fields(cursor, &f))
    return false;
  CursorMessages m;
  if (f.image && (f.image_changed || with_image)) {
    m.image = image_message(f);
    if (m.image.empty())
      return false;
  }
  m.position = cursor_pos_message(f.x, f.y, f.visible);
  *out = std::move(m);
  return true;
}

}  // namespace vmd::webrtc
