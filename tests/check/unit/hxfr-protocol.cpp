/* Unit: HXFR messages. Golden bytes for every message type (the same bytes docs/protocol.md
 * shows, checked against that file too), round trips, and every malformed payload the
 * decoders must refuse. The streaming parser has its own test, hxfr-parser.cpp.
 *
 * The v1 golden vectors were cross-checked once against Helix's own packed C structs
 * (gstvsockenc.h / helix-frame-export.h) filled the way Helix fills them: identical bytes. */
#include "hxfr-protocol.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hxfr-parser.h"

/* Last: its fail() macro would break <ios> and any fail() member. */
#include <gst/check/gstcheck.h>

using namespace vmd::hxfr;

namespace {

/* Golden messages as hex, 16 bytes a line (docs/protocol.md shows the same bytes with offsets
 * and an ASCII column). */
struct Golden {
  const char *name;
  const char *hex;
};

const Golden kGolden[] = {
    {"frame_request",
     "48 58 46 52 01 00 01 00  2c 00 00 00 2a 00 00 00\n"
     "80 07 00 00 38 04 00 00  41 52 32 34 00 1e 00 00\n"
     "00 ca 9a 3b 00 00 00 00  2b 50 fe 00 00 00 00 00\n"
     "01 00 00 00 00 00 00 00\n"},
    {"frame_request_pixels",
     "48 58 46 52 01 01 01 00  3c 00 00 00 00 00 00 00\n"
     "02 00 00 00 02 00 00 00  41 52 32 34 08 00 00 00\n"
     "2b 50 fe 00 00 00 00 00  2b 50 fe 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  ff 00 00 ff 00 ff 00 ff\n"
     "00 00 ff ff ff ff ff ff\n"},
    {"frame_response",
     "48 58 46 52 02 00 01 00  34 00 00 00 00 ca 9a 3b\n"
     "00 00 00 00 00 ca 9a 3b  00 00 00 00 01 00 00 00\n"
     "01 00 00 00 18 00 00 00  00 00 00 01 67 42 c0 1f\n"
     "00 00 00 01 68 ce 3c 80  00 00 00 01 65 88 84 00\n"},
    {"keyframe_req", "48 58 46 52 03 00 01 00  00 00 00 00\n"},
    {"config_req",
     "48 58 46 52 04 00 01 00  1c 00 00 00 80 07 00 00\n"
     "38 04 00 00 00 12 7a 00  3c 00 00 00 01 00 00 00\n"
     "42 28 01 00 00 00 00 00\n"},
    {"config_resp",
     "48 58 46 52 05 00 01 00  1c 00 00 00 80 07 00 00\n"
     "38 04 00 00 00 12 7a 00  3c 00 00 00 01 00 00 00\n"
     "42 2a 01 00 00 00 00 00\n"},
    {"ping", "48 58 46 52 10 00 07 00  00 00 00 00\n"},
    {"pong", "48 58 46 52 11 00 07 00  00 00 00 00\n"},
    {"enable_scanout",
     "48 58 46 52 20 00 00 00  10 00 00 00 01 00 00 00\n"
     "80 07 00 00 38 04 00 00  3c 00 00 00\n"},
    {"disable_scanout", "48 58 46 52 21 00 00 00  04 00 00 00 01 00 00 00\n"},
    {"scanout_resp",
     "48 58 46 52 22 00 00 00  48 00 00 00 01 00 00 00\n"
     "01 00 00 00 56 69 72 74  75 61 6c 2d 32 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00\n"},
    {"subscribe", "48 58 46 52 30 00 01 00  04 00 00 00 01 00 00 00\n"},
    {"subscribe_resp",
     "48 58 46 52 31 00 01 00  08 00 00 00 01 00 00 00\n"
     "01 00 00 00\n"},
    {"hello",
     "48 58 46 52 40 00 00 00  10 00 00 00 02 00 00 00\n"
     "7b 00 00 00 00 00 00 04  00 00 00 00\n"},
    {"hello_resp",
     "48 58 46 52 41 00 00 00  10 00 00 00 02 00 00 00\n"
     "7b 00 00 00 00 00 00 04  00 00 00 00\n"},
    {"hello_token",
     "48 58 46 52 40 00 00 00  1c 00 00 00 02 00 0c 00\n"
     "7b 00 00 00 00 00 00 04  00 00 00 00 73 33 63 72\n"
     "65 74 2d 74 6f 6b 65 6e\n"},
    {"error",
     "48 58 46 52 ff 00 01 00  04 01 00 00 fe ff ff ff\n"
     "6e 6f 20 66 72 61 6d 65  20 79 65 74 20 66 6f 72\n"
     "20 73 63 61 6e 6f 75 74  20 30 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"
     "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n"},
};

/* Hex dump text to bytes. Accepts both the plain form above and docs/protocol.md's
 * "OFFSET  hex ...  |ascii|" lines: an 8-digit first token is an offset, '|' ends the bytes. */
std::vector<uint8_t> parse_hex(const std::string &text) {
  std::vector<uint8_t> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = line.substr(0, line.find('|'));
    std::istringstream tokens(line);
    std::string tok;
    bool first = true;
    while (tokens >> tok) {
      bool offset = first && tok.size() == 8;
      first = false;
      if (offset)
        continue;
      fail_unless(tok.size() == 2, "bad hex token '%s'", tok.c_str());
      out.push_back(uint8_t(std::strtoul(tok.c_str(), nullptr, 16)));
    }
  }
  return out;
}

