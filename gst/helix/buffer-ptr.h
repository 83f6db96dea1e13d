/* gst-vmdisplay: RAII owners for GStreamer mini objects helix passes around (GstBuffer,
 * GstSample). */
#pragma once

#include <gst/gst.h>

#include <memory>

namespace vmd::helix {

struct GstBufferUnref {
  void operator()(GstBuffer *b) const {
    if (b)
      gst_buffer_unref(b);
  }
};
using BufferPtr = std::unique_ptr<GstBuffer, GstBufferUnref>;

struct GstSampleUnref {
  void operator()(GstSample *s) const {
    if (s)
      gst_sample_unref(s);
  }
};
using SamplePtr = std::unique_ptr<GstSample, GstSampleUnref>;

}  // namespace vmd::helix
