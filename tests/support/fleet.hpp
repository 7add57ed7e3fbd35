#pragma once
// A fleet of Docker hosts on this machine for tests (issue #15): several dockerds, each in a
// network namespace of its own, wired to one switch namespace and joined in a Swarm, each with
// the test image (tests/support/test_fleet.sh does the work; its header says how and why).
// The destructor removes everything of the fleet, whatever state a test left it in.

#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace berth::test {

class TestFleet {
 public:
  /// Starts `hosts` dockerds; up() says whether it worked, failure() why not.
  explicit TestFleet(int hosts);
  ~TestFleet();
  TestFleet(const TestFleet&) = delete;
  TestFleet& operator=(const TestFleet&) = delete;

  [[nodiscard]] bool up() const noexcept { return up_; }
  /// The script's output when the fleet did not come up.
  [[nodiscard]] const std::string& failure() const noexcept { return failure_; }
  /// Its id: network namespaces "bf-<id>-...", state under /run/bf-<id> and /var/lib/bf-<id>.
  [[nodiscard]] const std::string& id() const noexcept { return id_; }
  [[nodiscard]] int size() const noexcept { return hosts_; }
  /// DOCKER_HOST of host `host` (0 manages the Swarm).
  [[nodiscard]] std::string url(int host) const;
  /// Host `host` as an entry of a berth policy's `hosts:` list ("  - name: hN\n    url: ..."),
  /// named hN; policy_hosts(): every host, h0 (the Swarm manager) first.
  [[nodiscard]] std::string policy_host(int host) const;
  [[nodiscard]] std::string policy_hosts() const;
  /// Host `host`'s address on the fleet's underlay.
  [[nodiscard]] std::string address(int host) const;
  /// The docker CLI against host `host`.
  [[nodiscard]] RunResult docker(int host, const std::vector<std::string>& args,
                                 const RunOptions& options = {}) const;
  /// Stops host `host`'s dockerd (a host that is down), and starts it again.
  [[nodiscard]] RunResult stop(int host) const;
  [[nodiscard]] RunResult start(int host) const;
  /// A command in host `host`'s network namespace (where its dockerd and iptables are).
  [[nodiscard]] RunResult in_namespace(int host, const std::vector<std::string>& argv) const;

 private:
  std::string id_;
  int hosts_;
  bool up_ = false;
  std::string failure_;
};

}  // namespace berth::test