std::vector<uint8_t> golden(const char *name) {
  for (const Golden &g : kGolden) {
    if (std::strcmp(g.name, name) == 0)
      return parse_hex(g.hex);
  }
  fail("no golden vector %s", name);
  return {};
}

void assert_bytes(const std::vector<uint8_t> &got, const std::vector<uint8_t> &want,
                  const char *what) {
  fail_unless_equals_int(got.size(), want.size());
  for (size_t i = 0; i < want.size(); i++)
    fail_unless(got[i] == want[i], "%s: byte %zu is 0x%02x, want 0x%02x", what, i, got[i], want[i]);
}

/* One complete message through the parser: header and payload, asserting it is well formed. */
Message parse_one(const std::vector<uint8_t> &bytes) {
  Parser p;
  std::vector<Message> msgs;
  Status s = p.feed(bytes.data(), bytes.size(), &msgs);
  fail_unless(s == Status::kOk, "parse: %s", p.error_detail().c_str());
  fail_unless_equals_int(msgs.size(), 1);
  fail_unless(p.at_boundary());
  return std::move(msgs[0]);
}

/* Header + payload straight from bytes, without the parser's checks, for decoder tests. */
struct Raw {
  Header header;
  std::vector<uint8_t> bytes;
  ByteView payload() const {
    return ByteView{bytes.data() + kHeaderSize, bytes.size() - kHeaderSize};
  }
};

Raw raw(std::vector<uint8_t> bytes) {
  Raw r;
  fail_unless(bytes.size() >= kHeaderSize);
  fail_unless(decode_header(bytes.data(), &r.header) == Status::kOk);
  r.bytes = std::move(bytes);
  return r;
}

void put_u32(std::vector<uint8_t> *v, size_t off, uint32_t x) {
  for (int i = 0; i < 4; i++)
    (*v)[off + i] = uint8_t(x >> (8 * i));
}

/* The values each golden vector encodes. */
/* 2x2 AR24 pixels (blue, green / red, white) and one Annex-B blob (SPS, PPS, IDR start). */
const std::vector<uint8_t> &pixels() {
  static const std::vector<uint8_t> v =
      parse_hex("ff 00 00 ff 00 ff 00 ff  00 00 ff ff ff ff ff ff");
  return v;
}

const std::vector<uint8_t> &annexb() {
  static const std::vector<uint8_t> v = parse_hex(
      "00 00 00 01 67 42 c0 1f  00 00 00 01 68 ce 3c 80\n"
      "00 00 00 01 65 88 84 00");
  return v;
}

FrameRequest golden_frame_request() {
  FrameRequest m;
  m.resource_id = 42;
  m.width = 1920;
  m.height = 1080;
  m.format = format::kAR24;
  m.stride = 7680;
  m.pts_ns = 1000000000;
  m.duration_ns = 16666667;
  m.force_keyframe = true;
  return m;
}

FrameRequest golden_frame_request_pixels() {
  FrameRequest m;
  m.width = 2;
  m.height = 2;
  m.format = format::kAR24;
  m.stride = 8;
  m.pts_ns = 16666667;
  m.duration_ns = 16666667;
  m.pixels = ByteView{pixels().data(), pixels().size()};
  return m;
}

FrameResponse golden_frame_response() {
  FrameResponse m;
  m.pts_ns = 1000000000;
  m.dts_ns = 1000000000;
  m.is_keyframe = true;
  m.nals = {ByteView{annexb().data(), annexb().size()}};
  return m;
}

ConfigRequest golden_config() {
  ConfigRequest m;
  m.width = 1920;
  m.height = 1080;
  m.bitrate_bps = 8000000;
  m.fps_num = 60;
  m.fps_den = 1;
  m.profile = 66;
  m.level_x10 = 40;
  m.realtime = true;
  return m;
}

Hello golden_hello() {
  Hello m;
  m.version = 2;
  m.capabilities = cap::kPixelUpload | cap::kResourceId | cap::kExtraFormats |
                   cap::kKeyframeRequest | cap::kConfigResponse | cap::kOneReplyPerFrame;
  m.max_payload = 64u << 20;
  return m;
}

bool same(ByteView a, ByteView b) {
  return a.size == b.size && (a.size == 0 || std::memcmp(a.data, b.data, a.size) == 0);
}

bool same(const ConfigRequest &a, const ConfigRequest &b) {
  return a.width == b.width && a.height == b.height && a.bitrate_bps == b.bitrate_bps &&
         a.fps_num == b.fps_num && a.fps_den == b.fps_den && a.profile == b.profile &&
         a.level_x10 == b.level_x10 && a.realtime == b.realtime;
}

bool same(const FrameRequest &a, const FrameRequest &b) {
  return a.resource_id == b.resource_id && a.width == b.width && a.height == b.height &&
         a.format == b.format && a.stride == b.stride && a.pts_ns == b.pts_ns &&
         a.duration_ns == b.duration_ns && a.force_keyframe == b.force_keyframe &&
         same(a.pixels, b.pixels);
}

