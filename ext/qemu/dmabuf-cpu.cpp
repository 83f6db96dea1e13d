/* gst-vmdisplay: CPU reader of DMA-BUF scanouts (see dmabuf-cpu.h). */
#include "dmabuf-cpu.h"

#include "string-format.h"

#include "detile.h"
#include "drm-formats.h"
#include "pixman-formats.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace vmd {
namespace {

constexpr uint32_t kMaxSide = 16384;
/* pread path: bytes read per batch (at least one tile row). */
constexpr size_t kPreadBatch = size_t(4) << 20;


/* A read-only shared mapping, unmapped on destruction. */
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  ~Mapping() {
    if (addr_ != MAP_FAILED)
      munmap(addr_, len_);
  }
  bool map(int fd, size_t len) {
    addr_ = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    len_ = len;
    return addr_ != MAP_FAILED;
  }
  const uint8_t *data() const { return static_cast<const uint8_t *>(addr_); }

 private:
  void *addr_ = MAP_FAILED;
  size_t len_ = 0;
};

/* The size of the file behind fd, as the DMA-BUF documentation says to find
 * it (llseek to the end); -1 with errno when it has none. */
int64_t fd_size(int fd) { return int64_t(lseek(fd, 0, SEEK_END)); }

/* A regular file (memfd) that can shrink under a mapping: read it with pread. */
bool may_shrink(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return false; /* a DMA-BUF: its size is fixed at export */
  int seals = fcntl(fd, F_GET_SEALS);
  return seals < 0 || !(seals & F_SEAL_SHRINK);
}

std::string modifier_refusal(uint64_t modifier) {
  std::string name = drm_modifier_name(modifier);
  if (name[0] == '0') { /* no name: say whose it is at least */
    const char *vendor = drm_modifier_vendor(modifier);
    name = vendor ? std::string("a vendor modifier of ") + vendor : "an unknown vendor's modifier";
  }
  return format_string("modifier 0x%016" PRIx64 " (%s) cannot be read on the CPU; it needs an EGL "
                "import on the GPU that made it (a render node, detile=auto/gl)",
                modifier, name.c_str());
}

bool rect_inside(const Rect &r, uint64_t width, uint64_t height) {
  return !r.empty() && uint64_t(r.x) + r.w <= width && uint64_t(r.y) + r.h <= height;
}

/* Checks everything about the layout that does not need the fd. */
bool check_layout(const DmabufLayout &l, size_t n_fds, const DrmFormat **fmt, Tiling *tiling,
                  uint64_t *needed, std::string *why) {
  *fmt = drm_format_lookup(l.fourcc);
  if (!*fmt) {
    *why = format_string("fourcc %s (0x%08" PRIx32 ") is not a single-plane RGB format qemudbussrc "
                  "can read",
                  drm_fourcc_name(l.fourcc).c_str(), l.fourcc);
    return false;
  }
  if (!pixman_format_lookup((*fmt)->pixman_code)) {
    *why = format_string("fourcc %s has no GStreamer format of the same layout (pixman 0x%08" PRIx32 ")",
                  (*fmt)->name, (*fmt)->pixman_code);
    return false;
  }
  if (l.num_planes != (*fmt)->num_planes) {
    *why = format_string("%" PRIu32 " planes given for %s, which has %" PRIu32, l.num_planes,
                  (*fmt)->name, (*fmt)->num_planes);
    return false;
  }
  for (uint32_t i = 0; i < l.num_planes; i++) {
    if (l.planes[i].fd_index >= n_fds) {
      *why = format_string("plane %" PRIu32 " refers to fd %" PRIu32 " of %zu", i, l.planes[i].fd_index,
                    n_fds);
      return false;
    }
  }
  if (!tiling_from_modifier(l.modifier, tiling)) {
    *why = modifier_refusal(l.modifier);
    return false;
  }
  if (l.backing_width > kMaxSide || l.backing_height > kMaxSide || l.backing_width < 1 ||
      l.backing_height < 1) {
    *why = format_string("buffer size %" PRIu32 "x%" PRIu32 " is not between 1x1 and %ux%u",
                  l.backing_width, l.backing_height, kMaxSide, kMaxSide);
    return false;
  }
  if (!rect_inside(l.visible, l.backing_width, l.backing_height)) {
    *why = format_string("visible rectangle %" PRIu32 ",%" PRIu32 " %" PRIu32 "x%" PRIu32
                  " is empty or not inside the %" PRIu32 "x%" PRIu32 " buffer",
                  l.visible.x, l.visible.y, l.visible.w, l.visible.h, l.backing_width,
                  l.backing_height);
    return false;
  }
  const DmabufPlane &p = l.planes[0];
  if (!plane_bytes_needed(*tiling, l.backing_width, l.backing_height, (*fmt)->bytes_per_pixel,
                          p.offset, p.stride, needed, why))
    return false;
  return true;
}

