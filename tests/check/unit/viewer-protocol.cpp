/* Unit: the `input` data channel's messages (ext/webrtc/viewer-protocol.h). Every viewer
 * message parsed with its fields, every kind of malformed text refused with a reason, and the
 * sink's messages byte-exact against the golden strings of docs/vmwebrtcsink.md (and, read
 * back with json-glib here, as JSON with the right fields and types). */
#include "viewer-protocol.h"

#include <json-glib/json-glib.h>

#include <cmath>
#include <string>
#include <vector>

/* After the standard headers: check's fail() macro would break <istream>. */
#include <gst/check/gstcheck.h>

using vmd::webrtc::ViewerMessage;
using T = vmd::webrtc::ViewerMessage::Type;

namespace {

ViewerMessage parse_ok(const std::string &text) {
  ViewerMessage m;
  std::string why;
  fail_unless(vmd::webrtc::parse_viewer_message(text, &m, &why), "refused %s: %s", text.c_str(),
              why.c_str());
  return m;
}

/* Refused, with some reason; the reason must contain `expect` when given. */
void parse_bad(const std::string &text, const char *expect = nullptr) {
  ViewerMessage m;
  std::string why;
  fail_if(vmd::webrtc::parse_viewer_message(text, &m, &why), "accepted %s", text.c_str());
  fail_if(why.empty(), "no reason for refusing %s", text.c_str());
  if (expect)
    fail_unless(why.find(expect) != std::string::npos, "%s: reason '%s' lacks '%s'",
                text.c_str(), why.c_str(), expect);
}

/* The test's own reading of a sink message: a JSON object, via json-glib. */
struct Json {
  explicit Json(const std::string &text) : parser(json_parser_new()) {
    GError *err = nullptr;
    fail_unless(json_parser_load_from_data(parser, text.c_str(), -1, &err), "%s: %s",
                text.c_str(), err ? err->message : "");
    JsonNode *root = json_parser_get_root(parser);
    fail_unless(root && JSON_NODE_HOLDS_OBJECT(root), "%s is not an object", text.c_str());
    obj = json_node_get_object(root);
  }
  ~Json() { g_object_unref(parser); }
  JsonNode *member(const char *name, GType type) {
    JsonNode *n = json_object_get_member(obj, name);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n), "no value %s", name);
    fail_unless(json_node_get_value_type(n) == type, "%s has type %s", name,
                g_type_name(json_node_get_value_type(n)));
    return n;
  }
  gint64 integer(const char *name) { return json_node_get_int(member(name, G_TYPE_INT64)); }
  bool boolean(const char *name) { return json_node_get_boolean(member(name, G_TYPE_BOOLEAN)); }
  const char *string(const char *name) { return json_node_get_string(member(name, G_TYPE_STRING)); }
  double number(const char *name) {
    JsonNode *n = json_object_get_member(obj, name);
    fail_unless(n && JSON_NODE_HOLDS_VALUE(n), "no value %s", name);
    return json_node_get_double(n);
  }
  guint size() { return json_object_get_size(obj); }

  JsonParser *parser;
  JsonObject *obj = nullptr;
};

}  // namespace

GST_START_TEST(test_pointer) {
  ViewerMessage m = parse_ok(R"({"type":"pointer","x":100,"y":200.5})");
  fail_unless(m.type == T::Pointer);
  fail_unless_equals_float(m.x, 100);
  fail_unless_equals_float(m.y, 200.5);
  /* Bounds: |v| <= 1e6, negative allowed (a pointer outside the video). */
  m = parse_ok(R"({"type":"pointer","x":-1e6,"y":1000000})");
  fail_unless_equals_float(m.x, -1e6);
  fail_unless_equals_float(m.y, 1e6);
  /* Whitespace and extra fields are fine. */
  m = parse_ok(" {\n \"y\" : 3 , \"type\" : \"pointer\", \"x\": 2, \"extra\": [1, {}] } ");
  fail_unless_equals_float(m.x, 2);
  fail_unless_equals_float(m.y, 3);
}
GST_END_TEST;

