#include "metering/http.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace berth::metering {
namespace {

using Clock = std::chrono::steady_clock;

int millis_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

/// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, millis_left(deadline));
    if (r > 0) {
      return true;
    }
    if (r == 0 || errno != EINTR) {
      return false;
    }
  }
}

std::expected<Fd, std::string> connect_to(const HttpEndpoint& ep, Clock::time_point deadline) {
  if (!ep.unix_path.empty()) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      return std::unexpected(std::string("socket: ") + std::generic_category().message(errno));
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof addr.sun_path) {
      return std::unexpected("socket path too long: " + ep.unix_path);
    }
    std::memcpy(addr.sun_path, ep.unix_path.data(), ep.unix_path.size());
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API demands it
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      return std::unexpected("connect " + ep.unix_path + ": " + std::generic_category().message(errno));
    }
    return fd;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  if (const int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return std::unexpected("resolve " + ep.host + ": " + ::gai_strerror(rc));
  }
  std::string last_error = "no address for " + ep.host;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS || !wait_for(fd.get(), POLLOUT, deadline)) {
        last_error = "connect " + ep.host + ":" + port + ": " + std::generic_category().message(errno);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = "connect " + ep.host + ":" + port + ": " + std::generic_category().message(err);
        continue;
      }
    }
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return std::unexpected(last_error);
}

bool send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        return false;
      }
    } else {
      return false;
    }
  }
  return true;
}

/// Reads what is available, waiting until `deadline`. 0 on end of stream, -1 on error or
/// timeout (errno ETIMEDOUT), else the byte count.
ssize_t recv_some(int fd, std::string& into, Clock::time_point deadline) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0) {
      into.append(buf, static_cast<std::size_t>(n));
      return n;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN) {
      return -1;
    }
    if (!wait_for(fd, POLLIN, deadline)) {
      errno = ETIMEDOUT;
      return -1;
    }
  }
}

std::string request_text(const HttpEndpoint& ep, std::string_view method, std::string_view target,
                         std::string_view body) {
  std::string req;
  req.append(method).append(" ").append(ep.path_prefix).append(target).append(" HTTP/1.1\r\n");
  req.append("Host: ").append(ep.unix_path.empty() ? ep.host : std::string("docker"));
  req.append("\r\nUser-Agent: berth-meter\r\nAccept: application/json\r\nConnection: close\r\n");
  if (!body.empty() || method == "POST") {
    req.append("Content-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n");
  }
  req.append("\r\n").append(body);
  return req;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

/// The value of header `name` (case-insensitive) in a raw header block.
std::optional<std::string> header(std::string_view headers, std::string_view name) {
  std::size_t pos = headers.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < headers.size()) {
    pos += 2;
    const auto eol = headers.find("\r\n", pos);
    const std::string_view line = headers.substr(pos, eol - pos);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos && lower(line.substr(0, colon)) == lower(name)) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
        v.remove_prefix(1);
      }
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
        v.remove_suffix(1);
      }
      return std::string(v);
    }
    pos = eol;
  }
  return std::nullopt;
}

struct Head {
  int status = 0;
  std::string headers;
  std::size_t body_offset = 0;
};

/// Parses the first non-1xx response head in `raw`; nullopt if incomplete.
std::expected<std::optional<Head>, std::string> parse_head(std::string_view raw) {
  std::size_t offset = 0;
  for (;;) {
    const std::string_view rest = raw.substr(offset);
    const auto end = rest.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (rest.size() >= 5 && !rest.starts_with("HTTP/")) {
        return std::unexpected("not an HTTP response");
      }
      return std::optional<Head>{};
    }
    if (!rest.starts_with("HTTP/1.") || rest.size() < 12 || rest[8] != ' ') {
      return std::unexpected("bad status line");
    }
    int status = 0;
    const auto [ptr, ec] = std::from_chars(rest.data() + 9, rest.data() + 12, status);
    if (ec != std::errc{} || ptr != rest.data() + 12 || status < 100) {
      return std::unexpected("bad status code");
    }
    if (status < 200) {
      offset += end + 4;
      continue;
    }
    return Head{status, std::string(rest.substr(0, end + 2)), offset + end + 4};
  }
}

}  // namespace

