/* gst-vmdisplay: small RAII owners for POSIX and GLib resources.
 *
 * Everything foreign that must be released (fds, GObjects, GVariants) is held
 * by one of these, so early returns on malformed input can never leak.
 */
#pragma once

#include "unique-fd.h"

#include <glib-object.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <utility>

namespace vmd {

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
