/* Unit: the streaming HXFR parser. The same stream of every message type, fed one byte at a
 * time, in random splits (fixed seed) and through the zero-copy prepare/commit path, gives
 * the same messages; every malformed header is refused as soon as its 12 bytes are in,
 * before anything is allocated for the payload; errors are sticky. */
#include "hxfr-parser.h"

#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "hxfr-protocol.h"

/* Last: its fail() macro would break <ios> and any fail() member. */
#include <gst/check/gstcheck.h>

using namespace vmd::hxfr;

namespace {

void put_u32(std::vector<uint8_t> *v, size_t off, uint32_t x) {
  for (int i = 0; i < 4; i++)
    (*v)[off + i] = uint8_t(x >> (8 * i));
}

void append(std::vector<uint8_t> *stream, std::vector<size_t> *ends,
            const std::vector<uint8_t> &msg) {
  stream->insert(stream->end(), msg.begin(), msg.end());
  ends->push_back(stream->size());
}

/* One message of every type, a 64x64 pixel upload, a multi-NAL response and a type nobody
 * knows, back to back; ends[i] is where message i ends. */
struct Stream {
  std::vector<uint8_t> bytes;
  std::vector<size_t> ends;
  std::vector<uint8_t> pixels;
};

Stream make_stream() {
  Stream s;
  s.pixels.resize(64 * 64 * 4);
  for (size_t i = 0; i < s.pixels.size(); i++)
    s.pixels[i] = uint8_t(i * 31 + 7);
  FrameRequest fr;
  fr.resource_id = 9;
  fr.width = 1920;
  fr.height = 1080;
  fr.format = format::kAR24;
  fr.stride = 7680;
  append(&s.bytes, &s.ends, encode(fr, 1));
  FrameRequest up;
  up.width = 64;
  up.height = 64;
  up.format = format::kXR24;
  up.stride = 256;
  up.pixels = ByteView{s.pixels.data(), s.pixels.size()};
  append(&s.bytes, &s.ends, encode(up, 1));
  FrameResponse resp;
  resp.is_keyframe = true;
  resp.nals = {ByteView{s.pixels.data(), 100}, ByteView{s.pixels.data() + 100, 0},
               ByteView{s.pixels.data() + 200, 3}};
  append(&s.bytes, &s.ends, encode(resp, 1));
  append(&s.bytes, &s.ends, encode(KeyframeRequest{}, 1));
  append(&s.bytes, &s.ends, encode(ConfigRequest{1920, 1080, 8000000, 60, 1, 66, 40, true}, 1));
  append(&s.bytes, &s.ends, encode(ConfigResponse{}, 1));
  append(&s.bytes, &s.ends, encode(Ping{}, 3));
  append(&s.bytes, &s.ends, encode(Pong{}, 3));
  append(&s.bytes, &s.ends, encode(EnableScanout{1, 800, 600, 60}, 0));
  append(&s.bytes, &s.ends, encode(DisableScanout{1}, 0));
  append(&s.bytes, &s.ends, encode(ScanoutResponse{1, true, "Virtual-2"}, 0));
  append(&s.bytes, &s.ends, encode(Subscribe{2}, 2));
  append(&s.bytes, &s.ends, encode(SubscribeResponse{2, true}, 2));
  append(&s.bytes, &s.ends, encode(Hello{}, 0));
  append(&s.bytes, &s.ends, encode(HelloResponse{}, 0));
  /* An unknown type with a payload: handed out for the caller to skip, like Helix does. */
  std::vector<uint8_t> unknown = encode(Ping{}, 5);
  unknown[4] = 0x42;
  unknown.insert(unknown.end(), {1, 2, 3, 4, 5});
  put_u32(&unknown, 8, 5);
  append(&s.bytes, &s.ends, unknown);
  append(&s.bytes, &s.ends, encode(Error{error_code::kInternal, "boom"}, 0));
  return s;
}

/* Each message, serialised again, must be exactly its slice of the stream. */
void assert_messages(const Stream &s, const std::vector<Message> &msgs) {
  fail_unless_equals_int(msgs.size(), s.ends.size());
  size_t start = 0;
  for (size_t i = 0; i < msgs.size(); i++) {
    const Message &m = msgs[i];
    uint8_t h[kHeaderSize];
    encode_header(m.header, h);
    fail_unless_equals_int(kHeaderSize + m.payload.size(), s.ends[i] - start);
    fail_unless(std::memcmp(h, s.bytes.data() + start, kHeaderSize) == 0, "header %zu", i);
    if (m.payload.size())
      fail_unless(std::memcmp(m.payload.data(), s.bytes.data() + start + kHeaderSize,
                              m.payload.size()) == 0,
                  "payload %zu", i);
    start = s.ends[i];
  }
}

/* Feeds with consume() in the given chunk sizes (cycled), collecting messages. */
Status run_chunks(Parser *p, const std::vector<uint8_t> &bytes, std::mt19937 *rng, size_t max_chunk,
                  std::vector<Message> *out) {
  size_t off = 0;
  while (off < bytes.size() && !p->failed()) {
    size_t chunk = 1 + (*rng)() % max_chunk;
    if (chunk > bytes.size() - off)
      chunk = bytes.size() - off;
    size_t end = off + chunk;
    while (off < end) {
      size_t n = p->consume(bytes.data() + off, end - off);
      off += n;
      if (p->ready())
        out->push_back(p->take());
      else if (p->failed() || n == 0)
        break;
    }
  }
  return p->status();
}

}  // namespace

