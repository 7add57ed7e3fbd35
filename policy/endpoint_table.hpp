#pragma once
// classify: method + request target -> one route of the Docker Engine API endpoint table.
// The table is the single place that says, for every route dockerd serves, who may call it,
// how its body is handled and how long it may take. A request the table does not know, or a
// path written in a form dockerd would not route the same way (encoded slashes, dot segments,
// empty segments, NUL), is refused: default deny.

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
  hijack,  ///< the connection may be hijacked after the response header (attach, exec start)
};

/// How long the request may take end to end, which picks the proxy's deadlines.
enum class TimeoutClass {
  quick,   ///< plain request/response
  slow,    ///< may block for a long time before answering (wait, stop, pull, build)
  endless,  ///< long-lived response stream (logs -f, events, stats) or hijack
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

/// The Content-Type berth writes on a tenant's request body for `route` (the one dockerd
/// expects there), whatever the client sent.
[[nodiscard]] std::string_view tenant_body_content_type(const Route& route) noexcept;

/// Percent-encodes everything but RFC 3986 unreserved characters and those in `also_keep`.
std::string percent_encode(std::string_view s, std::string_view also_keep);
/// A path or path segment as berth forwards it ('/', ':' and '@' kept).
inline std::string escape_path(std::string_view s) { return percent_encode(s, "/:@"); }

/// Rebuilds the target forwarded to dockerd from what was judged: version prefix, canonical
/// percent-encoded path, raw query.
std::string canonical_target(const Classified& c);

}  // namespace berth::policy
