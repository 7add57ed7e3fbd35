#pragma once
// berth-meter: reads every tenant's aggregate cgroup and every container's cgroup at a fixed
// resolution, feeds the ledger, persists it, and exposes billing counters, per-container
// series and its own health on /metrics.
//
// Where the numbers come from, and why:
//  - A tenant's CPU and memory come from its aggregate cgroup (/berth/<tenant>), which the
//    kernel charges for every container under it, dead or alive. dockerd deletes a container's
//    cgroup before it emits `die`, so per-container reads lose the end of every container's
//    life; the aggregate does not.
//  - A container outside any tenant parent ("loose": the operator's own, or one created before
//    the proxy set parents) is billed from its own cgroup, to the tenant on its label, or to
//    the operator. Its last reading is taken when cgroup.events says it emptied (the cgroup
//    lingers 2 to 74 ms), so its tail is not lost either.
//  - Network and block I/O are per container (cgroup v1 keeps no per-parent network counters),
//    from /proc/<pid>/net/dev of the container's namespace and its blkio/io files.
//  - dockerd's stats API is used only when no cgroup hierarchy can be read.
//
// Threads: the scanner (one scan per resolution tick), the dockerd events follower, the
// populated watcher, and prometheus-cpp's HTTP threads. All share one mutex, never held
// across a call to dockerd.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "metering/cgroup.hpp"
#include "metering/docker.hpp"
#include "metering/ledger.hpp"
#include "metering/prices.hpp"
#include "metering/state_file.hpp"

namespace berth::metering {

struct MeterOptions {
  std::string listen = "127.0.0.1:9471";  ///< host:port for /metrics; port 0 picks one
  std::filesystem::path state_file;       ///< empty: nothing persisted (counters restart at 0)
  std::chrono::milliseconds resolution{1000};
  /// State written at most this often; 0: after every scan (the default, so a kill -9 loses
  /// at most one scan's worth of memory integration, re-estimated over the restart gap).
  std::chrono::milliseconds persist_interval{0};
  std::string docker_socket = "/var/run/docker.sock";  ///< "none": do not talk to dockerd
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
  std::filesystem::path prices_file;  ///< empty: no berth_price_* series
  std::size_t max_container_series = 1000;
  /// A container under a tenant's aggregate has its memory.stat, block I/O and network
  /// counters re-read every Nth scan (1: every scan). Billing never depends on it: the aggregate bills CPU and
  /// memory, and I/O counters are cumulative and read in full once more as the container exits.
  std::uint64_t detail_every = 10;
  /// A loose container whose owner dockerd has not told yet is held back this long, then
  /// billed to the operator.
  std::chrono::milliseconds owner_grace{10000};
};

inline constexpr std::string_view meter_usage_text =
    "usage: berth-meter [--listen HOST:PORT] [--state FILE] [--resolution-ms N]\n"
    "                   [--persist-ms N] [--docker-socket PATH|none] [--cgroup-root DIR]\n"
    "                   [--prices FILE] [--max-container-series N] [--detail-every N]\n";

/// Parses the command line (without argv[0]).
[[nodiscard]] std::expected<MeterOptions, std::string> parse_meter_options(
    std::span<const std::string> args);

/// The latest reading of one container, for its per-container series.
struct ContainerSeries {
  std::string tenant;
  std::string name;
  std::string id;  ///< the id its tenant knows (a moved container's first), 12 digits
  Reading reading;
};

class Meter {
 public:
  /// Finds the cgroup layout, loads the state file and prices. Fails on a state file that
  /// cannot be read (never a silent reset) and on bad prices.
  [[nodiscard]] static std::expected<std::unique_ptr<Meter>, std::string> create(
      MeterOptions options);
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;
  Meter(Meter&&) = delete;  // threads and the exposer hold `this`
  Meter& operator=(Meter&&) = delete;
  ~Meter();

  /// Binds /metrics, starts the threads, and returns the bound port.
  [[nodiscard]] std::expected<int, std::string> start();
  /// Stops the threads, then takes one last scan and persists it.
  void stop();

  /// One scan now (the scanner thread calls this every resolution tick).
  void scan_once();
  /// One scan at the given times (tests).
  void scan_at(std::int64_t now_ns, std::int64_t now_unix_ms);
  /// Writes the state file now. Returns false (and counts an error) on failure.
  bool persist();
  /// Re-reads the prices file (SIGHUP).
  [[nodiscard]] std::expected<void, std::string> reload_prices();
  /// Applies a dockerd event (the events follower calls this; tests too).
  void on_event(const ContainerEvent& event);
  /// Replaces what is known about one container (list and inspect answers).
  void learn(const ContainerInfo& info);

  /// The billing, per-container and price families, as a scrape would see them.
  [[nodiscard]] std::vector<prometheus::MetricFamily> collect_billing();
  /// Everything /metrics serves, in the text exposition format.
  [[nodiscard]] std::string metrics_text();

  [[nodiscard]] Ledger ledger_snapshot() const;
  [[nodiscard]] const CgroupLayout* layout() const noexcept {
    return layout_ ? &*layout_ : nullptr;
  }

 private:
  explicit Meter(MeterOptions options);

