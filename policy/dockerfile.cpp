#include "policy/dockerfile.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

namespace berth::policy::dockerfile {

namespace {

constexpr char32_t rune_error = 0xFFFD;
// bufio.Scanner's default limit: a line (with its newline) must fit 64 KiB.
constexpr std::size_t max_line = 64 * 1024;
// encoding/json's scanner refuses deeper nesting.
constexpr std::size_t max_json_depth = 10000;

unsigned char byte_at(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

struct Rune {
  char32_t r;
  std::size_t width;
};

// utf8.DecodeRuneInString: an invalid or truncated sequence is (RuneError, 1).
Rune decode_rune(std::string_view s, std::size_t pos) {
  const std::size_t n = s.size() - pos;
  if (n == 0) {
    return {rune_error, 0};
  }
  const unsigned b0 = byte_at(s, pos);
  if (b0 < 0x80) {
    return {b0, 1};
  }
  auto in = [&](std::size_t i, unsigned lo, unsigned hi) {
    return i < n && byte_at(s, pos + i) >= lo && byte_at(s, pos + i) <= hi;
  };
  auto low6 = [&](std::size_t i) { return static_cast<char32_t>(byte_at(s, pos + i) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!in(1, 0x80, 0xBF)) {
      return {rune_error, 1};
    }
    return {(static_cast<char32_t>(b0 & 0x1F) << 6) | low6(1), 2};
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
    if (!in(1, lo, hi) || !in(2, 0x80, 0xBF)) {
      return {rune_error, 1};
    }
    return {(static_cast<char32_t>(b0 & 0x0F) << 12) | (low6(1) << 6) | low6(2), 3};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (!in(1, lo, hi) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) {
      return {rune_error, 1};
    }
    return {(static_cast<char32_t>(b0 & 0x07) << 18) | (low6(1) << 12) | (low6(2) << 6) | low6(3),
            4};
  }
  return {rune_error, 1};
}

// utf8.DecodeLastRuneInString.
Rune decode_last_rune(std::string_view s) {
  const std::size_t end = s.size();
  if (end == 0) {
    return {rune_error, 0};
  }
  std::size_t start = end - 1;
  if (byte_at(s, start) < 0x80) {
    return {byte_at(s, start), 1};
  }
  const std::size_t lim = end >= 4 ? end - 4 : 0;
  while (start > lim) {
    --start;
    if ((byte_at(s, start) & 0xC0) != 0x80) {
      break;
    }
  }
  const Rune r = decode_rune(s.substr(0, end), start);
  if (start + r.width != end) {
    return {rune_error, 1};
  }
  return r;
}

void append_rune(std::string& out, char32_t r) {
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

// unicode.IsSpace on a byte taken as a rune (Latin-1), as the flag splitter and the
// HEALTHCHECK parser test `rune(line[pos])`.
bool latin1_space(unsigned char c) {
  return c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == ' ' || c == 0x85 ||
         c == 0xA0;
}

// reWhitespace = [\t\v\f\r ]
bool re_whitespace(char c) {
  return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' ';
}

// RE2's \s: [\t\n\f\r ] (no vertical tab).
bool re2_space(char c) {
  return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

std::string_view trim_left_space(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const Rune r = decode_rune(s, i);
    if (!is_space(r.r)) {
      break;
    }
    i += r.width;
  }
  return s.substr(i);
}

std::string_view trim_right_space(std::string_view s) {
  while (!s.empty()) {
    const Rune r = decode_last_rune(s);
    if (!is_space(r.r)) {
      break;
    }
    s.remove_suffix(r.width);
  }
  return s;
}

std::string_view trim_space(std::string_view s) {
  return trim_right_space(trim_left_space(s));
}

// Regexp.Split with reWhitespace.
std::vector<std::string> split_whitespace(std::string_view s, int n) {
  std::vector<std::string> out;
  if (n == 0) {
    return out;
  }
  if (s.empty()) {
    out.emplace_back();
    return out;
  }
  std::size_t beg = 0;
  std::size_t end = 0;
  std::size_t i = 0;
  int found = 0;
  while (i < s.size() && (n < 0 || found < n)) {
    if (!re_whitespace(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && re_whitespace(s[j])) {
      ++j;
    }
    ++found;
    if (n > 0 && static_cast<int>(out.size()) == n - 1) {
      break;
    }
    end = i;
    if (j != 0) {
      out.emplace_back(s.substr(beg, end - beg));
    }
    beg = j;
    i = j;
  }
  if (end != s.size()) {
    out.emplace_back(s.substr(beg));
  }
  return out;
}

// strings.ToLower, as far as it can make a keyword: ASCII, and the two non-ASCII letters whose
// simple lowercase is ASCII (U+0130 'İ' -> 'i', U+212A KELVIN SIGN -> 'k'). Other non-ASCII
// text stays non-ASCII (Go lowercases it too, or turns invalid bytes into U+FFFD), so it never
// names an instruction either way.
std::string go_lower(std::string_view word) {
  std::string out;
  out.reserve(word.size());
  std::size_t i = 0;
  while (i < word.size()) {
    const Rune r = decode_rune(word, i);
    if (r.r < 0x80) {
      const char c = static_cast<char>(r.r);
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    } else if (r.width > 1 && r.r == 0x130) {
      out += 'i';
    } else if (r.width > 1 && r.r == 0x212A) {
      out += 'k';
    } else {
      out.append(word.substr(i, r.width));
    }
    i += r.width;
  }
  return out;
}

struct Directives {
  char escape = '\\';
  bool done = false;
  bool seen_escape = false;
  bool seen_syntax = false;
};

// possibleParserDirective with reDirectives = ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
std::expected<void, std::string> parser_directive(Directives& d, std::string_view line) {
  if (d.done) {
    return {};
  }
  auto no_match = [&]() -> std::expected<void, std::string> {
    d.done = true;
    return {};
  };
  if (line.empty() || line[0] != '#') {
    return no_match();
  }
  std::size_t i = 1;
  while (i < line.size() && re2_space(line[i])) {
    ++i;
  }
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (i >= line.size() || !alpha(line[i])) {
    return no_match();
  }
  const std::size_t name_start = i;
  while (i < line.size() && (alpha(line[i]) || digit(line[i]))) {
    ++i;
  }
  const std::string key = go_lower(line.substr(name_start, i - name_start));
  while (i < line.size() && re2_space(line[i])) {
    ++i;
  }
  if (i >= line.size() || line[i] != '=') {
    return no_match();
  }
  ++i;
  const std::size_t ws_start = i;
  while (i < line.size() && re2_space(line[i])) {
    ++i;
  }
  std::string_view value;
  if (i < line.size()) {
    // (.+?)\s*$ after a greedy \s*: the rest without its trailing \s run.
    std::size_t end = line.size();
    while (end > i && re2_space(line[end - 1])) {
      --end;
    }
    value = line.substr(i, end - i);
  } else if (i > ws_start) {
    value = line.substr(i - 1, 1);  // the greedy \s* gives one back to (.+?)
  } else {
    return no_match();
  }
  if (key != "escape" && key != "syntax") {
    return no_match();
  }
  bool& seen = key == "escape" ? d.seen_escape : d.seen_syntax;
  if (seen) {
    return std::unexpected("only one " + key + " parser directive can be used");
  }
  seen = true;
  if (key == "escape") {
    if (value != "`" && value != "\\") {
      return std::unexpected("invalid escape token '" + std::string(value) +
                             "' does not match ` or \\");
    }
    d.escape = value[0];
  }
  return {};
}

// lineContinuationRegex = ([^E])E[ \t]*$|^E[ \t]*$ replaced by "$1".
bool continues(std::string_view line, char escape, std::string_view* rest) {
  std::size_t end = line.size();
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) {
    --end;
  }
  if (end == 0 || line[end - 1] != escape || (end >= 2 && line[end - 2] == escape)) {
    return false;
  }
  if (rest != nullptr) {
    *rest = line.substr(0, end - 1);
  }
  return true;
}

bool is_comment(std::string_view raw) {
  const auto t = trim_left_space(raw);
  return !t.empty() && t[0] == '#';
}

// processLine: the left-trimmed (first lines only), comment-stripped line.
std::expected<std::string_view, std::string> process_line(Directives& d, std::string_view token,
                                                          bool strip_left) {
  if (strip_left) {
    token = trim_left_space(token);
  }
  if (auto r = parser_directive(d, token); !r) {
    return std::unexpected(std::move(r.error()));
  }
  if (!token.empty() && token[0] == '#') {
    return std::string_view();  // reComment: ^#.*$
  }
  return token;
}

// ---- line parsers ----------------------------------------------------------------------------

struct Parsed1 {
  std::vector<std::string> args;
  bool json = false;
  std::vector<Node> child;
};

using LineResult = std::expected<Parsed1, std::string>;

std::expected<Node, std::string> node_from_line(std::string_view line, const Directives& d);

// parseWords: words with their quotes and escapes kept; invalid UTF-8 becomes U+FFFD.
std::vector<std::string> parse_words(std::string_view rest, char escape) {
  enum { in_spaces, in_word, in_quote } phase = in_spaces;

  std::vector<std::string> words;
  std::string word;
  char32_t quote = 0;
  bool blank_ok = false;
  char32_t ch = 0;
  std::size_t width = 0;
  const auto esc = static_cast<char32_t>(escape);
  for (std::size_t pos = 0; pos <= rest.size(); pos += width) {
    if (pos != rest.size()) {
      const Rune r = decode_rune(rest, pos);
      ch = r.r;
      width = r.width;
    }
    if (phase == in_spaces) {
      if (pos == rest.size()) {
        break;
      }
      if (is_space(ch)) {
        continue;
      }
      phase = in_word;
    }
    if ((phase == in_word || phase == in_quote) && pos == rest.size()) {
      if (blank_ok || !word.empty()) {
        words.push_back(word);
      }
      break;
    }
    if (phase == in_word) {
      if (is_space(ch)) {
        phase = in_spaces;
        if (blank_ok || !word.empty()) {
          words.push_back(word);
        }
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = in_quote;
      }
      if (ch == esc) {
        if (pos + width == rest.size()) {
          continue;
        }
        append_rune(word, ch);
        pos += width;
        const Rune r = decode_rune(rest, pos);
        ch = r.r;
        width = r.width;
      }
      append_rune(word, ch);
      continue;
    }
    if (phase == in_quote) {
      if (ch == quote) {
        phase = in_word;
      }
      if (ch == esc && quote != '\'') {
        if (pos + width == rest.size()) {
          phase = in_word;
          continue;
        }
        pos += width;
        append_rune(word, ch);
        const Rune r = decode_rune(rest, pos);
        ch = r.r;
        width = r.width;
      }
      append_rune(word, ch);
    }
  }
  return words;
}

// ---- JSON forms (encoding/json's Decoder into []interface{}) ---------------------------------

enum class JsonForm { strings, not_strings, not_json };

bool json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// getu4: the \uXXXX at s[i] (s[i] == '\\'), or -1.
long getu4(std::string_view s, std::size_t i) {
  if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u') {
    return -1;
  }
  long v = 0;
  for (std::size_t k = 2; k < 6; ++k) {
    const int h = hex_value(s[i + k]);
    if (h < 0) {
      return -1;
    }
    v = v * 16 + h;
  }
  return v;
}

// The body of a scanned JSON string (without quotes), decoded as Go's unquote does.
std::string unquote(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t r = 0;
  while (r < s.size()) {
    const char c = s[r];
    if (c == '\\') {
      const char e = s[r + 1];
      switch (e) {
        case 'b':
          out += '\b';
          r += 2;
          continue;
        case 'f':
          out += '\f';
          r += 2;
          continue;
        case 'n':
          out += '\n';
          r += 2;
          continue;
        case 'r':
          out += '\r';
          r += 2;
          continue;
        case 't':
          out += '\t';
          r += 2;
          continue;
        case 'u': {
          auto rr = static_cast<char32_t>(getu4(s, r));
          r += 6;
          if (rr >= 0xD800 && rr < 0xE000) {
            const long rr1 = getu4(s, r);
            if (rr < 0xDC00 && rr1 >= 0xDC00 && rr1 < 0xE000) {
              append_rune(out,
                          0x10000 + ((rr - 0xD800) << 10) + (static_cast<char32_t>(rr1) - 0xDC00));
              r += 6;
              continue;
            }
            rr = rune_error;
          }
          append_rune(out, rr);
          continue;
        }
        default:  // '"', '\\', '/'
          out += e;
          r += 2;
          continue;
      }
    }
    if (byte_at(s, r) < 0x80) {
      out += c;
      ++r;
      continue;
    }
    const Rune rr = decode_rune(s, r);
    append_rune(out, rr.r);
    r += rr.width;
  }
  return out;
}

// Scans a string starting at s[i] == '"'; returns the index after its closing quote, or npos.
std::size_t scan_string(std::string_view s, std::size_t i) {
  ++i;
  while (i < s.size()) {
    const auto c = byte_at(s, i);
    if (c == '"') {
      return i + 1;
    }
    if (c < 0x20) {
      return std::string_view::npos;
    }
    if (c == '\\') {
      if (i + 1 >= s.size()) {
        return std::string_view::npos;
      }
      const char e = s[i + 1];
      if (e == 'u') {
        if (getu4(s, i) < 0) {
          return std::string_view::npos;
        }
        i += 6;
        continue;
      }
      if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
          e != 't') {
        return std::string_view::npos;
      }
      i += 2;
      continue;
    }
    ++i;
  }
  return std::string_view::npos;
}

// Scans a number at s[i]; returns the index after it (npos on a syntax error) and whether it
// overflows float64 (Unmarshal then fails, and the parser falls back to the shell form).
std::size_t scan_number(std::string_view s, std::size_t i, bool& overflow) {
  const std::size_t start = i;
  auto digit = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  if (i < s.size() && s[i] == '-') {
    ++i;
  }
  if (!digit(i)) {
    return std::string_view::npos;
  }
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) {
      ++i;
    }
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digit(i)) {
      return std::string_view::npos;
    }
    while (digit(i)) {
      ++i;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    if (!digit(i)) {
      return std::string_view::npos;
    }
    while (digit(i)) {
      ++i;
    }
  }
  double value = 0;
  const auto text = s.substr(start, i - start);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  (void)end;
  if (ec == std::errc::result_out_of_range) {
    // Out of range is overflow or underflow; Go fails only on overflow. The decimal magnitude
    // of the leading digit tells them apart (overflow needs ~1e308, underflow ~1e-324).
    std::size_t k = text.starts_with('-') ? 1 : 0;
    long int_digits = 0;
    long frac_digits = 0;
    long first_int = -1;   // index of the first non-zero digit in the integer part
    long first_frac = -1;  // or in the fraction
    bool fraction = false;
    for (; k < text.size() && text[k] != 'e' && text[k] != 'E'; ++k) {
      if (text[k] == '.') {
        fraction = true;
        continue;
      }
      if (!fraction) {
        if (first_int < 0 && text[k] != '0') {
          first_int = int_digits;
        }
        ++int_digits;
      } else {
        if (first_int < 0 && first_frac < 0 && text[k] != '0') {
          first_frac = frac_digits;
        }
        ++frac_digits;
      }
    }
    const bool found = first_int >= 0 || first_frac >= 0;
    // One more than the leading digit's power of ten.
    long magnitude = first_int >= 0 ? int_digits - first_int : -first_frac;
    if (found) {
      long exponent = 0;
      bool huge = false;
      if (k < text.size()) {
        std::size_t e = k + 1;
        const bool negative = text[e] == '-';
        if (text[e] == '+' || text[e] == '-') {
          ++e;
        }
        for (; e < text.size(); ++e) {
          if (exponent > 100000000) {
            huge = true;
            break;
          }
          exponent = exponent * 10 + (text[e] - '0');
        }
        if (negative) {
          exponent = -exponent;
        }
        if (huge) {
          exponent = negative ? -1000000000 : 1000000000;
        }
      }
      overflow = overflow || (magnitude + exponent > 0);
    }
  } else if (std::isinf(value)) {
    overflow = true;
  }
  return i;
}

