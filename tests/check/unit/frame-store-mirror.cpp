/* Unit: the frame store's DMA-BUF mirror (frame-store-mirror.cpp), with a
 * fake reader and a fake mirror: while attached, updates go to the mirror
 * and never to the reader (no readback); detaching or a failing mirror
 * brings the host surface up to date with one full read; other surfaces
 * drop the mirror and start a new generation. */
#include "frame-store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

using vmd::FrameStore;
using vmd::Rect;

namespace {

constexpr uint32_t kXRGB = 0x20020888; /* BGRx */
constexpr uint32_t kW = 40, kH = 30;

/* Reads paint every pixel with `value`; offers a source when `gpu`. */
struct FakeReader : vmd::DmabufReader {
  bool gpu = true;
  uint8_t value = 1;
  std::vector<Rect> reads;
  bool read(const Rect &r, uint8_t *dst, size_t dst_stride, std::string *) override {
    reads.push_back(r);
    for (uint32_t y = r.y; y < r.y + r.h; y++)
      memset(dst + y * dst_stride + r.x * 4, value, r.w * 4);
    return true;
  }
  std::string describe() const override { return "fake"; }
  bool mirror_source(vmd::DmabufLayout *layout, std::vector<vmd::UniqueFd> *fds) const override {
    if (!gpu)
      return false;
    layout->visible = Rect{0, 0, kW, kH};
    fds->clear();
    fds->emplace_back(memfd_create("fake", MFD_CLOEXEC));
    return true;
  }
};

struct FakeMirror : vmd::DmabufMirror {
  unsigned attaches = 0;
  bool fail_draw = false, fail_attach = false;
  std::vector<Rect> draws;
  bool attach(const vmd::DmabufLayout &, std::vector<vmd::UniqueFd> fds, std::string *why) override {
    attaches++;
    fail_unless_equals_int(int(fds.size()), 1);
    *why = "attach refused";
    return !fail_attach;
  }
  bool draw(const Rect &r, std::string *why) override {
    draws.push_back(r);
    *why = "draw failed";
    return !fail_draw;
  }
};

bool same(const Rect &a, const Rect &b) {
  return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h;
}

const vmd::PixmanFormat *xrgb() {
  return vmd::pixman_format_lookup(kXRGB);
}

/* A store showing `reader`, with the mirror attached. */
uint64_t mirrored(FrameStore &store, std::shared_ptr<FakeReader> reader,
                  std::shared_ptr<FakeMirror> mirror) {
  fail_unless(store.scanout_dmabuf(reader, kW, kH, xrgb(), "fake", g_get_monotonic_time()).applied);
  const uint64_t gen = store.format().generation;
  fail_unless(store.dmabuf_mirrorable(gen));
  std::string why;
  fail_unless(store.set_dmabuf_mirror(mirror, gen, &why), "%s", why.c_str());
  fail_unless_equals_int(int(mirror->draws.size()), 1);
  fail_unless(same(mirror->draws[0], Rect{0, 0, kW, kH}));
  return gen;
}

uint8_t host_pixel(FrameStore &store, uint64_t gen) {
  std::vector<uint8_t> out(kW * 4 * kH, 0x55);
  uint64_t seq;
  int64_t arrival;
  fail_unless(store.take_frame(gen, 0, out.data(), kW * 4, &seq, &arrival));
  return out[(kH - 1) * kW * 4 + 4];
}

}  // namespace

GST_START_TEST(test_updates_go_to_the_mirror_only) {
  FrameStore store;
  auto reader = std::make_shared<FakeReader>();
  auto mirror = std::make_shared<FakeMirror>();
  const uint64_t gen = mirrored(store, reader, mirror);
  const size_t reads = reader->reads.size(); /* the scanout's own full read */
  fail_unless(store.update_dmabuf(3, 4, 5, 6, g_get_monotonic_time()).message.empty());
  fail_unless_equals_int(int(reader->reads.size()), int(reads));
  fail_unless_equals_int(int(mirror->draws.size()), 2);
  fail_unless(same(mirror->draws[1], Rect{3, 4, 5, 6}));
  uint64_t seq = 0;
  int64_t arrival = 0;
  fail_unless(store.take_frame_gl(gen, &seq, &arrival));
  fail_unless(seq > 0);
  fail_unless(!store.take_frame_gl(gen + 1, &seq, &arrival));

  /* Detaching reads the whole surface once, with what the buffer holds now. */
  reader->value = 9;
  std::string why;
  fail_unless(store.set_dmabuf_mirror(nullptr, 0, &why));
  fail_unless_equals_int(int(reader->reads.size()), int(reads) + 1);
  fail_unless(same(reader->reads.back(), Rect{0, 0, kW, kH}));
  fail_unless_equals_int(host_pixel(store, gen), 9);
  fail_unless(!store.take_frame_gl(gen, &seq, &arrival));
  /* and updates are read into the host surface again */
  fail_unless(store.update_dmabuf(1, 1, 2, 2, g_get_monotonic_time()).message.empty());
  fail_unless(same(reader->reads.back(), Rect{1, 1, 2, 2}));
}
GST_END_TEST;

