/* gst-vmdisplay: the graphic consoles of the QEMUs on one message bus, for
 * the device provider (qemudbusdeviceprovider).
 *
 * QemuBusDisplays keeps what one bus holds: the VMs queued on org.qemu
 * (read once each with qemu-bus: qemu_bus_queued_owners, qemu_read_vm), the
 * connections that may queue there soon, and the owners it gave up on.
 * refresh() asks the bus for its queue (one call, whatever else is on the
 * bus) and reads only owners it does not know; it says what appeared and
 * what went. It has no thread and no timers: QemuVmWatch (qemu-vm-watch.*)
 * calls it on NameOwnerChanged, and qemu_probe_displays() once.
 *
 * Plain C++ over GIO, errors as values; every call is bounded by
 * QemuBusWait's timeout, and refresh() starts no read after its deadline.
 */
#pragma once

#include "display-log.h"
#include "qemu-bus.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmd {

/* One graphic console of one VM on one bus: one device of the provider. */
struct QemuDisplay {
  std::string bus;   /* as given to qemu_bus_open: "" (session), "system" or an address */
  std::string owner; /* unique name of the VM's QEMU on that bus */
  std::string vm_name, uuid;
  uint32_t console = 0;
  std::string label; /* Console.Label, e.g. "VGA" */

  /* The same console of the same QEMU (what added and removed match on). */
  bool same_as(const QemuDisplay &o) const {
    return bus == o.bus && owner == o.owner && console == o.console;
  }
};

struct QemuDisplayChanges {
  std::vector<QemuDisplay> added, removed;
  bool empty() const { return added.empty() && removed.empty(); }
};

/* The graphic consoles of vm as displays on bus; other consoles left out. */
std::vector<QemuDisplay> qemu_graphic_displays(const std::string &bus, const QemuVmInfo &vm);

/* "session", "system" or the address itself: how a bus is named to users. */
std::string qemu_bus_display_name(const std::string &bus);

class QemuBusDisplays {
 public:
  QemuBusDisplays(std::string bus, DisplayLogger log);
  ~QemuBusDisplays(); /* closes the connection */
  QemuBusDisplays(const QemuBusDisplays &) = delete;
  QemuBusDisplays &operator=(const QemuBusDisplays &) = delete;

  const std::string &bus() const { return bus_; }
  GDBusConnection *connection() const { return conn_.get(); }

  /* Connects to the bus (a connection of its own). */
  QemuBusResult open(const QemuBusWait &wait);

  /* Lists org.qemu's queue and reads the VMs in it not known yet, until
   * deadline_us (monotonic); owners no longer queued are gone. A failed
   * listing changes nothing. */
  QemuBusResult refresh(const QemuBusWait &wait, int64_t deadline_us, QemuDisplayChanges *changes);

  /* NameOwnerChanged: a unique name connected (it may queue on org.qemu
   * soon: looked for again by the next refreshes), or left the bus (its
   * displays are gone, no call needed). */
  void connected(const std::string &unique);
  void disconnected(const std::string &unique, QemuDisplayChanges *changes);

  /* The bus itself is gone: every display is removed. */
  void clear(QemuDisplayChanges *changes);

  /* Milliseconds until a refresh is worth running again (names still
   * waiting to queue or to answer, owners not read before the deadline),
   * or -1 when nothing waits. */
  int next_refresh_ms() const;

  /* Every display known, in org.qemu's queue order. */
  std::vector<QemuDisplay> displays() const;

 private:
  /* A name looked at again by later refreshes. */
  struct Candidate {
    int refreshes = 0; /* refreshes that did not find it queued */
    int reads = 0;     /* failed reads while queued */
  };
  void read_owner(const std::string &owner, const QemuBusWait &wait, QemuDisplayChanges *changes);
  void forget_unqueued(const std::set<std::string> &queued, QemuDisplayChanges *changes);

  std::string bus_;
  DisplayLogger log_;
  GObjectPtr<GDBusConnection> conn_;
  std::map<std::string, std::vector<QemuDisplay>> known_; /* owner -> its graphic consoles */
  std::vector<std::string> order_;                         /* the last queue seen */
  std::map<std::string, Candidate> pending_;
  std::set<std::string> ignored_; /* queued owners given up on, until they leave */
  bool unread_ = false;           /* the last refresh stopped at its deadline */
};

/* Where and how long to look. */
struct QemuDisplaysConfig {
  std::vector<std::string> buses{"", "system"};
  int timeout_ms = 2000; /* each D-Bus call */
};

/* Every graphic console on the configured buses, once, on the calling
 * thread (with a GMainContext of its own pushed meanwhile). A bus that cannot
 * be opened or read is skipped with a debug line. Bounded: per bus, the
 * connection, the listing, and reads started within two timeouts. */
std::vector<QemuDisplay> qemu_probe_displays(const QemuDisplaysConfig &config,
                                             const DisplayLogger &log);

}  // namespace vmd
