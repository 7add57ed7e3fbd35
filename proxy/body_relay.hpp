#pragma once
// One exchange's response body streamed into another's chunked request body, window by
// window, never held whole: an image's save into a host's load (proxy/image_copy.cpp), a
// container's checkpoint from one berth-node into another (proxy/migrate.cpp). A watchdog
// closes both connections when no byte moved for too long.

#include <chrono>
#include <cstdint>
#include <memory>

#include "proxy/net.hpp"
#include "proxy/tls_stream.hpp"

namespace berth::proxy {

struct RelayProgress {
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  std::uint64_t bytes = 0;
  bool done = false;
  bool stalled = false;
};

/// A relay in which no byte moved for this long is given up.
inline constexpr auto relay_stall = std::chrono::seconds(120);

/// Closes both connections once `progress` stalled (their reads and writes then fail at
/// once); ends when progress->done is set.
net::awaitable<void> watch_relay(std::shared_ptr<RelayProgress> progress,
                                 std::shared_ptr<TlsStream> source,
                                 std::shared_ptr<TlsStream> target);

/// The rest of `response`'s body (its head already read from `from`) written to `to` as the
/// chunked body of a request whose head is already written there, its last chunk included.
/// Returns the first error.
net::awaitable<error_code> relay_body(TlsStream& from, beast::flat_buffer& buffer,
                                      http::response_parser<http::buffer_body>& response,
                                      TlsStream& to, RelayProgress& progress);

}  // namespace berth::proxy
