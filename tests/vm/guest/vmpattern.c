/* vmpattern: PID-1's only job in the test VM. Draws a known, changing
 * picture (see pattern.h) so host tests can check QEMU's exported pixels,
 * and reports on the serial console when each mode is on screen (log.h).
 *
 * Settings come from the kernel command line (vmpattern.KEY=VALUE), then
 * from arguments (--KEY=VALUE) for manual runs:
 *   output=fb|drm  modes=WxH[,WxH...]  switch=MS  interval=MS
 *   damage=counter|full  device=PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "canvas.h"
#include "log.h"
#include "options.h"
#include "output.h"
#include "pattern.h"

/* Device nodes appear asynchronously after module loading. */
#define DEVICE_WAIT_MS 5000

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_until_ms(uint64_t deadline)
{
  struct timespec ts = { (time_t)(deadline / 1000),
                         (long)(deadline % 1000) * 1000000 };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* Stop fbcon from drawing its text console (and blinking cursor) over our
 * pixels. Best effort: without a VT (or permission) there is no fbcon to
 * silence. */
static void vt_graphics_mode(void)
{
  int fd = open("/dev/tty0", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return;
  ioctl(fd, KDSETMODE, KD_GRAPHICS);
  /* Keep fd open for the life of the process; the mode sticks either way. */
}

static int load_options(struct options *opts, int argc, char **argv)
{
  char err[256], cmdline[4096];

  options_init(opts);
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
    close(fd);
    cmdline[n > 0 ? n : 0] = '\0';
    if (options_parse_cmdline(opts, cmdline, err, sizeof(err)) < 0) {
      log_error("options: %s", err);
      return -1;
    }
  }
  for (int i = 1; i < argc; i++) {
    char key[64];
    const char *arg = argv[i];
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0 || !eq || eq - arg - 2 >= (int)sizeof(key)) {
      log_error("options: expected --KEY=VALUE, got '%s'", arg);
      return -1;
    }
    memcpy(key, arg + 2, (size_t)(eq - arg - 2));
    key[eq - arg - 2] = '\0';
    if (options_set(opts, key, eq + 1, err, sizeof(err)) < 0) {
      log_error("options: %s", err);
      return -1;
    }
  }
  return 0;
}

static struct output *open_output(const struct options *opts)
{
  const char *path = options_device(opts);
  char err[256];
  uint64_t deadline = now_ms() + DEVICE_WAIT_MS;

  while (access(path, F_OK) < 0 && now_ms() < deadline)
    usleep(20000);

  struct output *out = opts->output == OUTPUT_DRM
                           ? kms_output_open(path, err, sizeof(err))
                           : fbdev_output_open(path, err, sizeof(err));
  if (!out)
    log_error("%s", err);
  return out;
}

/* Sets mode m (drm) or the fb's own mode, draws a complete frame and
 * announces it. The canvas follows the output's size. */
static int show_mode(struct output *out, const struct mode_size *m,
                     struct canvas *canvas, uint32_t counter, unsigned rotation)
{
  char err[256];

  if (out->set_mode(out, m->width, m->height, err, sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  if (canvas->width != out->width || canvas->height != out->height) {
    canvas_free(canvas);
    if (canvas_init(canvas, out->width, out->height) < 0) {
      log_error("out of memory for a %dx%d canvas", out->width, out->height);
      return -1;
    }
  }
  struct rect all = pattern_draw_frame(canvas, counter, rotation);
  if (out->present(out, canvas, all, err, sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  log_line("READY %dx%d bpp=%d output=%s", out->width, out->height, out->bpp,
           out->name);
  return 0;
}

static int run(const struct options *opts, struct output *out)
{
  struct canvas canvas = { NULL, 0, 0 };
  const int full = opts->damage == DAMAGE_FULL;
  const int switching = opts->output == OUTPUT_DRM && opts->switch_ms > 0 &&
                        opts->n_modes > 1;
  uint32_t counter = 0;
  int mode_index = 0;
  char err[256];

  if (show_mode(out, &opts->modes[0], &canvas, counter, 0) < 0)
    goto fail;

  uint64_t next_step = now_ms() + opts->interval_ms;
  uint64_t next_switch = now_ms() + opts->switch_ms;
  for (;;) {
    uint64_t wake = switching && next_switch < next_step ? next_switch
                                                         : next_step;
    sleep_until_ms(wake);
    uint64_t now = now_ms();

    if (switching && now >= next_switch) {
      mode_index = (mode_index + 1) % opts->n_modes;
      if (show_mode(out, &opts->modes[mode_index], &canvas, counter,
                    full ? counter : 0) < 0)
        goto fail;
      next_switch += opts->switch_ms;
    }
    if (now >= next_step) {
      uint32_t old = counter++;
      struct rect damage = full ? pattern_draw_frame(&canvas, counter, counter)
                                : pattern_draw_counter_change(&canvas, old,
                                                              counter);
      if (damage.w > 0 && damage.h > 0 &&
          out->present(out, &canvas, damage, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto fail;
      }
      next_step += opts->interval_ms;
      /* After a stall (slow TCG, host load) resume the rhythm instead of
       * drawing a burst of catch-up frames. */
      if (next_step <= now)
        next_step = now + opts->interval_ms;
    }
  }

fail:
  canvas_free(&canvas);
  return 1;
}

int main(int argc, char **argv)
{
  struct options opts;

  if (load_options(&opts, argc, argv) < 0)
    return 2;
  vt_graphics_mode();
  struct output *out = open_output(&opts);
  if (!out)
    return 1;
  int ret = run(&opts, out);
  out->destroy(out);
  return ret;
}
