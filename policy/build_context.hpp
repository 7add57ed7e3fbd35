#pragma once
// The build context a tenant sends to the classic builder (POST /build) is a tar stream with
// the Dockerfile inside. The builder resolves FROM and COPY --from images from the daemon's
// whole image store, so a Dockerfile could build on another tenant's image by its stored name.
// BuildContextFilter passes the tar through unchanged except the Dockerfile, whose image
// references are resolved in the tenant's namespace (its own tags, shared images, images it
// may see by id) and rewritten to what dockerd must use. Contexts berth cannot judge
// (compressed, a Dockerfile that is a link, a variable in an image reference) are refused.

#include <expected>
#include <string>
#include <string_view>

#include "policy/decision.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"

namespace berth::policy {

/// Rewrites image references in a Dockerfile for the tenant `rules` describes (its id and the
/// shared images it may use). Refuses references it cannot judge or the tenant may not use.
[[nodiscard]] std::expected<std::string, Decision> rewrite_dockerfile(
    const Tenant& rules, std::string_view dockerfile, const OwnershipIndex& index);

class BuildContextFilter {
 public:
  /// `dockerfile_param` is the build's "dockerfile" query value (empty: "Dockerfile").
  BuildContextFilter(Tenant rules, std::string dockerfile_param);

  /// Consumes body bytes; returns the bytes to forward now (possibly fewer: a header or the
  /// Dockerfile is held back until complete). `index` resolves image references.
  [[nodiscard]] std::expected<std::string, Decision> feed(std::string_view bytes,
                                                          const OwnershipIndex& index);
  /// The body ended: refuses a context that stopped mid-entry or had no Dockerfile.
  [[nodiscard]] std::expected<std::string, Decision> finish();

 private:
  enum class State { header, data, dockerfile, padding, end };
  std::expected<void, Decision> on_header(const OwnershipIndex& index, std::string& out);

  Tenant tenant_;
  std::string wanted_;        // cleaned dockerfile path
  std::string wanted_lower_;  // dockerd also accepts a lowercase "dockerfile"
  State state_ = State::header;
  std::string held_;          // a partial header block, or the Dockerfile being collected
  std::string held_header_;   // the Dockerfile's header block
  std::uint64_t remaining_ = 0;  // data bytes left in the current entry
  std::uint64_t padding_ = 0;
  std::string next_name_;     // from a PAX or GNU long-name record
  bool pax_size_ = false;
  std::string meta_;          // content of a PAX/long-name entry being read
  char meta_type_ = 0;
  bool first_block_ = true;
  bool saw_dockerfile_ = false;
  bool skip_padding_ = false;
  int zero_blocks_ = 0;
};

}  // namespace berth::policy
