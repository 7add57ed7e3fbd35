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
  // Allow-list, not deny-list: a field added by a newer dockerd keeps its key (clients read
  // every key dockerd sends) but shows a neutral value until reviewed. Everything kept describes
  // the machine a private Docker host would also reveal; counts, names, ids, labels, proxies,
  // registry settings, swarm state and the daemon's own activity (listeners, goroutines, file
  // descriptors) are daemon-wide and would tell a tenant about the others.
  static constexpr std::string_view kept[] = {
      "Driver",          "DriverStatus",    "MemoryLimit",
      "SwapLimit",       "KernelMemory",    "KernelMemoryTCP", "CpuCfsPeriod",
      "CpuCfsQuota",     "CPUShares",       "CPUSet",          "PidsLimit",
      "IPv4Forwarding",  "BridgeNfIptables", "BridgeNfIp6tables", "OomKillDisable",
      "SystemTime",      "LoggingDriver",   "CgroupDriver",    "CgroupVersion",
      "KernelVersion",   "OperatingSystem", "OSVersion",       "OSType",
      "Architecture",    "IndexServerAddress", "NCPU",         "MemTotal",
      "ServerVersion",   "Runtimes",        "DefaultRuntime",
      "LiveRestoreEnabled", "ExperimentalBuild", "InitBinary", "Isolation",
      "ContainerdCommit", "RuncCommit",     "InitCommit",      "SecurityOptions",
      "ProductLicense",
  };
  nlohmann::json out = nlohmann::json::object();
  for (auto key : kept) {
    const auto it = doc.find(std::string(key));
    if (it != doc.end()) {
      out[std::string(key)] = *it;
    }
  }
  for (const auto& [key, value] : doc.items()) {
    if (out.contains(key)) {
      continue;
    }
    switch (value.type()) {
      case nlohmann::json::value_t::string:
        out[key] = "";
        break;
      case nlohmann::json::value_t::boolean:
        out[key] = false;
        break;
      case nlohmann::json::value_t::number_integer:
      case nlohmann::json::value_t::number_unsigned:
      case nlohmann::json::value_t::number_float:
        out[key] = 0;
        break;
      case nlohmann::json::value_t::array:
        out[key] = nlohmann::json::array();
        break;
      default:
        out[key] = nullptr;
        break;
    }
  }
  // Plugins: the built-in drivers only (an installed plugin is the operator's business), and
  // the log drivers, which describe the machine.
  if (const auto plugins = doc.find("Plugins"); plugins != doc.end() && plugins->is_object()) {
    out["Plugins"] = {{"Volume", {"local"}},
                      {"Network", {"bridge", "host", "ipvlan", "macvlan", "null", "overlay"}},
                      {"Authorization", nullptr},
                      {"Log", plugins->value("Log", nlohmann::json::array())}};
  }
  // A private host outside any swarm; no registry settings of the operator's.
  out["Swarm"] = {{"NodeID", ""},          {"NodeAddr", ""}, {"LocalNodeState", "inactive"},
                  {"ControlAvailable", false}, {"Error", ""},  {"RemoteManagers", nullptr}};
  out["RegistryConfig"] = {{"AllowNondistributableArtifactsCIDRs", nlohmann::json::array()},
                           {"AllowNondistributableArtifactsHostnames", nlohmann::json::array()},
                           {"InsecureRegistryCIDRs", nlohmann::json::array()},
                           {"IndexConfigs", nlohmann::json::object()},
                           {"Mirrors", nlohmann::json::array()}};
  // The tenant's own counts are written by the response filter, from the ownership index.
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
