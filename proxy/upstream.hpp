#pragma once
// The connections from one worker to dockerd: a keep-alive pool, so that a request normally
// costs no connect. dockerd is trusted; berth only protects itself from a dead or restarted
// daemon (stale pooled connections are detected before reuse).

#include <expected>
#include <memory>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/tls_stream.hpp"

namespace berth::proxy {

class UpstreamPool {
 public:
  explicit UpstreamPool(net::any_io_executor executor) : executor_(std::move(executor)) {}

  /// An idle pooled connection to rt's upstream that is still open, or a new one.
  net::awaitable<std::expected<std::shared_ptr<TlsStream>, error_code>> acquire(
      std::shared_ptr<const Runtime> rt);

  /// An idle pooled connection to rt's upstream that is still open, or null: acquire()'s
  /// usual answer without a coroutine (and its frame) per request.
  std::shared_ptr<TlsStream> take_idle(const Runtime& rt);

  /// Returns a connection whose last response was read completely and whose upstream did not
  /// ask to close it.
  void release(std::shared_ptr<TlsStream> connection, const Runtime& rt);

  /// Drops every idle connection (shutdown).
  void clear() noexcept { idle_.clear(); }

 private:
  static constexpr std::size_t max_idle = 64;
  net::any_io_executor executor_;
  std::string idle_key_;
  std::vector<std::shared_ptr<TlsStream>> idle_;
};

}  // namespace berth::proxy