bool same(const FrameResponse &a, const FrameResponse &b) {
  if (a.pts_ns != b.pts_ns || a.dts_ns != b.dts_ns || a.is_keyframe != b.is_keyframe ||
      a.nals.size() != b.nals.size())
    return false;
  for (size_t i = 0; i < a.nals.size(); i++) {
    if (!same(a.nals[i], b.nals[i]))
      return false;
  }
  return true;
}

}  // namespace

GST_START_TEST(test_golden_encode) {
  assert_bytes(encode(golden_frame_request(), 1), golden("frame_request"), "frame_request");
  assert_bytes(encode(golden_frame_request_pixels(), 1), golden("frame_request_pixels"),
               "frame_request_pixels");
  assert_bytes(encode(golden_frame_response(), 1), golden("frame_response"), "frame_response");
  assert_bytes(encode(KeyframeRequest{}, 1), golden("keyframe_req"), "keyframe_req");
  assert_bytes(encode(golden_config(), 1), golden("config_req"), "config_req");
  ConfigResponse applied{golden_config()};
  applied.applied.level_x10 = 42;
  assert_bytes(encode(applied, 1), golden("config_resp"), "config_resp");
  assert_bytes(encode(Ping{}, 7), golden("ping"), "ping");
  assert_bytes(encode(Pong{}, 7), golden("pong"), "pong");
  assert_bytes(encode(EnableScanout{1, 1920, 1080, 60}, 0), golden("enable_scanout"),
               "enable_scanout");
  assert_bytes(encode(DisableScanout{1}, 0), golden("disable_scanout"), "disable_scanout");
  assert_bytes(encode(ScanoutResponse{1, true, "Virtual-2"}, 0), golden("scanout_resp"),
               "scanout_resp");
  assert_bytes(encode(Subscribe{1}, 1), golden("subscribe"), "subscribe");
  assert_bytes(encode(SubscribeResponse{1, true}, 1), golden("subscribe_resp"), "subscribe_resp");
  assert_bytes(encode(golden_hello(), 0), golden("hello"), "hello");
  HelloResponse resp = negotiate(golden_hello(), cap::kAllKnown, kDefaultMaxPayload);
  assert_bytes(encode(resp, 0), golden("hello_resp"), "hello_resp");
  assert_bytes(encode(Error{error_code::kResourceNotFound, "no frame yet for scanout 0"}, 1),
               golden("error"), "error");
  /* The zero-copy prefix is the first 56 bytes of the same message. */
  std::vector<uint8_t> full = golden("frame_request_pixels");
  std::vector<uint8_t> prefix =
      encode_frame_request_prefix(golden_frame_request_pixels(), 1, pixels().size());
  assert_bytes(prefix, std::vector<uint8_t>(full.begin(), full.begin() + 56), "prefix");
}
GST_END_TEST;

GST_START_TEST(test_golden_decode) {
  {
    Message m = parse_one(golden("frame_request"));
    fail_unless(m.header.type == MsgType::kFrameRequest);
    fail_unless_equals_int(m.header.session_id, 1);
    FrameRequest r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(same(r, golden_frame_request()));
  }
  {
    Message m = parse_one(golden("frame_request_pixels"));
    fail_unless_equals_int(m.header.flags, kFlagPixelData);
    FrameRequest r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(same(r, golden_frame_request_pixels()));
    /* The pixel view points into the message's own payload: no copy. */
    fail_unless(r.pixels.data == m.payload.data() + kFrameRequestSize);
  }
  {
    Message m = parse_one(golden("frame_response"));
    FrameResponse r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(same(r, golden_frame_response()));
  }
  {
    Message m = parse_one(golden("keyframe_req"));
    KeyframeRequest r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
  }
  {
    Message m = parse_one(golden("config_req"));
    ConfigRequest r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(same(r, golden_config()));
  }
  {
    Message m = parse_one(golden("config_resp"));
    ConfigResponse r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless_equals_int(r.applied.level_x10, 42);
    fail_unless_equals_int(r.applied.bitrate_bps, 8000000);
  }
  {
    Message m = parse_one(golden("ping"));
    Ping r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless_equals_int(m.header.session_id, 7);
    Message pong = parse_one(golden("pong"));
    Pong r2;
    fail_unless(decode(pong.header, pong.view(), &r2) == Status::kOk);
  }
  {
    Message m = parse_one(golden("enable_scanout"));
    EnableScanout r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(r.scanout_id == 1 && r.width == 1920 && r.height == 1080 && r.refresh_hz == 60);
    Message d = parse_one(golden("disable_scanout"));
    DisableScanout r2;
    fail_unless(decode(d.header, d.view(), &r2) == Status::kOk);
    fail_unless_equals_int(r2.scanout_id, 1);
  }
  {
    Message m = parse_one(golden("scanout_resp"));
    ScanoutResponse r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(r.scanout_id == 1 && r.success);
    fail_unless_equals_string(r.connector.c_str(), "Virtual-2");
  }
  {
    Message m = parse_one(golden("subscribe"));
    Subscribe r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless_equals_int(r.scanout_id, 1);
    Message s = parse_one(golden("subscribe_resp"));
    SubscribeResponse r2;
    fail_unless(decode(s.header, s.view(), &r2) == Status::kOk);
    fail_unless(r2.scanout_id == 1 && r2.success);
  }
  {
    Message m = parse_one(golden("hello"));
    Hello r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless(r.version == 2 && r.capabilities == golden_hello().capabilities &&
                r.max_payload == 64u << 20);
    Message s = parse_one(golden("hello_resp"));
    HelloResponse r2;
    fail_unless(decode(s.header, s.view(), &r2) == Status::kOk);
    fail_unless(r2.version == 2 && r2.capabilities == 0x7b && r2.max_payload == 64u << 20);
  }
  {
    Message m = parse_one(golden("error"));
    Error r;
    fail_unless(decode(m.header, m.view(), &r) == Status::kOk);
    fail_unless_equals_int(r.code, error_code::kResourceNotFound);
    fail_unless_equals_string(r.message.c_str(), "no frame yet for scanout 0");
  }
}
GST_END_TEST;

