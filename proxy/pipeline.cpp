// The request pipeline, top to bottom: identify -> classify -> resolve -> authorize and
// rewrite -> prepare -> forward -> deliver (the filter) -> account. Each stage gives the next
// its input or a Refusal; pipeline() answers a refusal at one place, and serve() accounts.

#include <string>

#include "policy/authorize.hpp"
#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

net::awaitable<bool> Session::pipeline(RequestParser& parser, Exchange& ex) {
  Admission a(parser, worker_.index());
  // 1-5: identify, classify, resolve, authorize and rewrite, prepare.
  if (std::optional<Refusal> refusal = co_await admit(a, ex)) {
    if (refusal->silent) {
      ex.rule = refusal->decision.rule_id;
      co_return false;
    }
    co_return co_await refuse(refusal->decision, refusal->keep_alive, ex);
  }
  ex.allowed = true;
  if (a.rewritten.local_reply) {
    co_return co_await answer_locally(a, ex);
  }
  if (const auto kind = a.rt->fleet() ? fan_out_of(a.request->route->endpoint) : std::nullopt) {
    co_return co_await fan_out(a, ex, *kind);  // every host's, merged
  }
  if (a.rt->fleet() && a.request->route->endpoint == "system.events") {
    co_return co_await fan_out_events(a, ex);
  }
  if (a.rt->fleet() && a.request->route->endpoint == "network.delete") {
    co_return co_await delete_fleet_network(a, ex);
  }
  if (a.request->route->endpoint == "container.migrate") {
    co_return co_await migrate_container(a, ex);  // berth's own, never dockerd's
  }
  if (a.request->route->endpoint == "host.drain") {
    co_return co_await drain_host(a, ex);  // berth's own, never dockerd's
  }
  // 6. forward to dockerd (the host of the fleet that serves the request); its answer's head.
  Answer answer;
  if (std::optional<policy::Decision> no_host = route_request(a, answer, ex)) {
    co_return co_await refuse(*no_host, false, ex);  // its host is down: nothing was prepared
  }
  if (std::optional<Refusal> refusal = co_await forward(a, answer, ex)) {
    co_await drop_ensured_volumes(a, ex);
    if (a.transfer_open) {
      (void)co_await end_transfer(a, false);
    }
    if (refusal->silent) {
      ex.rule = refusal->decision.rule_id;
      co_return false;
    }
    co_return co_await refuse(refusal->decision, refusal->keep_alive, ex);
  }
  // 7. deliver the answer: passed, rewritten for the tenant, or spliced.
  const bool removed_image = a.rt->fleet() && a.tenant() && answer.head.status == 200 &&
                             (a.request->route->endpoint == "image.delete" ||
                              a.request->route->endpoint == "image.prune");
  const bool keep = co_await deliver(a, answer, ex);
  if (removed_image) {
    co_await propagate_image_removal(a);  // berth's copies on the other hosts
  }
  if (a.transfer_open) {  // the stream did not reach its end: a push's name goes all the same
    (void)co_await end_transfer(a, false);
  }
  // A refused create leaves nothing behind (dockerd makes a container's volumes only once the
  // create succeeds).
  if (ex.status >= 400 || ex.status == 0) {
    co_await drop_ensured_volumes(a, ex);
  }
  co_return keep;
}

