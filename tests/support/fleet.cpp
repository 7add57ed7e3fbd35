#include "tests/support/fleet.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "tests/support/proxy_under_test.hpp"

namespace berth::test {

namespace {

std::filesystem::path script() {
  return std::filesystem::path(BERTH_SOURCE_DIR) / "tests" / "support" / "test_fleet.sh";
}

RunOptions slow() {
  RunOptions o;
  o.timeout = std::chrono::seconds(180);
  return o;
}

}  // namespace

TestFleet::TestFleet(int hosts) : hosts_(hosts) {
  // Short (interface and socket paths have limits) and unique among concurrent test processes.
  static std::atomic<unsigned> counter{0};
  id_ = std::to_string(::getpid() % 100000) + std::to_string(counter++);
  const auto r = run({"bash", script().string(), "up", id_, std::to_string(hosts), test_image},
                     slow());
  up_ = r.ok();
  if (!up_) {
    failure_ = describe(r);
  }
}

TestFleet::~TestFleet() { (void)run({"bash", script().string(), "down", id_}, slow()); }

std::string TestFleet::url(int host) const {
  return "unix:///run/bf-" + id_ + "/h" + std::to_string(host) + ".sock";
}

std::string TestFleet::policy_host(int host) const {
  return "  - name: h" + std::to_string(host) + "\n    url: \"" + url(host) + "\"\n";
}

std::string TestFleet::policy_hosts() const {
  std::string yaml;
  for (int h = 0; h < hosts_; ++h) {
    yaml += policy_host(h);
  }
  return yaml;
}

std::string TestFleet::address(int host) const {
  return "192.168.250." + std::to_string(host + 1);
}

RunResult TestFleet::docker(int host, const std::vector<std::string>& args,
                            const RunOptions& options) const {
  std::vector<std::string> argv{"docker", "-H", url(host)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, options);
}

RunResult TestFleet::stop(int host) const {
  return run({"bash", script().string(), "stop", id_, std::to_string(host)}, slow());
}

RunResult TestFleet::start(int host) const {
  return run({"bash", script().string(), "start", id_, std::to_string(host)}, slow());
}

RunResult TestFleet::in_namespace(int host, const std::vector<std::string>& argv) const {
  std::vector<std::string> full{"nsenter",
                                "--net=/run/netns/bf-" + id_ + "-h" + std::to_string(host)};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full);
}

}  // namespace berth::test
