#pragma once
// What a fleet host's containers really use, from its berth-meter's /metrics (issue #15): the
// last value and the recent 95th percentile of each container's working set and CPU rate, for
// placement (policy/placement.hpp: a host's measured use, and each container's accounted()).
// Pure: the proxy fetches the text in the background and feeds it here with the time.

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/placement.hpp"

namespace berth::policy {

/// One container's figures in one scrape: its id's first 12 hex digits (the meter's `id`
/// label), cumulative CPU seconds and working set bytes.
struct ContainerSample {
  std::string id12;
  double cpu_seconds = 0;
  double memory = 0;
};

/// The per-container samples of a berth-meter's /metrics text
/// (berth_container_cpu_seconds_total and berth_container_memory_working_set_bytes). Lines it
/// cannot read are skipped; a container with only one of the two figures is kept with 0 for the
/// other.
[[nodiscard]] std::vector<ContainerSample> parse_container_samples(std::string_view metrics);

/// One container's use: the latest, and the 95th percentile over the window.
struct ContainerUsage {
  Amount latest;
  Amount p95;
};

class UsageHistory {
 public:
  /// At most this many scrapes are kept per container (5 minutes at one scrape in 5 s).
  static constexpr std::size_t window = 60;

  /// Adds one scrape taken at `now_ms`. The CPU rate of a container is its CPU seconds since
  /// its previous sample over the time between them; its first sample has none. Containers
  /// absent from the scrape are forgotten (removed, or moved).
  void add(std::int64_t now_ms, const std::vector<ContainerSample>& samples);

  /// Every container seen in the last scrape, by id12.
  [[nodiscard]] std::map<std::string, ContainerUsage, std::less<>> snapshot() const;

 private:
  struct Series {
    std::int64_t last_ms = 0;
    double last_cpu_seconds = 0;
    std::deque<Amount> points;  // memory, and CPU rate (nano CPUs) once there is one
  };
  std::map<std::string, Series, std::less<>> series_;
};

}  // namespace berth::policy