GST_START_TEST(test_whole_stream) {
  Stream s = make_stream();
  Parser p;
  std::vector<Message> msgs;
  fail_unless(p.feed(s.bytes.data(), s.bytes.size(), &msgs) == Status::kOk);
  assert_messages(s, msgs);
  fail_unless(p.at_boundary());
  fail_unless(p.error_detail().empty());
  /* The unknown type came through as such. */
  fail_unless_equals_int(int(msgs[15].header.type), 0x42);
  fail_unless(validate(msgs[15].header, msgs[15].view()) == Status::kOk);
}
GST_END_TEST;

GST_START_TEST(test_byte_by_byte) {
  Stream s = make_stream();
  Parser p;
  std::vector<Message> msgs;
  for (size_t i = 0; i < s.bytes.size(); i++) {
    fail_unless_equals_int(p.consume(&s.bytes[i], 1), 1);
    if (p.ready()) {
      /* A message is complete exactly at its last byte, never earlier or later. */
      fail_unless_equals_int(i + 1, s.ends[msgs.size()]);
      msgs.push_back(p.take());
      fail_unless(p.at_boundary());
    } else {
      fail_if(p.failed());
      fail_if(p.at_boundary());
    }
  }
  assert_messages(s, msgs);
}
GST_END_TEST;

GST_START_TEST(test_random_splits) {
  Stream s = make_stream();
  std::mt19937 rng(42);
  for (int iter = 0; iter < 300; iter++) {
    Parser p;
    std::vector<Message> msgs;
    size_t max_chunk = 1 + rng() % (iter < 150 ? 64 : 20000);
    fail_unless(run_chunks(&p, s.bytes, &rng, max_chunk, &msgs) == Status::kOk);
    assert_messages(s, msgs);
    fail_unless(p.at_boundary());
  }
  /* feed() in random pieces gives the same. */
  for (int iter = 0; iter < 100; iter++) {
    Parser p;
    std::vector<Message> msgs;
    size_t off = 0;
    while (off < s.bytes.size()) {
      size_t n = 1 + rng() % 700;
      if (n > s.bytes.size() - off)
        n = s.bytes.size() - off;
      fail_unless(p.feed(s.bytes.data() + off, n, &msgs) == Status::kOk);
      off += n;
    }
    assert_messages(s, msgs);
  }
}
GST_END_TEST;