// The stages that may wait (a reference missing from the index, a judged body, a tenant's
// preparations) are entered only when they have something to wait for: each coroutine frame
// costs an allocation and the executor's bookkeeping, a tenth of a /_ping's instructions in all.
net::awaitable<std::optional<Refusal>> Session::admit(Admission& a, Exchange& ex) {
  if (auto refusal = check_head(a, ex)) {
    co_return refusal;
  }
  if (auto refusal = identify(a, ex)) {
    co_return refusal;
  }
  if (auto refusal = classify(a, ex)) {
    co_return refusal;
  }
  Resolved resolved = look_up(a);
  if (worth_asking_dockerd(a, resolved)) {
    co_await refresh_reference(worker_.index(), worker_.pool(), a.rt,
                               policy::ref_kind(*a.request->route), a.who->tenant,
                               a.request->params.front());
    resolved = look_up(a);
  }
  if (switching(a, resolved)) {
    co_await hold_while_switching(resolved->params.front());
    resolved = look_up(a);
  }
  if (auto refusal = resolve(a, std::move(resolved), ex)) {
    co_return refusal;
  }
  if (a.tenant() && !a.parser.is_done()) {
    if (auto refusal = co_await read_judged_body(a, ex)) {
      co_return refusal;
    }
  }
  if (auto refusal = authorize_and_rewrite(a, ex)) {
    // A push or a save names its images by tag in the query: one the tenant tagged a moment
    // ago may not have reached the index from dockerd's events yet. Asked once, then judged
    // again.
    const std::string_view endpoint = a.request->route->endpoint;
    if (refusal->decision.rule_id != "resolve.image" ||
        (endpoint != "image.push" && endpoint != "image.save")) {
      co_return refusal;
    }
    for (std::string& ref : image_refs_in_query(*a.request)) {
      co_await refresh_reference(worker_.index(), worker_.pool(), a.rt, policy::RefKind::image,
                                 a.who->tenant, std::move(ref));
    }
    if (auto again = authorize_and_rewrite(a, ex)) {
      co_return again;
    }
  }
  if (!a.tenant() || a.rewritten.local_reply) {
    co_return std::nullopt;  // nothing to prepare
  }
  co_return co_await prepare(a, ex);
}

std::optional<Refusal> Session::check_head(Admission& a, Exchange& ex) {
  const auto& req = a.parser.get();
  ex.method = std::string(req.method_string());
  ex.target = std::string(req.target());
  a.keep_alive = req.keep_alive() && a.parser.is_done();
  a.rt = worker_.runtime().get();
  if (!certificate_slot_.held()) {
    return Refusal{policy::Decision::deny(429,
                                          "berth: this client certificate already holds " +
                                              std::to_string(worker_.limits().per_certificate) +
                                              " connections to berth; close some and retry",
                                          "limit.connections"),
                   false};
  }
  // RFC 9110 10.1.1: berth answers Expect itself and never forwards it; an expectation other
  // than 100-continue fails, as Go's server fails it.
  if (const auto expect = req[http::field::expect];
      !expect.empty() && !beast::iequals(expect, "100-continue")) {
    return Refusal{policy::Decision::deny(417, "berth: unsupported Expect: " + std::string(expect),
                                          "http.expect"),
                   false};
  }
  return std::nullopt;
}

// 1. The verified client certificate as a tenant or an operator.
std::optional<Refusal> Session::identify(Admission& a, Exchange& ex) {
  auto who = policy::identify(*a.rt->policy, identity_);
  if (!who) {
    return Refusal{who.error(), false};
  }
  a.who = std::move(*who);
  ex.tenant = a.who->tenant;
  ex.user = a.who->user;
  ex.operator_ = a.who->is_operator();
  if (a.tenant()) {
    a.rules = a.rt->policy->find_tenant(a.who->tenant);
    if (a.rules == nullptr) {
      return Refusal{policy::Decision::deny(
                         403, "berth: tenant " + a.who->tenant + " is not in the policy",
                         "identity.unknown"),
                     false};
    }
  }
  return std::nullopt;
}

// 2. Method, path and API version against the endpoint table.
std::optional<Refusal> Session::classify(Admission& a, Exchange& ex) {
  auto request = policy::classify(ex.method, ex.target);
  if (!request) {
    return Refusal{request.error(), a.keep_alive};
  }
  a.request = std::move(*request);
  ex.endpoint = std::string(a.request->route->endpoint);
  ex.endpoint_class = policy::access_name(a.request->route->access);
  return std::nullopt;
}

