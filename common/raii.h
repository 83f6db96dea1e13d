/* gst-vmdisplay: small RAII owners for POSIX and GLib resources.
 *
 * Everything foreign that must be released (fds, GObjects, GVariants) is held
 * by one of these, so early returns on malformed input can never leak.
 */
#pragma once

#include <glib-object.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <utility>

namespace vmd {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
  UniqueFd &operator=(UniqueFd &&other) noexcept {
    if (this != &other)
      reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct GObjectUnref {
  void operator()(gpointer obj) const {
    if (obj)
      g_object_unref(obj);
  }
};
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct GErrorFree {
  void operator()(GError *err) const {
    if (err)
      g_error_free(err);
  }
};
using GErrorPtr = std::unique_ptr<GError, GErrorFree>;

struct GVariantUnref {
  void operator()(GVariant *v) const {
    if (v)
      g_variant_unref(v);
  }
};
using GVariantPtr = std::unique_ptr<GVariant, GVariantUnref>;

struct GFree {
  void operator()(gpointer p) const { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFree>;

}  // namespace vmd