GST_START_TEST(test_pointer_rel_and_wheel) {
  ViewerMessage m = parse_ok(R"({"type":"pointer-rel","dx":-3,"dy":4.25})");
  fail_unless(m.type == T::PointerRel);
  fail_unless_equals_float(m.x, -3);
  fail_unless_equals_float(m.y, 4.25);
  m = parse_ok(R"({"type":"wheel","dx":0.5,"dy":-2})");
  fail_unless(m.type == T::Wheel);
  fail_unless_equals_float(m.x, 0.5);
  fail_unless_equals_float(m.y, -2);
}
GST_END_TEST;

GST_START_TEST(test_button) {
  for (int b = 0; b <= 4; b++) {
    for (bool down : {true, false}) {
      const std::string text = "{\"type\":\"button\",\"button\":" + std::to_string(b) +
                               ",\"down\":" + (down ? "true" : "false") + "}";
      ViewerMessage m = parse_ok(text);
      fail_unless(m.type == T::Button);
      fail_unless_equals_int(m.button, b);
      fail_unless_equals_int(m.down, down);
    }
  }
  /* 2.0 is the integer 2 in JSON's number model. */
  fail_unless_equals_int(parse_ok(R"({"type":"button","button":2.0,"down":true})").button, 2);
}
GST_END_TEST;

GST_START_TEST(test_key) {
  ViewerMessage m = parse_ok(R"({"type":"key","code":"KeyA","down":true})");
  fail_unless(m.type == T::Key);
  fail_unless_equals_string(m.code.c_str(), "KeyA");
  fail_unless(m.down);
  m = parse_ok(R"({"type":"key","code":"ArrowLeft","down":false})");
  fail_unless_equals_string(m.code.c_str(), "ArrowLeft");
  fail_if(m.down);
  const std::string longest(64, 'F');
  m = parse_ok("{\"type\":\"key\",\"code\":\"" + longest + "\",\"down\":true}");
  fail_unless_equals_string(m.code.c_str(), longest.c_str());
}
GST_END_TEST;

GST_START_TEST(test_resize_and_ping) {
  ViewerMessage m = parse_ok(R"({"type":"resize","width":1280,"height":800})");
  fail_unless(m.type == T::Resize);
  fail_unless_equals_int(m.width, 1280);
  fail_unless_equals_int(m.height, 800);
  m = parse_ok(R"({"type":"resize","width":1,"height":16384})");
  fail_unless_equals_int(m.width, 1);
  fail_unless_equals_int(m.height, 16384);
  m = parse_ok(R"({"type":"ping","t":12345.678})");
  fail_unless(m.type == T::Ping);
  fail_unless_equals_float(m.t, 12345.678);
  m = parse_ok(R"({"type":"ping","t":1e300})");
  fail_unless_equals_float(m.t, 1e300);
}
GST_END_TEST;

