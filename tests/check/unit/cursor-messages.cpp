/* Unit: the guest cursor as the viewer's `cursor` and `cursor-pos` messages
 * (ext/webrtc/cursor-messages.h). The PNG is checked by a decoder written here from the PNG
 * specification (signature, chunk CRCs, IHDR, filter bytes, zlib inflate of the IDATs),
 * independent of the encoder; the `qemu-cursor` structures are written by hand the way
 * ext/qemu/cursor-event.cpp builds them (int sizes and positions, boolean flags, the image as
 * a GstBuffer of native-endian 0xAARRGGBB words). */
#include "cursor-messages.h"

#include <json-glib/json-glib.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

/* After the standard headers: check's fail() macro would break <istream>. */
#include <gst/check/gstcheck.h>

namespace {

struct Decoded {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgba; /* width * height * 4 */
};

uint32_t be32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

/* PNG, 8-bit RGBA, non-interlaced, filter type 0 on every row (what we expect to get). */
Decoded decode_png(const std::string &png) {
  static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  const auto *p = reinterpret_cast<const uint8_t *>(png.data());
  fail_unless(png.size() >= 8 && memcmp(p, kSig, 8) == 0, "no PNG signature");
  Decoded d;
  std::vector<uint8_t> idat;
  std::vector<std::string> order;
  size_t pos = 8;
  while (pos < png.size()) {
    fail_unless(pos + 12 <= png.size(), "truncated chunk at %zu", pos);
    const uint32_t len = be32(p + pos);
    fail_unless(pos + 12 + len <= png.size(), "chunk longer than the file");
    const std::string type(reinterpret_cast<const char *>(p + pos + 4), 4);
    const uint8_t *data = p + pos + 8;
    const uint32_t crc = uint32_t(crc32(0, p + pos + 4, len + 4));
    fail_unless_equals_int(be32(data + len), crc);
    order.push_back(type);
    if (type == "IHDR") {
      fail_unless_equals_int(len, 13);
      d.width = be32(data);
      d.height = be32(data + 4);
      fail_unless_equals_int(data[8], 8);  /* bit depth */
      fail_unless_equals_int(data[9], 6);  /* RGBA */
      fail_unless_equals_int(data[10], 0); /* deflate */
      fail_unless_equals_int(data[11], 0); /* filter method */
      fail_unless_equals_int(data[12], 0); /* no interlace */
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      fail_unless_equals_int(len, 0);
    }
    pos += 12 + len;
  }
  fail_unless_equals_int(pos, png.size());
  fail_unless(order.size() >= 3 && order.front() == "IHDR" && order.back() == "IEND");
  const size_t row = 1 + size_t(d.width) * 4;
  std::vector<uint8_t> raw(row * d.height + 1);
  uLongf raw_len = raw.size();
  fail_unless_equals_int(uncompress(raw.data(), &raw_len, idat.data(), idat.size()), Z_OK);
  fail_unless_equals_int(raw_len, row * d.height);
  for (uint32_t y = 0; y < d.height; y++) {
    fail_unless_equals_int(raw[y * row], 0); /* filter: none */
    d.rgba.insert(d.rgba.end(), raw.begin() + long(y * row + 1), raw.begin() + long((y + 1) * row));
  }
  return d;
}

/* 3x2, distinct colours, alpha 255, 128 and 0. */
const uint32_t kArgb[6] = {0xffff0000, 0x8000ff00, 0x000000ff, 0xff123456, 0x80abcdef, 0x00ffffff};
/* The same, as PNG's R, G, B, A bytes, written out by hand. */
const uint8_t kRgba[24] = {0xff, 0x00, 0x00, 0xff, 0x00, 0xff, 0x00, 0x80, 0x00, 0x00, 0xff, 0x00,
                           0x12, 0x34, 0x56, 0xff, 0xab, 0xcd, 0xef, 0x80, 0xff, 0xff, 0xff, 0x00};

void check_known_image(const Decoded &d) {
  fail_unless_equals_int(d.width, 3);
  fail_unless_equals_int(d.height, 2);
  fail_unless_equals_int(d.rgba.size(), sizeof kRgba);
  for (size_t i = 0; i < sizeof kRgba; i++)
    fail_unless_equals_int(d.rgba[i], kRgba[i]);
}

GstBuffer *argb_buffer(const uint32_t *words, size_t n) {
  GstBuffer *b = gst_buffer_new_allocate(nullptr, n * 4, nullptr);
  gst_buffer_fill(b, 0, words, n * 4);
  return b;
}

/* A `qemu-cursor` structure as cursor-event.cpp writes it; image (may be null) is added. */
GstStructure *cursor_structure(int w, int h, int hot_x, int hot_y, int x, int y, bool visible,
                               bool changed, GstBuffer *image) {
  GstStructure *s =
      gst_structure_new("qemu-cursor", "width", G_TYPE_INT, w, "height", G_TYPE_INT, h, "hot-x",
                        G_TYPE_INT, hot_x, "hot-y", G_TYPE_INT, hot_y, "x", G_TYPE_INT, x, "y",
                        G_TYPE_INT, y, "visible", G_TYPE_BOOLEAN, gboolean(visible),
                        "image-changed", G_TYPE_BOOLEAN, gboolean(changed), nullptr);
  if (image) {
    gst_structure_set(s, "image", GST_TYPE_BUFFER, image, nullptr);
    gst_buffer_unref(image);
  }
  return s;
}

GstStructure *known_cursor(bool changed) {
  return cursor_structure(3, 2, 1, 0, 100, -4, true, changed, argb_buffer(kArgb, 6));
}

struct Json {
  explicit Json(const std::string &text) : parser(json_parser_new()) {
    fail_unless(json_parser_load_from_data(parser, text.c_str(), -1, nullptr), "%s",
                text.c_str());
    JsonNode *root = json_parser_get_root(parser);
    fail_unless(root && JSON_NODE_HOLDS_OBJECT(root));
    obj = json_node_get_object(root);
  }
  ~Json() { g_object_unref(parser); }
  gint64 integer(const char *name) {
    fail_unless(json_object_has_member(obj, name), "no %s", name);
    return json_object_get_int_member(obj, name);
  }
  const char *string(const char *name) {
    fail_unless(json_object_has_member(obj, name), "no %s", name);
    return json_object_get_string_member(obj, name);
  }
  bool boolean(const char *name) {
    fail_unless(json_object_has_member(obj, name), "no %s", name);
    return json_object_get_boolean_member(obj, name);
  }
  JsonParser *parser;
  JsonObject *obj = nullptr;
};

bool messages(GstStructure *s, bool with_image, vmd::webrtc::CursorMessages *out) {
  const bool ok = vmd::webrtc::cursor_messages(s, with_image, out);
  if (s)
    gst_structure_free(s);
  return ok;
}

void check_image_message(const std::string &text) {
  Json j(text);
  fail_unless_equals_string(j.string("type"), "cursor");
  fail_unless_equals_int(j.integer("width"), 3);
  fail_unless_equals_int(j.integer("height"), 2);
  fail_unless_equals_int(j.integer("hot_x"), 1);
  fail_unless_equals_int(j.integer("hot_y"), 0);
  gsize len = 0;
  guchar *png = g_base64_decode(j.string("png"), &len);
  check_known_image(decode_png(std::string(reinterpret_cast<char *>(png), len)));
  g_free(png);
}

}  // namespace

