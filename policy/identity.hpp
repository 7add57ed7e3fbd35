#pragma once
// identify: the verified client certificate's identity -> the principal berth acts for.
// Refuses identities that no rule of the policy names.

#include <expected>
#include <string>

#include "policy/decision.hpp"
#include "policy/policy.hpp"

namespace berth::policy {

/// What a verified client certificate says about its holder.
struct Identity {
  std::string common_name;
  std::string organization;
  std::string serial;  ///< lowercase hex, no leading zeros
};

struct Principal {
  Role role = Role::tenant;
  std::string tenant;  ///< empty for operators
  std::string user;    ///< the certificate's common name
  std::string serial;
  int rule_line = 0;

  [[nodiscard]] bool is_operator() const noexcept { return role == Role::operator_; }
};

/// Maps an identity to a principal with the first matching identity rule; an identity no rule
/// matches is refused with 403 (rule "identity.unknown").
[[nodiscard]] std::expected<Principal, Decision> identify(const Policy& policy,
                                                          const Identity& identity);

/// Normalizes a serial written by an operator ("01:AB", "0x1ab", "1AB") to lowercase hex
/// without leading zeros; empty when it is not hex.
std::string normalize_serial(std::string_view text);

}  // namespace berth::policy
