/* gst-vmdisplay: streaming HXFR parser (see hxfr-parser.h). */
#include "hxfr-parser.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

namespace vmd::hxfr {

size_t Parser::consume(const uint8_t *data, size_t len) {
  size_t used = 0;
  while (used < len) {
    Space space = prepare();
    if (space.size == 0)
      break; /* a message is waiting, or the parser failed */
    size_t n = len - used < space.size ? len - used : space.size;
    std::memcpy(space.data, data + used, n);
    used += n;
    commit(n);
  }
  return used;
}

Parser::Space Parser::prepare() {
  switch (state_) {
    case State::kHeader:
      return Space{header_bytes_ + header_have_, kHeaderSize - header_have_};
    case State::kPayload:
      return Space{current_.payload.data() + payload_have_,
                   current_.payload.size() - payload_have_};
    case State::kReady:
    case State::kFailed:
      break;
  }
  return Space{};
}

void Parser::commit(size_t n) {
  /* Never more than prepare() offered: a caller bug must not move us past our buffers. */
  size_t room = prepare().size;
  if (n > room)
    n = room;
  if (n == 0)
    return;
  if (state_ == State::kHeader) {
    header_have_ += n;
    if (header_have_ == kHeaderSize)
      header_complete();
  } else if (state_ == State::kPayload) {
    payload_have_ += n;
    if (payload_have_ == current_.payload.size())
      payload_complete();
  }
}

void Parser::header_complete() {
  Header h;
  Status s = decode_header(header_bytes_, &h);
  if (s != Status::kOk) {
    uint32_t magic = uint32_t(header_bytes_[0]) | uint32_t(header_bytes_[1]) << 8 |
                     uint32_t(header_bytes_[2]) << 16 | uint32_t(header_bytes_[3]) << 24;
    char detail[64];
    std::snprintf(detail, sizeof detail, "magic 0x%08" PRIx32 " is not HXFR", magic);
    set_error(s, detail);
    return;
  }
  s = check_header(h, max_payload_);
  if (s != Status::kOk) {
    char detail[128];
    std::snprintf(detail, sizeof detail,
                  "%s (type 0x%02x) flags 0x%02x payload_size %" PRIu32 " (max %" PRIu32 ")",
                  msg_type_name(h.type), unsigned(h.type), unsigned(h.flags), h.payload_size,
                  max_payload_);
    set_error(s, detail);
    return;
  }
  current_.header = h;
  current_.payload = Payload(h.payload_size);
  payload_have_ = 0;
  state_ = State::kPayload;
  if (h.payload_size == 0)
    payload_complete();
}

void Parser::payload_complete() {
  Status s = validate(current_.header, current_.view());
  if (s != Status::kOk) {
    char detail[96];
    std::snprintf(detail, sizeof detail, "%s (type 0x%02x) payload of %" PRIu32 " bytes",
                  msg_type_name(current_.header.type), unsigned(current_.header.type),
                  current_.header.payload_size);
    set_error(s, detail);
    return;
  }
  state_ = State::kReady;
}

Message Parser::take() {
  Message m;
  if (state_ != State::kReady)
    return m;
  m = std::move(current_);
  current_ = Message();
  header_have_ = 0;
  payload_have_ = 0;
  state_ = State::kHeader;
  return m;
}

Status Parser::feed(const uint8_t *data, size_t len, std::vector<Message> *out) {
  while (!failed()) {
    size_t n = consume(data, len);
    data += n;
    len -= n;
    if (ready())
      out->push_back(take());
    else
      break; /* all input used, or failed */
  }
  return status_;
}

void Parser::set_error(Status status, std::string detail) {
  status_ = status;
  error_detail_ = std::string(status_name(status)) + ": " + detail;
  current_ = Message();
  state_ = State::kFailed;
}

}  // namespace vmd::hxfr
