#pragma once
// Small text helpers for asserting on CLI output.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace berth::test {

/// `s` without leading and trailing whitespace (CLI output ends with a newline; a pty's with
/// "\r\n").
[[nodiscard]] inline std::string trim(std::string_view s) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

/// Case-insensitive substring test (HTTP header names, TLS error texts).
[[nodiscard]] inline bool contains_nocase(std::string_view haystack, std::string_view needle) {
  const auto lower = [](std::string_view v) {
    std::string out(v);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  return lower(haystack).find(lower(needle)) != std::string::npos;
}

}  // namespace berth::test
