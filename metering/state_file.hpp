#pragma once
// The meter's persisted state: the ledger (billing totals and each cgroup's last reading) and
// the boot it was taken in. Written atomically (temporary file, fsync, rename, fsync of the
// directory), so a kill -9 or a power cut leaves either the old state or the new one, never a
// torn one. A state file that exists but cannot be read is an error, never a silent reset:
// starting from zero would make every counter go backwards.

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "metering/ledger.hpp"

namespace berth::metering {

struct MeterState {
  std::string boot_id;  ///< /proc/sys/kernel/random/boot_id when saved
  std::int64_t saved_unix_ms = 0;
  Ledger ledger;
};

[[nodiscard]] std::string encode_state(const MeterState& state);
[[nodiscard]] std::expected<MeterState, std::string> decode_state(std::string_view text);

/// Replaces `path` with `content` atomically and durably.
[[nodiscard]] std::expected<void, std::string> write_file_atomically(
    const std::filesystem::path& path, std::string_view content);

/// The state in `path`; nullopt if there is no such file.
[[nodiscard]] std::expected<std::optional<MeterState>, std::string> load_state(
    const std::filesystem::path& path);

/// This boot's id ("" if unknown).
[[nodiscard]] std::string current_boot_id();

}  // namespace berth::metering
