#include "policy/json_scan.hpp"

#include <array>
#include <cstdint>

#include "policy/hex.hpp"

namespace berth::policy::json_scan {

namespace {

// Byte classes inside a string token: 0 plain ASCII, 1 end or escape ('"', '\\'), 2 control
// character (invalid), 3 first byte of a multi-byte UTF-8 sequence (or an invalid byte).
constexpr std::array<std::uint8_t, 256> string_class = [] {
  std::array<std::uint8_t, 256> t{};
  for (int i = 0; i < 0x20; ++i) {
    t[static_cast<std::size_t>(i)] = 2;
  }
  t['"'] = 1;
  t['\\'] = 1;
  for (int i = 0x80; i < 0x100; ++i) {
    t[static_cast<std::size_t>(i)] = 3;
  }
  return t;
}();

// Four hex digits at s[at..at+4) -> code unit, or -1.
long hex4(std::string_view s, std::size_t at) noexcept {
  if (at + 4 > s.size()) {
    return -1;
  }
  long v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const int d = hex_digit(s[at + i]);
    if (d < 0) {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

// Length of the well-formed UTF-8 sequence at s[at] (RFC 3629, as nlohmann checks it), or 0.
std::size_t utf8_length(std::string_view s, std::size_t at) noexcept {
  const auto byte = [&](std::size_t i) -> unsigned {
    return at + i < s.size() ? static_cast<unsigned char>(s[at + i]) : 0x100U;
  };
  const auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(i);
    return b >= lo && b <= hi;
  };
  const unsigned b0 = byte(0);
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (b0 == 0xE0) {
    return cont(1, 0xA0) && cont(2) ? 3 : 0;
  }
  if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 == 0xED) {
    return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  }
  if (b0 == 0xF0) {
    return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  }
  if (b0 >= 0xF1 && b0 <= 0xF3) {
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  if (b0 == 0xF4) {
    return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool Cursor::scan_string(bool& escaped) noexcept {
  // pos_ is at the opening quote.
  std::size_t i = pos_ + 1;
  const std::size_t n = text_.size();
  escaped = false;
  for (;;) {
    while (i < n && string_class[static_cast<unsigned char>(text_[i])] == 0) {
      ++i;
    }
    if (i >= n) {
      return false;
    }
    const char c = text_[i];
    if (c == '"') {
      pos_ = i + 1;
      return true;
    }
    if (c == '\\') {
      escaped = true;
      if (i + 1 >= n) {
        return false;
      }
      switch (text_[i + 1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          i += 2;
          continue;
        case 'u': {
          const long u = hex4(text_, i + 2);
          if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
            return false;  // not hex, or a low surrogate without its high one
          }
          i += 6;
          if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 1 >= n || text_[i] != '\\' || text_[i + 1] != 'u') {
              return false;
            }
            const long low = hex4(text_, i + 2);
            if (low < 0xDC00 || low > 0xDFFF) {
              return false;
            }
            i += 6;
          }
          continue;
        }
        default:
          return false;
      }
    }
    if (string_class[static_cast<unsigned char>(c)] == 2) {
      return false;
    }
    const std::size_t len = utf8_length(text_, i);
    if (len == 0) {
      return false;
    }
    i += len;
  }
}

bool Cursor::scan_number() noexcept {
  std::size_t i = pos_;
  const std::size_t n = text_.size();
  const auto digit = [&](std::size_t at) { return at < n && text_[at] >= '0' && text_[at] <= '9'; };
  std::size_t digits = 0;
  if (i < n && text_[i] == '-') {
    ++i;
  }
  if (!digit(i)) {
    return false;
  }
  if (text_[i] == '0') {
    ++i;
    ++digits;
  } else {
    while (digit(i)) {
      ++i;
      ++digits;
    }
  }
  if (i < n && text_[i] == '.') {
    ++i;
    if (!digit(i)) {
      return false;
    }
    while (digit(i)) {
      ++i;
      ++digits;
    }
  }
  if (i < n && (text_[i] == 'e' || text_[i] == 'E')) {
    return false;  // valid JSON, but nlohmann may find it out of a double's range: not here
  }
  if (digits > 300) {
    return false;
  }
  pos_ = i;
  return true;
}

bool Cursor::scan_literal(std::string_view word) noexcept {
  if (text_.substr(pos_, word.size()) != word) {
    return false;
  }
  pos_ += word.size();
  return true;
}

bool Cursor::skip_value(std::string_view& raw, int depth) noexcept {
  if (depth > max_depth) {
    return false;
  }
  const char c = peek();
  const std::size_t start = pos_;
  bool ok = false;
  switch (c) {
    case '"': {
      bool escaped = false;
      ok = scan_string(escaped);
      break;
    }
    case '{':
      ++pos_;
      if (consume('}')) {
        ok = true;
        break;
      }
      for (;;) {
        bool escaped = false;
        if (peek() != '"' || !scan_string(escaped) || !consume(':') ||
            !skip_value(depth + 1)) {
          return false;
        }
        if (consume(',')) {
          continue;
        }
        ok = consume('}');
        break;
      }
      break;
    case '[':
      ++pos_;
      if (consume(']')) {
        ok = true;
        break;
      }
      for (;;) {
        if (!skip_value(depth + 1)) {
          return false;
        }
        if (consume(',')) {
          continue;
        }
        ok = consume(']');
        break;
      }
      break;
    case 't':
      ok = scan_literal("true");
      break;
    case 'f':
      ok = scan_literal("false");
      break;
    case 'n':
      ok = scan_literal("null");
      break;
    default:
      ok = (c == '-' || (c >= '0' && c <= '9')) && scan_number();
      break;
  }
  if (ok) {
    raw = text_.substr(start, pos_ - start);
  }
  return ok;
}

bool Cursor::read_string(std::string_view& raw, std::string_view& value, std::string& scratch) {
  if (peek() != '"') {
    return false;
  }
  const std::size_t start = pos_;
  bool escaped = false;
  if (!scan_string(escaped)) {
    return false;
  }
  raw = text_.substr(start, pos_ - start);
  const std::string_view inner = raw.substr(1, raw.size() - 2);
  if (!escaped) {
    value = inner;
    return true;
  }
  // The token is valid: every escape is well formed and surrogates come in pairs.
  scratch.clear();
  for (std::size_t i = 0; i < inner.size();) {
    if (inner[i] != '\\') {
      scratch += inner[i++];
      continue;
    }
    const char e = inner[i + 1];
    i += 2;
    switch (e) {
      case 'b':
        scratch += '\b';
        break;
      case 'f':
        scratch += '\f';
        break;
      case 'n':
        scratch += '\n';
        break;
      case 'r':
        scratch += '\r';
        break;
      case 't':
        scratch += '\t';
        break;
      case 'u': {
        unsigned long cp = static_cast<unsigned long>(hex4(inner, i));
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const auto low = static_cast<unsigned long>(hex4(inner, i + 2));
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(scratch, cp);
        break;
      }
      default:  // '"', '\\', '/'
        scratch += e;
        break;
    }
  }
  value = scratch;
  return true;
}

void append_quoted(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
        break;
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

}  // namespace berth::policy::json_scan