std::expected<HttpEndpoint, std::string> parse_endpoint(std::string_view url) {
  HttpEndpoint ep;
  if (url.starts_with("unix://")) {
    url.remove_prefix(7);
  }
  if (url.starts_with("/")) {
    ep.unix_path = std::string(url);
    return ep;
  }
  if (!url.starts_with("http://")) {
    return std::unexpected("expected unix:///path or http://host:port, got '" + std::string(url) +
                           "'");
  }
  url.remove_prefix(7);
  const auto slash = url.find('/');
  if (slash != std::string_view::npos) {
    ep.path_prefix = std::string(url.substr(slash));
    while (ep.path_prefix.ends_with('/')) {
      ep.path_prefix.pop_back();
    }
    url = url.substr(0, slash);
  }
  std::string_view host = url;
  std::string_view port = "80";
  if (url.starts_with('[')) {
    const auto close = url.find(']');
    if (close == std::string_view::npos) {
      return std::unexpected("bad IPv6 address in '" + std::string(url) + "'");
    }
    host = url.substr(1, close - 1);
    if (close + 1 < url.size() && url[close + 1] == ':') {
      port = url.substr(close + 2);
    }
  } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc{} || ptr != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return std::unexpected("bad host:port in '" + std::string(url) + "'");
  }
  ep.host = std::string(host);
  ep.port = static_cast<std::uint16_t>(value);
  return ep;
}

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0x0f];
    }
  }
  return out;
}

bool ChunkedDecoder::feed(std::string_view in, std::string& out) {
  for (std::size_t i = 0; i < in.size();) {
    const char c = in[i];
    switch (state_) {
      case State::size: {
        int digit = -1;
        if (c >= '0' && c <= '9') {
          digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
          digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
          digit = c - 'A' + 10;
        }
        if (digit >= 0) {
          if (remaining_ > (std::uint64_t{1} << 40)) {
            return false;
          }
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(digit);
          size_digits_ = true;
        } else if (c == ';' && size_digits_) {
          state_ = State::extension;
        } else if (c == '\r' && size_digits_) {
          state_ = State::size_lf;
        } else {
          return false;
        }
        ++i;
        break;
      }
      case State::extension:
        if (c == '\r') {
          state_ = State::size_lf;
        }
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') {
          return false;
        }
        ++i;
        size_digits_ = false;
        state_ = remaining_ == 0 ? State::trailer : State::data;
        trailer_line_empty_ = true;
        break;
      case State::data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
        out.append(in.substr(i, n));
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          state_ = State::data_cr;
        }
        break;
      }
      case State::data_cr:
        if (c != '\r') {
          return false;
        }
        state_ = State::data_lf;
        ++i;
        break;
      case State::data_lf:
        if (c != '\n') {
          return false;
        }
        state_ = State::size;
        ++i;
        break;
      case State::trailer:
        // Trailer fields until an empty line.
        if (c == '\n') {
          if (trailer_line_empty_) {
            state_ = State::done;
          }
          trailer_line_empty_ = true;
        } else if (c != '\r') {
          trailer_line_empty_ = false;
        }
        ++i;
        break;
      case State::done:
        return true;  // anything after the last chunk is not ours
    }
  }
  return true;
}

