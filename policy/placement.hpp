#pragma once
// Placement: which host of the fleet runs a new tenant container, and why every other host was
// refused. Hard filters first, in this order, and the first one a host fails is its reason:
// unhealthy, cordoned, outside the tenant's pins (operator policy), not the host that holds a
// dependency, without the image when the request requires it (a volume that lives on one host, --volumes-from, --network container:), a hard
// constraint or affinity the container asks for, a published host port already taken there,
// then fit. Fit is judged twice, and both must hold:
//   - reservations: the sum over the host's containers of max(limit or default, p95 measured
//     usage), plus this container's demand (its limit or the operator default), stays under
//     capacity x the operator's overcommit;
//   - measurement (when the host's berth-meter snapshot is fresh): measured use, plus what was
//     placed there since the snapshot, plus the demand, stays under capacity x headroom.
// Overcommit is what lets a fleet admit more containers than their limits add up to; the
// measured check is what keeps that from placing beyond a host's real capacity.
// The hosts left are scored (weights in PlacementOptions): free measured memory and CPU,
// spread of the tenant's containers, image present, soft constraints and affinities; ties go
// to the smaller host name, so a decision is reproducible.
//
// Nothing here waits on a host: the meter's snapshot is read by the caller in the background.
// Reasons never name another tenant's objects (the per-host matching sees only the requesting
// tenant's presence), and the tenant's refusal names no host: hosts are invisible to tenants.
// Constraints and affinities use classic Swarm's syntax, as Swarm and Triton's sdc-docker
// accept it (`-e constraint:region==eu`, `-e affinity:container!=~db`, or the labels
// com.docker.swarm.constraints / com.docker.swarm.affinities holding a JSON array).

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace re2 {
class RE2;
}

namespace berth::policy {

/// CPU in billionths of a CPU (dockerd's NanoCpus) and memory in bytes.
struct Amount {
  std::int64_t nano_cpus = 0;
  std::int64_t memory = 0;

  bool operator==(const Amount&) const = default;
};

/// A published host port: "8080/tcp".
struct HostPort {
  std::uint16_t port = 0;
  bool udp = false;

  auto operator<=>(const HostPort&) const = default;
};

/// An image on a host, for `affinity:image==...`. Shared (operator) images have an empty
/// owner; a tenant's own image lists its references as that tenant names them. A tenant's
/// affinity matches only shared images and its own, so it cannot probe for another tenant's.
struct HostImage {
  std::string id;
  std::vector<std::string> references;  ///< "redis:7", "redis"
  std::string owner;                    ///< tenant id; "" = shared
};

/// One host of the fleet as the caller's snapshot sees it.
struct HostState {
  std::string name;
  bool healthy = true;
  bool cordoned = false;
  /// Operator-set host traits (engine labels): key (lowercase) -> value, sorted by key.
  std::vector<std::pair<std::string, std::string>> traits;
  Amount capacity;
  double cpu_overcommit = 1.0;  ///< operator-set; 1.0 = never reserve beyond capacity
  double memory_overcommit = 1.0;
  /// Sum over the host's containers of accounted() (max of limit-or-default and p95 usage).
  Amount reserved;
  /// The berth-meter snapshot's use of the whole host; nullopt when it is absent or stale
  /// (the caller judges freshness: policy/ has no clock). Then only reservations decide.
  std::optional<Amount> measured;
  /// Demands of containers placed since that snapshot: not yet in `measured`.
  Amount unmeasured;
  std::vector<HostPort> ports_in_use;  ///< sorted
  std::vector<std::string> image_ids;  ///< every image present, sorted, for the image score
  std::vector<HostImage> images;       ///< for image affinities
};

/// The fixed host ports of a port map as dockerd writes it, a create's
/// HostConfig.PortBindings or an inspect's NetworkSettings.Ports
/// ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}), sorted, each once. A binding without a
/// host port, with port 0 or with a range (dockerd picks a free one) ties the container to no
/// host. The address is left out: on one host 0.0.0.0:8080 and 127.0.0.1:8080 exclude each
/// other too.
[[nodiscard]] std::vector<HostPort> fixed_host_ports(const nlohmann::json& port_map);

/// Sorts what place() looks up by binary search (traits, ports, image ids) and lowercases
/// trait keys. Call once per snapshot, not per decision.
void normalize(HostState& host);

/// What the requesting tenant holds on one host, by host name: how many containers, and the
/// names (and ids) of its containers as the tenant calls them, for container affinities.
struct TenantPresence {
  std::string host;
  std::uint32_t containers = 0;
  std::vector<std::string> container_names;
};

/// A dependency that ties the container to one host, resolved by the caller.
enum class DependencyKind : std::uint8_t { volume, volumes_from, network_container, network, image };

struct Dependency {
  DependencyKind kind = DependencyKind::volume;
  std::string object;  ///< as the tenant called it: "db-data", "web"
  std::string host;    ///< the host that holds it
};

/// A classic Swarm filter expression, parsed: `key==value`, `key!=value`, soft with `~` after
/// the operator. Values are exact, globs ('*' only, anchored) or /RE2 regex/ (unanchored, as
/// Go's regexp.MatchString that Swarm used).
struct Expression {
  enum class Kind : std::uint8_t { constraint, affinity };
  enum class Match : std::uint8_t { exact, glob, regex };

