/* gst-vmdisplay: the HXFR wire protocol (Helix frame export), v1 and our v2 extension.
 *
 * Byte-compatible with Helix (helixml/helix desktop/gst-vsockenc/gstvsockenc.h,
 * api/pkg/drm/protocol.go, and the QEMU module hw/display/helix/helix-frame-export.h): every
 * message is a 12-byte header followed by payload_size bytes, integers little-endian, no
 * padding. Helix casts packed structs onto the socket; here messages are plain C++ values
 * written and read field by field, so host byte order and struct layout never reach the wire.
 *
 * v2 adds one thing, the HELLO exchange (version + capability bits) that v1 peers skip like any
 * unknown type. docs/protocol.md has the byte tables, the compatibility rules and one example
 * of each message; tests/check/unit/hxfr-protocol.cpp checks those exact bytes.
 *
 * No GStreamer, no GLib, no exceptions: errors are Status values, so this code is safe to call
 * from C callbacks and from the fuzzer.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hxfr-bytes.h"

namespace vmd::hxfr {

constexpr uint32_t kMagic = 0x52465848; /* the bytes "HXFR" */
constexpr size_t kHeaderSize = 12;
/* Helix's host refuses pixel data over 64 MiB; we apply the same default to every message. */
constexpr uint32_t kDefaultMaxPayload = 64u * 1024 * 1024;
/* Pixel uploads larger than this per side are refused before any size arithmetic. */
constexpr uint32_t kMaxDimension = 16384;
constexpr uint16_t kDefaultTcpPort = 15937;
constexpr uint32_t kDefaultVsockPort = 5000;

/* Version 1 is Helix's protocol, which has no version field: a peer that does not answer HELLO
 * speaks it. Version 2 is v1 plus HELLO/HELLO_RESP and the capabilities they announce. */
constexpr uint16_t kVersion1 = 1;
constexpr uint16_t kVersion2 = 2;
constexpr uint16_t kProtocolVersion = kVersion2;
/* How long a client waits for HELLO_RESP before it takes the host for a v1 peer: long enough
 * for any live host to answer over a local link, short enough not to be noticed at start. */
constexpr int kHelloTimeoutMs = 500;

/* Any byte is a valid type on the wire (unknown ones are skipped), hence a plain uint8_t enum. */
enum class MsgType : uint8_t {
  kFrameRequest = 0x01,
  kFrameResponse = 0x02,
  kKeyframeRequest = 0x03, /* Helix defines it, no Helix peer sends or honours it */
  kConfigRequest = 0x04,
  kConfigResponse = 0x05, /* Helix defines it, never sends it; payload is ours (v2) */
  kPing = 0x10,
  kPong = 0x11,
  kEnableScanout = 0x20,
  kDisableScanout = 0x21,
  kScanoutResponse = 0x22,
  kSubscribe = 0x30,
  kSubscribeResponse = 0x31,
  kHello = 0x40,         /* v2; unused by Helix */
  kHelloResponse = 0x41, /* v2; unused by Helix */
  kError = 0xFF,
};
/* "FRAME_REQUEST", ... or "UNKNOWN". */
const char *msg_type_name(MsgType type);

/* Header flags. Only FRAME_REQUEST uses one; other bits are sent as 0 and ignored. */
constexpr uint8_t kFlagPixelData = 0x01;

/* Pixel formats are DRM fourccs. v1 hosts know only AR24, AB24 and NV12 and encode anything
 * else as AR24 (Helix's vsockenc sends BGRx as AR24 and RGBx as AB24); XR24, XB24 and YU12 go
 * only to peers that announced cap::kExtraFormats. */
namespace format {
constexpr uint32_t kAR24 = 0x34325241; /* GStreamer BGRA; Helix HELIX_FORMAT_BGRA8888 */
constexpr uint32_t kAB24 = 0x34324241; /* GStreamer RGBA; Helix HELIX_FORMAT_RGBA8888 */
constexpr uint32_t kNV12 = 0x3231564E; /* NV12; Helix HELIX_FORMAT_NV12 */
constexpr uint32_t kXR24 = 0x34325258; /* GStreamer BGRx (v2, cap::kExtraFormats) */
constexpr uint32_t kXB24 = 0x34324258; /* GStreamer RGBx (v2, cap::kExtraFormats) */
constexpr uint32_t kYU12 = 0x32315559; /* GStreamer I420 (v2, cap::kExtraFormats) */
}  // namespace format

