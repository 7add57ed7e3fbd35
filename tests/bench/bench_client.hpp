// berth-bench client connection: one HTTP/1.1 client over either dockerd's unix socket (plain)
// or mTLS over TCP, with hand-written response framing (Content-Length, chunked, read-to-EOF,
// 101 upgrade).
//
// TLS is driven by OpenSSL directly on the non-blocking socket (SSL_set_fd + async_wait)
// rather than through asio::ssl::stream, for two reasons:
//  - close_write() must send exactly one close_notify and keep reading, as Go's
//    tls.Conn.CloseWrite() does in the docker CLI after an exec upgrade; asio's async_shutdown
//    insists on reading the peer's close_notify, which would eat the exec stream;
//  - no extra copy through a BIO pair, so the load generator spends less of the two shared
//    cores than the servers it measures.
// A connection is used by one coroutine at a time (never a read and a write in parallel).
#pragma once

#include <utility>  // Boost 1.74 Asio needs <utility> before its headers for co_await

#include <openssl/ssl.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace berth::bench {

namespace net = boost::asio;
using boost::system::error_code;
using Proto = net::generic::stream_protocol;

/// Where the server under test listens: `unix:/path` (plain HTTP) or `https://IP:PORT` (mTLS).
struct Endpoint {
  bool tls = false;
  std::string host;  // numeric IP for https targets, checked against the server certificate
  Proto::endpoint address;
};

/// Parses a target string; the error names what was wrong.
std::expected<Endpoint, std::string> parse_target(std::string_view target);

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};

struct SslDeleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

/// A client context that verifies the server against `ca`, presents `cert`/`key`, and never
/// resumes a session (every connection pays a full handshake, as a fresh docker CLI does).
std::expected<SslCtxPtr, std::string> make_client_tls(const std::string& ca,
                                                      const std::string& cert,
                                                      const std::string& key);

struct Response {
  int status = 0;
  std::uint64_t body_bytes = 0;
  bool keep_alive = true;
  std::string body;  // only filled when asked for
};

class Client {
 public:
  explicit Client(const net::any_io_executor& ex);

  /// Connects and, for TLS endpoints, completes a full handshake with `tls` (must outlive this).
  net::awaitable<error_code> open(Endpoint ep, SSL_CTX* tls);

  /// Sends `data` completely.
  net::awaitable<error_code> write_all(std::string data);

  /// Reads one response; returns after the headers for 1xx (the upgraded stream's first bytes
  /// stay buffered). Bodies are counted, and kept only if `keep_body`.
  net::awaitable<std::expected<Response, error_code>> read_response(bool keep_body);

  /// write_all + read_response.
  net::awaitable<std::expected<Response, error_code>> request(std::string data, bool keep_body);

  /// Reads whatever arrives next into the buffer; net::error::eof at a clean end of stream.
  net::awaitable<error_code> read_more();

  /// Bytes buffered and not yet consumed; discard_buffered() drops them.
  std::size_t buffered() const { return end_ - begin_; }
  /// The buffered bytes themselves.
  std::string_view buffered_view() const { return {buf_.data() + begin_, end_ - begin_}; }

  void discard_buffered() { begin_ = end_ = 0; }

  /// Grows the read buffer (bulk streams read in bigger slices).
  void reserve_read_buffer(std::size_t bytes);

  /// Half-closes our sending side: TLS close_notify (like Go's tls.Conn.CloseWrite, used by the
  /// docker CLI after an exec upgrade) or shutdown(SHUT_WR) on the unix socket. Reading goes on.
  net::awaitable<error_code> close_write();

  /// Closes at once; for TLS a close_notify is attempted first, without waiting for the peer's.
  void close();

 private:
  net::awaitable<error_code> await_ssl(int ret);
  net::awaitable<error_code> consume(std::uint64_t n);
  net::awaitable<std::expected<std::size_t, error_code>> find_line_end();
  /// Decodes a chunked body; returns its decoded size.
  net::awaitable<std::expected<std::uint64_t, error_code>> read_chunked();

  Proto::socket sock_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  bool ssl_failed_ = false;  // after SSL_ERROR_SSL/SYSCALL, SSL_shutdown must not be called
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool keep_body_ = false;
  std::string body_;
};

}  // namespace berth::bench