/* recv() straight into the parser's buffers, in random amounts. */
GST_START_TEST(test_zero_copy) {
  Stream s = make_stream();
  std::mt19937 rng(7);
  /* A few runs in tiny pieces (slow under valgrind), the rest in larger ones. */
  for (int iter = 0; iter < 40; iter++) {
    Parser p;
    std::vector<Message> msgs;
    size_t off = 0;
    while (off < s.bytes.size()) {
      Parser::Space space = p.prepare();
      fail_unless(space.size > 0);
      size_t n = 1 + rng() % (iter < 6 ? 5 : 5000);
      if (n > space.size)
        n = space.size;
      if (n > s.bytes.size() - off)
        n = s.bytes.size() - off;
      std::memcpy(space.data, s.bytes.data() + off, n);
      p.commit(n);
      off += n;
      if (p.ready()) {
        fail_unless_equals_int(p.prepare().size, 0); /* nothing more until it is taken */
        msgs.push_back(p.take());
      }
      fail_if(p.failed());
    }
    assert_messages(s, msgs);
  }
  /* commit() never moves past what prepare() offered. */
  Parser p;
  std::vector<uint8_t> ping = encode(Ping{}, 1);
  Parser::Space space = p.prepare();
  fail_unless_equals_int(space.size, kHeaderSize);
  std::memcpy(space.data, ping.data(), kHeaderSize);
  p.commit(1000);
  fail_unless(p.ready());
  p.commit(5); /* ignored while a message waits */
  fail_unless(p.take().header.type == MsgType::kPing);
  fail_unless(p.at_boundary());
}
GST_END_TEST;

GST_START_TEST(test_bad_magic) {
  std::vector<uint8_t> good = encode(Ping{}, 1);
  std::vector<uint8_t> bytes = good;
  std::vector<uint8_t> bad = encode(Ping{}, 1);
  bad[3] = 'Q'; /* "HXFQ" */
  bytes.insert(bytes.end(), bad.begin(), bad.end());
  bytes.insert(bytes.end(), good.begin(), good.end());
  Parser p;
  std::vector<Message> msgs;
  /* Nothing is decided before the 12th byte of the bad header. */
  for (size_t i = 0; i < 12 + 11; i++) {
    p.consume(&bytes[i], 1);
    if (p.ready())
      msgs.push_back(p.take());
    fail_if(p.failed());
  }
  fail_unless_equals_int(p.consume(&bytes[23], 1), 1);
  fail_unless(p.failed());
  fail_unless(p.status() == Status::kBadMagic);
  fail_unless(std::strstr(p.error_detail().c_str(), "0x51465848") != nullptr, "%s",
              p.error_detail().c_str());
  fail_unless_equals_int(msgs.size(), 1); /* the good message before it was delivered */
  /* Sticky: the rest of the stream is not looked at. */
  fail_unless_equals_int(p.consume(&bytes[24], bytes.size() - 24), 0);
  fail_unless(p.prepare().size == 0);
  fail_if(p.ready());
  fail_unless(p.take().payload.size() == 0);
  fail_unless(p.feed(bytes.data(), bytes.size(), &msgs) == Status::kBadMagic);
  fail_unless_equals_int(msgs.size(), 1);
  /* Byte-swapped magic (a big-endian sender) is just as bad. */
  std::vector<uint8_t> swapped = good;
  std::swap(swapped[0], swapped[3]);
  std::swap(swapped[1], swapped[2]);
  Parser q;
  fail_unless(q.feed(swapped.data(), swapped.size(), &msgs) == Status::kBadMagic);
}
GST_END_TEST;

/* A stream cut anywhere: only whole messages come out, and at_boundary() tells a clean end
 * from a cut one. */
GST_START_TEST(test_truncated) {
  Stream s = make_stream();
  for (size_t cut = 0; cut <= s.bytes.size(); cut += (cut < 400 ? 1 : 97)) {
    Parser p;
    std::vector<Message> msgs;
    fail_unless(p.feed(s.bytes.data(), cut, &msgs) == Status::kOk);
    size_t whole = 0;
    while (whole < s.ends.size() && s.ends[whole] <= cut)
      whole++;
    fail_unless_equals_int(msgs.size(), whole);
    bool boundary = cut == 0 || (whole > 0 && s.ends[whole - 1] == cut);
    fail_unless(p.at_boundary() == boundary, "cut at %zu", cut);
  }
  Parser p;
  std::vector<Message> msgs;
  fail_unless(p.feed(s.bytes.data(), s.bytes.size() - 1, &msgs) == Status::kOk);
  fail_unless_equals_int(msgs.size(), s.ends.size() - 1);
  fail_if(p.at_boundary());
}
GST_END_TEST;

