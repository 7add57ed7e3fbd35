#pragma once
// Keeps the BERTH-ISOLATION chain (policy/isolation.hpp) in the mangle table's FORWARD hook in
// step with the tenant bridge networks the ownership index knows, through the iptables tools.
// Called from the index watcher's thread only, after a resynchronisation and after each network
// create or destroy; a no-op when the set of bridges has not changed. When iptables cannot be
// run (not root, not installed) it says so once in the log and berth relies on dockerd's rules.
// Several berth-proxies on one host compute the same chain from the same dockerd.

#include <string>
#include <vector>

namespace berth::proxy {

class BridgeIsolation {
 public:
  explicit BridgeIsolation(bool enabled) : enabled_(enabled) {}

  /// Makes the chain hold exactly the rules for `bridges` ("br-<12 hex>").
  void update(const std::vector<std::string>& bridges);

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

 private:
  bool ensure_jump();

  bool enabled_;
  bool jump_ready_ = false;
  bool warned_ = false;
  std::string applied_;  // the last script iptables-restore accepted
};

}  // namespace berth::proxy
