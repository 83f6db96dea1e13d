/* gst-vmdisplay: finding QEMU's D-Bus display and shaking hands with it.
 *
 * Opens a message bus (session, system or an address) or a peer-to-peer
 * socket obtained through QMP, lists the VMs queued on org.qemu with their
 * names, UUIDs and consoles, checks a console, and runs the one listener
 * handshake (socketpair, RegisterListener, our end as a GDBus auth client).
 *
 * Plain C++ over GIO: no GObject types of ours, errors are returned as
 * values (QemuBusError plus words a user can act on). Every call is bounded
 * by QemuBusWait's timeout and abandoned when its cancellable fires. The
 * asynchronous handshakes iterate QemuBusWait's context, which must be the
 * calling thread's default one.
 */
#pragma once

#include "raii.h"

#include <gio/gio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vmd {

enum class QemuBusError {
  None,
  NoBus,            /* no session/system bus address to connect to */
  ConnectFailed,    /* connecting or authenticating to the bus or socket failed */
  Timeout,          /* a handshake did not complete within the timeout */
  QmpFailed,        /* QMP refused to hand out a D-Bus socket */
  NoQemu,           /* nobody owns org.qemu on the bus */
  NoSuchVm,         /* no queued owner of org.qemu has the wanted VM name */
  NotDisplay,       /* the peer does not serve org.qemu.Display1.VM */
  NoSuchConsole,    /* the VM has no such console */
  NotGraphic,       /* the console is not a graphic one */
  RegisterFailed,   /* RegisterListener was refused */
  SocketFailed,     /* a local socket could not be made or used */
};

struct QemuBusResult {
  QemuBusError code = QemuBusError::None;
  std::string message; /* empty on success */

  bool ok() const { return code == QemuBusError::None; }
  static QemuBusResult fail(QemuBusError c, std::string m) { return {c, std::move(m)}; }
};

/* How long each call may take and what aborts it. */
struct QemuBusWait {
  GMainContext *context = nullptr; /* the calling thread's default context */
  GCancellable *cancellable = nullptr;
  int timeout_ms = 5000;
};

struct QemuConsoleInfo {
  uint32_t id = 0;
  std::string label; /* Console.Label, e.g. "VGA" */
  std::string type;  /* Console.Type: "Graphic" or "Text" */
};

/* One VM serving its display on a bus (or the peer of a p2p socket). */
struct QemuVmInfo {
  std::string owner; /* unique bus name of its QEMU; empty in p2p */
  std::string name;  /* VM.Name (QEMU's -name) */
  std::string uuid;  /* VM.UUID */
  std::vector<QemuConsoleInfo> consoles;
};

/* Connects to a message bus: address is a D-Bus address, "system", or ""
 * (or "session") for the session bus. *where describes it for messages. */
QemuBusResult qemu_bus_open(const std::string &address, const QemuBusWait &wait,
                            GObjectPtr<GDBusConnection> *bus, std::string *where);

/* Asks the QEMU behind the QMP socket at qmp_path for a D-Bus display
 * socket and connects to it peer to peer. */
QemuBusResult qemu_p2p_open(const std::string &qmp_path, const QemuBusWait &wait,
                            GObjectPtr<GDBusConnection> *peer, std::string *where);

/* The unique name of the VM to use on a bus: the primary owner of org.qemu
 * when vm_name is empty, else the queued owner whose VM.Name matches. */
QemuBusResult qemu_bus_pick_vm(GDBusConnection *bus, const std::string &vm_name,
                               const std::string &where, const QemuBusWait &wait,
                               std::string *owner);

/* The unique names queued on org.qemu, primary owner first; none (and ok)
 * when nobody owns it. One call to the bus, whatever else is on it. */
QemuBusResult qemu_bus_queued_owners(GDBusConnection *bus, const QemuBusWait &wait,
                                     std::vector<std::string> *owners);

/* Every VM queued on org.qemu, in queue order (the primary owner first):
 * qemu_bus_queued_owners, then qemu_read_vm of each. A queued owner that
 * does not answer as a display is left out. */
QemuBusResult qemu_bus_list_vms(GDBusConnection *bus, const QemuBusWait &wait,
                                std::vector<QemuVmInfo> *vms);

/* Name, UUID and consoles of the VM at dest (nullptr in p2p). */
QemuBusResult qemu_read_vm(GDBusConnection *conn, const char *dest, const QemuBusWait &wait,
                           QemuVmInfo *vm);

/* The VM.Name of the peer at dest. With retry_unexported, an object not
 * exported yet (QEMU's p2p export runs after the handshake) is asked again
 * until the timeout. */
QemuBusResult qemu_read_vm_name(GDBusConnection *conn, const char *dest, bool retry_unexported,
                                const std::string &where, const QemuBusWait &wait,
                                std::string *name);

/* The console exists and is graphic; vm_name only words the message. */
QemuBusResult qemu_check_console(GDBusConnection *conn, const char *dest, uint32_t console,
                                 const std::string &vm_name, const QemuBusWait &wait);

/* RegisterListener on the console over a new socketpair, then the GDBus
 * client handshake on our end (message processing delayed: the caller
 * exports its objects and then starts it). */
QemuBusResult qemu_register_listener(GDBusConnection *conn, const char *dest, uint32_t console,
                                     const std::string &vm_name, const QemuBusWait &wait,
                                     GObjectPtr<GDBusConnection> *listener);

}  // namespace vmd
