/* gst-vmdisplay: streaming HXFR parser.
 *
 * Takes bytes as a socket delivers them, split anywhere (one byte at a time is fine), and
 * yields whole messages. The header is checked the moment its 12 bytes are in (magic, size
 * rules, payload_size <= max_payload) so a bad peer is refused before anything is allocated
 * for it; a complete message of a known type is then decoded once (validate()) so every
 * message handed out is well formed. Unknown types are handed out too: the caller skips them,
 * as Helix does, which is what lets v1 and v2 peers talk.
 *
 * Errors are values and sticky: after one the stream cannot be resynchronised (HXFR has no
 * framing beyond payload_size), so the caller answers ERROR INVALID_MSG and closes.
 * Not thread-safe: one parser per connection, used by the thread that reads it.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hxfr-protocol.h"

namespace vmd::hxfr {

/* Owned payload bytes. Allocated uninitialised: zero-filling a 64 MiB pixel upload would cost
 * more than receiving it, and a peer that announces a large payload but never sends it costs
 * address space only (pages are committed as the bytes arrive). */
class Payload {
 public:
  Payload() = default;
  explicit Payload(size_t size) : data_(size ? new uint8_t[size] : nullptr), size_(size) {}

  uint8_t *data() { return data_.get(); }
  const uint8_t *data() const { return data_.get(); }
  size_t size() const { return size_; }
  ByteView view() const { return ByteView{data_.get(), size_}; }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

struct Message {
  Header header;
  Payload payload; /* exactly header.payload_size bytes */

  ByteView view() const { return payload.view(); }
};

class Parser {
 public:
  explicit Parser(uint32_t max_payload = kDefaultMaxPayload) : max_payload_(max_payload) {}

  /* Copies in up to len bytes, stopping right after the end of a message so the caller can
   * take it first. Returns how many bytes were used: 0 while a message is waiting or after an
   * error. Typical loop:
   *   while (len) { size_t n = p.consume(data, len); data += n; len -= n;
   *                 if (p.ready()) handle(p.take()); else if (p.failed()) break; } */
  size_t consume(const uint8_t *data, size_t len);

  /* Zero-copy receiving: where the next bytes go and how many the current part (header or
   * payload) still needs, for recv() straight into the message; then commit() what arrived.
   * Size 0 while a message is waiting or after an error. */
  struct Space {
    uint8_t *data = nullptr;
    size_t size = 0;
  };
  Space prepare();
  void commit(size_t n);

  /* Runs the consume loop over all of data, appending every complete message to out. Returns
   * the parser's status; on error, messages before the bad one are still in out. */
  Status feed(const uint8_t *data, size_t len, std::vector<Message> *out);

  bool ready() const { return state_ == State::kReady; }
  /* Hands out the waiting message and starts on the next one. Only when ready(). */
  Message take();

  bool failed() const { return status_ != Status::kOk; }
  Status status() const { return status_; }
  /* What was wrong, with the numbers, for a log line. Empty while status() is kOk. */
  const std::string &error_detail() const { return error_detail_; }
  /* True between messages: a connection that ends here ended cleanly, one that ends
   * elsewhere was cut inside a message. */
  bool at_boundary() const { return state_ == State::kHeader && header_have_ == 0; }

  uint32_t max_payload() const { return max_payload_; }
  /* A new bound for the headers that complete from now on (a message already under way keeps
   * the size it was accepted with): e.g. small until a peer is authorized. */
  void set_max_payload(uint32_t max_payload) { max_payload_ = max_payload; }

 private:
  enum class State { kHeader, kPayload, kReady, kFailed };

  void header_complete();
  void payload_complete();
  void set_error(Status status, std::string detail);

  uint32_t max_payload_;
  State state_ = State::kHeader;
  Status status_ = Status::kOk;
  std::string error_detail_;
  uint8_t header_bytes_[kHeaderSize] = {};
  size_t header_have_ = 0;
  Message current_;
  size_t payload_have_ = 0;
};

}  // namespace vmd::hxfr