bool scan_literal(std::string_view s, std::size_t& i) {
  for (std::string_view lit : {"true", "false", "null"}) {
    if (s.substr(i, lit.size()) == lit) {
      i += lit.size();
      return true;
    }
  }
  return false;
}

// json.NewDecoder(strings.NewReader(rest)).Decode(&[]interface{}): only the first value is read
// (anything after the array is ignored).
JsonForm scan_json(std::string_view s, std::vector<std::string>& out) {
  enum class Expect { value_or_close, value, key_or_close, key, colon, comma_or_close };
  std::vector<char> stack{'['};
  std::size_t i = 1;
  Expect expect = Expect::value_or_close;
  bool non_string = false;
  bool overflow = false;
  out.clear();
  for (;;) {
    while (i < s.size() && json_space(s[i])) {
      ++i;
    }
    if (i >= s.size()) {
      return JsonForm::not_json;
    }
    const char c = s[i];
    bool closed = false;
    switch (expect) {
      case Expect::value_or_close:
      case Expect::value: {
        if (c == ']' && expect == Expect::value_or_close) {
          ++i;
          stack.pop_back();
          closed = true;
          break;
        }
        const bool element = stack.size() == 1;
        if (c == '[' || c == '{') {
          stack.push_back(c);
          if (stack.size() > max_json_depth) {
            return JsonForm::not_json;
          }
          non_string = non_string || element;
          ++i;
          expect = c == '[' ? Expect::value_or_close : Expect::key_or_close;
          continue;
        }
        if (c == '"') {
          const std::size_t end = scan_string(s, i);
          if (end == std::string_view::npos) {
            return JsonForm::not_json;
          }
          if (element) {
            out.push_back(unquote(s.substr(i + 1, end - i - 2)));
          }
          i = end;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
          i = scan_number(s, i, overflow);
          if (i == std::string_view::npos) {
            return JsonForm::not_json;
          }
          non_string = non_string || element;
        } else if (scan_literal(s, i)) {
          non_string = non_string || element;
        } else {
          return JsonForm::not_json;
        }
        expect = Expect::comma_or_close;
        continue;
      }
      case Expect::key_or_close:
      case Expect::key: {
        if (c == '}' && expect == Expect::key_or_close) {
          ++i;
          stack.pop_back();
          closed = true;
          break;
        }
        if (c != '"') {
          return JsonForm::not_json;
        }
        i = scan_string(s, i);
        if (i == std::string_view::npos) {
          return JsonForm::not_json;
        }
        expect = Expect::colon;
        continue;
      }
      case Expect::colon:
        if (c != ':') {
          return JsonForm::not_json;
        }
        ++i;
        expect = Expect::value;
        continue;
      case Expect::comma_or_close:
        if (c == ',') {
          ++i;
          expect = stack.back() == '[' ? Expect::value : Expect::key;
          continue;
        }
        if ((c == ']' && stack.back() == '[') || (c == '}' && stack.back() == '{')) {
          ++i;
          stack.pop_back();
          closed = true;
          break;
        }
        return JsonForm::not_json;
    }
    if (closed) {
      if (stack.empty()) {
        break;
      }
      expect = Expect::comma_or_close;
    }
  }
  if (overflow) {
    return JsonForm::not_json;
  }
  return non_string ? JsonForm::not_strings : JsonForm::strings;
}

