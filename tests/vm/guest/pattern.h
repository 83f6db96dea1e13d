/* The test pattern. Tests on the host check these exact pixels, so the
 * geometry and colours here are an interface (see tests/vm/README.md):
 *
 * - 8 vertical bars over the whole screen; bar i covers
 *   x in [i*W/8, (i+1)*W/8) and has colour PATTERN_COLOURS[(i + rotation) % 8].
 * - a 32-bit frame counter drawn over the top-left corner: cell b (bit b,
 *   least significant first) covers x in [b*16, b*16+16), y in [0, 16);
 *   white when the bit is set, black otherwise.
 */
#ifndef VMPATTERN_PATTERN_H
#define VMPATTERN_PATTERN_H

#include "canvas.h"

#define PATTERN_BARS 8
#define PATTERN_CELL 16
#define PATTERN_BITS 32

extern const uint32_t PATTERN_COLOURS[PATTERN_BARS];

/* Draws bars and counter; returns the whole canvas as damage. */
struct rect pattern_draw_frame(struct canvas *c, uint32_t counter,
                               unsigned rotation);

/* Redraws only the counter cells that differ between old and new counter
 * values; returns the (possibly empty) damaged rectangle. */
struct rect pattern_draw_counter_change(struct canvas *c, uint32_t old_counter,
                                        uint32_t new_counter);

#endif