  Kind kind = Kind::constraint;
  std::string key;    ///< lowercased; "node", a trait key, "container" or "image"
  bool equal = true;  ///< == (true) or != (false)
  bool soft = false;
  Match match = Match::exact;
  std::string value;  ///< as written, without the '~' (and with the slashes of a regex)
  std::shared_ptr<const re2::RE2> regex;

  /// "region==eu", "container!=~db": as Swarm writes it back.
  [[nodiscard]] std::string str() const;
  /// Whether `what` matches the value (before == / != is applied).
  [[nodiscard]] bool matches(std::string_view what) const;
};

/// Who wrote the expressions. Only an operator may name hosts (`node==`): a tenant does not
/// see hosts, and a node regex would let it probe their names one refusal at a time.
enum class Author : std::uint8_t { tenant, operator_ };

/// One expression without its `constraint:`/`affinity:` prefix. The error says what is wrong
/// and quotes the expression.
[[nodiscard]] std::expected<Expression, std::string> parse_expression(std::string_view text,
                                                                      Expression::Kind kind,
                                                                      Author author);

struct PlacementRules {
  std::vector<Expression> constraints;
  std::vector<Expression> affinities;
};

/// The constraints and affinities of a container create body (Go-decoded): Env entries
/// `constraint:...` and `affinity:...`, and the labels com.docker.swarm.constraints and
/// com.docker.swarm.affinities (JSON arrays of expressions), as classic Swarm reads them.
/// A malformed expression or label is an error, never ignored.
[[nodiscard]] std::expected<PlacementRules, std::string> parse_placement_rules(
    const nlohmann::json& create_body, Author author);

struct PlacementOptions {
  Amount default_demand{1'000'000'000, 512LL << 20};  ///< for a container without limits
  /// Measured use plus demand stays under capacity x headroom.
  double cpu_headroom = 0.9;
  double memory_headroom = 0.9;
  double weight_free_memory = 1.0;
  double weight_free_cpu = 0.5;
  double weight_spread = 1.0;
  double weight_image = 0.3;
  /// Large on purpose: as in Swarm, a soft rule decides whenever some host can meet it.
  double weight_soft = 10.0;
};

struct PlacementRequest {
  std::string tenant;
  Amount limits;  ///< 0 = none, the operator default applies
  std::string image_id;
  /// The image must be on the host: dockerd's create never pulls, so a host without it would
  /// answer "No such image". (berth's fleet copies images to the host it chose, and leaves
  /// this off: the image is a score.)
  bool image_required = false;
  std::vector<HostPort> ports;
  std::vector<Dependency> dependencies;
  std::vector<Expression> pins;  ///< the operator's placement policy for the tenant (hard)
  PlacementRules rules;          ///< what the container asks for
  std::vector<TenantPresence> presence;
};

/// Why one host was refused; describe() turns it into words.
enum class Refusal : std::uint8_t {
  unhealthy,
  cordoned,
  pin,              ///< item: index in pins
  dependency,       ///< item: index in dependencies
  image,            ///< image_required, and the host does not hold image_id
  constraint,       ///< item: index in rules.constraints
  affinity,         ///< item: index in rules.affinities
  port,             ///< item: index in ports
  reserved_memory,  ///< needed, left: bytes under capacity x overcommit
  reserved_cpu,
  measured_memory,  ///< needed, left: bytes under capacity x headroom, as measured
  measured_cpu,
};

struct Rejection {
  std::uint32_t host = 0;  ///< index in the hosts given to place()
  Refusal why = Refusal::unhealthy;
  std::uint32_t item = 0;
  std::int64_t needed = 0;
  std::int64_t left = 0;
};

struct Placement {
  std::optional<std::uint32_t> host;  ///< index in the hosts; nullopt: nothing fits
  double score = 0;
  bool measured = false;              ///< whether the chosen host's fit used a meter snapshot
  std::vector<Rejection> rejections;  ///< one per refused host, in host order
};

/// What one container counts for in a host's reservations: per dimension, the larger of its
/// limit (or the operator default when it has none) and its recent p95 measured use.
[[nodiscard]] Amount accounted(Amount limits, std::optional<Amount> p95,
                               const PlacementOptions& options);

/// What a new container is placed as: its limits, the default where it has none.
[[nodiscard]] Amount demand_of(Amount limits, const PlacementOptions& options);

/// Chooses a host. Preconditions: host names are unique and every host went through
/// normalize(); presence and dependencies name hosts by name. Cost is linear in the hosts,
/// with no allocation per host (one vector of rejections per decision).
[[nodiscard]] Placement place(std::span<const HostState> hosts, const PlacementRequest& request,
                              const PlacementOptions& options);

/// One refused host's reason, without its name: "port 8080/tcp in use", "memory: needs
/// 512MiB, 300MiB left under the 1.5x overcommit".
[[nodiscard]] std::string describe(const Rejection& rejection, std::span<const HostState> hosts,
                                   const PlacementRequest& request,
                                   const PlacementOptions& options);

/// The operator's audit detail: the choice (or "no host fits") and "host: reason" per refused
/// host.
[[nodiscard]] std::vector<std::string> audit_detail(const Placement& placement,
                                                    std::span<const HostState> hosts,
                                                    const PlacementRequest& request,
                                                    const PlacementOptions& options);

/// The tenant's refusal when nothing fits: reasons aggregated over hosts, most common first,
/// naming and counting no host ("berth: no host can run this container: not 512MiB of memory
/// free; host unavailable").
[[nodiscard]] std::string tenant_refusal(const Placement& placement,
                                         const PlacementRequest& request);

}  // namespace berth::policy