constexpr std::string_view not_string_array =
    "when using JSON array syntax, arrays must be comprised of strings only";

// parseJSON's outcome: the strings, or why not.
JsonForm parse_json(std::string_view rest, std::vector<std::string>& out) {
  rest = trim_left_space(rest);
  if (rest.empty() || rest[0] != '[') {
    return JsonForm::not_json;
  }
  return scan_json(rest, out);
}

LineResult parse_strings_whitespace(std::string_view rest) {
  Parsed1 p;
  if (!rest.empty()) {
    p.args = split_whitespace(rest, -1);
  }
  return p;
}

LineResult parse_string(std::string_view rest) {
  Parsed1 p;
  if (!rest.empty()) {
    p.args.emplace_back(rest);
  }
  return p;
}

LineResult parse_maybe_json(std::string_view rest) {
  Parsed1 p;
  if (rest.empty()) {
    return p;
  }
  switch (parse_json(rest, p.args)) {
    case JsonForm::strings:
      p.json = true;
      return p;
    case JsonForm::not_strings:
      return std::unexpected(std::string(not_string_array));
    case JsonForm::not_json:
      break;
  }
  p.args.assign(1, std::string(rest));
  return p;
}

LineResult parse_maybe_json_to_list(std::string_view rest) {
  Parsed1 p;
  switch (parse_json(rest, p.args)) {
    case JsonForm::strings:
      p.json = true;
      return p;
    case JsonForm::not_strings:
      return std::unexpected(std::string(not_string_array));
    case JsonForm::not_json:
      break;
  }
  return parse_strings_whitespace(rest);
}

