#include "tests/bench/bench_client.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <optional>

namespace berth::bench {

namespace {

constexpr std::size_t initial_buffer = 16 * 1024;
constexpr std::size_t max_buffer = 4 * 1024 * 1024;  // longest header block or chunk-size line

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool icontains(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) {
    return false;
  }
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (iequals(haystack.substr(i, needle.size()), needle)) {
      return true;
    }
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    if (!out.empty()) {
      out += "; ";
    }
    out += text;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

error_code bad_message() {
  return net::error::make_error_code(net::error::invalid_argument);
}

}  // namespace

std::expected<Endpoint, std::string> parse_target(std::string_view target) {
  Endpoint ep;
  if (target.starts_with("unix:")) {
    std::string_view path = target.substr(5);
    while (path.starts_with("//")) {  // accept unix:///var/run/docker.sock too
      path.remove_prefix(1);
    }
    if (path.empty()) {
      return std::unexpected("empty unix socket path");
    }
    ep.address = Proto::endpoint(net::local::stream_protocol::endpoint(std::string(path)));
    return ep;
  }
  if (target.starts_with("https://")) {
    std::string_view rest = target.substr(8);
    while (rest.ends_with('/')) {
      rest.remove_suffix(1);
    }
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return std::unexpected("https target needs IP:PORT");
    }
    std::uint16_t port = 0;
    const auto port_text = rest.substr(colon + 1);
    const auto [ptr, err] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (err != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0) {
      return std::unexpected("bad port in " + std::string(target));
    }
    std::string host(rest.substr(0, colon));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    error_code ec;
    const auto addr = net::ip::make_address(host, ec);
    if (ec) {
      return std::unexpected("https target needs a numeric IP, got " + host);
    }
    ep.tls = true;
    ep.host = host;
    ep.address = Proto::endpoint(net::ip::tcp::endpoint(addr, port));
    return ep;
  }
  return std::unexpected("target must be unix:/path or https://IP:PORT, got " +
                         std::string(target));
}

std::expected<SslCtxPtr, std::string> make_client_tls(const std::string& ca,
                                                      const std::string& cert,
                                                      const std::string& key) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    return std::unexpected(openssl_errors());
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A new docker CLI process has no session cache: every connection is a full handshake.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
    return std::unexpected("CA " + ca + ": " + openssl_errors());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return std::unexpected("certificate " + cert + ": " + openssl_errors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected("key " + key + ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return std::unexpected("key does not match certificate: " + openssl_errors());
  }
  return ctx;
}

Client::Client(const net::any_io_executor& ex) : sock_(ex), buf_(initial_buffer) {}

net::awaitable<error_code> Client::open(Endpoint ep, SSL_CTX* tls) {
  error_code ec;
  co_await sock_.async_connect(ep.address, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    co_return ec;
  }
  if (!ep.tls) {
    co_return ec;
  }
  sock_.set_option(net::ip::tcp::no_delay(true), ec);
  if (ec) {
    co_return ec;
  }
  sock_.native_non_blocking(true, ec);
  if (ec) {
    co_return ec;
  }
  ssl_.reset(SSL_new(tls));
  if (!ssl_ || SSL_set_fd(ssl_.get(), sock_.native_handle()) != 1) {
    co_return net::error::make_error_code(net::error::no_memory);
  }
  // The server certificate must name the IP we dialled, as the docker CLI checks.
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), ep.host.c_str());
  for (;;) {
    ERR_clear_error();
    const int ret = SSL_connect(ssl_.get());
    if (ret == 1) {
      co_return error_code{};
    }
    ec = co_await await_ssl(ret);
    if (ec) {
      co_return ec;
    }
  }
}

