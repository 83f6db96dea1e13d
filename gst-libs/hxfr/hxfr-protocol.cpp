/* gst-vmdisplay: HXFR encoders and decoders, field by field, little-endian.
 *
 * Field order and sizes follow Helix's packed structs (see hxfr-protocol.h); docs/protocol.md
 * has the same layouts as byte tables.
 */
#include "hxfr-protocol.h"

#include "hxfr-planes.h"

#include <algorithm>
#include <limits>

#include "hxfr-le.h"

namespace vmd::hxfr {
namespace {

/* Payload size a known fixed-size type must have, or nullopt for variable and unknown types. */
std::optional<uint32_t> fixed_payload_size(MsgType type) {
  switch (type) {
    case MsgType::kKeyframeRequest:
    case MsgType::kPing:
    case MsgType::kPong:
      return 0u;
    case MsgType::kConfigRequest:
    case MsgType::kConfigResponse:
      return kConfigSize;
    case MsgType::kEnableScanout:
      return kEnableScanoutSize;
    case MsgType::kDisableScanout:
      return kDisableScanoutSize;
    case MsgType::kScanoutResponse:
      return kScanoutResponseSize;
    case MsgType::kSubscribe:
      return kSubscribeSize;
    case MsgType::kSubscribeResponse:
      return kSubscribeResponseSize;
    case MsgType::kError:
      /* Helix's vsockenc reads exactly 260 bytes after an ERROR header whatever payload_size
       * says, so any other size would desynchronise it. */
      return kErrorSize;
    case MsgType::kFrameRequest:
    case MsgType::kFrameResponse:
    case MsgType::kHello:
    case MsgType::kHelloResponse:
      break;
  }
  return std::nullopt;
}

/* Starts a message: the header, with room reserved for the part of the payload the caller is
 * about to append (not always all of it: a FRAME_REQUEST prefix leaves the pixels out). */
std::vector<uint8_t> begin_reserving(MsgType type, uint8_t flags, uint16_t session_id,
                                     uint32_t payload, size_t reserve_payload) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + reserve_payload);
  le::Writer w(&out);
  w.u32(kMagic);
  w.u8(uint8_t(type));
  w.u8(flags);
  w.u16(session_id);
  w.u32(payload);
  return out;
}

std::vector<uint8_t> begin(MsgType type, uint8_t flags, uint16_t session_id, uint32_t payload) {
  return begin_reserving(type, flags, session_id, payload, payload);
}

/* Common start of every decoder: right type, and the header's size rules. The payload view
 * must be exactly payload_size long (the parser guarantees it; direct callers might not). */
Status check(const Header &h, ByteView payload, MsgType want) {
  if (h.type != want)
    return Status::kWrongType;
  if (payload.size != h.payload_size)
    return Status::kBadPayloadSize;
  return check_header(h, std::numeric_limits<uint32_t>::max());
}

void write_config(le::Writer *w, const ConfigRequest &c) {
  w->u32(c.width);
  w->u32(c.height);
  w->u32(c.bitrate_bps);
  w->u32(c.fps_num);
  w->u32(c.fps_den);
  w->u8(c.profile);
  w->u8(c.level_x10);
  w->u8(c.realtime ? 1 : 0);
  w->zeros(5);
}

void read_config(le::Reader *r, ConfigRequest *c) {
  c->width = r->u32();
  c->height = r->u32();
  c->bitrate_bps = r->u32();
  c->fps_num = r->u32();
  c->fps_den = r->u32();
  c->profile = r->u8();
  c->level_x10 = r->u8();
  c->realtime = r->u8() != 0;
  r->skip(5);
}

void write_frame_request_fields(le::Writer *w, const FrameRequest &m) {
  w->u32(m.resource_id);
  w->u32(m.width);
  w->u32(m.height);
  w->u32(m.format);
  w->u32(m.stride);
  w->i64(m.pts_ns);
  w->i64(m.duration_ns);
  w->u8(m.force_keyframe ? 1 : 0);
  w->zeros(7);
}

/* HELLO and HELLO_RESP share one layout: 16 bytes, then (HELLO only) the token, whose length
 * is in the u16 at offset 2 (0 in HELLO_RESP). */
