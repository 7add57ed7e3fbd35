#include "policy/decision.hpp"

#include <nlohmann/json.hpp>

namespace berth::policy {

std::string docker_error_body(std::string_view message) {
  // dockerd writes errors with json.NewEncoder, hence the trailing newline. Invalid UTF-8 in a
  // reference the client sent is replaced rather than allowed to throw.
  nlohmann::json body = {{"message", std::string(message)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace berth::policy
