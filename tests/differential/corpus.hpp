#pragma once
// The generated corpus of the differential test: Dockerfiles and tar build contexts built from
// every trick the outside review used and many more (BOMs, Unicode and ASCII whitespace,
// continuation and comment edge cases, escape directives, JSON forms, flags, CRLF, long lines;
// GNU and PAX extension records in every combination, numeric field spellings, links, duplicate
// names), plus random byte mutations. Deterministic for a seed.

#include <cstdint>
#include <string>
#include <vector>

namespace berth::differential {

struct Case {
  enum class Kind { dockerfile, tar };
  Kind kind = Kind::dockerfile;
  std::string label;             ///< how it was made, for failure reports
  std::string data;              ///< the Dockerfile text or the tar bytes
  std::string dockerfile_param;  ///< tar: the build's "dockerfile" query value
};

/// `dockerfiles` Dockerfile cases and `tars` tar cases (hand-written ones first).
std::vector<Case> generate(std::uint64_t seed, std::size_t dockerfiles, std::size_t tars);

}  // namespace berth::differential