/* docs/protocol.md shows each golden vector after a "<!-- golden: NAME -->" line, in the next
 * fenced block. Every one must be there, with these exact bytes. */
GST_START_TEST(test_docs_match_golden) {
  const char *path = g_getenv("HXFR_PROTOCOL_DOC");
  if (!path || !*path) {
    GST_INFO("HXFR_PROTOCOL_DOC not set: docs/protocol.md not checked");
    return;
  }
  std::ifstream in(path);
  fail_unless(in.good(), "cannot read %s", path);
  std::map<std::string, std::string> docs;
  std::string line, name, block;
  bool in_block = false;
  while (std::getline(in, line)) {
    const std::string marker = "<!-- golden: ";
    if (line.rfind(marker, 0) == 0) {
      name = line.substr(marker.size(), line.find(' ', marker.size()) - marker.size());
      continue;
    }
    if (line.rfind("```", 0) == 0) {
      if (in_block && !name.empty()) {
        fail_unless(docs.count(name) == 0, "golden %s twice in the docs", name.c_str());
        docs[name] = block;
        name.clear();
      }
      in_block = !in_block;
      block.clear();
      continue;
    }
    if (in_block)
      block += line + "\n";
  }
  for (const Golden &g : kGolden) {
    fail_unless(docs.count(g.name) == 1, "docs/protocol.md lacks golden %s", g.name);
    assert_bytes(parse_hex(docs[g.name]), parse_hex(g.hex), g.name);
  }
  fail_unless_equals_int(docs.size(), std::size(kGolden));
}
GST_END_TEST;

GST_START_TEST(test_round_trips) {
  std::mt19937 rng(1234);
  auto u32 = [&rng]() { return uint32_t(rng()); };
  auto i64 = [&rng]() { return int64_t(uint64_t(rng()) << 32 | rng()); };
  for (int iter = 0; iter < 200; iter++) {
    uint16_t session = uint16_t(rng());
    {
      FrameRequest m;
      m.resource_id = u32();
      m.width = u32();
      m.height = u32();
      m.format = u32();
      m.stride = u32();
      m.pts_ns = i64();
      m.duration_ns = i64();
      m.force_keyframe = rng() & 1;
      Message msg = parse_one(encode(m, session));
      FrameRequest back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(same(m, back));
      fail_unless_equals_int(msg.header.session_id, session);
      fail_unless_equals_int(msg.header.flags, 0);
    }
    {
      /* Pixel upload of a random small frame in a random known format. */
      const uint32_t formats[] = {format::kAR24, format::kAB24, format::kXR24,
                                  format::kXB24, format::kNV12, format::kYU12};
      FrameRequest m;
      m.format = formats[rng() % 6];
      m.width = 1 + rng() % 40;
      m.height = 1 + rng() % 40;
      m.stride = *min_stride(m.format, m.width) + rng() % 9;
      std::vector<uint8_t> pixels(*pixel_bytes_needed(m.format, m.width, m.height, m.stride) +
                                  rng() % 3);
      for (uint8_t &b : pixels)
        b = uint8_t(rng());
      m.pixels = ByteView{pixels.data(), pixels.size()};
      Message msg = parse_one(encode(m, session));
      FrameRequest back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(same(m, back));
    }
    {
      FrameResponse m;
      m.pts_ns = i64();
      m.dts_ns = i64();
      m.is_keyframe = rng() & 1;
      std::vector<std::vector<uint8_t>> storage(rng() % 5); /* 0 NALs is valid too */
      for (auto &nal : storage) {
        nal.resize(rng() % 50); /* an empty NAL as well */
        for (uint8_t &b : nal)
          b = uint8_t(rng());
        m.nals.push_back(ByteView{nal.data(), nal.size()});
      }
      Message msg = parse_one(encode(m, session));
      FrameResponse back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(same(m, back));
    }
    {
      ConfigRequest m;
      m.width = u32();
      m.height = u32();
      m.bitrate_bps = u32();
      m.fps_num = u32();
      m.fps_den = u32();
      m.profile = uint8_t(rng());
      m.level_x10 = uint8_t(rng());
      m.realtime = rng() & 1;
      Message msg = parse_one(encode(m, session));
      ConfigRequest back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(same(m, back));
      Message msg2 = parse_one(encode(ConfigResponse{m}, session));
      ConfigResponse back2;
      fail_unless(decode(msg2.header, msg2.view(), &back2) == Status::kOk);
      fail_unless(same(m, back2.applied));
    }
    {
      EnableScanout m{u32(), u32(), u32(), u32()};
      Message msg = parse_one(encode(m, session));
      EnableScanout back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(back.scanout_id == m.scanout_id && back.width == m.width &&
                  back.height == m.height && back.refresh_hz == m.refresh_hz);
    }
    {
      Hello m{uint16_t(2 + rng() % 100), u32(), u32()};
      Message msg = parse_one(encode(m, session));
      Hello back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(back.version == m.version && back.capabilities == m.capabilities &&
                  back.max_payload == m.max_payload);
    }
    {
      Error m{int32_t(u32()), std::string(rng() % 255, 'a' + char(rng() % 26))};
      Message msg = parse_one(encode(m, session));
      Error back;
      fail_unless(decode(msg.header, msg.view(), &back) == Status::kOk);
      fail_unless(back.code == m.code && back.message == m.message);
    }
  }
}
GST_END_TEST;

