/* Test support: a raw HXFR client (our protocol library over a real socket)
 * with bounded reads, for tests that talk to helixframesrv the way a guest
 * would, byte for byte, without vsockenc in between. No check macros inside:
 * every call reports failure as a value, so it may be used from any thread. */
#pragma once

#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace testsupport {

class HxfrClient {
 public:
  /* Every wait is bounded; this is the bound when none is given. */
  static constexpr int kDefaultTimeoutMs = 10000;

  /* nullptr and *error when the address is bad or nobody answers within timeout_ms. */
  static std::unique_ptr<HxfrClient> connect(const std::string &uri, int timeout_ms,
                                             std::string *error);

  bool send(const std::vector<uint8_t> &bytes, int timeout_ms = kDefaultTimeoutMs);
  /* The next message; false on timeout, close or a framing error (*io says which: Ok for a
   * framing error). */
  bool read(vmd::hxfr::Message *m, int timeout_ms = kDefaultTimeoutMs,
            vmd::hxfr::Io *io = nullptr);
  /* HELLO with these capabilities (and max_payload); the HELLO_RESP, or false when none
   * came. */
  bool hello(uint32_t capabilities, vmd::hxfr::HelloResponse *reply, int timeout_ms,
             uint32_t max_payload = vmd::hxfr::kDefaultMaxPayload);
  /* Reads (and discards) messages until the connection ends, for at most timeout_ms in all:
   * true when the peer closed or reset it, false on timeout or a framing error. */
  bool closed_by_peer(int timeout_ms = kDefaultTimeoutMs);
  /* Exactly len bytes as they come on the wire, not parsed (what a v1 peer sees); only
   * between messages (false inside one, where the parser holds part of it). */
  bool recv_raw(void *buf, size_t len, int timeout_ms = kDefaultTimeoutMs);

 private:
  std::unique_ptr<vmd::hxfr::Connection> conn_;
  vmd::hxfr::Parser parser_{vmd::hxfr::kDefaultMaxPayload};
};

/* The access unit of a well-formed FRAME_RESPONSE (its NALs concatenated). */
std::vector<uint8_t> access_unit(const vmd::hxfr::FrameResponse &r);

}  // namespace testsupport
