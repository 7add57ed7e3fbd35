#pragma once
// Helpers for the metering unit tests: a private temporary directory and file writing, so a
// fake cgroup tree can be laid out exactly as the kernel shows one.

#include <filesystem>
#include <string>
#include <string_view>

namespace berth::metering::test {

class TempTree {
 public:
  TempTree();
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  ~TempTree();
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// Creates the parent directories and writes `content` to `file`.
void put(const std::filesystem::path& file, std::string_view content);

/// A 64-hex container id made from `n`.
[[nodiscard]] std::string container_id(int n);

/// Lays out a fake cgroup v2 cgroup at root/rel with these counters.
void fake_v2_cgroup(const std::filesystem::path& root, const std::string& rel,
                    std::uint64_t usage_usec, std::uint64_t memory_current,
                    std::uint64_t inactive_file);

}  // namespace berth::metering::test
