/* Test VM program: sends one HXFR frame request with pixels from the guest
 * to the host over a virtio-serial port, with the project's own protocol and
 * transport code, and reports the host's answer on the serial console:
 *   HXFR PROBE OK bytes=N keyframe=K pts=P
 *   HXFR PROBE FAIL <why>
 * Static (the initramfs has no libraries). Kernel arguments:
 *   hxfr.port=NAME   virtio-serial port name (default org.helix.frame-export)
 */
#include "hxfr-parser.h"
#include "hxfr-protocol.h"
#include "hxfr-transport.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace hx = vmd::hxfr;

namespace {

std::string cmdline_value(const std::string &key, const std::string &fallback) {
  std::ifstream f("/proc/cmdline");
  std::string word;
  while (f >> word) {
    if (word.rfind(key + "=", 0) == 0)
      return word.substr(key.size() + 1);
  }
  return fallback;
}

/* Without udev there is no /dev/virtio-ports/NAME link: find the port by
 * its name in sysfs, as udev's rule does. */
std::string find_port(const std::string &name) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d)
    return "";
  std::string found;
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    std::ifstream n(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
    std::string port;
    std::getline(n, port);
    if (port == name)
      found = std::string("/dev/") + e->d_name;
  }
  closedir(d);
  return found;
}

int fail(const std::string &why) {
  printf("HXFR PROBE FAIL %s\n", why.c_str());
  fflush(stdout);
  return 1;
}

}  // namespace

int main() {
  const std::string name = cmdline_value("hxfr.port", "org.helix.frame-export");
  std::string device;
  for (int i = 0; i < 100 && device.empty(); i++) {
    device = find_port(name);
    if (device.empty())
      usleep(100000);
  }
  if (device.empty())
    return fail("no virtio-serial port named " + name + " (is virtio_console loaded?)");

  hx::Address address;
  std::string error;
  if (!hx::parse_address(device, false, &address, &error))
    return fail(error);
  auto conn = hx::connect_to(address, 5000, -1, &error);
  if (!conn)
    return fail(error);

  /* A 64x64 BGRA gradient, asked as a keyframe: v1 form, any host takes it. */
  const uint32_t w = 64, h = 64;
  std::vector<uint8_t> pixels(size_t(w) * h * 4);
  for (uint32_t y = 0; y < h; y++)
    for (uint32_t x = 0; x < w; x++) {
      uint8_t *p = &pixels[(size_t(y) * w + x) * 4];
      p[0] = uint8_t(x * 4), p[1] = uint8_t(y * 4), p[2] = uint8_t(128), p[3] = 255;
    }
  hx::FrameRequest req;
  req.width = w;
  req.height = h;
  req.format = hx::format::kAR24;
  req.stride = w * 4;
  req.pts_ns = 1000000;
  req.duration_ns = 33333333;
  req.force_keyframe = true;
  req.pixels = hx::ByteView{pixels.data(), pixels.size()};
  std::vector<uint8_t> bytes = hx::encode(req, 1);
  if (conn->send_all(bytes.data(), bytes.size(), 10000) != hx::Io::Ok)
    return fail("sending the frame request: " + conn->last_error());

  hx::Parser parser;
  std::vector<uint8_t> buf(65536);
  for (;;) {
    size_t got = 0;
    hx::Io io = conn->recv_some(buf.data(), buf.size(), &got, 30000);
    if (io != hx::Io::Ok)
      return fail(std::string("waiting for the answer: ") + hx::io_name(io));
    std::vector<hx::Message> msgs;
    if (parser.feed(buf.data(), got, &msgs) != hx::Status::kOk)
      return fail("bad bytes from the host: " + parser.error_detail());
    for (const hx::Message &m : msgs) {
      if (m.header.type == hx::MsgType::kError)
        return fail("the host answered ERROR");
      if (m.header.type != hx::MsgType::kFrameResponse)
        continue;
      hx::FrameResponse resp;
      if (hx::decode(m.header, m.view(), &resp) != hx::Status::kOk)
        return fail("undecodable FRAME_RESPONSE");
      size_t total = 0;
      for (const hx::ByteView &nal : resp.nals)
        total += nal.size;
      printf("HXFR PROBE OK bytes=%zu keyframe=%d pts=%lld\n", total, resp.is_keyframe ? 1 : 0,
             static_cast<long long>(resp.pts_ns));
      fflush(stdout);
      return 0;
    }
  }
}
