#pragma once
// The connections from one worker to dockerd: a keep-alive pool, so that a request normally
// costs no connect. dockerd is trusted; berth only protects itself from a dead or restarted
// daemon. A connection that waited in the pool for probe_after or longer is probed before
// reuse (one recv(2) with MSG_PEEK: closed, or holding stray bytes, it is dropped). One
// reused sooner is not probed: that syscall would cost every request on a busy connection,
// and Session::forward sends a bodyless request once more on a new connection when a
// reused one turns out dead before dockerd answered anything.

#include <chrono>
#include <expected>
#include <memory>
#include <vector>

#include "policy/endpoint_table.hpp"
#include "proxy/config.hpp"
#include "proxy/tls_stream.hpp"

namespace berth::proxy {

/// Which dockerd a request goes to: one host of the runtime's fleet. The session chooses it
/// (proxy/route.cpp): the primary, an object's holder, or placement's choice.
struct Target {
  const HostRuntime* host = nullptr;
  [[nodiscard]] const std::string& key() const noexcept { return host->address.text; }
};

/// A read from a reused connection failed this way with nothing received: dockerd had closed
/// the connection before the request reached it, or without answering.
[[nodiscard]] bool closed_before_answer(const error_code& ec) noexcept;

class UpstreamPool {
 public:
  explicit UpstreamPool(net::any_io_executor executor) : executor_(std::move(executor)) {}

  /// take_idle()'s connection, or a new one to `target`.
  net::awaitable<std::expected<std::shared_ptr<TlsStream>, error_code>> acquire(
      std::shared_ptr<const Runtime> rt, Target target);
  /// The same to rt's primary host (berth's own requests: images, networks).
  net::awaitable<std::expected<std::shared_ptr<TlsStream>, error_code>> acquire(
      std::shared_ptr<const Runtime> rt) {
    return acquire(rt, Target{&rt->primary()});
  }

  /// An idle pooled connection to `target` (probed if it waited probe_after or longer), or
  /// null: acquire()'s usual answer without a coroutine (and its frame) per request.
  std::shared_ptr<TlsStream> take_idle(const Runtime& rt, Target target);
  std::shared_ptr<TlsStream> take_idle(const Runtime& rt) {
    return take_idle(rt, Target{&rt.primary()});
  }

  /// Returns a connection to `target` whose last response was read completely and whose
  /// upstream did not ask to close it. Connections to hosts the runtime no longer has (a
  /// reload changed the fleet) are dropped.
  void release(std::shared_ptr<TlsStream> connection, const Runtime& rt, Target target);
  void release(std::shared_ptr<TlsStream> connection, const Runtime& rt) {
    release(std::move(connection), rt, Target{&rt.primary()});
  }

  /// Drops every idle connection (shutdown).
  void clear() noexcept { idle_.clear(); }

  /// `connection`, reused from the pool, turned out closed by dockerd (a restart): closes it
  /// and drops the idle ones to the same target, which went with it.
  void found_dead(TlsStream& connection, Target target) noexcept;
  void found_dead(TlsStream& connection) noexcept {
    connection.close();
    clear();
  }

 private:
  static constexpr std::size_t max_idle = 64;  // per target
  static constexpr std::chrono::seconds probe_after{2};
  struct Idle {
    std::shared_ptr<TlsStream> connection;
    std::chrono::steady_clock::time_point since;
  };
  struct Pool {
    std::string key;
    std::vector<Idle> idle;
  };
  Pool* pool_of(const std::string& key) noexcept;
  net::any_io_executor executor_;
  std::uint64_t generation_ = 0;  // of the runtime whose targets the pools hold
  std::vector<Pool> idle_;  // one per target: a handful, looked up by a string compare
};

}  // namespace berth::proxy
