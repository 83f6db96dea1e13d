/* gst-vmdisplay: the host-owned copy of a QEMU console surface. */
#include "frame-store.h"

#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace vmd {
namespace {

std::string printf_string(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
std::string printf_string(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  GCharPtr s(g_strdup_vprintf(fmt, args));
  va_end(args);
  return std::string(s.get());
}

/* Rejects sizes no display has, before any arithmetic on them. */
std::string check_size(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || width > kMaxSurfaceSide || height > kMaxSurfaceSide)
    return printf_string("size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                         " is not between 1x1 and %ux%u",
                         width, height, kMaxSurfaceSide, kMaxSurfaceSide);
  return {};
}

}  // namespace

size_t FrameStore::packed_stride(uint32_t width, uint32_t bytes_per_pixel) {
  return (size_t(width) * bytes_per_pixel + 3) & ~size_t(3);
}

Verdict FrameStore::ignore_locked(std::string why) {
  stats_.ignored++;
  return Verdict{false, std::move(why)};
}

bool FrameStore::check_format_locked(uint32_t pixman_format, const PixmanFormat **out,
                                     Verdict *v) {
  *out = pixman_format_lookup(pixman_format);
  if (*out)
    return true;
  failed_ = printf_string(
      "QEMU sent pixman format 0x%08x, which qemudbussrc does not know. "
      "Please report it with your QEMU version and display device.",
      pixman_format);
  stats_.ignored++;
  cond_.notify_all();
  *v = Verdict{false, failed_};
  return false;
}

void FrameStore::new_surface_locked(uint32_t width, uint32_t height, const PixmanFormat *fmt) {
  /* With a mirror the caps say GLMemory: any new surface renegotiates. */
  bool same = have_surface_ && format_.width == width && format_.height == height &&
              format_.format->gst == fmt->gst && !mirror_;
  mirror_.reset();
  host_stale_ = false;
  if (!same) {
    format_.generation = next_generation_++;
    format_since_us_ = g_get_monotonic_time();
    if (!unreported_since_us_)
      unreported_since_us_ = format_since_us_;
    format_.width = width;
    format_.height = height;
    own_stride_ = packed_stride(width, fmt->bytes_per_pixel);
    pixels_.assign(own_stride_ * height, 0);
    borrowed_.reset();
    view_ = pixels_.data();
    stride_ = own_stride_;
    history_.clear();
  }
  format_.format = fmt;
  have_surface_ = true;
  disabled_ = false;
  borrowed_.reset(); /* callers set the new content next */
  view_ = pixels_.data();
  stride_ = own_stride_;
  map_fd_.reset();
  dmabuf_.reset();
}

void FrameStore::damage_locked(const Rect &r, int64_t now_us) {
  pending_.add(r);
  pending_arrival_us_ = now_us;
  cond_.notify_all();
}

void FrameStore::make_writable_locked() {
  if (!borrowed_)
    return;
  /* First partial update after a zero-copy Scanout: take our own copy. */
  const size_t row = size_t(format_.width) * format_.format->bytes_per_pixel;
  pixels_.resize(own_stride_ * format_.height);
  for (uint32_t i = 0; i < format_.height; i++)
    std::memcpy(pixels_.data() + i * own_stride_, view_ + i * stride_, row);
  stats_.bytes_in += row * format_.height;
  borrowed_.reset();
  view_ = pixels_.data();
  stride_ = own_stride_;
}

void FrameStore::copy_rect_in_locked(const Rect &r, const uint8_t *src, size_t src_stride) {
  make_writable_locked();
  const size_t bpp = format_.format->bytes_per_pixel;
  const size_t row = r.w * bpp;
  uint8_t *dst = pixels_.data() + r.y * stride_ + r.x * bpp;
  if (r.x == 0 && r.w == format_.width && src_stride == stride_) {
    std::memcpy(dst, src, stride_ * (r.h - 1) + row);
  } else {
    for (uint32_t i = 0; i < r.h; i++)
      std::memcpy(dst + i * stride_, src + i * src_stride, row);
  }
  stats_.bytes_in += row * r.h;
}

