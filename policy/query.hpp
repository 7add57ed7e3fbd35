#pragma once
// The query string of a tenant's request, judged parameter by parameter against the route's
// list in the endpoint table and forwarded only in the form berth judged (re-serialized, like
// JSON bodies). dockerd reads query parameters with Go's url.ParseQuery and a handful of
// helpers (httputils.BoolValue, Int64ValueOrZero, strconv.Atoi, filters.FromJSON...): each
// kind below reads a value the way that helper does and writes it back in one canonical
// spelling, so what dockerd acts on is what berth judged.
//
// Allow by list: a parameter the route does not list is refused, as an unknown route is; a
// parameter dockerd reads only once may appear only once (dockerd takes the first, and two
// readers must never be able to pick different ones); a value outside the listed ones is
// refused. The threat that made this rule: `GET /containers/{id}/top?ps_args=...` runs the
// host's ps with tenant-chosen options, and dockerd's parse errors returned other processes'
// command lines word by word.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/decision.hpp"

namespace berth::policy {

enum class QueryKind {
  flag,        ///< httputils.BoolValue: false for "", 0, no, false, none; written "1"/"0"
  false_only,  ///< a flag a tenant may only leave false (docker-py sends link=False); dropped
  neutral_only,  ///< a tenant may only send one of `values`, which mean "not set" (the docker
                 ///< CLI sends cgroupparent= and ulimits=null with every build); dropped
  strict_bool,  ///< strconv.ParseBool (network inspect's verbose); written "true"/"false"
  integer,     ///< strconv.Atoi / ParseInt within [min, max]; written in decimal
  text,        ///< any text of at most `max` bytes without control characters, passed on
  one_of,      ///< exactly one of `values` (compared after Go's unescaping)
  timestamp,   ///< timetypes.ParseTimestamps: "<seconds>[.<fraction>]"
  signal,      ///< pkg/signal.ParseSignal: a number, or a name with or without SIG
  filters,     ///< filters.FromJSON with the keys in `values`; written in the map form
  judged,      ///< its route's own rewrite judges it (container names, build args, labels)
  ignored,     ///< read by no dockerd handler (docker-py's trunc_cmd): accepted, not forwarded
  refused,     ///< known, and refused for tenants with `reason`
};

struct QueryParam {
  std::string_view name;
  QueryKind kind;
  std::span<const std::string_view> values = {};  ///< one_of values, or filters keys
  std::int64_t min = 0;
  std::int64_t max = 0;
  bool repeated = false;       ///< dockerd reads every value (r.Form["t"])
  int min_minor = 0;           ///< dockerd reads it only from API 1.<min_minor>
  int max_minor = 99;          ///< ... and only up to API 1.<max_minor>
  std::string_view reason = {};  ///< refused: why, for the tenant
};

/// Query parameters in order, decoded as Go's url.ParseQuery does ('+' is a space, %XX);
/// nullopt when Go would drop a pair (a ';' in it, a bad escape), so berth cannot judge what
/// dockerd would read. Empty pairs ("&&") are skipped, as Go skips them.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q);
/// Percent-decodes one query component ('+' is a space, as Go's url.ParseQuery).
std::optional<std::string> query_unescape(std::string_view s);
std::string query_escape(std::string_view s);
std::string build_query(const std::vector<std::pair<std::string, std::string>>& params);

/// Parses a "filters" query value in either of dockerd's formats ({"k":{"v":true}} or
/// {"k":["v"]}) into key -> values. nullopt when malformed.
std::optional<std::map<std::string, std::vector<std::string>>> parse_filters(
    std::string_view json_text);
std::string serialize_filters(const std::map<std::string, std::vector<std::string>>& f);

/// Judges `query` (raw, without '?') against `params` for a request of API minor version
/// `minor` on `route_name` ("GET /containers/{id}/top", for messages). Returns the canonical
/// query to forward, or the refusal (400 for a malformed value, as dockerd answers one; 403
/// for a parameter or value berth does not allow).
[[nodiscard]] std::expected<std::string, Decision> judge_query(
    std::span<const QueryParam> params, std::string_view query, int minor,
    std::string_view route_name);

}  // namespace berth::policy
