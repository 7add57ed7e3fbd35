#include "proxy/response_head.hpp"

#include <array>
#include <cstring>

namespace berth::proxy {

namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
// "_" / "`" / "|" / "~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> token_chars = [] {
  std::array<bool, 256> t{};
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) {
    t[static_cast<unsigned char>(c)] = true;
  }
  for (int c = '0'; c <= '9'; ++c) {
    t[static_cast<unsigned char>(c)] = true;
  }
  for (int c = 'a'; c <= 'z'; ++c) {
    t[static_cast<unsigned char>(c)] = true;
    t[static_cast<unsigned char>(c - 'a' + 'A')] = true;
  }
  return t;
}();

// A field value or reason phrase: VCHAR, obs-text, SP and HTAB; no other control byte.
// Eight bytes at a time while none is below 0x20 or DEL (a tab sends the rest to the byte
// loop): (x - 0x20 per byte) & ~x & 0x80 per byte is non-zero exactly when some byte of x is
// below 0x20, and the same test on x ^ 0x7f.. finds a DEL.
bool valid_text(std::string_view text) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const char* p = text.data();
  std::size_t n = text.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t x = 0;
    std::memcpy(&x, p, 8);
    const std::uint64_t del = x ^ (0x7f * ones);
    if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs) {
      break;
    }
  }
  for (; n != 0; ++p, --n) {
    const auto c = static_cast<unsigned char>(*p);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

// `name` equals `lower` (a lowercase field name) ignoring ASCII case. Only letters differ by
// 0x20 between cases among token characters that can match these names.
bool is_named(std::string_view name, std::string_view lower) noexcept {
  if (name.size() != lower.size()) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (static_cast<char>(name[i] | 0x20) != lower[i]) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) {
    v.remove_suffix(1);
  }
  return v;
}

std::optional<std::uint64_t> parse_length(std::string_view v) noexcept {
  if (v.empty() || v.size() > 18) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

// Hop-by-hop and connection-management fields: Beast's path knows what to do with them.
bool needs_full_parser(std::string_view name) noexcept {
  switch (name.size()) {
    case 2:
      return is_named(name, "te");
    case 7:
      return is_named(name, "trailer") || is_named(name, "upgrade");
    case 10:
      return is_named(name, "connection") || is_named(name, "keep-alive");
    case 16:
      return is_named(name, "proxy-connection");
    case 18:
      return is_named(name, "proxy-authenticate");
    case 19:
      return is_named(name, "proxy-authorization");
    default:
      return false;
  }
}

}  // namespace

// One pass over the head's bytes, on the path of every answer: the status line, then each field
// line checked and classified as it is met. Split into helpers it would walk the lines twice;
// its length (over 80 lines) is that one loop's cases.
ResponseHead scan_response_head(std::string_view data) noexcept {
  ResponseHead head;
  const auto unsupported = [&head] {
    head.state = HeadScan::unsupported;
    return head;
  };
  constexpr std::string_view version = "HTTP/1.1 ";
  if (data.size() < version.size() + 4) {  // "HTTP/1.1 200 " or "HTTP/1.1 200\r"
    return version.starts_with(data.substr(0, version.size())) ? head : unsupported();
  }
  if (!data.starts_with(version)) {
    return unsupported();
  }
  std::size_t eol = data.find('\n', version.size());
  if (eol == std::string_view::npos) {
    return head;
  }
  if (data[eol - 1] != '\r') {
    return unsupported();
  }
  const std::string_view status_line = data.substr(version.size(), eol - 1 - version.size());
  unsigned status = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const char c = status_line.size() > i ? status_line[i] : '\0';
    if (c < '0' || c > '9') {
      return unsupported();
    }
    status = status * 10 + static_cast<unsigned>(c - '0');
  }
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]: the second SP is there
  // even without a reason.
  if (status < 200 || status > 599 || status_line.size() < 4 || status_line[3] != ' ' ||
      !valid_text(status_line.substr(4))) {
    return unsupported();
  }
  head.status = status;
  std::size_t at = eol + 1;
  bool content_type_seen = false;
  for (;;) {
    eol = data.find('\n', at);
    if (eol == std::string_view::npos) {
      head.status = 0;
      return head;
    }
    if (eol == at || data[eol - 1] != '\r') {
      return unsupported();  // a bare LF
    }
    if (eol == at + 1) {  // the empty line
      if (head.chunked && head.content_length) {
        return unsupported();
      }
      head.fields_end = at;
      head.size = eol + 1;
      head.state = HeadScan::complete;
      return head;
    }
    const std::string_view line = data.substr(at, eol - 1 - at);
    at = eol + 1;
    std::size_t colon = 0;
    while (colon < line.size() && token_chars[static_cast<unsigned char>(line[colon])]) {
      ++colon;
    }
    // A folded line starts with white space, and a field name is a non-empty token.
    if (colon == 0 || colon == line.size() || line[colon] != ':' ||
        !valid_text(line.substr(colon + 1))) {
      return unsupported();
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (is_named(name, "content-length")) {
      if (head.content_length) {
        return unsupported();
      }
      head.content_length = parse_length(value);
      if (!head.content_length) {
        return unsupported();
      }
    } else if (is_named(name, "transfer-encoding")) {
      if (head.chunked || !is_named(value, "chunked")) {
        return unsupported();
      }
      head.chunked = true;
    } else if (is_named(name, "content-type")) {
      if (!content_type_seen) {  // the first one, as Beast's lookup answers
        content_type_seen = true;
        head.json = value.starts_with("application/json");
      }
    } else if (needs_full_parser(name)) {
      return unsupported();
    }
  }
}

std::size_t interim_head_size(std::string_view data, bool& partial) noexcept {
  partial = false;
  // "HTTP/1.x 1yz": Go writes 1xx heads with no body, ended by the empty line.
  if (data.size() < 12 || !data.starts_with("HTTP/1.") || data[8] != ' ' || data[9] != '1' ||
      data[10] < '0' || data[10] > '9' || data[11] < '0' || data[11] > '9' ||
      (data[10] == '0' && data[11] == '1')) {
    return 0;
  }
  const std::size_t end = data.find("\r\n\r\n");
  partial = end == std::string_view::npos;
  return partial ? 0 : end + 4;
}

std::string head_without_framing(std::string_view data, const ResponseHead& head) {
  std::string out;
  out.reserve(head.fields_end);
  std::size_t at = 0;
  while (at < head.fields_end) {
    const std::size_t next = data.find('\n', at) + 1;
    const std::string_view line = data.substr(at, next - at);
    const std::string_view name = line.substr(0, line.find(':'));
    if (at == 0 || !(is_named(name, "content-length") || is_named(name, "transfer-encoding"))) {
      out.append(line);
    }
    at = next;
  }
  return out;
}

}  // namespace berth::proxy