Verdict FrameStore::scanout(uint32_t width, uint32_t height, uint32_t stride,
                            uint32_t pixman_format, const uint8_t *data, size_t size,
                            int64_t now_us, std::shared_ptr<const void> hold) {
  std::lock_guard<std::mutex> guard(lock_);
  const PixmanFormat *fmt;
  Verdict bad;
  if (!check_format_locked(pixman_format, &fmt, &bad))
    return bad;
  std::string err = check_size(width, height);
  if (!err.empty())
    return ignore_locked("Scanout: " + err);
  const uint64_t row = uint64_t(width) * fmt->bytes_per_pixel;
  if (stride < row)
    return ignore_locked(printf_string("Scanout: stride %u is smaller than a row of %ux%s (%" G_GUINT64_FORMAT " bytes)",
                                       stride, width, fmt->name, row));
  if (size < uint64_t(stride) * height)
    return ignore_locked(printf_string("Scanout: %" G_GSIZE_FORMAT " bytes of data, %ux%u with stride %u needs %" G_GUINT64_FORMAT,
                                       size, width, height, stride, uint64_t(stride) * height));
  new_surface_locked(width, height, fmt);
  if (hold) {
    borrowed_ = std::move(hold);
    view_ = data;
    stride_ = stride;
  } else {
    borrowed_.reset();
    view_ = pixels_.data();
    stride_ = own_stride_;
    copy_rect_in_locked(Rect{0, 0, width, height}, data, stride);
  }
  stats_.scanouts++;
  damage_locked(Rect{0, 0, width, height}, now_us);
  return {};
}

Verdict FrameStore::update(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t stride,
                               uint32_t pixman_format, const uint8_t *data, size_t size,
                               int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  const PixmanFormat *fmt;
  Verdict bad;
  if (!check_format_locked(pixman_format, &fmt, &bad))
    return bad;
  if (!have_surface_)
    return ignore_locked("Update before any Scanout");
  if (fmt->gst != format_.format->gst)
    return ignore_locked(printf_string("Update in format %s, but the surface is %s",
                                       fmt->name, format_.format->name));
  std::string err = check_size(w, h);
  if (!err.empty())
    return ignore_locked("Update: " + err);
  const uint64_t row = uint64_t(w) * fmt->bytes_per_pixel;
  if (stride < row)
    return ignore_locked(printf_string("Update: stride %u is smaller than a row of %d pixels", stride, w));
  if (size < uint64_t(stride) * h)
    return ignore_locked(printf_string("Update: %" G_GSIZE_FORMAT " bytes of data, %dx%d with stride %u needs %" G_GUINT64_FORMAT,
                                       size, w, h, stride, uint64_t(stride) * h));
  Rect r;
  if (!clip_rect(x, y, w, h, format_.width, format_.height, &r))
    return ignore_locked(printf_string("Update: rectangle %dx%d at %d,%d is outside the %ux%u surface",
                                       w, h, x, y, format_.width, format_.height));
  const uint8_t *src = data + size_t(r.y - int64_t(y)) * stride +
                       size_t(r.x - int64_t(x)) * fmt->bytes_per_pixel;
  copy_rect_in_locked(r, src, stride);
  stats_.updates++;
  damage_locked(r, now_us);
  if (r.w != uint32_t(w) || r.h != uint32_t(h))
    return Verdict{true, printf_string("Update: rectangle %dx%d at %d,%d clipped to the %ux%u surface",
                                     w, h, x, y, format_.width, format_.height)};
  return {};
}