/* Fixed char[] fields keep a NUL and never split a UTF-8 character. */
GST_START_TEST(test_fixed_strings) {
  Error e{error_code::kInternal, std::string(300, 'x')};
  Message m = parse_one(encode(e, 0));
  Error back;
  fail_unless(decode(m.header, m.view(), &back) == Status::kOk);
  fail_unless_equals_int(back.message.size(), 255);
  fail_unless_equals_int(m.payload.data()[4 + 255], 0);
  /* 254 ASCII bytes then a 2-byte character: it would need bytes 254-255, so it is dropped. */
  e.message = std::string(254, 'y') + "\xc3\xa9";
  m = parse_one(encode(e, 0));
  fail_unless(decode(m.header, m.view(), &back) == Status::kOk);
  fail_unless_equals_int(back.message.size(), 254);
  ScanoutResponse s{3, false, std::string(100, 'c')};
  m = parse_one(encode(s, 0));
  ScanoutResponse sback;
  fail_unless(decode(m.header, m.view(), &sback) == Status::kOk);
  fail_unless_equals_int(sback.connector.size(), 63);
  fail_if(sback.success);
  /* A peer that fills the whole field (no NUL) still gets its text through, bounded. */
  std::vector<uint8_t> full = encode(ScanoutResponse{1, true, ""}, 0);
  std::memset(full.data() + kHeaderSize + 8, 'z', kConnectorSize);
  Raw r = raw(full);
  fail_unless(decode(r.header, r.payload(), &sback) == Status::kOk);
  fail_unless_equals_int(sback.connector.size(), 64);
  /* Bytes after the NUL (Helix's early host left stack garbage there) are ignored. */
  full = golden("scanout_resp");
  full[kHeaderSize + 8 + 20] = 0x7f;
  r = raw(full);
  fail_unless(decode(r.header, r.payload(), &sback) == Status::kOk);
  fail_unless_equals_string(sback.connector.c_str(), "Virtual-2");
}
GST_END_TEST;

/* Reserved bytes and non-0/1 booleans from a peer are accepted (Helix never checks them), and
 * we always send zeros and 0/1. */
GST_START_TEST(test_reserved_and_booleans) {
  std::vector<uint8_t> b = golden("frame_request");
  b[kHeaderSize + 36] = 0x80; /* force_keyframe */
  for (int i = 37; i < 44; i++)
    b[kHeaderSize + i] = 0xaa; /* reserved[7] */
  Raw r = raw(b);
  FrameRequest m;
  fail_unless(decode(r.header, r.payload(), &m) == Status::kOk);
  fail_unless(m.force_keyframe);
  assert_bytes(encode(m, 1), golden("frame_request"), "re-encoded");
  b = golden("subscribe_resp");
  put_u32(&b, kHeaderSize + 4, 7);
  r = raw(b);
  SubscribeResponse s;
  fail_unless(decode(r.header, r.payload(), &s) == Status::kOk);
  fail_unless(s.success);
}
GST_END_TEST;

GST_START_TEST(test_decode_wrong_type_and_size) {
  Raw ping = raw(golden("ping"));
  Pong pong;
  fail_unless(decode(ping.header, ping.payload(), &pong) == Status::kWrongType);
  Raw sub = raw(golden("subscribe"));
  DisableScanout dis;
  fail_unless(decode(sub.header, sub.payload(), &dis) == Status::kWrongType);
  /* A payload view that disagrees with payload_size is refused, not read past. */
  Subscribe s;
  ByteView shorter{sub.payload().data, 3};
  fail_unless(decode(sub.header, shorter, &s) == Status::kBadPayloadSize);
  /* A fixed-size type with another payload_size, even when the bytes are there. */
  std::vector<uint8_t> b = golden("subscribe");
  b.push_back(0);
  put_u32(&b, 8, 5);
  Raw longer = raw(b);
  fail_unless(decode(longer.header, longer.payload(), &s) == Status::kBadPayloadSize);
  fail_unless(validate(longer.header, longer.payload()) == Status::kBadPayloadSize);
}
GST_END_TEST;

