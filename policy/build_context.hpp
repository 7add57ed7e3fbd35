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
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "policy/decision.hpp"
#include "policy/dockerfile.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
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

class BuildContextFilter {
 public:
  /// `dockerfile_param` is the build's "dockerfile" query value (empty: "Dockerfile", with
  /// dockerd's fallback to "dockerfile").
  BuildContextFilter(Tenant rules, std::string dockerfile_param);
  ~BuildContextFilter();
  BuildContextFilter(BuildContextFilter&&) noexcept;
  BuildContextFilter& operator=(BuildContextFilter&&) noexcept;

  /// Consumes body bytes; returns the bytes to forward now (headers berth wrote, the data of
  /// entries passed through; a Dockerfile is held back until judged). `index` resolves image
  /// references. After a refusal every call refuses.
  [[nodiscard]] std::expected<std::string, Decision> feed(std::string_view bytes,
                                                          const OwnershipIndex& index);
  /// The body ended: refuses a context that stopped mid-entry or had no Dockerfile; otherwise
  /// the end-of-archive marker, which berth writes only here, after everything was judged.
  [[nodiscard]] std::expected<std::string, Decision> finish();
  /// A gzip-compressed context inflates a bounded piece per feed(): true while compressed
  /// bytes are left, to be drained with feed({}) before finish().
  [[nodiscard]] bool pending() const noexcept;

 private:
  class Gunzip;
  static constexpr std::size_t gunzip_piece = 256 * 1024;
  std::expected<std::string, Decision> feed_plain(std::string_view bytes,
                                                  const OwnershipIndex& index);
  std::expected<void, Decision> on_entry(const tar::Entry& entry, std::string& out);
  std::expected<void, Decision> on_entry_end(const OwnershipIndex& index, std::string& out);
  std::expected<void, Decision> emit_header(const tar::Entry& entry, std::string& out);
  std::expected<void, Decision> check_magic(bool final);
  bool below_symlink(std::string_view path) const;
  bool is_candidate(std::string_view path) const;
  std::unexpected<Decision> refuse(Decision decision);

  Tenant tenant_;
  std::vector<std::string> candidates_;         // paths dockerd may read as the Dockerfile
  std::vector<std::string> candidate_parents_;  // their proper parent directories
  std::vector<bool> seen_;                      // per candidate
  std::optional<Decision> refused_;             // sticky
  tar::Reader reader_;
  std::string magic_;  // the first bytes, to recognise compressed contexts
  std::unique_ptr<Gunzip> gunzip_;  // a gzip-compressed context
  bool magic_checked_ = false;
  bool wrote_header_ = false;
  bool holding_ = false;  // the current entry is a Dockerfile being collected
  tar::Entry held_entry_;
  std::string held_;
  std::uint64_t passing_size_ = 0;  // data size of the entry passed through
  std::set<std::string, std::less<>> symlinks_;
  std::size_t symlink_bytes_ = 0;
};

}  // namespace berth::policy
