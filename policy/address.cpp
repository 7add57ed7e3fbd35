#include "policy/address.hpp"

#include <charconv>
#include <vector>

#include "policy/hex.hpp"

namespace berth::policy {

namespace {

// One decimal IPv4 octet, as Go 1.17+ reads it: 1-3 digits, no leading zero, at most 255.
std::optional<std::uint8_t> octet(std::string_view s) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s.front() == '0')) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 255) {
    return std::nullopt;
  }
  return static_cast<std::uint8_t>(v);
}

bool parse_v4(std::string_view s, std::uint8_t* out) {
  for (int i = 0; i < 4; ++i) {
    const std::size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) {
      return false;
    }
    auto o = octet(s.substr(0, dot));
    if (!o) {
      return false;
    }
    out[i] = *o;
    s = i < 3 ? s.substr(dot + 1) : std::string_view();
  }
  return true;
}

std::optional<std::uint16_t> group(std::string_view s) {
  if (s.empty() || s.size() > 4) {
    return std::nullopt;
  }
  unsigned v = 0;
  for (char c : s) {
    const int d = hex_digit(c);
    if (d < 0) {
      return std::nullopt;
    }
    v = v * 16 + static_cast<unsigned>(d);
  }
  return static_cast<std::uint16_t>(v);
}

std::vector<std::string_view> split_groups(std::string_view s) {
  std::vector<std::string_view> out;
  if (s.empty()) {
    return out;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t colon = s.find(':', start);
    out.push_back(s.substr(start, colon - start));
    if (colon == std::string_view::npos) {
      break;
    }
    start = colon + 1;
  }
  return out;
}

// IPv6 text: groups of 1-4 hex digits, one "::" at most, an optional dotted IPv4 tail.
bool parse_v6(std::string_view s, std::uint8_t* out) {
  const std::size_t gap = s.find("::");
  if (gap != std::string_view::npos && s.find("::", gap + 1) != std::string_view::npos) {
    return false;
  }
  std::uint8_t bytes[16] = {};
  auto fill = [](std::string_view part, std::uint8_t* dst, std::size_t max, bool tail_ok,
                 std::size_t& used) {
    used = 0;
    const auto groups = split_groups(part);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const bool last = i + 1 == groups.size();
      if (last && tail_ok && groups[i].find('.') != std::string_view::npos) {
        if (used + 4 > max || !parse_v4(groups[i], dst + used)) {
          return false;
        }
        used += 4;
        continue;
      }
      auto g = group(groups[i]);
      if (!g || used + 2 > max) {
        return false;
      }
      dst[used] = static_cast<std::uint8_t>(*g >> 8);
      dst[used + 1] = static_cast<std::uint8_t>(*g & 0xff);
      used += 2;
    }
    return true;
  };
  if (gap == std::string_view::npos) {
    std::size_t used = 0;
    if (!fill(s, bytes, 16, true, used) || used != 16) {
      return false;
    }
  } else {
    std::uint8_t head[16] = {};
    std::uint8_t tail[16] = {};
    std::size_t head_used = 0;
    std::size_t tail_used = 0;
    if (!fill(s.substr(0, gap), head, 16, false, head_used) ||
        !fill(s.substr(gap + 2), tail, 16, true, tail_used) || head_used + tail_used > 14) {
      return false;
    }
    std::copy(head, head + head_used, bytes);
    std::copy(tail, tail + tail_used, bytes + 16 - tail_used);
  }
  std::copy(bytes, bytes + 16, out);
  return true;
}

bool is_v4_mapped(const IpAddress& ip) {
  for (int i = 0; i < 10; ++i) {
    if (ip.bytes[static_cast<std::size_t>(i)] != 0) {
      return false;
    }
  }
  return ip.bytes[10] == 0xff && ip.bytes[11] == 0xff;
}

bool in(const IpAddress& ip, std::string_view cidr) {
  const auto c = parse_cidr(cidr);
  return c && c->contains(ip);
}

}  // namespace