/* ERROR codes, as Helix numbers them. */
namespace error_code {
constexpr int32_t kOk = 0;
constexpr int32_t kInvalidMsg = -1;
constexpr int32_t kResourceNotFound = -2;
constexpr int32_t kNotMetalTexture = -3; /* macOS host only */
constexpr int32_t kNoIOSurface = -4;     /* macOS host only */
constexpr int32_t kEncodeFailed = -5;
constexpr int32_t kNotConfigured = -6;
constexpr int32_t kUnauthorized = -7; /* ours (v2): the host wants a token this client did not
                                         send, or sent wrong; the connection is closed */
constexpr int32_t kInternal = -99;
}  // namespace error_code

/* Capability bits of HELLO/HELLO_RESP (v2). A bit means "I understand and will honour this";
 * HELLO_RESP carries the intersection, and only features in it may be used on the connection.
 * Everything that is not v1 behaviour needs its bit, so a v1 peer never sees it. */
namespace cap {
constexpr uint32_t kPixelUpload = 1u << 0;      /* FRAME_REQUEST with PIXEL_DATA */
constexpr uint32_t kResourceId = 1u << 1;       /* FRAME_REQUEST by resource ID / scanout */
constexpr uint32_t kSubscribe = 1u << 2;        /* SUBSCRIBE push streams */
constexpr uint32_t kExtraFormats = 1u << 3;     /* XR24, XB24, YU12 pixel uploads */
constexpr uint32_t kKeyframeRequest = 1u << 4;  /* KEYFRAME_REQ makes the next frame an IDR */
constexpr uint32_t kConfigResponse = 1u << 5;   /* each CONFIG_REQ answered by CONFIG_RESP */
constexpr uint32_t kOneReplyPerFrame = 1u << 6; /* each FRAME_REQUEST gets exactly one
                                                   FRAME_RESPONSE or ERROR, in order */
constexpr uint32_t kScanoutControl = 1u << 7;   /* ENABLE/DISABLE_SCANOUT, each answered */
constexpr uint32_t kAllKnown = (1u << 8) - 1;
}  // namespace cap

/* Payload sizes. "Fixed" types must have exactly this payload_size. */
constexpr uint32_t kFrameRequestSize = 44;       /* plus pixel bytes with kFlagPixelData */
constexpr uint32_t kFrameResponseFixedSize = 24; /* plus nal_count x (u32 size + bytes) */
constexpr uint32_t kConfigSize = 28;             /* CONFIG_REQ and CONFIG_RESP */
constexpr uint32_t kEnableScanoutSize = 16;
constexpr uint32_t kDisableScanoutSize = 4;
constexpr uint32_t kConnectorSize = 64;
constexpr uint32_t kScanoutResponseSize = 8 + kConnectorSize;
constexpr uint32_t kSubscribeSize = 4;
constexpr uint32_t kSubscribeResponseSize = 8;
constexpr uint32_t kErrorMessageSize = 256;
constexpr uint32_t kErrorSize = 4 + kErrorMessageSize;
/* HELLO/HELLO_RESP: 16 bytes now; a later version may append fields, which older v2 peers
 * ignore, up to this bound. */
constexpr uint32_t kHelloSize = 16;
constexpr uint32_t kHelloMaxSize = 256;
/* A HELLO's token: its length in the u16 at payload offset 2 (reserved, 0, in HELLO_RESP and
 * in a HELLO without token), its bytes right after the 16 fixed ones (docs/protocol.md,
 * "Token"). Peers that predate it ignore both, as the rules for appended fields say. */
constexpr uint32_t kHelloTokenOffset = kHelloSize;
constexpr uint32_t kMaxTokenSize = 128;

enum class Status {
  kOk = 0,
  kBadMagic,          /* header magic is not "HXFR" */
  kPayloadTooLarge,   /* payload_size over the configured maximum */
  kBadPayloadSize,    /* payload_size impossible for this type */
  kWrongType,         /* decoder given another type's message */
  kPixelDataMismatch, /* PIXEL_DATA flag vs payload, or fewer pixel bytes than w x h needs */
  kBadDimensions,     /* pixel upload with a zero or oversized side, or a too small stride */
  kNalOverrun,        /* NAL count or a NAL size runs past the payload, or bytes left over */
  kBadVersion,        /* HELLO/HELLO_RESP with version < 2 */
  kTooLarge,          /* encoder: the message cannot be described by a u32 payload_size */
};
/* A short constant name for logs ("bad-magic", ...). */
const char *status_name(Status status);

