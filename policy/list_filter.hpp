#pragma once
// The list filters berth applies itself, on the names a tenant sees: dockerd would apply them to
// stored names ("/acme_web", "acme.berth.local/app:v1"), where `name=^web$` or
// `reference=app:*` find nothing. The tenant's list then means what it means on a private host,
// anchors and all, and can only ever narrow what the tenant may see.
//
//  - name (containers, networks, volumes): dockerd's filters.Match, a value equal to the name
//    or a Go regular expression found in it; Go's regexp is RE2, so berth matches with RE2
//    (linear time whatever the pattern; an invalid one matches only by equality, as in Go).
//    A container matches with or without its leading '/'.
//  - id (containers): as name, on the id the tenant knows.
//  - reference (images): reference.FamiliarMatch, a path.Match glob on "name:tag" or on the
//    name alone; an image keeps only the references that match, and goes when none does.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace berth::policy {

struct ListFilter {
  std::vector<std::string> names;       ///< the tenant's `name` filter values
  std::vector<std::string> references;  ///< the tenant's `reference` filter values
  /// The tenant's container `id` filter values, matched as `name`'s on the id it knows (a
  /// moved container's is not the id its host gave it).
  std::vector<std::string> ids;
  [[nodiscard]] bool empty() const noexcept {
    return names.empty() && references.empty() && ids.empty();
  }
};

/// Compiled `name` patterns; matches everything when there are none.
class NameMatcher {
 public:
  explicit NameMatcher(const std::vector<std::string>& patterns);
  ~NameMatcher();
  NameMatcher(const NameMatcher&) = delete;
  NameMatcher& operator=(const NameMatcher&) = delete;
  [[nodiscard]] bool matches(std::string_view name) const;

 private:
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

/// reference.FamiliarMatch of one pattern against a familiar reference ("app:v1").
[[nodiscard]] bool reference_matches(std::string_view pattern, std::string_view familiar_ref);

}  // namespace berth::policy
