#include "tests/support/tls_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace berth::test {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

int remaining_ms(TlsClient::Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - TlsClient::Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string WireResponse::field(std::string_view name) const {
  const std::string wanted = lower(name) + ":";
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    const std::size_t start = at + 2;
    const std::size_t end = head.find("\r\n", start);
    const std::string line = head.substr(start, end - start);
    if (lower(line).starts_with(wanted)) {
      std::string value = line.substr(wanted.size());
      while (!value.empty() && value.front() == ' ') {
        value.erase(0, 1);
      }
      return value;
    }
    at = end;
  }
  return {};
}

TlsClient::TlsClient(std::string host, int port, std::filesystem::path bundle,
                     std::filesystem::path ca_file)
    : host_(std::move(host)), port_(port), bundle_(std::move(bundle)),
      ca_file_(std::move(ca_file)) {}

TlsClient::~TlsClient() { close(); }

bool TlsClient::connect_tcp(std::chrono::milliseconds timeout) {
  close();
  closed_ = false;
  buffer_.clear();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found) != 0) {
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      continue;
    }
    fd_ = fd;
    if (!wait(true, deadline)) {
      ::close(fd_);
      fd_ = -1;
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd_ >= 0) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd_ >= 0;
}

bool TlsClient::connect(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!connect_tcp(timeout)) {
    return false;
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    return false;
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  const std::filesystem::path ca = bundle_.empty() ? ca_file_ : bundle_ / "ca.pem";
  if (SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1) {
    return false;
  }
  if (!bundle_.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx_, (bundle_ / "cert.pem").c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx_, (bundle_ / "key.pem").c_str(), SSL_FILETYPE_PEM) != 1)) {
    return false;
  }
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd_);
  // SSL_set_tlsext_host_name, without its C cast.
  SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           const_cast<char*>("localhost"));
  SSL_set_connect_state(ssl);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
      ssl_ = ssl;
      return true;
    }
    const int e = SSL_get_error(ssl, r);
    if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
        !wait(e == SSL_ERROR_WANT_WRITE, deadline)) {
      SSL_free(ssl);
      ERR_clear_error();
      return false;
    }
  }
}

bool TlsClient::wait(bool for_write, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) {
      return true;
    }
    if (r == 0 || errno != EINTR) {
      return false;
    }
  }
}

bool TlsClient::send_raw(std::string_view bytes) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait(true, deadline)) {
      continue;
    }
    return false;
  }
  return true;
}

bool TlsClient::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (fd_ < 0) {
    return false;
  }
  if (ssl_ == nullptr) {
    return send_raw(bytes);
  }
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    ERR_clear_error();
    std::size_t written = 0;
    const int r = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written);
    if (r == 1) {
      bytes.remove_prefix(written);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if ((e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) &&
        wait(e == SSL_ERROR_WANT_WRITE, deadline)) {
      continue;
    }
    ERR_clear_error();
    return false;
  }
  return true;
}

bool TlsClient::fill(Clock::time_point deadline) {
  if (fd_ < 0 || closed_) {
    return false;
  }
  char chunk[16384];
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      std::size_t got = 0;
      const int r = SSL_read_ex(ssl_, chunk, sizeof chunk, &got);
      if (r == 1) {
        buffer_.append(chunk, got);
        return true;
      }
      const int e = SSL_get_error(ssl_, r);
      if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
          wait(e == SSL_ERROR_WANT_WRITE, deadline)) {
        continue;
      }
      ERR_clear_error();
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        closed_ = true;
      }
      return false;
    }
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait(false, deadline)) {
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      closed_ = true;
    }
    return false;
  }
}

std::string TlsClient::read_some(std::chrono::milliseconds timeout) {
  if (buffer_.empty()) {
    fill(Clock::now() + timeout);
  }
  return std::exchange(buffer_, std::string());
}

bool TlsClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!closed_ && Clock::now() < deadline) {
    buffer_.clear();
    if (!fill(deadline) && !closed_ && Clock::now() >= deadline) {
      break;
    }
  }
  return closed_;
}

std::optional<WireResponse> TlsClient::read_response(std::chrono::milliseconds timeout,
                                                     bool head_request) {
  const auto deadline = Clock::now() + timeout;
  std::size_t head_end = std::string::npos;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) {
      return std::nullopt;
    }
  }
  WireResponse r;
  r.head = buffer_.substr(0, head_end + 2);
  buffer_.erase(0, head_end + 4);
  if (r.head.size() < 12 || !r.head.starts_with("HTTP/1.")) {
    return std::nullopt;
  }
  r.status = std::atoi(r.head.c_str() + 9);
  if (head_request || r.status < 200 || r.status == 204 || r.status == 304) {
    return r;
  }
  const std::string length = r.field("Content-Length");
  if (lower(r.field("Transfer-Encoding")) == "chunked") {
    for (;;) {
      std::size_t eol = std::string::npos;
      while ((eol = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill(deadline)) {
          return std::nullopt;
        }
      }
      const std::size_t size = std::stoul(buffer_.substr(0, eol), nullptr, 16);
      while (buffer_.size() < eol + 2 + size + 2) {
        if (!fill(deadline)) {
          return std::nullopt;
        }
      }
      r.body += buffer_.substr(eol + 2, size);
      buffer_.erase(0, eol + 2 + size + 2);
      if (size == 0) {
        return r;
      }
    }
  }
  if (!length.empty()) {
    const std::size_t n = std::stoul(length);
    while (buffer_.size() < n) {
      if (!fill(deadline)) {
        return std::nullopt;
      }
    }
    r.body = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return r;
  }
  r.close_delimited = true;
  while (fill(deadline)) {
  }
  r.body = std::exchange(buffer_, std::string());
  return r;
}

void TlsClient::shutdown_send() {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
  }
}

void TlsClient::reset() {
  if (fd_ >= 0) {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close();
}

void TlsClient::close() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ctx_ != nullptr) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::string http_request(std::string_view method, std::string_view target, std::string_view body,
                         const std::vector<std::string>& fields) {
  std::string out = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: docker\r\n";
  bool has_length = false;
  for (const auto& f : fields) {
    out += f + "\r\n";
    has_length = has_length || lower(f).starts_with("content-length:") ||
                 lower(f).starts_with("transfer-encoding:");
  }
  if (!body.empty() && !has_length) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace berth::test