std::vector<uint8_t> encode_hello(MsgType type, uint16_t version, uint32_t caps,
                                  uint32_t max_payload, uint16_t session_id, ByteView token) {
  std::vector<uint8_t> out = begin(type, 0, session_id, kHelloSize + uint32_t(token.size));
  le::Writer w(&out);
  w.u16(version);
  w.u16(uint16_t(token.size));
  w.u32(caps);
  w.u32(max_payload);
  w.u32(0);
  w.bytes(token);
  return out;
}

/* The 16 fixed bytes; *token (when given) gets the token section of a HELLO. */
Status decode_hello(const Header &h, ByteView payload, MsgType type, uint16_t *version,
                    uint32_t *caps, uint32_t *max_payload, ByteView *token) {
  Status s = check(h, payload, type);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  *version = r.u16();
  const uint16_t token_size = r.u16();
  *caps = r.u32();
  *max_payload = r.u32();
  r.skip(4); /* reserved */
  /* Anything a later version appends after the token (or after the 16 bytes) is ignored. */
  if (*version < kVersion2)
    return Status::kBadVersion;
  if (token && token_size) {
    *token = r.view(token_size);
    if (!r.ok() || token_size > kMaxTokenSize)
      return Status::kBadPayloadSize;
  }
  return Status::kOk;
}

}  // namespace

