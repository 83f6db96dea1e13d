#include "hxfr-client.h"

#include <glib.h>

namespace hx = vmd::hxfr;

namespace testsupport {

std::unique_ptr<HxfrClient> HxfrClient::connect(const std::string &uri, int timeout_ms,
                                                std::string *error) {
  hx::Address a;
  if (!hx::parse_address(uri, false, &a, error))
    return nullptr;
  auto conn = hx::connect_to(a, timeout_ms, -1, error);
  if (!conn)
    return nullptr;
  auto c = std::make_unique<HxfrClient>();
  c->conn_ = std::move(conn);
  return c;
}

bool HxfrClient::send(const std::vector<uint8_t> &bytes, int timeout_ms) {
  return conn_->send_all(bytes.data(), bytes.size(), timeout_ms) == hx::Io::Ok;
}

bool HxfrClient::read(hx::Message *m, int timeout_ms, hx::Io *io_out) {
  const gint64 deadline = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  if (io_out)
    *io_out = hx::Io::Ok;
  for (;;) {
    if (parser_.ready()) {
      *m = parser_.take();
      return true;
    }
    if (parser_.failed())
      return false;
    const int left = int((deadline - g_get_monotonic_time()) / 1000);
    if (left <= 0) {
      if (io_out)
        *io_out = hx::Io::Timeout;
      return false;
    }
    hx::Parser::Space space = parser_.prepare();
    size_t got = 0;
    hx::Io io = conn_->recv_some(space.data, space.size, &got, left);
    if (io != hx::Io::Ok) {
      if (io_out)
        *io_out = io;
      return false;
    }
    parser_.commit(got);
  }
}

bool HxfrClient::hello(uint32_t capabilities, hx::HelloResponse *reply, int timeout_ms,
                       uint32_t max_payload) {
  hx::Hello h;
  h.capabilities = capabilities;
  h.max_payload = max_payload;
  if (!send(hx::encode(h, 0), timeout_ms))
    return false;
  hx::Message m;
  if (!read(&m, timeout_ms) || m.header.type != hx::MsgType::kHelloResponse)
    return false;
  return hx::decode(m.header, m.view(), reply) == hx::Status::kOk;
}

bool HxfrClient::closed_by_peer(int timeout_ms) {
  const gint64 deadline = g_get_monotonic_time() + gint64(timeout_ms) * 1000;
  hx::Message m;
  for (;;) {
    const int left = int((deadline - g_get_monotonic_time()) / 1000);
    if (left <= 0)
      return false;
    hx::Io io = hx::Io::Ok;
    if (!read(&m, left, &io))
      return io == hx::Io::Closed || io == hx::Io::Error;
  }
}

bool HxfrClient::recv_raw(void *buf, size_t len, int timeout_ms) {
  if (!parser_.at_boundary())
    return false;
  return conn_->recv_all(buf, len, timeout_ms) == hx::Io::Ok;
}

std::vector<uint8_t> access_unit(const hx::FrameResponse &r) {
  std::vector<uint8_t> au;
  for (const hx::ByteView &nal : r.nals)
    au.insert(au.end(), nal.data, nal.data + nal.size);
  return au;
}

}  // namespace testsupport
