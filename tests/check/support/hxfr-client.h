/* Test support: a raw HXFR client (our protocol library over a real socket)
 * with bounded reads, for tests that talk to helixframesrv the way a guest
 * would, byte for byte, without vsockenc in between. */
#pragma once

#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace testsupport {

class HxfrClient {
 public:
  /* nullptr and *error when the address is bad or nobody answers within timeout_ms. */
  static std::unique_ptr<HxfrClient> connect(const std::string &uri, int timeout_ms,
                                             std::string *error);

  bool send(const std::vector<uint8_t> &bytes, int timeout_ms);
  /* The next message; false on timeout, close or a framing error (*io says which: Ok for a
   * framing error). */
  bool read(vmd::hxfr::Message *m, int timeout_ms, vmd::hxfr::Io *io = nullptr);
  /* HELLO with these capabilities; the HELLO_RESP, or false when none came. */
  bool hello(uint32_t capabilities, vmd::hxfr::HelloResponse *reply, int timeout_ms);

 private:
  std::unique_ptr<vmd::hxfr::Connection> conn_;
  vmd::hxfr::Parser parser_{vmd::hxfr::kDefaultMaxPayload};
};

/* The access unit of a well-formed FRAME_RESPONSE (its NALs concatenated). */
std::vector<uint8_t> access_unit(const vmd::hxfr::FrameResponse &r);

}  // namespace testsupport
