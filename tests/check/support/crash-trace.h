/* Test support: on SIGSEGV, SIGBUS or SIGABRT, print the crashing thread's
 * stack (glibc's backtrace, symbols from the dynamic table; run under gdb
 * for more) to stderr, then die of the same signal. For crashes that come
 * rarely, e.g. only in a CI run: the log then says where. */
#pragma once

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <initializer_list>

namespace testsupport {

inline void crash_trace_handler(int sig) {
  static const char head[] = "\n*** crash: stack of the crashing thread ***\n";
  ssize_t ignored = write(STDERR_FILENO, head, sizeof head - 1);
  (void)ignored;
  void *frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

inline void install_crash_trace() {
  void *warm[1];
  backtrace(warm, 1); /* loads libgcc now, not inside the handler */
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT})
    signal(sig, crash_trace_handler);
}

}  // namespace testsupport
