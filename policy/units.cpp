#include "policy/units.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

namespace berth::policy::units {

namespace {

constexpr std::int64_t nano = 1'000'000'000;

// "<digits>[.<digits>]" scaled by 10^scale_digits: "1.5" with 9 digits -> 1'500'000'000.
// Exact integer arithmetic, so "0.1" CPUs is exactly 100'000'000 nano CPUs.
std::expected<std::int64_t, std::string> fixed_point(std::string_view number, int scale_digits) {
  if (number.empty()) {
    return std::unexpected("a number is missing");
  }
  const auto dot = number.find('.');
  const std::string_view whole = number.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && fraction.empty())) {
    return std::unexpected("'" + std::string(number) + "' is not a decimal number");
  }
  if (static_cast<int>(fraction.size()) > scale_digits) {
    return std::unexpected("'" + std::string(number) + "' has more than " +
                           std::to_string(scale_digits) + " decimals");
  }
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  std::int64_t value = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') {
      return std::unexpected("'" + std::string(number) + "' is not a decimal number");
    }
    if (value > (max - (c - '0')) / 10) {
      return std::unexpected("'" + std::string(number) + "' is too large");
    }
    value = value * 10 + (c - '0');
  }
  for (int i = 0; i < scale_digits; ++i) {
    const char c = i < static_cast<int>(fraction.size()) ? fraction[static_cast<std::size_t>(i)]
                                                         : '0';
    if (c < '0' || c > '9') {
      return std::unexpected("'" + std::string(number) + "' is not a decimal number");
    }
    if (value > (max - (c - '0')) / 10) {
      return std::unexpected("'" + std::string(number) + "' is too large");
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

struct Unit {
  std::string_view suffix;
  std::int64_t factor;
};

constexpr std::int64_t Ki = 1024;
constexpr std::array units{
    Unit{"KiB", Ki},           Unit{"MiB", Ki * Ki},         Unit{"GiB", Ki * Ki * Ki},
    Unit{"TiB", Ki * Ki * Ki * Ki},
    Unit{"KB", 1000},          Unit{"MB", 1000'000},         Unit{"GB", 1000'000'000},
    Unit{"TB", 1000'000'000'000},
    Unit{"k", Ki},             Unit{"m", Ki * Ki},           Unit{"g", Ki * Ki * Ki},
    Unit{"t", Ki * Ki * Ki * Ki},
    Unit{"K", Ki},             Unit{"M", Ki * Ki},           Unit{"G", Ki * Ki * Ki},
    Unit{"T", Ki * Ki * Ki * Ki},
    Unit{"B", 1},              Unit{"b", 1},
};

}  // namespace

std::expected<std::int64_t, std::string> parse_size(std::string_view text) {
  const std::string expected = "expected a size such as 512MiB, 2GiB or a number of bytes, not '" +
                               std::string(text) + "'";
  std::string_view number = text;
  std::int64_t factor = 1;
  for (const Unit& u : units) {
    if (text.size() > u.suffix.size() && text.ends_with(u.suffix)) {
      number = text.substr(0, text.size() - u.suffix.size());
      factor = u.factor;
      break;
    }
  }
  while (!number.empty() && number.back() == ' ') {
    number.remove_suffix(1);
  }
  // Sizes carry up to 6 decimals ("1.5GiB"); the result is rounded down to whole bytes.
  constexpr int digits = 6;
  auto scaled = fixed_point(number, digits);
  if (!scaled) {
    return std::unexpected(expected);
  }
  constexpr std::int64_t scale = 1'000'000;
  const std::int64_t whole = *scaled / scale;
  const std::int64_t part = *scaled % scale;
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  if (whole >= max / factor) {
    return std::unexpected("size '" + std::string(text) + "' is too large");
  }
  // part < 10^6 and factor <= 2^40 (TiB): the product stays below 2^63.
  const std::int64_t bytes = whole * factor + part * factor / scale;
  return bytes;
}

std::expected<std::int64_t, std::string> parse_cpus(std::string_view text) {
  auto value = fixed_point(text, 9);
  if (!value) {
    return std::unexpected("expected a number of CPUs such as 2 or 1.5, not '" +
                           std::string(text) + "'");
  }
  return *value;
}

std::string format_size(std::int64_t bytes) {
  static constexpr std::array<std::string_view, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (unit + 1 < names.size() && std::fabs(value) >= 1024.0) {
    value /= 1024.0;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof text, "%.2f", value);
  std::string out(text);
  while (out.back() == '0') {
    out.pop_back();
  }
  if (out.back() == '.') {
    out.pop_back();
  }
  return out + std::string(names[unit]);
}

std::string format_cpus(std::int64_t nano_cpus) {
  std::string out = std::to_string(nano_cpus / nano);
  std::int64_t fraction = nano_cpus % nano;
  if (fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 9 - digits.size(), '0');
    while (digits.back() == '0') {
      digits.pop_back();
    }
    out += "." + digits;
  }
  return out;
}

}  // namespace berth::policy::units