// 3. References in the path, within the tenant's own objects. The index answers without a
//    round trip; only a miss is checked with dockerd (admit) before "no such object".
Session::Resolved Session::look_up(Admission& a) {
  return worker_.index().read([&](const policy::OwnershipIndex& idx) {
    return policy::resolve(*a.who, *a.request, idx);
  });
}

// The image references a push (its path and tag=) or a save (each names=) gives.
std::vector<std::string> Session::image_refs_in_query(const policy::Classified& request) {
  std::vector<std::string> refs;
  const auto q = policy::parse_query(request.query);
  if (request.route->endpoint == "image.push") {
    std::string ref = request.params.front() + ":";
    for (const auto& [key, value] : q.value_or(decltype(q)::value_type{})) {
      if (key == "tag") {
        ref += value;
        break;
      }
    }
    refs.push_back(std::move(ref));
    return refs;
  }
  for (const auto& [key, value] : q.value_or(decltype(q)::value_type{})) {
    if (key == "names" && refs.size() < 16) {
      refs.push_back(value);
    }
  }
  return refs;
}

bool Session::worth_asking_dockerd(const Admission& a, const Resolved& resolved) {
  return !resolved && resolved.error().http_status == 404 &&
         policy::ref_kind(*a.request->route) != policy::RefKind::none;
}

// A container a migration is switching between hosts: from its twin's creation to the commit
// or rollback, the name leads to a twin not yet restored and the id to a source that stops.
// A request for it waits for the switch to end, then is resolved again, so it reaches the
// container where it runs. One atomic load when no migration runs.
bool Session::switching(const Admission& a, const Resolved& resolved) {
  return resolved && !resolved->params.empty() &&
         policy::ref_kind(*a.request->route) == policy::RefKind::container &&
         worker_.index().switching(resolved->params.front());
}

net::awaitable<void> Session::hold_while_switching(std::string key) {
  constexpr auto hold_limit = std::chrono::seconds(30);
  constexpr auto step = std::chrono::milliseconds(20);
  const auto until = std::chrono::steady_clock::now() + hold_limit;
  net::steady_timer pause(client_.get_executor());
  while (worker_.index().switching(key) && std::chrono::steady_clock::now() < until) {
    pause.expires_after(step);
    error_code ignored;
    co_await pause.async_wait(with_ec(ignored));
  }
}

std::optional<Refusal> Session::resolve(Admission& a, Resolved resolved, Exchange& ex) {
  if (!resolved) {
    return Refusal{resolved.error(), a.keep_alive};
  }
  a.request = std::move(*resolved);
  const policy::Decision decision = policy::authorize_route(*a.who, *a.request);
  if (!decision.allowed()) {
    return Refusal{decision, a.keep_alive};
  }
  ex.rule = decision.rule_id;
  return std::nullopt;
}

