/* gst-vmdisplay benchmark: what one encoded access unit costs on its way through HXFR, with
 * the copies issue 7 removed (two on each side) and without them.
 *
 * Host side, per access unit, on the sending thread (CPU time, then wall time):
 *   two copies: the encoder's bytes into a std::vector (the old EncodedFrame::data), then
 *               hxfr::encode(FrameResponse) copying them into the message, then one send;
 *   one writev: hxfr::encode_frame_response_prefix() and a writev of prefix + the bytes
 *               where the encoder left them (what helixframesrv does now).
 * Both write the same bytes to a UNIX socketpair whose other end a thread drains.
 * Guest side, per access unit, after the parser has the FRAME_RESPONSE payload:
 *   two copies: the NALs concatenated into a std::vector (the old EncodeResult::data), then
 *               copied into a new output allocation (the old gst_buffer_new_memdup);
 *   one copy:   vmd::EncodedAu::copy_to() into a new output allocation (what vsockenc does).
 * The "two copies" variants re-create the old code paths with the same calls they made; the
 * "one copy" variants call the code in the tree. Prints a Markdown table; never fails on a
 * timing. The host's message is also timed without the socket, where the copies are all there
 * is. usage: au-copy-cost [ITERATIONS_SCALE] (default 1) */
#include "encoded-au.h"
#include "hxfr-protocol.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace hx = vmd::hxfr;

namespace {

double cpu_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

double wall_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

struct Cost {
  double cpu_us = 0, wall_us = 0;
};

/* A socketpair whose far end a thread reads and throws away, so sends never block for long. */
class Sink {
 public:
  Sink() {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0) {
      perror("socketpair");
      std::exit(2);
    }
    reader_ = std::thread([this] {
      std::vector<uint8_t> buf(1 << 20);
      while (read(fds_[1], buf.data(), buf.size()) > 0) {
      }
    });
  }
  ~Sink() {
    shutdown(fds_[0], SHUT_WR);
    reader_.join();
    close(fds_[0]);
    close(fds_[1]);
  }
  bool write_all(struct iovec *iov, int n) {
    while (n > 0) {
      ssize_t w = writev(fds_[0], iov, n);
      if (w < 0)
        return false;
      size_t done = size_t(w);
      while (n > 0 && done >= iov->iov_len) {
        done -= iov->iov_len;
        iov++;
        n--;
      }
      if (n > 0) {
        iov->iov_base = static_cast<uint8_t *>(iov->iov_base) + done;
        iov->iov_len -= done;
      }
    }
    return true;
  }

 private:
  int fds_[2] = {-1, -1};
  std::thread reader_;
};

hx::FrameResponse response_for(const uint8_t *au, size_t size, int64_t pts) {
  hx::FrameResponse r;
  r.pts_ns = pts;
  r.dts_ns = pts;
  r.is_keyframe = false;
  r.nals.push_back(hx::ByteView{au, size});
  return r;
}

/* The median over 5 rounds of the mean per call: one round disturbed by the other core's work
 * does not decide the figure. */
template <typename Fn>
Cost measure(int iterations, Fn &&fn) {
  for (int i = 0; i < iterations / 10 + 1; i++) /* warm caches and the allocator */
    fn(i);
  std::vector<Cost> rounds;
  for (int r = 0; r < 5; r++) {
    const double c0 = cpu_ns(), w0 = wall_ns();
    for (int i = 0; i < iterations; i++)
      fn(i);
    rounds.push_back(Cost{(cpu_ns() - c0) / 1e3 / iterations, (wall_ns() - w0) / 1e3 / iterations});
  }
  std::sort(rounds.begin(), rounds.end(),
            [](const Cost &a, const Cost &b) { return a.cpu_us < b.cpu_us; });
  return rounds[rounds.size() / 2];
}

/* Building the message only (no socket): the copies themselves. */
Cost host_build_two_copies(const std::vector<uint8_t> &encoder_out, int iterations) {
  return measure(iterations, [&](int i) {
    std::vector<uint8_t> data(encoder_out.begin(), encoder_out.end()); /* EncodedFrame::data */
    std::vector<uint8_t> msg = hx::encode(response_for(data.data(), data.size(), i), 1);
    asm volatile("" : : "r"(msg.data()) : "memory");
  });
}

