#pragma once
// The one place that includes Asio and Beast. <utility> comes first: Boost 1.74's Asio fails
// to compile co_await code under g++ 12 without it (fixed upstream in 1.79).

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace berth::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

/// Completion token for coroutine I/O whose failure is expected (EOF, reset, timeout): the
/// error lands in `ec` instead of being thrown.
inline auto with_ec(error_code& ec) { return net::redirect_error(net::use_awaitable, ec); }

}  // namespace berth::proxy
