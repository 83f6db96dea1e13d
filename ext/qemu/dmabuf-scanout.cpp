/* gst-vmdisplay: turning QEMU's DMA-BUF scanout calls into a reader. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "dmabuf-scanout.h"

#include "detile.h"
#include "dmabuf-cpu.h"
#include "drm-formats.h"
#include "frame-store.h"
#ifdef HAVE_EGL_IMPORT
#include "dmabuf-import.h"
#include "egl-device.h"
#endif

#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <sys/stat.h>

#include <cinttypes>
#include <cstring>
#include <tuple>

namespace vmd {
namespace {

/* Keeps at most this many buffers' readers: double and triple buffering. */
constexpr size_t kMaxCachedReaders = 4;

std::string hex_modifier(uint64_t modifier) {
  char buf[32];
  g_snprintf(buf, sizeof buf, "0x%016" PRIx64, modifier);
  return buf;
}

/* Takes fds[handle] out of the list as an owned fd. */
bool take_fd(GUnixFDList *fds, gint32 handle, UniqueFd *out, std::string *why) {
  if (!fds || handle < 0 || handle >= g_unix_fd_list_get_length(fds)) {
    *why = "no file descriptor came with the call (handle " + std::to_string(handle) + ")";
    return false;
  }
  out->reset(g_unix_fd_list_get(fds, handle, nullptr));
  if (!*out) {
    *why = "cannot duplicate the file descriptor QEMU sent";
    return false;
  }
  return true;
}

bool check_side(uint32_t v, const char *what, std::string *why) {
  if (v == 0 || v > kMaxSurfaceSide) {
    *why = std::string(what) + " " + std::to_string(v) + " is not between 1 and " +
           std::to_string(kMaxSurfaceSide);
    return false;
  }
  return true;
}

/* Identity of the buffer behind a scanout: the same GEM object exported
 * again comes with a new fd number but the same inode. */
struct BufferKey {
  std::vector<std::pair<dev_t, ino_t>> files;
  uint32_t fourcc = 0;
  uint64_t modifier = 0;
  uint32_t bw = 0, bh = 0, num_planes = 0;
  Rect visible;
  bool y0_top = false;
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t>> planes;

  bool operator==(const BufferKey &o) const {
    return files == o.files && fourcc == o.fourcc && modifier == o.modifier && bw == o.bw &&
           bh == o.bh && num_planes == o.num_planes && visible == o.visible &&
           y0_top == o.y0_top && planes == o.planes;
  }
};

bool make_key(const DmabufScanoutMsg &msg, BufferKey *key) {
  for (const UniqueFd &fd : msg.fds) {
    struct stat st;
    if (fstat(fd.get(), &st) != 0)
      return false;
    key->files.emplace_back(st.st_dev, st.st_ino);
  }
  const DmabufLayout &l = msg.layout;
  key->fourcc = l.fourcc;
  key->modifier = l.modifier;
  key->bw = l.backing_width;
  key->bh = l.backing_height;
  key->num_planes = l.num_planes;
  key->visible = l.visible;
  key->y0_top = l.y0_top;
  for (uint32_t i = 0; i < l.num_planes; i++)
    key->planes.emplace_back(l.planes[i].fd_index, l.planes[i].offset, l.planes[i].stride);
  return true;
}

[[maybe_unused]] std::vector<UniqueFd> dup_fds(const std::vector<UniqueFd> &fds) {
  std::vector<UniqueFd> out;
  for (const UniqueFd &fd : fds)
    out.emplace_back(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  return out;
}

const char *mode_name(DetileMode mode) {
  switch (mode) {
    case DetileMode::Gl:
      return "gl";
    case DetileMode::Cpu:
      return "cpu";
    default:
      return "auto";
  }
}

}  // namespace

bool parse_scanout_dmabuf(GVariant *params, GUnixFDList *fds, DmabufScanoutMsg *out,
                          std::string *why) {
  gint32 handle;
  guint32 w, h, stride, fourcc;
  guint64 modifier;
  gboolean y0_top;
  g_variant_get(params, "(huuuutb)", &handle, &w, &h, &stride, &fourcc, &modifier, &y0_top);
  UniqueFd fd;
  if (!check_side(w, "width", why) || !check_side(h, "height", why) ||
      !take_fd(fds, handle, &fd, why))
    return false;
  DmabufLayout &l = out->layout;
  l.fourcc = fourcc;
  l.modifier = modifier;
  /* QEMU < 8.1 sends the backing size, >= 8.1 the visible size (and loses
   * the rest): either way the image starts at 0,0 of a buffer this big. */
  l.backing_width = w;
  l.backing_height = h;
  l.visible = Rect{0, 0, w, h};
  l.num_planes = 1;
  l.planes[0] = DmabufPlane{0, 0, stride};
  l.y0_top = y0_top;
  out->fds.clear();
  out->fds.push_back(std::move(fd));
  return true;
}

