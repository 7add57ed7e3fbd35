#pragma once
// The proxy side of the ownership index: one index shared by every worker behind a
// reader/writer lock (never held across a co_await), and the watcher that builds it from
// dockerd's lists at start and keeps it current from dockerd's event stream, resynchronising
// in full whenever the stream drops (dockerd restart) so nothing is missed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"
#include "policy/usage_history.hpp"
#include "proxy/bridge_isolation.hpp"
#include "proxy/config.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/net.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

/// What berth knows of one fleet host from its watcher (a snapshot, replaced whole).
struct HostFacts {
  bool up = false;  ///< its lists were read and its event stream is followed
  std::int64_t nano_cpus = 0;  ///< dockerd's NCPU, in billionths
  std::int64_t memory = 0;     ///< dockerd's MemTotal, bytes
  std::vector<std::string> image_ids;  ///< every image it holds, sorted
  /// Its tags ("busybox:latest", as /images/json lists them) and the image each names.
  std::map<std::string, std::string, std::less<>> image_tags;
  /// The fixed host ports each running container holds, by container id (on a fleet:
  /// placement keeps a container that publishes a port off a host where it is taken).
  std::map<std::string, std::vector<policy::HostPort>, std::less<>> published;
};

/// What a fleet host's containers really use, from its berth-meter (policy::UsageHistory).
struct HostUsage {
  std::chrono::steady_clock::time_point at;  ///< when its meter last answered
  std::map<std::string, policy::ContainerUsage, std::less<>> containers;  ///< by 12-hex id
};

