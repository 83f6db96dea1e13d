/* A screen vmpattern can draw to: the fbdev or the DRM/KMS implementation. */
#ifndef VMPATTERN_OUTPUT_H
#define VMPATTERN_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "canvas.h"

struct output {
  const char *name; /* "fb" or "drm", as in the READY line */
  int width;        /* current mode */
  int height;
  int bpp;          /* colour depth in video memory: 15, 16, 24 or 32 */

  /* Switches to width x height. fbdev cannot change its mode: it ignores the
   * request and keeps its own size; callers read width/height afterwards.
   * DRM shows the new mode only at the next present(), which must cover the
   * whole canvas: the screen never shows an unfinished frame in a new mode.
   * Returns 0 or -1 with err filled. */
  int (*set_mode)(struct output *out, int width, int height, char *err,
                  size_t errlen);

  /* Copies rectangle r of the canvas (same size as the mode) to the
   * screen. */
  int (*present)(struct output *out, const struct canvas *c, struct rect r,
                 char *err, size_t errlen);

  /* Hardware cursor (drm; NULL for fb). Shows a w x h ARGB8888 image
   * (rows of w pixels, no padding) with its hotspot at (hot_x, hot_y) and
   * its top-left corner at (x, y) on the screen. Returns 0 or -1 with err
   * filled (a driver without a cursor plane, such as bochs, fails here). */
  int (*set_cursor)(struct output *out, const uint32_t *argb, int w, int h,
                    int hot_x, int hot_y, int x, int y, char *err,
                    size_t errlen);

  /* Moves the cursor's top-left corner to (x, y). */
  int (*move_cursor)(struct output *out, int x, int y, char *err,
                     size_t errlen);

  /* Probes the connector again and gives the size of its preferred mode
   * (drm; NULL for fb). Returns 0, or -1 with err filled. */
  int (*preferred_mode)(struct output *out, int *width, int *height,
                        char *err, size_t errlen);

  void (*destroy)(struct output *out);
};

/* Both return NULL with err filled when the device is missing or unusable. */
struct output *fbdev_output_open(const char *path, char *err, size_t errlen);
struct output *kms_output_open(const char *path, char *err, size_t errlen);

#endif