GST_START_TEST(test_oversized) {
  /* Configurable maximum: exactly max passes, one more is refused at the header. */
  std::vector<uint8_t> msg = encode(Ping{}, 0);
  msg[4] = 0x42; /* unknown type: any size up to the maximum */
  msg.resize(kHeaderSize + 100, 0xab);
  put_u32(&msg, 8, 100);
  Parser ok(100);
  std::vector<Message> msgs;
  fail_unless(ok.feed(msg.data(), msg.size(), &msgs) == Status::kOk);
  fail_unless_equals_int(msgs.size(), 1);
  put_u32(&msg, 8, 101);
  Parser bad(100);
  fail_unless(bad.feed(msg.data(), kHeaderSize, &msgs) == Status::kPayloadTooLarge);
  fail_unless(std::strstr(bad.error_detail().c_str(), "101") != nullptr);
  fail_unless_equals_int(bad.max_payload(), 100);

  /* Default 64 MiB: a pixel upload one byte over is refused from its header alone; one of
   * exactly 64 MiB is accepted and waits for its bytes. */
  FrameRequest fr;
  fr.width = 4096;
  fr.height = 4096;
  fr.format = format::kAR24;
  fr.stride = 16384;
  std::vector<uint8_t> prefix =
      encode_frame_request_prefix(fr, 1, kDefaultMaxPayload - kFrameRequestSize + 1);
  Parser big;
  fail_unless(big.feed(prefix.data(), prefix.size(), &msgs) == Status::kPayloadTooLarge);
  prefix = encode_frame_request_prefix(fr, 1, kDefaultMaxPayload - kFrameRequestSize);
  Parser fits;
  fail_unless(fits.feed(prefix.data(), prefix.size(), &msgs) == Status::kOk);
  fail_unless_equals_int(fits.prepare().size, kDefaultMaxPayload - kFrameRequestSize);
  /* payload_size 0xffffffff never turns into an allocation. */
  put_u32(&prefix, 8, 0xffffffff);
  Parser huge;
  fail_unless(huge.feed(prefix.data(), kHeaderSize, &msgs) == Status::kPayloadTooLarge);
  /* With a maximum of 0 only header-only messages get through. */
  Parser zero(0);
  std::vector<uint8_t> ping = encode(Ping{}, 0);
  fail_unless(zero.feed(ping.data(), ping.size(), &msgs) == Status::kOk);
  std::vector<uint8_t> sub = encode(Subscribe{1}, 1);
  fail_unless(zero.feed(sub.data(), sub.size(), &msgs) == Status::kPayloadTooLarge);
}
GST_END_TEST;

/* Fixed-size types with any other payload_size are refused at the header: a v1 peer reads
 * exactly the fixed size, so anything else would desynchronise it. */
GST_START_TEST(test_wrong_fixed_sizes) {
  struct Case {
    std::vector<uint8_t> msg;
    uint32_t size;
  } cases[] = {
      {encode(KeyframeRequest{}, 0), 0},
      {encode(ConfigRequest{}, 0), 28},
      {encode(ConfigResponse{}, 0), 28},
      {encode(Ping{}, 0), 0},
      {encode(Pong{}, 0), 0},
      {encode(EnableScanout{}, 0), 16},
      {encode(DisableScanout{}, 0), 4},
      {encode(ScanoutResponse{}, 0), 72},
      {encode(Subscribe{}, 0), 4},
      {encode(SubscribeResponse{}, 0), 8},
      {encode(Error{}, 0), 260},
  };
  for (Case &c : cases) {
    fail_unless_equals_int(c.msg.size(), kHeaderSize + c.size);
    for (int64_t delta : {-1, 1, 4}) {
      if (int64_t(c.size) + delta < 0)
        continue;
      std::vector<uint8_t> m = c.msg;
      uint32_t size = uint32_t(int64_t(c.size) + delta);
      m.resize(kHeaderSize + size, 0);
      put_u32(&m, 8, size);
      Parser p;
      std::vector<Message> msgs;
      /* The header alone is enough to refuse it. */
      fail_unless(p.feed(m.data(), kHeaderSize, &msgs) == Status::kBadPayloadSize,
                  "type 0x%02x size %u: %s", m[4], size, status_name(p.status()));
      fail_unless(msgs.empty());
    }
  }
  /* FRAME_REQUEST: 44 without the pixel flag, more than 44 with it; FRAME_RESPONSE >= 24. */
  std::vector<uint8_t> fr = encode(FrameRequest{}, 0);
  for (uint32_t size : {0u, 43u, 45u}) {
    put_u32(&fr, 8, size);
    Parser p;
    std::vector<Message> msgs;
    fail_unless(p.feed(fr.data(), kHeaderSize, &msgs) == Status::kPixelDataMismatch);
  }
  fr[5] = kFlagPixelData;
  put_u32(&fr, 8, 44);
  Parser p;
  std::vector<Message> msgs;
  fail_unless(p.feed(fr.data(), kHeaderSize, &msgs) == Status::kPixelDataMismatch);
  std::vector<uint8_t> resp = encode(FrameResponse{}, 0);
  put_u32(&resp, 8, 23);
  Parser q;
  fail_unless(q.feed(resp.data(), kHeaderSize, &msgs) == Status::kBadPayloadSize);
}
GST_END_TEST;

