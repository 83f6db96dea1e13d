/* gst-vmdisplay: damage bookkeeping. */
#include "damage.h"

#include <algorithm>
#include <limits>

namespace vmd {

Rect rect_union(const Rect &a, const Rect &b) {
  if (a.empty())
    return b;
  if (b.empty())
    return a;
  Rect u;
  u.x = std::min(a.x, b.x);
  u.y = std::min(a.y, b.y);
  u.w = std::max(a.right(), b.right()) - u.x;
  u.h = std::max(a.bottom(), b.bottom()) - u.y;
  return u;
}

bool clip_rect(int64_t x, int64_t y, int64_t w, int64_t h, uint32_t width,
               uint32_t height, Rect *out) {
  *out = Rect{};
  if (w <= 0 || h <= 0)
    return false;
  int64_t x0 = std::max<int64_t>(x, 0);
  int64_t y0 = std::max<int64_t>(y, 0);
  int64_t x1 = std::min<int64_t>(x + w, width);
  int64_t y1 = std::min<int64_t>(y + h, height);
  if (x1 <= x0 || y1 <= y0)
    return false;
  out->x = uint32_t(x0);
  out->y = uint32_t(y0);
  out->w = uint32_t(x1 - x0);
  out->h = uint32_t(y1 - y0);
  return true;
}

void Region::add(const Rect &r) {
  if (r.empty())
    return;
  for (const Rect &have : rects_) {
    if (have.contains(r))
      return;
  }
  /* Drop what the new rectangle swallows. */
  rects_.erase(std::remove_if(rects_.begin(), rects_.end(),
                              [&](const Rect &have) { return r.contains(have); }),
               rects_.end());
  rects_.push_back(r);

  while (rects_.size() > max_rects_) {
    /* Merge the cheapest pair: least area added by the bounding box. */
    size_t best_i = 0, best_j = 1;
    uint64_t best_cost = std::numeric_limits<uint64_t>::max();
    for (size_t i = 0; i < rects_.size(); i++) {
      for (size_t j = i + 1; j < rects_.size(); j++) {
        uint64_t u = rect_union(rects_[i], rects_[j]).area();
        uint64_t parts = rects_[i].area() + rects_[j].area();
        uint64_t cost = u > parts ? u - parts : 0;
        if (cost < best_cost) {
          best_cost = cost;
          best_i = i;
          best_j = j;
        }
      }
    }
    Rect merged = rect_union(rects_[best_i], rects_[best_j]);
    /* Keep every rectangle the merged box does not swallow, then the box. */
    std::vector<Rect> kept;
    kept.reserve(rects_.size());
    for (const Rect &have : rects_) {
      if (!merged.contains(have))
        kept.push_back(have);
    }
    kept.push_back(merged);
    rects_ = std::move(kept);
  }
}

void Region::add(const Region &other) {
  for (const Rect &r : other.rects_)
    add(r);
}

Rect Region::bounds() const {
  Rect b;
  for (const Rect &r : rects_)
    b = rect_union(b, r);
  return b;
}

uint64_t Region::area() const {
  uint64_t a = 0;
  for (const Rect &r : rects_)
    a += r.area();
  return a;
}

void DamageHistory::push(uint64_t seq, const Region &damage) {
  if (!frames_.empty() && frames_.back().seq + 1 != seq)
    frames_.clear(); /* a gap means we cannot reason about older frames */
  frames_.push_back(Entry{seq, damage});
  while (frames_.size() > depth_)
    frames_.pop_front();
}

bool DamageHistory::since(uint64_t held, Region *out) const {
  out->clear();
  if (frames_.empty() || held == 0)
    return false;
  if (held == frames_.back().seq)
    return true; /* already current */
  /* Need the damage of every frame after `held`. */
  if (held + 1 < frames_.front().seq || held > frames_.back().seq)
    return false;
  for (const Entry &e : frames_) {
    if (e.seq > held)
      out->add(e.damage);
  }
  return true;
}

}  // namespace vmd
