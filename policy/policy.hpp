#pragma once
// The operator's policy file: where berth listens, which dockerd it fronts, which TLS files it
// uses, and which certificate identities are tenants or operators. Parsing refuses unknown
// keys, duplicate keys and malformed values with 1-based line/column diagnostics, so a typo
// can never silently widen access. Per tenant it holds quotas, container defaults and limits,
// the shared images it may use and its grants; `tenant_defaults` in the file gives every
// tenant's starting values, which a tenant's own section overrides key by key.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/address.hpp"
#include "policy/diagnostic.hpp"
#include "policy/placement.hpp"

namespace berth::policy {

enum class Role { tenant, operator_ };

/// One identity rule. A rule matches a certificate when every field it sets matches exactly.
/// At least one of common_name, organization or serial is set.
struct IdentityRule {
  std::optional<std::string> common_name;
  std::optional<std::string> organization;
  std::optional<std::string> serial;  ///< lowercase hex without leading zeros or separators
  Role role = Role::tenant;
  std::string tenant;  ///< set when role == tenant
  int line = 0;        ///< where the rule is written, for audit
};

/// What each tenant may hold in dockerd at once, counted over every container it holds
/// (created, running or stopped: a stopped container keeps its reservation until removed).
/// nullopt: no limit.
struct Quota {
  std::optional<std::int64_t> containers;
  std::optional<std::int64_t> memory;     ///< bytes, sum of the containers' memory limits
  std::optional<std::int64_t> nano_cpus;  ///< sum of the containers' CPU limits
  std::optional<std::int64_t> pids_per_container;  ///< the highest PidsLimit one container may have
  std::optional<std::int64_t> published_ports;     ///< host ports over all containers
};

/// Applied to a tenant container that does not set them.
struct ContainerDefaults {
  std::optional<std::int64_t> memory;  ///< bytes
  std::optional<std::int64_t> nano_cpus;
  std::optional<std::int64_t> pids_limit;
  std::optional<std::int64_t> log_max_size;  ///< bytes, for json-file and local logs
  std::optional<std::int64_t> log_max_file;
};

/// The most one container may ask for. Above it a request is refused, or lowered to the
/// maximum when clamp is set.
struct ContainerLimits {
  std::optional<std::int64_t> memory;
  std::optional<std::int64_t> nano_cpus;
  std::optional<std::int64_t> log_max_size;
  std::optional<std::int64_t> log_max_file;
  std::optional<std::int64_t> restart_retries;  ///< on-failure's MaximumRetryCount
  std::optional<std::vector<std::string>> restart_policies;  ///< allowed names; nullopt: all
  std::optional<bool> clamp;
};

/// A host path a tenant may bind-mount, exactly as written (no sub-paths: a tenant that can
/// write below it could plant a symlink there).
struct BindGrant {
  std::string path;
  bool read_write = false;
};

struct PortRange {
  int first = 0;
  int last = 0;
};

/// Explicit exceptions for one tenant, beyond what every tenant may do.
struct Grants {
  std::vector<BindGrant> bind_mounts;
  std::vector<std::string> capabilities;  ///< "CAP_NET_ADMIN" form
  std::vector<PortRange> host_ports;      ///< host ports it may publish on; none: no publishing
};

/// What dockerd may contact on the tenant's behalf (policy/egress.hpp). nullopt or empty:
/// nothing.
struct Egress {
  std::optional<std::vector<std::string>> registries;  ///< "host" or "host:port"
  std::optional<std::vector<std::string>> urls;  ///< URL prefixes a Dockerfile's ADD may fetch
};

/// Where the tenant's networks live (policy/network_pools.hpp). Every subnet, IP range,
/// gateway and auxiliary address of a tenant network must lie inside one of `pools`; a
/// network created without a subnet gets a free one of the given size from them. No pools:
/// tenant networks take dockerd's own default pools and may not name addresses.
struct NetworkRules {
  std::optional<std::vector<Cidr>> pools;
  std::optional<std::int64_t> ipv4_size;  ///< prefix length of a subnet berth hands out (24)
  std::optional<std::int64_t> ipv6_size;  ///< (64)
};

struct Tenant {
  std::string id;
  std::string description;
  Quota quota;
  ContainerDefaults defaults;
  ContainerLimits limits;
  /// Shared (operator) images the tenant may use, as globs over "repo:tag" ('*' matches any
  /// run of characters; a pattern without a tag matches every tag). nullopt: all of them.
  /// The tenant's own images are always its to use.
  std::optional<std::vector<std::string>> images;
  Egress egress;
  NetworkRules networks;
  Grants grants;
  /// On a fleet, hard constraints every container of the tenant meets, in classic Swarm's
  /// syntax as an operator writes them: `node==h1`, `zone==eu`, `node!=/^old-/` (hosts are
  /// named by `node`, their labels by key). nullopt: any host.
  std::optional<std::vector<Expression>> placement;
  int line = 0;

