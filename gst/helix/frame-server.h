/* gst-vmdisplay: helixframesrv's HXFR server, without the GObject glue.
 *
 * Listens on one address, accepts up to max_clients connections and serves each on its own
 * thread (vmd::helix::ClientSession, frame-server-client.h). Every wait has a timeout and
 * watches one cancel eventfd, so stop() returns promptly whatever the peers do.
 */
#pragma once

#include "encoder-factory.h"
#include "frame-server-client.h"
#include "frame-server-scanouts.h"
#include "hxfr-transport.h"

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace vmd::helix {

struct ServerConfig {
  std::string address = "vsock://-1:5000";
  encode::EncoderChoice encoder;
  uint32_t max_clients = 16;
  uint32_t max_payload = 64u * 1024 * 1024;
  SessionLimits limits;
  std::string token; /* empty: no authentication */
};

class FrameServer {
 public:
  FrameServer(ServerConfig config, std::shared_ptr<ScanoutRegistry> scanouts);
  ~FrameServer();
  FrameServer(const FrameServer &) = delete;
  FrameServer &operator=(const FrameServer &) = delete;

  /* Listens and starts accepting. False with an actionable *error (bad address, in use). */
  bool start(std::string *error);
  /* Closes every connection and joins every thread, promptly even during an encode (see
   * FrameEncoder). Idempotent. */
  void stop();

  uint16_t bound_tcp_port() const { return bound_tcp_port_; }
  /* Connected clients right now. */
  uint32_t client_count();

 private:
  void accept_loop();
  void reap_finished(bool all);

  ServerConfig config_;
  std::shared_ptr<ScanoutRegistry> scanouts_;
  std::unique_ptr<hxfr::Listener> listener_;
  vmd::UniqueFd cancel_fd_; /* eventfd: readable = stop */
  std::atomic<bool> stopping_{false};
  std::unique_ptr<std::thread> accept_thread_;
  uint16_t bound_tcp_port_ = 0;
  uint64_t next_client_id_ = 1;

  std::mutex lock_; /* sessions_ */
  std::list<std::unique_ptr<ClientSession>> sessions_;
};

}  // namespace vmd::helix