GST_START_TEST(test_not_an_object) {
  parse_bad("", "not");
  parse_bad("hello", "not a JSON object");
  parse_bad("{", "not JSON");
  parse_bad(R"({"type":"ping","t":1)", "not JSON");
  parse_bad(R"({"type":"ping","t":1} {})", "text after the object");
  parse_bad(R"({"type":"ping","t":1} x)");
  parse_bad(R"({"type":"ping","t":1}})");
  parse_ok("{\"type\":\"ping\",\"t\":1} \r\n\t"); /* only whitespace after: fine */
  parse_bad("[]", "not a JSON object");
  parse_bad(R"([{"type":"ping","t":1}])", "not a JSON object");
  parse_bad("42", "not a JSON object");
  parse_bad("\"ping\"", "not a JSON object");
  parse_bad("null", "not a JSON object");
  /* What json-glib 1.6 alone would take: not JSON. */
  parse_bad("{'type':'ping','t':1}", "not JSON");
  parse_bad(R"({"type":"ping",/* c */"t":1})", "not JSON");
  parse_bad(R"({"type":"ping","t":0x10})", "not JSON");
  parse_bad(R"({"type":"ping","t":01})", "not JSON");
  parse_bad(R"({"type":"ping","t":.5})", "not JSON");
  parse_bad(R"({"type":"ping","t":1.})", "not JSON");
  parse_bad(R"({"type":"ping","t":1e})", "not JSON");
  parse_bad(R"({"type":"ping","t":+1})", "not JSON");
  parse_bad(R"({"type":"ping","t":-})", "not JSON");
  parse_bad(R"({"type":"ping","t":1,})", "not JSON");
  parse_bad(R"({"type":"ping","t":1,"s":"a\qb"})", "not JSON");
  parse_bad(R"({"type":"ping","t":1,"s":"a\u12"})", "not JSON");
  parse_bad("{\"type\":\"ping\",\"t\":1,\"s\":\"a\tb\"}", "not JSON");
  parse_bad(R"({"type":"ping","t":1,"s":"abc)", "not JSON");
  parse_bad(R"({"type":"ping","t":1,"n":nul})", "not JSON");
  /* Every kind of JSON token is fine. */
  fail_unless_equals_float(parse_ok(R"({"type":"ping","t":-0.5e+2,"n":[true,false,null,{}],)"
                                    R"("s":"a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"})")
                               .t,
                           -50);
  /* NaN and Infinity are not JSON. */
  parse_bad(R"({"type":"ping","t":NaN})");
  parse_bad(R"({"type":"ping","t":Infinity})");
  parse_bad(R"({"type":"ping","t":-Infinity})");
  /* Invalid UTF-8 and a NUL byte inside the text. */
  parse_bad("{\"type\":\"key\",\"code\":\"Key\xff\",\"down\":true}", "UTF-8");
  static const char kInner[] = "{\"type\":\"ping\",\0\"t\":1}";
  static const char kTrailing[] = "{\"type\":\"ping\",\"t\":1}\0";
  parse_bad(std::string(kInner, sizeof kInner - 1), "UTF-8");
  parse_bad(std::string(kTrailing, sizeof kTrailing - 1), "UTF-8");
}
GST_END_TEST;

GST_START_TEST(test_type) {
  parse_bad(R"({"t":1})", "missing field type");
  parse_bad(R"({"type":1,"t":1})", "field type is not a string");
  parse_bad(R"({"type":null,"t":1})", "field type");
  parse_bad(R"({"type":"","t":1})", "field type");
  parse_bad(R"({"type":"pong","t":1})", "unknown type");
  parse_bad(R"({"type":"Ping","t":1})", "unknown type");
  parse_bad(R"({"type":"ping ","t":1})", "unknown type");
  parse_bad(R"({"type":"cursor","width":1,"height":1,"hot_x":0,"hot_y":0,"png":""})",
            "unknown type");
}
GST_END_TEST;

GST_START_TEST(test_missing_and_mistyped) {
  parse_bad(R"({"type":"pointer","x":1})", "missing field y");
  parse_bad(R"({"type":"pointer","y":1})", "missing field x");
  parse_bad(R"({"type":"pointer","x":"1","y":1})", "field x is not a number");
  parse_bad(R"({"type":"pointer","x":true,"y":1})", "field x is not a number");
  parse_bad(R"({"type":"pointer","x":null,"y":1})", "field x");
  parse_bad(R"({"type":"pointer","x":[1],"y":1})", "field x");
  parse_bad(R"({"type":"pointer","x":{},"y":1})", "field x");
  parse_bad(R"({"type":"pointer-rel","x":1,"y":1})", "missing field dx");
  parse_bad(R"({"type":"wheel","dx":1})", "missing field dy");
  parse_bad(R"({"type":"button","button":0})", "missing field down");
  parse_bad(R"({"type":"button","down":true})", "missing field button");
  parse_bad(R"({"type":"button","button":0,"down":1})", "field down is not a boolean");
  parse_bad(R"({"type":"button","button":0,"down":"true"})", "field down is not a boolean");
  parse_bad(R"({"type":"button","button":"0","down":true})", "field button is not a number");
  parse_bad(R"({"type":"key","down":true})", "missing field code");
  parse_bad(R"({"type":"key","code":65,"down":true})", "field code is not a string");
  parse_bad(R"({"type":"key","code":"KeyA"})", "missing field down");
  parse_bad(R"({"type":"resize","width":800})", "missing field height");
  parse_bad(R"({"type":"resize","width":"800","height":600})", "field width is not a number");
  parse_bad(R"({"type":"ping"})", "missing field t");
  parse_bad(R"({"type":"ping","t":"now"})", "field t is not a number");
}
GST_END_TEST;

