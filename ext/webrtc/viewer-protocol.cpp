/* gst-vmdisplay: the `input` data channel's JSON messages (viewer-protocol.h).
 *
 * Parsing is strict and bounded: the text is limited to kMaxViewerMessage bytes and must be
 * valid UTF-8 without NUL before json-glib sees it; every field is checked for its JSON type
 * and range before it is used. The sink's messages are written by hand (fixed field order,
 * shortest round-trip numbers) so that they are byte-exact and documented in
 * docs/vmwebrtcsink.md.
 */
#include "viewer-protocol.h"

#include "raii.h"

#include <json-glib/json-glib.h>

#include <charconv>
#include <cmath>
#include <cstring>

namespace vmd::webrtc {

namespace {

constexpr double kMaxCoordinate = 1e6;
constexpr unsigned kMaxSize = 16384;
constexpr size_t kMaxCode = 64;

/* One message's fields, read with a reason for the first failure. */
class Fields {
 public:
  Fields(JsonObject *obj, std::string *why) : obj_(obj), why_(why) {}

  /* A JSON number (integer or not), finite. */
  bool number(const char *name, double *out) {
    JsonNode *node = value(name);
    if (!node)
      return false;
    const GType t = json_node_get_value_type(node);
    if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
      return wrong(name, "a number");
    const double v = json_node_get_double(node); /* converts an int64 */
    if (!std::isfinite(v))
      return fail(std::string("field ") + name + " is not finite");
    *out = v;
    return true;
  }

  bool coordinate(const char *name, double *out) {
    if (!number(name, out))
      return false;
    if (std::fabs(*out) > kMaxCoordinate)
      return fail(std::string("field ") + name + " is out of range (|v| <= 1e6)");
    return true;
  }

  /* A number with an integral value in lo..hi. */
  bool integer(const char *name, long lo, long hi, long *out) {
    double v = 0;
    if (!number(name, &v))
      return false;
    if (v != std::trunc(v) || v < double(lo) || v > double(hi))
      return fail(std::string("field ") + name + " is not an integer in " + std::to_string(lo) +
                  ".." + std::to_string(hi));
    *out = long(v);
    return true;
  }

  bool boolean(const char *name, bool *out) {
    JsonNode *node = value(name);
    if (!node)
      return false;
    if (json_node_get_value_type(node) != G_TYPE_BOOLEAN)
      return wrong(name, "a boolean");
    *out = json_node_get_boolean(node);
    return true;
  }

  /* A string of 1..max_len characters, each passing ok(). */
  bool string(const char *name, size_t max_len, bool (*ok)(char), std::string *out) {
    JsonNode *node = value(name);
    if (!node)
      return false;
    if (json_node_get_value_type(node) != G_TYPE_STRING)
      return wrong(name, "a string");
    const char *s = json_node_get_string(node);
    const size_t len = s ? strnlen(s, max_len + 1) : 0;
    if (len == 0 || len > max_len)
      return fail(std::string("field ") + name + " must have 1.." + std::to_string(max_len) +
                  " characters");
    for (size_t i = 0; i < len; i++)
      if (!ok(s[i]))
        return fail(std::string("field ") + name + " has a character outside its set");
    out->assign(s, len);
    return true;
  }

 private:
  /* The member as a JSON value (not an object, array or null). */
  JsonNode *value(const char *name) {
    JsonNode *node = json_object_get_member(obj_, name);
    if (!node) {
      fail(std::string("missing field ") + name);
      return nullptr;
    }
    if (JSON_NODE_TYPE(node) != JSON_NODE_VALUE) {
      wrong(name, "a number, boolean or string value");
      return nullptr;
    }
    return node;
  }
  bool wrong(const char *name, const char *what) {
    return fail(std::string("field ") + name + " is not " + what);
  }
  bool fail(std::string why) {
    *why_ = std::move(why);
    return false;
  }