std::expected<HttpResponse, std::string> parse_response(std::string_view raw) {
  auto head = parse_head(raw);
  if (!head) {
    return std::unexpected(head.error());
  }
  if (!*head) {
    return std::unexpected("incomplete response head");
  }
  HttpResponse r;
  r.status = (*head)->status;
  r.headers = std::move((*head)->headers);
  const std::string_view body = raw.substr((*head)->body_offset);
  const auto te = header(r.headers, "Transfer-Encoding");
  if (te && lower(*te).find("chunked") != std::string::npos) {
    ChunkedDecoder decoder;
    if (!decoder.feed(body, r.body)) {
      return std::unexpected("malformed chunked body");
    }
    if (!decoder.done()) {
      return std::unexpected("truncated chunked body");
    }
    return r;
  }
  if (const auto cl = header(r.headers, "Content-Length")) {
    std::size_t n = 0;
    const auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc{} || ptr != cl->data() + cl->size()) {
      return std::unexpected("bad Content-Length");
    }
    if (body.size() < n) {
      return std::unexpected("truncated body");
    }
    r.body = std::string(body.substr(0, n));
    return r;
  }
  r.body = std::string(body);
  return r;
}

std::expected<HttpResponse, std::string> http_request(const HttpEndpoint& endpoint,
                                                      std::string_view method,
                                                      std::string_view target,
                                                      std::string_view body,
                                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto fd = connect_to(endpoint, deadline);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  if (!send_all(fd->get(), request_text(endpoint, method, target, body), deadline)) {
    return std::unexpected(std::string("send: ") + std::generic_category().message(errno));
  }
  std::string raw;
  for (;;) {
    const ssize_t n = recv_some(fd->get(), raw, deadline);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      return std::unexpected(std::string("receive: ") + std::generic_category().message(errno));
    }
  }
  return parse_response(raw);
}

std::expected<HttpLineStream, std::string> HttpLineStream::open(const HttpEndpoint& endpoint,
                                                                std::string_view target,
                                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto fd = connect_to(endpoint, deadline);
  if (!fd) {
    return std::unexpected(fd.error());
  }
  if (!send_all(fd->get(), request_text(endpoint, "GET", target, {}), deadline)) {
    return std::unexpected(std::string("send: ") + std::generic_category().message(errno));
  }
  std::string raw;
  for (;;) {
    auto head = parse_head(raw);
    if (!head) {
      return std::unexpected(head.error());
    }
    if (*head) {
      if ((*head)->status < 200 || (*head)->status > 299) {
        return std::unexpected("HTTP status " + std::to_string((*head)->status));
      }
      HttpLineStream s;
      s.fd_ = std::move(*fd);
      const auto te = header((*head)->headers, "Transfer-Encoding");
      s.chunked_ = te && lower(*te).find("chunked") != std::string::npos;
      const std::string_view rest = std::string_view(raw).substr((*head)->body_offset);
      if (s.chunked_) {
        if (!s.decoder_.feed(rest, s.body_)) {
          return std::unexpected("malformed chunked body");
        }
      } else {
        s.body_ = std::string(rest);
      }
      return s;
    }
    const ssize_t n = recv_some(fd->get(), raw, deadline);
    if (n <= 0) {
      return std::unexpected("no response head");
    }
  }
}

std::expected<std::optional<std::string>, std::string> HttpLineStream::next_line(
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto eol = body_.find('\n'); eol != std::string::npos) {
      std::string line = body_.substr(0, eol);
      body_.erase(0, eol + 1);
      return line;
    }
    if (chunked_ && decoder_.done()) {
      return std::unexpected("end of stream");
    }
    std::string raw;
    const ssize_t n = recv_some(fd_.get(), raw, deadline);
    if (n == 0) {
      return std::unexpected("end of stream");
    }
    if (n < 0) {
      if (errno == ETIMEDOUT) {
        return std::optional<std::string>{};
      }
      return std::unexpected(std::string("receive: ") + std::generic_category().message(errno));
    }
    if (chunked_) {
      if (!decoder_.feed(raw, body_)) {
        return std::unexpected("malformed chunked body");
      }
    } else {
      body_ += raw;
    }
  }
}

}  // namespace berth::metering