GST_START_TEST(test_out_of_range) {
  /* Huge numbers: finite but far out of range, or beyond double (1e400). */
  parse_bad(R"({"type":"pointer","x":1000000.5,"y":0})", "out of range");
  parse_bad(R"({"type":"pointer","x":0,"y":-1e7})", "out of range");
  parse_bad(R"({"type":"pointer","x":1e308,"y":0})", "out of range");
  parse_bad(R"({"type":"pointer","x":1e400,"y":0})");
  /* json-glib alone reads this as -1 (int64 wrap-around). */
  parse_bad(R"({"type":"pointer","x":99999999999999999999999,"y":0})", "18 digits");
  parse_bad(R"({"type":"pointer","x":-18446744073709551617,"y":0})", "18 digits");
  fail_unless_equals_float(parse_ok(R"({"type":"ping","t":999999999999999999})").t,
                           999999999999999999.0);
  fail_unless_equals_float(parse_ok(R"({"type":"ping","t":99999999999999999999.0})").t, 1e20);
  parse_bad(R"({"type":"pointer-rel","dx":2e6,"dy":0})", "out of range");
  parse_bad(R"({"type":"wheel","dx":0,"dy":-1e9})", "out of range");
  parse_bad(R"({"type":"ping","t":1e400})");
  parse_bad(R"({"type":"ping","t":-1e400})");
  parse_bad(R"({"type":"button","button":5,"down":true})", "0..4");
  parse_bad(R"({"type":"button","button":-1,"down":true})", "0..4");
  parse_bad(R"({"type":"button","button":1.5,"down":true})", "0..4");
  parse_bad(R"({"type":"button","button":4294967297,"down":true})", "0..4");
  parse_bad(R"({"type":"button","button":1e300,"down":true})", "0..4");
  parse_bad(R"({"type":"resize","width":0,"height":600})", "1..16384");
  parse_bad(R"({"type":"resize","width":800,"height":16385})", "1..16384");
  parse_bad(R"({"type":"resize","width":-800,"height":600})", "1..16384");
  parse_bad(R"({"type":"resize","width":800.5,"height":600})", "1..16384");
  parse_bad(R"({"type":"resize","width":4294968096,"height":600})", "1..16384");
}
GST_END_TEST;

GST_START_TEST(test_key_code) {
  parse_bad(R"({"type":"key","code":"","down":true})", "1..64");
  parse_bad("{\"type\":\"key\",\"code\":\"" + std::string(65, 'F') + "\",\"down\":true}",
            "1..64");
  parse_bad(R"({"type":"key","code":"Key A","down":true})", "character");
  parse_bad(R"({"type":"key","code":"Key-A","down":true})", "character");
  parse_bad(R"({"type":"key","code":"Key_A","down":true})", "character");
  parse_bad(R"({"type":"key","code":"Key\"A","down":true})", "character");
  parse_bad(R"({"type":"key","code":"Key\nA","down":true})", "character");
  parse_bad("{\"type\":\"key\",\"code\":\"Key\xc3\x84\",\"down\":true}", "character");
  /* An escaped NUL must not cut the code short ("Key" would be accepted). */
  parse_bad(R"({"type":"key","code":"Key\u0000A","down":true})");
  parse_bad(R"({"type":"key","code":"\u0000","down":true})", "NUL");
  /* An escaped backslash followed by "u0000" is no NUL. */
  fail_unless_equals_float(parse_ok(R"({"type":"ping","t":3,"s":"a\\u0000"})").t, 3);
}
GST_END_TEST;

GST_START_TEST(test_length_bound) {
  const std::string head = R"({"type":"ping","t":1})";
  const size_t max = vmd::webrtc::kMaxViewerMessage;
  fail_unless_equals_int(max, 4096);
  /* Padded with spaces (valid JSON whitespace) to exactly the bound: accepted. */
  fail_unless_equals_float(parse_ok(head + std::string(max - head.size(), ' ')).t, 1);
  parse_bad(head + std::string(max - head.size() + 1, ' '), "longer than 4096");
  /* A long string field, also over the bound. */
  parse_bad(R"({"type":"ping","t":1,"pad":")" + std::string(max, 'a') + "\"}", "longer than");
  /* Nesting: 16 levels are fine, deeper is refused before json-glib recurses into it. */
  const std::string ok16 =
      R"({"type":"ping","t":1,"n":)" + std::string(15, '[') + std::string(15, ']') + "}";
  fail_unless_equals_float(parse_ok(ok16).t, 1);
  const std::string deep = R"({"type":"ping","t":1,"n":)" + std::string(2000, '[') +
                           std::string(2000, ']') + "}";
  fail_unless(deep.size() <= max);
  parse_bad(deep, "nested more than 16");
  parse_bad(R"({"type":"ping","t":1,"n":)" + std::string(16, '[') + std::string(16, ']') + "}",
            "nested");
  /* Brackets inside strings are not nesting. */
  fail_unless_equals_float(
      parse_ok(R"({"type":"ping","t":2,"s":")" + std::string(100, '[') + R"(\"}"})").t, 2);
}
GST_END_TEST;

