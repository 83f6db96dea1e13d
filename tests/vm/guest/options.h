/* vmpattern's settings: kernel command line (vmpattern.KEY=VALUE) or
 * program arguments (--KEY=VALUE), same keys. */
#ifndef VMPATTERN_OPTIONS_H
#define VMPATTERN_OPTIONS_H

#include <stddef.h>

#define OPTIONS_MAX_MODES 16

enum output_kind { OUTPUT_FB, OUTPUT_DRM };
enum damage_kind { DAMAGE_COUNTER, DAMAGE_FULL };

struct mode_size {
  int width;
  int height;
};

/* vmpattern.cursor=X,Y,HX,HY: the hardware cursor image's top-left corner
 * on the CRTC and its hotspot inside the image. */
struct cursor_spec {
  int x, y;
  int hot_x, hot_y;
};

struct options {
  enum output_kind output;
  struct mode_size modes[OPTIONS_MAX_MODES]; /* drm only; fb keeps its mode */
  int n_modes;
  int modes_given;      /* modes= was on the command line */
  unsigned switch_ms;   /* 0: never switch modes */
  unsigned interval_ms; /* counter step */
  enum damage_kind damage;
  char device[256];     /* empty: /dev/fb0 or /dev/dri/card0 */
  int input;            /* report /dev/input/event* on the console */
  int cursor;           /* show a hardware cursor (drm), see cursor_spec */
  struct cursor_spec cursor_at;
  unsigned cursor_delay_ms; /* show the cursor this long after READY */
  unsigned cursor_step_ms; /* 0: the cursor stays put */
  int follow;           /* drm: switch to the connector's preferred mode */
  int frames;           /* log VMFRAME N after each counter step is on screen */
};

void options_init(struct options *opts);

/* Returns 0, or -1 with a message in err for a bad value. Unknown keys are
 * errors too: a typo in a test's kernel arguments must not go unnoticed. */
int options_set(struct options *opts, const char *key, const char *value,
                char *err, size_t errlen);

/* Applies every "vmpattern.KEY=VALUE" word of a kernel command line. */
int options_parse_cmdline(struct options *opts, const char *cmdline,
                          char *err, size_t errlen);

/* Checks the options against each other once all are set (cursor and
 * follow need drm output, ...). Returns 0, or -1 with a message in err. */
int options_check(const struct options *opts, char *err, size_t errlen);

const char *options_device(const struct options *opts);

#endif
