/* gst-vmdisplay: the few QMP commands needed for a peer-to-peer D-Bus display.
 *
 * With `-display dbus,p2p=yes` QEMU is not on any bus: a client connects to
 * QMP, passes one end of a socketpair with `getfd` (SCM_RIGHTS) and asks
 * `add_client protocol=@dbus-display` to serve the D-Bus display on it.
 */
#pragma once

#include "raii.h"

#include <string>

namespace vmd {

/* Classification of one QMP line (QEMU sends one JSON object per line). */
enum class QmpLine { Greeting, Return, Error, Event, Invalid };
QmpLine qmp_classify(const std::string &line);
/* The "desc" of an {"error": ...} line, or the line itself. */
std::string qmp_error_desc(const std::string &line);

/* Connects to the QMP socket at `path` and makes QEMU serve its D-Bus display
 * on a new socket, our end of which is returned in *dbus_end. Bounded by
 * timeout_ms in total, and abandoned as soon as cancel_fd (-1: none) becomes
 * readable (a GCancellable's pollfd). Blocking: call it from a thread that may
 * block. */
bool qmp_add_dbus_client(const std::string &path, int timeout_ms, int cancel_fd,
                         UniqueFd *dbus_end, std::string *error);

}  // namespace vmd
