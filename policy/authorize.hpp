#pragma once
// authorize: may this principal call this route at all? Operators may call every classified
// route; tenants only the routes the endpoint table opens to them.

#include <string>
#include <string_view>

#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/identity.hpp"

namespace berth::policy {

/// Route-level authorization.
[[nodiscard]] Decision authorize_route(const Principal& who, const Classified& request);

/// The /info document a tenant sees: only host facts that a private Docker host would also
/// show (versions, OS, CPU and memory totals), with every daemon-wide count, name, id, path,
/// label, proxy setting and registry mirror removed. Returns nullopt-equivalent (empty string)
/// when `upstream_json` is not a JSON object.
[[nodiscard]] std::string redact_info_for_tenant(std::string_view upstream_json);

}  // namespace berth::policy
