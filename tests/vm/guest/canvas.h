/* The picture vmpattern shows, kept in ordinary memory as XRGB8888.
 *
 * Drawing happens here first and only finished rectangles are copied to the
 * screen, so QEMU (which reads video memory whenever it likes) sees each
 * rectangle change in one short copy rather than during the whole drawing. */
#ifndef VMPATTERN_CANVAS_H
#define VMPATTERN_CANVAS_H

#include <stdint.h>

struct rect {
  int x, y, w, h;
};

struct canvas {
  uint32_t *pixels; /* width * height, no padding */
  int width;
  int height;
};

int canvas_init(struct canvas *c, int width, int height);
void canvas_free(struct canvas *c);

/* Clips r to the canvas. */
struct rect canvas_clip(const struct canvas *c, struct rect r);

void canvas_fill(struct canvas *c, struct rect r, uint32_t xrgb);

#endif
