/* gst-vmdisplay: little-endian byte writer and reader for HXFR messages.
 *
 * Internal to gst-libs/hxfr/hxfr-*.cpp. Every field is written and read one byte at a time, so
 * neither the host's byte order nor the compiler's struct layout can reach the wire, and a read
 * can never go past the view it was given (a short view makes the reader fail, it never
 * touches memory beyond it).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hxfr-bytes.h"

namespace vmd::hxfr::le {

class Writer {
 public:
  explicit Writer(std::vector<uint8_t> *out) : out_(out) {}

  void u8(uint8_t v) { out_->push_back(v); }
  void u16(uint16_t v) {
    for (int i = 0; i < 2; i++)
      out_->push_back(uint8_t(v >> (8 * i)));
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; i++)
      out_->push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; i++)
      out_->push_back(uint8_t(v >> (8 * i)));
  }
  /* Two's complement is what every peer (C on x86/arm, Go's binary.LittleEndian) writes. */
  void i32(int32_t v) { u32(uint32_t(v)); }
  void i64(int64_t v) { u64(uint64_t(v)); }
  void zeros(size_t n) { out_->insert(out_->end(), n, 0); }
  void bytes(ByteView v) {
    if (v.size)
      out_->insert(out_->end(), v.data, v.data + v.size);
  }
  /* A fixed char[n] field: the text, cut to fit with room for a NUL (never inside a UTF-8
   * sequence, so the peer does not log half a character), then NUL padding up to n. */
  void fixed_string(const std::string &s, size_t n) {
    size_t len = s.size() < n ? s.size() : n - 1;
    while (len > 0 && len < s.size() && (uint8_t(s[len]) & 0xc0) == 0x80)
      len--;
    bytes(ByteView{reinterpret_cast<const uint8_t *>(s.data()), len});
    zeros(n - len);
  }

 private:
  std::vector<uint8_t> *out_;
};

class Reader {
 public:
  explicit Reader(ByteView v) : v_(v) {}

  /* False once any read asked for more than was left; later reads return 0. */
  bool ok() const { return ok_; }
  size_t remaining() const { return v_.size - pos_; }

  uint8_t u8() { return uint8_t(take(1)); }
  uint16_t u16() { return uint16_t(take(2)); }
  uint32_t u32() { return uint32_t(take(4)); }
  uint64_t u64() { return take(8); }
  int32_t i32() { return int32_t(u32()); }
  int64_t i64() { return int64_t(u64()); }
  void skip(size_t n) { view(n); }
  ByteView view(size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return {};
    }
    ByteView r{v_.data + pos_, n};
    pos_ += n;
    return r;
  }
  /* A fixed char[n] field: the bytes up to the first NUL, or all n when there is none (a
   * peer that filled the field completely still gets its text through). */
  std::string fixed_string(size_t n) {
    ByteView f = view(n);
    if (!f.size)
      return {};
    const void *nul = std::memchr(f.data, 0, f.size);
    size_t len = nul ? size_t(static_cast<const uint8_t *>(nul) - f.data) : f.size;
    return std::string(reinterpret_cast<const char *>(f.data), len);
  }

 private:
  uint64_t take(size_t n) {
    ByteView b = view(n);
    uint64_t v = 0;
    for (size_t i = 0; i < b.size; i++)
      v |= uint64_t(b.data[i]) << (8 * i);
    return v;
  }

  ByteView v_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace vmd::hxfr::le