/* Golden strings (docs/vmwebrtcsink.md, "The sink's messages"). */
GST_START_TEST(test_sink_messages_golden) {
  std::string got;
  got = vmd::webrtc::cursor_message(32, 24, 1, 2, "iVBORw0KGgo=");
  fail_unless_equals_string(got.c_str(),
      R"({"type":"cursor","width":32,"height":24,"hot_x":1,"hot_y":2,"png":"iVBORw0KGgo="})");
  got = vmd::webrtc::cursor_pos_message(-5, 700, true);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"cursor-pos","x":-5,"y":700,"visible":true})");
  got = vmd::webrtc::cursor_pos_message(0, 0, false);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"cursor-pos","x":0,"y":0,"visible":false})");
  got = vmd::webrtc::pong_message(1234.5);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"pong","t":1234.5})");
  got = vmd::webrtc::pong_message(0.1);
  fail_unless_equals_string(got.c_str(), R"({"type":"pong","t":0.1})");
  got = vmd::webrtc::pong_message(1712345678901);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"pong","t":1712345678901})");
  got = vmd::webrtc::pong_message(-2);
  fail_unless_equals_string(got.c_str(), R"({"type":"pong","t":-2})");
  got = vmd::webrtc::pong_message(1e21);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"pong","t":1e+21})");
  /* Not finite (cannot come from a ping): still JSON. */
  got = vmd::webrtc::pong_message(NAN);
  fail_unless_equals_string(got.c_str(), R"({"type":"pong","t":0})");
  got = vmd::webrtc::control_message(true);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"control","granted":true})");
  got = vmd::webrtc::control_message(false);
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"control","granted":false})");
  /* A string that would need escaping stays JSON (png is base64 in practice). */
  got = vmd::webrtc::cursor_message(1, 1, 0, 0, "a\"b\\c\n");
  fail_unless_equals_string(got.c_str(),
                            R"({"type":"cursor","width":1,"height":1,"hot_x":0,"hot_y":0,)"
                            R"("png":"a\"b\\c\u000a"})");
}
GST_END_TEST;

GST_START_TEST(test_sink_messages_parse_back) {
  {
    Json j(vmd::webrtc::cursor_message(64, 48, 63, 0, "QUJD"));
    fail_unless_equals_int(j.size(), 6);
    fail_unless_equals_string(j.string("type"), "cursor");
    fail_unless_equals_int(j.integer("width"), 64);
    fail_unless_equals_int(j.integer("height"), 48);
    fail_unless_equals_int(j.integer("hot_x"), 63);
    fail_unless_equals_int(j.integer("hot_y"), 0);
    fail_unless_equals_string(j.string("png"), "QUJD");
  }
  {
    Json j(vmd::webrtc::cursor_message(1, 1, 0, 0, "a\"b\\c\n\x01"));
    fail_unless_equals_string(j.string("png"), "a\"b\\c\n\x01");
  }
  {
    Json j(vmd::webrtc::cursor_pos_message(-2147483647 - 1, 2147483647, true));
    fail_unless_equals_int(j.size(), 4);
    fail_unless_equals_string(j.string("type"), "cursor-pos");
    fail_unless_equals_int(j.integer("x"), G_MININT32);
    fail_unless_equals_int(j.integer("y"), G_MAXINT32);
    fail_unless(j.boolean("visible"));
  }
  {
    Json j(vmd::webrtc::control_message(false));
    fail_unless_equals_int(j.size(), 2);
    fail_unless_equals_string(j.string("type"), "control");
    fail_if(j.boolean("granted"));
  }
  /* A ping's t comes back exactly in the pong, through both parsers. */
  const char *pings[] = {"0", "0.1", "123456.789", "1712345678901.25", "-0.000001", "1e300",
                         "4.9e-324", "0.30000000000000004", "1.0000000000000002"};
  for (const char *t : pings) {
    const ViewerMessage m = parse_ok(std::string("{\"type\":\"ping\",\"t\":") + t + "}");
    const std::string pong = vmd::webrtc::pong_message(m.t);
    Json j(pong);
    fail_unless_equals_int(j.size(), 2);
    fail_unless_equals_string(j.string("type"), "pong");
    fail_unless(j.number("t") == m.t, "%s: ping %s pong %s", t, t, pong.c_str());
    fail_unless(parse_ok(std::string("{\"type\":\"ping\",\"t\":") + t + "}").t ==
                g_ascii_strtod(t, nullptr));
  }
}
GST_END_TEST;

