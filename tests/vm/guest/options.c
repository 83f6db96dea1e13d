#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMDLINE_PREFIX "vmpattern."

void options_init(struct options *opts)
{
  memset(opts, 0, sizeof(*opts));
  opts->output = OUTPUT_FB;
  opts->modes[0].width = 1024;
  opts->modes[0].height = 768;
  opts->n_modes = 1;
  opts->modes_given = 0;
  opts->switch_ms = 0;
  opts->interval_ms = 100;
  opts->damage = DAMAGE_COUNTER;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end != '\0' || *s == '-' || v > max)
    return -1;
  *out = v;
  return 0;
}

/* "1024x768,800x600" */
static int parse_modes(struct options *opts, const char *value)
{
  struct mode_size modes[OPTIONS_MAX_MODES];
  int n = 0;
  const char *p = value;

  while (*p) {
    char *end;
    if (n == OPTIONS_MAX_MODES)
      return -1;
    errno = 0;
    long w = strtol(p, &end, 10);
    if (errno || end == p || *end != 'x')
      return -1;
    p = end + 1;
    long h = strtol(p, &end, 10);
    if (errno || end == p || (*end != ',' && *end != '\0'))
      return -1;
    /* 8192 is what bochs and virtio-gpu accept at most. */
    if (w < 1 || h < 1 || w > 8192 || h > 8192)
      return -1;
    modes[n].width = (int)w;
    modes[n].height = (int)h;
    n++;
    p = *end == ',' ? end + 1 : end;
  }
  if (n == 0)
    return -1;
  memcpy(opts->modes, modes, sizeof(modes));
  opts->n_modes = n;
  return 0;
}

/* "X,Y,HX,HY": X, Y inside the largest mode, the hotspot inside the
 * 64x64 image (CURSOR_SIZE in cursor.h). */
static int parse_cursor(struct cursor_spec *c, const char *value)
{
  long v[4];
  const char *p = value;

  for (int i = 0; i < 4; i++) {
    char *end;
    errno = 0;
    if (*p < '0' || *p > '9')
      return -1;
    v[i] = strtol(p, &end, 10);
    if (errno || end == p || *end != (i < 3 ? ',' : '\0'))
      return -1;
    p = end + 1;
  }
  if (v[0] > 8191 || v[1] > 8191 || v[2] > 63 || v[3] > 63)
    return -1;
  c->x = (int)v[0];
  c->y = (int)v[1];
  c->hot_x = (int)v[2];
  c->hot_y = (int)v[3];
  return 0;
}

static int parse_flag(const char *value, int *out)
{
  if (strcmp(value, "0") == 0)
    *out = 0;
  else if (strcmp(value, "1") == 0)
    *out = 1;
  else
    return -1;
  return 0;
}

int options_set(struct options *opts, const char *key, const char *value,
                char *err, size_t errlen)
{
  unsigned long v;

  if (strcmp(key, "output") == 0) {
    if (strcmp(value, "fb") == 0)
      opts->output = OUTPUT_FB;
    else if (strcmp(value, "drm") == 0)
      opts->output = OUTPUT_DRM;
    else
      goto bad_value;
  } else if (strcmp(key, "modes") == 0) {
    if (parse_modes(opts, value) < 0)
      goto bad_value;
    opts->modes_given = 1;
  } else if (strcmp(key, "switch") == 0) {
    if (parse_uint(value, 3600000, &v) < 0)
      goto bad_value;
    opts->switch_ms = (unsigned)v;
  } else if (strcmp(key, "interval") == 0) {
    if (parse_uint(value, 3600000, &v) < 0 || v == 0)
      goto bad_value;
    opts->interval_ms = (unsigned)v;
  } else if (strcmp(key, "damage") == 0) {
    if (strcmp(value, "counter") == 0)
      opts->damage = DAMAGE_COUNTER;
    else if (strcmp(value, "full") == 0)
      opts->damage = DAMAGE_FULL;
    else
      goto bad_value;
  } else if (strcmp(key, "device") == 0) {
    if (strlen(value) >= sizeof(opts->device))
      goto bad_value;
    strcpy(opts->device, value);
  } else if (strcmp(key, "input") == 0) {
    /* /init reads it too, to load the input drivers. */
    if (parse_flag(value, &opts->input) < 0)
      goto bad_value;
  } else if (strcmp(key, "frames") == 0) {
    if (parse_flag(value, &opts->frames) < 0)
      goto bad_value;
  } else if (strcmp(key, "cursor") == 0) {
    if (parse_cursor(&opts->cursor_at, value) < 0)
      goto bad_value;
    opts->cursor = 1;
  } else if (strcmp(key, "cursor-delay-ms") == 0) {
    if (parse_uint(value, 3600000, &v) < 0)
      goto bad_value;
    opts->cursor_delay_ms = (unsigned)v;
  } else if (strcmp(key, "cursor-step-ms") == 0) {
    if (parse_uint(value, 3600000, &v) < 0)
      goto bad_value;
    opts->cursor_step_ms = (unsigned)v;
  } else if (strcmp(key, "follow") == 0) {
    if (parse_flag(value, &opts->follow) < 0)
      goto bad_value;
  } else if (strcmp(key, "virtio") == 0 || strcmp(key, "modules") == 0 ||
             strcmp(key, "run") == 0) {
    /* Read by /init (modules to load, program to run), not by us. */
  } else {
    snprintf(err, errlen, "unknown option %s", key);
    return -1;
  }
  return 0;

bad_value:
  snprintf(err, errlen, "bad value for %s: '%s'", key, value);
  return -1;
}

int options_parse_cmdline(struct options *opts, const char *cmdline,
                          char *err, size_t errlen)
{
  const char *p = cmdline;

  while (*p) {
    char word[512], key[64];
    size_t len = strcspn(p, " \t\n");

    if (len > 0 && len < sizeof(word) &&
        strncmp(p, CMDLINE_PREFIX, strlen(CMDLINE_PREFIX)) == 0) {
      memcpy(word, p, len);
      word[len] = '\0';
      const char *k = word + strlen(CMDLINE_PREFIX);
      const char *eq = strchr(k, '=');
      if (!eq || (size_t)(eq - k) >= sizeof(key)) {
        snprintf(err, errlen, "bad kernel argument '%s'", word);
        return -1;
      }
      memcpy(key, k, (size_t)(eq - k));
      key[eq - k] = '\0';
      if (options_set(opts, key, eq + 1, err, errlen) < 0)
        return -1;
    }
    p += len;
    p += strspn(p, " \t\n");
  }
  return 0;
}

int options_check(const struct options *opts, char *err, size_t errlen)
{
  if (opts->output != OUTPUT_DRM && (opts->cursor || opts->follow)) {
    snprintf(err, errlen, "%s needs output=drm",
             opts->cursor ? "cursor" : "follow");
    return -1;
  }
  if ((opts->cursor_step_ms || opts->cursor_delay_ms) && !opts->cursor) {
    snprintf(err, errlen, "%s needs cursor=X,Y,HX,HY",
             opts->cursor_step_ms ? "cursor-step-ms" : "cursor-delay-ms");
    return -1;
  }
  /* follow picks the mode itself: a mode list or a switch timer would
   * fight it. */
  if (opts->follow && (opts->modes_given || opts->switch_ms)) {
    snprintf(err, errlen, "follow=1 excludes modes= and switch=");
    return -1;
  }
  return 0;
}

const char *options_device(const struct options *opts)
{
  if (opts->device[0])
    return opts->device;
  return opts->output == OUTPUT_DRM ? "/dev/dri/card0" : "/dev/fb0";
}
