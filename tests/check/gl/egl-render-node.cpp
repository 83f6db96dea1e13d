/* gl suite: EglDevice on each real DRM render node. Skipped (77, reason
 * printed) on machines without /dev/dri/renderD*. With /dev/udmabuf a memfd
 * becomes a real dma-buf, and a LINEAR XR24 read through the node is checked
 * byte for byte. */
#include "dmabuf-import.h"
#include "dmabuf-test-image.h"

#include <fcntl.h>
#include <glob.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>

#include <string>
#include <vector>

#include <gst/check/gstcheck.h>

namespace {

std::vector<std::string> nodes() {
  std::vector<std::string> out;
  glob_t g{};
  if (glob("/dev/dri/renderD*", 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++)
      out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

/* A real dma-buf over the memfd's pages, or an invalid fd without udmabuf. */
vmd::UniqueFd udmabuf_of(std::vector<uint8_t> bytes) {
  bytes.resize((bytes.size() + 4095) / 4096 * 4096, 0);
  vmd::UniqueFd memfd = vmd_test::make_memfd(bytes);
  vmd::UniqueFd dev(open("/dev/udmabuf", O_RDWR | O_CLOEXEC));
  if (!memfd || !dev || fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK) != 0)
    return vmd::UniqueFd();
  struct udmabuf_create create = {};
  create.memfd = uint32_t(memfd.get());
  create.flags = UDMABUF_FLAGS_CLOEXEC;
  create.size = bytes.size();
  return vmd::UniqueFd(ioctl(dev.get(), UDMABUF_CREATE, &create));
}

}  // namespace

GST_START_TEST(test_each_render_node) {
  for (const std::string &node : nodes()) {
    std::string why;
    auto device = vmd::EglDevice::open_one(node, &why);
    fail_unless(device != nullptr, "%s: %s", node.c_str(), why.c_str());
    g_print("%s: %s, import %d, modifiers %d\n", device->describe().c_str(),
            device->gl_version().c_str(), device->has_dmabuf_import(),
            device->has_dmabuf_modifiers());
    fail_unless_equals_string(device->describe().c_str(), ("EGL on " + node).c_str());
    fail_unless(eglGetCurrentContext() == EGL_NO_CONTEXT);
    if (!device->has_dmabuf_import())
      continue;
    vmd_test::TestImage t = vmd_test::make_image(0x34325258 /* XR24 */, 64, 32, 0, 0);
    std::vector<vmd::UniqueFd> fds;
    fds.push_back(udmabuf_of(t.bytes));
    if (!fds[0]) {
      g_print("%s: no /dev/udmabuf, pixel check skipped\n", node.c_str());
      continue;
    }
    auto reader = vmd::EglDmabufReader::open(device, t.layout, std::move(fds),
                                             GST_VIDEO_FORMAT_BGRx, &why);
    fail_unless(reader != nullptr, "%s: %s", node.c_str(), why.c_str());
    std::vector<uint8_t> dst(64 * 4 * 32);
    fail_unless(reader->read(vmd::Rect{0, 0, 64, 32}, dst.data(), 64 * 4, &why), "%s",
                why.c_str());
    for (uint32_t y = 0; y < 32; y++)
      fail_unless(memcmp(dst.data() + y * 256, vmd_test::stored_pixel(t, 0, y), 256) == 0,
                  "%s: row %u differs", node.c_str(), y);
  }
}
GST_END_TEST;

static Suite *render_node_suite() {
  Suite *s = suite_create("egl-render-node");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_each_render_node);
  return s;
}

int main(int argc, char **argv) {
  if (nodes().empty()) {
    g_print("SKIP: no /dev/dri/renderD* on this machine (no DRM render node to open)\n");
    return 77;
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(render_node_suite(), "egl-render-node", __FILE__);
}