/* DMA_BUF_IOCTL_SYNC; false only for a real failure (a memfd has no such
 * ioctl: ENOTTY, and some exporters answer EINVAL or ENOTSUP). */
bool dmabuf_sync(int fd, uint64_t flags, bool *supported, std::string *why) {
  if (!*supported)
    return true;
  struct dma_buf_sync sync = {};
  sync.flags = flags;
  int ret;
  do {
    ret = ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync);
  } while (ret != 0 && (errno == EINTR || errno == EAGAIN));
  if (ret == 0)
    return true;
  if (errno == ENOTTY || errno == EINVAL || errno == ENOTSUP) {
    *supported = false;
    return true;
  }
  *why = format_string("DMA_BUF_IOCTL_SYNC %s failed: %s",
                (flags & DMA_BUF_SYNC_END) ? "END" : "START", strerror(errno));
  return false;
}

}  // namespace

struct CpuDmabufState {
  DmabufLayout layout;
  const DrmFormat *format = nullptr;
  Tiling tiling = Tiling::Linear;
  uint64_t needed = 0; /* bytes of the fd the layout covers */
  UniqueFd fd;
  bool use_pread = false;
  Mapping map;
  bool sync_supported = true;
  std::vector<uint8_t> scratch; /* pread path */
};

CpuDmabufReader::CpuDmabufReader(Key, std::unique_ptr<CpuDmabufState> state) : s_(std::move(state)) {}
CpuDmabufReader::~CpuDmabufReader() = default;

std::unique_ptr<DmabufReader> CpuDmabufReader::open(const DmabufLayout &layout,
                                                    std::vector<UniqueFd> fds, std::string *why) {
  auto s = std::make_unique<CpuDmabufState>();
  s->layout = layout;
  if (!check_layout(layout, fds.size(), &s->format, &s->tiling, &s->needed, why))
    return nullptr;
  s->fd = std::move(fds[layout.planes[0].fd_index]);
  if (!s->fd) {
    *why = format_string("plane 0's fd %" PRIu32 " is not open", layout.planes[0].fd_index);
    return nullptr;
  }
  const int64_t size = fd_size(s->fd.get());
  if (size < 0) {
    *why = format_string("cannot tell the size of the DMA-BUF fd (lseek: %s)", strerror(errno));
    return nullptr;
  }
  if (uint64_t(size) < s->needed) {
    *why = format_string("the DMA-BUF fd has %" PRId64 " bytes, the layout needs %" PRIu64
                  " (offset %" PRIu32 ", stride %" PRIu32 ", %" PRIu32 " rows, %s)",
                  size, s->needed, layout.planes[0].offset, layout.planes[0].stride,
                  layout.backing_height, tiling_name(s->tiling));
    return nullptr;
  }
  if (uint64_t(size_t(s->needed)) != s->needed) {
    *why = format_string("the layout needs %" PRIu64 " bytes, more than this process can map",
                  s->needed);
    return nullptr;
  }
  s->use_pread = may_shrink(s->fd.get());
  if (!s->use_pread && !s->map.map(s->fd.get(), size_t(s->needed))) {
    *why = format_string("cannot map the DMA-BUF (%" PRIu64 " bytes): %s", s->needed, strerror(errno));
    return nullptr;
  }
  return std::make_unique<CpuDmabufReader>(Key(), std::move(s));
}

