/* gst-vmdisplay: the host-owned copy of a QEMU console surface.
 *
 * The D-Bus thread writes into it (Scanout/Update copies, ScanoutMap/UpdateMap
 * shared memory); the streaming thread waits on it and copies out what changed
 * into buffers it is about to push. Nothing here knows about D-Bus or
 * GstBuffers, so every rule about bad input is unit-tested directly.
 *
 * Rules:
 *  - a pushed buffer is never written again: the streaming thread copies out
 *    of this surface into a buffer it owns exclusively;
 *  - per update, only the damaged rectangle is copied in;
 *  - per output frame, at most one full-frame copy goes out; a recycled
 *    buffer only gets the damage since the frame it holds.
 */
#pragma once

#include "cursor.h"
#include "damage.h"
#include "dmabuf-layout.h"
#include "pixman-formats.h"
#include "raii.h"

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vmd {

/* Largest surface side we accept; anything bigger is a malformed message. */
constexpr uint32_t kMaxSurfaceSide = 16384;

struct FrameFormat {
  uint64_t generation = 0; /* changes with every new surface */
  uint32_t width = 0, height = 0;
  const PixmanFormat *format = nullptr;
};

struct FrameStats {
  uint64_t scanouts = 0, updates = 0, ignored = 0;
  uint64_t frames = 0, full_copies = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  /* DMA-BUF scanouts (gl=on): ScanoutDMABUF(2) and UpdateDMABUF calls
   * applied, and the time from an UpdateDMABUF's arrival to our reply,
   * which is how long the guest's GPU queue stood still (median of the last
   * 256, max since start). */
  uint64_t dmabuf_scanouts = 0, dmabuf_updates = 0;
  uint64_t acks = 0;
  int64_t ack_median_us = 0, ack_max_us = 0;
  /* Of scanouts/updates: those that came through shared memory (ScanoutMap,
   * UpdateMap) rather than as copies in the message. */
  uint64_t map_scanouts = 0, map_updates = 0;
};

/* What became of one message from QEMU. `applied` false: it was ignored (or
 * was fatal); `message` says why, or notes a repair such as clipping. */
struct Verdict {
  bool applied = true;
  std::string message;
  bool warn = false; /* applied, but the message is a warning */
};

/* What the streaming thread was woken for. */
enum class Wake {
  Flushing,  /* unlock() was called */
  Failed,    /* fatal error: *error says what */
  Ended,     /* QEMU went away and no reconnect is pending */
  NewFormat, /* a surface with another generation is current */
  Frame,     /* damage is pending and the frame interval has passed */
  Keepalive, /* nothing changed for the keepalive interval */
  Cursor,    /* the cursor changed since WaitArgs::cursor_serial */
};

struct WaitArgs {
  uint64_t generation = 0;       /* the generation the caps describe */
  int64_t earliest_frame_us = 0; /* monotonic time before which no new frame */
  int64_t keepalive_at_us = 0;   /* monotonic time to repeat the last frame, 0: never */
  bool can_repeat = false;       /* a last frame exists to be repeated */
  /* A new surface is reported only once it has been current this long:
   * QEMU registers a listener with a 640x480 placeholder surface and
   * replaces it milliseconds later, and guests flip through modes while
   * they set one; nobody downstream should renegotiate for those. A guest
   * that never stops changing gets its latest surface reported after three
   * times this at most. */
  int64_t format_settle_us = 0;
  /* With want_cursor, a cursor whose serial differs from this wakes, not
   * before earliest_cursor_us. */
  bool want_cursor = false;
  uint64_t cursor_serial = 0;
  int64_t earliest_cursor_us = 0;
};

class FrameStore {
 public:
  FrameStore() = default;
  FrameStore(const FrameStore &) = delete;
  FrameStore &operator=(const FrameStore &) = delete;

  /* ---- D-Bus side. A fatal problem (unknown pixman format) also sets the
   * failed state. */
  /* With `hold` (owning the memory `data` points into, e.g. QEMU's D-Bus
   * message), a Scanout is not copied at all: the message itself becomes the
   * host surface until a partial update needs a writable copy. QEMU sends
   * every full-surface refresh as a Scanout, so a busy screen costs one copy
   * less per frame. */
  Verdict scanout(uint32_t width, uint32_t height, uint32_t stride, uint32_t pixman_format,
                  const uint8_t *data, size_t size, int64_t now_us,
                  std::shared_ptr<const void> hold = nullptr);
  Verdict update(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t stride,
                     uint32_t pixman_format, const uint8_t *data, size_t size, int64_t now_us);
  Verdict scanout_map(UniqueFd memfd, uint32_t offset, uint32_t width, uint32_t height,
                          uint32_t stride, uint32_t pixman_format, int64_t now_us);
  Verdict update_map(int32_t x, int32_t y, int32_t w, int32_t h, int64_t now_us);
  /* DMA-BUF (frame-store-dmabuf.cpp). A scanout makes `reader` the source of
   * a width x height surface in `fmt`; each update reads the damaged
   * rectangle through it into the host surface before returning, so the
   * caller's reply (QEMU's frame acknowledgement) follows the read. `path`
   * describes how it is read (the qemudbussrc-path message). */
  Verdict scanout_dmabuf(std::shared_ptr<DmabufReader> reader, uint32_t width, uint32_t height,
                         const PixmanFormat *fmt, const std::string &path, int64_t now_us);
  Verdict update_dmabuf(int32_t x, int32_t y, int32_t w, int32_t h, int64_t now_us);
  /* A ScanoutDMABUF was refused: the buffer read so far is no longer the
   * guest's display, so updates are ignored until a readable one comes. */
  void drop_dmabuf();
  /* GPU output (frame-store-mirror.cpp). While a mirror is set, DMA-BUF
   * updates go to it instead of the host surface (no readback); a failing
   * mirror, a surface that is not such a DMA-BUF, or one of another size
   * drops it and starts a new generation, so the stream renegotiates to
   * system memory. dmabuf_mirrorable(): the current surface (of that
   * generation) is a DMA-BUF a mirror can import. set_dmabuf_mirror()
   * attaches it and draws the whole surface (false, with *why, when it
   * cannot); nullptr detaches it and brings the host surface up to date. */
  bool dmabuf_mirrorable(uint64_t generation) const;
  bool set_dmabuf_mirror(std::shared_ptr<DmabufMirror> mirror, uint64_t generation,
                         std::string *why);
  /* take_frame() for a mirrored surface: makes a frame of the pending
   * damage, copies nothing (the mirror holds the pixels). */
  bool take_frame_gl(uint64_t generation, uint64_t *frame_seq, int64_t *arrival_us);
  /* One UpdateDMABUF answered `us` after it arrived. */
  void record_ack(int64_t us);
  /* The current DMA-BUF path and a serial that changes with it (0: none yet). */
  std::string dmabuf_path(uint64_t *serial) const;
  void disable();
  /* The guest cursor (frame-store-cursor.cpp). While it is drawn into the
   * frames, a change damages the rectangles it leaves and enters, nothing
   * else. */
  Verdict cursor_define(int32_t width, int32_t height, int32_t hot_x, int32_t hot_y,
                        const uint8_t *argb, size_t size, int64_t now_us);
  void cursor_move(int32_t x, int32_t y, bool visible, int64_t now_us);
  /* Connection state. lost(true): gone but a reconnect is being attempted:
   * the surface is dropped and the stream waits for the next Scanout. */
  void connection_lost(bool reconnecting);
  void fail(const std::string &error);

  /* ---- streaming side. */
  void set_flushing(bool flushing);
  Wake wait(const WaitArgs &args, FrameFormat *format, std::string *error);
  /* Copies into dst (a buffer laid out as `format` with dst_stride) the damage
   * since frame held_seq (0: unknown, copy all) and makes a new frame of the
   * pending damage. False when the generation changed meanwhile. */
  bool take_frame(uint64_t generation, uint64_t held_seq, uint8_t *dst, size_t dst_stride,
                  uint64_t *frame_seq, int64_t *arrival_us);
  FrameFormat format() const;
  FrameStats stats() const;
  CursorState cursor() const;
  /* show-cursor: whether take_frame() draws the cursor into the frames. */
  void set_draw_cursor(bool draw);

  /* Stride of the host surface and of our output buffers for a format: the
   * GStreamer default for packed RGB (rows padded to 4 bytes). */
  static size_t packed_stride(uint32_t width, uint32_t bytes_per_pixel);

 private:
  bool check_format_locked(uint32_t pixman_format, const PixmanFormat **out, Verdict *v);
  void new_surface_locked(uint32_t width, uint32_t height, const PixmanFormat *fmt);
  void damage_locked(const Rect &r, int64_t now_us);
  Verdict ignore_locked(std::string why);
  void copy_rect_in_locked(const Rect &r, const uint8_t *src, size_t src_stride);
  void make_writable_locked();
  bool read_rect_from_map_locked(const Rect &r);
  bool read_rect_from_dmabuf_locked(const Rect &r, std::string *why);
  bool mirror_rect_locked(const Rect &r, std::string *why);
  bool reattach_mirror_locked(std::shared_ptr<DmabufMirror> mirror, std::string *why);
  void bump_generation_locked();
  int64_t ack_median_locked() const;
  void cursor_changed_locked(const CursorState &before, int64_t now_us);
  void forget_cursor_locked();
  void copy_out_locked(const Rect &r, uint8_t *dst, size_t dst_stride);

  mutable std::mutex lock_;
  std::condition_variable cond_;

  /* surface */
  bool have_surface_ = false;
  bool disabled_ = false;
  FrameFormat format_;
  int64_t format_since_us_ = 0;     /* when the current generation began */
  int64_t unreported_since_us_ = 0; /* first surface change not yet reported */
  /* The surface is view_ with stride_: either pixels_ (ours, own_stride_) or
   * a borrowed, immutable message held alive by borrowed_. */
  const uint8_t *view_ = nullptr;
  size_t stride_ = 0;
  size_t own_stride_ = 0;
  std::vector<uint8_t> pixels_;
  std::shared_ptr<const void> borrowed_;

  /* shared-memory source (ScanoutMap): read with preadv, never mapped */
  UniqueFd map_fd_;
  size_t map_offset_ = 0, map_stride_ = 0;
  std::vector<uint8_t> map_scratch_; /* the bytes between rows, read and dropped */

  /* DMA-BUF source */
  std::shared_ptr<DmabufReader> dmabuf_;
  std::string dmabuf_path_;
  uint64_t dmabuf_path_serial_ = 0;
  bool warned_update_without_dmabuf_ = false;
  std::array<int64_t, 256> acks_{};
  std::shared_ptr<DmabufMirror> mirror_;
  bool host_stale_ = false; /* the mirror got updates the host surface lacks */

  /* damage */
  Region pending_;
  int64_t pending_arrival_us_ = 0;
  uint64_t seq_ = 0;
  DamageHistory history_;

  /* cursor */
  CursorState cursor_;
  bool draw_cursor_ = true;

  /* state */
  bool flushing_ = false;
  bool ended_ = false;
  std::string failed_;
  uint64_t next_generation_ = 1;
  FrameStats stats_;
};

}  // namespace vmd
