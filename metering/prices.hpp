#pragma once
// Prices live in the operator's configuration (deploy/prometheus/prices.yml), in one file read
// by both berth-meter, which exports them as berth_price_* gauges for the recording rules and
// dashboards, and `berthctl usage`, which prices invoices with them. Refuses unknown keys,
// duplicate keys, negative or non-numeric prices, and a missing currency.

#include <expected>
#include <filesystem>
#include <string>
#include <string_view>

namespace berth::metering {

struct Prices {
  std::string currency;             ///< ISO 4217 code as written, e.g. "EUR"
  double per_cpu_hour = 0.0;        ///< one CPU busy for one hour
  double per_gib_hour = 0.0;        ///< one GiB (2^30 bytes) of working set held for one hour
  double daily_spend_alert = 0.0;   ///< BerthTenantSpendHigh threshold per 24 h; 0: no alert
};

/// Parses the prices YAML `text`; errors are "source:line:column: message" (1-based).
[[nodiscard]] std::expected<Prices, std::string> parse_prices(std::string_view text,
                                                              std::string_view source);
[[nodiscard]] std::expected<Prices, std::string> load_prices(const std::filesystem::path& path);

/// Money for a usage: CPU seconds and memory byte-seconds at these prices.
struct Cost {
  double cpu = 0.0;
  double memory = 0.0;
  [[nodiscard]] double total() const noexcept { return cpu + memory; }
};
[[nodiscard]] Cost price(const Prices& prices, double cpu_seconds, double memory_byte_seconds);

inline constexpr double seconds_per_hour = 3600.0;
inline constexpr double bytes_per_gib = 1073741824.0;

}  // namespace berth::metering
