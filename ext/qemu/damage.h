/* gst-vmdisplay: damage bookkeeping.
 *
 * QEMU reports damage as rectangles in signed wire coordinates. They are
 * clipped to the surface, merged into a small bounded region per output
 * frame, and remembered for a few frames so a recycled buffer only receives
 * what changed since it was last filled ("buffer age", as in EGL).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace vmd {

struct Rect {
  uint32_t x = 0, y = 0, w = 0, h = 0;

  bool empty() const { return w == 0 || h == 0; }
  uint64_t area() const { return uint64_t(w) * h; }
  uint32_t right() const { return x + w; }
  uint32_t bottom() const { return y + h; }
  bool contains(const Rect &o) const {
    return o.x >= x && o.y >= y && o.right() <= right() && o.bottom() <= bottom();
  }
  bool operator==(const Rect &o) const {
    return x == o.x && y == o.y && w == o.w && h == o.h;
  }
};

Rect rect_union(const Rect &a, const Rect &b);

/* Clips a wire rectangle to a width x height surface. Returns false (and an
 * empty *out) when the size is negative or nothing of it is inside. */
bool clip_rect(int64_t x, int64_t y, int64_t w, int64_t h, uint32_t width,
               uint32_t height, Rect *out);

/* A union of at most max_rects rectangles. When one more would not fit, the
 * pair whose bounding box wastes the least area is merged, so damage is never
 * lost, only over-approximated. */
class Region {
 public:
  explicit Region(size_t max_rects = 16) : max_rects_(max_rects ? max_rects : 1) {}

  void add(const Rect &r);
  void add(const Region &other);
  void clear() { rects_.clear(); }
  bool empty() const { return rects_.empty(); }
  const std::vector<Rect> &rects() const { return rects_; }
  Rect bounds() const;
  /* Sum of rectangle areas (an upper bound of the covered area). */
  uint64_t area() const;

 private:
  size_t max_rects_;
  std::vector<Rect> rects_;
};

/* Damage of the last few output frames, keyed by frame sequence number. */
class DamageHistory {
 public:
  explicit DamageHistory(size_t depth = 8) : depth_(depth) {}

  /* Records the damage that produced frame `seq` (seq increases by one). */
  void push(uint64_t seq, const Region &damage);
  /* Damage between frame `held` and the newest frame: false when `held` is
   * unknown or too old, and the caller must copy everything. */
  bool since(uint64_t held, Region *out) const;
  void clear() { frames_.clear(); }

 private:
  struct Entry {
    uint64_t seq;
    Region damage;
  };
  size_t depth_;
  std::deque<Entry> frames_;
};

}  // namespace vmd