class SharedIndex {
 public:
  template <typename F>
  auto read(F&& f) const {
    std::shared_lock lock(mutex_);
    return f(index_);
  }
  template <typename F>
  auto write(F&& f) {
    std::unique_lock lock(mutex_);
    return f(index_);
  }
  /// An immutable snapshot: a request holds it without copying the host's routes.
  std::shared_ptr<const policy::DaemonFacts> facts() const {
    std::shared_lock lock(mutex_);
    return facts_;
  }
  void set_facts(policy::DaemonFacts f) {
    auto next = std::make_shared<const policy::DaemonFacts>(std::move(f));
    std::unique_lock lock(mutex_);
    facts_ = std::move(next);
  }
  /// The host's facts; a host no watcher has reported on is down.
  std::shared_ptr<const HostFacts> host_facts(std::string_view host) const {
    std::shared_lock lock(mutex_);
    auto it = hosts_.find(host);
    return it == hosts_.end() ? std::make_shared<const HostFacts>() : it->second;
  }
  void set_host_facts(const std::string& host, HostFacts f) {
    auto next = std::make_shared<const HostFacts>(std::move(f));
    std::unique_lock lock(mutex_);
    hosts_[host] = std::move(next);
  }
  /// Changes one host's facts in place of a read and a set that another thread's change
  /// could fall between (the watcher and a request both note published ports).
  template <typename F>
  void update_host_facts(const std::string& host, F&& f) {
    std::unique_lock lock(mutex_);
    auto& known = hosts_[host];
    HostFacts next = known ? *known : HostFacts{};
    f(next);
    known = std::make_shared<const HostFacts>(std::move(next));
  }
  void set_host_up(const std::string& host, bool up) {
    std::unique_lock lock(mutex_);
    auto& known = hosts_[host];
    HostFacts next = known ? *known : HostFacts{};
    next.up = up;
    known = std::make_shared<const HostFacts>(std::move(next));
  }
  /// The host's latest usage snapshot; null when its meter never answered.
  std::shared_ptr<const HostUsage> host_usage(std::string_view host) const {
    std::shared_lock lock(mutex_);
    auto it = usage_.find(host);
    return it == usage_.end() ? nullptr : it->second;
  }
  void set_host_usage(const std::string& host, HostUsage u) {
    auto next = std::make_shared<const HostUsage>(std::move(u));
    std::unique_lock lock(mutex_);
    usage_[host] = std::move(next);
  }
  /// Image copies under way between hosts ("HOST IMAGE-ID"): begin_copy() is true for the one
  /// request that makes a copy, which calls end_copy() when it is over; the others see
  /// copying() and wait (Session::copy_once), so a burst of creates loads an image once.
  bool begin_copy(const std::string& key) {
    std::unique_lock lock(mutex_);
    return copies_.insert(key).second;
  }
  void end_copy(const std::string& key) {
    std::unique_lock lock(mutex_);
    copies_.erase(key);
  }
  [[nodiscard]] bool copying(std::string_view key) const {
    std::shared_lock lock(mutex_);
    return copies_.find(key) != copies_.end();
  }
  /// Containers a migration is switching between hosts (its ids and stored name, from the
  /// twin's creation to the commit or the rollback): a request naming one waits until the
  /// switch is over (Session::hold_while_switching), then reaches it where it runs.
  void begin_switch(const std::vector<std::string>& keys) {
    std::unique_lock lock(mutex_);
    switching_.insert(keys.begin(), keys.end());
    switches_.store(switching_.size(), std::memory_order_release);
  }
  void end_switch(const std::vector<std::string>& keys) {
    std::unique_lock lock(mutex_);
    for (const std::string& key : keys) {
      if (auto it = switching_.find(key); it != switching_.end()) {
        switching_.erase(it);
      }
    }
    switches_.store(switching_.size(), std::memory_order_release);
  }
  /// One atomic load when no migration is under way: every request for a container asks.
  [[nodiscard]] bool switching(std::string_view key) const {
    if (switches_.load(std::memory_order_acquire) == 0) {
      return false;
    }
    std::shared_lock lock(mutex_);
    return switching_.find(key) != switching_.end();
  }
  /// Migrations this proxy drives, by their source's id, from judgement to the end: one at a
  /// time per container, and none of them is taken for one a killed proxy left
  /// (recover_migrations). False when the container's migration is under way already.
  bool begin_migration(const std::string& id) {
    std::unique_lock lock(mutex_);
    migration_epoch_.fetch_add(1, std::memory_order_acq_rel);
    return migrating_.insert(id).second;
  }
  void end_migration(const std::string& id) {
    std::unique_lock lock(mutex_);
    migration_epoch_.fetch_add(1, std::memory_order_acq_rel);
    migrating_.erase(id);
  }
  /// Changes whenever a migration begins or ends: a recovery that read the hosts while it
  /// changed read a migration's passing state, and acts on nothing of it.
  [[nodiscard]] std::uint64_t migration_epoch() const noexcept {
    return migration_epoch_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool migrating(std::string_view id) const {
    std::shared_lock lock(mutex_);
    return migrating_.find(id) != migrating_.end();
  }
  /// berth's own events (a container moved, policy::moved_event) for every `docker events`
  /// stream of a fleet: a stream subscribes a sink for its life; publish_event() calls each,
  /// and a sink hands the line to its stream's own thread.
  std::uint64_t subscribe_events(std::function<void(const std::string&)> sink) {
    std::unique_lock lock(mutex_);
    sinks_.emplace(++next_sink_, std::move(sink));
    return next_sink_;
  }
  void unsubscribe_events(std::uint64_t token) {
    std::unique_lock lock(mutex_);
    sinks_.erase(token);
  }
  void publish_event(const std::string& line) {
    std::vector<std::function<void(const std::string&)>> now;
    {
      std::shared_lock lock(mutex_);
      for (const auto& [token, sink] : sinks_) {
        now.push_back(sink);
      }
    }
    for (const auto& sink : now) {
      sink(line);
    }
  }
  [[nodiscard]] bool ready() const noexcept { return ready_.load(); }
  void mark_ready() noexcept { ready_.store(true); }

 private:
  mutable std::shared_mutex mutex_;
  policy::OwnershipIndex index_;
  std::shared_ptr<const policy::DaemonFacts> facts_ = std::make_shared<policy::DaemonFacts>();
  std::map<std::string, std::shared_ptr<const HostFacts>, std::less<>> hosts_;
  std::map<std::string, std::shared_ptr<const HostUsage>, std::less<>> usage_;
  std::set<std::string, std::less<>> copies_;
  std::multiset<std::string, std::less<>> switching_;
  std::set<std::string, std::less<>> migrating_;
  std::atomic<std::uint64_t> migration_epoch_{0};
  std::map<std::uint64_t, std::function<void(const std::string&)>> sinks_;
  std::uint64_t next_sink_ = 0;
  std::atomic<std::size_t> switches_{0};
  std::atomic<bool> ready_{false};
};

/// A migration of the container `id` held in `index` (SharedIndex::begin_migration) for the
/// guard's life; held() is false when one was under way already.
class MigrationHold {
 public:
  MigrationHold(SharedIndex& index, std::string id)
      : index_(index), id_(std::move(id)), held_(index_.begin_migration(id_)) {}
  MigrationHold(const MigrationHold&) = delete;
  MigrationHold& operator=(const MigrationHold&) = delete;
  ~MigrationHold() {
    if (held_) {
      index_.end_migration(id_);
    }
  }
  [[nodiscard]] bool held() const noexcept { return held_; }

