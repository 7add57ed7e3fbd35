#include "proxy/host_routes.hpp"

#include <fstream>
#include <sstream>
#include <string>

#include "policy/hex.hpp"

namespace berth::proxy {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
      ++i;
    }
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      ++i;
    }
    if (i > start) {
      out.push_back(line.substr(start, i - start));
    }
  }
  return out;
}

// Hex digits into bytes, most significant first; false on anything else.
bool hex_bytes(std::string_view hex, std::uint8_t* out, std::size_t n) {
  if (hex.size() != n * 2) {
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = policy::hex_digit(hex[2 * i]);
    const int lo = policy::hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return true;
}

template <typename Each>
void each_line(std::string_view text, Each&& each) {
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t nl = std::min(text.find('\n', start), text.size());
    each(text.substr(start, nl - start));
    start = nl + 1;
  }
}

}  // namespace

std::vector<policy::Cidr> parse_ipv4_routes(std::string_view text) {
  // Iface Destination Gateway Flags RefCnt Use Metric Mask ...: addresses in host byte order
  // (little-endian here) as 8 hex digits.
  std::vector<policy::Cidr> out;
  bool header = true;
  each_line(text, [&](std::string_view line) {
    if (header) {
      header = false;
      return;
    }
    const auto f = fields(line);
    std::uint8_t dest[4];
    std::uint8_t mask[4];
    if (f.size() < 8 || !hex_bytes(f[1], dest, 4) || !hex_bytes(f[7], mask, 4)) {
      return;
    }
    int prefix = 0;
    for (int i = 3; i >= 0; --i) {
      for (int bit = 7; bit >= 0; --bit) {
        prefix += (mask[i] >> bit) & 1;
      }
    }
    if (prefix == 0) {
      return;  // a default route
    }
    policy::IpAddress ip;
    for (std::size_t i = 0; i < 4; ++i) {
      ip.bytes[i] = dest[3 - i];
    }
    out.push_back(policy::Cidr{policy::mask(ip, prefix), prefix});
  });
  return out;
}

std::vector<policy::Cidr> parse_ipv6_routes(std::string_view text) {
  // dest(32 hex) dest_prefix(2 hex) src src_prefix next_hop metric refcnt use flags iface
  std::vector<policy::Cidr> out;
  each_line(text, [&](std::string_view line) {
    const auto f = fields(line);
    policy::IpAddress ip;
    ip.v6 = true;
    std::uint8_t prefix_byte = 0;
    if (f.size() < 10 || !hex_bytes(f[0], ip.bytes.data(), 16) ||
        !hex_bytes(f[1], &prefix_byte, 1)) {
      return;
    }
    const int prefix = prefix_byte;
    // Default routes, and the kernel's own multicast and link-local routes.
    if (prefix == 0 || prefix > 128 || f[9] == "lo" ||
        (ip.bytes[0] == 0xff) || (ip.bytes[0] == 0xfe && (ip.bytes[1] & 0xc0) == 0x80)) {
      return;
    }
    out.push_back(policy::Cidr{policy::mask(ip, prefix), prefix});
  });
  return out;
}

std::vector<policy::Cidr> read_host_routes() {
  auto routes = parse_ipv4_routes(read_file("/proc/net/route"));
  auto v6 = parse_ipv6_routes(read_file("/proc/net/ipv6_route"));
  routes.insert(routes.end(), v6.begin(), v6.end());
  return routes;
}

}  // namespace berth::proxy
