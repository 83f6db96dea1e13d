/* gst-vmdisplay: the graphic consoles of the QEMUs on one message bus. */
#include "qemu-bus-displays.h"

#include <algorithm>

namespace vmd {
namespace {

/* When to look again for a name that may queue on org.qemu, by how often it
 * was looked for already: QEMU connects to the bus, exports its objects and
 * only then asks for the name (and a queued owner gets no NameOwnerChanged
 * for org.qemu at all), so a new connection is looked for a few times over
 * about ten seconds. Each look is one ListQueuedOwners call per bus. */
constexpr int kRetryMs[] = {150, 300, 600, 1200, 2500, 5000};
constexpr int kMaxLooks = int(sizeof kRetryMs / sizeof kRetryMs[0]);
/* A queued owner answering with an error (objects not exported yet) is
 * read this often; one that does not answer at all, once. */
constexpr int kMaxReads = 3;
/* New connections followed at once; beyond that only the refresh already
 * scheduled looks for them (a busy session bus must not grow this). */
constexpr size_t kMaxPending = 64;

}  // namespace

std::vector<QemuDisplay> qemu_graphic_displays(const std::string &bus, const QemuVmInfo &vm) {
  std::vector<QemuDisplay> out;
  for (const QemuConsoleInfo &c : vm.consoles) {
    if (c.type != "Graphic")
      continue;
    QemuDisplay d;
    d.bus = bus;
    d.owner = vm.owner;
    d.vm_name = vm.name;
    d.uuid = vm.uuid;
    d.console = c.id;
    d.label = c.label;
    out.push_back(std::move(d));
  }
  return out;
}

std::string qemu_bus_display_name(const std::string &bus) {
  return bus.empty() || bus == "session" ? "session" : bus;
}

QemuBusDisplays::QemuBusDisplays(std::string bus, DisplayLogger log)
    : bus_(std::move(bus)), log_(std::move(log)) {}

QemuBusDisplays::~QemuBusDisplays() {
  if (conn_)
    g_dbus_connection_close(conn_.get(), nullptr, nullptr, nullptr);
}

QemuBusResult QemuBusDisplays::open(const QemuBusWait &wait) {
  std::string where;
  return qemu_bus_open(bus_, wait, &conn_, &where);
}

QemuBusResult QemuBusDisplays::refresh(const QemuBusWait &wait, int64_t deadline_us,
                                       QemuDisplayChanges *changes) {
  std::vector<std::string> owners;
  QemuBusResult r = qemu_bus_queued_owners(conn_.get(), wait, &owners);
  if (!r.ok())
    return r;
  const std::set<std::string> queued(owners.begin(), owners.end());
  forget_unqueued(queued, changes);
  order_ = owners;
  unread_ = false;
  for (const std::string &owner : owners) {
    if (known_.count(owner) || ignored_.count(owner))
      continue;
    if (g_get_monotonic_time() >= deadline_us) {
      pending_[owner]; /* read by the next refresh */
      unread_ = true;
      continue;
    }
    read_owner(owner, wait, changes);
  }
  return {};
}

/* Reads one queued owner; a peer that fails is asked again by later
 * refreshes, unless it timed out (it would stall every refresh) or failed
 * kMaxReads times: then it is ignored until it leaves the bus. */
void QemuBusDisplays::read_owner(const std::string &owner, const QemuBusWait &wait,
                                 QemuDisplayChanges *changes) {
  const int64_t t0 = g_get_monotonic_time();
  QemuVmInfo vm;
  QemuBusResult r = qemu_read_vm(conn_.get(), owner.c_str(), wait, &vm);
  if (r.ok()) {
    pending_.erase(owner);
    std::vector<QemuDisplay> displays = qemu_graphic_displays(bus_, vm);
    changes->added.insert(changes->added.end(), displays.begin(), displays.end());
    log_(LogLevel::Debug, "VM '" + vm.name + "' (" + owner + ") on the " +
                              qemu_bus_display_name(bus_) + " bus: " +
                              std::to_string(displays.size()) + " graphic console(s) of " +
                              std::to_string(vm.consoles.size()));
    known_[owner] = std::move(displays);
    return;
  }
  Candidate &c = pending_[owner];
  const bool stalled = g_get_monotonic_time() - t0 >= int64_t(wait.timeout_ms) * 1000 / 2;
  if (stalled || ++c.reads >= kMaxReads) {
    pending_.erase(owner);
    ignored_.insert(owner);
    log_(LogLevel::Debug, "ignoring " + owner + " on the " + qemu_bus_display_name(bus_) +
                              " bus until it leaves: " + r.message);
  }
}

/* Owners that left org.qemu's queue without leaving the bus are gone too;
 * names still not queued count one more look. */
void QemuBusDisplays::forget_unqueued(const std::set<std::string> &queued,
                                      QemuDisplayChanges *changes) {
  for (auto it = known_.begin(); it != known_.end();) {
    if (queued.count(it->first)) {
      ++it;
      continue;
    }
    changes->removed.insert(changes->removed.end(), it->second.begin(), it->second.end());
    it = known_.erase(it);
  }
  for (auto it = ignored_.begin(); it != ignored_.end();)
    it = queued.count(*it) ? std::next(it) : ignored_.erase(it);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!queued.count(it->first) && ++it->second.refreshes >= kMaxLooks)
      it = pending_.erase(it);
    else
      ++it;
  }
}

