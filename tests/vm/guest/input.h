/* The input report (vmpattern.input=1): every evdev device of the guest and
 * every event it delivers, on the serial console, so host tests can check
 * what QEMU's keyboard, mouse and tablet emulation made of their input.
 *
 * The lines are an interface (see docs/testing.md); decimal numbers:
 *   VMINPUT dev N name="NAME" abs_x=MIN..MAX abs_y=MIN..MAX
 *     once per device when it is opened; N is the number of
 *     /dev/input/eventN; abs_x / abs_y only for a device with EV_ABS ABS_X /
 *     ABS_Y; '"', '\' and control characters in NAME become '?'.
 *   VMINPUT ev N TYPE CODE VALUE
 *     per event of device N: TYPE is the Linux EV_ type (1 EV_KEY, 2 EV_REL,
 *     3 EV_ABS, ...), CODE its KEY_/BTN_/REL_/ABS_ code, VALUE signed.
 *     EV_SYN and EV_MSC events and key repeats (EV_KEY value 2) are left
 *     out.
 *
 * /dev/input is scanned again every INPUT_RESCAN_MS, so devices that appear
 * late (a USB tablet after enumeration) are picked up; a device that goes
 * away is closed, and reported again with a new dev line if it comes back.
 * Nothing here blocks: the devices are read when poll() says so. */
#ifndef VMPATTERN_INPUT_H
#define VMPATTERN_INPUT_H

#include <poll.h>

#define INPUT_MAX_DEVICES 32
#define INPUT_RESCAN_MS 1000

struct input_device {
  int fd;
  int number; /* N of /dev/input/eventN */
};

struct input {
  struct input_device devices[INPUT_MAX_DEVICES];
  int n_devices;
};

void input_init(struct input *in);

/* Opens (and reports) the event devices not open yet. Returns 0, or -1
 * after logging a VMPATTERN ERROR line. */
int input_scan(struct input *in);

/* One pollfd per open device, in device order; returns how many (at most
 * max). */
int input_pollfds(const struct input *in, struct pollfd *fds, int max);

/* Reads and reports the devices poll() found readable; fds and n as filled
 * by input_pollfds. Closes devices that went away. */
void input_dispatch(struct input *in, const struct pollfd *fds, int n);

void input_close(struct input *in);

#endif
