#include "cursor.h"

#include "log.h"

static uint32_t image_pixel(int x, int y)
{
  if (y >= 16)
    return 0x00000000;
  if (x < 16)
    return 0xFFFF00FF;
  if (x < 32)
    return 0xFF00FF00;
  return 0x00000000;
}

static void log_position(const struct cursor *c)
{
  log_line("cursor %d,%d hot %d,%d", c->at.x, c->at.y, c->at.hot_x,
           c->at.hot_y);
}

int cursor_show(struct cursor *c, struct output *out,
                const struct cursor_spec *spec)
{
  uint32_t image[CURSOR_SIZE * CURSOR_SIZE];
  char err[256];

  if (!out->set_cursor) {
    log_error("cursor: output %s has no hardware cursor", out->name);
    return -1;
  }
  for (int y = 0; y < CURSOR_SIZE; y++)
    for (int x = 0; x < CURSOR_SIZE; x++)
      image[y * CURSOR_SIZE + x] = image_pixel(x, y);
  if (out->set_cursor(out, image, CURSOR_SIZE, CURSOR_SIZE, spec->hot_x,
                      spec->hot_y, spec->x, spec->y, err, sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  c->at = *spec;
  log_position(c);
  return 0;
}

int cursor_step(struct cursor *c, struct output *out)
{
  char err[256];
  /* Modulo the current mode, which may have shrunk since the last step. */
  int x = (c->at.x + CURSOR_STEP_X) % out->width;
  int y = (c->at.y + CURSOR_STEP_Y) % out->height;

  if (out->move_cursor(out, x, y, err, sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  c->at.x = x;
  c->at.y = y;
  log_position(c);
  return 0;
}
