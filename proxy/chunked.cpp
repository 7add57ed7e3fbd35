#include "proxy/chunked.hpp"

#include "policy/hex.hpp"

namespace berth::proxy {

ChunkedBody scan_chunked(std::string_view data) noexcept {
  std::size_t at = 0;
  for (;;) {
    const std::size_t line_end = data.find("\r\n", at);
    if (line_end == std::string_view::npos) {
      // A size line is at most 8 hex digits: anything longer is not one still arriving.
      return {data.size() - at > 8 ? ChunkedScan::unsupported : ChunkedScan::incomplete, 0};
    }
    if (line_end == at || line_end - at > 8) {
      return {ChunkedScan::unsupported, 0};
    }
    std::size_t size = 0;
    for (std::size_t i = at; i < line_end; ++i) {
      const int digit = policy::hex_digit(data[i]);
      if (digit < 0) {
        return {ChunkedScan::unsupported, 0};  // an extension (";"), a space, garbage
      }
      size = size * 16 + static_cast<std::size_t>(digit);
    }
    at = line_end + 2;
    if (size == 0) {
      // The last chunk: no trailer fields, just the final CRLF.
      if (data.size() - at < 2) {
        return {ChunkedScan::incomplete, 0};
      }
      if (data.substr(at, 2) != "\r\n") {
        return {ChunkedScan::unsupported, 0};
      }
      return {ChunkedScan::complete, at + 2};
    }
    if (data.size() - at < size + 2) {
      return {ChunkedScan::incomplete, 0};
    }
    if (data.substr(at + size, 2) != "\r\n") {
      return {ChunkedScan::unsupported, 0};
    }
    at += size + 2;
  }
}

std::string dechunk(std::string_view coded) {
  std::string out;
  out.reserve(coded.size());
  std::size_t at = 0;
  for (;;) {
    const std::size_t line_end = coded.find("\r\n", at);
    std::size_t size = 0;
    for (std::size_t i = at; i < line_end; ++i) {
      size = size * 16 + static_cast<std::size_t>(policy::hex_digit(coded[i]));
    }
    at = line_end + 2;
    if (size == 0) {
      return out;
    }
    out.append(coded.substr(at, size));
    at += size + 2;
  }
}

}  // namespace berth::proxy
