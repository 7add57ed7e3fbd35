#include "policy/authorize.hpp"

#include <nlohmann/json.hpp>

namespace berth::policy {

Decision authorize_route(const Principal& who, const Classified& request) {
  const Route& route = *request.route;
  if (route.access == Access::refused) {
    return Decision::deny(403,
                          "berth: " + std::string(route.endpoint) + " is not available through berth",
                          "route.refused");
  }
  if (who.is_operator()) {
    return Decision::allow("route.operator");
  }
  if (route.access == Access::tenant) {
    return Decision::allow("route.tenant");
  }
  return Decision::deny(403,
                        "berth: " + std::string(route.method) + " " + std::string(route.pattern) +
                            " (" + std::string(route.endpoint) +
                            ") is not available to tenants",
                        "route.operator_only");
}

std::string redact_info_for_tenant(std::string_view upstream_json) {
  const auto doc = nlohmann::json::parse(upstream_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return {};
  }
  // Allow-list, not deny-list: a field added by a newer dockerd stays hidden until reviewed.
  // Everything here describes the machine a private Docker host would also reveal; counts,
  // names, ids, paths, labels, proxies, registry settings and swarm state are daemon-wide and
  // would tell a tenant about the others.
  static constexpr std::string_view kept[] = {
      "Driver",          "MemoryLimit",     "SwapLimit",       "KernelMemory",
      "CpuCfsPeriod",    "CpuCfsQuota",     "CPUShares",       "CPUSet",
      "PidsLimit",       "IPv4Forwarding",  "BridgeNfIptables", "BridgeNfIp6tables",
      "OomKillDisable",  "LoggingDriver",   "CgroupDriver",    "CgroupVersion",
      "KernelVersion",   "OperatingSystem", "OSVersion",       "OSType",
      "Architecture",    "NCPU",            "MemTotal",        "ServerVersion",
      "DefaultRuntime",  "ExperimentalBuild", "InitBinary",    "Isolation",
      "ContainerdCommit", "RuncCommit",     "InitCommit",      "SecurityOptions",
  };
  nlohmann::json out = nlohmann::json::object();
  for (auto key : kept) {
    const auto it = doc.find(std::string(key));
    if (it != doc.end()) {
      out[std::string(key)] = *it;
    }
  }
  // The tenant's own counts arrive with the ownership index (issue #3); until then they are 0.
  for (const char* count : {"Containers", "ContainersRunning", "ContainersPaused",
                            "ContainersStopped", "Images"}) {
    out[count] = 0;
  }
  out["Name"] = "berth";
  out["ID"] = "";
  out["Labels"] = nlohmann::json::array();
  out["Warnings"] = nlohmann::json::array();
  return out.dump();
}

}  // namespace berth::policy