struct Header {
  MsgType type = MsgType::kPing;
  uint8_t flags = 0;
  uint16_t session_id = 0; /* Helix: 1 for vsockenc frames, the scanout id when subscribed */
  uint32_t payload_size = 0;
};

/* Messages. Reserved bytes are not represented: they are sent as zeros and ignored. Views in
 * decoded messages point into the payload they were decoded from. */
struct FrameRequest {
  uint32_t resource_id = 0; /* virtio-gpu resource; 0 = none (pixels attached) */
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t format = 0; /* format::* fourcc */
  uint32_t stride = 0; /* bytes per row of plane 0 */
  int64_t pts_ns = 0;
  int64_t duration_ns = 0;
  bool force_keyframe = false;
  ByteView pixels; /* non-empty <=> kFlagPixelData */
};

struct FrameResponse {
  int64_t pts_ns = 0;
  int64_t dts_ns = 0;
  bool is_keyframe = false;
  /* Annex-B data. v1 peers send and expect exactly one element (Helix's Go reader reads only
   * the first NAL whatever nal_count says). */
  std::vector<ByteView> nals;
};

struct KeyframeRequest {};

struct ConfigRequest {
  uint32_t width = 0; /* 0: keep the current size (Helix's Go client sends 0) */
  uint32_t height = 0;
  uint32_t bitrate_bps = 0;
  uint32_t fps_num = 0;
  uint32_t fps_den = 0;
  uint8_t profile = 0;   /* H.264 profile_idc: 66 baseline, 77 main, 100 high */
  uint8_t level_x10 = 0; /* 40 = level 4.0 */
  bool realtime = false;
};

/* Same layout as CONFIG_REQ: what the host actually applied (v2, cap::kConfigResponse). */
struct ConfigResponse {
  ConfigRequest applied;
};

struct Ping {};
struct Pong {};

struct EnableScanout {
  uint32_t scanout_id = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t refresh_hz = 0;
};

struct DisableScanout {
  uint32_t scanout_id = 0;
};

struct ScanoutResponse {
  uint32_t scanout_id = 0;
  bool success = false;
  std::string connector; /* at most 63 bytes are sent; e.g. "Virtual-2" */
};

struct Subscribe {
  uint32_t scanout_id = 0; /* Helix also puts it in header.session_id */
};

struct SubscribeResponse {
  uint32_t scanout_id = 0;
  bool success = false;
};

struct Hello {
  /* Hello{version, capabilities, max_payload} keeps working without a token. */
  Hello() = default;
  Hello(uint16_t v, uint32_t caps, uint32_t max, std::string t = {})
      : version(v), capabilities(caps), max_payload(max), token(std::move(t)) {}

  uint16_t version = kProtocolVersion;       /* highest version the sender speaks */
  uint32_t capabilities = 0;                 /* cap::* the sender understands */
  uint32_t max_payload = kDefaultMaxPayload; /* largest payload_size the sender accepts (our
                                                host refuses less than kErrorSize) */
  std::string token;                         /* shared secret for hosts that want one; empty =
                                                none; at most kMaxTokenSize bytes, any bytes */
};

struct HelloResponse {
  uint16_t version = kProtocolVersion;       /* version used on this connection: min of both */
  uint32_t capabilities = 0;                 /* intersection of both sides' bits */
  uint32_t max_payload = kDefaultMaxPayload; /* largest payload_size the server accepts */
};

struct Error {
  int32_t code = error_code::kOk;
  std::string message; /* at most 255 bytes are sent */
};

/* Compares two tokens in time that depends on neither's content (only on their lengths up to
 * kMaxTokenSize), so a client cannot find a host's token byte by byte from answer times. */
bool tokens_equal(const std::string &a, const std::string &b);

/* Header on its own: 12 bytes into out. */
void encode_header(const Header &h, uint8_t out[kHeaderSize]);
/* Reads 12 bytes. Checks the magic only; check_header() applies the size rules. */
Status decode_header(const uint8_t in[kHeaderSize], Header *out);
/* Size rules that need only the header: payload_size <= max_payload, fixed-size types exact,
 * FRAME_REQUEST 44 or (with PIXEL_DATA) more, FRAME_RESPONSE >= 24, HELLO 16..256. Unknown
 * types pass (a receiver skips them, as Helix does). */
Status check_header(const Header &h, uint32_t max_payload = kDefaultMaxPayload);