Verdict FrameStore::scanout_map(UniqueFd memfd, uint32_t offset, uint32_t width,
                                    uint32_t height, uint32_t stride, uint32_t pixman_format,
                                    int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  const PixmanFormat *fmt;
  Verdict bad;
  if (!check_format_locked(pixman_format, &fmt, &bad))
    return bad;
  std::string err = check_size(width, height);
  if (!err.empty())
    return ignore_locked("ScanoutMap: " + err);
  const uint64_t row = uint64_t(width) * fmt->bytes_per_pixel;
  if (stride < row)
    return ignore_locked(printf_string("ScanoutMap: stride %u is smaller than a row of %ux%s",
                                       stride, width, fmt->name));
  const uint64_t need = uint64_t(offset) + uint64_t(stride) * height;
  struct stat st;
  if (!memfd || fstat(memfd.get(), &st) != 0)
    return ignore_locked(printf_string("ScanoutMap: cannot stat the fd: %s", g_strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return ignore_locked("ScanoutMap: the fd is not a memory file");
  if (uint64_t(st.st_size) < need)
    return ignore_locked(printf_string("ScanoutMap: the fd holds %" G_GINT64_FORMAT " bytes, offset %u + stride %u x height %u needs %" G_GUINT64_FORMAT,
                                       gint64(st.st_size), offset, stride, height, need));
  new_surface_locked(width, height, fmt);
  map_fd_ = std::move(memfd);
  map_offset_ = offset;
  map_stride_ = stride;
  if (!read_rect_from_map_locked(Rect{0, 0, width, height}))
    return ignore_locked("ScanoutMap: the shared memory shrank while we read it; waiting for the next Scanout");
  stats_.scanouts++;
  stats_.map_scanouts++;
  damage_locked(Rect{0, 0, width, height}, now_us);
  return {};
}

/* The peer can truncate its memfd at any moment and nothing (QEMU does not
 * seal it) stops it, so the pixels are read with preadv() rather than from a
 * mapping: a shrunk file gives a short read, never a SIGBUS. */
bool FrameStore::read_rect_from_map_locked(const Rect &r) {
  make_writable_locked();
  const size_t bpp = format_.format->bytes_per_pixel;
  const size_t row = size_t(r.w) * bpp;
  const size_t gap = map_stride_ - row; /* bytes between two rows of r in the file */
  uint8_t *dst = pixels_.data() + r.y * stride_ + r.x * bpp;
  off_t src = off_t(map_offset_ + uint64_t(r.y) * map_stride_ + uint64_t(r.x) * bpp);
  auto read_exactly = [&](struct iovec *iov, int n, size_t bytes, off_t at) {
    for (;;) {
      ssize_t got = preadv(map_fd_.get(), iov, n, at);
      if (got < 0 && errno == EINTR)
        continue;
      return got == ssize_t(bytes); /* short: the file shrank */
    }
  };
  bool ok = true;
  if (gap <= row) {
    /* Rows are close together in the file: read the whole span, scattering
     * the rows into the surface and the gaps into a scratch buffer. */
    constexpr uint32_t kRowsPerCall = 256; /* 2 iovecs a row, under IOV_MAX */
    map_scratch_.resize(gap);
    std::vector<struct iovec> iov;
    for (uint32_t y0 = 0; ok && y0 < r.h; y0 += kRowsPerCall) {
      const uint32_t n = std::min(kRowsPerCall, r.h - y0);
      iov.clear();
      size_t bytes = 0;
      for (uint32_t i = 0; i < n; i++) {
        iov.push_back({dst + size_t(y0 + i) * stride_, row});
        bytes += row;
        if (gap && y0 + i + 1 < r.h) {
          iov.push_back({map_scratch_.data(), gap});
          bytes += gap;
        }
      }
      ok = read_exactly(iov.data(), int(iov.size()), bytes, src + off_t(y0) * off_t(map_stride_));
    }
  } else {
    for (uint32_t i = 0; ok && i < r.h; i++) {
      struct iovec one = {dst + size_t(i) * stride_, row};
      ok = read_exactly(&one, 1, row, src + off_t(i) * off_t(map_stride_));
    }
  }
  if (!ok) {
    map_fd_.reset();
    return false;
  }
  stats_.bytes_in += row * r.h;
  return true;
}

Verdict FrameStore::update_map(int32_t x, int32_t y, int32_t w, int32_t h, int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!have_surface_ || !map_fd_)
    return ignore_locked("UpdateMap without a current ScanoutMap");
  std::string err = check_size(w, h);
  if (!err.empty())
    return ignore_locked("UpdateMap: " + err);
  Rect r;
  if (!clip_rect(x, y, w, h, format_.width, format_.height, &r))
    return ignore_locked(printf_string("UpdateMap: rectangle %dx%d at %d,%d is outside the %ux%u surface",
                                       w, h, x, y, format_.width, format_.height));
  if (!read_rect_from_map_locked(r))
    return ignore_locked("UpdateMap: the shared memory shrank under us; waiting for the next Scanout");
  stats_.updates++;
  stats_.map_updates++;
  damage_locked(r, now_us);
  return {};
}

void FrameStore::disable() {
  std::lock_guard<std::mutex> guard(lock_);
  disabled_ = true;
  pending_.clear();
  cond_.notify_all();
}

void FrameStore::connection_lost(bool reconnecting) {
  std::lock_guard<std::mutex> guard(lock_);
  if (reconnecting) {
    have_surface_ = false;
    borrowed_.reset();
    pending_.clear();
    map_fd_.reset();
    dmabuf_.reset();
    forget_cursor_locked();
  } else {
    ended_ = true;
  }
  cond_.notify_all();
}

void FrameStore::fail(const std::string &error) {
  std::lock_guard<std::mutex> guard(lock_);
  if (failed_.empty())
    failed_ = error;
  cond_.notify_all();
}

void FrameStore::set_flushing(bool flushing) {
  std::lock_guard<std::mutex> guard(lock_);
  flushing_ = flushing;
  cond_.notify_all();
}

Wake FrameStore::wait(const WaitArgs &args, FrameFormat *format, std::string *error) {
  std::unique_lock<std::mutex> guard(lock_);
  for (;;) {
    if (flushing_)
      return Wake::Flushing;
    if (!failed_.empty()) {
      *error = failed_;
      return Wake::Failed;
    }
    if (ended_)
      return Wake::Ended;
    const int64_t now = g_get_monotonic_time();
    /* Never sleep longer than a second: a lost wake-up costs at most that. */
    int64_t deadline = now + G_USEC_PER_SEC;
    if (args.want_cursor && cursor_.serial != args.cursor_serial) {
      /* At most one cursor report per frame interval, however fast the
       * guest moves it: the latest state is what gets reported. */
      if (now >= args.earliest_cursor_us)
        return Wake::Cursor;
      deadline = std::min(deadline, args.earliest_cursor_us);
    }
    if (have_surface_ && format_.generation != args.generation) {
      const int64_t settled = std::min(format_since_us_ + args.format_settle_us,
                                       unreported_since_us_ + 3 * args.format_settle_us);
      if (now >= settled) {
        *format = format_;
        unreported_since_us_ = 0;
        return Wake::NewFormat;
      }
      /* Nothing of the old surface is worth pushing meanwhile. */
      cond_.wait_for(guard, std::chrono::microseconds(settled - now));
      continue;
    }
    const bool active = have_surface_ && !disabled_;
    if (active && !pending_.empty()) {
      if (now >= args.earliest_frame_us)
        return Wake::Frame;
      deadline = std::min(deadline, args.earliest_frame_us);
    }
    if (active && args.can_repeat && args.keepalive_at_us > 0) {
      if (now >= args.keepalive_at_us)
        return Wake::Keepalive;
      deadline = std::min(deadline, args.keepalive_at_us);
    }
    cond_.wait_for(guard, std::chrono::microseconds(deadline - now));
  }
}

bool FrameStore::take_frame(uint64_t generation, uint64_t held_seq, uint8_t *dst,
                            size_t dst_stride, uint64_t *frame_seq, int64_t *arrival_us) {
  std::lock_guard<std::mutex> guard(lock_);
  if (!have_surface_ || format_.generation != generation)
    return false;
  seq_++;
  history_.push(seq_, pending_);
  pending_.clear();
  *frame_seq = seq_;
  *arrival_us = pending_arrival_us_;
  stats_.frames++;

  const uint64_t full_area = uint64_t(format_.width) * format_.height;
  Region need;
  bool partial = history_.since(held_seq, &need) && need.area() < full_area;
  /* The cursor is drawn over a fresh copy of what it covers: a recycled
   * buffer already has it drawn there, and blending twice would darken it. */
  const Rect pointer = draw_cursor_ ? cursor_rect(cursor_, format_.width, format_.height) : Rect{};
  if (partial && !pointer.empty())
    need.add(pointer);
  if (partial && need.area() < full_area) {
    for (const Rect &r : need.rects())
      copy_out_locked(r, dst, dst_stride);
  } else {
    stats_.full_copies++;
    copy_out_locked(Rect{0, 0, format_.width, format_.height}, dst, dst_stride);
  }
  if (!pointer.empty())
    cursor_blend(cursor_, *format_.format, dst, dst_stride, format_.width, format_.height);
  return true;
}

void FrameStore::copy_out_locked(const Rect &r, uint8_t *dst, size_t dst_stride) {
  const size_t bpp = format_.format->bytes_per_pixel;
  const size_t row = r.w * bpp;
  const uint8_t *src = view_ + r.y * stride_ + r.x * bpp;
  uint8_t *out = dst + r.y * dst_stride + r.x * bpp;
  if (r.w == format_.width && dst_stride == stride_) {
    std::memcpy(out, src, stride_ * (r.h - 1) + row); /* whole rows: one copy */
  } else {
    for (uint32_t i = 0; i < r.h; i++)
      std::memcpy(out + i * dst_stride, src + i * stride_, row);
  }
  stats_.bytes_out += row * r.h;
}

FrameFormat FrameStore::format() const {
  std::lock_guard<std::mutex> guard(lock_);
  return format_;
}

FrameStats FrameStore::stats() const {
  std::lock_guard<std::mutex> guard(lock_);
  FrameStats st = stats_;
  st.ack_median_us = ack_median_locked();
  return st;
}

}  // namespace vmd
