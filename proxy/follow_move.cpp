// A tenant's request that waits on a container a migration moves: `docker wait` (and the wait
// of an attached `docker run`) and `docker logs -f`. dockerd ends both when the source stops
// into its checkpoint (the wait with the dump's exit status 137), though the container goes
// on running on its twin. On a fleet, berth notices the end of such an answer: when it came
// while the container was switching hosts, berth waits for the switch's end, finds the
// container where it runs now (the twin, or the source again after a rollback) and asks that
// host's dockerd again, as often as the container moves. A wait's answer is read before it is
// passed on, and the answer from where the container ends is the client's; a log stream goes
// on in the same answer with what the container writes where it runs now. The head leaves at
// once, as dockerd's does: a client's ContainerWait returns on it, and `docker run` starts the
// container only then.

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A container moves a few times at most while one request lasts; the bound keeps a fleet
// that moves it back and forth without end from holding the request forever.
constexpr int asked_again_limit = 16;

// The value of `key` in the judged query of `target`; empty when it has none.
std::string judged_value(std::string_view target, std::string_view key) {
  for (const auto& [k, value] : query_params(target)) {
    if (k == key) {
      return value;
    }
  }
  return "";
}

// The query of a wait asked again. Its own exit was the move's, so a wait for the next exit
// now waits for the twin to stop, which "not-running" says of a running container and answers
// at once of one that stopped since. Only a request that named a condition (API 1.30 and
// later) names one again.
std::string wait_query_again(std::string_view target) {
  const std::string condition = judged_value(target, "condition");
  if (condition.empty()) {
    return "";
  }
  return condition == "removed" ? "?condition=removed" : "?condition=not-running";
}

// A Unix time as the judged query spells it ("<seconds>[.<up to nine digits>]") as seconds
// and nanoseconds; nullopt for anything else.
std::optional<std::pair<std::int64_t, std::int64_t>> unix_time(std::string_view text) {
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  std::int64_t seconds = 0;
  const auto [end, err] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  if (err != std::errc() || end != whole.data() + whole.size()) {
    return std::nullopt;
  }
  std::int64_t nanos = 0;
  if (dot != std::string_view::npos) {
    std::string fraction(text.substr(dot + 1));
    fraction.resize(9, '0');
    const auto [fend, ferr] =
        std::from_chars(fraction.data(), fraction.data() + fraction.size(), nanos);
    if (ferr != std::errc() || fend != fraction.data() + fraction.size()) {
      return std::nullopt;
    }
  }
  return std::pair{seconds, nanos};
}

// The query of a log stream asked again where the container runs now: the request's own
// (stdout, stderr, timestamps, details, until), with what the client already has left out.
// The history there holds what the source wrote, which the client was sent: only lines from
// `ended` on (when the source's stream ended, before the container ran anywhere again) are
// asked for, or from the client's own `since` if that is later, and all of them, whatever the
// client's tail.
std::string logs_query_again(std::string_view target, std::chrono::system_clock::time_point ended) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(ended.time_since_epoch()).count();
  const std::pair<std::int64_t, std::int64_t> from{nanos / 1000000000, nanos % 1000000000};
  char stamp[48];
  std::snprintf(stamp, sizeof stamp, "%lld.%09lld", static_cast<long long>(from.first),
                static_cast<long long>(from.second));
  std::string since = stamp;
  std::vector<std::pair<std::string, std::string>> params;
  for (auto& [key, value] : query_params(target)) {
    if (key == "since") {
      if (const auto asked = unix_time(value); asked && *asked > from) {
        since = std::move(value);
      }
    } else if (key != "tail") {
      params.emplace_back(std::move(key), std::move(value));
    }
  }
  params.emplace_back("since", std::move(since));
  return "?" + policy::build_query(params);
}

}  // namespace

Session::Follow Session::follows_move(const Admission& a, const Answer& answer) const {
  if (!a.tenant() || !a.rt->fleet() || answer.is_head || answer.parser.get().result_int() != 200 ||
      a.request->params.empty()) {
    return Follow::none;
  }
  const std::string_view endpoint = a.request->route->endpoint;
  if (endpoint == "container.wait") {
    return Follow::wait;
  }
  if (endpoint == "container.logs" && judged_value(a.rewritten.target, "follow") == "1") {
    return Follow::logs;
  }
  return Follow::none;
}

net::awaitable<bool> Session::follow_move(Admission& a, Answer& answer, Exchange& ex,
                                          Follow follow) {
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
  bool ok = false;
  if (follow == Follow::wait) {
    ok = co_await follow_wait(a, answer, sr, ex);
  } else {
    ok = co_await follow_logs(a, answer, sr, ex);
  }
  if (!ok) {
    co_return false;
  }
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = false;
  arm(client_write_timeout, Phase::write);
  co_await http::async_write(client_, sr, with_ec(ec));
  disarm();
  co_return (!ec || ec == http::error::need_buffer) && keep_alive;
}

