#pragma once
// Control-plane errors: what is wrong with an operator's file, where, and why.

#include <string>
#include <vector>

namespace berth::policy {

/// One problem found while loading a control-plane input. Lines and columns are 1-based;
/// 0 means "not tied to a position".
struct Diagnostic {
  std::string source;
  int line = 0;
  int column = 0;
  std::string message;
};

using Diagnostics = std::vector<Diagnostic>;

/// "policy.yaml:12:5: expected a mapping" (position parts omitted when unknown).
std::string format(const Diagnostic& d);
/// All diagnostics, one per line.
std::string format(const Diagnostics& ds);

}  // namespace berth::policy
