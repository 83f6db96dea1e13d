/* gst-vmdisplay: keyboard and pointer input for a QEMU console. */
#include "qemu-input.h"

#include <algorithm>
#include <cmath>

namespace vmd {

namespace {

bool is_motion(InputKind k) { return k == InputKind::MoveTo || k == InputKind::MoveBy; }

bool is_release(const InputEvent &e) {
  return e.kind == InputKind::ReleaseAll ||
         ((e.kind == InputKind::Key || e.kind == InputKind::Button) && !e.down);
}

/* RelMotion takes an int32; a delta beyond any screen is cut to this. */
constexpr double kMaxDelta = 65535.0;

}  // namespace

int32_t clamp_coordinate(double x, uint32_t size) {
  if (!(x > 0)) /* also NaN */
    return 0;
  const double max = double(size) - 1;
  return int32_t(std::lround(std::min(x, max)));
}

bool InputQueue::push(const InputEvent &event) {
  if (!events_.empty() && events_.back().kind == event.kind && is_motion(event.kind)) {
    InputEvent &last = events_.back();
    if (event.kind == InputKind::MoveTo) {
      last = event;
    } else {
      last.x = std::clamp(last.x + event.x, -kMaxDelta, kMaxDelta);
      last.y = std::clamp(last.y + event.y, -kMaxDelta, kMaxDelta);
    }
    return true;
  }
  /* Releases may go over the capacity: each matches a press taken earlier,
   * so they are bounded by it too (at most twice the capacity in all). */
  if (events_.size() >= kCapacity && !(is_release(event) && events_.size() < 2 * kCapacity)) {
    dropped_++;
    return false;
  }
  events_.push_back(event);
  return true;
}

void InputQueue::take(std::vector<InputEvent> *out) {
  out->clear();
  out->swap(events_);
}

void InputState::set_absolute(bool absolute) {
  if (absolute != absolute_) {
    /* Positions of one mode mean nothing in the other. */
    have_pos_ = false;
    rest_x_ = rest_y_ = 0;
  }
  absolute_ = absolute;
}

void InputState::translate(const InputEvent &event, uint32_t width, uint32_t height,
                           std::vector<InputCall> *out) {
  switch (event.kind) {
    case InputKind::Key:
      out->push_back({event.down ? InputCall::KeyPress : InputCall::KeyRelease, event.code, 0, 0});
      break;
    case InputKind::Button:
      if (event.code <= kMaxQemuButton)
        out->push_back(
            {event.down ? InputCall::ButtonPress : InputCall::ButtonRelease, event.code, 0, 0});
      break;
    case InputKind::MoveTo:
      move_to(event.x, event.y, width, height, out);
      break;
    case InputKind::MoveBy:
      move_by(event.x, event.y, width, height, out);
      break;
    case InputKind::ReleaseAll:
      out->push_back({InputCall::ReleaseAll, 0, 0, 0});
      break;
  }
}

void InputState::move_to(double x, double y, uint32_t width, uint32_t height,
                         std::vector<InputCall> *out) {
  if (width == 0 || height == 0)
    return;
  const int32_t cx = clamp_coordinate(x, width), cy = clamp_coordinate(y, height);
  if (absolute_) {
    if (!have_pos_ || cx != pos_x_ || cy != pos_y_)
      out->push_back({InputCall::SetAbsPosition, 0, cx, cy});
  } else if (have_pos_ && (cx != pos_x_ || cy != pos_y_)) {
    /* A relative device follows the viewer's pointer by its moves. */
    out->push_back({InputCall::RelMotion, 0, cx - pos_x_, cy - pos_y_});
  }
  pos_x_ = cx;
  pos_y_ = cy;
  have_pos_ = true;
}

void InputState::move_by(double dx, double dy, uint32_t width, uint32_t height,
                         std::vector<InputCall> *out) {
  if (!std::isfinite(dx) || !std::isfinite(dy))
    return;
  dx = std::clamp(dx, -kMaxDelta, kMaxDelta);
  dy = std::clamp(dy, -kMaxDelta, kMaxDelta);
  if (absolute_) {
    if (width == 0 || height == 0)
      return;
    const double from_x = have_pos_ ? pos_x_ : width / 2.0;
    const double from_y = have_pos_ ? pos_y_ : height / 2.0;
    move_to(from_x + dx, from_y + dy, width, height, out);
    return;
  }
  rest_x_ += dx;
  rest_y_ += dy;
  const int32_t ix = int32_t(std::trunc(rest_x_)), iy = int32_t(std::trunc(rest_y_));
  rest_x_ -= ix;
  rest_y_ -= iy;
  if (ix || iy)
    out->push_back({InputCall::RelMotion, 0, ix, iy});
  /* The viewer's own position no longer says where the guest pointer is. */
  have_pos_ = false;
}

namespace {

bool paced(const InputCall &c) {
  return c.method != InputCall::SetAbsPosition && c.method != InputCall::RelMotion;
}

bool is_key(const InputCall &c) {
  return c.method == InputCall::KeyPress || c.method == InputCall::KeyRelease;
}

bool is_release_call(const InputCall &c) {
  return c.method == InputCall::KeyRelease || c.method == InputCall::ButtonRelease;
}

}  // namespace

void InputPacer::add(const std::vector<InputCall> &calls) {
  for (const InputCall &c : calls) {
    if (c.method == InputCall::ReleaseAll) {
      release_all();
      continue;
    }
    if (calls_.size() >= kCapacity && !(is_release_call(c) && calls_.size() < 2 * kCapacity)) {
      dropped_++;
      continue;
    }
    calls_.push_back(c);
  }
}

/* Nothing still waiting goes out, and what went out pressed is released
 * before anything that comes later. */
void InputPacer::release_all() {
  calls_.clear();
  for (uint32_t code : keys_down_)
    calls_.push_back({InputCall::KeyRelease, code, 0, 0});
  for (uint32_t b : buttons_down_)
    calls_.push_back({InputCall::ButtonRelease, b, 0, 0});
}

void InputPacer::new_connection() {
  release_all();
  next_paced_us_ = 0;
}

void InputPacer::take_due(int64_t now_us, std::vector<InputCall> *out, int64_t *next_us) {
  *next_us = 0;
  while (!calls_.empty()) {
    const InputCall &c = calls_.front();
    if (paced(c)) {
      if (now_us < next_paced_us_) {
        *next_us = next_paced_us_;
        return;
      }
      next_paced_us_ = now_us + kIntervalUs;
      std::set<uint32_t> &down = is_key(c) ? keys_down_ : buttons_down_;
      if (is_release_call(c))
        down.erase(c.code);
      else
        down.insert(c.code);
    }
    out->push_back(c);
    calls_.pop_front();
  }
}

}  // namespace vmd
