#pragma once
// What berth-node reads in CRIU's own logs (dump.log, restore.log): CRIU stamps each line with
// the seconds since it started, "(00.406334) ...", and says "Error" where it failed.

#include <istream>
#include <string>

#include <nlohmann/json.hpp>

namespace berth::node {

/// Where a restore's time went, from CRIU's log of it: {"criu_restore_ms", "network_hook_ms"},
/// or an empty object when the log holds no finished restore. The network hook is dockerd's
/// prestart hook (libnetwork's setkey: the container's interface put in place), which runc
/// runs when CRIU calls back with "setup-namespaces": the time from that call to CRIU's next
/// line. A log holding several runs of CRIU (runc probes it first) is read for its last one.
[[nodiscard]] nlohmann::json restore_figures(std::istream& log);

/// The lines of a CRIU log that say what went wrong, joined with " | " (the last ones when
/// they run long), for a failure's message; "" when none does.
[[nodiscard]] std::string criu_errors(std::istream& log);

}  // namespace berth::node
