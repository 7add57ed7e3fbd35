#include "policy/list_filter.hpp"

#include <fnmatch.h>

#include <re2/re2.h>

namespace berth::policy {

struct NameMatcher::Compiled {
  explicit Compiled(const std::string& pattern, const RE2::Options& options)
      : re(pattern, options) {}
  RE2 re;
};

NameMatcher::NameMatcher(const std::vector<std::string>& patterns) : patterns_(patterns) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(1 << 20);  // a pattern too big to compile in this matches by equality only
  for (const auto& p : patterns_) {
    compiled_.push_back(std::make_unique<Compiled>(p, options));
  }
}

NameMatcher::~NameMatcher() = default;

bool NameMatcher::matches(std::string_view name) const {
  if (patterns_.empty()) {
    return true;
  }
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (patterns_[i] == name) {
      return true;
    }
    const RE2& re = compiled_[i]->re;
    if (re.ok() && RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), re)) {
      return true;
    }
  }
  return false;
}

bool reference_matches(std::string_view pattern, std::string_view familiar_ref) {
  const std::string p(pattern);
  const std::string ref(familiar_ref);
  if (::fnmatch(p.c_str(), ref.c_str(), FNM_PATHNAME) == 0) {
    return true;
  }
  // The name alone: "app:v1" and "app@sha256:..." are matched by "app" too.
  const auto slash = ref.rfind('/');
  const auto at = ref.find('@');
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && slash != std::string::npos && colon < slash) {
    colon = std::string::npos;  // a registry's port, not a tag
  }
  const auto end = std::min(at, colon);
  if (end == std::string::npos) {
    return false;
  }
  return ::fnmatch(p.c_str(), ref.substr(0, end).c_str(), FNM_PATHNAME) == 0;
}

}  // namespace berth::policy
