/* Unit: the host surface: copies, validation of every size and fd, buffer
 * age, waiting rules. */
#include "frame-store.h"

#include <fcntl.h>
#include <gst/check/gstcheck.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

using vmd::FrameStore;
using vmd::UniqueFd;
using vmd::Wake;

namespace {

constexpr uint32_t kXRGB = 0x20020888; /* BGRx */
constexpr uint32_t kRGB24 = 0x18020888; /* BGR */

std::vector<uint8_t> pattern(uint32_t w, uint32_t h, uint32_t stride, uint32_t bpp, uint8_t seed) {
  std::vector<uint8_t> d(size_t(stride) * h, 0xee);
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w * bpp; x++)
      d[size_t(y) * stride + x] = uint8_t(seed + x * 7 + y * 13);
  return d;
}

struct Out {
  std::vector<uint8_t> pixels;
  size_t stride = 0;
  uint64_t seq = 0;
};

void take_into(FrameStore &store, Out *out, uint64_t held) {
  vmd::FrameFormat f = store.format();
  if (out->pixels.empty()) {
    out->stride = FrameStore::packed_stride(f.width, f.format->bytes_per_pixel);
    out->pixels.assign(out->stride * f.height, 0x55);
  }
  int64_t arrival;
  fail_unless(store.take_frame(f.generation, held, out->pixels.data(), out->stride, &out->seq,
                               &arrival));
}

/* Compares the visible part of an output with a source image. */
void assert_same(const Out &out, const std::vector<uint8_t> &src, uint32_t src_stride, uint32_t w,
                 uint32_t h, uint32_t bpp) {
  for (uint32_t y = 0; y < h; y++)
    fail_unless(std::memcmp(out.pixels.data() + y * out.stride, src.data() + size_t(y) * src_stride,
                            size_t(w) * bpp) == 0,
                "row %u differs", y);
}

int64_t now() { return g_get_monotonic_time(); }

