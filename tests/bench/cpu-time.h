/* Benchmarks: CPU time of this process, of another one (QEMU) and of a thread, from
 * getrusage and /proc. Header only, POSIX. */
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace bench {

/* User + system seconds of this process, every thread. */
inline double self_cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime (seconds) and the name of a /proc stat file; false if unreadable. */
inline bool read_stat(const std::string &path, double *cpu, std::string *comm) {
  FILE *f = fopen(path.c_str(), "r");
  if (!f)
    return false;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *open = strchr(buf, '(');
  const char *close = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
  if (!open || !close || close < open)
    return false;
  unsigned long utime = 0, stime = 0;
  /* after ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
   * utime(14) stime(15) */
  if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
             &stime) != 2)
    return false;
  *cpu = double(utime + stime) / double(sysconf(_SC_CLK_TCK));
  if (comm)
    comm->assign(open + 1, close);
  return true;
}

/* Another process's CPU seconds (QEMU's, guest emulation included); -1 if unknown. */
inline double pid_cpu_seconds(long pid) {
  double cpu = 0;
  if (pid <= 0 || !read_stat("/proc/" + std::to_string(pid) + "/stat", &cpu, nullptr))
    return -1;
  return cpu;
}

}  // namespace bench
