#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void log_vline(const char *prefix, const char *fmt, va_list ap)
{
  char buf[512];
  int n = snprintf(buf, sizeof(buf), "%s", prefix);
  n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  if (n > (int)sizeof(buf) - 2)
    n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  /* One write() per line so lines from init and the kernel do not interleave
   * inside ours. */
  if (write(STDOUT_FILENO, buf, (size_t)n) < 0) {
    /* Nowhere left to report to. */
  }
}

void log_line(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  log_vline("VMPATTERN ", fmt, ap);
  va_end(ap);
}

void log_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  log_vline("VMPATTERN ERROR ", fmt, ap);
  va_end(ap);
}

void log_input(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  log_vline("VMINPUT ", fmt, ap);
  va_end(ap);
}