/* Malformed payloads are caught once the payload is complete, and never handed out. */
GST_START_TEST(test_malformed_payloads) {
  std::vector<Message> msgs;
  /* A NAL size running past the payload. */
  uint8_t nal[8] = {0, 0, 0, 1, 0x65, 1, 2, 3};
  FrameResponse resp;
  resp.nals = {ByteView{nal, sizeof nal}};
  std::vector<uint8_t> m = encode(resp, 0);
  put_u32(&m, kHeaderSize + 24, 9);
  Parser p;
  fail_unless(p.feed(m.data(), m.size() - 1, &msgs) == Status::kOk); /* not complete yet */
  fail_unless(p.feed(m.data() + m.size() - 1, 1, &msgs) == Status::kNalOverrun);
  fail_unless(msgs.empty());
  /* A huge NAL count. */
  m = encode(resp, 0);
  put_u32(&m, kHeaderSize + 20, 0x40000000);
  Parser q;
  fail_unless(q.feed(m.data(), m.size(), &msgs) == Status::kNalOverrun);
  /* Pixel data too short for its width, height and stride. */
  std::vector<uint8_t> pixels(16);
  FrameRequest fr;
  fr.width = 2;
  fr.height = 3;
  fr.format = format::kAB24;
  fr.stride = 8;
  fr.pixels = ByteView{pixels.data(), pixels.size()};
  m = encode(fr, 0);
  Parser r;
  fail_unless(r.feed(m.data(), m.size(), &msgs) == Status::kPixelDataMismatch);
  /* HELLO from a peer that claims version 1. */
  m = encode(Hello{1, 0, 0}, 0);
  Parser h;
  fail_unless(h.feed(m.data(), m.size(), &msgs) == Status::kBadVersion);
  fail_unless(msgs.empty());
}
GST_END_TEST;

/* The v1/v2 contract: a receiver that meets a type it does not know skips payload_size bytes
 * and goes on, which is what Helix's host does with HELLO. */
GST_START_TEST(test_unknown_types_skipped) {
  std::vector<uint8_t> bytes;
  for (int type : {0x00, 0x06, 0x12, 0x42, 0x7f, 0xfe}) {
    std::vector<uint8_t> m = encode(Ping{}, uint16_t(type));
    m[4] = uint8_t(type);
    m[5] = 0xff; /* flags of an unknown type mean nothing to us */
    m.resize(kHeaderSize + type % 7, uint8_t(type));
    put_u32(&m, 8, uint32_t(type % 7));
    bytes.insert(bytes.end(), m.begin(), m.end());
  }
  std::vector<uint8_t> ping = encode(Ping{}, 9);
  bytes.insert(bytes.end(), ping.begin(), ping.end());
  Parser p;
  std::vector<Message> msgs;
  fail_unless(p.feed(bytes.data(), bytes.size(), &msgs) == Status::kOk);
  fail_unless_equals_int(msgs.size(), 7);
  fail_unless(msgs[6].header.type == MsgType::kPing);
  fail_unless_equals_int(msgs[6].header.session_id, 9);
}
GST_END_TEST;

static Suite *hxfr_parser_suite() {
  Suite *s = suite_create("hxfr-parser");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_whole_stream);
  tcase_add_test(tc, test_byte_by_byte);
  tcase_add_test(tc, test_random_splits);
  tcase_add_test(tc, test_zero_copy);
  tcase_add_test(tc, test_bad_magic);
  tcase_add_test(tc, test_truncated);
  tcase_add_test(tc, test_oversized);
  tcase_add_test(tc, test_wrong_fixed_sizes);
  tcase_add_test(tc, test_malformed_payloads);
  tcase_add_test(tc, test_unknown_types_skipped);
  return s;
}

GST_CHECK_MAIN(hxfr_parser);
