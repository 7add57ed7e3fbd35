#pragma once
// `berthctl usage`: invoices per tenant from exact counter values at the period's boundaries,
// read from the Prometheus HTTP API. Never from increase() or rate(): those extrapolate to the
// window's edges and were measured here 20% off over a 90 s window. For each series:
//   usage = value at `to` - value at `from`,
// where "value at t" is the last sample at or before t (within a lookback), a series created
// inside the period starts from 0 (the meter stamps berth_tenant_first_seen_timestamp_seconds),
// and a counter reset inside the period (a meter whose state file was lost) is summed piece by
// piece from the raw samples. Series of several meters (hosts) are summed per tenant.
// Consecutive periods share their boundary sample, so nothing is billed twice or lost between
// them.

#include <cstdint>
#include <expected>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metering/prices.hpp"

namespace berth::metering {

struct UsageRequest {
  std::int64_t from_unix = 0;  ///< seconds, inclusive boundary
  std::int64_t to_unix = 0;
  std::optional<std::string> tenant;  ///< a valid tenant id, or every tenant
  std::int64_t lookback_seconds = 3600;  ///< how old the last sample before a boundary may be
};

struct TenantBill {
  std::string tenant;
  double cpu_seconds = 0.0;
  double memory_byte_seconds = 0.0;
  Cost cost;
  std::vector<std::string> notes;  ///< resets summed, missing start data, ...

  [[nodiscard]] double cpu_hours() const noexcept { return cpu_seconds / seconds_per_hour; }
  [[nodiscard]] double gib_hours() const noexcept {
    return memory_byte_seconds / seconds_per_hour / bytes_per_gib;
  }
};

struct UsageReport {
  std::int64_t from_unix = 0;
  std::int64_t to_unix = 0;
  Prices prices;
  std::vector<TenantBill> tenants;  ///< sorted by tenant id
};

/// Asks Prometheus's HTTP API: given "/api/v1/query?...", returns the response body.
using PrometheusQuery = std::function<std::expected<std::string, std::string>(const std::string&)>;

/// Computes the report. Precondition: from_unix < to_unix.
[[nodiscard]] std::expected<UsageReport, std::string> usage_report(const UsageRequest& request,
                                                                   const Prices& prices,
                                                                   const PrometheusQuery& query);

/// A PrometheusQuery over HTTP to `base_url` ("http://host:9090[/prefix]").
[[nodiscard]] std::expected<PrometheusQuery, std::string> prometheus_http(std::string_view base_url);

enum class ReportFormat { table, csv, json };
[[nodiscard]] std::string format_report(const UsageReport& report, ReportFormat format);

/// "2026-11-01", "2026-11-01T12:00:00Z", "2026-11-01T12:00Z", "@1793491200" or "now" → unix
/// seconds (UTC).
[[nodiscard]] std::expected<std::int64_t, std::string> parse_time(std::string_view text,
                                                                  std::int64_t now_unix);
[[nodiscard]] std::string format_time(std::int64_t unix_seconds);

inline constexpr std::string_view usage_command_help =
    "  berthctl usage --from TIME --to TIME [--tenant ID] [--format table|csv|json]\n"
    "                 [--prometheus URL] [--prices FILE] [--lookback SECONDS]\n"
    "      TIME: 2026-11-01, 2026-11-01T12:00:00Z, @UNIXSECONDS or now\n";

/// The whole `berthctl usage` subcommand (args after "usage"). Returns the exit status: 0, 1 on
/// errors (message on `err`), 2 on a malformed command line.
int usage_command(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace berth::metering
