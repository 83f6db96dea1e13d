/* gst-vmdisplay: the host surface's DMA-BUF updates sent to a mirror on the
 * GPU instead (qemudbussrc's GLMemory output, gl-output.*).
 *
 * While a mirror is attached, UpdateDMABUF draws into it and not into the
 * host surface, which falls behind (host_stale_): whoever needs the host
 * surface again (detaching, or a mirror that failed) reads the whole
 * surface through the reader first. Any doubt drops the mirror and starts
 * a new generation, so the streaming thread renegotiates, to system memory
 * unless the new surface can be mirrored again. */
#include "frame-store.h"

namespace vmd {

void FrameStore::bump_generation_locked() {
  format_.generation = next_generation_++;
  format_since_us_ = g_get_monotonic_time();
  if (!unreported_since_us_)
    unreported_since_us_ = format_since_us_;
  history_.clear();
  cond_.notify_all();
}

bool FrameStore::reattach_mirror_locked(std::shared_ptr<DmabufMirror> mirror, std::string *why) {
  DmabufLayout layout;
  std::vector<UniqueFd> fds;
  if (!dmabuf_ || !dmabuf_->mirror_source(&layout, &fds)) {
    *why = "the DMA-BUF is not read on the GPU";
    return false;
  }
  if (!mirror->attach(layout, std::move(fds), why))
    return false;
  mirror_ = std::move(mirror);
  return true;
}

bool FrameStore::mirror_rect_locked(const Rect &r, std::string *why) {
  if (mirror_->draw(r, why)) {
    host_stale_ = true;
    stats_.bytes_in += uint64_t(r.w) * format_.format->bytes_per_pixel * r.h;
    return true;
  }
  mirror_.reset();
  bump_generation_locked();
  return false;
}

bool FrameStore::dmabuf_mirrorable(uint64_t generation) const {
  std::lock_guard<std::mutex> guard(lock_);
  DmabufLayout layout;
  std::vector<UniqueFd> fds;
  return have_surface_ && format_.generation == generation && dmabuf_ &&
         dmabuf_->mirror_source(&layout, &fds);
}

bool FrameStore::set_dmabuf_mirror(std::shared_ptr<DmabufMirror> mirror, uint64_t generation,
                                   std::string *why) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!mirror) {
    mirror_.reset();
    if (host_stale_ && dmabuf_ && have_surface_) {
      make_writable_locked();
      if (dmabuf_->read(Rect{0, 0, format_.width, format_.height}, pixels_.data(), stride_, why))
        host_stale_ = false;
    }
    return true;
  }
  if (!have_surface_ || format_.generation != generation) {
    *why = "the surface changed";
    return false;
  }
  mirror_.reset();
  if (!reattach_mirror_locked(std::move(mirror), why))
    return false;
  if (!mirror_->draw(Rect{0, 0, format_.width, format_.height}, why)) {
    mirror_.reset();
    return false;
  }
  return true;
}

bool FrameStore::take_frame_gl(uint64_t generation, uint64_t *frame_seq, int64_t *arrival_us) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!have_surface_ || format_.generation != generation || !mirror_)
    return false;
  seq_++;
  history_.push(seq_, pending_);
  pending_.clear();
  *frame_seq = seq_;
  *arrival_us = pending_arrival_us_;
  stats_.frames++;
  stats_.full_copies++;
  return true;
}

}  // namespace vmd
