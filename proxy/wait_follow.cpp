// A tenant's `docker wait` (and the wait of an attached `docker run`) on a container that a
// migration moves. dockerd answers the wait when the source stops into its checkpoint, with
// the dump's exit status 137, though the container goes on running on its twin. On a fleet,
// berth reads a wait's answer before passing it on: when it came while the container was
// switching hosts, berth waits for the switch's end, finds the container where it runs now (the
// twin, or the source again after a rollback) and asks that host's dockerd for the wait
// instead, as often as the container moves. The head leaves at once, as dockerd's does: a
// client's ContainerWait returns on it, and `docker run` starts the container only then.

#include <array>
#include <string>
#include <utility>

#include "policy/query.hpp"
#include "policy/rewrite.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {

// A wait's answer is one small JSON document.
constexpr std::size_t wait_body_limit = 64 * 1024;

// The condition of a wait asked again. Its own exit was the move's, so a wait for the next
// exit now waits for the twin to stop, which "not-running" says of a running container and
// answers at once of one that stopped since. Only a request that named a condition (API 1.30
// and later) names one again.
std::string condition_again(std::string_view query) {
  const auto q = policy::parse_query(query);
  for (const auto& [key, value] : q.value_or(decltype(q)::value_type{})) {
    if (key == "condition") {
      return value == "removed" ? "?condition=removed" : "?condition=not-running";
    }
  }
  return "";
}

}  // namespace

bool Session::follows_wait(const Admission& a, const Answer& answer) const {
  return a.tenant() && a.rt->fleet() && !answer.is_head &&
         answer.parser.get().result_int() == 200 &&
         a.request->route->endpoint == "container.wait" && !a.request->params.empty();
}

net::awaitable<bool> Session::follow_wait(Admission& a, Answer& answer, Exchange& ex) {
  auto& res = answer.parser.get();
  const bool keep_alive = a.client_keep_alive() && !worker_.draining();
  res.keep_alive(keep_alive);
  res.erase(http::field::content_length);
  res.chunked(true);
  http::response_serializer<http::buffer_body> sr{res};
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = true;
  error_code ec;
  arm(client_write_timeout, Phase::write);
  co_await http::async_write_header(client_, sr, with_ec(ec));
  disarm();
  if (ec) {
    answer.upstream->close();
    co_return false;
  }
  std::string waited_on = a.request->params.front();  // the container's id on its host
  std::optional<std::string> body = co_await read_wait_body(answer, *a.rt);
  // A container moves a few times at most while one wait lasts; the bound keeps a fleet
  // that moves it back and forth without end from holding the request forever.
  for (int asked = 0; body && asked < 16 && worker_.index().switching(waited_on); ++asked) {
    co_await hold_while_switching(waited_on);
    auto place = where_waited(a);
    if (!place) {
      break;  // removed meanwhile: the source's answer is the last word
    }
    Answer again;
    if (!co_await ask_wait_again(a, place->first, place->second, again)) {
      break;
    }
    log_info("wait on " + a.request->refs.front() + " for " + peer_ + " follows it to " +
             place->second.host->name);
    auto next = co_await read_wait_body(again, *a.rt);
    if (!next) {
      body.reset();  // the client went away, or dockerd ended the wait without an answer
      break;
    }
    body = std::move(next);
    waited_on = place->first;
  }
  if (!body) {
    co_return false;
  }
  res.body().data = body->data();
  res.body().size = body->size();
  res.body().more = false;
  ex.bytes_out += body->size();
  arm(client_write_timeout, Phase::write);
  co_await http::async_write(client_, sr, with_ec(ec));
  disarm();
  co_return (!ec || ec == http::error::need_buffer) && keep_alive;
}

// The rest of a wait's answer, read while the client is watched: a client that hangs up closes
// the connection to dockerd, and the read fails (dockerd then drops the wait).
net::awaitable<std::optional<std::string>> Session::read_wait_body(Answer& answer,
                                                                   const Runtime& rt) {
  bool watch_done = false;
  net::co_spawn(client_.get_executor(), watch_client(shared_from_this(), answer.upstream),
                [self = shared_from_this(), &watch_done](std::exception_ptr) {
                  watch_done = true;
                  self->signal_join();
                });
  ResponseParser& rp = answer.parser;
  std::array<char, 4096> window{};
  std::string body;
  error_code ec;
  while (!rp.is_done() && !ec) {
    rp.get().body().data = window.data();
    rp.get().body().size = window.size();
    co_await http::async_read_some(*answer.upstream, answer.buffer, rp, with_ec(ec));
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    body.append(window.data(), window.size() - rp.get().body().size);
    if (body.size() > wait_body_limit) {
      ec = http::error::body_limit;
    }
  }
  if (!watch_done) {
    error_code ignored;
    client_.socket().cancel(ignored);
  }
  co_await join(watch_done);
  if (ec || closed_) {
    answer.upstream->close();
    co_return std::nullopt;
  }
  if (rp.get().keep_alive() && answer.buffer.size() == 0) {
    release_upstream(std::move(answer.upstream), rt, answer.target);
  } else {
    answer.upstream->close();
  }
  co_return body;
}

// Where the container the tenant named runs now: its id there and that host. nullopt when the
// tenant's reference no longer leads to a container.
std::optional<std::pair<std::string, Target>> Session::where_waited(const Admission& a) {
  policy::Classified again = *a.request;
  again.params = again.refs;
  const auto found = worker_.index().read(
      [&](const policy::OwnershipIndex& idx) -> std::optional<std::pair<std::string, std::string>> {
        const auto resolved = policy::resolve(*a.who, again, idx);
        if (!resolved || resolved->params.empty()) {
          return std::nullopt;
        }
        auto host = idx.host_of_container(resolved->params.front());
        if (!host) {
          return std::nullopt;
        }
        return std::pair{resolved->params.front(), std::move(*host)};
      });
  const HostRuntime* host = found ? a.rt->host(found->second) : nullptr;
  if (host == nullptr) {
    return std::nullopt;
  }
  return std::pair{found->first, Target{host}};
}

// The wait asked of the container `id` on `to`, its answer's head read into `answer`. False
// when the host could not be reached or did not answer 200.
net::awaitable<bool> Session::ask_wait_again(const Admission& a, const std::string& id, Target to,
                                             Answer& answer) {
  const std::string& version = a.request->api_version;
  http::request<http::empty_body> req{http::verb::post,
                                      (version.empty() ? "" : "/v" + version) + "/containers/" +
                                          id + "/wait" + condition_again(a.request->query),
                                      11};
  req.set(http::field::host, "docker");
  req.keep_alive(true);
  req.content_length(0);
  auto acquired = co_await worker_.pool().acquire(a.rt, to);
  if (!acquired || closed_) {
    co_return false;  // closed_: as in forward(), nothing new starts on a closed session
  }
  answer.upstream = std::move(*acquired);
  upstream_in_use_ = answer.upstream;  // close() cancels the wait there
  answer.target = to;
  error_code ec;
  co_await http::async_write(*answer.upstream, req, with_ec(ec));
  if (!ec) {
    co_await http::async_read_header(*answer.upstream, answer.buffer, answer.parser, with_ec(ec));
  }
  if (ec || answer.parser.get().result_int() != 200) {
    answer.upstream->close();
    co_return false;
  }
  co_return true;
}

}  // namespace berth::proxy
