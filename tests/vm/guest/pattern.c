#include "pattern.h"

const uint32_t PATTERN_COLOURS[PATTERN_BARS] = {
  0xFFFFFF, /* white */
  0xFFFF00, /* yellow */
  0x00FFFF, /* cyan */
  0x00FF00, /* green */
  0xFF00FF, /* magenta */
  0xFF0000, /* red */
  0x0000FF, /* blue */
  0x000000, /* black */
};

static void draw_cells(struct canvas *c, uint32_t counter, int first, int last)
{
  for (int b = first; b <= last; b++) {
    struct rect cell = { b * PATTERN_CELL, 0, PATTERN_CELL, PATTERN_CELL };
    canvas_fill(c, cell, (counter >> b) & 1u ? 0xFFFFFF : 0x000000);
  }
}

struct rect pattern_draw_frame(struct canvas *c, uint32_t counter,
                               unsigned rotation)
{
  for (int i = 0; i < PATTERN_BARS; i++) {
    /* Integer division per edge, so the bars tile any width exactly. */
    int x1 = i * c->width / PATTERN_BARS;
    int x2 = (i + 1) * c->width / PATTERN_BARS;
    struct rect bar = { x1, 0, x2 - x1, c->height };
    canvas_fill(c, bar, PATTERN_COLOURS[(i + rotation) % PATTERN_BARS]);
  }
  draw_cells(c, counter, 0, PATTERN_BITS - 1);
  struct rect all = { 0, 0, c->width, c->height };
  return all;
}

struct rect pattern_draw_counter_change(struct canvas *c, uint32_t old_counter,
                                        uint32_t new_counter)
{
  uint32_t changed = old_counter ^ new_counter;
  struct rect none = { 0, 0, 0, 0 };

  if (!changed)
    return none;
  /* One rectangle from the lowest to the highest changed cell: for a counter
   * that counts up by one that is always cells 0..k, a small damage area. */
  int first = __builtin_ctz(changed);
  int last = 31 - __builtin_clz(changed);
  draw_cells(c, new_counter, first, last);
  struct rect r = { first * PATTERN_CELL, 0, (last - first + 1) * PATTERN_CELL,
                    PATTERN_CELL };
  return canvas_clip(c, r);
}