LineResult parse_name_val(std::string_view rest, std::string_view key, const Directives& d) {
  Parsed1 p;
  const auto words = parse_words(rest, d.escape);
  if (words.empty()) {
    return p;
  }
  if (words[0].find('=') == std::string::npos) {
    auto parts = split_whitespace(rest, 2);
    if (parts.size() < 2) {
      return std::unexpected(std::string(key) + " must have two arguments");
    }
    p.args = std::move(parts);
    return p;
  }
  for (const auto& word : words) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      return std::unexpected("Syntax error - can't find = in " + word +
                             ". Must be of the form: name=value");
    }
    p.args.push_back(word.substr(0, eq));
    p.args.push_back(word.substr(eq + 1));
  }
  return p;
}

LineResult parse_name_or_name_val(std::string_view rest, const Directives& d) {
  Parsed1 p;
  p.args = parse_words(rest, d.escape);
  return p;
}

LineResult parse_health_config(std::string_view rest) {
  std::size_t sep = 0;
  while (sep < rest.size() && !latin1_space(byte_at(rest, sep))) {
    ++sep;
  }
  std::size_t next = sep;
  while (next < rest.size() && latin1_space(byte_at(rest, next))) {
    ++next;
  }
  if (sep == 0) {
    return Parsed1{};
  }
  auto cmd = parse_maybe_json(rest.substr(next));
  if (!cmd) {
    return cmd;
  }
  Parsed1 p;
  p.args.emplace_back(rest.substr(0, sep));
  p.args.insert(p.args.end(), cmd->args.begin(), cmd->args.end());
  p.json = cmd->json;
  return p;
}