 private:
  SharedIndex& index_;
  std::string id_;
  bool held_;
};

/// Fills `index` from a dockerd reply; shared by the watcher and the on-miss refresh. `host`
/// is the fleet host that answered.
void index_container(SharedIndex& index, std::string_view inspect_json, std::string_view host);
void index_network(SharedIndex& index, std::string_view inspect_json);
void index_volume(SharedIndex& index, std::string_view inspect_json, std::string_view host);
void index_image(SharedIndex& index, std::string_view inspect_json);

/// Asks dockerd about a reference the index does not know (an object created a moment ago,
/// or by another proxy replica, or by the operator directly) and records what it learns.
/// Containers, exec sessions and volumes are asked of every host of a fleet; networks and
/// images of the primary.
net::awaitable<void> refresh_reference(SharedIndex& index, UpstreamPool& pool,
                                       std::shared_ptr<const Runtime> rt, policy::RefKind kind,
                                       std::string tenant, std::string ref);

/// One host's watcher. The primary host's indexes everything; another host's indexes its
/// containers and volumes (networks and images are kept on the primary) and reports its
/// capacity and images for placement.
class IndexWatcher {
 public:
  /// `isolate_bridges`: keep berth's own bridge isolation chain (proxy/bridge_isolation.hpp)
  /// in step with the tenant networks (the primary host's only: the others are not this
  /// machine's).
  IndexWatcher(SharedIndex& index, RuntimeHolder& runtime, bool isolate_bridges = true,
               std::string host = {});
  ~IndexWatcher();
  IndexWatcher(const IndexWatcher&) = delete;
  IndexWatcher& operator=(const IndexWatcher&) = delete;

  void start();
  void stop();
  /// Blocks until the first full synchronisation is done or `timeout` passes.
  bool wait_ready(std::chrono::milliseconds timeout) const;

 private:
  static net::awaitable<void> run(IndexWatcher* self);
  net::awaitable<bool> resync();
  net::awaitable<void> follow_events(std::int64_t since);
  net::awaitable<void> apply_event(std::string_view line);
  net::awaitable<void> apply_container_event(std::string action, std::string id,
                                             nlohmann::json attrs);
  net::awaitable<void> apply_network_event(std::string action, std::string id);
  net::awaitable<void> apply_volume_event(std::string action, std::string id,
                                          nlohmann::json attrs);
  net::awaitable<void> apply_image_event(std::string id);
  void sync_isolation();
  // Re-reads the host's routes into the daemon facts (at a resync and when networks change).
  void refresh_host_routes();
  // This watcher's host in `rt`; null when a reload removed it.
  const HostRuntime* host_in(const Runtime& rt) const;
  [[nodiscard]] bool primary(const Runtime& rt) const { return host_in(rt) == &rt.primary(); }
  net::awaitable<std::expected<DockerReply, error_code>> ask(std::shared_ptr<const Runtime> rt,
                                                              std::string target);
  net::awaitable<void> refresh_image_ids();
  net::awaitable<void> note_published_ports(std::string action, std::string id);
  // Every 5 s, the host's berth-meter (its policy's `meter`), into the index's usage snapshot.
  static net::awaitable<void> follow_meter(IndexWatcher* self);
  net::awaitable<std::optional<std::string>> scrape(const std::string& url);
  // Every 3 s on the primary's watcher of a fleet: migrations a killed proxy or node left,
  // finished or undone (proxy/recovery.hpp).
  static net::awaitable<void> follow_migrations(IndexWatcher* self);
  policy::UsageHistory usage_;

  SharedIndex& index_;
  std::string host_;  // empty: the primary
  RuntimeHolder& runtime_;
  BridgeIsolation isolation_;
  net::io_context context_{1};
  UpstreamPool pool_;
  std::shared_ptr<TlsStream> events_stream_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> synced_{false};  // the first full synchronisation is done
};

}  // namespace berth::proxy