/* Whole messages (header + payload). The session id goes into the header as given. Encoders
 * of fixed-size messages cannot fail; FRAME_REQUEST and FRAME_RESPONSE return an empty vector
 * when the payload would not fit a u32 payload_size, HELLO when its token is over
 * kMaxTokenSize. */
std::vector<uint8_t> encode(const FrameRequest &m, uint16_t session_id);
std::vector<uint8_t> encode(const FrameResponse &m, uint16_t session_id);
std::vector<uint8_t> encode(const KeyframeRequest &m, uint16_t session_id);
std::vector<uint8_t> encode(const ConfigRequest &m, uint16_t session_id);
std::vector<uint8_t> encode(const ConfigResponse &m, uint16_t session_id);
std::vector<uint8_t> encode(const Ping &m, uint16_t session_id);
std::vector<uint8_t> encode(const Pong &m, uint16_t session_id);
std::vector<uint8_t> encode(const EnableScanout &m, uint16_t session_id);
std::vector<uint8_t> encode(const DisableScanout &m, uint16_t session_id);
std::vector<uint8_t> encode(const ScanoutResponse &m, uint16_t session_id);
std::vector<uint8_t> encode(const Subscribe &m, uint16_t session_id);
std::vector<uint8_t> encode(const SubscribeResponse &m, uint16_t session_id);
std::vector<uint8_t> encode(const Hello &m, uint16_t session_id);
std::vector<uint8_t> encode(const HelloResponse &m, uint16_t session_id);
std::vector<uint8_t> encode(const Error &m, uint16_t session_id);

/* The first 56 bytes of a FRAME_REQUEST carrying pixel_bytes of pixels (m.pixels is ignored),
 * so a sender can write the pixels straight from its mapping (writev) without copying them.
 * Empty when pixel_bytes does not fit. */
std::vector<uint8_t> encode_frame_request_prefix(const FrameRequest &m, uint16_t session_id,
                                                 size_t pixel_bytes);
/* The bytes of a FRAME_RESPONSE carrying one NAL entry of nal_size bytes up to that entry's
 * data (header, fixed fields, nal_count = 1, the entry's size), so the NAL can follow from
 * where it is (writev) instead of being copied into the message; m.nals is ignored. Equal to
 * the start of encode() of the same message. Empty when the payload would not fit a u32. */
std::vector<uint8_t> encode_frame_response_prefix(const FrameResponse &m, uint16_t session_id,
                                                  size_t nal_size);

/* Decoders take a header that passed check_header() and exactly its payload. They repeat the
 * size checks (so they are safe on their own) and return kWrongType for another type. */
Status decode(const Header &h, ByteView payload, FrameRequest *out);
Status decode(const Header &h, ByteView payload, FrameResponse *out);
Status decode(const Header &h, ByteView payload, KeyframeRequest *out);
Status decode(const Header &h, ByteView payload, ConfigRequest *out);
Status decode(const Header &h, ByteView payload, ConfigResponse *out);
Status decode(const Header &h, ByteView payload, Ping *out);
Status decode(const Header &h, ByteView payload, Pong *out);
Status decode(const Header &h, ByteView payload, EnableScanout *out);
Status decode(const Header &h, ByteView payload, DisableScanout *out);
Status decode(const Header &h, ByteView payload, ScanoutResponse *out);
Status decode(const Header &h, ByteView payload, Subscribe *out);
Status decode(const Header &h, ByteView payload, SubscribeResponse *out);
Status decode(const Header &h, ByteView payload, Hello *out);
Status decode(const Header &h, ByteView payload, HelloResponse *out);
Status decode(const Header &h, ByteView payload, Error *out);

/* Decodes a known type into a throwaway value: kOk when the message is well formed (unknown
 * types included), the decoder's error otherwise. */
Status validate(const Header &h, ByteView payload);

/* Pixel layout of uploads (docs/protocol.md, "Pixel data"): the smallest stride that holds a
 * row of plane 0, and the bytes w x h needs with that stride. nullopt for formats we do not
 * know the layout of, or a stride below the minimum. */
std::optional<uint32_t> min_stride(uint32_t format, uint32_t width);
std::optional<uint64_t> pixel_bytes_needed(uint32_t format, uint32_t width, uint32_t height,
                                           uint32_t stride);

/* The server's side of HELLO: version min(client, ours), capabilities in common. */
HelloResponse negotiate(const Hello &client, uint32_t server_capabilities,
                        uint32_t server_max_payload);

}  // namespace vmd::hxfr