LineResult parse_sub_command(std::string_view rest, const Directives& d) {
  Parsed1 p;
  if (rest.empty()) {
    return p;
  }
  auto child = node_from_line(rest, d);
  if (!child) {
    return std::unexpected(std::move(child.error()));
  }
  p.child.push_back(std::move(*child));
  return p;
}

// extractBuilderFlags: byte by byte, with '\\' (never the escape directive's token) escaping
// and quotes grouping; each byte is taken as a Latin-1 rune, so bytes 0x85 and 0xA0 split words
// and other high bytes come out UTF-8 encoded.
std::vector<std::string> extract_builder_flags(std::string_view line, std::string_view& rest) {
  enum { in_spaces, in_word, in_quote } phase = in_spaces;

  std::vector<std::string> words;
  std::string word;
  unsigned char quote = 0;
  bool blank_ok = false;
  unsigned char ch = 0;
  rest = {};
  for (std::size_t pos = 0; pos <= line.size(); ++pos) {
    if (pos != line.size()) {
      ch = byte_at(line, pos);
    }
    if (phase == in_spaces) {
      if (pos == line.size()) {
        break;
      }
      if (latin1_space(ch)) {
        continue;
      }
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
        rest = line.substr(pos);
        return words;
      }
      phase = in_word;
    }
    if ((phase == in_word || phase == in_quote) && pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) {
        words.push_back(word);
      }
      break;
    }
    if (phase == in_word) {
      if (latin1_space(ch)) {
        phase = in_spaces;
        if (word == "--") {
          rest = line.substr(pos);
          return words;
        }
        if (blank_ok || !word.empty()) {
          words.push_back(word);
        }
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = in_quote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) {
          continue;
        }
        ++pos;
        ch = byte_at(line, pos);
      }
      append_rune(word, ch);
      continue;
    }
    if (phase == in_quote) {
      if (ch == quote) {
        phase = in_word;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) {
          phase = in_word;
          continue;
        }
        ++pos;
        ch = byte_at(line, pos);
      }
      append_rune(word, ch);
    }
  }
  return words;
}

