#pragma once
// The usage ledger: turns successive readings of kernel counters into monotonic per-tenant
// billing totals. It decides what a reading is worth (a delta since the previous reading of
// the same cgroup, or the whole counter when the cgroup is new or was recreated), integrates
// working-set memory over time into byte-seconds, and closes sources whose cgroup has gone.
// It refuses to bill one cgroup twice: a source closed by a final read is remembered (a
// tombstone) until its cgroup is no longer seen, so a later scan cannot open it again.
//
// Pure: no clocks, no files, no threads. Times are nanoseconds of one monotonic clock that
// keeps counting across meter restarts (the meter uses CLOCK_BOOTTIME and checks the boot id).

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace berth::metering {

/// Counters read from one cgroup (or one container's network namespace) at one instant.
/// Every counter is cumulative since the cgroup was created.
struct Reading {
  std::uint64_t cpu_ns = 0;
  std::uint64_t working_set_bytes = 0;
  bool has_net = false;  ///< the container has its own network namespace and it was read
  std::uint64_t net_rx_bytes = 0;
  std::uint64_t net_tx_bytes = 0;
  bool has_blk = false;  ///< block I/O counters were read
  std::uint64_t blk_read_bytes = 0;
  std::uint64_t blk_write_bytes = 0;
};

/// What a source bills. A tenant's aggregate cgroup bills CPU and memory (the kernel accounts
/// dead children there); its containers bill only I/O, or the tenant would pay CPU twice. A
/// container outside any tenant parent bills everything itself.
struct Bills {
  bool cpu_memory = false;
  bool io = false;
};

/// One cgroup read during a scan.
struct Observation {
  std::string key;               ///< "t/<tenant>" for an aggregate, "c/<container id>"
  std::uint64_t generation = 0;  ///< changes when the cgroup is recreated (its inode number)
  std::string tenant;
  Bills bills;
  Reading reading;
  /// The cgroup exists but could not be read this time: keep the source open, bill nothing.
  bool stale = false;
};

/// A tenant's billing totals (monotonic, persisted) and current gauges (not persisted).
struct TenantUsage {
  std::uint64_t cpu_ns = 0;
  double memory_byte_seconds = 0.0;
  std::uint64_t net_rx_bytes = 0;
  std::uint64_t net_tx_bytes = 0;
  std::uint64_t blk_read_bytes = 0;
  std::uint64_t blk_write_bytes = 0;
  std::int64_t first_seen_unix_ms = 0;  ///< when these counters started at 0

  std::uint64_t working_set_bytes = 0;  ///< gauge: sum of the latest readings
  std::uint32_t running_containers = 0;  ///< gauge: container cgroups seen in the last scan
  bool exported = false;  ///< counters have been exposed at 0 once (see Ledger::mark_exported)
};

/// The ledger's memory of one source: the last reading it billed.
struct SourceState {
  std::string tenant;
  std::uint64_t generation = 0;
  Bills bills;
  Reading last;
  bool net_seen = false;  ///< `last` holds network counters (kept when a read misses them)
  bool blk_seen = false;
  std::int64_t last_ns = 0;
  std::uint64_t seen_scan = 0;  ///< the last scan that saw it (not persisted)
};

class Ledger {
 public:
  /// Applies one complete scan taken at `now_ns`, with the wall-clock time `now_unix_ms` used
  /// only to stamp new tenants. Sources not present in `observations` are closed: their cgroup
  /// is gone, so their memory is integrated down to zero over the last interval.
  /// Precondition: `now_ns` is not earlier than the previous scan (earlier times are clamped).
  void apply_scan(std::int64_t now_ns, std::int64_t now_unix_ms,
                  std::span<const Observation> observations);

  /// Bills a source's last reading, taken as its cgroup emptied, and closes it. The cgroup
  /// usually lingers a few milliseconds; until a scan no longer sees it, scans ignore it. Its
  /// memory is taken as held at its last known level until now (the processes just exited, so
  /// the reading itself shows the memory already released). Returns false (and bills nothing)
  /// if the source is already closed.
  bool apply_final(std::int64_t now_ns, std::int64_t now_unix_ms, const Observation& observation);

  /// How memory between the previous reading and an extra one is integrated.
  enum class Between {
    interpolate,  ///< a linear ramp (the trapezoid rule), as between two scans
    hold,         ///< the previous level held until now: a container just exited, so the
                  ///< drop happened at this instant, not gradually over the interval
  };

  /// Bills one extra reading of one source between two scans: taken when a container under a
  /// tenant's aggregate is created or exits, so that the steps in the aggregate's working set
  /// are integrated where they happened, not half a scan interval away. A source not yet known
  /// starts now (its cgroup was just created). Returns false, billing nothing, if the source
  /// is closed or its cgroup was recreated since (the next scan handles it).
  bool apply_sample(std::int64_t now_ns, std::int64_t now_unix_ms, const Observation& observation,
                    Between between);

  /// Records that the current totals have been exposed to a scraper. Until a tenant has been
  /// exposed once, exported_usage() reports its counters as 0, so every tenant's series starts
  /// at 0 in Prometheus and no `increase()` loses the first interval.
  void mark_exported();

  /// Drops every source's baseline but keeps the totals: after a reboot every cgroup is new
  /// and inode numbers may be reused, so the next scan bills each counter from 0.
  void forget_sources();

  /// Makes sure a tenant exists with zero totals (operator, or a tenant seen in docker first).
  void ensure_tenant(const std::string& tenant, std::int64_t now_unix_ms);

  [[nodiscard]] const std::map<std::string, TenantUsage>& tenants() const noexcept {
    return tenants_;
  }
  [[nodiscard]] const std::map<std::string, SourceState, std::less<>>& sources() const noexcept {
    return sources_;
  }
  [[nodiscard]] std::optional<std::int64_t> last_scan_ns() const noexcept { return last_scan_ns_; }

  /// The totals to export: a tenant not yet exposed shows zeros (see mark_exported).
  [[nodiscard]] TenantUsage exported_usage(const TenantUsage& usage) const;

  /// The persistent part: totals, source baselines, tombstones and the last scan time.
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] static std::expected<Ledger, std::string> from_json(const nlohmann::json& doc);

 private:
  void bill(SourceState& state, const Observation& obs, std::int64_t now_ns,
            std::int64_t now_unix_ms, bool is_new, Between between = Between::interpolate);
  TenantUsage& tenant(const std::string& id, std::int64_t now_unix_ms);
  void close(SourceState& state, std::int64_t now_ns);
  void refresh_gauges(std::span<const Observation> observations);

  std::map<std::string, TenantUsage> tenants_;
  std::map<std::string, SourceState, std::less<>> sources_;
  struct Tombstone {
    std::uint64_t generation = 0;
    std::uint64_t seen_scan = 0;
  };
  /// Sources closed by a final read, by key, with the generation closed; kept while a scan
  /// still sees that cgroup.
  std::map<std::string, Tombstone, std::less<>> tombstones_;
  std::optional<std::int64_t> last_scan_ns_;
  std::uint64_t scan_count_ = 0;
};

/// The counter delta between two readings of one cgroup: the increase, or the whole current
/// value when the cgroup is new (`same_cgroup` false) or the counter went backwards (a reset).
[[nodiscard]] constexpr std::uint64_t counter_delta(std::uint64_t previous, std::uint64_t current,
                                                    bool same_cgroup) noexcept {
  if (!same_cgroup || current < previous) {
    return current;
  }
  return current - previous;
}

/// Byte-seconds of a working set that went linearly from `from_bytes` to `to_bytes` over
/// `dt_ns` (the trapezoid rule; unbiased for samples taken at random phase).
[[nodiscard]] constexpr double byte_seconds(std::uint64_t from_bytes, std::uint64_t to_bytes,
                                            std::int64_t dt_ns) noexcept {
  if (dt_ns <= 0) {
    return 0.0;
  }
  return (static_cast<double>(from_bytes) + static_cast<double>(to_bytes)) / 2.0 *
         (static_cast<double>(dt_ns) / 1e9);
}

}  // namespace berth::metering
