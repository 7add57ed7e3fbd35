#include "policy/quota.hpp"

#include "policy/units.hpp"

#include <algorithm>

namespace berth::policy {

namespace {

Decision over(std::string message, std::string rule) {
  return Decision::deny(403, "berth: " + std::move(message), std::move(rule));
}

}  // namespace

std::optional<Decision> judge_quota(const Tenant& tenant, const Usage& in_use,
                                    const Resources& claim, bool new_container) {
  const Quota& q = tenant.quota;
  const std::string& t = tenant.id;
  if (new_container && q.containers && in_use.containers + 1 > *q.containers) {
    return over("tenant " + t + " already holds " + std::to_string(in_use.containers) +
                    " containers; its quota is " + std::to_string(*q.containers) +
                    " (remove one to create another)",
                "quota.containers");
  }
  if (q.memory && in_use.memory + claim.memory > *q.memory) {
    return over("HostConfig.Memory " + units::format_size(claim.memory) + " does not fit tenant " +
                    t + "'s memory quota: " + units::format_size(in_use.memory) + " of " +
                    units::format_size(*q.memory) + " is held by its containers",
                "quota.memory");
  }
  if (q.nano_cpus && in_use.nano_cpus + claim.nano_cpus > *q.nano_cpus) {
    return over("HostConfig.NanoCpus " + units::format_cpus(claim.nano_cpus) +
                    " CPUs do not fit tenant " + t + "'s CPU quota: " +
                    units::format_cpus(in_use.nano_cpus) + " of " +
                    units::format_cpus(*q.nano_cpus) + " CPUs are held by its containers",
                "quota.cpus");
  }
  if (q.published_ports && in_use.ports + claim.ports > *q.published_ports) {
    return over(std::to_string(claim.ports) + " published port(s) do not fit tenant " + t +
                    "'s quota: " + std::to_string(in_use.ports) + " of " +
                    std::to_string(*q.published_ports) + " are in use",
                "quota.published_ports");
  }
  return std::nullopt;
}

Resources held_resources(const nlohmann::json& hc) {
  Resources r;
  if (!hc.is_object()) {
    return r;
  }
  auto number = [&](const char* field) -> std::int64_t {
    const auto it = hc.find(field);
    return it != hc.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  r.memory = std::max<std::int64_t>(number("Memory"), 0);
  if (number("NanoCpus") > 0) {
    r.nano_cpus = number("NanoCpus");
  } else if (number("CpuQuota") > 0) {
    const std::int64_t period = number("CpuPeriod") > 0 ? number("CpuPeriod") : 100'000;
    r.nano_cpus = static_cast<std::int64_t>(static_cast<long double>(number("CpuQuota")) *
                                            1'000'000'000 / period);
  }
  const auto bindings = hc.find("PortBindings");
  if (bindings != hc.end() && bindings->is_object()) {
    for (const auto& [port, list] : bindings->items()) {
      if (!list.is_array()) {
        continue;
      }
      for (const auto& b : list) {
        r.ports += b.is_object() ? 1 : 0;  // one host port per binding, ranges included
      }
    }
  }
  return r;
}

}  // namespace berth::policy
