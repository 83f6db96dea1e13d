/* gst-vmdisplay: turning QEMU's DMA-BUF scanout calls into a reader.
 *
 * parse_scanout_dmabuf() / parse_scanout_dmabuf2() take the two wire forms
 * (org.qemu.Display1.Listener.ScanoutDMABUF, QEMU >= 7.0, and
 * org.qemu.Display1.Listener.Unix.ScanoutDMABUF2, QEMU >= 10.1) apart into a
 * DmabufLayout and the fds it uses. DmabufScanouts picks how to read it
 * (detile = auto | gl | cpu): EGL import on a render node or the surfaceless
 * platform (dmabuf-import.*), else the CPU (dmabuf-cpu.*), and keeps the
 * last few readers so a guest flipping between the same buffers reuses its
 * EGLImages and mappings instead of importing again every flip.
 */
#pragma once

#include "dmabuf-layout.h"
#include "pixman-formats.h"

#include <gio/gio.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vmd {

class EglDevice;

struct DmabufScanoutMsg {
  DmabufLayout layout;
  std::vector<UniqueFd> fds;
};

/* "(huuuutb)": fd, width, height, stride, fourcc, modifier, y0_top. */
bool parse_scanout_dmabuf(GVariant *params, GUnixFDList *fds, DmabufScanoutMsg *out,
                          std::string *why);
/* "(ahuuuuauauuuuutb)": fds, x, y, w, h, offsets, strides, num_planes,
 * fourcc, backing width, backing height, modifier, y0_top. Fewer fds than
 * planes: the rest use fds[0]. */
bool parse_scanout_dmabuf2(GVariant *params, GUnixFDList *fds, DmabufScanoutMsg *out,
                           std::string *why);

/* What a scanout became. */
struct DmabufOpened {
  std::shared_ptr<DmabufReader> reader; /* null: not readable */
  const PixmanFormat *host_format = nullptr;
  /* "dmabuf XR24 0x0100000000000002 1920x1080 via EGL on /dev/dri/renderD128" */
  std::string path;
  bool fatal = false; /* nothing will ever read it (an element error), else ignore */
  std::string why;
};

class DmabufScanouts {
 public:
  explicit DmabufScanouts(DmabufOptions options);
  ~DmabufScanouts();
  DmabufScanouts(const DmabufScanouts &) = delete;
  DmabufScanouts &operator=(const DmabufScanouts &) = delete;

  /* Any thread; serialized. */
  DmabufOpened open(DmabufScanoutMsg msg);
  /* Drops the cached readers (their EGLImages and mappings). */
  void forget();

  const DmabufOptions &options() const { return options_; }

 private:
  struct Cached;
  std::shared_ptr<DmabufReader> open_reader_locked(DmabufScanoutMsg &msg,
                                                   const PixmanFormat *host, std::string *how,
                                                   bool *fatal, std::string *why);
  const std::vector<std::shared_ptr<EglDevice>> &egl_locked(std::string *why);

  DmabufOptions options_;
  std::mutex lock_;
  std::deque<std::unique_ptr<Cached>> cache_;
  std::vector<std::shared_ptr<EglDevice>> egl_; /* opened once, in EglDevice's order */
  bool egl_tried_ = false;
  std::string egl_why_;
};

}  // namespace vmd
