#pragma once
// json_scan: a validating cursor over JSON text, for filters that rewrite a few members of a
// large document and copy everything else byte for byte instead of building a DOM.
//
// It accepts a subset of what nlohmann's parser accepts, never more: a filter that rewrites
// only what this cursor accepts, and hands anything else to its DOM version, gives the same
// document as the DOM version. So it refuses (returns false) on anything nlohmann refuses
// (bad syntax, invalid UTF-8, control characters and lone surrogates in strings, trailing
// bytes) and also on what nlohmann accepts but would turn into another value or reject late:
// numbers with an exponent or more than 300 digits (nlohmann parses them as doubles, which
// may overflow), nesting deeper than `max_depth`, a byte order mark.

#include <cstddef>
#include <string>
#include <string_view>

namespace berth::policy::json_scan {

inline constexpr int max_depth = 200;

class Cursor {
 public:
  explicit Cursor(std::string_view text) noexcept : text_(text) {}

  [[nodiscard]] std::string_view text() const noexcept { return text_; }
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }

  /// Skips JSON whitespace; returns the next byte, or '\0' at the end of the text.
  char peek() noexcept {
    skip_ws();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  /// Consumes `c` (after whitespace) if it is next.
  bool consume(char c) noexcept {
    if (peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  /// True when only whitespace is left.
  bool at_end() noexcept {
    skip_ws();
    return pos_ == text_.size();
  }

  /// Skips one value (after whitespace), validating it. `raw` receives its bytes.
  bool skip_value(std::string_view& raw, int depth = 0) noexcept;
  bool skip_value(int depth = 0) noexcept {
    std::string_view raw;
    return skip_value(raw, depth);
  }

  /// Reads one string token (after whitespace). `raw` receives the token with its quotes;
  /// `value` the decoded text: a view of the input when the token has no escapes, else of
  /// `scratch`, which it overwrites.
  bool read_string(std::string_view& raw, std::string_view& value, std::string& scratch);

 private:
  void skip_ws() noexcept {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
        return;
      }
      ++pos_;
    }
  }
  // Validates a string token starting at pos_ ('"'); sets escaped when it holds a backslash.
  bool scan_string(bool& escaped) noexcept;
  bool scan_number() noexcept;
  bool scan_literal(std::string_view word) noexcept;

  std::string_view text_;
  std::size_t pos_ = 0;
};

/// Appends `s` as a JSON string token (quotes, and escapes for '"', '\\' and control
/// characters; other bytes as they are). `s` must be valid UTF-8.
void append_quoted(std::string& out, std::string_view s);

}  // namespace berth::policy::json_scan
