/* gst-vmdisplay: the picture a FRAME_REQUEST asks helixframesrv to encode. */
#include "frame-server-picture.h"

#include "hxfr-formats.h"

namespace vmd::helix {

namespace hx = vmd::hxfr;

namespace {

std::string fourcc_text(uint32_t f) {
  char s[5];
  for (int i = 0; i < 4; i++) {
    char c = char((f >> (8 * i)) & 0xff);
    s[i] = g_ascii_isprint(c) ? c : '?';
  }
  s[4] = 0;
  return s;
}

}  // namespace

bool upload_picture(const hx::FrameRequest &req, hx::Payload payload, bool extra_formats,
                    bool v1, Picture *out, PictureRefusal *why) {
  uint32_t format = req.format;
  /* XR24, XB24 and YU12 only for clients granted EXTRA_FORMATS: to anyone
   * else they are unknown formats, as they are to Helix's host. */
  const HxfrFormat *row = hxfr_format(format);
  std::optional<UploadMeta> layout;
  if (row && (!row->needs_extra || extra_formats))
    layout = upload_meta(format, req.width, req.height, req.stride);
  if (!layout && v1) {
    /* Helix's host encodes any format it does not know as AR24. */
    format = hx::format::kAR24;
    std::optional<uint64_t> need =
        hx::pixel_bytes_needed(format, req.width, req.height, req.stride);
    if (need && req.pixels.size >= *need)
      layout = upload_meta(format, req.width, req.height, req.stride);
  }
  const bool known = layout.has_value();
  if (!known) {
    why->code = hx::error_code::kInvalidMsg;
    why->text = "unsupported pixel format " + fourcc_text(req.format) +
                " (use AR24, AB24, NV12, or with EXTRA_FORMATS XR24, XB24, YU12)";
    why->close = true;
    return false;
  }
  gst_video_info_set_format(&out->info, layout->format, req.width, req.height);
  /* Zero copy: the buffer wraps the received payload and owns it from here. */
  auto *holder = new hx::Payload(std::move(payload));
  out->buffer.reset(gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, const_cast<uint8_t *>(req.pixels.data), req.pixels.size, 0,
      req.pixels.size, holder, [](gpointer p) { delete static_cast<hx::Payload *>(p); }));
  gst_buffer_add_video_meta_full(out->buffer.get(), GST_VIDEO_FRAME_FLAG_NONE, layout->format,
                                 req.width, req.height, layout->n_planes, layout->offset,
                                 layout->stride);
  return true;
}

bool scanout_picture(ScanoutRegistry &scanouts, uint32_t scanout, Picture *out,
                     PictureRefusal *why) {
  SamplePtr sample(scanouts.latest(scanout));
  why->close = false;
  if (!sample && !scanouts.exists(scanout)) {
    why->code = hx::error_code::kResourceNotFound;
    why->text = "no scanout " + std::to_string(scanout) + " (no sink pad sink_" +
                std::to_string(scanout) + ": never requested, or released); upload pixels instead";
    return false;
  }
  if (!sample) {
    why->code = hx::error_code::kResourceNotFound;
    why->text = "no frame yet for scanout " + std::to_string(scanout);
    return false;
  }
  GstCaps *caps = gst_sample_get_caps(sample.get());
  GstBuffer *b = gst_sample_get_buffer(sample.get());
  if (!caps || !b || !gst_video_info_from_caps(&out->info, caps)) {
    why->code = hx::error_code::kInternal;
    why->text = "scanout " + std::to_string(scanout) + " has no usable frame";
    return false;
  }
  /* A new buffer sharing the memory (read-only): timestamps are ours to set. */
  out->buffer.reset(gst_buffer_copy_region(
      b, GstBufferCopyFlags(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_META), 0,
      static_cast<gsize>(-1)));
  return true;
}

}  // namespace vmd::helix
