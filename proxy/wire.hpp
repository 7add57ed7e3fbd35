#pragma once
// What the files of a session share (proxy/session*.cpp, pipeline, prepare, forward, deliver,
// splice, account): the limits and deadlines of one connection, the relay windows, and the
// writing of a head in one buffer. Internal to proxy/.

#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

#include "proxy/net.hpp"
#include "proxy/session.hpp"

namespace berth::proxy::wire {

using namespace std::chrono_literals;

inline constexpr auto request_read_timeout = 60s;  // a judged body whole; each read of a stream's
inline constexpr auto client_write_timeout = 300s;  // a client that stops reading an answer
inline constexpr auto hijack_linger = 30s;  // after dockerd ends a hijacked stream, for the client
// Session::linger_close: how long, and how much, a closing connection still reads and drops.
inline constexpr auto linger_time = 1s;
inline constexpr std::size_t linger_bytes = 4 * 1024 * 1024;
// Session::pump: how a stream's small pieces are gathered.
inline constexpr std::size_t gather_below = 16 * 1024;  // a piece this big is a full TLS record
inline constexpr auto gather_after = 1ms;
inline constexpr auto gather_wait = 250us;
inline constexpr std::size_t header_limit = 256 * 1024;
inline constexpr std::size_t relay_window = 64 * 1024;
// An answer up to this size is read whole and sent in one write.
inline constexpr std::uint64_t small_answer = 32 * 1024;
inline constexpr std::size_t judged_body_limit = 4 * 1024 * 1024;
inline constexpr std::size_t whole_body_limit = 256 * 1024 * 1024;
// Not boost::none: Boost 1.74's parser compares the content length with the optional limit
// and a disengaged optional compares smaller than every value (body_limit error on any body).
inline constexpr std::uint64_t unlimited_body = std::numeric_limits<std::uint64_t>::max();

inline bool is_hop_by_hop(std::string_view name) {
  // Expect is answered by berth itself (Session::continue_if_expected): forwarded, dockerd's
  // 100 Continue would come back as an interim answer on a pooled connection.
  static constexpr std::string_view names[] = {"keep-alive", "proxy-connection", "te",
                                               "trailer", "proxy-authorization",
                                               "proxy-authenticate", "expect"};
  for (auto n : names) {
    if (beast::iequals(name, n)) {
      return true;
    }
  }
  return false;
}

inline bool header_has_token(std::string_view value, std::string_view token) {
  for (auto t : http::token_list(value)) {
    if (beast::iequals(t, token)) {
      return true;
    }
  }
  return false;
}

// One generator per worker thread (sessions never migrate): a per-session mt19937_64 was
// 2.5 KiB of every idle connection's memory.
inline std::mt19937_64& name_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// Relay windows are recycled per thread (sessions never migrate): a fresh 64 KiB block per
// request cost a page-faulting, zero-filled allocation on every small response.
class Window {
 public:
  Window() {
    auto& pool = free_list();
    if (pool.empty()) {
      block_.reset(new char[relay_window]);  // uninitialised on purpose
    } else {
      block_ = std::move(pool.back());
      pool.pop_back();
    }
  }
  ~Window() {
    auto& pool = free_list();
    if (block_ && pool.size() < 64) {
      pool.push_back(std::move(block_));
    }
  }
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;
  char* get() const noexcept { return block_.get(); }

 private:
  static std::vector<std::unique_ptr<char[]>>& free_list() {
    thread_local std::vector<std::unique_ptr<char[]>> pool;
    return pool;
  }
  std::unique_ptr<char[]> block_;
};

inline std::string_view buffer_view(const UpstreamBuffer& b) {
  const auto data = b.data();
  return {static_cast<const char*>(data.data()), data.size()};
}

inline error_code& ignored_ec() {
  thread_local error_code ec;
  return ec;
}

inline bool header_keep_alive(const http::request_header<>& h) {
  const auto connection = h[http::field::connection];
  if (h.version() >= 11) {
    return !header_has_token(connection, "close");
  }
  return header_has_token(connection, "keep-alive");
}

inline bool is_raw_stream(std::string_view content_type) {
  return content_type.starts_with("application/vnd.docker.raw-stream") ||
         content_type.starts_with("application/vnd.docker.multiplexed-stream");
}

// Writes "start line CRLF, fields, CRLF" into [out, out + cap) as Beast's serializer would, and
// returns its length, or 0 when it does not fit. The small-message fast paths use it: one
// contiguous buffer, one write(2) (one TLS record), none of the serializer's buffer views.
template <bool isRequest>
inline std::size_t put_head(char* out, std::size_t cap, std::string_view a, std::string_view b,
                     std::string_view c, const http::header<isRequest>& head) {
  std::size_t at = 0;
  const auto put = [&](std::string_view piece) {
    if (at + piece.size() > cap) {
      return false;
    }
    std::memcpy(out + at, piece.data(), piece.size());
    at += piece.size();
    return true;
  };
  if (!put(a) || !put(" ") || !put(b) || !put(" ") || !put(c) || !put("\r\n")) {
    return 0;
  }
  for (const auto& field : head) {
    const std::string_view name = field.name_string();
    const std::string_view value = field.value();
    // Beast keeps each field as one "Name: value\r\n" line: copied whole when it is laid out
    // so (checked, not assumed), piece by piece otherwise.
    const char* const end = value.data() + value.size();
    if (value.data() == name.data() + name.size() + 2 && name.data()[name.size()] == ':' &&
        end[0] == '\r' && end[1] == '\n') {
      if (!put(std::string_view(name.data(), static_cast<std::size_t>(end + 2 - name.data())))) {
        return 0;
      }
    } else if (!put(name) || !put(": ") || !put(value) || !put("\r\n")) {
      return 0;
    }
  }
  return put("\r\n") ? at : 0;
}

}  // namespace berth::proxy::wire
