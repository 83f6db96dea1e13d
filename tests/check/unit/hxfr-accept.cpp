/* Unit: hxfr::Listener::accept says why it returned no client as an Io value (timeout,
 * cancel), so callers never compare error text. */
#include "hxfr-transport.h"

#include <gst/check/gstcheck.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

namespace hxfr = vmd::hxfr;
using hxfr::Io;

namespace {
std::unique_ptr<hxfr::Listener> tcp_listener(hxfr::Address *addr) {
  std::string err;
  fail_unless(hxfr::parse_address("tcp://127.0.0.1:0", true, addr, &err));
  auto l = hxfr::Listener::listen(*addr, &err);
  fail_unless(l != nullptr, "%s", err.c_str());
  addr->tcp_port = l->bound_tcp_port();
  return l;
}
}  // namespace

GST_START_TEST(test_accept_status) {
  hxfr::Address addr;
  auto l = tcp_listener(&addr);
  std::string err;
  Io st = Io::Error;
  fail_unless(l->accept(50, -1, &err, &st) == nullptr);
  ck_assert_int_eq(int(st), int(Io::Timeout));

  vmd::UniqueFd cancel(eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)); /* readable: cancelled */
  st = Io::Error;
  fail_unless(l->accept(5000, cancel.get(), &err, &st) == nullptr);
  ck_assert_int_eq(int(st), int(Io::Cancelled));

  auto c = hxfr::connect_to(addr, 2000, -1, &err);
  fail_unless(c != nullptr, "%s", err.c_str());
  st = Io::Error;
  fail_unless(l->accept(2000, -1, &err, &st) != nullptr);
  ck_assert_int_eq(int(st), int(Io::Ok));
}
GST_END_TEST;

static Suite *hxfr_accept_suite() {
  Suite *s = suite_create("hxfr-accept");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_accept_status);
  return s;
}

GST_CHECK_MAIN(hxfr_accept)