GST_START_TEST(test_png_known_image) {
  const std::string png = vmd::webrtc::png_from_argb32(
      reinterpret_cast<const uint8_t *>(kArgb), 3, 2, 3 * 4);
  check_known_image(decode_png(png));
  /* Exactly one IDAT, right after IHDR (8 + 25 bytes), IEND last (12 bytes). */
  fail_unless(memcmp(png.data() + 8 + 25 + 4, "IDAT", 4) == 0);
  fail_unless_equals_int(be32(reinterpret_cast<const uint8_t *>(png.data()) + 8 + 25) + 12 + 8 +
                             25 + 12,
                         png.size());
}
GST_END_TEST;

/* Rows stride_bytes apart: padding bytes are not pixels. */
GST_START_TEST(test_png_stride) {
  std::vector<uint8_t> padded(2 * 16, 0xee);
  memcpy(padded.data(), kArgb, 12);
  memcpy(padded.data() + 16, kArgb + 3, 12);
  check_known_image(decode_png(vmd::webrtc::png_from_argb32(padded.data(), 3, 2, 16)));
}
GST_END_TEST;

GST_START_TEST(test_png_sizes) {
  std::vector<uint32_t> big(513 * 2, 0x80402010);
  const auto *px = reinterpret_cast<const uint8_t *>(big.data());
  fail_unless(vmd::webrtc::png_from_argb32(px, 0, 1, 4).empty());
  fail_unless(vmd::webrtc::png_from_argb32(px, 1, 0, 4).empty());
  fail_unless(vmd::webrtc::png_from_argb32(px, -1, 1, 4).empty());
  fail_unless(vmd::webrtc::png_from_argb32(px, 513, 1, 513 * 4).empty());
  fail_unless(vmd::webrtc::png_from_argb32(px, 1, 513, 4).empty());
  fail_unless(vmd::webrtc::png_from_argb32(px, 3, 2, 11).empty()); /* stride < width * 4 */
  fail_unless(vmd::webrtc::png_from_argb32(nullptr, 3, 2, 12).empty());
  const Decoded d = decode_png(vmd::webrtc::png_from_argb32(px, 512, 2, 513 * 4));
  fail_unless_equals_int(d.width, 512);
  fail_unless_equals_int(d.height, 2);
  const uint8_t px0[4] = {0x40, 0x20, 0x10, 0x80};
  for (size_t i = 0; i < d.rgba.size(); i++)
    fail_unless_equals_int(d.rgba[i], px0[i % 4]);
  std::vector<uint32_t> square(512 * 512, 0xff00ff00);
  fail_unless_equals_int(
      decode_png(vmd::webrtc::png_from_argb32(reinterpret_cast<const uint8_t *>(square.data()),
                                              512, 512, 512 * 4))
          .rgba.size(),
      512 * 512 * 4);
}
GST_END_TEST;