GST_START_TEST(test_pixel_data_malformed) {
  FrameRequest m = golden_frame_request_pixels();
  std::vector<uint8_t> b = encode(m, 1);
  Raw r = raw(b);
  FrameRequest out;
  fail_unless(decode(r.header, r.payload(), &out) == Status::kOk);
  /* Flag set but no pixel bytes. */
  std::vector<uint8_t> bad = golden("frame_request");
  bad[5] = kFlagPixelData;
  r = raw(bad);
  fail_unless(check_header(r.header) == Status::kPixelDataMismatch);
  fail_unless(decode(r.header, r.payload(), &out) == Status::kPixelDataMismatch);
  /* Pixel bytes without the flag. */
  bad = b;
  bad[5] = 0;
  r = raw(bad);
  fail_unless(check_header(r.header) == Status::kPixelDataMismatch);
  /* Fewer bytes than 2x2 at stride 8 needs. */
  bad = b;
  bad.pop_back();
  put_u32(&bad, 8, kFrameRequestSize + 15);
  r = raw(bad);
  fail_unless(decode(r.header, r.payload(), &out) == Status::kPixelDataMismatch);
  /* More than needed is fine (Helix sends the whole mapped buffer). */
  bad = b;
  bad.push_back(0);
  put_u32(&bad, 8, kFrameRequestSize + 17);
  r = raw(bad);
  fail_unless(decode(r.header, r.payload(), &out) == Status::kOk);
  /* Stride below width * 4, sides of 0 or over 16384, a huge height whose size would overflow
   * 32 bits: refused without arithmetic trouble. */
  struct Case {
    uint32_t width, height, stride;
    Status want;
  } cases[] = {
      {2, 2, 7, Status::kBadDimensions},
      {0, 2, 8, Status::kBadDimensions},
      {2, 0, 8, Status::kBadDimensions},
      {16385, 1, 65540, Status::kBadDimensions},
      {1, 16385, 4, Status::kBadDimensions},
      {16384, 16384, 65536, Status::kPixelDataMismatch},
      {1, 4, 0xffffffff, Status::kPixelDataMismatch},
  };
  for (const Case &c : cases) {
    bad = b;
    put_u32(&bad, kHeaderSize + 4, c.width);
    put_u32(&bad, kHeaderSize + 8, c.height);
    put_u32(&bad, kHeaderSize + 16, c.stride);
    r = raw(bad);
    fail_unless(decode(r.header, r.payload(), &out) == c.want, "%ux%u stride %u: %s", c.width,
                c.height, c.stride, status_name(decode(r.header, r.payload(), &out)));
  }
  /* A format we do not know the layout of passes the decoder: the server answers ERROR. */
  bad = b;
  put_u32(&bad, kHeaderSize + 12, 0x20203859 /* "Y8  " */);
  r = raw(bad);
  fail_unless(decode(r.header, r.payload(), &out) == Status::kOk);
}
GST_END_TEST;

GST_START_TEST(test_pixel_layouts) {
  /* Packed RGB: stride x height. */
  fail_unless_equals_uint64(*pixel_bytes_needed(format::kXR24, 1920, 1080, 7680), 8294400);
  fail_unless(!pixel_bytes_needed(format::kAB24, 1920, 1080, 7679));
  /* NV12: Y then interleaved UV, both with the stride; odd sides round the chroma up. */
  fail_unless_equals_uint64(*pixel_bytes_needed(format::kNV12, 1920, 1080, 1920), 3110400);
  fail_unless_equals_int(*min_stride(format::kNV12, 5), 6);
  fail_unless_equals_uint64(*pixel_bytes_needed(format::kNV12, 5, 3, 6), 6 * 3 + 6 * 2);
  /* I420: Y, then U and V with stride ceil(stride / 2). */
  fail_unless_equals_uint64(*pixel_bytes_needed(format::kYU12, 1920, 1080, 1920), 3110400);
  fail_unless_equals_uint64(*pixel_bytes_needed(format::kYU12, 5, 3, 5), 5 * 3 + 2 * 3 * 2);
  fail_unless(!min_stride(0x12345678, 10));
}
GST_END_TEST;

