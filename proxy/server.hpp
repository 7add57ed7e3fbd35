#pragma once
// The listener: share-nothing workers, one io_context and one SO_REUSEPORT acceptor per thread,
// each with its own upstream pool and session registry; sessions never migrate. The process
// handles SIGHUP (reload policy and certificates: build, validate, swap; the old snapshot stays
// on error) and SIGTERM/SIGINT (stop accepting, close idle connections, let running requests
// and streams finish until the grace deadline, then close the rest).

#include <signal.h>

#include <atomic>
#include <chrono>
#include <expected>
#include <string>
#include <list>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/audit.hpp"
#include "proxy/client_limits.hpp"
#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net.hpp"
#include "proxy/ownership.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

class Session;

class Worker {
 public:
  /// The counters are shared by every worker: a client's connections count wherever they
  /// land.
  struct Counters {
    ConnectionCounter addresses;
    ConnectionCounter handshakes;
    ConnectionCounter certificates;
  };
  Worker(RuntimeHolder& runtime, SharedIndex& index, AuditLog& audit, Metrics& metrics,
         const ClientLimits& limits, Counters& counters);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Binds this worker's acceptor (SO_REUSEPORT, so every worker binds the same port).
  [[nodiscard]] error_code listen(const net::ip::tcp::endpoint& endpoint);
  [[nodiscard]] unsigned short port() const;
  void start();
  /// Thread-safe: posts the shutdown into this worker.
  void begin_shutdown(std::chrono::seconds grace);
  void run() { context_.run(); }

  RuntimeHolder& runtime() noexcept { return runtime_; }
  SharedIndex& index() noexcept { return index_; }
  AuditLog& audit() noexcept { return audit_; }
  Metrics& metrics() noexcept { return metrics_; }
  /// Thread-safe: after a reload, closes connections whose certificate no longer verifies
  /// (revoked, or its CA removed).
  void revalidate(std::shared_ptr<const Runtime> rt);
  UpstreamPool& pool() noexcept { return pool_; }
  [[nodiscard]] bool draining() const noexcept { return draining_; }
  /// Deadlines and connection caps for clients.
  [[nodiscard]] const ClientLimits& limits() const noexcept { return limits_; }
  [[nodiscard]] Counters& counters() noexcept { return counters_; }
  /// The last time this worker's loop ran its sweep (once a second while it makes progress),
  /// read by the watchdog from another thread.
  [[nodiscard]] std::chrono::steady_clock::time_point heartbeat() const noexcept {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(heartbeat_.load(std::memory_order_relaxed)));
  }
  /// Watchdog, from another thread: takes this worker's listener out of the SO_REUSEPORT
  /// group (shutdown(2) on its descriptor, which stays open), so the kernel stops queueing
  /// new connections to a worker that no longer accepts them.
  void isolate() noexcept;
  net::io_context& context() noexcept { return context_; }

 private:
  static net::awaitable<void> accept_loop(Worker* self);
  /// Once a second: closes sessions past their deadline, drops the entries of ended ones.
  void sweep();
  void shutdown_now(std::chrono::seconds grace);

  RuntimeHolder& runtime_;
  SharedIndex& index_;
  AuditLog& audit_;
  Metrics& metrics_;
  const ClientLimits& limits_;
  Counters& counters_;
  std::atomic<std::chrono::steady_clock::rep> heartbeat_;
  // One thread runs this context and owns every socket and timer on it; other threads only
  // post to it. So the reactor's per-descriptor locks are left out (the scheduler's stay, for
  // those posts): a lock and an unlock fewer per I/O operation.
  net::io_context context_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  net::ip::tcp::acceptor acceptor_;
  int acceptor_native_ = -1;  // for isolate(), from the watchdog's thread
  std::chrono::steady_clock::time_point last_refusal_log_{};
  UpstreamPool pool_;
  std::list<std::weak_ptr<Session>> sessions_;
  net::steady_timer grace_timer_;
  net::steady_timer sweep_timer_;
  bool draining_ = false;
};

class Server {
 public:
  Server(Options options, std::shared_ptr<const Runtime> initial);
  /// Binds, prints "berth-proxy: ready on port N", serves until SIGTERM/SIGINT and the grace
  /// period are over. Returns the process exit status.
  int run();

 private:
  // The signal thread's context: SIGTERM, SIGINT and SIGHUP, the policy files' watcher, the
  // workers' watchdog and the forced exit past the grace period.
  struct Signals {
    net::io_context context{1};
    net::signal_set set{context, SIGTERM, SIGINT, SIGHUP};
    net::steady_timer file_timer{context};
    net::steady_timer watchdog_timer{context};
    net::steady_timer exit_timer{context};
  };

  std::expected<net::ip::tcp::endpoint, std::string> open_listeners();
  void on_signal(int sig, Signals& s);
  void wait_for_signal(Signals& s);
  void reload();
  void watch_files(net::steady_timer& timer);
  void watch_workers(net::steady_timer& timer);
  // The fleet's hosts on the metrics listener (berth_proxy_fleet_*), with the watchdog.
  void report_hosts(std::chrono::steady_clock::time_point now);
  std::string file_stamp() const;

  std::string stamp_;
  Options options_;
  RuntimeHolder runtime_;
  SharedIndex index_;
  AuditLog audit_;
  Metrics metrics_;
  std::atomic<std::uint64_t> generation_{1};
  Worker::Counters counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  /// One per host; started by run(), and by reload() for a host it adds (the signal thread).
  std::vector<std::unique_ptr<IndexWatcher>> watchers_;
  std::vector<bool> stalled_;  // the watchdog's view, on the signal thread only
};

}  // namespace berth::proxy