std::string IpAddress::str() const {
  if (!v6) {
    return std::to_string(bytes[0]) + "." + std::to_string(bytes[1]) + "." +
           std::to_string(bytes[2]) + "." + std::to_string(bytes[3]);
  }
  // RFC 5952: the longest run (2 or more) of zero groups becomes "::".
  std::uint16_t g[8];
  for (std::size_t i = 0; i < 8; ++i) {
    g[i] = static_cast<std::uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
  }
  int best = -1;
  int best_len = 0;
  for (int i = 0; i < 8;) {
    int j = i;
    while (j < 8 && g[j] == 0) {
      ++j;
    }
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') {
      out += ':';
    }
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int d = (g[i] >> shift) & 0xf;
      if (d != 0 || started || shift == 0) {
        out += digits[d];
        started = true;
      }
    }
  }
  return out;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  IpAddress ip;
  if (text.find(':') == std::string_view::npos) {
    if (!parse_v4(text, ip.bytes.data())) {
      return std::nullopt;
    }
    return ip;
  }
  ip.v6 = true;
  if (!parse_v6(text, ip.bytes.data()) || is_v4_mapped(ip)) {
    return std::nullopt;
  }
  return ip;
}

IpAddress mask(const IpAddress& ip, int prefix) noexcept {
  IpAddress out = ip;
  const int bits = static_cast<int>(ip.size()) * 8;
  for (int b = std::max(prefix, 0); b < bits; ++b) {
    out.bytes[static_cast<std::size_t>(b / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (b % 8)));
  }
  for (std::size_t i = ip.size(); i < 16; ++i) {
    out.bytes[i] = 0;
  }
  return out;
}

std::optional<Cidr> parse_cidr(std::string_view text, bool require_network) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  auto ip = parse_ip(text.substr(0, slash));
  const std::string_view len = text.substr(slash + 1);
  int prefix = -1;
  const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), prefix);
  if (!ip || len.empty() || ec != std::errc() || end != len.data() + len.size() ||
      (len.size() > 1 && len.front() == '0') || prefix < 0 ||
      prefix > static_cast<int>(ip->size()) * 8) {
    return std::nullopt;
  }
  Cidr c{mask(*ip, prefix), prefix};
  if (require_network && !(c.base == *ip)) {
    return std::nullopt;
  }
  return c;
}

bool Cidr::contains(const IpAddress& ip) const noexcept {
  return ip.v6 == base.v6 && mask(ip, prefix) == base;
}

bool Cidr::contains(const Cidr& other) const noexcept {
  return other.base.v6 == base.v6 && other.prefix >= prefix && contains(other.base);
}

bool Cidr::overlaps(const Cidr& other) const noexcept {
  return contains(other) || other.contains(*this);
}

std::string Cidr::str() const { return base.str() + "/" + std::to_string(prefix); }

std::optional<Cidr> nth_subnet(const Cidr& pool, int prefix, std::uint64_t index) {
  const int bits = static_cast<int>(pool.base.size()) * 8;
  if (prefix < pool.prefix || prefix > bits) {
    return std::nullopt;
  }
  const int free_bits = prefix - pool.prefix;
  if (free_bits < 64 && index >= (std::uint64_t{1} << free_bits)) {
    return std::nullopt;
  }
  // The address as one 128-bit number (IPv4 in its low 32 bits), plus index << (bits - prefix).
  __extension__ using u128 = unsigned __int128;
  u128 value = 0;
  for (std::size_t i = 0; i < pool.base.size(); ++i) {
    value = value << 8 | pool.base.bytes[i];
  }
  value += static_cast<u128>(index) << (bits - prefix);
  Cidr out{pool.base, prefix};
  for (std::size_t i = pool.base.size(); i-- > 0;) {
    out.base.bytes[i] = static_cast<std::uint8_t>(value & 0xff);
    value >>= 8;
  }
  if (!pool.contains(out.base)) {
    return std::nullopt;
  }
  return out;
}

bool is_internal_address(const IpAddress& ip) noexcept {
  if (!ip.v6) {
    for (auto range : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
                       "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16",
                       "198.18.0.0/15", "224.0.0.0/3"}) {
      if (in(ip, range)) {
        return true;
      }
    }
    return false;
  }
  for (auto range : {"::/96", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b::/96",
                     "2001:db8::/32", "100::/64"}) {
    if (in(ip, range)) {
      return true;
    }
  }
  return false;
}

}  // namespace berth::policy
