#pragma once
// A raw client for the hostile-client tests: a TCP connection with or without a TLS session on
// it (OpenSSL, the bundle's certificate, the test CA), blocking with a bound on every wait, that
// can do what real clients never do on purpose: trickle a request byte by byte, cut a handshake
// short, send bytes that are not TLS, pipeline, stop mid-message and reset (RST) the connection.
// Every read and write has a deadline; nothing here waits without one.

#include <openssl/ssl.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::test {

/// One HTTP/1.1 response as read off the wire.
struct WireResponse {
  int status = 0;
  std::string head;  ///< status line and fields, CRLFs included
  std::string body;  ///< de-chunked
  bool close_delimited = false;

  /// The value of the first field `name` (case-insensitive), or "".
  [[nodiscard]] std::string field(std::string_view name) const;
};

class TlsClient {
 public:
  using Clock = std::chrono::steady_clock;

  /// Not connected yet. `bundle`: a directory with ca.pem, cert.pem and key.pem (berthctl's
  /// layout); empty: no client certificate (the CA comes from `ca_file` then).
  TlsClient(std::string host, int port, std::filesystem::path bundle,
            std::filesystem::path ca_file = {});
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;
  ~TlsClient();

  /// TCP connect only (no TLS). False on failure or after `timeout`.
  bool connect_tcp(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// TCP connect and a full TLS handshake.
  bool connect(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Writes all of `bytes` (through TLS once it is up, else raw). False when the peer closed
  /// or the deadline passed.
  bool send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Writes `bytes` straight on the TCP socket, whatever the TLS state (garbage, a cut
  /// ClientHello).
  bool send_raw(std::string_view bytes);

  /// Reads what arrives within `timeout` (at least one byte unless the peer closed or the time
  /// ran out). Empty: nothing, closed, or time out (see peer_closed()).
  std::string read_some(std::chrono::milliseconds timeout);
  /// Reads one response (interim 1xx answers are returned as responses of their own). nullopt
  /// when the connection ended or `timeout` passed first. `head_request`: no body follows.
  std::optional<WireResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::seconds(30), bool head_request = false);

  /// True when the peer has closed the connection (EOF or reset), checked within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  [[nodiscard]] bool peer_closed() const noexcept { return closed_; }

  /// Shuts down the sending side (FIN, after close_notify when TLS is up).
  void shutdown_send();
  /// Ends the connection with a reset: SO_LINGER 0, then close.
  void reset();
  void close();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] bool tls_up() const noexcept { return ssl_ != nullptr; }
  /// Bytes read but not yet consumed by read_response (pipelined answers, a stream's start).
  [[nodiscard]] const std::string& pending() const noexcept { return buffer_; }

 private:
  bool wait(bool for_write, Clock::time_point deadline);
  // One read into buffer_; false on EOF, error or deadline.
  bool fill(Clock::time_point deadline);

  std::string host_;
  int port_;
  std::filesystem::path bundle_;
  std::filesystem::path ca_file_;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool closed_ = false;
  std::string buffer_;
};

/// A request as a client writes it: "METHOD target HTTP/1.1", Host, the given fields, and a
/// Content-Length for a non-empty body.
[[nodiscard]] std::string http_request(std::string_view method, std::string_view target,
                                       std::string_view body = {},
                                       const std::vector<std::string>& fields = {});

}  // namespace berth::test