// Turns an OpenSSL "not done" result into a wait on the socket (empty error: call again) or
// an error; a clean close_notify and a bare TCP EOF are both reported as eof.
net::awaitable<error_code> Client::await_ssl(int ret) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl_.get(), ret);
  error_code ec;
  switch (err) {
    case SSL_ERROR_WANT_READ:
      co_await sock_.async_wait(Proto::socket::wait_read,
                                net::redirect_error(net::use_awaitable, ec));
      co_return ec;
    case SSL_ERROR_WANT_WRITE:
      co_await sock_.async_wait(Proto::socket::wait_write,
                                net::redirect_error(net::use_awaitable, ec));
      co_return ec;
    case SSL_ERROR_ZERO_RETURN:
      co_return net::error::make_error_code(net::error::eof);
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0 && saved_errno == 0) {
        ssl_failed_ = true;
        co_return net::error::make_error_code(net::error::eof);
      }
      if (ERR_peek_error() != 0) {
        ssl_failed_ = true;
        const unsigned long e = ERR_get_error();
        ERR_clear_error();
        co_return error_code(static_cast<int>(e), net::error::get_ssl_category());
      }
      ssl_failed_ = true;
      co_return error_code(saved_errno, boost::system::system_category());
    default: {
      ssl_failed_ = true;
      const unsigned long e = ERR_get_error();
      ERR_clear_error();
      co_return error_code(static_cast<int>(e), net::error::get_ssl_category());
    }
  }
}

net::awaitable<error_code> Client::write_all(std::string data) {
  error_code ec;
  if (!ssl_) {
    co_await net::async_write(sock_, net::buffer(data),
                              net::redirect_error(net::use_awaitable, ec));
    co_return ec;
  }
  std::size_t off = 0;
  while (off < data.size()) {
    std::size_t written = 0;
    ERR_clear_error();
    const int ret = SSL_write_ex(ssl_.get(), data.data() + off, data.size() - off, &written);
    if (ret == 1) {
      off += written;
      continue;
    }
    ec = co_await await_ssl(ret);
    if (ec) {
      co_return ec;
    }
  }
  co_return ec;
}

void Client::reserve_read_buffer(std::size_t bytes) {
  if (buf_.size() < bytes) {
    buf_.resize(bytes);
  }
}

net::awaitable<error_code> Client::read_more() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (end_ == buf_.size() && begin_ > 0) {
    std::copy(buf_.begin() + static_cast<std::ptrdiff_t>(begin_),
              buf_.begin() + static_cast<std::ptrdiff_t>(end_), buf_.begin());
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) {
    if (buf_.size() >= max_buffer) {
      co_return net::error::make_error_code(net::error::message_size);
    }
    buf_.resize(buf_.size() * 2);
  }
  char* const out = buf_.data() + end_;
  const std::size_t room = buf_.size() - end_;
  error_code ec;
  if (!ssl_) {
    const std::size_t got = co_await sock_.async_read_some(
        net::buffer(out, room), net::redirect_error(net::use_awaitable, ec));
    end_ += got;
    co_return ec;
  }
  for (;;) {
    std::size_t got = 0;
    ERR_clear_error();
    const int ret = SSL_read_ex(ssl_.get(), out, room, &got);
    if (ret == 1) {
      end_ += got;
      co_return error_code{};
    }
    ec = co_await await_ssl(ret);
    if (ec) {
      co_return ec;
    }
  }
}

net::awaitable<error_code> Client::consume(std::uint64_t n) {
  while (n > 0) {
    if (begin_ == end_) {
      const error_code ec = co_await read_more();
      if (ec) {
        co_return ec;
      }
    }
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, end_ - begin_));
    if (keep_body_) {
      body_.append(buf_.data() + begin_, take);
    }
    begin_ += take;
    n -= take;
  }
  co_return error_code{};
}

// Makes sure a whole CRLF-terminated line is buffered; returns its length without the CRLF.
net::awaitable<std::expected<std::size_t, error_code>> Client::find_line_end() {
  for (;;) {
    const std::string_view have(buf_.data() + begin_, end_ - begin_);
    const auto pos = have.find("\r\n");
    if (pos != std::string_view::npos) {
      co_return pos;
    }
    const error_code ec = co_await read_more();
    if (ec) {
      co_return std::unexpected(ec);
    }
  }
}

net::awaitable<std::expected<std::uint64_t, error_code>> Client::read_chunked() {
  std::uint64_t total = 0;
  for (;;) {
    const auto line = co_await find_line_end();
    if (!line) {
      co_return std::unexpected(line.error());
    }
    std::string_view size_text(buf_.data() + begin_, *line);
    size_text = trim(size_text.substr(0, size_text.find(';')));
    std::uint64_t size = 0;
    const auto [ptr, err] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (err != std::errc{} || ptr != size_text.data() + size_text.size()) {
      co_return std::unexpected(bad_message());
    }
    begin_ += *line + 2;
    if (size == 0) {
      for (;;) {  // trailer section up to the empty line
        const auto trailer = co_await find_line_end();
        if (!trailer) {
          co_return std::unexpected(trailer.error());
        }
        begin_ += *trailer + 2;
        if (*trailer == 0) {
          co_return total;
        }
      }
    }
    if (const error_code ec = co_await consume(size); ec) {
      co_return std::unexpected(ec);
    }
    total += size;
    const auto crlf = co_await find_line_end();
    if (!crlf) {
      co_return std::unexpected(crlf.error());
    }
    if (*crlf != 0) {
      co_return std::unexpected(bad_message());
    }
    begin_ += 2;
  }
}

