/* The two ScanoutDMABUF wire forms taken apart (parse_scanout_dmabuf,
 * parse_scanout_dmabuf2) and DmabufScanouts' choice and cache of readers
 * (ext/qemu/dmabuf-scanout.cpp), with memfds standing in for DMA-BUFs. */
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "dmabuf-scanout.h"

#include <gst/check/gstcheck.h>

using vmd::DmabufScanoutMsg;
using vmd::DmabufScanouts;

namespace {

constexpr uint32_t kXR24 = 0x34325258;

int memfd_of_size(size_t size) {
  int fd = memfd_create("dmabuf-scanout-test", MFD_CLOEXEC);
  fail_unless(fd >= 0);
  fail_unless(ftruncate(fd, off_t(size)) == 0);
  return fd;
}

/* A list holding n dups of fd. */
GUnixFDList *fd_list(int fd, int n) {
  GUnixFDList *list = g_unix_fd_list_new();
  for (int i = 0; i < n; i++)
    fail_unless(g_unix_fd_list_append(list, fd, nullptr) == i);
  return list;
}

GVariant *v2_params(std::vector<gint32> handles, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                    std::vector<uint32_t> offsets, std::vector<uint32_t> strides,
                    uint32_t num_planes, uint32_t bw, uint32_t bh) {
  GVariant *hv = g_variant_new_fixed_array(G_VARIANT_TYPE_HANDLE, handles.data(), handles.size(),
                                           sizeof(gint32));
  GVariant *ov = g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, offsets.data(), offsets.size(),
                                           sizeof(uint32_t));
  GVariant *sv = g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, strides.data(), strides.size(),
                                           sizeof(uint32_t));
  return g_variant_ref_sink(g_variant_new("(@ahuuuu@au@auuuuutb)", hv, x, y, w, h, ov, sv,
                                          num_planes, kXR24, bw, bh, guint64(0), FALSE));
}

bool parse2(GVariant *params, GUnixFDList *fds, DmabufScanoutMsg *msg, std::string *why) {
  bool ok = vmd::parse_scanout_dmabuf2(params, fds, msg, why);
  g_variant_unref(params);
  return ok;
}

}  // namespace

GST_START_TEST(test_parse_v1) {
  int fd = memfd_of_size(4096);
  GUnixFDList *fds = fd_list(fd, 1);
  GVariant *p = g_variant_ref_sink(
      g_variant_new("(huuuutb)", 0, 20u, 10u, 128u, kXR24, guint64(1) << 56 | 2, TRUE));
  DmabufScanoutMsg msg;
  std::string why;
  fail_unless(vmd::parse_scanout_dmabuf(p, fds, &msg, &why), "%s", why.c_str());
  fail_unless_equals_int(msg.fds.size(), 1);
  fail_unless_equals_int(msg.layout.backing_width, 20);
  fail_unless_equals_int(msg.layout.backing_height, 10);
  fail_unless(msg.layout.visible == (vmd::Rect{0, 0, 20, 10}));
  fail_unless_equals_int(msg.layout.num_planes, 1);
  fail_unless_equals_int(msg.layout.planes[0].stride, 128);
  fail_unless(msg.layout.modifier == vmd::kI915FormatModYTiled);
  fail_unless(msg.layout.y0_top);
  g_variant_unref(p);
  /* A handle outside the fd list, a zero or absurd size. */
  p = g_variant_ref_sink(g_variant_new("(huuuutb)", 3, 20u, 10u, 128u, kXR24, guint64(0), FALSE));
  fail_if(vmd::parse_scanout_dmabuf(p, fds, &msg, &why));
  fail_unless(why.find("handle 3") != std::string::npos, "%s", why.c_str());
  g_variant_unref(p);
  p = g_variant_ref_sink(g_variant_new("(huuuutb)", 0, 0u, 10u, 128u, kXR24, guint64(0), FALSE));
  fail_if(vmd::parse_scanout_dmabuf(p, fds, &msg, &why));
  g_variant_unref(p);
  p = g_variant_ref_sink(g_variant_new("(huuuutb)", 0, 20000u, 10u, 128u, kXR24, guint64(0), FALSE));
  fail_if(vmd::parse_scanout_dmabuf(p, nullptr, &msg, &why));
  g_variant_unref(p);
  g_object_unref(fds);
  close(fd);
}
GST_END_TEST;

GST_START_TEST(test_parse_v2) {
  int fd = memfd_of_size(4096);
  GUnixFDList *fds = fd_list(fd, 3);
  DmabufScanoutMsg msg;
  std::string why;
  /* Two planes, one fd: plane 1 shares fd 0. */
  fail_unless(parse2(v2_params({0}, 2, 3, 10, 8, {0, 2048}, {64, 32}, 2, 16, 12), fds, &msg, &why),
              "%s", why.c_str());
  fail_unless_equals_int(msg.fds.size(), 1);
  fail_unless_equals_int(msg.layout.num_planes, 2);
  fail_unless_equals_int(msg.layout.planes[1].fd_index, 0);
  fail_unless_equals_int(msg.layout.planes[1].offset, 2048);
  fail_unless_equals_int(msg.layout.planes[1].stride, 32);
  fail_unless(msg.layout.visible == (vmd::Rect{2, 3, 10, 8}));
  fail_unless_equals_int(msg.layout.backing_width, 16);
  /* One fd per plane. */
  fail_unless(parse2(v2_params({0, 1}, 0, 0, 16, 12, {0, 2048}, {64, 32}, 2, 16, 12), fds, &msg,
                     &why),
              "%s", why.c_str());
  fail_unless_equals_int(msg.layout.planes[1].fd_index, 1);
  /* Hostile: more fds than planes, 0 or 5 planes, missing offsets, no fd,
   * a visible rectangle outside the buffer. */
  fail_if(parse2(v2_params({0, 1, 2}, 0, 0, 16, 12, {0, 0}, {64, 64}, 2, 16, 12), fds, &msg, &why));
  fail_if(parse2(v2_params({0}, 0, 0, 16, 12, {}, {}, 0, 16, 12), fds, &msg, &why));
  fail_if(parse2(v2_params({0}, 0, 0, 16, 12, {0, 0, 0, 0, 0}, {64, 64, 64, 64, 64}, 5, 16, 12),
                 fds, &msg, &why));
  fail_if(parse2(v2_params({0}, 0, 0, 16, 12, {0}, {64, 64}, 2, 16, 12), fds, &msg, &why));
  fail_unless(why.find("offsets") != std::string::npos, "%s", why.c_str());
  fail_if(parse2(v2_params({}, 0, 0, 16, 12, {0}, {64}, 1, 16, 12), fds, &msg, &why));
  fail_if(parse2(v2_params({0}, 8, 0, 16, 12, {0}, {64}, 1, 16, 12), fds, &msg, &why));
  fail_unless(why.find("inside") != std::string::npos, "%s", why.c_str());
  fail_if(parse2(v2_params({7}, 0, 0, 16, 12, {0}, {64}, 1, 16, 12), fds, &msg, &why));
  g_object_unref(fds);
  close(fd);
}
GST_END_TEST;