GST_START_TEST(test_cursor_changed) {
  vmd::webrtc::CursorMessages m;
  fail_unless(messages(known_cursor(true), false, &m));
  check_image_message(m.image);
  Json pos(m.position);
  fail_unless_equals_string(pos.string("type"), "cursor-pos");
  fail_unless_equals_int(pos.integer("x"), 100);
  fail_unless_equals_int(pos.integer("y"), -4);
  fail_unless(pos.boolean("visible"));
  fail_unless_equals_string(m.position.c_str(),
                            R"({"type":"cursor-pos","x":100,"y":-4,"visible":true})");
}
GST_END_TEST;

/* image-changed=false: only the position, unless with_image (a viewer that just joined). */
GST_START_TEST(test_cursor_unchanged) {
  vmd::webrtc::CursorMessages m;
  m.image = "stale";
  fail_unless(messages(known_cursor(false), false, &m));
  fail_unless(m.image.empty());
  fail_unless_equals_string(m.position.c_str(),
                            R"({"type":"cursor-pos","x":100,"y":-4,"visible":true})");
  fail_unless(messages(known_cursor(false), true, &m));
  check_image_message(m.image);
  fail_unless(messages(cursor_structure(3, 2, 1, 0, 5, 6, false, false, argb_buffer(kArgb, 6)),
                       false, &m));
  fail_unless(m.image.empty());
  fail_unless_equals_string(m.position.c_str(),
                            R"({"type":"cursor-pos","x":5,"y":6,"visible":false})");
}
GST_END_TEST;