  [[nodiscard]] bool clamp() const noexcept { return limits.clamp.value_or(false); }
};

/// True when `pattern` (a Tenant::images entry) allows the shared image reference `ref`
/// ("busybox:latest", "registry.example.com/team/app:v1").
[[nodiscard]] bool image_pattern_matches(std::string_view pattern, std::string_view ref);

/// The whole of `text` against `pattern`, where '*' matches any run of characters and every
/// other character itself (no '?', no classes, no escapes).
[[nodiscard]] bool star_match(std::string_view pattern, std::string_view text);

/// "CAP_NET_ADMIN" from "net_admin", "NET_ADMIN" or "cap_net_admin", as dockerd normalizes
/// capability names; empty when it is no capability dockerd knows ("ALL" included).
[[nodiscard]] std::string normalize_capability(std::string_view name);

struct TlsFiles {
  std::string cert;       ///< server certificate chain (PEM)
  std::string key;        ///< server private key (PEM)
  std::string client_ca;  ///< CA bundle that client certificates must chain to
  std::string crl;        ///< optional CRL file (PEM); empty: none
};

/// Client-side TLS toward a dockerd listening on tls://host:port (dockerd --tlsverify).
struct UpstreamTls {
  std::string ca;    ///< CA that signed dockerd's server certificate
  std::string cert;  ///< berth's client certificate for dockerd
  std::string key;
  std::string server_name;  ///< name to verify in dockerd's certificate; default: the host
};

/// One Docker host of the fleet (issue #15). Without a `hosts` list the fleet is one host,
/// "local", at `upstream`.
struct FleetHost {
  std::string name;  ///< the operator's name for it: never shown to a tenant
  std::string url;   ///< unix:///path, tcp://host:port or tls://host:port
  UpstreamTls tls;   ///< for a tls:// url
  /// Traits placement constraints match (`constraint:region==eu`): key (lowercase) -> value.
  std::vector<std::pair<std::string, std::string>> labels;
  std::optional<std::int64_t> nano_cpus;  ///< capacity override; default: dockerd's NCPU
  std::optional<std::int64_t> memory;     ///< capacity override; default: dockerd's MemTotal
  bool cordoned = false;  ///< no new container is placed on it; its containers stay
  /// Its berth-meter's metrics, "http://host:port/metrics": what its containers really use,
  /// for placement; empty: placement judges by limits alone.
  std::string meter;
  /// Its berth-node (issue #16), "tls://host:port", and berth's client certificate for it;
  /// empty: no container moves to or from this host.
  std::string node;
  UpstreamTls node_tls;
};

/// How far placement may reserve beyond a host's capacity (see policy/placement.hpp).
struct PlacementSettings {
  double cpu_overcommit = 1.0;
  double memory_overcommit = 1.0;
};

struct Policy {
  std::string listen = "0.0.0.0:2376";
  std::string upstream = "unix:///var/run/docker.sock";
  UpstreamTls upstream_tls;
  std::string metrics_listen;  ///< empty: no metrics listener
  TlsFiles tls;
  std::vector<IdentityRule> identities;  ///< first matching rule wins
  std::vector<Tenant> tenants;
  /// The fleet, in the operator's order; never empty after parse_policy (one host "local" at
  /// `upstream` when the policy lists none).
  std::vector<FleetHost> hosts;
  PlacementSettings placement;

  [[nodiscard]] const Tenant* find_tenant(std::string_view id) const noexcept;
};

/// Parses and validates a policy document. `source` names the file in diagnostics.
/// File paths inside are returned as written; the caller resolves relative ones.
[[nodiscard]] std::expected<Policy, Diagnostics> parse_policy(std::string_view yaml_text,
                                                              std::string_view source);

}  // namespace berth::policy