// A judged body is read whole before anything reaches dockerd: dockerd acts on a complete
// JSON document even when the connection is cut right after it. A body where dockerd reads
// none, or on an attach (Go's ParseForm would read a form-encoded one as parameters), is
// refused. admit() calls this only for a tenant's request whose body is still to come; an
// operator's body is relayed as it comes.
net::awaitable<std::optional<Refusal>> Session::read_judged_body(Admission& a, Exchange& ex) {
  RequestParser& parser = a.parser;
  const policy::BodyMode mode = a.request->route->body;
  if (mode == policy::BodyMode::none || mode == policy::BodyMode::hijack) {
    co_return Refusal{policy::Decision::deny(400, "berth: " + ex.endpoint +
                                                      " takes no request body",
                                             "body.unexpected"),
                      false};
  }
  if (!policy::judged_body(mode)) {
    co_return std::nullopt;  // a stream: judged as it is relayed (build contexts)
  }
  // Beast compares a Content-Length with the body limit only while it parses the head, and
  // the head was parsed with no limit (a stream body may be large): a declared length is
  // checked here, before a byte of it is read; a chunked body meets the limit as it comes.
  if (const auto declared = parser.content_length(); declared && *declared > judged_body_limit) {
    co_return Refusal{policy::Decision::deny(413,
                                             "berth: request body too large (" +
                                                 std::to_string(*declared) +
                                                 " bytes; at most " +
                                                 std::to_string(judged_body_limit) + " for " +
                                                 ex.endpoint + ")",
                                             "body.too_large"),
                      false};
  }
  if (!co_await continue_if_expected(parser)) {
    co_return Refusal::gone();  // the client went away
  }
  a.judged.emplace(std::move(parser));
  a.judged->body_limit(judged_body_limit);
  arm(request_read_timeout, Phase::body);
  error_code ec;
  co_await http::async_read(client_, buffer_, *a.judged, with_ec(ec));
  disarm();
  if (ec == http::error::body_limit) {
    co_return Refusal{policy::Decision::deny(413, "berth: request body too large",
                                             "body.too_large"),
                      false};
  }
  if (ec) {
    co_return Refusal{policy::Decision::deny(
                          400, "berth: request body could not be read: " + ec.message(),
                          "body.unreadable"),
                      false};
  }
  co_return std::nullopt;
}

// 4. The tenant's request judged and rewritten by policy (an operator's goes as it is). A
//    network create's subnets are reserved under the index's write lock, so two creates at
//    once never take the same range; when another took one meanwhile, the request is judged
//    again (a few times) against the index that has it.
std::optional<Refusal> Session::authorize_and_rewrite(Admission& a, Exchange& ex) {
  (void)ex;
  if (!a.tenant()) {
    a.rewritten.target = policy::canonical_target(*a.request);
    return std::nullopt;
  }
  SharedIndex& index = worker_.index();
  const auto facts = index.facts();
  const std::string_view body =
      a.judged ? std::string_view(a.judged->get().body()) : std::string_view();
  for (int attempt = 0;; ++attempt) {
    a.rewritten = index.read([&](const policy::OwnershipIndex& idx) {
      return policy::rewrite_for_tenant(*a.who, *a.request, body, idx, *facts, *a.rules);
    });
    if (!a.rewritten.decision.allowed()) {
      return Refusal{a.rewritten.decision, a.client_keep_alive()};
    }
    if (a.rewritten.claimed_subnets.empty()) {
      return std::nullopt;
    }
    a.reservations.subnets = index.write([&](policy::OwnershipIndex& idx) {
      return idx.reserve_subnets(a.rewritten.claimed_subnets);
    });
    if (a.reservations.subnets != 0) {
      return std::nullopt;
    }
    if (attempt == 2) {
      return Refusal{policy::Decision::deny(
                         409, "berth: other networks took the address ranges meanwhile; retry",
                         "network.busy"),
                     a.client_keep_alive()};
    }
  }
}

bool Session::expects_continue(RequestParser& parser) {
  return !parser.is_done() && !parser.get()[http::field::expect].empty();
}

net::awaitable<bool> Session::continue_if_expected(RequestParser& parser) {
  // A client that asked to wait (Expect: 100-continue) sends its body once berth has judged
  // the head and is about to read it; one that did not ask, or whose body is already here,
  // gets nothing.
  if (!expects_continue(parser)) {
    co_return true;
  }
  static constexpr std::string_view continue_head = "HTTP/1.1 100 Continue\r\n\r\n";
  arm(client_write_timeout, Phase::write);
  error_code ec;
  co_await net::async_write(client_, net::buffer(continue_head), with_ec(ec));
  disarm();
  co_return !ec;
}

// What a private host with nothing of this kind would say (a tenant has no plugins).
net::awaitable<bool> Session::answer_locally(Admission& a, Exchange& ex) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "berth");
  res.body() = *a.rewritten.local_reply;
  res.keep_alive(a.client_keep_alive() && !worker_.draining());
  res.prepare_payload();
  ex.status = 200;
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

}  // namespace berth::proxy
