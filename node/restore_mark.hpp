#pragma once
// The directories containerd leaves in its temporary directory after a restore from a
// checkpoint ("ctrd-checkpoint<n>": the whole set, unpacked there, then not removed). Every
// dockerd on a machine unpacks into the same one (/tmp), so berth-node puts a mark file in each
// set it has restored, "<set> <node pid> <time> <try>", and cleans only directories that hold
// its own restore's mark, or the mark of a berth-node that is gone and left them long ago.
// Another restore's directory, still being read by its CRIU, is never touched.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace berth::node {

/// The mark's file name in a checkpoint set.
inline constexpr std::string_view restore_mark_file = "berth-restore";

/// The mark of one restore of `set` by this process: its first three words.
[[nodiscard]] std::string restore_mark(const std::string& set);

/// The directories under `tmp` to remove after the restore marked `mark`: those with that mark,
/// and those marked by a process that no longer exists and written to no later than `stale`
/// ago.
[[nodiscard]] std::vector<std::filesystem::path> containerd_dirs_to_clean(
    const std::filesystem::path& tmp, const std::string& mark, std::chrono::seconds stale);

}  // namespace berth::node
