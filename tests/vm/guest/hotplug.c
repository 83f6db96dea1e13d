#include "hotplug.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int hotplug_open(void)
{
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  NETLINK_KOBJECT_UEVENT);
  if (fd < 0)
    return -1;
  /* Group 1: the kernel's own broadcasts (udev re-sends on group 2). */
  struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A uevent is "ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...". */
static int is_drm_hotplug(const char *msg, size_t len)
{
  int drm = 0, hotplug = 0;
  for (size_t off = 0; off < len; off += strlen(msg + off) + 1) {
    if (strcmp(msg + off, "SUBSYSTEM=drm") == 0)
      drm = 1;
    else if (strcmp(msg + off, "HOTPLUG=1") == 0)
      hotplug = 1;
  }
  return drm && hotplug;
}

int hotplug_read(int fd)
{
  char buf[4096];
  int found = 0;

  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    /* ENOBUFS: the socket overflowed and uevents were lost; one of them
     * may have been ours. */
    if (n < 0 && errno == ENOBUFS)
      found = 1;
    if (n <= 0)
      return found;
    buf[n] = '\0'; /* the last string of a truncated message */
    if (is_drm_hotplug(buf, (size_t)n))
      found = 1;
  }
}
