/* Test support: looking into a running vmwebrtcsink from outside (its viewer count, the
 * webrtcbins in the bin) and this process's resident memory. Header only, no check macros. */
#pragma once

#include <gst/gst.h>

#include <cstdio>

namespace testsupport {

/* The webrtcbin children of `bin` (one per viewer branch still there). */
inline int count_webrtcbins(GstElement *bin) {
  int n = 0;
  GstIterator *it = gst_bin_iterate_elements(GST_BIN(bin));
  GValue v = G_VALUE_INIT;
  while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
    GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&v)));
    n += f && g_str_equal(GST_OBJECT_NAME(f), "webrtcbin");
    g_value_reset(&v);
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  return n;
}

/* The sink's `viewers` property. */
inline guint sink_viewers(GstElement *sink) {
  guint n = 0;
  g_object_get(sink, "viewers", &n, nullptr);
  return n;
}

/* VmRSS of this process in KiB (0 if unreadable). */
inline long rss_kib() {
  long kib = 0;
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kib) == 1)
      break;
  if (f)
    fclose(f);
  return kib;
}

}  // namespace testsupport
