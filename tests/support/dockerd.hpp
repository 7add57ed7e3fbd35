#pragma once
// Talking to dockerd directly on its unix socket, bypassing berth: to check what really exists
// ("nothing changed in dockerd" after a refusal) and to clean up after each test by label
// (moby's Clean, scoped to the test's own label so parallel tests never touch each other).

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace berth::test {

inline constexpr std::string_view dockerd_socket = "/var/run/docker.sock";

/// The dockerds under test: dockerd_socket, or, when BERTH_TEST_FLEET names a test fleet
/// ("ID:N", started by tests/support/test_fleet.sh), the sockets of its N hosts, the Swarm
/// manager first. The wave-1 suites run unchanged against such a fleet (issue #15): every
/// helper below then answers for the whole fleet.
[[nodiscard]] const std::vector<std::string>& dockerd_sockets();
/// The `hosts:` entries of that fleet for a berth policy (each line indented by two spaces),
/// with a capacity that never refuses what one dockerd would run, or "" when the tests run
/// against one dockerd.
[[nodiscard]] std::string fleet_policy_hosts();

struct HttpReply {
  int status = 0;       ///< 0 when no HTTP answer came at all
  std::string headers;  ///< the raw header block, status line included
  std::string body;
};

/// Splits a raw HTTP response (as `curl -i` prints it) into status, headers and body. Interim
/// 1xx responses are skipped.
[[nodiscard]] HttpReply parse_http_response(std::string_view raw);

/// One HTTP/1.0 request to dockerd on its unix socket (no keep-alive, no chunking). On a fleet
/// it is asked of each host in turn until one answers other than 404 (the host that holds
/// the object), so the last 404 is the answer for an object that exists nowhere; a GET whose
/// answer is a JSON array (a list) gets every host's items, each id once.
[[nodiscard]] HttpReply dockerd_request(
    std::string_view method, std::string_view target, std::string_view json_body = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// True when dockerd answers GET /_ping with 200 within a few seconds.
[[nodiscard]] bool dockerd_answers();

/// `filters={"label":["<label>"]}`, URL-encoded, for list endpoints.
[[nodiscard]] std::string label_filter_query(std::string_view label);

/// Ids (names for volumes) of everything in dockerd (every host of a fleet) carrying `label`
/// ("key=value"), each list sorted and without repeats, so two snapshots compare equal when
/// nothing changed.
struct LabelledObjects {
  std::vector<std::string> containers;
  std::vector<std::string> images;
  std::vector<std::string> networks;
  std::vector<std::string> volumes;

  [[nodiscard]] bool empty() const noexcept {
    return containers.empty() && images.empty() && networks.empty() && volumes.empty();
  }

  [[nodiscard]] std::string describe() const;
  friend bool operator==(const LabelledObjects&, const LabelledObjects&) = default;
};

[[nodiscard]] LabelledObjects list_labelled(std::string_view label);

/// Removes every container (forced, with anonymous volumes), image, network and volume carrying
/// `label`. Best effort: never throws; returns what could not be removed.
LabelledObjects remove_labelled(std::string_view label) noexcept;
/// Removes every tag in `tenant`'s image namespace ("<tenant>.berth.local/..."): images a
/// tenant pulled carry no ownership label. Returns how many tags were left.
std::size_t remove_tenant_image_tags(std::string_view tenant) noexcept;

/// Force-removes a container (and its anonymous volumes) by name or id; true if it existed.
bool remove_container(std::string_view name_or_id) noexcept;

/// The container's State.Status ("running", "exited", ...) or "" if dockerd does not know it.
[[nodiscard]] std::string container_state(std::string_view name_or_id);

/// A top-level string field of dockerd's JSON answer to GET `path` ("" if absent), e.g.
/// dockerd_field("/version", "ApiVersion"), dockerd_field("/info", "ID").
[[nodiscard]] std::string dockerd_field(std::string_view path, std::string_view field);

}  // namespace berth::test
