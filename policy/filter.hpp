#pragma once
// filter: what a tenant sees of dockerd's answers. Lists, inspect documents, events, /info,
// system df and error messages keep only the tenant's own objects (and shared images), under
// the names the tenant gave them, without berth.* labels or berth's cgroup parent.

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "policy/identity.hpp"
#include "policy/list_filter.hpp"
#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"

namespace berth::policy {

/// Rewrites a whole JSON response body for the tenant. Returns nullopt when the body is not
/// the JSON the view expects (the proxy then answers 502 rather than leak it).
/// `extra`: the list filters berth applies itself (policy/list_filter.hpp).
[[nodiscard]] std::optional<std::string> filter_response(ResponseView view,
                                                         const Principal& who,
                                                         std::string_view body,
                                                         const OwnershipIndex& index,
                                                         const ListFilter& extra = {});

/// filter_response with the whole body parsed into a DOM, filtered and re-serialized: the
/// reference the streaming container views must agree with (as JSON documents), and their
/// fallback for anything they decline.
[[nodiscard]] std::optional<std::string> filter_response_dom(ResponseView view,
                                                             const Principal& who,
                                                             std::string_view body,
                                                             const OwnershipIndex& index,
                                                             const ListFilter& extra = {});

/// An overlay network's local copy made or removed on one host as containers there attach and
/// leave ("network create/destroy" of local scope): not the network's own lifecycle, which
/// the Swarm-scoped events tell. A private host sends no such event.
[[nodiscard]] bool overlay_attachment_event(const nlohmann::json& event);

/// One line of a fleet host's /events as a private host would have sent it, for everyone's
/// merged stream: nullopt drops it. Dropped: the overlay attachment events above, the
/// Swarm's "update" of a network (a private host never updates one), and the image events of
/// every host but the primary (`from_primary`): the fleet's images are the primary's, and the
/// others' are the copies berth loads, tags and deletes there for the containers it places.
/// The Swarm's "remove" of a network reads "destroy", the word of one host. Anything else is
/// returned unchanged, unparsed lines included (the tenant's own filter refuses those).
[[nodiscard]] std::optional<std::string> fleet_event_view(std::string_view event_json,
                                                          bool from_primary);

/// A fleet's /info as a tenant sees it: NCPU and MemTotal are the sums over the hosts that are
/// up (`cpus`, `memory`), as classic Swarm reported them; the rest is the primary's, already
/// filtered. A body that is not a JSON object is returned as it is.
[[nodiscard]] std::string with_fleet_totals(std::string_view info_json, std::int64_t cpus,
                                            std::int64_t memory);

/// One event of the /events stream: the rewritten line, or nullopt when the tenant must not
/// see it.
[[nodiscard]] std::optional<std::string> filter_event(const Principal& who,
                                                      std::string_view event_json,
                                                      const OwnershipIndex& index);

/// One sample of a container's stats stream with the container's name as the tenant gave it
/// (dockerd writes the stored "/<tenant>_<name>") and its id as the tenant knows it
/// (`index`'s shown ids, when given). A line that is not a JSON object with a name of the
/// tenant's is passed on without its name.
[[nodiscard]] std::string filter_stats_line(const Principal& who, std::string_view line,
                                            const OwnershipIndex* index = nullptr);

/// Writes over each host id in `text` that `shown` maps (a tenant's moved containers,
/// OwnershipIndex::shown_ids) the id the tenant knows: a whole run of 64 hex digits only,
/// in place, since both are 64 digits long. Every answer of a container's id a tenant gets
/// passes here (filter_response, filter_event, filter_stats_line, tenant_error_message).
void show_ids(std::string& text, const std::unordered_map<std::string, std::string>& shown);

/// One message of a build's JSON progress stream with image names in the tenant's namespace.
[[nodiscard]] std::string filter_build_message(const Principal& who, std::string_view line);

/// An error message from dockerd with stored names replaced by the tenant's own. A name
/// conflict keeps the holder's id only when `index` shows the holder is the tenant's.
[[nodiscard]] std::string tenant_error_message(const Principal& who, std::string_view message,
                                               const OwnershipIndex* index = nullptr);

}  // namespace berth::policy