constexpr std::array<std::string_view, 18> instructions = {
    "add",    "arg",   "cmd",         "copy",  "entrypoint", "env",
    "expose", "from",  "healthcheck", "label", "maintainer", "onbuild",
    "run",    "shell", "stopsignal",  "user",  "volume",     "workdir"};

std::expected<Node, std::string> node_from_line(std::string_view line, const Directives& d) {
  Node node;
  node.original = std::string(line);
  // splitCommand
  const auto parts = split_whitespace(trim_space(line), 2);
  node.cmd = go_lower(parts[0]);
  std::string_view rest;
  if (parts.size() == 2) {
    node.flags = extract_builder_flags(parts[1], rest);
  }
  rest = trim_space(rest);
  node.rest = std::string(rest);

  const std::string_view cmd = node.cmd;
  LineResult r;
  if (cmd == "add" || cmd == "copy" || cmd == "volume") {
    r = parse_maybe_json_to_list(rest);
  } else if (cmd == "arg") {
    r = parse_name_or_name_val(rest, d);
  } else if (cmd == "cmd" || cmd == "entrypoint" || cmd == "run" || cmd == "shell") {
    r = parse_maybe_json(rest);
  } else if (cmd == "env") {
    r = parse_name_val(rest, "ENV", d);
  } else if (cmd == "label") {
    r = parse_name_val(rest, "LABEL", d);
  } else if (cmd == "expose" || cmd == "from") {
    r = parse_strings_whitespace(rest);
  } else if (cmd == "healthcheck") {
    r = parse_health_config(rest);
  } else if (cmd == "maintainer" || cmd == "stopsignal" || cmd == "user" || cmd == "workdir") {
    r = parse_string(rest);
  } else if (cmd == "onbuild") {
    r = parse_sub_command(rest, d);
  } else {
    r = Parsed1{{std::string()}, false, {}};  // parseIgnore: one empty node
  }
  if (!r) {
    return std::unexpected(std::move(r.error()));
  }
  node.args = std::move(r->args);
  node.json = r->json;
  node.child = std::move(r->child);
  return node;
}

}  // namespace

