#pragma once
// What berth judges of a live migration before anything moves (issue #16): whether a running
// container can move at all, and the create that makes its twin on the target host. Pure:
// the proxy passes dockerd's inspect of the container in.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::policy {

/// The label a tenant (or the operator) sets to keep a container where it is.
inline constexpr std::string_view no_migrate_label = "berth.migrate";

/// Why the container of `inspect` (dockerd's GET /containers/{id}/json) cannot move; empty
/// when it can. A moved container keeps its memory, processes, address and TCP connections,
/// not what belongs to its host: bind mounts and volumes, devices, published host ports,
/// another container's or the host's network namespace, a TTY or an open stdin (an attach
/// session would be cut), more than one network (dockerd 20.10 attaches one at create).
[[nodiscard]] std::vector<std::string> migration_blockers(const nlohmann::json& inspect);

/// The body of POST /containers/create that makes the container's twin on another host:
/// its configuration and host configuration as they are, on the same network at the same
/// address (IPAMConfig) with the same aliases, minus the alias dockerd derives from the old
/// id. Call only when migration_blockers() is empty.
[[nodiscard]] nlohmann::json migration_create_body(const nlohmann::json& inspect);

}  // namespace berth::policy