bool CpuDmabufReader::read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *why) {
  const DmabufLayout &l = s_->layout;
  if (!rect_inside(r, l.visible.w, l.visible.h)) {
    *why = format_string("rectangle %" PRIu32 ",%" PRIu32 " %" PRIu32 "x%" PRIu32
                  " is empty or outside the %" PRIu32 "x%" PRIu32 " image",
                  r.x, r.y, r.w, r.h, l.visible.w, l.visible.h);
    return false;
  }
  /* QEMU does not seal its memfds: check the size before every access. */
  const int64_t size = fd_size(s_->fd.get());
  if (size < 0 || uint64_t(size) < s_->needed) {
    *why = format_string("the DMA-BUF fd shrank to %" PRId64 " bytes, the layout needs %" PRIu64
                  "; frame ignored",
                  size, s_->needed);
    return false;
  }
  /* y0_top flips inside the visible rectangle, as QEMU's egl_fb_blit does:
   * visible row y is stored at buffer row visible.y + visible.h - 1 - y.
   * detile_rect flips over the whole buffer height, so name the rows as
   * seen from the buffer's bottom. */
  const uint32_t top = l.y0_top ? l.backing_height - l.visible.y - l.visible.h + r.y
                                : l.visible.y + r.y;
  const Rect src{l.visible.x + r.x, top, r.w, r.h};
  uint8_t *out = dst + size_t(r.y) * dst_stride + size_t(r.x) * s_->format->bytes_per_pixel;
  return s_->use_pread ? read_pread(src, out, dst_stride, why)
                       : read_mapped(src, out, dst_stride, why);
}

bool CpuDmabufReader::read_mapped(const Rect &src, uint8_t *out, size_t dst_stride,
                                  std::string *why) {
  const DmabufLayout &l = s_->layout;
  const int fd = s_->fd.get();
  if (!dmabuf_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ, &s_->sync_supported, why))
    return false;
  detile_rect(s_->tiling, s_->map.data() + l.planes[0].offset, l.planes[0].stride,
              s_->format->bytes_per_pixel, src, l.y0_top, l.backing_height, out, dst_stride);
  return dmabuf_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ, &s_->sync_supported, why);
}

/* Reads the buffer rows src covers in batches of whole tile rows with pread,
 * and detiles each batch as a small buffer of its own. */
bool CpuDmabufReader::read_pread(const Rect &src, uint8_t *out, size_t dst_stride,
                                 std::string *why) {
  const DmabufLayout &l = s_->layout;
  const uint32_t stride = l.planes[0].stride, height = l.backing_height;
  const uint32_t tile_rows =
      s_->tiling == Tiling::IntelX ? 8 : s_->tiling == Tiling::IntelY ? 32 : 1;
  /* Buffer rows [first, end) hold displayed rows [src.y, src.bottom()). */
  const uint32_t first = l.y0_top ? height - src.bottom() : src.y;
  const uint32_t end = first + src.h;
  const uint32_t batch_rows =
      std::max<uint32_t>(tile_rows, uint32_t(kPreadBatch / stride) / tile_rows * tile_rows);
  for (uint32_t a = first / tile_rows * tile_rows; a < end; a += batch_rows) {
    const uint32_t b = uint32_t(std::min<uint64_t>(
        uint64_t(a) + batch_rows, uint64_t(end + tile_rows - 1) / tile_rows * tile_rows));
    const uint64_t start = l.planes[0].offset + uint64_t(a) * stride;
    const size_t len = size_t(std::min<uint64_t>(uint64_t(b - a) * stride, s_->needed - start));
    s_->scratch.resize(std::max(s_->scratch.size(), len));
    ssize_t got = pread(s_->fd.get(), s_->scratch.data(), len, off_t(start));
    if (got != ssize_t(len)) {
      *why = format_string("the DMA-BUF fd gave %zd of %zu bytes at %" PRIu64
                    " (shrank?); frame ignored",
                    got, len, start);
      return false;
    }
    /* This batch's part of src, in the batch's own rows. */
    const uint32_t lo = std::max(a, first), hi = std::min(b, end);
    const uint32_t y_disp = l.y0_top ? height - hi : lo; /* first displayed row of the part */
    const Rect part{src.x, l.y0_top ? b - hi : lo - a, src.w, hi - lo};
    detile_rect(s_->tiling, s_->scratch.data(), stride, s_->format->bytes_per_pixel, part,
                l.y0_top, b - a, out + size_t(y_disp - src.y) * dst_stride, dst_stride);
  }
  return true;
}

std::string CpuDmabufReader::describe() const {
  std::string how = s_->tiling == Tiling::Linear
                        ? "linear copy"
                        : drm_modifier_name(s_->layout.modifier) + " detile";
  if (s_->use_pread)
    how += ", pread: memfd not sealed against shrinking";
  return "CPU (" + how + ")";
}

}  // namespace vmd
