#include "input.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"

#define BITS_PER_LONG (8 * (int)sizeof(unsigned long))
#define BIT_WORDS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)

static int test_bit(const unsigned long *bits, int bit)
{
  return (bits[bit / BITS_PER_LONG] >> (bit % BITS_PER_LONG)) & 1;
}

void input_init(struct input *in)
{
  memset(in, 0, sizeof(*in));
}

static int is_open(const struct input *in, int number)
{
  for (int i = 0; i < in->n_devices; i++)
    if (in->devices[i].number == number)
      return 1;
  return 0;
}

/* "event12" -> 12; -1 for anything else in /dev/input (mice, by-id, ...). */
static int event_number(const char *name)
{
  if (strncmp(name, "event", 5) != 0 || name[5] < '0' || name[5] > '9')
    return -1;
  char *end;
  long n = strtol(name + 5, &end, 10);
  return *end == '\0' && n <= 1000000 ? (int)n : -1;
}

/* Appends " abs_x=MIN..MAX" for one axis. */
static int describe_axis(int fd, int axis, const char *label, char *buf,
                         size_t len)
{
  struct input_absinfo abs;
  if (ioctl(fd, EVIOCGABS(axis), &abs) < 0)
    return 0;
  int n = snprintf(buf, len, " %s=%d..%d", label, abs.minimum, abs.maximum);
  return n < 0 ? 0 : n >= (int)len ? (int)len - 1 : n;
}

static void report_device(int fd, int number)
{
  char name[128] = "", axes[96] = "";
  unsigned long types[BIT_WORDS(EV_MAX + 1)] = { 0 };
  unsigned long abs_bits[BIT_WORDS(ABS_MAX + 1)] = { 0 };

  if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0)
    name[0] = '\0';
  /* The name is quoted on the console line: keep it parseable. */
  for (char *p = name; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';

  int used = 0;
  if (ioctl(fd, EVIOCGBIT(0, sizeof(types)), types) >= 0 &&
      test_bit(types, EV_ABS) &&
      ioctl(fd, EVIOCGBIT(EV_ABS, sizeof(abs_bits)), abs_bits) >= 0) {
    if (test_bit(abs_bits, ABS_X))
      used += describe_axis(fd, ABS_X, "abs_x", axes + used,
                            sizeof(axes) - (size_t)used);
    if (test_bit(abs_bits, ABS_Y))
      used += describe_axis(fd, ABS_Y, "abs_y", axes + used,
                            sizeof(axes) - (size_t)used);
  }
  log_input("dev %d name=\"%s\"%s", number, name, axes);
}

int input_scan(struct input *in)
{
  /* No /dev/input yet: no input device has been registered so far. */
  DIR *dir = opendir("/dev/input");
  if (!dir)
    return 0;

  int ret = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    int number = event_number(e->d_name);
    if (number < 0 || is_open(in, number))
      continue;
    if (in->n_devices == INPUT_MAX_DEVICES) {
      log_error("input: more than %d event devices", INPUT_MAX_DEVICES);
      ret = -1;
      break;
    }
    char path[64];
    snprintf(path, sizeof(path), "/dev/input/event%d", number);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      /* Gone again between readdir and open: nothing to report. */
      if (errno == ENOENT || errno == ENODEV)
        continue;
      log_error("input: open %s: %s", path, strerror(errno));
      ret = -1;
      break;
    }
    report_device(fd, number);
    in->devices[in->n_devices].fd = fd;
    in->devices[in->n_devices].number = number;
    in->n_devices++;
  }
  closedir(dir);
  return ret;
}

int input_pollfds(const struct input *in, struct pollfd *fds, int max)
{
  int n = in->n_devices < max ? in->n_devices : max;
  for (int i = 0; i < n; i++) {
    fds[i].fd = in->devices[i].fd;
    fds[i].events = POLLIN;
    fds[i].revents = 0;
  }
  return n;
}

static void report_event(int number, const struct input_event *ev)
{
  if (ev->type == EV_SYN || ev->type == EV_MSC ||
      (ev->type == EV_KEY && ev->value == 2))
    return;
  log_input("ev %d %u %u %d", number, ev->type, ev->code, ev->value);
}

/* Returns -1 when the device is gone (read fails with anything but
 * EAGAIN). */
static int drain(const struct input_device *d)
{
  struct input_event evs[64];

  for (;;) {
    ssize_t n = read(d->fd, evs, sizeof(evs));
    if (n < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
      return -1;
    for (size_t i = 0; i < (size_t)n / sizeof(evs[0]); i++)
      report_event(d->number, &evs[i]);
  }
}

void input_dispatch(struct input *in, const struct pollfd *fds, int n)
{
  /* Walk backwards: closing a device moves the last one into its slot. */
  for (int i = n - 1; i >= 0; i--) {
    if (i >= in->n_devices || fds[i].fd != in->devices[i].fd ||
        !fds[i].revents)
      continue;
    if (drain(&in->devices[i]) < 0) {
      close(in->devices[i].fd);
      in->devices[i] = in->devices[--in->n_devices];
    }
  }
}

void input_close(struct input *in)
{
  for (int i = 0; i < in->n_devices; i++)
    close(in->devices[i].fd);
  in->n_devices = 0;
}
