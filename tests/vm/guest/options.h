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

struct options {
  enum output_kind output;
  struct mode_size modes[OPTIONS_MAX_MODES]; /* drm only; fb keeps its mode */
  int n_modes;
  unsigned switch_ms;   /* 0: never switch modes */
  unsigned interval_ms; /* counter step */
  enum damage_kind damage;
  char device[256];     /* empty: /dev/fb0 or /dev/dri/card0 */
};

void options_init(struct options *opts);

/* Returns 0, or -1 with a message in err for a bad value. Unknown keys are
 * errors too: a typo in a test's kernel arguments must not go unnoticed. */
int options_set(struct options *opts, const char *key, const char *value,
                char *err, size_t errlen);

/* Applies every "vmpattern.KEY=VALUE" word of a kernel command line. */
int options_parse_cmdline(struct options *opts, const char *cmdline,
                          char *err, size_t errlen);

const char *options_device(const struct options *opts);

#endif
