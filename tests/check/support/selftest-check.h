/* Test support: the plain failure counter of the support self-tests (programs that run
 * without the check framework, so any thread may record a failure). Header only. */
#pragma once

#include <cstdio>

namespace selftest {
inline int g_failures = 0;
}  // namespace selftest

/* Records a failed condition with its place and goes on. */
#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      selftest::g_failures++;                                                       \
    }                                                                               \
  } while (0)
