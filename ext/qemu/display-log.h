/* gst-vmdisplay: how the D-Bus side of qemudbussrc reports what it does.
 * The element turns these into GStreamer debug lines. */
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace vmd {

enum class LogLevel { Debug, Info, Warning };
using DisplayLogger = std::function<void(LogLevel, const std::string &)>;
/* Lines gathered where they cannot be logged yet (GDBus's worker thread). */
using LogLines = std::vector<std::pair<LogLevel, std::string>>;

}  // namespace vmd