void QemuBusDisplays::connected(const std::string &unique) {
  if (known_.count(unique) || ignored_.count(unique) || pending_.size() >= kMaxPending)
    return;
  pending_[unique];
}

void QemuBusDisplays::disconnected(const std::string &unique, QemuDisplayChanges *changes) {
  pending_.erase(unique);
  ignored_.erase(unique);
  auto it = known_.find(unique);
  if (it == known_.end())
    return;
  changes->removed.insert(changes->removed.end(), it->second.begin(), it->second.end());
  known_.erase(it);
}

void QemuBusDisplays::clear(QemuDisplayChanges *changes) {
  for (const auto &kv : known_)
    changes->removed.insert(changes->removed.end(), kv.second.begin(), kv.second.end());
  known_.clear();
  pending_.clear();
  ignored_.clear();
  order_.clear();
  unread_ = false;
}

int QemuBusDisplays::next_refresh_ms() const {
  if (unread_)
    return 0;
  int next = -1;
  for (const auto &kv : pending_) {
    const int looks = std::min(std::max(kv.second.refreshes, kv.second.reads), kMaxLooks - 1);
    next = next < 0 ? kRetryMs[looks] : std::min(next, kRetryMs[looks]);
  }
  return next;
}

std::vector<QemuDisplay> QemuBusDisplays::displays() const {
  std::vector<QemuDisplay> out;
  for (const std::string &owner : order_) {
    auto it = known_.find(owner);
    if (it != known_.end())
      out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::vector<QemuDisplay> qemu_probe_displays(const QemuDisplaysConfig &config,
                                             const DisplayLogger &log) {
  std::vector<QemuDisplay> out;
  GMainContext *context = g_main_context_new();
  g_main_context_push_thread_default(context);
  const QemuBusWait wait{context, nullptr, config.timeout_ms};
  for (const std::string &bus : config.buses) {
    QemuBusDisplays displays(bus, log);
    QemuBusResult r = displays.open(wait);
    QemuDisplayChanges changes;
    if (r.ok())
      r = displays.refresh(wait, g_get_monotonic_time() + 2 * int64_t(config.timeout_ms) * 1000,
                           &changes);
    if (!r.ok()) {
      log(LogLevel::Debug, "skipping the " + qemu_bus_display_name(bus) + " bus: " + r.message);
      continue;
    }
    std::vector<QemuDisplay> found = displays.displays();
    out.insert(out.end(), found.begin(), found.end());
  }
  /* Let the connections' close and idle callbacks run before the context goes. */
  for (int i = 0; i < 100 && g_main_context_iteration(context, FALSE); i++) {
  }
  g_main_context_pop_thread_default(context);
  g_main_context_unref(context);
  return out;
}

}  // namespace vmd
