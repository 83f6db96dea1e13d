#include "canvas.h"

#include <stdlib.h>

int canvas_init(struct canvas *c, int width, int height)
{
  c->pixels = calloc((size_t)width * (size_t)height, sizeof(uint32_t));
  if (!c->pixels)
    return -1;
  c->width = width;
  c->height = height;
  return 0;
}

void canvas_free(struct canvas *c)
{
  free(c->pixels);
  c->pixels = NULL;
  c->width = c->height = 0;
}

struct rect canvas_clip(const struct canvas *c, struct rect r)
{
  int x1 = r.x < 0 ? 0 : r.x;
  int y1 = r.y < 0 ? 0 : r.y;
  int x2 = r.x + r.w > c->width ? c->width : r.x + r.w;
  int y2 = r.y + r.h > c->height ? c->height : r.y + r.h;
  struct rect out = { x1, y1, x2 > x1 ? x2 - x1 : 0, y2 > y1 ? y2 - y1 : 0 };
  return out;
}

void canvas_fill(struct canvas *c, struct rect r, uint32_t xrgb)
{
  r = canvas_clip(c, r);
  for (int y = r.y; y < r.y + r.h; y++) {
    uint32_t *row = c->pixels + (size_t)y * (size_t)c->width;
    for (int x = r.x; x < r.x + r.w; x++)
      row[x] = xrgb;
  }
}