/* No cursor defined yet (cursor-event.cpp: no image, sizes 0, visible false): a position. */
GST_START_TEST(test_cursor_without_image) {
  vmd::webrtc::CursorMessages m;
  fail_unless(messages(cursor_structure(0, 0, 0, 0, 10, 20, false, true, nullptr), true, &m));
  fail_unless(m.image.empty());
  fail_unless_equals_string(m.position.c_str(),
                            R"({"type":"cursor-pos","x":10,"y":20,"visible":false})");
}
GST_END_TEST;

GST_START_TEST(test_cursor_malformed) {
  vmd::webrtc::CursorMessages m;
  m.position = "untouched";
  fail_if(vmd::webrtc::cursor_messages(nullptr, true, &m));
  /* Each field missing in turn. */
  for (const char *field : {"width", "height", "hot-x", "hot-y", "x", "y", "visible",
                            "image-changed"}) {
    GstStructure *s = known_cursor(true);
    gst_structure_remove_field(s, field);
    fail_if(messages(s, true, &m), "accepted without %s", field);
  }
  /* Wrong types and name. */
  GstStructure *s = known_cursor(true);
  gst_structure_set(s, "width", G_TYPE_UINT, 3u, nullptr);
  fail_if(messages(s, true, &m));
  s = known_cursor(true);
  gst_structure_set(s, "visible", G_TYPE_INT, 1, nullptr);
  fail_if(messages(s, true, &m));
  s = known_cursor(true);
  gst_structure_set(s, "image", G_TYPE_STRING, "pixels", nullptr);
  fail_if(messages(s, true, &m));
  s = known_cursor(true);
  gst_structure_set_name(s, "qemu-cursor2");
  fail_if(messages(s, true, &m));
  /* A buffer smaller than width * height * 4, even when the image is not sent. */
  fail_if(messages(cursor_structure(3, 2, 1, 0, 0, 0, true, true, argb_buffer(kArgb, 5)), true,
                   &m));
  fail_if(messages(cursor_structure(3, 2, 1, 0, 0, 0, true, false, argb_buffer(kArgb, 5)), false,
                   &m));
  /* Sizes outside 1..512 with an image; a hotspot outside the image. */
  std::vector<uint32_t> big(513 * 1, 0);
  fail_if(messages(cursor_structure(0, 2, 0, 0, 0, 0, true, true, argb_buffer(kArgb, 6)), true,
                   &m));
  fail_if(messages(cursor_structure(3, 0, 0, 0, 0, 0, true, true, argb_buffer(kArgb, 6)), true,
                   &m));
  fail_if(messages(cursor_structure(513, 1, 0, 0, 0, 0, true, true,
                                    argb_buffer(big.data(), big.size())),
                   true, &m));
  fail_if(messages(cursor_structure(-3, -2, 0, 0, 0, 0, true, true, argb_buffer(kArgb, 6)), true,
                   &m));
  fail_if(messages(cursor_structure(3, 2, 3, 0, 0, 0, true, true, argb_buffer(kArgb, 6)), true,
                   &m));
  fail_if(messages(cursor_structure(3, 2, 0, -1, 0, 0, true, true, argb_buffer(kArgb, 6)), true,
                   &m));
  fail_unless_equals_string(m.position.c_str(), "untouched");
  /* 512 is fine. */
  std::vector<uint32_t> side(512 * 1, 0xff000000);
  fail_unless(messages(cursor_structure(512, 1, 511, 0, 0, 0, true, true,
                                        argb_buffer(side.data(), side.size())),
                       true, &m));
  fail_if(m.image.empty());
}
GST_END_TEST;

static Suite *cursor_messages_suite(void) {
  Suite *s = suite_create("cursor-messages");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_png_known_image);
  tcase_add_test(tc, test_png_stride);
  tcase_add_test(tc, test_png_sizes);
  tcase_add_test(tc, test_cursor_changed);
  tcase_add_test(tc, test_cursor_unchanged);
  tcase_add_test(tc, test_cursor_without_image);
  tcase_add_test(tc, test_cursor_malformed);
  return s;
}

GST_CHECK_MAIN(cursor_messages);