const char *msg_type_name(MsgType type) {
  switch (type) {
    case MsgType::kFrameRequest:
      return "FRAME_REQUEST";
    case MsgType::kFrameResponse:
      return "FRAME_RESPONSE";
    case MsgType::kKeyframeRequest:
      return "KEYFRAME_REQ";
    case MsgType::kConfigRequest:
      return "CONFIG_REQ";
    case MsgType::kConfigResponse:
      return "CONFIG_RESP";
    case MsgType::kPing:
      return "PING";
    case MsgType::kPong:
      return "PONG";
    case MsgType::kEnableScanout:
      return "ENABLE_SCANOUT";
    case MsgType::kDisableScanout:
      return "DISABLE_SCANOUT";
    case MsgType::kScanoutResponse:
      return "SCANOUT_RESP";
    case MsgType::kSubscribe:
      return "SUBSCRIBE";
    case MsgType::kSubscribeResponse:
      return "SUBSCRIBE_RESP";
    case MsgType::kHello:
      return "HELLO";
    case MsgType::kHelloResponse:
      return "HELLO_RESP";
    case MsgType::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

const char *status_name(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kBadMagic:
      return "bad-magic";
    case Status::kPayloadTooLarge:
      return "payload-too-large";
    case Status::kBadPayloadSize:
      return "bad-payload-size";
    case Status::kWrongType:
      return "wrong-type";
    case Status::kPixelDataMismatch:
      return "pixel-data-mismatch";
    case Status::kBadDimensions:
      return "bad-dimensions";
    case Status::kNalOverrun:
      return "nal-overrun";
    case Status::kBadVersion:
      return "bad-version";
    case Status::kTooLarge:
      return "too-large";
  }
  return "unknown-status";
}

void encode_header(const Header &h, uint8_t out[kHeaderSize]) {
  std::vector<uint8_t> v = begin_reserving(h.type, h.flags, h.session_id, h.payload_size, 0);
  for (size_t i = 0; i < kHeaderSize; i++)
    out[i] = v[i];
}

Status decode_header(const uint8_t in[kHeaderSize], Header *out) {
  le::Reader r(ByteView{in, kHeaderSize});
  uint32_t magic = r.u32();
  out->type = MsgType(r.u8());
  out->flags = r.u8();
  out->session_id = r.u16();
  out->payload_size = r.u32();
  return magic == kMagic ? Status::kOk : Status::kBadMagic;
}

Status check_header(const Header &h, uint32_t max_payload) {
  if (h.payload_size > max_payload)
    return Status::kPayloadTooLarge;
  if (std::optional<uint32_t> fixed = fixed_payload_size(h.type)) {
    return h.payload_size == *fixed ? Status::kOk : Status::kBadPayloadSize;
  }
  switch (h.type) {
    case MsgType::kFrameRequest:
      /* The flag is the only thing telling the receiver that pixels follow: without it the
       * payload is exactly the 44 fixed bytes, with it there is at least one pixel byte
       * (Helix's host would otherwise fall back to its own screen silently). */
      if (h.flags & kFlagPixelData)
        return h.payload_size > kFrameRequestSize ? Status::kOk : Status::kPixelDataMismatch;
      return h.payload_size == kFrameRequestSize ? Status::kOk : Status::kPixelDataMismatch;
    case MsgType::kFrameResponse:
      return h.payload_size >= kFrameResponseFixedSize ? Status::kOk : Status::kBadPayloadSize;
    case MsgType::kHello:
    case MsgType::kHelloResponse:
      return h.payload_size >= kHelloSize && h.payload_size <= kHelloMaxSize
                 ? Status::kOk
                 : Status::kBadPayloadSize;
    default:
      return Status::kOk; /* unknown type: the receiver skips payload_size bytes */
  }
}

/* --- FRAME_REQUEST --------------------------------------------------------------------- */

std::vector<uint8_t> encode_frame_request_prefix(const FrameRequest &m, uint16_t session_id,
                                                 size_t pixel_bytes) {
  if (pixel_bytes > std::numeric_limits<uint32_t>::max() - kFrameRequestSize)
    return {};
  uint32_t payload = kFrameRequestSize + uint32_t(pixel_bytes);
  std::vector<uint8_t> out =
      begin_reserving(MsgType::kFrameRequest, pixel_bytes ? kFlagPixelData : 0, session_id, payload,
                      kFrameRequestSize);
  le::Writer w(&out);
  write_frame_request_fields(&w, m);
  return out;
}

std::vector<uint8_t> encode(const FrameRequest &m, uint16_t session_id) {
  std::vector<uint8_t> out = encode_frame_request_prefix(m, session_id, m.pixels.size);
  if (!out.empty()) {
    out.reserve(out.size() + m.pixels.size);
    le::Writer w(&out);
    w.bytes(m.pixels);
  }
  return out;
}

Status decode(const Header &h, ByteView payload, FrameRequest *out) {
  Status s = check(h, payload, MsgType::kFrameRequest);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->resource_id = r.u32();
  out->width = r.u32();
  out->height = r.u32();
  out->format = r.u32();
  out->stride = r.u32();
  out->pts_ns = r.i64();
  out->duration_ns = r.i64();
  out->force_keyframe = r.u8() != 0;
  r.skip(7);
  out->pixels = r.view(r.remaining());
  if (!out->pixels.size)
    return Status::kOk; /* resource-ID request: sizes are only informational */
  /* A pixel upload is only usable when it holds a whole frame. Sizes are bounded first so the
   * arithmetic below (in 64 bits) can never overflow. More bytes than needed are fine: Helix's
   * vsockenc sends the whole mapped buffer, padding included. */
  if (out->width == 0 || out->height == 0 || out->width > kMaxDimension ||
      out->height > kMaxDimension)
    return Status::kBadDimensions;
  std::optional<uint32_t> stride_min = min_stride(out->format, out->width);
  if (!stride_min)
    return Status::kOk; /* a format we do not know: the server decides (ERROR, not a crash) */
  if (out->stride < *stride_min)
    return Status::kBadDimensions;
  std::optional<uint64_t> need =
      pixel_bytes_needed(out->format, out->width, out->height, out->stride);
  if (!need || out->pixels.size < *need)
    return Status::kPixelDataMismatch;
  return Status::kOk;
}

/* --- FRAME_RESPONSE -------------------------------------------------------------------- */

namespace {
void write_frame_response_fields(le::Writer *w, const FrameResponse &m, uint32_t nal_count) {
  w->i64(m.pts_ns);
  w->i64(m.dts_ns);
  w->u8(m.is_keyframe ? 1 : 0);
  w->zeros(3);
  w->u32(nal_count);
}
}  // namespace

std::vector<uint8_t> encode(const FrameResponse &m, uint16_t session_id) {
  uint64_t payload = kFrameResponseFixedSize;
  for (const ByteView &nal : m.nals)
    payload += 4 + uint64_t(nal.size);
  if (payload > std::numeric_limits<uint32_t>::max() ||
      m.nals.size() > std::numeric_limits<uint32_t>::max())
    return {};
  std::vector<uint8_t> out = begin(MsgType::kFrameResponse, 0, session_id, uint32_t(payload));
  le::Writer w(&out);
  write_frame_response_fields(&w, m, uint32_t(m.nals.size()));
  for (const ByteView &nal : m.nals) {
    w.u32(uint32_t(nal.size));
    w.bytes(nal);
  }
  return out;
}

std::vector<uint8_t> encode_frame_response_prefix(const FrameResponse &m, uint16_t session_id,
                                                  size_t nal_size) {
  const uint64_t payload = uint64_t(kFrameResponseFixedSize) + 4 + uint64_t(nal_size);
  if (payload > std::numeric_limits<uint32_t>::max())
    return {};
  std::vector<uint8_t> out = begin_reserving(MsgType::kFrameResponse, 0, session_id,
                                             uint32_t(payload), kFrameResponseFixedSize + 4);
  le::Writer w(&out);
  write_frame_response_fields(&w, m, 1);
  w.u32(uint32_t(nal_size));
  return out;
}

Status decode(const Header &h, ByteView payload, FrameResponse *out) {
  Status s = check(h, payload, MsgType::kFrameResponse);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->pts_ns = r.i64();
  out->dts_ns = r.i64();
  out->is_keyframe = r.u8() != 0;
  r.skip(3);
  uint32_t count = r.u32();
  out->nals.clear();
  /* Every NAL costs at least its 4-byte size, so a count the payload cannot hold is refused
   * before anything is allocated for it. */
  if (count > r.remaining() / 4)
    return Status::kNalOverrun;
  out->nals.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t size = r.u32();
    if (!r.ok() || size > r.remaining())
      return Status::kNalOverrun;
    out->nals.push_back(r.view(size));
  }
  /* Bytes after the last NAL would be silently lost by every reader: refuse them. */
  if (r.remaining() != 0)
    return Status::kNalOverrun;
  return Status::kOk;
}

