#pragma once
// What the meter needs from dockerd: each container's name, owner and cgroup parent, learnt
// from the container list at start and kept current from the event stream. Ownership comes
// only from the `berth.tenant` label (the proxy sets it; tenants cannot). A container without
// it, or with a value that is not a valid tenant id, belongs to the operator.
//
// Docker's stats API is a fallback for hosts where the cgroup files cannot be read: it costs
// ~2.5 ms of daemon CPU per sample and reports zeros once a container has died. dockerd samples
// every container it is asked about once a second, on one collector tick for all, and a
// request waits for the next tick: one request after another costs about a second per running
// container, so the meter keeps one stream open per container instead.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "metering/http.hpp"
#include "metering/ledger.hpp"

namespace berth::metering {

/// Unlabelled containers are billed to this tenant id.
inline constexpr std::string_view operator_tenant = "operator";

struct ContainerInfo {
  std::string id;
  std::string name;           ///< without dockerd's leading '/'
  std::string tenant;         ///< from the label, or operator_tenant
  std::string shown_id;       ///< a moved container's, the id its tenant knows (policy::shown_id)
  std::string cgroup_parent;  ///< HostConfig.CgroupParent ("" = dockerd's default); inspect only
  std::string started_at;     ///< State.StartedAt; inspect only
  bool running = false;
  bool inspected = false;     ///< cgroup_parent and started_at are known
  /// The 12 digits its tenant knows it by: a moved container's first id, else its own.
  [[nodiscard]] std::string known_id() const {
    return (shown_id.empty() ? id : shown_id).substr(0, 12);
  }
};

/// The tenant a container's label value names: the value if it is a valid tenant id, else
/// the operator.
[[nodiscard]] std::string tenant_for_label(const std::optional<std::string>& label_value);

/// GET /containers/json?all=1 → containers (cgroup_parent unknown there).
[[nodiscard]] std::vector<ContainerInfo> parse_container_list(std::string_view body);
/// GET /containers/{id}/json → the container, or nullopt if the body is not one.
[[nodiscard]] std::optional<ContainerInfo> parse_container_inspect(std::string_view body);

/// One line of GET /events for a container.
struct ContainerEvent {
  std::string action;  ///< "create", "start", "die", "destroy", "rename", ...
  std::string id;
  std::string name;
  std::optional<std::string> tenant_label;
  std::string shown_id;  ///< as ContainerInfo's
  std::int64_t time_unix_ns = 0;
};
/// nullopt for non-container events and lines that are not JSON objects.
[[nodiscard]] std::optional<ContainerEvent> parse_event(std::string_view line);

/// A reading from one frame of GET /containers/{id}/stats (cgroup v1 or v2 field names): CPU,
/// working set (usage minus inactive file), network and block I/O. nullopt for a frame that is
/// not one, and for dockerd's empty frame (`read` at Go's zero time, every counter 0), which
/// it sends while the container is not running or could not be read: billing it would look
/// like a counter reset.
[[nodiscard]] std::optional<Reading> reading_from_stats(std::string_view body);

/// The few dockerd calls the meter makes.
class DockerClient {
 public:
  explicit DockerClient(HttpEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

  [[nodiscard]] std::expected<std::vector<ContainerInfo>, std::string> list() const;
  [[nodiscard]] std::expected<ContainerInfo, std::string> inspect(std::string_view id) const;
  /// GET /containers/{id}/stats (streamed): one JSON frame per line, about once a second.
  [[nodiscard]] std::expected<HttpLineStream, std::string> stats_stream(std::string_view id) const;
  /// The container event stream from `since_unix` on.
  [[nodiscard]] std::expected<HttpLineStream, std::string> events(std::int64_t since_unix) const;
  [[nodiscard]] const HttpEndpoint& endpoint() const noexcept { return endpoint_; }

 private:
  HttpEndpoint endpoint_;
};

}  // namespace berth::metering