/* A LINEAR XR24 scanout of fd, as parse_scanout_dmabuf would make it. */
DmabufScanoutMsg linear_msg(int fd, uint32_t w, uint32_t h) {
  DmabufScanoutMsg msg;
  msg.layout.fourcc = kXR24;
  msg.layout.modifier = vmd::kDrmFormatModLinear;
  msg.layout.backing_width = w;
  msg.layout.backing_height = h;
  msg.layout.visible = vmd::Rect{0, 0, w, h};
  msg.layout.num_planes = 1;
  msg.layout.planes[0].stride = w * 4;
  msg.fds.emplace_back(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  return msg;
}

GST_START_TEST(test_reader_cache) {
  DmabufScanouts scanouts(vmd::DmabufOptions{vmd::DetileMode::Cpu, ""});
  int a = memfd_of_size(16 * 16 * 4), b = memfd_of_size(16 * 16 * 4);
  vmd::DmabufOpened mine = scanouts.open(linear_msg(a, 16, 16));
  fail_unless(mine.reader != nullptr, "%s", mine.why.c_str());
  fail_unless(mine.path.find("dmabuf XR24 0x0000000000000000 16x16 via CPU") == 0, "%s",
              mine.path.c_str());
  fail_unless_equals_string(mine.host_format->name, "x8r8g8b8");
  /* The same buffer again (a new fd for it, as QEMU sends): the same reader. */
  fail_unless(scanouts.open(linear_msg(a, 16, 16)).reader == mine.reader);
  /* The other buffer of a double-buffered guest: its own reader, both kept. */
  vmd::DmabufOpened other = scanouts.open(linear_msg(b, 16, 16));
  fail_unless(other.reader != nullptr && other.reader != mine.reader);
  fail_unless(scanouts.open(linear_msg(a, 16, 16)).reader == mine.reader);
  /* A new size drops the old surface's buffers. */
  int c = memfd_of_size(8 * 8 * 4);
  fail_unless(scanouts.open(linear_msg(c, 8, 8)).reader != nullptr);
  std::weak_ptr<vmd::DmabufReader> old = mine.reader;
  mine.reader.reset();
  fail_unless(old.expired(), "a reader of the old size is still cached");
  /* forget() drops the rest. */
  std::weak_ptr<vmd::DmabufReader> kept = scanouts.open(linear_msg(c, 8, 8)).reader;
  fail_if(kept.expired());
  scanouts.forget();
  fail_unless(kept.expired());
  close(a);
  close(b);
  close(c);
}
GST_END_TEST;

GST_START_TEST(test_refusals) {
  DmabufScanouts scanouts(vmd::DmabufOptions{vmd::DetileMode::Cpu, ""});
  int fd = memfd_of_size(16 * 16 * 4);
  DmabufScanoutMsg msg = linear_msg(fd, 16, 16);
  msg.layout.fourcc = 0x3231564e; /* NV12 */
  vmd::DmabufOpened o = scanouts.open(std::move(msg));
  fail_unless(!o.reader && !o.fatal);
  fail_unless(o.why.find("NV12") != std::string::npos, "%s", o.why.c_str());
  msg = linear_msg(fd, 16, 16);
  msg.layout.num_planes = 2;
  o = scanouts.open(std::move(msg));
  fail_unless(!o.reader && !o.fatal);
  fail_unless(o.why.find("plane") != std::string::npos, "%s", o.why.c_str());
  msg = linear_msg(fd, 16, 16);
  msg.layout.modifier = 0x0300000000000001ULL; /* NVIDIA: nothing here reads it */
  o = scanouts.open(std::move(msg));
  fail_unless(!o.reader && o.fatal);
  fail_unless(o.why.find("0x0300000000000001") != std::string::npos, "%s", o.why.c_str());
  /* A short fd is bad input, not fatal. */
  msg = linear_msg(fd, 64, 64);
  o = scanouts.open(std::move(msg));
  fail_unless(!o.reader && !o.fatal, "%s", o.why.c_str());
  close(fd);
}
GST_END_TEST;

static Suite *dmabuf_scanout_suite() {
  Suite *s = suite_create("dmabuf-scanout");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_parse_v1);
  tcase_add_test(tc, test_parse_v2);
  tcase_add_test(tc, test_reader_cache);
  tcase_add_test(tc, test_refusals);
  return s;
}

GST_CHECK_MAIN(dmabuf_scanout)
