/* gst-vmdisplay: libFuzzer target for the HXFR parser and decoders.
 *
 * Built and run by tests/fuzz/run-fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined), with
 * the golden vectors of docs/protocol.md as its seed corpus. The input is a byte stream as a
 * peer would send it. Besides "no crash, no sanitizer report", each run checks properties
 * and traps when one fails:
 *  - the stream split into pieces (sizes drawn from a hash of the input), and received
 *    through prepare()/commit(), gives the same messages and the same final status as in
 *    one piece;
 *  - every message handed out decodes (the parser validated it);
 *  - encode(decode(m)) parses back to a message that encodes to the very same bytes.
 */
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hxfr-parser.h"
#include "hxfr-protocol.h"

using namespace vmd::hxfr;

namespace {

#define CHECK(cond)     \
  do {                  \
    if (!(cond))        \
      __builtin_trap(); \
  } while (0)

/* FNV-1a: a stable seed for the piece sizes, so a crashing input replays the same way. */
uint64_t hash(const uint8_t *data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

struct Rng {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(s >> 33);
  }
};

struct Outcome {
  std::vector<Message> msgs;
  Status status = Status::kOk;
};

bool same_messages(const Outcome &a, const Outcome &b) {
  if (a.status != b.status || a.msgs.size() != b.msgs.size())
    return false;
  for (size_t i = 0; i < a.msgs.size(); i++) {
    const Message &x = a.msgs[i], &y = b.msgs[i];
    if (x.header.type != y.header.type || x.header.flags != y.header.flags ||
        x.header.session_id != y.header.session_id ||
        x.header.payload_size != y.header.payload_size || x.payload.size() != y.payload.size())
      return false;
    if (x.payload.size() && std::memcmp(x.payload.data(), y.payload.data(), x.payload.size()))
      return false;
  }
  return true;
}

Outcome whole(const uint8_t *data, size_t size, uint32_t max_payload) {
  Outcome o;
  Parser p(max_payload);
  o.status = p.feed(data, size, &o.msgs);
  return o;
}

Outcome pieces(const uint8_t *data, size_t size, uint32_t max_payload, Rng *rng) {
  Outcome o;
  Parser p(max_payload);
  size_t off = 0;
  while (off < size && !p.failed()) {
    size_t n = 1 + rng->next() % 17;
    if (n > size - off)
      n = size - off;
    size_t used = p.consume(data + off, n);
    off += used;
    if (p.ready())
      o.msgs.push_back(p.take());
    else if (used == 0)
      break;
  }
  o.status = p.status();
  return o;
}

Outcome zero_copy(const uint8_t *data, size_t size, uint32_t max_payload, Rng *rng) {
  Outcome o;
  Parser p(max_payload);
  size_t off = 0;
  while (off < size && !p.failed()) {
    Parser::Space space = p.prepare();
    CHECK(space.size > 0);
    size_t n = 1 + rng->next() % 64;
    if (n > space.size)
      n = space.size;
    if (n > size - off)
      n = size - off;
    std::memcpy(space.data, data + off, n);
    p.commit(n);
    off += n;
    if (p.ready())
      o.msgs.push_back(p.take());
  }
  o.status = p.status();
  return o;
}

/* Decodes m as T, encodes it again, and checks that this canonical form survives another
 * parse/decode/encode unchanged. */
template <typename T>
void round_trip(const Message &m) {
  T value;
  CHECK(decode(m.header, m.view(), &value) == Status::kOk);
  std::vector<uint8_t> once = encode(value, m.header.session_id);
  CHECK(!once.empty());
  Parser p;
  std::vector<Message> again;
  CHECK(p.feed(once.data(), once.size(), &again) == Status::kOk);
  CHECK(again.size() == 1 && p.at_boundary());
  T value2;
  CHECK(decode(again[0].header, again[0].view(), &value2) == Status::kOk);
  std::vector<uint8_t> twice = encode(value2, again[0].header.session_id);
  CHECK(once == twice);
}

void check_message(const Message &m) {
  CHECK(validate(m.header, m.view()) == Status::kOk);
  switch (m.header.type) {
    case MsgType::kFrameRequest:
      return round_trip<FrameRequest>(m);
    case MsgType::kFrameResponse:
      return round_trip<FrameResponse>(m);
    case MsgType::kKeyframeRequest:
      return round_trip<KeyframeRequest>(m);
    case MsgType::kConfigRequest:
      return round_trip<ConfigRequest>(m);
    case MsgType::kConfigResponse:
      return round_trip<ConfigResponse>(m);
    case MsgType::kPing:
      return round_trip<Ping>(m);
    case MsgType::kPong:
      return round_trip<Pong>(m);
    case MsgType::kEnableScanout:
      return round_trip<EnableScanout>(m);
    case MsgType::kDisableScanout:
      return round_trip<DisableScanout>(m);
    case MsgType::kScanoutResponse:
      return round_trip<ScanoutResponse>(m);
    case MsgType::kSubscribe:
      return round_trip<Subscribe>(m);
    case MsgType::kSubscribeResponse:
      return round_trip<SubscribeResponse>(m);
    case MsgType::kHello:
      return round_trip<Hello>(m);
    case MsgType::kHelloResponse:
      return round_trip<HelloResponse>(m);
    case MsgType::kError:
      return round_trip<Error>(m);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t h = hash(data, size);
  /* Mostly a small maximum (cheap, and the limit itself gets exercised), sometimes the real
   * 64 MiB default: payloads are allocated uninitialised, so a large claim costs nothing. */
  uint32_t max_payload = (h & 7) == 0 ? kDefaultMaxPayload : uint32_t(h >> 8) % 4096;
  Rng rng{h};

  Outcome ref = whole(data, size, max_payload);
  for (const Message &m : ref.msgs)
    check_message(m);
  CHECK(same_messages(ref, pieces(data, size, max_payload, &rng)));
  CHECK(same_messages(ref, zero_copy(data, size, max_payload, &rng)));

  /* The decoders on their own, past the parser's header checks: the first 12 bytes as a
   * header whose payload_size is whatever follows, any type, any size. */
  if (size >= kHeaderSize) {
    Header hdr;
    if (decode_header(data, &hdr) == Status::kOk || (h & 1)) {
      hdr.payload_size = uint32_t(size - kHeaderSize);
      ByteView payload{data + kHeaderSize, size - kHeaderSize};
      if (validate(hdr, payload) == Status::kOk && check_header(hdr) == Status::kOk) {
        Message m;
        m.header = hdr;
        m.payload = Payload(payload.size);
        if (payload.size)
          std::memcpy(m.payload.data(), payload.data, payload.size);
        check_message(m);
      }
    }
  }
  return 0;
}
