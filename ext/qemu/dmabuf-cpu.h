/* gst-vmdisplay: reading a DMA-BUF scanout on the CPU (no render node, the
 * EGL import refused, or detile=cpu). LINEAR, Intel X-tiled and Intel
 * Y-tiled single-plane RGB buffers (drm-formats.h, detile.h); every other
 * modifier is refused with a message naming it.
 *
 * Safety: the fd's size is checked against the layout before anything is
 * mapped, and again before every read. A real DMA-BUF never changes size, so
 * it is mapped (read-only) and read between DMA_BUF_IOCTL_SYNC START/END. A
 * memfd standing in for one (tests, a scripted peer) is mapped only when it
 * is sealed against shrinking; otherwise a peer could truncate it during the
 * read (SIGBUS), so it is read with pread in tile-row batches, and a
 * truncation is a short read: the frame is refused, the stream goes on.
 */
#pragma once

#include "dmabuf-layout.h"

#include <memory>
#include <string>
#include <vector>

namespace vmd {

struct CpuDmabufState; /* dmabuf-cpu.cpp */

class CpuDmabufReader : public DmabufReader {
 public:
  /* nullptr with *why when the layout or the fds cannot be read here. */
  static std::unique_ptr<DmabufReader> open(const DmabufLayout &layout, std::vector<UniqueFd> fds,
                                            std::string *why);
  ~CpuDmabufReader() override;

  bool read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why) override;
  std::string describe() const override;

 private:
  /* Passkey: only the factory builds one, through std::make_unique. */
  struct Key {
    explicit Key() = default;
  };

 public:
  CpuDmabufReader(Key, std::unique_ptr<CpuDmabufState> state);

 private:
  bool read_mapped(const Rect &src, uint8_t *out, size_t dst_stride, std::string *why);
  bool read_pread(const Rect &src, uint8_t *out, size_t dst_stride, std::string *why);
  std::unique_ptr<CpuDmabufState> s_;
};

}  // namespace vmd
