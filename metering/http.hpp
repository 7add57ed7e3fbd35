#pragma once
// A small blocking HTTP/1.1 client for the meter's two peers: dockerd on its unix socket (list,
// inspect, the events and stats streams) and the Prometheus HTTP API over TCP (`berthctl usage`).
// One request per connection ("Connection: close"), bounded by a deadline on every wait. Refuses
// responses it cannot frame (bad status line, bad chunk sizes) instead of guessing.

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "metering/fd.hpp"

namespace berth::metering {

/// Where to connect: a unix socket path, or a TCP host and port.
struct HttpEndpoint {
  std::string unix_path;
  std::string host;
  std::uint16_t port = 0;
  std::string path_prefix;  ///< prepended to every target ("/prometheus" behind a proxy)
};

/// "unix:///var/run/docker.sock", "/var/run/docker.sock", "http://host:port[/prefix]".
[[nodiscard]] std::expected<HttpEndpoint, std::string> parse_endpoint(std::string_view url);

struct HttpResponse {
  int status = 0;
  std::string headers;  ///< raw header block, status line included
  std::string body;     ///< de-chunked
};

/// Percent-encodes everything but unreserved characters (RFC 3986), for query values.
[[nodiscard]] std::string url_encode(std::string_view s);

/// Incremental decoder for Transfer-Encoding: chunked.
class ChunkedDecoder {
 public:
  /// Appends the payload found in `in` to `out`. False when the framing is malformed.
  bool feed(std::string_view in, std::string& out);
  /// The terminating zero-size chunk has been seen.
  [[nodiscard]] bool done() const noexcept { return state_ == State::done; }

 private:
  enum class State { size, extension, size_lf, data, data_cr, data_lf, trailer, done };
  State state_ = State::size;
  std::uint64_t remaining_ = 0;
  bool size_digits_ = false;
  bool trailer_line_empty_ = true;
};

/// Splits a complete raw response into status, headers and body (Content-Length, chunked, or
/// everything until close). Interim 1xx responses are skipped.
[[nodiscard]] std::expected<HttpResponse, std::string> parse_response(std::string_view raw);

/// One request; the whole response is read until the server closes.
[[nodiscard]] std::expected<HttpResponse, std::string> http_request(
    const HttpEndpoint& endpoint, std::string_view method, std::string_view target,
    std::string_view body = {}, std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// A GET whose body is consumed line by line as it arrives (dockerd's /events).
class HttpLineStream {
 public:
  /// Connects, sends the request and reads the response head. Non-2xx is an error.
  [[nodiscard]] static std::expected<HttpLineStream, std::string> open(
      const HttpEndpoint& endpoint, std::string_view target, std::chrono::milliseconds timeout);

  /// The next complete line of the body without its '\n'; nullopt when none arrived within
  /// `timeout`; an error at end of stream or on a framing error.
  [[nodiscard]] std::expected<std::optional<std::string>, std::string> next_line(
      std::chrono::milliseconds timeout);

  /// The connection, for poll() over many streams; next_line(0ms) then takes what arrived.
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  Fd fd_;
  bool chunked_ = false;
  ChunkedDecoder decoder_;
  std::string body_;
};

}  // namespace berth::metering
