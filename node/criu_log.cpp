#include "node/criu_log.hpp"

#include <cstdint>
#include <cstdio>

namespace berth::node {

nlohmann::json restore_figures(std::istream& log) {
  std::string line;
  double hook_start = -1;
  double hook_ms = 0;
  double finished = -1;
  bool in_hook = false;
  while (std::getline(log, line)) {
    double t = 0;
    if (line.size() < 3 || line[0] != '(' || std::sscanf(line.c_str(), "(%lf)", &t) != 1) {
      continue;
    }
    if (line.find("CRIU run id") != std::string::npos) {  // a new run: the earlier one is done
      hook_start = finished = -1;
      hook_ms = 0;
      in_hook = false;
    } else if (line.find("Running setup-namespaces scripts") != std::string::npos) {
      hook_start = t;
      in_hook = true;
    } else if (in_hook && line.find("RPC") == std::string::npos) {
      hook_ms = (t - hook_start) * 1000.0;
      in_hook = false;
    } else if (line.find("Restore finished successfully") != std::string::npos) {
      finished = t;
    }
  }
  if (finished < 0) {
    return nlohmann::json::object();
  }
  return {{"criu_restore_ms", static_cast<std::int64_t>(finished * 1000.0 + 0.5)},
          {"network_hook_ms", static_cast<std::int64_t>(hook_ms + 0.5)}};
}

std::string criu_errors(std::istream& log) {
  std::string line;
  std::string out;
  while (std::getline(log, line)) {
    if (line.find("Error") != std::string::npos) {
      out = out.empty() || out.size() > 400 ? line : out + " | " + line;
    }
  }
  return out;
}

}  // namespace berth::node
