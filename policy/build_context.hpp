#pragma once
// The build context a tenant sends to the classic builder (POST /build) is a tar stream with
// the Dockerfile inside. The builder resolves FROM and COPY --from images from the daemon's
// whole image store, so a Dockerfile could build on another tenant's image by its stored name,
// and it fetches `ADD <url>` sources from the host's network.
//
// Forward only what was judged, in canonical form (DESIGN.md): BuildContextFilter reads the
// context with a strict reader (policy/tar_stream.hpp), re-emits every entry with a header
// berth writes, and replaces each file dockerd may take as the Dockerfile with the canonical
// text berth judged (policy/dockerfile.hpp parses it as dockerd's parser does). Image
// references are resolved in the tenant's namespace (its own tags, shared images, images it may
// see by id) and written as dockerd must use them; ADD URLs are judged by the tenant's egress
// rules. A gzip-compressed context is inflated and judged the same way (and forwarded plain).
// Refused: other compressions, anything the tar reader refuses, a Dockerfile that is a
// link or a directory or appears twice, a link or file where the Dockerfile's directory must
// be, an entry written through a symbolic link, image references that dockerd's word expansion
// could change, ADD sources that could become URLs after expansion, and unknown instructions.

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decision.hpp"
#include "policy/dockerfile.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
#include "policy/tar_filter.hpp"
#include "policy/tar_stream.hpp"

namespace berth::policy {

/// What berth forwards for a Dockerfile: the canonical text, and the instructions dockerd's
/// parser reads from it (berth parses its own text back and refuses when that differs from
/// what it judged).
struct JudgedDockerfile {
  std::string text;
  std::vector<dockerfile::Node> instructions;
};

/// Judges a Dockerfile for the tenant `rules` describes: image references resolved and
/// rewritten, ADD URLs judged, everything else carried over in canonical form (the escape
/// directive written out, one physical line per instruction, comments dropped).
[[nodiscard]] std::expected<JudgedDockerfile, Decision> judge_dockerfile(
    const Tenant& rules, std::string_view dockerfile, const OwnershipIndex& index);

/// The canonical text of judge_dockerfile.
[[nodiscard]] std::expected<std::string, Decision> rewrite_dockerfile(const Tenant& rules,
                                                                      std::string_view dockerfile,
                                                                      const OwnershipIndex& index);

/// The largest Dockerfile berth judges.
inline constexpr std::size_t dockerfile_limit = 1024 * 1024;

class BuildContextFilter final : public TarBodyFilter {
 public:
  /// `dockerfile_param` is the build's "dockerfile" query value (empty: "Dockerfile", with
  /// dockerd's fallback to "dockerfile").
  BuildContextFilter(Tenant rules, std::string dockerfile_param);
  ~BuildContextFilter() override;
  BuildContextFilter(BuildContextFilter&&) noexcept;
  BuildContextFilter& operator=(BuildContextFilter&&) noexcept;

  // feed() forwards headers berth wrote and the data of entries passed through; a Dockerfile
  // is held back until judged. finish() refuses a context without a Dockerfile.

 private:
  std::expected<void, Decision> on_entry(const tar::Entry& entry, std::string& out) override;
  void on_data(std::string_view data, std::string& out) override;
  std::expected<void, Decision> on_entry_end(const OwnershipIndex& index,
                                             std::string& out) override;
  std::expected<void, Decision> on_finish(std::string& out) override;
  bool is_candidate(std::string_view path) const;

  Tenant tenant_;
  std::vector<std::string> candidates_;         // paths dockerd may read as the Dockerfile
  std::vector<std::string> candidate_parents_;  // their proper parent directories
  std::vector<bool> seen_;                      // per candidate
  bool holding_ = false;  // the current entry is a Dockerfile being collected
  tar::Entry held_entry_;
  std::string held_;
  std::uint64_t passing_size_ = 0;  // data size of the entry passed through
};

}  // namespace berth::policy
