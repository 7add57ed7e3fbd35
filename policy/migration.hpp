#pragma once
// What berth judges of a live migration before anything moves (issue #16): whether a running
// container can move at all, and the create that makes its twin on the target host; and,
// after berth-proxy or a berth-node was killed mid-way, what finishes or undoes it. Pure:
// the proxy passes dockerd's and the nodes' descriptions in.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/vocabulary.hpp"

namespace berth::policy {

/// The label a tenant (or the operator) sets to keep a container where it is.
inline constexpr std::string_view no_migrate_label = "berth.migrate";

/// The label on a migration's twin: the id of the container it replaces. With the
/// checkpoint the source's berth-node keeps, it is the migration's journal on the hosts
/// themselves, which survives the death of berth-proxy or of a node.
inline constexpr std::string_view twin_label = "berth.migrated-from";

/// The label on a moved container: the id the tenant knows it by (its first container's id),
/// which berth shows and resolves in place of the id its current host gave it. Set only by
/// migration_create_body; a tenant's create sets it empty, so that an image committed from a
/// moved container passes no id on.
inline constexpr std::string_view shown_id_label = vocabulary::shown_id_label;

/// shown_id_label's value among `labels` when it is a full container id (64 lowercase hex);
/// "" when it is absent, empty or anything else.
[[nodiscard]] std::string shown_id(const nlohmann::json& labels);

/// The id a tenant knows the container of `inspect` by: shown_id of its labels, else its Id.
[[nodiscard]] std::string tenant_id_of(const nlohmann::json& inspect);

/// Why the container of `inspect` (dockerd's GET /containers/{id}/json) cannot move; empty
/// when it can. A moved container keeps its memory, processes, address and TCP connections,
/// not what belongs to its host: bind mounts and volumes, devices, published host ports,
/// another container's or the host's network namespace, a TTY or an open stdin (an attach
/// session would be cut), more than one network (dockerd 20.10 attaches one at create).
[[nodiscard]] std::vector<std::string> migration_blockers(const nlohmann::json& inspect);

/// The body of POST /containers/create that makes the container's twin on another host:
/// its configuration and host configuration as they are, on the same network at the same
/// address (IPAMConfig) with the same aliases, minus the alias dockerd derives from the old
/// id, with twin_label naming it and shown_id_label the id the tenant knows (tenant_id_of),
/// which the twin keeps. Call only when migration_blockers() is empty.
[[nodiscard]] nlohmann::json migration_create_body(const nlohmann::json& inspect);

/// The event berth adds to `docker events` when a container moved (a private host never moves
/// one, so Docker has no such action): shaped as dockerd's container events, Type "container",
/// Action "moved", the id the tenant knows (tenant_id_of: the same before and after), and as
/// attributes the container's labels, image and stored name (a tenant's stream renames and
/// strips them as any event's) and "previousId", the source's id on its host, which a
/// stream's container filter was resolved to. `time_nano` since the epoch.
[[nodiscard]] nlohmann::json moved_event(const nlohmann::json& source_inspect,
                                         std::int64_t time_nano);

/// Whether the filters of a `docker events` request (parse_filters' form, as berth forwards
/// them) let a container event through, as dockerd's events filter would: type, event,
/// container (its id, previous id or stored name), image, label (each "key" or "key=value"
/// holds) and scope. A filter on anything else (a network, a volume, the daemon) excludes it.
[[nodiscard]] bool event_admitted(const std::map<std::string, std::vector<std::string>>& filters,
                                  const nlohmann::json& event);

/// A container that carries twin_label, as a host lists it.
struct TwinSeen {
  std::string id;
  std::string host;
  std::string source;  ///< twin_label's value
  std::string state;   ///< dockerd's: "created" until it first starts, then "running", ...
  std::string tenant = {};  ///< its ownership label ("" for the operator's)
  std::string name = {};    ///< its stored name, without the '/'
};

/// A checkpoint a berth-node keeps for a migration's source (its GET /v1/kept).
struct KeptSeen {
  std::string host;  ///< whose node keeps it
  std::string container;
  std::string checkpoint;  ///< "" when the dump was not made (or not finished)
  std::string twin = {};   ///< the twin the checkpoint was made for, as the node recorded it
};

/// A migration's source as the index knows it.
struct SourceSeen {
  std::string host;
  bool running = false;
  std::string tenant = {};
  std::string name = {};
};

/// One berth-node call of a recovery.
struct RecoveryStep {
  enum class Kind {
    discard,   ///< the twin removed unless it runs (POST .../discard on its host)
    commit,    ///< the source removed with its kept checkpoint
    rollback,  ///< the source started again from its kept checkpoint
    release,   ///< the kept checkpoint dropped; the source (running, or gone) let be
  };
  Kind kind = Kind::discard;
  std::string host;
  std::string container;
  std::string checkpoint = {};  ///< rollback's
  bool operator==(const RecoveryStep&) const = default;
};

/// What leaves exactly one copy of each container whose migration no berth-proxy drives any
/// more (`in_flight` says which containers this proxy's own migrations hold, as source or as
/// twin): a twin that has run is the container, and its source goes (commit); else the twins
/// that never started go and the source runs again from its kept checkpoint (rollback), or
/// keeps running with the checkpoint dropped when it never stopped into it (release).
/// A source's twin is the container its node recorded with the checkpoint, or one with the
/// source's tenant and name: a label alone, which an image berth did not build can carry,
/// makes no twin. Once the source is gone nothing labelled with it is touched (it may be a
/// container of the tenant's own, made from a committed image). One group of steps per
/// source, in order: the proxy stops a group at its first failure and finds the rest again
/// next time, so a discard that fails (its twin started meanwhile) never leads to a rollback.
struct Recovery {
  std::string source;  ///< the migration's source container
  std::vector<RecoveryStep> steps;
  bool operator==(const Recovery&) const = default;
};
[[nodiscard]] std::vector<Recovery> recovery_steps(
    const std::vector<TwinSeen>& twins, const std::vector<KeptSeen>& kept,
    const std::function<std::optional<SourceSeen>(std::string_view)>& source,
    const std::function<bool(std::string_view)>& in_flight);

}  // namespace berth::policy
