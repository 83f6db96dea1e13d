/* vmpattern: PID-1's only job in the test VM. Draws a known, changing
 * picture (see pattern.h) so host tests can check QEMU's exported pixels,
 * and reports on the serial console when each mode is on screen (log.h).
 *
 * Settings come from the kernel command line (vmpattern.KEY=VALUE), then
 * from arguments (--KEY=VALUE) for manual runs:
 *   output=fb|drm  modes=WxH[,WxH...]  switch=MS  interval=MS
 *   damage=counter|full  device=PATH  input=1  cursor=X,Y,HX,HY
 *   cursor-delay-ms=MS  cursor-step-ms=MS  follow=1
 *
 * One thread: the loop below sleeps in ppoll() until the next deadline (the
 * counter step, a mode switch, the cursor's appearance or step, an input
 * rescan, a follow check) or until an input device or the hotplug socket
 * has something to read, so input never shifts the pattern's rhythm.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <linux/kd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "canvas.h"
#include "cursor.h"
#include "hotplug.h"
#include "input.h"
#include "log.h"
#include "options.h"
#include "output.h"
#include "pattern.h"

/* Device nodes appear asynchronously after module loading. */
#define DEVICE_WAIT_MS 5000

/* follow=1 re-reads the connector this often even without a uevent, in case
 * one was missed (sent before the socket was open). */
#define FOLLOW_CHECK_MS 1000

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps until deadline (CLOCK_MONOTONIC, ms) or until one of fds is ready;
 * with n == 0 it is a plain sleep. */