bool is_space(char32_t r) noexcept {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

bool known_instruction(std::string_view cmd) {
  for (const auto& k : instructions) {
    if (k == cmd) {
      return true;
    }
  }
  return false;
}

std::expected<Parsed, ParseError> parse(std::string_view text) {
  // bufio.Scanner with ScanLines: split at '\n', one trailing '\r' dropped per line; a line of
  // 64 KiB or more (with its newline) stops the scan with ErrTooLong.
  std::vector<std::string_view> tokens;
  bool too_long = false;
  {
    std::size_t pos = 0;
    while (pos < text.size()) {
      const auto nl = text.find('\n', pos);
      const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
      if (end - pos >= max_line) {
        too_long = true;
        break;
      }
      std::string_view token = text.substr(pos, end - pos);
      if (token.ends_with('\r')) {
        token.remove_suffix(1);
      }
      tokens.push_back(token);
      pos = nl == std::string_view::npos ? text.size() : nl + 1;
    }
  }

  Directives d;
  Parsed out;
  std::size_t current_line = 0;
  std::size_t i = 0;
  auto error = [](std::string message, std::size_t line) {
    return std::unexpected(ParseError{std::move(message), line});
  };
  while (i < tokens.size()) {
    std::string_view bytes_read = tokens[i++];
    if (current_line == 0 && bytes_read.starts_with("\xEF\xBB\xBF")) {
      bytes_read.remove_prefix(3);
    }
    auto processed = process_line(d, bytes_read, true);
    if (!processed) {
      return error(std::move(processed.error()), current_line);
    }
    ++current_line;
    const std::size_t start_line = current_line;
    std::string_view first;
    bool end_of_line = !continues(*processed, d.escape, &first);
    std::string line(end_of_line ? *processed : first);
    if (end_of_line && line.empty()) {
      continue;
    }
    while (!end_of_line && i < tokens.size()) {
      const std::string_view raw = tokens[i++];
      auto next = process_line(d, raw, false);
      if (!next) {
        return error(std::move(next.error()), current_line);
      }
      ++current_line;
      if (is_comment(raw)) {
        continue;
      }
      if (trim_left_space(*next).empty()) {
        continue;  // an empty continuation line (a warning in 20.10)
      }
      std::string_view piece;
      end_of_line = !continues(*next, d.escape, &piece);
      line += end_of_line ? *next : piece;
    }
    auto node = node_from_line(line, d);
    if (!node) {
      return error(std::move(node.error()), start_line);
    }
    node->start_line = start_line;
    out.instructions.push_back(std::move(*node));
  }
  if (out.instructions.empty()) {
    return error("file with no instructions", current_line);
  }
  if (too_long) {
    return error("dockerfile line greater than max allowed size of 65535", current_line);
  }
  out.escape = d.escape;
  return out;
}

std::string onbuild_expression(std::string_view original) {
  std::size_t i = 0;
  while (i < original.size() && re2_space(original[i])) {
    ++i;
  }
  constexpr std::string_view keyword = "onbuild";
  if (original.size() - i < keyword.size()) {
    return std::string(original);
  }
  for (std::size_t k = 0; k < keyword.size(); ++k) {
    char c = original[i + k];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != keyword[k]) {
      return std::string(original);
    }
  }
  i += keyword.size();
  while (i < original.size() && re2_space(original[i])) {
    ++i;
  }
  return std::string(original.substr(i));
}

