#pragma once
// The proxy side of the ownership index: one index shared by every worker behind a
// reader/writer lock (never held across a co_await), and the watcher that builds it from
// dockerd's lists at start and keeps it current from dockerd's event stream, resynchronising
// in full whenever the stream drops (dockerd restart) so nothing is missed.

#include <atomic>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"
#include "proxy/bridge_isolation.hpp"
#include "proxy/config.hpp"
#include "proxy/net.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

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
  [[nodiscard]] bool ready() const noexcept { return ready_.load(); }
  void mark_ready() noexcept { ready_.store(true); }

 private:
  mutable std::shared_mutex mutex_;
  policy::OwnershipIndex index_;
  std::shared_ptr<const policy::DaemonFacts> facts_ = std::make_shared<policy::DaemonFacts>();
  std::atomic<bool> ready_{false};
};

/// Fills `index` from a dockerd reply; shared by the watcher and the on-miss refresh.
void index_container(SharedIndex& index, std::string_view inspect_json);
void index_network(SharedIndex& index, std::string_view inspect_json);
void index_volume(SharedIndex& index, std::string_view inspect_json);
void index_image(SharedIndex& index, std::string_view inspect_json);

/// Asks dockerd about a reference the index does not know (an object created a moment ago,
/// or by another proxy replica, or by the operator directly) and records what it learns.
net::awaitable<void> refresh_reference(SharedIndex& index, UpstreamPool& pool,
                                       std::shared_ptr<const Runtime> rt, policy::RefKind kind,
                                       std::string tenant, std::string ref);

class IndexWatcher {
 public:
  /// `isolate_bridges`: keep berth's own bridge isolation chain (proxy/bridge_isolation.hpp)
  /// in step with the tenant networks.
  IndexWatcher(SharedIndex& index, RuntimeHolder& runtime, bool isolate_bridges = true);
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

  SharedIndex& index_;
  RuntimeHolder& runtime_;
  BridgeIsolation isolation_;
  net::io_context context_{1};
  UpstreamPool pool_;
  std::shared_ptr<TlsStream> events_stream_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace berth::proxy