static void wait_until_ms(uint64_t deadline, struct pollfd *fds, int n)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t left = (int64_t)deadline * 1000000 -
                 ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
  if (left < 0)
    left = 0;
  struct timespec ts = { (time_t)(left / 1000000000),
                         (long)(left % 1000000000) };
  if (ppoll(fds, (nfds_t)n, &ts, NULL) < 0) {
    /* EINTR: the caller checks its deadlines and waits again. */
    for (int i = 0; i < n; i++)
      fds[i].revents = 0;
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
  if (options_check(opts, err, sizeof(err)) < 0) {
    log_error("options: %s", err);
    return -1;
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

/* Everything the main loop keeps between wake-ups. Deadlines are
 * CLOCK_MONOTONIC ms; a task that is off has UINT64_MAX. */
struct loop {
  const struct options *opts;
  struct output *out;
  struct canvas canvas;
  uint32_t counter;
  int mode_index;
  struct cursor cursor;
  int cursor_shown;
  struct input input;
  int hotplug_fd;        /* -1: none (follow off, or polling only) */
  int follow_due;        /* a hotplug uevent arrived */
  uint64_t next_step, next_switch, next_cursor, next_scan, next_follow;
};

static uint64_t min_deadline(const struct loop *l)
{
  uint64_t d = l->next_step;
  const uint64_t others[] = { l->next_switch, l->next_cursor, l->next_scan,
                              l->next_follow };
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    if (others[i] < d)
      d = others[i];
  return d;
}

/* The next time of a periodic task, resuming the rhythm after a stall (slow
 * TCG, host load) instead of catching up with a burst. */
static uint64_t next_after(uint64_t deadline, unsigned period, uint64_t now)
{
  deadline += period;
  return deadline <= now ? now + period : deadline;
}

static int step_counter(struct loop *l)
{
  char err[256];
  const int full = l->opts->damage == DAMAGE_FULL;
  uint32_t old = l->counter++;
  struct rect damage = full ? pattern_draw_frame(&l->canvas, l->counter,
                                                 l->counter)
                            : pattern_draw_counter_change(&l->canvas, old,
                                                          l->counter);
  if (damage.w > 0 && damage.h > 0 &&
      l->out->present(l->out, &l->canvas, damage, err, sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  /* For the glass-to-glass benchmark: the host timestamps this line as it arrives. */
  if (l->opts->frames)
    log_line("VMFRAME %u", l->counter);
  return 0;
}

static int step_switch(struct loop *l)
{
  const struct options *opts = l->opts;
  l->mode_index = (l->mode_index + 1) % opts->n_modes;
  return show_mode(l->out, &opts->modes[l->mode_index], &l->canvas,
                   l->counter,
                   opts->damage == DAMAGE_FULL ? l->counter : 0);
}

/* follow=1: show the connector's preferred mode when it is not the current
 * one. */
static int check_follow(struct loop *l)
{
  char err[256];
  struct mode_size m;

  if (l->out->preferred_mode(l->out, &m.width, &m.height, err,
                             sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  if (m.width <= 0 || m.height <= 0 ||
      (m.width == l->out->width && m.height == l->out->height))
    return 0;
  return show_mode(l->out, &m, &l->canvas, l->counter,
                   l->opts->damage == DAMAGE_FULL ? l->counter : 0);
}

/* Waits for the next deadline or fd, then runs whatever is due. */
static int loop_iterate(struct loop *l)
{
  const struct options *opts = l->opts;
  struct pollfd fds[INPUT_MAX_DEVICES + 1];
  int n_input = opts->input ? input_pollfds(&l->input, fds, INPUT_MAX_DEVICES)
                            : 0;
  int n = n_input;
  if (l->hotplug_fd >= 0) {
    fds[n].fd = l->hotplug_fd;
    fds[n].events = POLLIN;
    fds[n].revents = 0;
    n++;
  }

  wait_until_ms(min_deadline(l), fds, n);

  if (n_input)
    input_dispatch(&l->input, fds, n_input);
  if (l->hotplug_fd >= 0 && fds[n_input].revents && hotplug_read(l->hotplug_fd))
    l->follow_due = 1;

  uint64_t now = now_ms();
  if (now >= l->next_switch) {
    if (step_switch(l) < 0)
      return -1;
    l->next_switch += opts->switch_ms;
  }
  if (l->follow_due || now >= l->next_follow) {
    l->follow_due = 0;
    if (check_follow(l) < 0)
      return -1;
    l->next_follow = now + FOLLOW_CHECK_MS;
  }
  if (now >= l->next_step) {
    if (step_counter(l) < 0)
      return -1;
    l->next_step = next_after(l->next_step, opts->interval_ms, now);
  }
  if (now >= l->next_cursor) {
    if (!l->cursor_shown) {
      if (cursor_show(&l->cursor, l->out, &opts->cursor_at) < 0)
        return -1;
      l->cursor_shown = 1;
      l->next_cursor = opts->cursor_step_ms ? now + opts->cursor_step_ms
                                            : UINT64_MAX;
    } else {
      if (cursor_step(&l->cursor, l->out) < 0)
        return -1;
      l->next_cursor = next_after(l->next_cursor, opts->cursor_step_ms, now);
    }
  }
  if (now >= l->next_scan) {
    if (input_scan(&l->input) < 0)
      return -1;
    l->next_scan = next_after(l->next_scan, INPUT_RESCAN_MS, now);
  }
  return 0;
}

/* The first mode: the connector's preferred one with follow=1, else the
 * first of modes=. */
static int first_mode(const struct options *opts, struct output *out,
                      struct mode_size *m)
{
  char err[256];

  *m = opts->modes[0];
  if (!opts->follow)
    return 0;
  struct mode_size preferred;
  if (out->preferred_mode(out, &preferred.width, &preferred.height, err,
                          sizeof(err)) < 0) {
    log_error("%s", err);
    return -1;
  }
  if (preferred.width > 0 && preferred.height > 0)
    *m = preferred;
  return 0;
}

static int run(const struct options *opts, struct output *out)
{
  struct loop l;
  struct mode_size first;

  memset(&l, 0, sizeof(l));
  l.opts = opts;
  l.out = out;
  l.hotplug_fd = -1;
  input_init(&l.input);
  l.next_switch = l.next_cursor = l.next_scan = l.next_follow = UINT64_MAX;

  if (opts->follow) {
    /* Open before reading the first mode, so no change in between is
     * missed. Without the socket the periodic check still follows. */
    l.hotplug_fd = hotplug_open();
    if (l.hotplug_fd < 0)
      log_line("follow: no uevent socket (%s), polling only", strerror(errno));
  }
  if (first_mode(opts, out, &first) < 0 ||
      show_mode(out, &first, &l.canvas, l.counter, 0) < 0)
    goto out;
  if (opts->input && input_scan(&l.input) < 0)
    goto out;

  uint64_t now = now_ms();
  l.next_step = now + opts->interval_ms;
  if (opts->output == OUTPUT_DRM && opts->switch_ms > 0 && opts->n_modes > 1)
    l.next_switch = now + opts->switch_ms;
  /* QEMU 7.2 does not replay the cursor to a D-Bus listener that registers
   * later: cursor-delay-ms lets a host test attach after READY first. */
  if (opts->cursor)
    l.next_cursor = now + opts->cursor_delay_ms;
  if (opts->input)
    l.next_scan = now + INPUT_RESCAN_MS;
  if (opts->follow)
    l.next_follow = now + FOLLOW_CHECK_MS;

  while (loop_iterate(&l) == 0) {
  }

out:
  input_close(&l.input);
  if (l.hotplug_fd >= 0)
    close(l.hotplug_fd);
  canvas_free(&l.canvas);
  return 1; /* the loop only ends on an error */
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
