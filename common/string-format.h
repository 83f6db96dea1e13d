/* gst-vmdisplay: printf into a std::string, for messages. Plain C++ (no
 * GLib), so the plain cores (detile, the CPU DMA-BUF reader) can use it. */
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace vmd {

inline std::string format_string(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format_string(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char buf[512];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n < 0)
    return {};
  if (size_t(n) < sizeof buf)
    return std::string(buf, size_t(n));
  std::string out(size_t(n), '\0');
  va_start(args, fmt);
  vsnprintf(&out[0], out.size() + 1, fmt, args);
  va_end(args);
  return out;
}

}  // namespace vmd