std::expected<std::string, std::string> instruction_line(std::string_view cmd,
                                                         const std::vector<std::string>& flags,
                                                         std::string_view rest, char escape) {
  std::string line;
  for (char c : cmd) {
    if (c < 'a' || c > 'z') {
      return std::unexpected("an instruction keyword berth cannot write");
    }
    line += static_cast<char>(c - 'a' + 'A');
  }
  for (const auto& flag : flags) {
    // The flag splitter reads "--" then a quoted remainder back byte for byte; high bytes would
    // come back re-encoded (it takes each byte as Latin-1).
    if (!flag.starts_with("--") || flag == "--") {
      return std::unexpected("a flag berth cannot write back: " + flag);
    }
    bool plain = true;
    for (char c : std::string_view(flag).substr(2)) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x80) {
        return std::unexpected("a flag with non-ASCII bytes: write flags in ASCII");
      }
      if (latin1_space(u) || c == '"' || c == '\'' || c == '\\') {
        plain = false;
      }
    }
    line += ' ';
    if (plain) {
      line += flag;
      continue;
    }
    line += "--\"";
    for (char c : std::string_view(flag).substr(2)) {
      if (c == '"' || c == '\\') {
        line += '\\';
      }
      line += c;
    }
    line += '"';
  }
  if (!rest.empty()) {
    if (latin1_space(byte_at(rest, 0))) {
      return std::unexpected("an instruction whose arguments start with a stray byte");
    }
    line += ' ';
    if (rest.starts_with("--")) {
      line += "-- ";  // ends the flags, so the arguments are not read as flags
    }
    line += rest;
  }
  if (line.find('\n') != std::string::npos) {
    return std::unexpected("an instruction that spans lines");
  }
  if (continues(line, escape, nullptr)) {
    return std::unexpected(
        "an instruction that ends with the escape character (dockerd would join the next line)");
  }
  if (line.size() >= max_line) {
    return std::unexpected("an instruction longer than 64 KiB on one line");
  }
  return line;
}

}  // namespace berth::policy::dockerfile