  JsonObject *obj_;
  std::string *why_;
};

bool is_code_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool parse_fields(const std::string &type, Fields &f, ViewerMessage *m, std::string *why) {
  using T = ViewerMessage::Type;
  long n = 0, w = 0;
  if (type == "pointer") {
    m->type = T::Pointer;
    return f.coordinate("x", &m->x) && f.coordinate("y", &m->y);
  }
  if (type == "pointer-rel" || type == "wheel") {
    m->type = type == "wheel" ? T::Wheel : T::PointerRel;
    return f.coordinate("dx", &m->x) && f.coordinate("dy", &m->y);
  }
  if (type == "button") {
    m->type = T::Button;
    if (!f.integer("button", 0, 4, &n) || !f.boolean("down", &m->down))
      return false;
    m->button = int(n);
    return true;
  }
  if (type == "key") {
    m->type = T::Key;
    return f.string("code", kMaxCode, is_code_char, &m->code) && f.boolean("down", &m->down);
  }
  if (type == "resize") {
    m->type = T::Resize;
    if (!f.integer("width", 1, kMaxSize, &w) || !f.integer("height", 1, kMaxSize, &n))
      return false;
    m->width = unsigned(w);
    m->height = unsigned(n);
    return true;
  }
  if (type == "ping") {
    m->type = T::Ping;
    return f.number("t", &m->t);
  }
  *why = "unknown type";
  return false;
}

/* The text's tokens, checked before json-glib 1.6 parses it, since that parser is lenient
 * where it matters: it takes single-quoted strings, comments, hex and `.5` numbers, a second
 * object after the first (`{..} {..}`), wraps integers beyond int64 (99999999999999999999999
 * reads as -1), cuts strings at an escaped NUL ("Key\u0000A" reads as "Key"), and recurses
 * once per nesting level. Here: JSON's tokens only (RFC 8259), integers of at most 18
 * digits, no \u0000, nesting at most kMaxDepth, one top-level object and only whitespace
 * after it. json-glib then checks the grammar between the tokens. */
class TokenCheck {
 public:
  explicit TokenCheck(const std::string &text) : t_(text) {}

  bool run(std::string *why) {
    skip_space();
    if (i_ >= t_.size() || t_[i_] != '{')
      return fail(why, "not a JSON object");
    int depth = 0;
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '{' || c == '[') {
        if (++depth > kMaxDepth)
          return fail(why, "nested more than " + std::to_string(kMaxDepth) + " deep");
        i_++;
      } else if (c == '}' || c == ']') {
        i_++;
        if (--depth == 0)
          break;
      } else if (c == ',' || c == ':' || space(c)) {
        i_++;
      } else if (c == '"') {
        if (!string(why))
          return false;
      } else if (c == '-' || digit(c)) {
        if (!number(why))
          return false;
      } else if (!literal("true") && !literal("false") && !literal("null")) {
        return fail(why, "not JSON: unexpected character at byte " + std::to_string(i_));
      }
    }
    skip_space();
    if (i_ < t_.size())
      return fail(why, "not JSON: text after the object");
    return true;
  }

 private:
  static constexpr int kMaxDepth = 16;
  static bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool fail(std::string *why, std::string what) {
    *why = std::move(what);
    return false;
  }
  void skip_space() {
    while (i_ < t_.size() && space(t_[i_]))
      i_++;
  }
  size_t digits() {
    const size_t from = i_;
    while (i_ < t_.size() && digit(t_[i_]))
      i_++;
    return i_ - from;
  }
  bool literal(const char *word) {
    const size_t n = strlen(word);
    if (t_.compare(i_, n, word) != 0)
      return false;
    i_ += n;
    return true;
  }

  /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  bool number(std::string *why) {
    if (t_[i_] == '-')
      i_++;
    const bool zero = i_ < t_.size() && t_[i_] == '0';
    const size_t int_digits = digits();
    if (int_digits == 0 || (zero && int_digits > 1))
      return fail(why, "not JSON: a malformed number");
    bool integer = true;
    if (i_ < t_.size() && t_[i_] == '.') {
      i_++;
      integer = false;
      if (digits() == 0)
        return fail(why, "not JSON: a malformed number");
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      i_++;
      integer = false;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-'))
        i_++;
      if (digits() == 0)
        return fail(why, "not JSON: a malformed number");
    }
    if (integer && int_digits > 18)
      return fail(why, "an integer of more than 18 digits");
    return true;
  }

