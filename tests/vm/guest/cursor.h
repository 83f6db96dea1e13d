/* The hardware cursor vmpattern shows with vmpattern.cursor=X,Y,HX,HY (drm
 * output on a driver with a cursor plane: virtio-gpu).
 *
 * The image is an interface: host tests find it in QEMU's CursorDefine and
 * in composed frames (see docs/testing.md). 64x64 ARGB8888, no
 * semi-transparent pixels:
 *   x in [0, 16),  y in [0, 16): 0xFFFF00FF, opaque magenta
 *   x in [16, 32), y in [0, 16): 0xFF00FF00, opaque green
 *   everything else:             0x00000000, fully transparent
 *
 * Position lines on the serial console, after each successful ioctl:
 *   VMPATTERN cursor X,Y hot HX,HY
 * X,Y is the image's top-left corner on the screen, HX,HY the hotspot
 * inside the image. With vmpattern.cursor-step-ms=N the image moves every
 * N ms to ((X + 8) mod W, (Y + 4) mod H) in the current W x H mode. */
#ifndef VMPATTERN_CURSOR_H
#define VMPATTERN_CURSOR_H

#include <stdint.h>

#include "options.h"
#include "output.h"

#define CURSOR_SIZE 64
#define CURSOR_STEP_X 8
#define CURSOR_STEP_Y 4

struct cursor {
  struct cursor_spec at; /* current position and hotspot */
};

/* Draws the image and shows it at spec. Returns 0, or -1 after logging a
 * VMPATTERN ERROR line. */
int cursor_show(struct cursor *c, struct output *out,
                const struct cursor_spec *spec);

/* One step of the motion inside the output's current mode. */
int cursor_step(struct cursor *c, struct output *out);

#endif