/* --- Header-only messages -------------------------------------------------------------- */

std::vector<uint8_t> encode(const KeyframeRequest &, uint16_t session_id) {
  return begin(MsgType::kKeyframeRequest, 0, session_id, 0);
}
std::vector<uint8_t> encode(const Ping &, uint16_t session_id) {
  return begin(MsgType::kPing, 0, session_id, 0);
}
std::vector<uint8_t> encode(const Pong &, uint16_t session_id) {
  return begin(MsgType::kPong, 0, session_id, 0);
}
Status decode(const Header &h, ByteView payload, KeyframeRequest *) {
  return check(h, payload, MsgType::kKeyframeRequest);
}
Status decode(const Header &h, ByteView payload, Ping *) {
  return check(h, payload, MsgType::kPing);
}
Status decode(const Header &h, ByteView payload, Pong *) {
  return check(h, payload, MsgType::kPong);
}

/* --- CONFIG_REQ / CONFIG_RESP ---------------------------------------------------------- */

std::vector<uint8_t> encode(const ConfigRequest &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kConfigRequest, 0, session_id, kConfigSize);
  le::Writer w(&out);
  write_config(&w, m);
  return out;
}

std::vector<uint8_t> encode(const ConfigResponse &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kConfigResponse, 0, session_id, kConfigSize);
  le::Writer w(&out);
  write_config(&w, m.applied);
  return out;
}

Status decode(const Header &h, ByteView payload, ConfigRequest *out) {
  Status s = check(h, payload, MsgType::kConfigRequest);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  read_config(&r, out);
  return Status::kOk;
}

Status decode(const Header &h, ByteView payload, ConfigResponse *out) {
  Status s = check(h, payload, MsgType::kConfigResponse);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  read_config(&r, &out->applied);
  return Status::kOk;
}

/* --- Scanouts and subscriptions -------------------------------------------------------- */

std::vector<uint8_t> encode(const EnableScanout &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kEnableScanout, 0, session_id, kEnableScanoutSize);
  le::Writer w(&out);
  w.u32(m.scanout_id);
  w.u32(m.width);
  w.u32(m.height);
  w.u32(m.refresh_hz);
  return out;
}