  /* "..." with JSON's escapes; no control characters, no \u0000. */
  bool string(std::string *why) {
    for (i_++; i_ < t_.size(); i_++) {
      const unsigned char c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20)
        return fail(why, "not JSON: a control character in a string");
      if (c != '\\')
        continue;
      const char e = i_ + 1 < t_.size() ? t_[i_ + 1] : '\0';
      if (e == 'u') {
        if (i_ + 6 > t_.size() || !g_ascii_isxdigit(t_[i_ + 2]) ||
            !g_ascii_isxdigit(t_[i_ + 3]) || !g_ascii_isxdigit(t_[i_ + 4]) ||
            !g_ascii_isxdigit(t_[i_ + 5]))
          return fail(why, "not JSON: a malformed \\u escape");
        if (t_.compare(i_ + 2, 4, "0000") == 0)
          return fail(why, "a NUL character in a string");
        i_ += 5;
      } else if (e && strchr("\"\\/bfnrt", e)) {
        i_++;
      } else {
        return fail(why, "not JSON: a malformed escape");
      }
    }
    return fail(why, "not JSON: an unterminated string");
  }

  const std::string &t_;
  size_t i_ = 0;
};

/* The text as one JSON object, or null with *why. */
JsonObject *root_object(JsonParser *parser, const std::string &text, std::string *why) {
  if (text.size() > kMaxViewerMessage) {
    *why = "longer than " + std::to_string(kMaxViewerMessage) + " bytes";
    return nullptr;
  }
  if (text.find('\0') != std::string::npos ||
      !g_utf8_validate(text.data(), gssize(text.size()), nullptr)) {
    *why = "not UTF-8 text";
    return nullptr;
  }
  if (!TokenCheck(text).run(why))
    return nullptr;
  GError *raw = nullptr;
  if (!json_parser_load_from_data(parser, text.data(), gssize(text.size()), &raw)) {
    GErrorPtr err(raw);
    *why = std::string("not JSON: ") + (err ? err->message : "?");
    return nullptr;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || JSON_NODE_TYPE(root) != JSON_NODE_OBJECT) {
    *why = "not a JSON object";
    return nullptr;
  }
  return json_node_get_object(root);
}

/* JSON string contents: quotes, backslashes and control characters escaped. */
void append_json_string(std::string *out, const std::string &s) {
  out->push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      g_snprintf(esc, sizeof esc, "\\u%04x", unsigned(static_cast<unsigned char>(c)));
      out->append(esc);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

/* Shortest text that reads back as the same double; JSON has no NaN or Infinity, so those
 * are written as 0. */
std::string json_number(double v) {
  if (!std::isfinite(v))
    return "0";
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

const char *json_bool(bool b) {
  return b ? "true" : "false";
}

}  // namespace

bool parse_viewer_message(const std::string &text, ViewerMessage *out, std::string *why) {
  GObjectPtr<JsonParser> parser(json_parser_new_immutable());
  JsonObject *obj = root_object(parser.get(), text, why);
  if (!obj)
    return false;
  Fields fields(obj, why);
  std::string type;
  if (!fields.string("type", 32, [](char) { return true; }, &type))
    return false;
  ViewerMessage m;
  if (!parse_fields(type, fields, &m, why))
    return false;
  *out = std::move(m);
  return true;
}

std::string cursor_message(int width, int height, int hot_x, int hot_y,
                           const std::string &png_base64) {
  std::string s = "{\"type\":\"cursor\",\"width\":" + std::to_string(width) +
                  ",\"height\":" + std::to_string(height) + ",\"hot_x\":" +
                  std::to_string(hot_x) + ",\"hot_y\":" + std::to_string(hot_y) + ",\"png\":";
  s.reserve(s.size() + png_base64.size() + 4);
  append_json_string(&s, png_base64);
  s.push_back('}');
  return s;
}

std::string cursor_pos_message(int x, int y, bool visible) {
  return "{\"type\":\"cursor-pos\",\"x\":" + std::to_string(x) + ",\"y\":" + std::to_string(y) +
         ",\"visible\":" + json_bool(visible) + "}";
}

std::string pong_message(double t) {
  return "{\"type\":\"pong\",\"t\":" + json_number(t) + "}";
}

std::string control_message(bool granted) {
  return std::string("{\"type\":\"control\",\"granted\":") + json_bool(granted) + "}";
}

}  // namespace vmd::webrtc
