#pragma once
// Quota judgement: whether one more container (or a container's new limits) fits in what the
// tenant's quota leaves, given what it holds and has reserved. The proxy calls it under the
// index's write lock and reserves the claim in the same step, so N concurrent creates can never
// pass together what one would not.

#include <optional>

#include <nlohmann/json.hpp>

#include "policy/decision.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"

namespace berth::policy {

/// nullopt when `claim` fits; otherwise a 403 naming the quota, what is in use and the limit:
/// "berth: tenant acme already holds 10 containers; its quota is 10 (rule quota.containers)".
/// `in_use` leaves out the container an update replaces; `new_container` counts one more.
[[nodiscard]] std::optional<Decision> judge_quota(const Tenant& tenant, const Usage& in_use,
                                                  const Resources& claim, bool new_container);

/// What a container holds, from the HostConfig of dockerd's inspect: Memory, NanoCpus or
/// CpuQuota/CpuPeriod, and the host ports of PortBindings.
[[nodiscard]] Resources held_resources(const nlohmann::json& host_config);

}  // namespace berth::policy
