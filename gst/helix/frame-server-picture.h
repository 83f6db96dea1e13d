/* gst-vmdisplay: the picture a FRAME_REQUEST asks helixframesrv to encode.
 *
 * Either the uploaded pixels (wrapped without a copy: the GstBuffer owns the received
 * payload, with a GstVideoMeta giving each plane's offset and stride as docs/protocol.md
 * "Pixel data" defines them) or, for a resource-ID request, the latest frame of a scanout
 * (sharing its memory). When there is none, a PictureRefusal says which ERROR to answer and
 * whether the connection ends.
 */
#pragma once

#include "buffer-ptr.h"
#include "frame-server-scanouts.h"
#include "hxfr-parser.h"
#include "hxfr-protocol.h"

#include <gst/video/video.h>

#include <cstdint>
#include <string>

namespace vmd::helix {

struct Picture {
  BufferPtr buffer;
  GstVideoInfo info;
};

struct PictureRefusal {
  int32_t code = 0;  /* hxfr::error_code */
  std::string text;  /* the ERROR's message */
  bool close = false; /* the connection ends after the ERROR */
};

/* req.pixels points into payload, which the picture takes. extra_formats: the client was
 * granted cap::kExtraFormats; v1: a Helix (version 1) client, whose unknown formats are
 * encoded as AR24 as Helix's host does. */
bool upload_picture(const vmd::hxfr::FrameRequest &req, vmd::hxfr::Payload payload,
                    bool extra_formats, bool v1, Picture *out, PictureRefusal *why);

/* The latest frame of scanout (a new buffer sharing its memory: timestamps are ours). */
bool scanout_picture(ScanoutRegistry &scanouts, uint32_t scanout, Picture *out,
                     PictureRefusal *why);

}  // namespace vmd::helix