Cost host_build_prefix(const std::vector<uint8_t> &encoder_out, int iterations) {
  return measure(iterations, [&](int i) {
    hx::FrameResponse r = response_for(nullptr, 0, i);
    r.nals.clear();
    std::vector<uint8_t> prefix = hx::encode_frame_response_prefix(r, 1, encoder_out.size());
    asm volatile("" : : "r"(prefix.data()) : "memory");
  });
}

Cost host_two_copies(const std::vector<uint8_t> &encoder_out, int iterations) {
  Sink sink;
  return measure(iterations, [&](int i) {
    std::vector<uint8_t> data(encoder_out.begin(), encoder_out.end()); /* EncodedFrame::data */
    std::vector<uint8_t> msg = hx::encode(response_for(data.data(), data.size(), i), 1);
    struct iovec iov = {msg.data(), msg.size()};
    sink.write_all(&iov, 1);
  });
}

Cost host_one_writev(const std::vector<uint8_t> &encoder_out, int iterations) {
  Sink sink;
  return measure(iterations, [&](int i) {
    hx::FrameResponse r = response_for(nullptr, 0, i);
    r.nals.clear();
    std::vector<uint8_t> prefix = hx::encode_frame_response_prefix(r, 1, encoder_out.size());
    struct iovec iov[2] = {{prefix.data(), prefix.size()},
                           {const_cast<uint8_t *>(encoder_out.data()), encoder_out.size()}};
    sink.write_all(iov, 2);
  });
}

/* The guest's received FRAME_RESPONSE payload, as the parser holds it, with nal_count NALs. */
vmd::EncodedAu received(size_t size, int nal_count) {
  vmd::EncodedAu au;
  au.payload = hx::Payload(size + 64);
  uint8_t *p = au.payload.data();
  std::memset(p, 0x5a, au.payload.size());
  size_t off = 0, piece = size / size_t(nal_count);
  for (int n = 0; n < nal_count; n++) {
    size_t len = n == nal_count - 1 ? size - off : piece;
    au.nals.push_back(hx::ByteView{p + off, len});
    off += len;
  }
  return au;
}

Cost guest_two_copies(const vmd::EncodedAu &au, int iterations) {
  return measure(iterations, [&](int) {
    std::vector<uint8_t> data; /* the old EncodeResult::data */
    for (const auto &n : au.nals)
      data.insert(data.end(), n.data, n.data + n.size);
    hx::Payload out(data.size()); /* an uninitialised allocation, as gst_buffer_new_memdup's */
    std::memcpy(out.data(), data.data(), data.size());
    asm volatile("" : : "r"(out.data()) : "memory");
  });
}

Cost guest_one_copy(const vmd::EncodedAu &au, int iterations) {
  return measure(iterations, [&](int) {
    hx::Payload out(au.size()); /* uninitialised, as gst_buffer_new_allocate's */
    au.copy_to(out.data());
    asm volatile("" : : "r"(out.data()) : "memory");
  });
}

}  // namespace

int main(int argc, char **argv) {
  const int scale = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  std::printf("Per access unit: the median of 5 rounds' means, in microseconds of the measuring "
              "thread's CPU time (wall time after the slash where a socket is involved).\n\n"
              "| AU size | iterations | host message, two copies | host message, prefix only | "
              "host message + send, two copies | host prefix + writev | guest, two copies | "
              "guest, one copy |\n|---|---|---|---|---|---|---|---|\n");
  const size_t sizes[] = {32 * 1024, 128 * 1024, 512 * 1024, 2 * 1024 * 1024};
  for (size_t size : sizes) {
    const int iterations = scale * int(std::max<size_t>(200, (64u << 20) / size));
    std::vector<uint8_t> encoder_out(size, 0xa5);
    Cost b2 = host_build_two_copies(encoder_out, iterations);
    Cost b1 = host_build_prefix(encoder_out, iterations);
    Cost h2 = host_two_copies(encoder_out, iterations);
    Cost h1 = host_one_writev(encoder_out, iterations);
    vmd::EncodedAu au = received(size, 3); /* SPS, PPS and the slices, as x264 sends an IDR */
    Cost g2 = guest_two_copies(au, iterations);
    Cost g1 = guest_one_copy(au, iterations);
    std::printf("| %zu KiB | %d | %.2f | %.2f | %.1f / %.1f | %.1f / %.1f | %.2f | %.2f |\n",
                size / 1024, iterations, b2.cpu_us, b1.cpu_us, h2.cpu_us, h2.wall_us, h1.cpu_us,
                h1.wall_us, g2.cpu_us, g1.cpu_us);
  }
  return 0;
}
