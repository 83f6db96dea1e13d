/* gst-vmdisplay: the guest cursor in the FrameStore.
 *
 * The cursor is kept beside the surface, never drawn into it: take_frame()
 * draws it into each output buffer. A change of image, position or
 * visibility damages only the rectangles the cursor leaves and enters, so
 * recycled buffers get exactly those restored and a cursor move costs two
 * small copies, not a frame. The cursor state sits under the store's lock
 * so the damage a frame consumes and the cursor it draws always agree.
 */
#include "frame-store.h"

namespace vmd {

Verdict FrameStore::cursor_define(int32_t width, int32_t height, int32_t hot_x, int32_t hot_y,
                                  const uint8_t *argb, size_t size, int64_t now_us) {
  std::string why;
  std::shared_ptr<const CursorImage> image =
      cursor_image_from_define(width, height, hot_x, hot_y, argb, size, &why);
  std::lock_guard<std::mutex> guard(lock_);
  if (!image)
    return ignore_locked(why);
  const CursorState before = cursor_;
  cursor_.image = std::move(image);
  cursor_.image_serial++;
  cursor_changed_locked(before, now_us);
  return {};
}

void FrameStore::cursor_move(int32_t x, int32_t y, bool visible, int64_t now_us) {
  std::lock_guard<std::mutex> guard(lock_);
  const CursorState before = cursor_;
  /* Anything in int32 is accepted and clipped when drawn. */
  cursor_.x = x;
  cursor_.y = y;
  cursor_.visible = visible;
  if (before.x == x && before.y == y && before.visible == visible && before.serial)
    return;
  cursor_changed_locked(before, now_us);
}

void FrameStore::cursor_changed_locked(const CursorState &before, int64_t now_us) {
  cursor_.serial++;
  if (have_surface_ && draw_cursor_) {
    const Rect left = cursor_rect(before, format_.width, format_.height);
    const Rect entered = cursor_rect(cursor_, format_.width, format_.height);
    if (!left.empty())
      damage_locked(left, now_us);
    if (!entered.empty())
      damage_locked(entered, now_us);
  }
  cond_.notify_all();
}

/* The connection is gone: its cursor is not the next VM's (QEMU 7.2 tells a
 * new listener nothing about a cursor defined before it registered). */
void FrameStore::forget_cursor_locked() {
  if (!cursor_.image && !cursor_.visible)
    return;
  cursor_.image.reset();
  cursor_.image_serial++;
  cursor_.visible = false;
  cursor_.serial++;
  cond_.notify_all();
}

CursorState FrameStore::cursor() const {
  std::lock_guard<std::mutex> guard(lock_);
  return cursor_;
}

void FrameStore::set_draw_cursor(bool draw) {
  std::lock_guard<std::mutex> guard(lock_);
  if (draw == draw_cursor_)
    return;
  draw_cursor_ = draw;
  /* Draw it, or take it away, where it is now. */
  const Rect r = have_surface_ ? cursor_rect(cursor_, format_.width, format_.height) : Rect{};
  if (!r.empty())
    damage_locked(r, g_get_monotonic_time());
}

}  // namespace vmd