  struct Source {
    std::string key;
    std::string rel;
    std::string container_id;  ///< empty for a tenant aggregate
    std::optional<CgroupReader> cgroup;
    std::optional<NetReader> net;
    std::uint64_t netns = 0;
    int net_attempts = 0;
    int watch = -1;      ///< cgroup.events (populated), containers
    int dir_watch = -1;  ///< new subdirectories (containers), tenant aggregates
    std::string parent_tenant;  ///< the aggregate a container is under ("" when loose)
    bool loose = false;
    std::int64_t first_seen_ns = 0;
    std::uint64_t seen_scan = 0;
    std::uint64_t scans = 0;  ///< reads so far (for detail_every)
  };

  /// The latest frame of one container's stats stream (the stats API fallback).
  struct StatsFrame {
    std::string started_at;  ///< the run it belongs to (ContainerInfo::started_at)
    Reading reading;
  };

  /// Reads `source` into `o`. False when its cgroup is gone; a read error gives a stale `o`.
  [[nodiscard]] bool observe(Source& source, const std::string& tenant, Bills bills,
                             Observation& o);
  void read_net(Source& source, Reading& reading);
  void drop_source(const std::string& key);
  void scan_stats_api(std::int64_t now_ns, std::int64_t now_unix_ms);
  /// The stats API fallback's reader: one stats stream per running container dockerd has
  /// shown (inspected, so its StartedAt is known), polled together; keeps stats_latest_.
  void run_stats_api();
  /// What an inotify watch descriptor stands for.
  struct Watch {
    enum class Kind {
      populated,     ///< a container's cgroup.events; name: its source key
      tenant_dir,    ///< a tenant aggregate's directory; name: the tenant
      tenants_root,  ///< the "berth" directory of tenant aggregates
      loose_root,    ///< dockerd's default parent "docker"
    };
    Kind kind = Kind::populated;
    std::string name;
  };

  void on_populated_change(const std::string& key);
  void on_created(const Watch& watch, std::string_view name);
  void forget_watch_locked(int wd);
  void watch_populated_locked(Source& src);
  void watch_tenant_dir_locked(Source& src, const std::string& tenant);
  void ensure_root_watches_locked();
  Source& follow_container_locked(const std::string& id, const std::string& rel,
                                  const std::string& parent_tenant);
  /// Reads a tenant's aggregate now and bills it as an extra sample.
  void sample_tenant_locked(const std::string& tenant, Ledger::Between between);
  /// Samples `tenant` again after each of these delays (the watcher thread takes them).
  void schedule_samples_locked(const std::string& tenant, std::initializer_list<int> after_ms);
  /// Starts watching a container dockerd just started (custom cgroup parents included), so
  /// that one living less than a scan interval still gets its final read.
  void follow_new_container(const ContainerInfo& info);
  void run_scanner();
  void run_docker();
  void run_watcher();
  void run_writer();
  void persist_async();
  bool write_state(const std::string& text);
  void refresh_health();
  [[nodiscard]] const std::string& tenant_of_loose(const std::string& id,
                                                   std::int64_t first_seen_ns,
                                                   std::int64_t now_ns, bool& known) const;

  MeterOptions options_;
  std::optional<CgroupLayout> layout_;
  std::optional<DockerClient> docker_;
  std::uint64_t host_netns_ = 0;
  std::string boot_id_;

  mutable std::mutex mu_;
  Ledger ledger_;
  std::optional<Prices> prices_;
  std::map<std::string, Source, std::less<>> sources_;
  std::map<std::string, ContainerInfo> containers_;  ///< dockerd's view, by full id
  std::map<std::string, ContainerSeries> series_;    ///< by full id
  std::set<std::string> series_slots_;               ///< ids with per-container series
  /// The stats API fallback: each running container's latest frame, by full id.
  std::map<std::string, StatsFrame> stats_latest_;
  std::map<std::uint64_t, std::string> netns_owner_;
  std::map<int, Watch> watches_;
  int tenants_root_watch_ = -1;
  int loose_root_watch_ = -1;
  std::multimap<std::chrono::steady_clock::time_point, std::string> pending_samples_;
  std::uint64_t scan_count_ = 0;
  std::vector<Observation> observations_;  ///< reused by every scan
  std::string key_buf_;
  std::chrono::steady_clock::time_point last_persist_{};
  bool persist_failing_ = false;  ///< only the writer (or a synchronous persist) touches it

  int inotify_fd_ = -1;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread scanner_;
  std::thread docker_thread_;
  std::thread watcher_;
  std::thread stats_thread_;
  std::thread writer_;
  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::optional<std::string> pending_write_;
  bool writer_stop_ = false;

  std::shared_ptr<prometheus::Registry> health_;
  std::shared_ptr<prometheus::Collectable> billing_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Histogram* scan_duration_ = nullptr;
  prometheus::Counter* scans_ = nullptr;
  prometheus::Counter* overruns_ = nullptr;
  prometheus::Counter* final_reads_ = nullptr;
  prometheus::Counter* extra_samples_ = nullptr;
  prometheus::Counter* state_writes_ = nullptr;
  prometheus::Family<prometheus::Counter>* errors_ = nullptr;
  prometheus::Gauge* containers_followed_ = nullptr;
  prometheus::Gauge* tenants_followed_ = nullptr;
  prometheus::Gauge* series_dropped_ = nullptr;
  prometheus::Gauge* docker_connected_ = nullptr;
  prometheus::Gauge* last_scan_ = nullptr;
  prometheus::Gauge* resolution_ = nullptr;
};

/// berth-meter's whole program: options, signals (SIGTERM/SIGINT stop, SIGHUP reloads prices),
/// "berth-meter: ready on port N" on stdout once /metrics is served.
int meter_main(int argc, char** argv);

}  // namespace berth::metering
