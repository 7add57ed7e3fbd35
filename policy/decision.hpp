#pragma once
// The outcome of every judgement the policy makes: allow, or refuse with the status dockerd
// would use, a message for the tenant and the id of the rule that decided.

#include <string>

namespace berth::policy {

enum class Verdict { allow, deny };

struct Decision {
  Verdict verdict = Verdict::deny;
  unsigned http_status = 403;
  std::string tenant_message;  ///< what the client is told (Docker-shaped {"message": ...})
  std::string rule_id;         ///< stable id of the rule, for audit and metrics

  [[nodiscard]] bool allowed() const noexcept { return verdict == Verdict::allow; }

  static Decision allow(std::string rule_id) {
    return Decision{Verdict::allow, 200, {}, std::move(rule_id)};
  }
  static Decision deny(unsigned status, std::string message, std::string rule_id) {
    return Decision{Verdict::deny, status, std::move(message), std::move(rule_id)};
  }
};

/// The body dockerd sends with an error: {"message":"..."} followed by a newline.
std::string docker_error_body(std::string_view message);

}  // namespace berth::policy