GST_START_TEST(test_nal_list_malformed) {
  std::vector<uint8_t> b = golden("frame_response");
  const size_t count_at = kHeaderSize + 20, size_at = kHeaderSize + 24;
  FrameResponse out;
  struct Case {
    uint32_t count, first_size;
    Status want;
  } cases[] = {
      {1, 24, Status::kOk},
      {0xffffffff, 24, Status::kNalOverrun}, /* refused before any allocation */
      {7, 24, Status::kNalOverrun},          /* passes the count check, runs out of bytes */
      {2, 24, Status::kNalOverrun},          /* second size field missing */
      {1, 25, Status::kNalOverrun},          /* one byte past the payload */
      {1, 0xffffffff, Status::kNalOverrun},
      {1, 23, Status::kNalOverrun}, /* one byte left over */
      {0, 24, Status::kNalOverrun}, /* 28 bytes left over */
  };
  for (const Case &c : cases) {
    std::vector<uint8_t> bad = b;
    put_u32(&bad, count_at, c.count);
    put_u32(&bad, size_at, c.first_size);
    Raw r = raw(bad);
    Status s = decode(r.header, r.payload(), &out);
    fail_unless(s == c.want, "count %u size %u: %s", c.count, c.first_size, status_name(s));
    fail_unless(validate(r.header, r.payload()) == c.want);
  }
  /* Shorter than the 24 fixed bytes. */
  std::vector<uint8_t> shortb(b.begin(), b.begin() + kHeaderSize + 23);
  put_u32(&shortb, 8, 23);
  Raw r = raw(shortb);
  fail_unless(check_header(r.header) == Status::kBadPayloadSize);
  fail_unless(decode(r.header, r.payload(), &out) == Status::kBadPayloadSize);
  /* No NALs at all, exactly 24 bytes: valid (an encoder that produced nothing). */
  FrameResponse empty;
  Message m = parse_one(encode(empty, 0));
  fail_unless(decode(m.header, m.view(), &out) == Status::kOk);
  fail_unless(out.nals.empty());
}
GST_END_TEST;

GST_START_TEST(test_hello) {
  /* Version: the lower of both; capabilities: only what both understand. */
  Hello client{7, cap::kPixelUpload | cap::kSubscribe | (1u << 31), 1000};
  HelloResponse r = negotiate(client, cap::kPixelUpload | cap::kResourceId, 4096);
  fail_unless_equals_int(r.version, kProtocolVersion);
  fail_unless_equals_int(r.capabilities, cap::kPixelUpload);
  fail_unless_equals_int(r.max_payload, 4096);
  /* A HELLO claiming version 0 or 1 makes no sense (v1 has no HELLO). */
  std::vector<uint8_t> b = golden("hello");
  b[kHeaderSize] = 1;
  Raw raw1 = raw(b);
  Hello h;
  fail_unless(decode(raw1.header, raw1.payload(), &h) == Status::kBadVersion);
  b = golden("hello_resp");
  b[kHeaderSize] = 0;
  raw1 = raw(b);
  HelloResponse hr;
  fail_unless(decode(raw1.header, raw1.payload(), &hr) == Status::kBadVersion);
  /* A later version may append fields: they are skipped, up to 256 bytes in all. */
  b = golden("hello");
  b.insert(b.end(), 240, 0xee);
  put_u32(&b, 8, 256);
  raw1 = raw(b);
  fail_unless(check_header(raw1.header) == Status::kOk);
  fail_unless(decode(raw1.header, raw1.payload(), &h) == Status::kOk);
  fail_unless_equals_int(h.capabilities, golden_hello().capabilities);
  b.push_back(0);
  put_u32(&b, 8, 257);
  raw1 = raw(b);
  fail_unless(check_header(raw1.header) == Status::kBadPayloadSize);
  b = golden("hello");
  b.pop_back();
  put_u32(&b, 8, 15);
  raw1 = raw(b);
  fail_unless(check_header(raw1.header) == Status::kBadPayloadSize);
  fail_unless(decode(raw1.header, raw1.payload(), &h) == Status::kBadPayloadSize);
}
GST_END_TEST;

/* The token of our HELLO: length at offset 2, bytes after the 16 fixed ones; bounded; compared
 * in constant time. */
GST_START_TEST(test_hello_token) {
  Hello with = golden_hello();
  with.token = "s3cret-token";
  assert_bytes(encode(with, 0), golden("hello_token"), "hello_token");
  Message m = parse_one(golden("hello_token"));
  Hello back;
  fail_unless(decode(m.header, m.view(), &back) == Status::kOk);
  fail_unless(back.token == "s3cret-token");
  fail_unless_equals_int(back.capabilities, golden_hello().capabilities);
  /* Without a token nothing changes: the plain golden HELLO decodes with an empty one. */
  m = parse_one(golden("hello"));
  back.token = "stale";
  fail_unless(decode(m.header, m.view(), &back) == Status::kOk);
  fail_unless(back.token.empty());
  /* A peer that predates tokens reads the same 16 bytes and ignores the rest. */
  HelloResponse as_resp;
  Raw r = raw(golden("hello_token"));
  r.bytes[4] = uint8_t(MsgType::kHelloResponse);
  r.header.type = MsgType::kHelloResponse;
  fail_unless(decode(r.header, r.payload(), &as_resp) == Status::kOk);
  fail_unless_equals_int(as_resp.max_payload, 64u << 20);
  /* Any bytes, up to kMaxTokenSize; one more cannot be encoded. */
  with.token = std::string(kMaxTokenSize, '\0');
  with.token[5] = '\xff';
  m = parse_one(encode(with, 0));
  fail_unless(decode(m.header, m.view(), &back) == Status::kOk);
  fail_unless(back.token == with.token);
  with.token.push_back('x');
  fail_unless(encode(with, 0).empty());
  /* A length the payload does not hold, or over the bound, is refused. */
  std::vector<uint8_t> b = golden("hello_token");
  b[kHeaderSize + 2] = 13;
  r = raw(b);
  fail_unless(decode(r.header, r.payload(), &back) == Status::kBadPayloadSize);
  b = golden("hello_token");
  b.resize(kHeaderSize + kHelloSize + 200, 'a');
  put_u32(&b, 8, kHelloSize + 200);
  b[kHeaderSize + 2] = 200;
  r = raw(b);
  fail_unless(check_header(r.header) == Status::kOk);
  fail_unless(decode(r.header, r.payload(), &back) == Status::kBadPayloadSize);
  /* Trailing bytes after the token are a later version's and ignored. */
  b = golden("hello_token");
  b.insert(b.end(), 5, 0xee);
  put_u32(&b, 8, 28 + 5);
  r = raw(b);
  fail_unless(decode(r.header, r.payload(), &back) == Status::kOk);
  fail_unless(back.token == "s3cret-token");
  /* Equality. */
  fail_unless(tokens_equal("abc", "abc"));
  fail_unless(!tokens_equal("abc", "abd"));
  fail_unless(!tokens_equal("abc", "abcd"));
  fail_unless(!tokens_equal("", "a"));
  fail_unless(tokens_equal("", ""));
  fail_unless(!tokens_equal(std::string(200, 'a'), std::string(200, 'a') + "b"));
  fail_unless(!tokens_equal(std::string("a\0", 2), "a"));
}
GST_END_TEST;