Status decode(const Header &h, ByteView payload, EnableScanout *out) {
  Status s = check(h, payload, MsgType::kEnableScanout);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->scanout_id = r.u32();
  out->width = r.u32();
  out->height = r.u32();
  out->refresh_hz = r.u32();
  return Status::kOk;
}

std::vector<uint8_t> encode(const DisableScanout &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kDisableScanout, 0, session_id, kDisableScanoutSize);
  le::Writer w(&out);
  w.u32(m.scanout_id);
  return out;
}

Status decode(const Header &h, ByteView payload, DisableScanout *out) {
  Status s = check(h, payload, MsgType::kDisableScanout);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->scanout_id = r.u32();
  return Status::kOk;
}

std::vector<uint8_t> encode(const ScanoutResponse &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kScanoutResponse, 0, session_id, kScanoutResponseSize);
  le::Writer w(&out);
  w.u32(m.scanout_id);
  w.u32(m.success ? 1 : 0);
  w.fixed_string(m.connector, kConnectorSize);
  return out;
}

Status decode(const Header &h, ByteView payload, ScanoutResponse *out) {
  Status s = check(h, payload, MsgType::kScanoutResponse);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->scanout_id = r.u32();
  out->success = r.u32() != 0;
  out->connector = r.fixed_string(kConnectorSize);
  return Status::kOk;
}

std::vector<uint8_t> encode(const Subscribe &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kSubscribe, 0, session_id, kSubscribeSize);
  le::Writer w(&out);
  w.u32(m.scanout_id);
  return out;
}

Status decode(const Header &h, ByteView payload, Subscribe *out) {
  Status s = check(h, payload, MsgType::kSubscribe);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->scanout_id = r.u32();
  return Status::kOk;
}

std::vector<uint8_t> encode(const SubscribeResponse &m, uint16_t session_id) {
  std::vector<uint8_t> out =
      begin(MsgType::kSubscribeResponse, 0, session_id, kSubscribeResponseSize);
  le::Writer w(&out);
  w.u32(m.scanout_id);
  w.u32(m.success ? 1 : 0);
  return out;
}

Status decode(const Header &h, ByteView payload, SubscribeResponse *out) {
  Status s = check(h, payload, MsgType::kSubscribeResponse);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->scanout_id = r.u32();
  out->success = r.u32() != 0;
  return Status::kOk;
}

/* --- HELLO / HELLO_RESP (v2) ----------------------------------------------------------- */

std::vector<uint8_t> encode(const Hello &m, uint16_t session_id) {
  if (m.token.size() > kMaxTokenSize)
    return {};
  return encode_hello(MsgType::kHello, m.version, m.capabilities, m.max_payload, session_id,
                      ByteView{reinterpret_cast<const uint8_t *>(m.token.data()), m.token.size()});
}

std::vector<uint8_t> encode(const HelloResponse &m, uint16_t session_id) {
  return encode_hello(MsgType::kHelloResponse, m.version, m.capabilities, m.max_payload,
                      session_id, ByteView{});
}

Status decode(const Header &h, ByteView payload, Hello *out) {
  ByteView token;
  Status s = decode_hello(h, payload, MsgType::kHello, &out->version, &out->capabilities,
                          &out->max_payload, &token);
  if (token.size)
    out->token.assign(reinterpret_cast<const char *>(token.data), token.size);
  else
    out->token.clear();
  return s;
}

Status decode(const Header &h, ByteView payload, HelloResponse *out) {
  return decode_hello(h, payload, MsgType::kHelloResponse, &out->version, &out->capabilities,
                      &out->max_payload, nullptr);
}

HelloResponse negotiate(const Hello &client, uint32_t server_capabilities,
                        uint32_t server_max_payload) {
  HelloResponse r;
  r.version = client.version < kProtocolVersion ? client.version : kProtocolVersion;
  r.capabilities = client.capabilities & server_capabilities;
  r.max_payload = server_max_payload;
  return r;
}

