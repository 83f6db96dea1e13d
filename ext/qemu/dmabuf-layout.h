/* gst-vmdisplay: what QEMU tells us about a DMA-BUF scanout, and the one
 * interface every way of reading it implements.
 *
 * ScanoutDMABUF (v1, QEMU >= 7.0) and ScanoutDMABUF2 (QEMU >= 10.1) both
 * become a DmabufLayout plus the fds it refers to. A DmabufReader reads
 * rectangles of the visible image out of the buffer into the host surface
 * (frame-store.h), whatever the modifier: on the CPU (dmabuf-cpu.*, with
 * detile.*) or through EGL (dmabuf-import.*). dmabuf-scanout.* chooses.
 */
#pragma once

#include "damage.h"
#include "unique-fd.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vmd {

/* drm_fourcc.h values (kept here so nothing needs libdrm's headers). */
constexpr uint64_t kDrmFormatModLinear = 0;
constexpr uint64_t kDrmFormatModInvalid = 0x00ffffffffffffffULL;
constexpr uint64_t kI915FormatModXTiled = 0x0100000000000001ULL;
constexpr uint64_t kI915FormatModYTiled = 0x0100000000000002ULL;

constexpr uint32_t kMaxDmabufPlanes = 4;

struct DmabufPlane {
  uint32_t fd_index = 0; /* into the scanout's fds */
  uint32_t offset = 0;   /* bytes from the start of the fd */
  uint32_t stride = 0;   /* bytes per row (per tile row's pixel row for tiled layouts) */
};

struct DmabufLayout {
  uint32_t fourcc = 0;
  uint64_t modifier = kDrmFormatModInvalid; /* INVALID: implicit, no modifier attributes */
  uint32_t backing_width = 0, backing_height = 0; /* the whole buffer */
  Rect visible;                                   /* the image, inside the backing */
  uint32_t num_planes = 0;
  DmabufPlane planes[kMaxDmabufPlanes];
  bool y0_top = false; /* QEMU's name: true means the rows are stored bottom-up */
};

/* How qemudbussrc reads DMA-BUFs (its detile and render-node properties). */
enum class DetileMode { Auto, Gl, Cpu };

struct DmabufOptions {
  DetileMode mode = DetileMode::Auto;
  std::string render_node; /* "" = the first render node that works, then surfaceless */
};

/* Reads rectangles of one scanout's visible image. */
class DmabufReader {
 public:
  virtual ~DmabufReader() = default;

  /* Copies rectangle r of the visible image (coordinates relative to the
   * visible rectangle's origin, already clipped to it) into dst, which holds
   * the whole visible image top-down in the host surface's format (dst is
   * pixel (0,0), rows dst_stride bytes apart): the same bytes land where a
   * Scanout copy of the image would have put them, flipped when y0_top.
   * Returns only after the buffer has been read (GPU work finished). False,
   * with *why, when this frame cannot be read (e.g. the fd shrank): the
   * caller ignores the update and the stream goes on. */
  virtual bool read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why) = 0;

  /* How it reads, for the qemudbussrc-path message: "CPU (Y-tiled detile)",
   * "EGL on /dev/dri/renderD128". */
  virtual std::string describe() const = 0;

  /* The buffer itself (its layout and duplicates of its fds), for a
   * DmabufMirror that imports it elsewhere. Only GPU readers offer it: what
   * EGL imports here, another EGL display of the same driver imports too. */
  virtual bool mirror_source(DmabufLayout * /*layout*/, std::vector<UniqueFd> * /*fds*/) const {
    return false;
  }
};

/* A second destination of a DMA-BUF scanout, kept on the GPU (gl-output.*:
 * a texture that GLMemory buffers are copied from). The frame store calls it
 * under its lock, in place of reading into the host surface. */
class DmabufMirror {
 public:
  virtual ~DmabufMirror() = default;
  /* Makes this buffer the source (a ScanoutDMABUF of the same size). */
  virtual bool attach(const DmabufLayout &layout, std::vector<UniqueFd> fds,
                      std::string *why) = 0;
  /* Copies rectangle r of the visible image (as DmabufReader::read) and
   * returns once the GPU has finished reading the buffer. */
  virtual bool draw(const Rect &r, std::string *why) = 0;
};

}  // namespace vmd