/* Valid messages with random bytes changed, inserted or cut: never a crash, and whatever is
 * accepted is within the documented ranges. Fixed seed: the same texts every run. */
GST_START_TEST(test_mangled) {
  const char *samples[] = {
      R"({"type":"pointer","x":100,"y":200.5})", R"({"type":"pointer-rel","dx":-3,"dy":4})",
      R"({"type":"button","button":2,"down":true})", R"({"type":"wheel","dx":0,"dy":-1})",
      R"({"type":"key","code":"KeyA","down":false})", R"({"type":"resize","width":8,"height":6})",
      R"({"type":"ping","t":1.5e3})"};
  GRand *rand = g_rand_new_with_seed(20240601);
  int accepted = 0;
  for (int n = 0; n < 20000; n++) {
    std::string text = samples[g_rand_int_range(rand, 0, G_N_ELEMENTS(samples))];
    for (int k = g_rand_int_range(rand, 1, 4); k > 0; k--) {
      const size_t at = size_t(g_rand_int_range(rand, 0, gint32(text.size())));
      const char byte = char(g_rand_int_range(rand, 0, 256));
      switch (g_rand_int_range(rand, 0, 3)) {
        case 0:
          text[at] = byte;
          break;
        case 1:
          text.insert(at, 1, byte);
          break;
        default:
          text.erase(at, 1);
      }
    }
    ViewerMessage m;
    std::string why;
    if (!vmd::webrtc::parse_viewer_message(text, &m, &why)) {
      fail_if(why.empty());
      continue;
    }
    accepted++;
    fail_unless(std::isfinite(m.x) && std::fabs(m.x) <= 1e6 && std::isfinite(m.y) &&
                std::fabs(m.y) <= 1e6 && std::isfinite(m.t));
    fail_unless(m.button >= 0 && m.button <= 4);
    fail_unless(m.width <= 16384 && m.height <= 16384);
    fail_unless(m.code.size() <= 64);
    for (const char c : m.code)
      fail_unless(g_ascii_isalnum(c));
    if (m.type == T::Resize)
      fail_unless(m.width >= 1 && m.height >= 1);
    if (m.type == T::Key)
      fail_if(m.code.empty());
  }
  g_rand_free(rand);
  fail_unless(accepted > 0); /* some mangled texts are still messages (a digit changed) */
}
GST_END_TEST;

static Suite *viewer_protocol_suite(void) {
  Suite *s = suite_create("viewer-protocol");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_pointer);
  tcase_add_test(tc, test_pointer_rel_and_wheel);
  tcase_add_test(tc, test_button);
  tcase_add_test(tc, test_key);
  tcase_add_test(tc, test_resize_and_ping);
  tcase_add_test(tc, test_not_an_object);
  tcase_add_test(tc, test_type);
  tcase_add_test(tc, test_missing_and_mistyped);
  tcase_add_test(tc, test_out_of_range);
  tcase_add_test(tc, test_key_code);
  tcase_add_test(tc, test_length_bound);
  tcase_add_test(tc, test_sink_messages_golden);
  tcase_add_test(tc, test_sink_messages_parse_back);
  tcase_add_test(tc, test_mangled);
  return s;
}

GST_CHECK_MAIN(viewer_protocol);
