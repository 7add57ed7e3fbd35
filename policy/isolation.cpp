#include "policy/isolation.hpp"

#include <algorithm>

namespace berth::policy::isolation {

namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_bridge_name(std::string_view name) {
  return name.size() == 15 && name.starts_with("br-") && is_hex(name.substr(3));
}

}  // namespace

std::string bridge_of(std::string_view network_id) {
  if (network_id.size() < 12 || !is_hex(network_id)) {
    return {};
  }
  return "br-" + std::string(network_id.substr(0, 12));
}

std::string restore_script(std::vector<std::string> bridges) {
  std::erase_if(bridges, [](const std::string& b) { return !is_bridge_name(b); });
  std::sort(bridges.begin(), bridges.end());
  bridges.erase(std::unique(bridges.begin(), bridges.end()), bridges.end());
  const std::string c(chain);
  std::string out = "*mangle\n:" + c + " - [0:0]\n-F " + c + "\n";
  for (const auto& b : bridges) {
    out += "-A " + c + " -i " + b + " -o " + b + " -j RETURN\n";
    out += "-A " + c + " -i " + b + " -o br-+ -j DROP\n";
    out += "-A " + c + " -i " + b + " -o docker0 -j DROP\n";
    out += "-A " + c + " -i br-+ -o " + b + " -j DROP\n";
    out += "-A " + c + " -i docker0 -o " + b + " -j DROP\n";
  }
  out += "COMMIT\n";
  return out;
}

}  // namespace berth::policy::isolation