GST_START_TEST(test_type_values) {
  /* Helix's values (helix-frame-export.h); HELLO takes two that Helix does not use. */
  fail_unless_equals_int(int(MsgType::kFrameRequest), 0x01);
  fail_unless_equals_int(int(MsgType::kFrameResponse), 0x02);
  fail_unless_equals_int(int(MsgType::kKeyframeRequest), 0x03);
  fail_unless_equals_int(int(MsgType::kConfigRequest), 0x04);
  fail_unless_equals_int(int(MsgType::kConfigResponse), 0x05);
  fail_unless_equals_int(int(MsgType::kPing), 0x10);
  fail_unless_equals_int(int(MsgType::kPong), 0x11);
  fail_unless_equals_int(int(MsgType::kEnableScanout), 0x20);
  fail_unless_equals_int(int(MsgType::kDisableScanout), 0x21);
  fail_unless_equals_int(int(MsgType::kScanoutResponse), 0x22);
  fail_unless_equals_int(int(MsgType::kSubscribe), 0x30);
  fail_unless_equals_int(int(MsgType::kSubscribeResponse), 0x31);
  fail_unless_equals_int(int(MsgType::kHello), 0x40);
  fail_unless_equals_int(int(MsgType::kHelloResponse), 0x41);
  fail_unless_equals_int(int(MsgType::kError), 0xff);
  fail_unless_equals_string(msg_type_name(MsgType(0x42)), "UNKNOWN");
  fail_unless_equals_string(msg_type_name(MsgType::kHelloResponse), "HELLO_RESP");
  /* "HXFR" in memory. */
  uint8_t h[kHeaderSize];
  encode_header(Header{MsgType::kPing, 0, 0, 0}, h);
  fail_unless(std::memcmp(h, "HXFR", 4) == 0);
}
GST_END_TEST;

GST_START_TEST(test_encode_limits) {
  /* Sizes that a u32 payload_size cannot describe give an empty result, and the encoder
   * never reads the (fake) data to find out. */
  static const uint8_t byte = 0;
  if (sizeof(size_t) > 4) {
    fail_unless(
        encode_frame_request_prefix(FrameRequest{}, 0, size_t(std::numeric_limits<uint32_t>::max()))
            .empty());
    FrameRequest big;
    big.pixels = ByteView{&byte, size_t(1) << 32};
    fail_unless(encode(big, 0).empty());
  }
  FrameResponse resp;
  resp.nals = {ByteView{&byte, 0xfffffff0u}, ByteView{&byte, 0x100}};
  fail_unless(encode(resp, 0).empty());
  /* The largest prefix that fits. */
  std::vector<uint8_t> p = encode_frame_request_prefix(
      FrameRequest{}, 0, std::numeric_limits<uint32_t>::max() - kFrameRequestSize);
  fail_unless_equals_int(p.size(), kHeaderSize + kFrameRequestSize);
}
GST_END_TEST;

static Suite *hxfr_protocol_suite() {
  Suite *s = suite_create("hxfr-protocol");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_golden_encode);
  tcase_add_test(tc, test_golden_decode);
  tcase_add_test(tc, test_docs_match_golden);
  tcase_add_test(tc, test_round_trips);
  tcase_add_test(tc, test_fixed_strings);
  tcase_add_test(tc, test_reserved_and_booleans);
  tcase_add_test(tc, test_decode_wrong_type_and_size);
  tcase_add_test(tc, test_pixel_data_malformed);
  tcase_add_test(tc, test_pixel_layouts);
  tcase_add_test(tc, test_nal_list_malformed);
  tcase_add_test(tc, test_hello);
  tcase_add_test(tc, test_hello_token);
  tcase_add_test(tc, test_type_values);
  tcase_add_test(tc, test_encode_limits);
  return s;
}

GST_CHECK_MAIN(hxfr_protocol);
