#include "policy/diagnostic.hpp"

namespace berth::policy {

std::string format(const Diagnostic& d) {
  std::string out = d.source;
  if (d.line > 0) {
    out += ':' + std::to_string(d.line);
    if (d.column > 0) {
      out += ':' + std::to_string(d.column);
    }
  }
  out += ": ";
  out += d.message;
  return out;
}

std::string format(const Diagnostics& ds) {
  std::string out;
  for (const auto& d : ds) {
    out += format(d);
    out += '\n';
  }
  return out;
}

}  // namespace berth::policy