GST_START_TEST(test_failing_mirror_falls_back) {
  FrameStore store;
  auto reader = std::make_shared<FakeReader>();
  auto mirror = std::make_shared<FakeMirror>();
  const uint64_t gen = mirrored(store, reader, mirror);
  fail_unless(store.update_dmabuf(0, 0, 4, 4, g_get_monotonic_time()).message.empty());
  mirror->fail_draw = true;
  reader->value = 7;
  const size_t reads = reader->reads.size();
  fail_unless(store.update_dmabuf(2, 2, 3, 3, g_get_monotonic_time()).applied);
  /* The host surface was behind: the whole of it is read, in a new generation. */
  fail_unless_equals_int(int(reader->reads.size()), int(reads) + 1);
  fail_unless(same(reader->reads.back(), Rect{0, 0, kW, kH}));
  const uint64_t now_gen = store.format().generation;
  fail_unless(now_gen != gen);
  uint64_t seq;
  int64_t arrival;
  fail_unless(!store.take_frame_gl(now_gen, &seq, &arrival));
  fail_unless_equals_int(host_pixel(store, now_gen), 7);
}
GST_END_TEST;

GST_START_TEST(test_other_surfaces_drop_the_mirror) {
  /* A flip to another buffer of the same size: the mirror follows it. */
  FrameStore store;
  auto mirror = std::make_shared<FakeMirror>();
  const uint64_t gen = mirrored(store, std::make_shared<FakeReader>(), mirror);
  fail_unless(store.scanout_dmabuf(std::make_shared<FakeReader>(), kW, kH, xrgb(), "fake",
                                   g_get_monotonic_time()).applied);
  fail_unless_equals_int(int(mirror->attaches), 2);
  fail_unless(store.format().generation == gen);
  uint64_t seq;
  int64_t arrival;
  fail_unless(store.take_frame_gl(gen, &seq, &arrival));

  /* A buffer the mirror refuses, or one read on the CPU: new generation. */
  mirror->fail_attach = true;
  fail_unless(store.scanout_dmabuf(std::make_shared<FakeReader>(), kW, kH, xrgb(), "fake",
                                   g_get_monotonic_time()).applied);
  fail_unless(store.format().generation != gen);
  fail_unless(!store.take_frame_gl(store.format().generation, &seq, &arrival));

  FrameStore store2;
  auto mirror2 = std::make_shared<FakeMirror>();
  const uint64_t gen2 = mirrored(store2, std::make_shared<FakeReader>(), mirror2);
  auto cpu = std::make_shared<FakeReader>();
  cpu->gpu = false;
  fail_unless(store2.scanout_dmabuf(cpu, kW, kH, xrgb(), "fake", g_get_monotonic_time()).applied);
  fail_unless(store2.format().generation != gen2);
  fail_unless(!store2.dmabuf_mirrorable(store2.format().generation));

  /* A plain Scanout of the same size (the caps say GLMemory): new generation. */
  FrameStore store3;
  const uint64_t gen3 = mirrored(store3, std::make_shared<FakeReader>(), std::make_shared<FakeMirror>());
  std::vector<uint8_t> img(kW * 4 * kH, 3);
  fail_unless(store3.scanout(kW, kH, kW * 4, kXRGB, img.data(), img.size(), g_get_monotonic_time())
                  .applied);
  fail_unless(store3.format().generation != gen3);
  fail_unless_equals_int(host_pixel(store3, store3.format().generation), 3);
}
GST_END_TEST;

static Suite *frame_store_mirror_suite() {
  Suite *s = suite_create("frame-store-mirror");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_updates_go_to_the_mirror_only);
  tcase_add_test(tc, test_failing_mirror_falls_back);
  tcase_add_test(tc, test_other_surfaces_drop_the_mirror);
  return s;
}

GST_CHECK_MAIN(frame_store_mirror);