// The answer to a wait: the one from where the container ends, or the source's when it did
// not move. Written as one chunk; false when the client went away or no answer came.
net::awaitable<bool> Session::follow_wait(Admission& a, Answer& answer, FollowSerializer& sr,
                                          Exchange& ex) {
  std::string waited_on = a.request->params.front();  // the container's id on its host
  std::optional<std::string> body = co_await read_wait_body(answer, *a.rt);
  for (int asked = 0; body && asked < asked_again_limit && worker_.index().switching(waited_on);
       ++asked) {
    co_await hold_while_switching(waited_on);
    auto place = where_now(a);
    if (!place) {
      break;  // removed meanwhile: the source's answer is the last word
    }
    auto again = std::make_unique<Answer>();
    const std::string target =
        "/containers/" + place->first + "/wait" + wait_query_again(a.rewritten.target);
    if (!co_await ask_again(a, http::verb::post, target, place->second, *again)) {
      break;
    }
    log_info("wait on " + a.request->refs.front() + " for " + peer_ + " follows it to " +
             place->second.host->name);
    auto next = co_await read_wait_body(*again, *a.rt);
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
  auto& res = answer.parser.get();  // the head `sr` wrote
  res.body().data = body->data();
  res.body().size = body->size();
  res.body().more = true;
  ex.bytes_out += body->size();
  error_code ec;
  arm(client_write_timeout, Phase::write);
  co_await http::async_write(client_, sr, with_ec(ec));
  disarm();
  co_return !ec || ec == http::error::need_buffer;
}

// A log stream: the source's, then, each time it ended because its container was switching
// hosts, the stream of where the container runs now, from the moment the last one ended.
// False when the client went away or a stream broke.
net::awaitable<bool> Session::follow_logs(Admission& a, Answer& answer, FollowSerializer& sr,
                                          Exchange& ex) {
  std::string followed = a.request->params.front();  // the container's id on its host
  std::unique_ptr<Answer> again;
  Answer* from = &answer;
  for (int asked = 0;; ++asked) {
    if (!co_await relay_followed(*from, answer.parser.get(), sr, *a.rt, ex)) {
      co_return false;
    }
    const auto ended = std::chrono::system_clock::now();
    if (asked == asked_again_limit || !worker_.index().switching(followed)) {
      co_return true;  // the container stopped (or ran for the last time) where it was
    }
    co_await hold_while_switching(followed);
    auto place = where_now(a);
    if (!place) {
      co_return true;  // removed meanwhile
    }
    again = std::make_unique<Answer>();
    const std::string target =
        "/containers/" + place->first + "/logs" + logs_query_again(a.rewritten.target, ended);
    if (!co_await ask_again(a, http::verb::get, target, place->second, *again)) {
      co_return true;
    }
    log_info("logs of " + a.request->refs.front() + " for " + peer_ + " follow it to " +
             place->second.host->name);
    followed = place->first;
    from = again.get();
  }
}

// One log stream's body, written to the client as chunks of the answer `out` whose head `sr`
// wrote, while the client is watched (a client that hangs up closes the stream).
net::awaitable<bool> Session::relay_followed(Answer& from, FollowedHead& out, FollowSerializer& sr,
                                             const Runtime& rt, Exchange& ex) {
  bool watch_done = false;
  start_watch(watch_client(shared_from_this(), from.upstream), watch_done);
  ResponseParser& rp = from.parser;
  auto& in = rp.get();
  Window window;
  error_code ec;
  while (!rp.is_done() && !ec) {
    in.body().data = window.get();
    in.body().size = relay_window;
    co_await http::async_read_some(*from.upstream, from.buffer, rp, with_ec(ec));
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    const std::size_t n = relay_window - in.body().size;
    if (ec || n == 0) {
      continue;
    }
    out.body().data = window.get();
    out.body().size = n;
    out.body().more = true;
    ex.bytes_out += n;
    arm(client_write_timeout, Phase::write);
    co_await http::async_write(client_, sr, with_ec(ec));
    disarm();
    if (ec == http::error::need_buffer) {
      ec = {};
    }
  }
  co_await end_watch(watch_done);
  if (ec || closed_) {
    from.upstream->close();
    co_return false;
  }
  if (in.keep_alive() && from.buffer.size() == 0) {
    release_upstream(std::move(from.upstream), rt, from.target);
  } else {
    from.upstream->close();
  }
  co_return true;
}

// The rest of a wait's answer, read while the client is watched: a client that hangs up closes
// the connection to dockerd, and the read fails (dockerd then drops the wait).
net::awaitable<std::optional<std::string>> Session::read_wait_body(Answer& answer,
                                                                   const Runtime& rt) {
  bool watch_done = false;
  start_watch(watch_client(shared_from_this(), answer.upstream), watch_done);
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
  co_await end_watch(watch_done);
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
std::optional<std::pair<std::string, Target>> Session::where_now(const Admission& a) {
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

// The request `method path` (berth's own, for the container where it runs now) asked of `to`
// in the client's API version, its answer's head read into `answer`. False when the host could
// not be reached or did not answer 200.
net::awaitable<bool> Session::ask_again(const Admission& a, http::verb method,
                                        const std::string& path, Target to, Answer& answer) {
  const std::string& version = a.request->api_version;
  http::request<http::empty_body> req{method, (version.empty() ? "" : "/v" + version) + path, 11};
  req.set(http::field::host, "docker");
  req.keep_alive(true);
  if (method == http::verb::post) {
    req.content_length(0);
  }
  auto acquired = co_await worker_.pool().acquire(a.rt, to);
  if (!acquired || closed_) {
    co_return false;  // closed_: as in forward(), nothing new starts on a closed session
  }
  answer.upstream = std::move(*acquired);
  upstream_in_use_ = answer.upstream;  // close() cancels the request there
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