net::awaitable<std::expected<Response, error_code>> Client::read_response(bool keep_body) {
  std::size_t header_len = 0;
  for (;;) {
    const std::string_view have(buf_.data() + begin_, end_ - begin_);
    const auto pos = have.find("\r\n\r\n");
    if (pos != std::string_view::npos) {
      header_len = pos + 4;
      break;
    }
    const error_code ec = co_await read_more();
    if (ec) {
      co_return std::unexpected(ec);
    }
  }
  Response res;
  const std::string_view head(buf_.data() + begin_, header_len - 2);
  auto line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    co_return std::unexpected(bad_message());
  }
  const bool http10 = status_line[7] == '0';
  {
    const auto code = status_line.substr(9, 3);
    const auto [ptr, err] = std::from_chars(code.data(), code.data() + code.size(), res.status);
    if (err != std::errc{} || ptr != code.data() + code.size()) {
      co_return std::unexpected(bad_message());
    }
  }
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  res.keep_alive = !http10;
  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    line_end = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, line_end - pos);
    pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      const auto [ptr, err] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (err != std::errc{} || ptr != value.data() + value.size()) {
        co_return std::unexpected(bad_message());
      }
      content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = icontains(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (icontains(value, "close")) {
        res.keep_alive = false;
      } else if (icontains(value, "keep-alive")) {
        res.keep_alive = true;
      }
    }
  }
  begin_ += header_len;
  if (res.status / 100 == 1 || res.status == 204 || res.status == 304) {
    co_return res;  // no body; for 101 the upgraded stream follows in the buffer
  }
  keep_body_ = keep_body;
  body_.clear();
  error_code ec;
  if (chunked) {
    // Counted while decoding: body_ only grows when the caller keeps the body.
    const auto n = co_await read_chunked();
    if (n) {
      res.body_bytes = *n;
    } else {
      ec = n.error();
    }
  } else if (content_length) {
    ec = co_await consume(*content_length);
    res.body_bytes = *content_length;
  } else {
    // Neither length nor chunked: the body runs to EOF and the connection is done.
    res.keep_alive = false;
    for (;;) {
      res.body_bytes += end_ - begin_;
      ec = co_await consume(end_ - begin_);
      if (ec) {
        break;
      }
      ec = co_await read_more();
      if (ec) {
        break;
      }
    }
    if (ec == net::error::eof) {
      ec = {};
    }
  }
  if (ec) {
    co_return std::unexpected(ec);
  }
  if (keep_body) {
    res.body = std::move(body_);
    body_.clear();
  }
  keep_body_ = false;
  co_return res;
}

net::awaitable<std::expected<Response, error_code>> Client::request(std::string data,
                                                                    bool keep_body) {
  const error_code ec = co_await write_all(std::move(data));
  if (ec) {
    co_return std::unexpected(ec);
  }
  auto res = co_await read_response(keep_body);
  co_return res;
}

net::awaitable<error_code> Client::close_write() {
  error_code ec;
  if (!ssl_) {
    sock_.shutdown(Proto::socket::shutdown_send, ec);
    co_return ec;
  }
  // One SSL_shutdown sends close_notify; after that only SSL_read may be used (a second
  // SSL_shutdown would try to read the peer's close_notify and swallow stream data).
  for (;;) {
    ERR_clear_error();
    const int ret = SSL_shutdown(ssl_.get());
    if (ret >= 0) {
      co_return error_code{};
    }
    ec = co_await await_ssl(ret);
    if (ec) {
      co_return ec;
    }
  }
}

void Client::close() {
  if (ssl_ && !ssl_failed_ && (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());  // best effort, non-blocking
    ERR_clear_error();
  }
  error_code ignored;
  sock_.close(ignored);
}

}  // namespace berth::bench
