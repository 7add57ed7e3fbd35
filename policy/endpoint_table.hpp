#pragma once
// classify: method + request target -> one route of the Docker Engine API endpoint table.
// The table is the single place that says, for every route dockerd serves, who may call it,
// how its body is handled and how long it may take. A request the table does not know, or a
// path written in a form dockerd would not route the same way (encoded slashes, dot segments,
// empty segments, NUL), is refused: default deny.

#include <chrono>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decision.hpp"
#include "policy/query.hpp"

namespace berth::policy {

/// Who may call a route.
enum class Access {
  tenant,         ///< tenants and operators
  operator_only,  ///< operators only
  refused,        ///< nobody, through berth
};

/// "tenant", "operator_only", "refused": the class's name in the audit log and metrics.
constexpr std::string_view access_name(Access a) noexcept {
  switch (a) {
    case Access::tenant:
      return "tenant";
    case Access::operator_only:
      return "operator_only";
    case Access::refused:
      return "refused";
  }
  return "unclassified";
}

/// How the proxy handles a route's request body and response.
enum class BodyMode {
  none,    ///< no request body expected; a body is forwarded only for operators
  judge,   ///< JSON body read whole (up to a cap), judged and re-serialized
  stream,  ///< body relayed in a bounded window (tar archives, image loads)
  hijack,  ///< no body; the connection may be hijacked after the response header (attach)
  judge_hijack,  ///< a JSON body judged as for `judge`, then the connection may be hijacked
                 ///< (exec start)
};

/// How long the request may take end to end, which picks the proxy's deadlines.
enum class TimeoutClass {
  quick,   ///< plain request/response
  slow,    ///< may block for a long time before answering (wait, stop, pull, build)
  endless,  ///< long-lived response stream (logs -f, events, stats) or hijack
};

/// How long berth waits for dockerd's answer head on a route of a class. dockerd is trusted,
/// but a request waiting without end on a wedged daemon holds a connection and its client.
/// Zero: no limit (streams, hijacks, waits).
constexpr std::chrono::seconds answer_deadline(TimeoutClass t) noexcept {
  switch (t) {
    case TimeoutClass::quick:
      return std::chrono::minutes(10);  // a list with sizes on a large host takes minutes
    case TimeoutClass::slow:
      return std::chrono::hours(2);  // a stop waits up to the 3600 s a tenant may ask
    case TimeoutClass::endless:
      break;
  }
  return std::chrono::seconds(0);
}

/// What dockerd's answer to a route tells the ownership index, which learns from it before the
/// event stream confirms (so the next request resolves the object without a round trip).
/// A route with an effect has its answer read whole.
enum class IndexEffect {
  none,
  container_created,
  container_updated,  ///< the quota reservation becomes the container's holding
  container_removed,  ///< its quota is free at once
  exec_created,
  network_created,
  volume_created,
  image_committed,  ///< on a fleet, the image a commit made on another host goes to the primary
};

/// Which daemon of a fleet serves a route (issue #15 builds on this column; with one daemon
/// every scope is that daemon).
enum class Scope {
  any,        ///< no object: any daemon answers (/_ping, /version, /auth)
  holder,     ///< one object's: the daemon that holds it (the first path parameter; the
              ///< container a commit names)
  fanout,     ///< every daemon's, merged (lists, events, /info, system df, prunes)
  placement,  ///< creates: the daemon placement chooses
};

struct Route {
  std::string_view method;
  std::string_view pattern;   ///< "/containers/{id}/json"; "{name*}" captures the rest
  std::string_view endpoint;  ///< stable class id, e.g. "container.inspect"
  Access access;
  BodyMode body;
  TimeoutClass timeout;
  /// The query parameters a tenant may send, and how dockerd reads each (policy/query.hpp).
  /// Anything else is refused. Operators' queries pass as they are.
  std::span<const QueryParam> query = {};
  IndexEffect index = IndexEffect::none;
  Scope scope = Scope::any;
};

/// The whole table, in the order it is matched.
std::span<const Route> endpoint_table() noexcept;

/// The API versions dockerd 20.10 accepts in a "/v1.NN" prefix.
inline constexpr int min_api_minor = 12;
inline constexpr int max_api_minor = 41;

struct Classified {
  const Route* route = nullptr;
  std::string api_version;          ///< "1.41", or empty when the path had no version prefix
  std::string path;                 ///< decoded path without the version prefix
  std::vector<std::string> params;  ///< decoded path parameters, in pattern order
  std::vector<std::string> refs;    ///< the parameters as the client wrote them (before resolve)
  std::string query;                ///< raw query string without '?'
};

/// Classifies a request. Refusals carry dockerd's status for the same request where dockerd
/// would also refuse it (404 "page not found" for an unknown route), otherwise 403/400 with the
/// reason.
[[nodiscard]] std::expected<Classified, Decision> classify(std::string_view method,
                                                           std::string_view target);

/// Whether a field of a tenant's request head reaches dockerd (allow by list). dockerd reads
/// few fields, and some of them change what it does: a form-encoded Content-Type makes Go's
/// ParseForm read the body as query parameters ahead of the URL's (remote=, t= on a build),
/// X-Meta-* fields are copied onto dockerd's own requests to registries, X-Registry-Auth and
/// X-Registry-Config carry credentials for registries tenants may not reach. Framing fields
/// (Content-Length, Transfer-Encoding) and Upgrade/Connection are the proxy's to write.
[[nodiscard]] bool tenant_field_forwarded(std::string_view name) noexcept;
/// The same for a request to `route`: X-Registry-Auth also reaches dockerd on a pull or push.
[[nodiscard]] bool tenant_field_forwarded(const Route& route, std::string_view name) noexcept;

/// The Content-Type berth writes on a tenant's request body for `route` (the one dockerd
/// expects there), whatever the client sent.
[[nodiscard]] std::string_view tenant_body_content_type(const Route& route) noexcept;

/// The body is read whole and judged before anything reaches dockerd.
constexpr bool judged_body(BodyMode b) noexcept {
  return b == BodyMode::judge || b == BodyMode::judge_hijack;
}
/// dockerd may take the connection over after its answer head (attach, exec start).
constexpr bool may_hijack(BodyMode b) noexcept {
  return b == BodyMode::hijack || b == BodyMode::judge_hijack;
}

/// Percent-encodes everything but RFC 3986 unreserved characters and those in `also_keep`.
std::string percent_encode(std::string_view s, std::string_view also_keep);
/// A path or path segment as berth forwards it ('/', ':' and '@' kept).
inline std::string escape_path(std::string_view s) { return percent_encode(s, "/:@"); }

/// Rebuilds the target forwarded to dockerd from what was judged: version prefix, canonical
/// percent-encoded path, raw query.
std::string canonical_target(const Classified& c);

}  // namespace berth::policy
