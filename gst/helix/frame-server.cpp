/* gst-vmdisplay: helixframesrv's HXFR server (accept loop and client bookkeeping). */
#include "frame-server.h"

#include "frame-server-client.h"
#include "hxfr-protocol.h"

#include <gst/gst.h>
#include <sys/eventfd.h>
#include <unistd.h>

GST_DEBUG_CATEGORY(helix_frame_server_debug);
#define GST_CAT_DEFAULT helix_frame_server_debug

namespace vmd::helix {

namespace {
constexpr int kAcceptPollMs = 500; /* finished sessions are reaped this often */

void init_debug() {
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    GST_DEBUG_CATEGORY_INIT(helix_frame_server_debug, "helixframesrv", 0,
                            "HXFR frame server (helixframesrv)");
    g_once_init_leave(&once, 1);
  }
}
}  // namespace

FrameServer::FrameServer(ServerConfig config, std::shared_ptr<ScanoutRegistry> scanouts)
    : config_(std::move(config)), scanouts_(std::move(scanouts)) {
  init_debug();
}

FrameServer::~FrameServer() {
  stop();
}

bool FrameServer::start(std::string *error) {
  hxfr::Address addr;
  if (!hxfr::parse_address(config_.address, true, &addr, error)) {
    *error = "invalid address '" + config_.address + "': " + *error +
             " (use vsock://-1:PORT, tcp://HOST:PORT or unix:///PATH)";
    return false;
  }
  listener_ = hxfr::Listener::listen(addr, error);
  if (!listener_) {
    *error = "cannot listen on " + config_.address + ": " + *error;
    return false;
  }
  if (addr.kind == hxfr::TransportKind::Tcp)
    bound_tcp_port_ = listener_->bound_tcp_port();
  cancel_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cancel_fd_) {
    *error = std::string("eventfd failed: ") + g_strerror(errno);
    listener_.reset();
    return false;
  }
  stopping_ = false;
  accept_thread_ = std::make_unique<std::thread>([this] { accept_loop(); });
  GST_INFO("serving HXFR on %s (max %u clients, max payload %u bytes)", config_.address.c_str(),
           config_.max_clients, config_.max_payload);
  return true;
}

void FrameServer::stop() {
  if (!accept_thread_)
    return;
  stopping_ = true;
  uint64_t one = 1;
  if (write(cancel_fd_.get(), &one, sizeof one) < 0)
    GST_WARNING("cannot signal stop: %s", g_strerror(errno));
  accept_thread_->join();
  accept_thread_.reset();
  reap_finished(true);
  listener_.reset();
  cancel_fd_.reset();
}

uint32_t FrameServer::client_count() {
  std::lock_guard<std::mutex> g(lock_);
  uint32_t n = 0;
  for (auto &s : sessions_)
    n += s->finished() ? 0 : 1;
  return n;
}

void FrameServer::reap_finished(bool all) {
  std::list<std::unique_ptr<ClientSession>> done;
  {
    std::lock_guard<std::mutex> g(lock_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (all || (*it)->finished()) {
        done.push_back(std::move(*it));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto &s : done)
    s->shutdown();
  done.clear(); /* joins, outside the lock */
}

void FrameServer::accept_loop() {
  while (!stopping_) {
    reap_finished(false);
    std::string error;
    hxfr::Io status = hxfr::Io::Ok;
    std::unique_ptr<hxfr::Connection> conn =
        listener_->accept(kAcceptPollMs, cancel_fd_.get(), &error, &status);
    if (!conn) {
      bool quiet = status == hxfr::Io::Timeout || status == hxfr::Io::Cancelled;
      if (!quiet && !stopping_) {
        GST_WARNING("accept on %s failed: %s", config_.address.c_str(), error.c_str());
        g_usleep(100 * 1000); /* e.g. EMFILE: do not spin */
      }
      continue;
    }
    if (client_count() >= config_.max_clients) {
      GST_WARNING("refusing %s: already %u clients (max-clients)", conn->peer().c_str(),
                  config_.max_clients);
      vmd::hxfr::Error e;
      e.code = vmd::hxfr::error_code::kInternal;
      e.message = "too many clients (max-clients=" + std::to_string(config_.max_clients) +
                  "); try again later";
      std::vector<uint8_t> bytes = vmd::hxfr::encode(e, 1);
      conn->send_all(bytes.data(), bytes.size(), 1000, cancel_fd_.get());
      continue; /* conn closes here */
    }
    uint64_t id = next_client_id_++;
    GST_INFO("client %" G_GUINT64_FORMAT " connected from %s", id, conn->peer().c_str());
    auto session = std::make_unique<ClientSession>(
        id, std::move(conn), config_.encoder, config_.max_payload, scanouts_, cancel_fd_.get(),
        config_.limits, config_.token);
    session->start();
    std::lock_guard<std::mutex> g(lock_);
    sessions_.push_back(std::move(session));
  }
}

}  // namespace vmd::helix
