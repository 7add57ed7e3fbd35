#pragma once
// A private directory per test, removed with everything in it when the test ends, so tests that
// run in parallel (`ctest -j2`) never share certificates, policies, logs or docker configs.
// Set BERTH_KEEP_TEMP=1 to keep it for a post-mortem.

#include <filesystem>
#include <string_view>

namespace berth::test {

class TempDir {
 public:
  /// Creates $TMPDIR/<prefix>XXXXXX (default /tmp), mode 0700.
  explicit TempDir(std::string_view prefix = "berth-it-");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

/// Writes `content` to `file`, replacing it; throws on failure.
void write_file(const std::filesystem::path& file, std::string_view content);

/// The whole content of `file`; throws if it cannot be read.
[[nodiscard]] std::string read_file(const std::filesystem::path& file);

}  // namespace berth::test