bool parse_scanout_dmabuf2(GVariant *params, GUnixFDList *fds, DmabufScanoutMsg *out,
                           std::string *why) {
  GVariant *handles = nullptr, *offsets = nullptr, *strides = nullptr;
  guint32 x, y, w, h, num_planes, fourcc, bw, bh;
  guint64 modifier;
  gboolean y0_top;
  g_variant_get(params, "(@ahuuuu@au@auuuuutb)", &handles, &x, &y, &w, &h, &offsets, &strides,
                &num_planes, &fourcc, &bw, &bh, &modifier, &y0_top);
  GVariantPtr own_h(handles), own_o(offsets), own_s(strides);
  gsize n_fds = 0, n_off = 0, n_str = 0;
  const gint32 *hv = static_cast<const gint32 *>(g_variant_get_fixed_array(handles, &n_fds, 4));
  const guint32 *ov =
      static_cast<const guint32 *>(g_variant_get_fixed_array(offsets, &n_off, 4));
  const guint32 *sv =
      static_cast<const guint32 *>(g_variant_get_fixed_array(strides, &n_str, 4));
  if (num_planes == 0 || num_planes > kMaxDmabufPlanes) {
    *why = "num_planes " + std::to_string(num_planes) + " is not between 1 and " +
           std::to_string(kMaxDmabufPlanes);
    return false;
  }
  if (n_off < num_planes || n_str < num_planes) {
    *why = "num_planes is " + std::to_string(num_planes) + " but " + std::to_string(n_off) +
           " offsets and " + std::to_string(n_str) + " strides came";
    return false;
  }
  if (n_fds == 0 || n_fds > num_planes) {
    *why = std::to_string(n_fds) + " fds for " + std::to_string(num_planes) + " planes";
    return false;
  }
  if (!check_side(w, "width", why) || !check_side(h, "height", why) ||
      !check_side(bw, "backing width", why) || !check_side(bh, "backing height", why))
    return false;
  if (uint64_t(x) + w > bw || uint64_t(y) + h > bh) {
    *why = "visible rectangle " + std::to_string(w) + "x" + std::to_string(h) + " at " +
           std::to_string(x) + "," + std::to_string(y) + " is not inside the " +
           std::to_string(bw) + "x" + std::to_string(bh) + " buffer";
    return false;
  }
  out->fds.clear();
  for (gsize i = 0; i < n_fds; i++) {
    UniqueFd fd;
    if (!take_fd(fds, hv[i], &fd, why))
      return false;
    out->fds.push_back(std::move(fd));
  }
  DmabufLayout &l = out->layout;
  l.fourcc = fourcc;
  l.modifier = modifier;
  l.backing_width = bw;
  l.backing_height = bh;
  l.visible = Rect{x, y, w, h};
  l.num_planes = num_planes;
  for (uint32_t i = 0; i < num_planes; i++)
    l.planes[i] = DmabufPlane{i < n_fds ? i : 0, ov[i], sv[i]};
  l.y0_top = y0_top;
  return true;
}

struct DmabufScanouts::Cached {
  BufferKey key;
  std::shared_ptr<DmabufReader> reader;
  const PixmanFormat *host = nullptr;
  std::string path;
};

DmabufScanouts::DmabufScanouts(DmabufOptions options) : options_(std::move(options)) {}
DmabufScanouts::~DmabufScanouts() = default;

void DmabufScanouts::forget() {
  std::lock_guard<std::mutex> guard(lock_);
  cache_.clear();
}

const std::vector<std::shared_ptr<EglDevice>> &DmabufScanouts::egl_locked(std::string *why) {
#ifdef HAVE_EGL_IMPORT
  if (!egl_tried_) {
    egl_tried_ = true;
    egl_ = EglDevice::open_candidates(options_.render_node, &egl_why_);
  }
#else
  egl_why_ = "qemudbussrc was built without EGL (libepoxy was missing)";
#endif
  if (egl_.empty())
    *why = egl_why_.empty() ? "no EGL device opened" : egl_why_;
  return egl_;
}

