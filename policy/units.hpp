#pragma once
// Human units in the operator's policy: sizes ("512MiB", "2GiB", "1.5G", "10m" as the docker
// CLI writes it) and CPU counts as decimals ("1.5", "0.25"), and the reverse for messages, so a
// refusal says "2GiB in use of 4GiB" rather than a byte count.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace berth::policy::units {

/// Bytes from "<number>[unit]". Units: none or B (bytes); KiB MiB GiB TiB (powers of 1024);
/// KB MB GB TB (powers of 1000); k m g t and K M G T alone as the docker CLI reads them
/// (powers of 1024). The number may have a decimal fraction ("1.5GiB"). The error says what
/// was expected.
[[nodiscard]] std::expected<std::int64_t, std::string> parse_size(std::string_view text);

/// Billionths of a CPU from a decimal ("2", "1.5", "0.25"; at most 9 fractional digits),
/// as dockerd's NanoCpus.
[[nodiscard]] std::expected<std::int64_t, std::string> parse_cpus(std::string_view text);

/// "512MiB", "2GiB", "1.5GiB", "100B": the largest binary unit that keeps the value >= 1,
/// with at most two decimals.
[[nodiscard]] std::string format_size(std::int64_t bytes);

/// "2", "1.5", "0.25": a CPU count without trailing zeros.
[[nodiscard]] std::string format_cpus(std::int64_t nano_cpus);

}  // namespace berth::policy::units