UniqueFd make_memfd(size_t size) {
  UniqueFd fd(memfd_create("test-surface", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  fail_unless(fd.get() >= 0);
  fail_unless(ftruncate(fd.get(), off_t(size)) == 0);
  return fd;
}

}  // namespace

GST_START_TEST(test_scanout_copies_exactly) {
  FrameStore store;
  /* QEMU's stride may be wider than ours. */
  auto img = pattern(64, 48, 64 * 4 + 32, 4, 1);
  vmd::Verdict v = store.scanout(64, 48, 64 * 4 + 32, kXRGB, img.data(), img.size(), now());
  fail_unless(v.applied && v.message.empty(), "%s", v.message.c_str());
  Out out;
  take_into(store, &out, 0);
  assert_same(out, img, 64 * 4 + 32, 64, 48, 4);
  fail_unless_equals_string(gst_video_format_to_string(store.format().format->gst), "BGRx");
  vmd::FrameStats st = store.stats();
  fail_unless_equals_uint64(st.scanouts, 1);
  fail_unless_equals_uint64(st.bytes_in, 64 * 48 * 4);
  fail_unless_equals_uint64(st.full_copies, 1);
}
GST_END_TEST;

GST_START_TEST(test_zero_copy_scanout) {
  FrameStore store;
  auto img = std::make_shared<std::vector<uint8_t>>(pattern(32, 8, 128, 4, 21));
  std::weak_ptr<std::vector<uint8_t>> watch = img;
  fail_unless(store.scanout(32, 8, 128, kXRGB, img->data(), img->size(), now(), img).applied);
  /* Nothing copied in: the message is the surface, and it is kept alive. */
  fail_unless_equals_uint64(store.stats().bytes_in, 0);
  auto expect = *img;
  img.reset();
  fail_if(watch.expired());
  Out out;
  take_into(store, &out, 0);
  assert_same(out, expect, 128, 32, 8, 4);
  /* A partial update takes a private copy, then applies the rectangle; the
   * message is released. */
  auto patch = pattern(2, 2, 8, 4, 99);
  fail_unless(store.update(3, 4, 2, 2, 8, kXRGB, patch.data(), patch.size(), now()).applied);
  fail_unless(watch.expired());
  fail_unless_equals_uint64(store.stats().bytes_in, 32 * 8 * 4 + 2 * 2 * 4);
  for (int y = 0; y < 2; y++)
    std::memcpy(expect.data() + (4 + y) * 128 + 3 * 4, patch.data() + y * 8, 8);
  take_into(store, &out, out.seq);
  assert_same(out, expect, 128, 32, 8, 4);
  /* Another zero-copy Scanout of the same size replaces it without renegotiation. */
  uint64_t gen = store.format().generation;
  auto img2 = std::make_shared<std::vector<uint8_t>>(pattern(32, 8, 128, 4, 5));
  fail_unless(store.scanout(32, 8, 128, kXRGB, img2->data(), img2->size(), now(), img2).applied);
  fail_unless_equals_uint64(store.format().generation, gen);
  take_into(store, &out, out.seq);
  assert_same(out, *img2, 128, 32, 8, 4);
}
GST_END_TEST;

GST_START_TEST(test_24bpp_odd_width) {
  FrameStore store;
  auto img = pattern(5, 3, 15, 3, 9);
  fail_unless(store.scanout(5, 3, 15, kRGB24, img.data(), img.size(), now()).applied);
  fail_unless_equals_int(FrameStore::packed_stride(5, 3), 16);
  Out out;
  take_into(store, &out, 0);
  assert_same(out, img, 15, 5, 3, 3);
  fail_unless_equals_string(gst_video_format_to_string(store.format().format->gst), "BGR");
}
GST_END_TEST;

GST_START_TEST(test_update_copies_only_the_rectangle) {
  FrameStore store;
  auto img = pattern(100, 80, 400, 4, 0);
  fail_unless(store.scanout(100, 80, 400, kXRGB, img.data(), img.size(), now()).applied);
  Out a;
  take_into(store, &a, 0);
  uint64_t in_before = store.stats().bytes_in;

  auto patch = pattern(10, 6, 40, 4, 200);
  fail_unless(store.update(20, 30, 10, 6, 40, kXRGB, patch.data(), patch.size(), now()).applied);
  fail_unless_equals_uint64(store.stats().bytes_in - in_before, 10 * 6 * 4);
  /* Apply the patch to our reference image too. */
  for (int y = 0; y < 6; y++)
    std::memcpy(img.data() + (30 + y) * 400 + 20 * 4, patch.data() + y * 40, 40);

  /* The same buffer again (held = its frame): only the patch is copied out. */
  uint64_t out_before = store.stats().bytes_out;
  take_into(store, &a, a.seq);
  fail_unless_equals_uint64(store.stats().bytes_out - out_before, 10 * 6 * 4);
  fail_unless_equals_uint64(store.stats().full_copies, 1);
  assert_same(a, img, 400, 100, 80, 4);
}
GST_END_TEST;

GST_START_TEST(test_buffer_age_over_several_frames) {
  FrameStore store;
  auto img = pattern(64, 64, 256, 4, 3);
  fail_unless(store.scanout(64, 64, 256, kXRGB, img.data(), img.size(), now()).applied);
  Out a, b;
  take_into(store, &a, 0); /* frame 1: full */
  auto p1 = pattern(4, 4, 16, 4, 100);
  fail_unless(store.update(0, 0, 4, 4, 16, kXRGB, p1.data(), p1.size(), now()).applied);
  take_into(store, &b, 0); /* frame 2: full (unknown buffer) */
  auto p2 = pattern(8, 2, 32, 4, 150);
  fail_unless(store.update(40, 50, 8, 2, 32, kXRGB, p2.data(), p2.size(), now()).applied);
  for (int y = 0; y < 4; y++)
    std::memcpy(img.data() + y * 256, p1.data() + y * 16, 16);
  for (int y = 0; y < 2; y++)
    std::memcpy(img.data() + (50 + y) * 256 + 40 * 4, p2.data() + y * 32, 32);
  /* Buffer a holds frame 1; frame 3 needs p1 + p2 in it. */
  uint64_t out_before = store.stats().bytes_out;
  take_into(store, &a, a.seq);
  fail_unless_equals_uint64(store.stats().bytes_out - out_before, 4 * 4 * 4 + 8 * 2 * 4);
  assert_same(a, img, 256, 64, 64, 4);
  fail_unless_equals_uint64(store.stats().full_copies, 2);
}
GST_END_TEST;

GST_START_TEST(test_bad_sizes_are_ignored) {
  FrameStore store;
  std::vector<uint8_t> small(100);
  /* Scanout: truncated data, stride too small, zero and absurd sizes. */
  fail_if(store.scanout(64, 64, 256, kXRGB, small.data(), small.size(), now()).applied);
  auto img = pattern(64, 64, 256, 4, 0);
  fail_if(store.scanout(64, 64, 100, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.scanout(0, 64, 256, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.scanout(16385, 1, 65540, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.scanout(G_MAXUINT32, G_MAXUINT32, G_MAXUINT32, kXRGB, img.data(), img.size(), now()).applied);
  /* Update before any Scanout. */
  fail_if(store.update(0, 0, 1, 1, 4, kXRGB, img.data(), img.size(), now()).applied);
  fail_unless_equals_uint64(store.stats().ignored, 6);
  fail_unless_equals_uint64(store.stats().scanouts, 0);

  fail_unless(store.scanout(64, 64, 256, kXRGB, img.data(), img.size(), now()).applied);
  /* Update: negative, zero, truncated, outside, wrong format. */
  fail_if(store.update(0, 0, -4, 4, 16, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.update(0, 0, 4, 0, 16, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.update(0, 0, 4, 4, 16, kXRGB, small.data(), 63, now()).applied);
  fail_if(store.update(0, 0, 4, 4, 8, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.update(64, 0, 4, 4, 16, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.update(-4, -4, 4, 4, 16, kXRGB, img.data(), img.size(), now()).applied);
  fail_if(store.update(0, 0, 4, 4, 12, kRGB24, img.data(), img.size(), now()).applied);
  fail_if(store.update(0, 0, 1 << 30, 1, G_MAXUINT32, kXRGB, img.data(), img.size(), now()).applied);
  fail_unless_equals_uint64(store.stats().updates, 0);

  /* A rectangle half outside is clipped, and the right source pixels land. */
  auto patch = pattern(8, 8, 32, 4, 77);
  vmd::Verdict v = store.update(60, 60, 8, 8, 32, kXRGB, patch.data(), patch.size(), now());
  fail_unless(v.applied);
  fail_unless(strstr(v.message.c_str(), "clipped") != nullptr);
  Out out;
  take_into(store, &out, 0);
  for (int y = 0; y < 4; y++)
    fail_unless(std::memcmp(out.pixels.data() + (60 + y) * out.stride + 60 * 4,
                            patch.data() + y * 32, 16) == 0);
  /* Negative origin: the source is offset too. */
  v = store.update(-2, -3, 8, 8, 32, kXRGB, patch.data(), patch.size(), now());
  fail_unless(v.applied);
  take_into(store, &out, out.seq);
  for (int y = 0; y < 5; y++)
    fail_unless(std::memcmp(out.pixels.data() + y * out.stride, patch.data() + (y + 3) * 32 + 2 * 4,
                            6 * 4) == 0);
  /* Still streaming: no failure state. */
  vmd::FrameFormat fmt;
  std::string error;
  vmd::WaitArgs args;
  args.generation = store.format().generation;
  store.set_flushing(true);
  fail_unless(store.wait(args, &fmt, &error) == Wake::Flushing);
}
GST_END_TEST;

GST_START_TEST(test_unknown_format_fails) {
  FrameStore store;
  auto img = pattern(8, 8, 32, 4, 0);
  vmd::Verdict v = store.scanout(8, 8, 32, 0x12345678, img.data(), img.size(), now());
  fail_if(v.applied);
  fail_unless(strstr(v.message.c_str(), "0x12345678") != nullptr, "%s", v.message.c_str());
  vmd::FrameFormat fmt;
  std::string error;
  fail_unless(store.wait(vmd::WaitArgs{}, &fmt, &error) == Wake::Failed);
  fail_unless(strstr(error.c_str(), "0x12345678") != nullptr);
}
GST_END_TEST;

GST_START_TEST(test_scanout_map) {
  FrameStore store;
  const uint32_t w = 32, h = 16, stride = 160, offset = 4096;
  UniqueFd fd = make_memfd(offset + stride * h);
  auto img = pattern(w, h, stride, 4, 11);
  fail_unless(pwrite(fd.get(), img.data(), img.size(), offset) == ssize_t(img.size()));

  /* Too small for offset + stride * height: ignored before any mmap. */
  UniqueFd tiny = make_memfd(offset + stride * h - 1);
  vmd::Verdict v = store.scanout_map(std::move(tiny), offset, w, h, stride, kXRGB, now());
  fail_if(v.applied);
  fail_unless(strstr(v.message.c_str(), "needs") != nullptr, "%s", v.message.c_str());
  /* Not a memory file. */
  int pipefd[2];
  fail_unless(pipe(pipefd) == 0);
  close(pipefd[1]);
  fail_if(store.scanout_map(UniqueFd(pipefd[0]), 0, w, h, stride, kXRGB, now()).applied);
  fail_if(store.scanout_map(UniqueFd(), 0, w, h, stride, kXRGB, now()).applied);
  /* Offset near the 32-bit limit does not wrap. */
  UniqueFd again = make_memfd(4096);
  fail_if(store.scanout_map(std::move(again), G_MAXUINT32, w, h, stride, kXRGB, now()).applied);

  int raw = fd.get();
  UniqueFd dup_fd(dup(raw));
  fail_unless(store.scanout_map(std::move(dup_fd), offset, w, h, stride, kXRGB, now()).applied);
  Out out;
  take_into(store, &out, 0);
  assert_same(out, img, stride, w, h, 4);

  /* UpdateMap copies the damaged region out of the shared memory. */
  auto patch = pattern(4, 4, 16, 4, 99);
  for (int y = 0; y < 4; y++) {
    fail_unless(pwrite(raw, patch.data() + y * 16, 16, offset + (5 + y) * stride + 6 * 4) == 16);
    std::memcpy(img.data() + (5 + y) * stride + 6 * 4, patch.data() + y * 16, 16);
  }
  uint64_t in_before = store.stats().bytes_in;
  fail_unless(store.update_map(6, 5, 4, 4, now()).applied);
  fail_unless_equals_uint64(store.stats().bytes_in - in_before, 4 * 4 * 4);
  /* Only the applied map messages count, as map and as scanout/update. */
  fail_unless_equals_uint64(store.stats().map_scanouts, 1);
  fail_unless_equals_uint64(store.stats().map_updates, 1);
  fail_unless_equals_uint64(store.stats().scanouts, 1);
  fail_unless_equals_uint64(store.stats().updates, 1);
  take_into(store, &out, out.seq);
  assert_same(out, img, stride, w, h, 4);
  fail_if(store.update_map(100, 100, 4, 4, now()).applied);
  fail_if(store.update_map(0, 0, -1, 4, now()).applied);

  /* The peer truncates the file: the next UpdateMap must not touch it. */
  fail_unless(ftruncate(raw, 10) == 0);
  v = store.update_map(0, 0, 4, 4, now());
  fail_if(v.applied);
  fail_unless(strstr(v.message.c_str(), "shrank") != nullptr, "%s", v.message.c_str());
  fail_if(store.update_map(0, 0, 4, 4, now()).applied); /* map dropped */
  /* A plain Scanout after the map works again; it is no map scanout. */
  fail_unless(store.scanout(w, h, stride, kXRGB, img.data(), img.size(), now()).applied);
  fail_unless_equals_uint64(store.stats().scanouts, 2);
  fail_unless_equals_uint64(store.stats().map_scanouts, 1);
  fail_unless_equals_uint64(store.stats().map_updates, 1);
}
GST_END_TEST;

GST_START_TEST(test_scanout_map_shrinking_under_us) {
  /* A peer that keeps truncating and regrowing its (unsealed, as QEMU's)
   * memfd while we read it: reads fail cleanly, never a SIGBUS. */
  const uint32_t w = 256, h = 128, stride = w * 4;
  const size_t size = size_t(stride) * h;
  UniqueFd fd = make_memfd(size);
  FrameStore store;
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    while (!stop) {
      if (ftruncate(fd.get(), 0) != 0 || ftruncate(fd.get(), off_t(size)) != 0)
        break;
    }
  });
  int applied = 0, ignored = 0;
  const int64_t until = now() + 1500000;
  while (now() < until) {
    vmd::Verdict v = store.scanout_map(UniqueFd(dup(fd.get())), 0, w, h, stride, kXRGB, now());
    for (int i = 0; v.applied && i < 50; i++) {
      vmd::Verdict u = store.update_map(i, i, 64, 64, now());
      u.applied ? applied++ : ignored++;
      if (!u.applied)
        break;
    }
  }
  stop = true;
  peer.join();
  GST_INFO("update_map applied %d, ignored %d", applied, ignored);
  fail_unless(applied + ignored > 0);
}
GST_END_TEST;

GST_START_TEST(test_scanout_map_sealed) {
  FrameStore store;
  UniqueFd fd = make_memfd(64 * 4 * 8);
  fail_unless(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  UniqueFd dup_fd(dup(fd.get()));
  fail_unless(store.scanout_map(std::move(dup_fd), 0, 64, 8, 256, kXRGB, now()).applied);
  fail_unless(store.update_map(0, 0, 64, 8, now()).applied);
  fail_unless(ftruncate(fd.get(), 10) != 0); /* the seal holds */
}
GST_END_TEST;

GST_START_TEST(test_wait_rules) {
  FrameStore store;
  vmd::FrameFormat fmt;
  std::string error;
  vmd::WaitArgs args;
  auto img = pattern(16, 16, 64, 4, 0);
  fail_unless(store.scanout(16, 16, 64, kXRGB, img.data(), img.size(), now()).applied);
  fail_unless(store.wait(args, &fmt, &error) == Wake::NewFormat);
  fail_unless_equals_int(fmt.width, 16);
  args.generation = fmt.generation;
  fail_unless(store.wait(args, &fmt, &error) == Wake::Frame);
  Out out;
  take_into(store, &out, 0);

  /* Damage arrives, but the frame interval holds it back ~50 ms. */
  fail_unless(store.update(0, 0, 1, 1, 4, kXRGB, img.data(), img.size(), now()).applied);
  int64_t t0 = now();
  args.earliest_frame_us = t0 + 50000;
  fail_unless(store.wait(args, &fmt, &error) == Wake::Frame);
  fail_unless(now() - t0 >= 49000);
  take_into(store, &out, out.seq);

  /* Nothing changes: keepalive fires at its deadline, only when a frame exists. */
  t0 = now();
  args.earliest_frame_us = 0;
  args.keepalive_at_us = t0 + 30000;
  args.can_repeat = true;
  fail_unless(store.wait(args, &fmt, &error) == Wake::Keepalive);
  fail_unless(now() - t0 >= 29000);

  /* Disabled: no frames, no keepalive, until the next Scanout. */
  store.disable();
  fail_unless(store.update(0, 0, 1, 1, 4, kXRGB, img.data(), img.size(), now()).applied);
  store.disable();
  args.keepalive_at_us = now();
  std::thread later([&] {
    g_usleep(100000);
    store.scanout(16, 16, 64, kXRGB, img.data(), img.size(), now());
  });
  t0 = now();
  fail_unless(store.wait(args, &fmt, &error) == Wake::Frame);
  fail_unless(now() - t0 >= 90000, "woke while disabled");
  later.join();

  /* Lost with reconnect: wait for the next surface, which is a new generation. */
  store.connection_lost(true);
  std::thread again([&] {
    g_usleep(50000);
    store.scanout(16, 16, 64, kXRGB, img.data(), img.size(), now());
  });
  fail_unless(store.wait(args, &fmt, &error) == Wake::NewFormat);
  fail_unless(fmt.generation != args.generation);
  again.join();

  /* Lost for good: end. */
  store.connection_lost(false);
  fail_unless(store.wait(args, &fmt, &error) == Wake::Ended);
}
GST_END_TEST;

GST_START_TEST(test_format_settles) {
  FrameStore store;
  vmd::FrameFormat fmt;
  std::string error;
  vmd::WaitArgs args;
  args.format_settle_us = 100000;
  auto a = pattern(64, 48, 256, 4, 0);
  auto b = pattern(32, 16, 128, 4, 0);
  int64_t t0 = now();
  fail_unless(store.scanout(64, 48, 256, kXRGB, a.data(), a.size(), now()).applied);
  std::thread later([&] {
    g_usleep(30000);
    store.scanout(32, 16, 128, kXRGB, b.data(), b.size(), now());
  });
  /* The placeholder-like first surface is never reported. */
  fail_unless(store.wait(args, &fmt, &error) == Wake::NewFormat);
  later.join();
  fail_unless_equals_int(fmt.width, 32);
  fail_unless(now() - t0 >= 125000, "reported after %" G_GINT64_FORMAT " us", now() - t0);
  /* A guest flipping modes every 60 ms forever still gets reported, at most
   * 3 x settle after the first unreported change. */
  {
    std::atomic<bool> stop{false};
    args.generation = fmt.generation;
    Out consumed; /* take the pending damage, so only a new surface wakes us */
    take_into(store, &consumed, 0);
    std::thread flapper([&] {
      for (int i = 1; !stop; i++) { /* starts with the size not current */
        const auto &img = i % 2 ? a : b;
        store.scanout(i % 2 ? 64 : 32, i % 2 ? 48 : 16, i % 2 ? 256 : 128, kXRGB, img.data(),
                      img.size(), now());
        g_usleep(60000);
      }
    });
    t0 = now();
    fail_unless(store.wait(args, &fmt, &error) == Wake::NewFormat);
    int64_t took = now() - t0;
    stop = true;
    flapper.join();
    fail_unless(took < 400000, "flapping surface reported after %" G_GINT64_FORMAT " us", took);
  }
  /* Flushing still wakes at once while settling. */
  fail_unless(store.scanout(64, 48, 256, kXRGB, a.data(), a.size(), now()).applied);
  args.generation = fmt.generation;
  store.set_flushing(true);
  t0 = now();
  fail_unless(store.wait(args, &fmt, &error) == Wake::Flushing);
  fail_unless(now() - t0 < 50000);
}
GST_END_TEST;

static Suite *frame_store_suite() {
  Suite *s = suite_create("frame-store");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_scanout_copies_exactly);
  tcase_add_test(tc, test_zero_copy_scanout);
  tcase_add_test(tc, test_24bpp_odd_width);
  tcase_add_test(tc, test_update_copies_only_the_rectangle);
  tcase_add_test(tc, test_buffer_age_over_several_frames);
  tcase_add_test(tc, test_bad_sizes_are_ignored);
  tcase_add_test(tc, test_unknown_format_fails);
  tcase_add_test(tc, test_scanout_map);
  tcase_add_test(tc, test_scanout_map_shrinking_under_us);
  tcase_add_test(tc, test_scanout_map_sealed);
  tcase_add_test(tc, test_wait_rules);
  tcase_add_test(tc, test_format_settles);
  return s;
}

GST_CHECK_MAIN(frame_store);