std::shared_ptr<DmabufReader> DmabufScanouts::open_reader_locked(DmabufScanoutMsg &msg,
                                                                 const PixmanFormat *host,
                                                                 std::string *how, bool *fatal,
                                                                 std::string *why) {
  const DmabufLayout &l = msg.layout;
  std::string egl_why;
  Tiling tiling;
  const bool cpu_readable = tiling_from_modifier(l.modifier, &tiling);
  if (options_.mode != DetileMode::Cpu) {
    const auto &devices = egl_locked(&egl_why);
    /* auto: a software EGL (llvmpipe) draws on the CPU, through an import,
     * a draw and a readback: the CPU reader does the layouts it knows ten
     * times faster (docs/performance.md), so EGL is only for the rest. */
    bool all_software = !devices.empty();
#ifdef HAVE_EGL_IMPORT
    for (const auto &d : devices)
      all_software = all_software && d->software();
#endif
    if (options_.mode == DetileMode::Auto && cpu_readable && all_software) {
      std::unique_ptr<DmabufReader> r = CpuDmabufReader::open(l, std::move(msg.fds), why);
      if (!r)
        return nullptr;
      *how = r->describe() + " (EGL is software rendering here)";
      return std::shared_ptr<DmabufReader>(std::move(r));
    }
#ifdef HAVE_EGL_IMPORT
    if (!devices.empty()) {
      /* The first device whose EGL imports this buffer. */
      std::unique_ptr<DmabufReader> r =
          EglDmabufReader::open_first(devices, l, dup_fds(msg.fds), host->gst, &egl_why);
      if (r) {
        *how = r->describe();
        return std::shared_ptr<DmabufReader>(std::move(r));
      }
    }
#else
    (void)devices;
    (void)host;
#endif
    if (options_.mode == DetileMode::Gl) {
      *fatal = true;
      *why = "detile=gl, but the buffer cannot be imported through EGL: " + egl_why +
             " (use detile=auto or detile=cpu to read it on the CPU where its layout allows)";
      return nullptr;
    }
  }
  if (!cpu_readable) {
    *fatal = true;
    *why = "modifier " + hex_modifier(l.modifier) + " (" + drm_modifier_name(l.modifier) +
           ") can only be read by the GPU driver that made it, and " +
           (options_.mode == DetileMode::Cpu ? std::string("detile=cpu forbids EGL")
                                             : "EGL import failed: " + egl_why) +
           "; give qemudbussrc the render node QEMU renders on (render-node) with its Mesa "
           "driver installed, or run QEMU with a linear or Intel X/Y-tiled scanout";
    return nullptr;
  }
  std::unique_ptr<DmabufReader> r = CpuDmabufReader::open(l, std::move(msg.fds), why);
  if (!r)
    return nullptr;
  *how = r->describe();
  if (!egl_why.empty())
    *how += " (EGL: " + egl_why + ")";
  return std::shared_ptr<DmabufReader>(std::move(r));
}

DmabufOpened DmabufScanouts::open(DmabufScanoutMsg msg) {
  DmabufOpened out;
  const DmabufLayout &l = msg.layout;
  const DrmFormat *drm = drm_format_lookup(l.fourcc);
  const PixmanFormat *host = drm ? pixman_format_lookup(drm->pixman_code) : nullptr;
  if (!host) {
    out.why = "DMA-BUF format " + drm_fourcc_name(l.fourcc) +
              " is not one qemudbussrc can show (single-plane RGB formats only)";
    return out;
  }
  /* The CPU layouts have exactly the format's planes; a driver's own
   * layouts may add some (compression metadata: Intel CCS, AMD DCC), which
   * only its EGL import knows how to read. */
  Tiling tiling;
  const bool cpu_layout = tiling_from_modifier(l.modifier, &tiling);
  if (cpu_layout ? l.num_planes != drm->num_planes : l.num_planes < drm->num_planes) {
    out.why = "DMA-BUF format " + std::string(drm->name) + " has " +
              std::to_string(drm->num_planes) + " plane(s), the scanout says " +
              std::to_string(l.num_planes);
    return out;
  }
  std::lock_guard<std::mutex> guard(lock_);
  BufferKey key;
  bool keyed = make_key(msg, &key);
  for (auto it = cache_.begin(); keyed && it != cache_.end(); ++it) {
    if ((*it)->key == key) {
      out.reader = (*it)->reader;
      out.host_format = (*it)->host;
      out.path = (*it)->path;
      /* Most recently used first: a few passing buffers must not push a
       * guest's double-buffered pair out. */
      std::unique_ptr<Cached> hit = std::move(*it);
      cache_.erase(it);
      cache_.push_front(std::move(hit));
      return out; /* the new fds close here; the cached reader holds its own */
    }
  }
  std::string how;
  out.reader = open_reader_locked(msg, host, &how, &out.fatal, &out.why);
  if (!out.reader) {
    out.why = "DMA-BUF " + std::string(drm->name) + " " + hex_modifier(l.modifier) + " " +
              std::to_string(l.visible.w) + "x" + std::to_string(l.visible.h) + " (detile=" +
              mode_name(options_.mode) + "): " + out.why;
    return out;
  }
  out.host_format = host;
  out.path = "dmabuf " + std::string(drm->name) + " " + hex_modifier(l.modifier) + " " +
             std::to_string(l.visible.w) + "x" + std::to_string(l.visible.h) + " via " + how;
  if (keyed) {
    auto c = std::make_unique<Cached>();
    c->key = std::move(key);
    c->reader = out.reader;
    c->host = host;
    c->path = out.path;
    /* Buffers of another size or format belong to a surface that is gone. */
    for (auto it = cache_.begin(); it != cache_.end();) {
      const BufferKey &k = (*it)->key;
      if (k.visible.w != c->key.visible.w || k.visible.h != c->key.visible.h ||
          k.fourcc != c->key.fourcc)
        it = cache_.erase(it);
      else
        ++it;
    }
    cache_.push_front(std::move(c));
    if (cache_.size() > kMaxCachedReaders)
      cache_.pop_back();
  }
  return out;
}

}  // namespace vmd
