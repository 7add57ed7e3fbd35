#pragma once
// resolve and authorize_and_rewrite for tenants: object references in the path, query and body
// are resolved within the tenant's own objects (through the ownership index), bodies are judged
// as dockerd decodes them, and requests are rewritten so that what dockerd executes is owned
// by, named for and confined to the tenant:
//   - ownership label berth.tenant on everything created; berth.* labels refused;
//   - tenant-scoped names for containers, networks, volumes and image tags;
//   - the tenant's own default network instead of the shared bridge; no host network;
//   - the tenant's own cgroup parent (for billing and aggregate limits);
//   - no privileged mode, added capabilities, devices, host paths, host namespaces,
//     unconfined security profiles, sysctls outside the namespaced set, other runtimes,
//     except what the tenant's grants allow (named host paths, capabilities, host ports);
//   - the tenant's container defaults (memory, CPUs, pids, log rotation) where a request sets
//     none, and its per-container limits (refused above them, or clamped when the policy says
//     so); the resulting claim goes to the proxy's quota reservation.
// A reference to another tenant's object is answered exactly as dockerd answers a missing one.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/identity.hpp"
#include "policy/list_filter.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
#include "policy/query.hpp"

namespace berth::policy {

/// Facts about the daemon that rewriting depends on.
struct DaemonFacts {
  std::string cgroup_driver = "cgroupfs";  ///< "cgroupfs" or "systemd"
  std::string log_driver = "json-file";    ///< the daemon's default log driver
  /// The host's routes other than default routes (the proxy reads them): a tenant network
  /// must not claim a range the host reaches elsewhere.
  std::vector<Cidr> host_routes = {};
  /// berth fronts a fleet of several hosts: tenant networks are attachable overlay networks
  /// of its Swarm, so that containers on different hosts reach each other.
  bool fleet = false;
};

/// The cgroup parent every container of `tenant` is placed under (absolute for cgroupfs, a
/// slice for systemd), so the kernel accounts the tenant as a whole.
std::string tenant_cgroup_parent(std::string_view tenant, const DaemonFacts& facts);

/// The API minor version a request is served under (dockerd's default without a prefix).
[[nodiscard]] int api_minor(const Classified& request);

/// What kind of object a route's path parameter names.
enum class RefKind { none, container, exec, network, volume, image };
RefKind ref_kind(const Route& route) noexcept;

/// dockerd's answer for a missing object of this kind, with the reference as given.
Decision not_found(RefKind kind, std::string_view ref);

/// How the proxy must treat the response.
enum class ResponseView {
  pass,            ///< forward as is
  container_list,  ///< filter and rename
  container_inspect,
  network_list,
  network_inspect,
  volume_list,
  volume_inspect,
  image_list,
  image_inspect,
  image_history,
  events,       ///< a stream of JSON events, filtered one by one
  info,         ///< /info with the tenant's own counts
  system_df,
  exec_inspect,
  build_stream,  ///< build output with image names shown in the tenant's namespace
  stats_stream,  ///< container stats, one JSON sample per line, with the tenant's names
  prune_report,  ///< {Containers,Volumes,Networks,Images}Deleted with the tenant's names
  image_archive,  ///< a saved image archive whose manifest.json and repositories name the
                  ///< images as the tenant does (SaveArchiveFilter)
};

/// A pull or push berth completes around dockerd's answer. dockerd names an image by the
/// registry's reference it came from or goes to, and that name is global; a tenant's image
/// lives under its own stored name only:
///  - pull: berth asks dockerd for the tag's digest (GET /distribution, with the tenant's
///    credentials), pulls by digest (dockerd then makes no tag), tags the image under the
///    tenant's stored name and removes the digest reference, before the stream's end;
///  - push: berth gives the tenant's image the registry's name for the push, held transient
///    in the index (no tenant sees or resolves it), and removes it when the push ends, however
///    it ends.
struct ImageTransfer {
  enum class Kind { pull, push };
  Kind kind = Kind::pull;
  std::string remote;    ///< the repository as dockerd names it: "127.0.0.1:5055/team/app"
  std::string tag;       ///< the tag the tenant named
  std::string stored;    ///< the tenant's own reference: "acme.berth.local/127.0.0.1__5055/team/app:v1"
  std::string image_id;  ///< push: the image pushed
  [[nodiscard]] std::string remote_ref() const { return remote + ":" + tag; }
};

/// A request after judgement, ready to forward.
struct Rewritten {
  Decision decision = Decision::allow("rewrite");
  std::string target;                 ///< what is forwarded to dockerd
  std::optional<std::string> body;    ///< replaces the request body when set
  ResponseView view = ResponseView::pass;
  bool ensure_default_network = false;  ///< create the tenant's default network first
  std::vector<std::string> ensure_volumes;  ///< stored volume names to create (labelled) first
  std::string created_name;           ///< stored name of the object being created, if any
  /// A container create without a name: the proxy adds query parameter name=<stored name>
  /// from names::generated_name, checked unused in the index.
  bool generate_name = false;
  /// Answered by berth itself, not forwarded: what a private host with nothing of this kind
  /// would say (a tenant has no plugins).
  std::optional<std::string> local_reply;
  /// A build: the body is a tar context whose Dockerfile must be judged (BuildContextFilter).
  bool filter_build_context = false;
  std::string dockerfile;  ///< the build's "dockerfile" parameter
  /// A load: the body is an image archive judged and renamed as it streams (LoadArchiveFilter).
  bool filter_load_archive = false;
  /// Container create and update: what the container will hold against the tenant's quota
  /// (after defaults and limits). The proxy judges it with judge_quota and reserves it.
  std::optional<Resources> claim;
  std::string claim_container;  ///< update: the container whose holding the claim replaces
  /// A network create: the subnets it takes (written explicitly in its IPAM), reserved by the
  /// proxy under the index's lock until dockerd has answered.
  std::vector<Cidr> claimed_subnets;
  std::optional<ImageTransfer> transfer;  ///< a pull or push (see ImageTransfer)
  /// A list's name or reference filters, applied by berth on what the tenant sees
  /// (policy/list_filter.hpp) and not forwarded.
  ListFilter list_filter;
  /// A create with -P: the image's exposed ports are to be published too (the proxy asks
  /// dockerd for them and calls add_published_ports before the quota is reserved).
  bool publish_image_ports = false;
};

/// Stage 3 for tenants: resolves path parameters to dockerd ids within the tenant's objects.
/// Returns the refused decision (dockerd's not-found shape) when a reference does not resolve.
[[nodiscard]] std::expected<Classified, Decision> resolve(const Principal& who,
                                                          const Classified& request,
                                                          const OwnershipIndex& index);

/// Stage 4 for tenants: judges the query and body (already read whole for judge routes) and
/// rewrites them. `index` resolves references inside the body.
/// `rules` is the tenant's section of the policy the request runs under (defaults, limits,
/// grants, allowed images).
[[nodiscard]] Rewritten rewrite_for_tenant(const Principal& who, const Classified& request,
                                           std::string_view body, const OwnershipIndex& index,
                                           const DaemonFacts& facts, const Tenant& rules);

/// -P for a tenant: the image's exposed ports (from dockerd's inspect of it) that the create
/// body does not bind yet are bound to the tenant's first granted port range in `body`.
/// Returns how many host ports that adds to the claim.
[[nodiscard]] std::expected<std::int64_t, Decision> add_published_ports(
    std::string& body, const std::string& image_inspect, const Tenant& rules);

/// True when the tenant may use `image`: its own, or a shared one its `images` patterns allow.
[[nodiscard]] bool image_allowed(const Tenant& rules, const ImageInfo& image);

}  // namespace berth::policy