bool tokens_equal(const std::string &a, const std::string &b) {
  const size_t n = std::max({a.size(), b.size(), size_t(kMaxTokenSize)});
  unsigned diff = a.size() != b.size() ? 1u : 0u;
  for (size_t i = 0; i < n; i++) {
    const uint8_t x = i < a.size() ? uint8_t(a[i]) : 0;
    const uint8_t y = i < b.size() ? uint8_t(b[i]) : 0;
    diff |= unsigned(x ^ y);
  }
  return diff == 0;
}

/* --- ERROR ----------------------------------------------------------------------------- */

std::vector<uint8_t> encode(const Error &m, uint16_t session_id) {
  std::vector<uint8_t> out = begin(MsgType::kError, 0, session_id, kErrorSize);
  le::Writer w(&out);
  w.i32(m.code);
  w.fixed_string(m.message, kErrorMessageSize);
  return out;
}

Status decode(const Header &h, ByteView payload, Error *out) {
  Status s = check(h, payload, MsgType::kError);
  if (s != Status::kOk)
    return s;
  le::Reader r(payload);
  out->code = r.i32();
  out->message = r.fixed_string(kErrorMessageSize);
  return Status::kOk;
}

/* --- Any message ----------------------------------------------------------------------- */

Status validate(const Header &h, ByteView payload) {
  switch (h.type) {
    case MsgType::kFrameRequest: {
      FrameRequest m;
      return decode(h, payload, &m);
    }
    case MsgType::kFrameResponse: {
      FrameResponse m;
      return decode(h, payload, &m);
    }
    case MsgType::kKeyframeRequest: {
      KeyframeRequest m;
      return decode(h, payload, &m);
    }
    case MsgType::kConfigRequest: {
      ConfigRequest m;
      return decode(h, payload, &m);
    }
    case MsgType::kConfigResponse: {
      ConfigResponse m;
      return decode(h, payload, &m);
    }
    case MsgType::kPing: {
      Ping m;
      return decode(h, payload, &m);
    }
    case MsgType::kPong: {
      Pong m;
      return decode(h, payload, &m);
    }
    case MsgType::kEnableScanout: {
      EnableScanout m;
      return decode(h, payload, &m);
    }
    case MsgType::kDisableScanout: {
      DisableScanout m;
      return decode(h, payload, &m);
    }
    case MsgType::kScanoutResponse: {
      ScanoutResponse m;
      return decode(h, payload, &m);
    }
    case MsgType::kSubscribe: {
      Subscribe m;
      return decode(h, payload, &m);
    }
    case MsgType::kSubscribeResponse: {
      SubscribeResponse m;
      return decode(h, payload, &m);
    }
    case MsgType::kHello: {
      Hello m;
      return decode(h, payload, &m);
    }
    case MsgType::kHelloResponse: {
      HelloResponse m;
      return decode(h, payload, &m);
    }
    case MsgType::kError: {
      Error m;
      return decode(h, payload, &m);
    }
  }
  return payload.size == h.payload_size ? Status::kOk : Status::kBadPayloadSize;
}

/* --- Pixel layout ---------------------------------------------------------------------- */

std::optional<uint32_t> min_stride(uint32_t format, uint32_t width) {
  switch (format) {
    case format::kAR24:
    case format::kAB24:
    case format::kXR24:
    case format::kXB24:
      return uint32_t(uint64_t(width) * 4 > std::numeric_limits<uint32_t>::max()
                          ? std::numeric_limits<uint32_t>::max()
                          : width * 4);
    case format::kNV12:
      /* The interleaved UV row of an odd width needs one byte more than the Y row. */
      return width + (width & 1);
    case format::kYU12:
      return width;
    default:
      return std::nullopt;
  }
}

std::optional<uint64_t> pixel_bytes_needed(uint32_t format, uint32_t width, uint32_t height,
                                           uint32_t stride) {
  std::optional<uint32_t> stride_min = min_stride(format, width);
  if (!stride_min || stride < *stride_min)
    return std::nullopt;
  std::optional<PlaneLayout> layout = plane_layout(format, width, height, stride);
  if (!layout)
    return std::nullopt;
  return layout->total; /* 64-bit sums of 32-bit products: no overflow */
}

}  // namespace vmd::hxfr
