/* gst-vmdisplay: the HXFR pixel formats both helix elements use, in one table.
 *
 * One row per HXFR fourcc: its GstVideoFormat and whether only peers granted
 * cap::kExtraFormats may use it. Plane layouts come from hxfr::plane_layout()
 * (gst-libs/hxfr/hxfr-planes.h). vsockenc's choice of fourcc for what it is given
 * (sender_fourcc) and the GstVideoMeta helixframesrv puts on an upload (upload_meta) both
 * read this table, so the two ends cannot drift apart.
 */
#pragma once

#include "hxfr-planes.h"

#include <gst/video/video.h>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace vmd::helix {

struct HxfrFormat {
  uint32_t fourcc;
  GstVideoFormat gst;
  bool needs_extra; /* only with cap::kExtraFormats */
};

/* The table (for tests), and its row for a fourcc (nullptr: not an HXFR format we know). */
const HxfrFormat *hxfr_formats(size_t *n);
const HxfrFormat *hxfr_format(uint32_t fourcc);

/* The fourcc vsockenc sends a GstVideoFormat as, given whether the host granted EXTRA_FORMATS
 * (0: not sendable). I420 without EXTRA_FORMATS is NV12: the sender interleaves U and V. */
uint32_t sender_fourcc(GstVideoFormat format, bool extra_formats);

/* A GstVideoMeta's planes for an upload of fourcc: what gst_buffer_add_video_meta_full
 * takes. */
struct UploadMeta {
  GstVideoFormat format = GST_VIDEO_FORMAT_UNKNOWN;
  guint n_planes = 0;
  gsize offset[GST_VIDEO_MAX_PLANES] = {};
  gint stride[GST_VIDEO_MAX_PLANES] = {};
};
/* nullopt for a fourcc not in the table. */
std::optional<UploadMeta> upload_meta(uint32_t fourcc, uint32_t width, uint32_t height,
                                      uint32_t stride);

}  // namespace vmd::helix
