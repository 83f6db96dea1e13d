/* gst-vmdisplay: the host surface fed from a DMA-BUF (QEMU with gl=on).
 *
 * A ScanoutDMABUF makes a DmabufReader (dmabuf-scanout.*) the source of the
 * surface; every UpdateDMABUF reads its damaged rectangle through it into
 * the host surface, under the store's lock, before the call returns: the
 * listener replies only then, and that reply is what lets the guest's GPU
 * queue go on. */
#include "frame-store.h"

#include <algorithm>

namespace vmd {

Verdict FrameStore::scanout_dmabuf(std::shared_ptr<DmabufReader> reader, uint32_t width,
                                   uint32_t height, const PixmanFormat *fmt,
                                   const std::string &path, int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!reader || !fmt || width == 0 || height == 0 || width > kMaxSurfaceSide ||
      height > kMaxSurfaceSide)
    return ignore_locked("ScanoutDMABUF: no readable buffer");
  const uint64_t before = format_.generation;
  const bool had = have_surface_;
  const bool had_dmabuf = dmabuf_ != nullptr;
  std::shared_ptr<DmabufMirror> mirror = std::move(mirror_);
  const bool stale = host_stale_;
  new_surface_locked(width, height, fmt);
  dmabuf_ = std::move(reader);
  if (mirror && had && format_.generation == before) {
    /* Another buffer of the same size (a guest flipping): the mirror
     * follows it, or the stream goes back to system memory. */
    std::string why;
    if (reattach_mirror_locked(std::move(mirror), &why))
      host_stale_ = stale;
    else
      bump_generation_locked();
  }
  if (path != dmabuf_path_) {
    dmabuf_path_ = path;
    dmabuf_path_serial_++;
  }
  stats_.dmabuf_scanouts++;
  stats_.scanouts++;
  /* A guest flipping between buffers of the same size sends an UpdateDMABUF
   * right after each ScanoutDMABUF; a new surface is read at once, so the
   * first frame of a new size is never a blank one, and so is one that
   * follows a surface of another kind (a Scanout copy, a refused buffer):
   * the host surface holds older pixels then. */
  if (!had || format_.generation != before || !had_dmabuf) {
    std::string why;
    if (!read_rect_from_dmabuf_locked(Rect{0, 0, width, height}, &why))
      return Verdict{true, "ScanoutDMABUF: " + why, true};
    damage_locked(Rect{0, 0, width, height}, now_us);
  }
  return {};
}

void FrameStore::drop_dmabuf() {
  std::lock_guard<std::mutex> guard(lock_);
  dmabuf_.reset();
  if (mirror_) {
    mirror_.reset();
    bump_generation_locked(); /* back to system memory */
  }
}

Verdict FrameStore::update_dmabuf(int32_t x, int32_t y, int32_t w, int32_t h, int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  /* Always a successful reply: an error reply unblocks the guest just the
   * same but makes QEMU log every frame. */
  if (!have_surface_ || !dmabuf_) {
    stats_.ignored++;
    if (warned_update_without_dmabuf_)
      return {};
    warned_update_without_dmabuf_ = true;
    return Verdict{true,
                   "UpdateDMABUF without a ScanoutDMABUF before it (QEMU could not export the "
                   "guest's display as a DMA-BUF); ignoring such updates until one comes",
                   true};
  }
  Rect r;
  if (w <= 0 || h <= 0 || !clip_rect(x, y, w, h, format_.width, format_.height, &r)) {
    stats_.ignored++;
    return Verdict{true,
                   "UpdateDMABUF: rectangle " + std::to_string(w) + "x" + std::to_string(h) +
                       " at " + std::to_string(x) + "," + std::to_string(y) +
                       " is outside the " + std::to_string(format_.width) + "x" +
                       std::to_string(format_.height) + " surface",
                   true};
  }
  std::string why;
  if (!read_rect_from_dmabuf_locked(r, &why)) {
    stats_.ignored++;
    return Verdict{true, "UpdateDMABUF: " + why, true};
  }
  stats_.updates++;
  stats_.dmabuf_updates++;
  damage_locked(r, now_us);
  return {};
}

bool FrameStore::read_rect_from_dmabuf_locked(const Rect &rect, std::string *why) {
  if (mirror_ && mirror_rect_locked(rect, why))
    return true;
  /* After mirrored updates the host surface is behind: read all of it. */
  const Rect r = host_stale_ ? Rect{0, 0, format_.width, format_.height} : rect;
  make_writable_locked();
  if (!dmabuf_->read(r, pixels_.data(), stride_, why))
    return false;
  host_stale_ = false;
  stats_.bytes_in += uint64_t(r.w) * format_.format->bytes_per_pixel * r.h;
  return true;
}

void FrameStore::record_ack(int64_t us) {
  std::lock_guard<std::mutex> guard(lock_);
  acks_[stats_.acks % acks_.size()] = us;
  stats_.acks++;
  stats_.ack_max_us = std::max(stats_.ack_max_us, us);
}

int64_t FrameStore::ack_median_locked() const {
  const size_t n = std::min<uint64_t>(stats_.acks, acks_.size());
  if (n == 0)
    return 0;
  std::array<int64_t, 256> sorted = acks_;
  std::nth_element(sorted.begin(), sorted.begin() + n / 2, sorted.begin() + n);
  return sorted[n / 2];
}

std::string FrameStore::dmabuf_path(uint64_t *serial) const {
  std::lock_guard<std::mutex> guard(lock_);
  *serial = dmabuf_path_serial_;
  return dmabuf_path_;
}

}  // namespace vmd
