#pragma once
// One request's facts and state, from its head to its account, in the request's own coroutine
// frame (an idle connection keeps none of it): what account() reports, what the stages hand
// each other (Admission), and a stage's refusal (Refusal).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/tar_filter.hpp"
#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/identity.hpp"
#include "policy/policy.hpp"
#include "policy/rewrite.hpp"
#include "proxy/config.hpp"
#include "proxy/net.hpp"

namespace berth::proxy {

class SharedIndex;
struct Admission;

/// What account() reports of a request, and what its steps record on the way.
struct Exchange {
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::string method;
  std::string target;
  std::string endpoint = "-";
  std::string tenant;
  std::string user;
  bool operator_ = false;
  bool allowed = false;
  std::string rule;
  unsigned status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool hijacked = false;
  std::string_view endpoint_class = "unclassified";
  bool stream = false;  // hijacked or endless: no latency observation
  const policy::Principal* principal = nullptr;  // for line filters during a relay
  std::string created_name;  // stored name of the object the request creates
  std::vector<policy::Cidr> created_subnets;  // the subnets a network create takes
  std::vector<std::string> ensured_volumes;  // volumes berth created for the request
  std::optional<policy::Decision> build_refusal;  // a build context refused mid-stream
  Admission* transfer = nullptr;  // a pull or push whose stream ends with berth's own steps
  std::string host;       // the fleet host that served it (a fleet only)
  std::string placement;  // a placed create: the choice and every refused host's reason
};

/// A stage's refusal: the decision, and whether the connection may carry the next request
/// (not when the refused request's body is still unread).
struct Refusal {
  policy::Decision decision;
  bool keep_alive = false;
  /// Nothing to answer: the client went away, or dockerd never saw the request. The
  /// connection ends.
  bool silent = false;

  static Refusal gone() { return Refusal{policy::Decision::deny(0, {}, "client.gone"), false, true}; }
};

/// Reservations a request holds in the ownership index until dockerd has answered: its quota
/// claim and a network's subnets. Released on every way out but the one that commits them
/// (deliver's index effects take the quota reservation; a created network enters the index
/// with its subnets).
class Reservations {
 public:
  explicit Reservations(SharedIndex& index) : index_(index) {}
  Reservations(const Reservations&) = delete;
  Reservations& operator=(const Reservations&) = delete;
  ~Reservations();

  std::uint64_t quota = 0;    ///< the quota reservation, 0 when none (or committed)
  std::uint64_t subnets = 0;  ///< the subnet reservation, 0 when none

 private:
  SharedIndex& index_;
};

using RequestParser = http::request_parser<http::buffer_body>;
using JudgedParser = http::request_parser<http::string_body>;

/// What the stages before forward build for it: the request as it will reach dockerd, or what
/// berth answers itself.
struct Admission {
  Admission(RequestParser& p, SharedIndex& index) : parser(p), reservations(index) {}

  RequestParser& parser;  // the client's head, and its body still to come
  std::shared_ptr<const Runtime> rt;  // this request's policy, whatever reloads meanwhile
  bool keep_alive = false;
  std::optional<policy::Principal> who;
  std::optional<policy::Classified> request;  // classified, then resolved
  std::optional<JudgedParser> judged;  // a judged body, read whole before anything is sent
  const policy::Tenant* rules = nullptr;  // a tenant's section of the policy
  policy::Rewritten rewritten;  // what dockerd receives (an operator's: the request as it is)
  std::unique_ptr<policy::TarBodyFilter> body_filter;  // a build context or an image archive
  Reservations reservations;
  /// The fleet host the request goes to: placement's choice for a container create (prepare),
  /// else routing's (forward). Points into rt.
  const HostRuntime* host = nullptr;
  /// A placed create's fixed host ports: held on its host from dockerd's answer on.
  std::vector<policy::HostPort> published;
  /// A placed create's image, which its host gets from the primary when it lacks it
  /// (provide_image): its id, and the repository and tag the create names it by (empty when
  /// the create names it by id).
  std::string image_id;
  std::string image_repo;
  std::string image_tag;
  // A pull or push (proxy/transfer.cpp): its steps around dockerd's answer are still to finish
  // (transfer_open), the digest a pull asks for, and whether dockerd's stream reported an error.
  bool transfer_open = false;
  std::string transfer_digest;
  bool transfer_failed = false;

  [[nodiscard]] bool tenant() const noexcept { return who && !who->is_operator(); }
  /// The head forwarded to dockerd: the judged body's parser once it took the head over.
  http::request_header<>& header() noexcept {
    return judged ? static_cast<http::request_header<>&>(judged->get())
                  : static_cast<http::request_header<>&>(parser.get());
  }
  /// Whether the client's connection may carry another request after this one.
  [[nodiscard]] bool client_keep_alive() const noexcept {
    return judged ? judged->get().keep_alive() : keep_alive;
  }
};

}  // namespace berth::proxy
