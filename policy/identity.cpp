#include "policy/identity.hpp"

namespace berth::policy {

std::string normalize_serial(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
  }
  std::string out;
  for (char ch : text) {
    if (ch == ':' || ch == ' ') {
      continue;
    }
    if (ch >= 'A' && ch <= 'F') {
      ch = static_cast<char>(ch - 'A' + 'a');
    }
    const bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    if (!hex) {
      return {};
    }
    if (out.empty() && ch == '0') {
      continue;
    }
    out.push_back(ch);
  }
  if (out.empty() && !text.empty()) {
    out.push_back('0');
  }
  return out;
}

std::expected<Principal, Decision> identify(const Policy& policy, const Identity& identity) {
  for (const auto& rule : policy.identities) {
    if (rule.common_name && *rule.common_name != identity.common_name) {
      continue;
    }
    if (rule.organization && *rule.organization != identity.organization) {
      continue;
    }
    if (rule.serial && *rule.serial != identity.serial) {
      continue;
    }
    Principal p;
    p.role = rule.role;
    p.tenant = rule.role == Role::tenant ? rule.tenant : std::string();
    p.user = identity.common_name;
    p.serial = identity.serial;
    p.rule_line = rule.line;
    return p;
  }
  return std::unexpected(Decision::deny(
      403,
      "berth: certificate identity CN=" + identity.common_name + ", O=" +
          identity.organization + " (serial " + identity.serial +
          ") is not known to this berth; ask the operator to add it to the policy",
      "identity.unknown"));
}

}  // namespace berth::policy
