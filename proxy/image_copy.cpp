// A fleet's images are the primary's: the tenant builds, pulls, loads and tags them there, and
// lists them from there. A container placed on another host needs its image on that host, so
// berth copies it first, from the primary's save straight into the host's load (streamed, never
// held whole), and tags it as the create names it; a removal or prune on the primary is done
// on the other hosts too, so no copy outlives the image. The other hosts' image events are
// not the tenant's (policy::fleet_event_view).

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/endpoint_table.hpp"
#include "policy/query.hpp"
#include "proxy/body_relay.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {

using Clock = std::chrono::steady_clock;

// Ends a copy under way in the index's list however its coroutine ends.
struct CopyGuard {
  SharedIndex& index;
  std::string key;
  CopyGuard(SharedIndex& i, std::string k) : index(i), key(std::move(k)) {}
  CopyGuard(const CopyGuard&) = delete;
  CopyGuard& operator=(const CopyGuard&) = delete;
  ~CopyGuard() { index.end_copy(key); }
};

// Where a copy went wrong, for the operator's log.
std::string failed(std::string_view step, const error_code& ec) {
  return std::string(step) + ": " + ec.message();
}

// The save's archive streamed into the target's load, and the load's verdict.
net::awaitable<std::expected<void, std::string>> save_into_load(TlsStream& source,
                                                                TlsStream& target,
                                                                const std::string& id,
                                                                RelayProgress& progress) {
  http::request<http::empty_body> get{http::verb::get,
                                      "/images/" + policy::escape_path(id) + "/get", 11};
  get.set(http::field::host, "docker");
  error_code ec;
  co_await http::async_write(source, get, with_ec(ec));
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> save;
  save.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) {
    co_await http::async_read_header(source, buffer, save, with_ec(ec));
  }
  if (ec || save.get().result() != http::status::ok) {
    co_return std::unexpected(ec ? failed("save", ec)
                                 : "save answered " + std::to_string(save.get().result_int()));
  }
  http::request<http::buffer_body> request{http::verb::post, "/images/load?quiet=1", 11};
  request.set(http::field::host, "docker");
  request.set(http::field::content_type, "application/x-tar");
  request.chunked(true);
  http::request_serializer<http::buffer_body> load{request};
  co_await http::async_write_header(target, load, with_ec(ec));
  if (!ec) {
    ec = co_await relay_body(source, buffer, save, target, progress);
  }
  beast::flat_buffer answer_buffer;
  http::response_parser<http::string_body> answer;
  answer.body_limit(1024 * 1024);
  if (!ec) {
    co_await http::async_read(target, answer_buffer, answer, with_ec(ec));
  }
  if (ec) {
    co_return std::unexpected(failed("load", ec));
  }
  // dockerd answers 200 and then tells of a failure in its message stream.
  const std::string& said = answer.get().body();
  if (answer.get().result() != http::status::ok ||
      said.find("\"errorDetail\"") != std::string::npos) {
    co_return std::unexpected("load answered " + std::to_string(answer.get().result_int()) +
                              ": " + said.substr(0, 300));
  }
  co_return std::expected<void, std::string>{};
}

}  // namespace

constexpr std::size_t copy_window = 1024 * 1024;
// Closes both connections of a copy that stopped moving; the copy's reads and writes then
// fail at once.
net::awaitable<void> watch_relay(std::shared_ptr<RelayProgress> progress,
                                std::shared_ptr<TlsStream> source,
                                std::shared_ptr<TlsStream> target) {
  net::steady_timer tick(co_await net::this_coro::executor);
  while (!progress->done) {
    tick.expires_after(std::chrono::seconds(1));
    error_code ignored;
    co_await tick.async_wait(with_ec(ignored));
    if (!progress->done && Clock::now() - progress->last > relay_stall) {
      progress->stalled = true;
      source->close();
      target->close();
    }
  }
}

// The rest of `response`'s body into `to` as chunks, window by window. Each window is written
// as one buffer, its chunk's size line before it and CRLF after it in the same allocation:
// Beast's serializer hands the three over as a gather list, which TlsStream copies 16 KiB at a
// time into a buffer of its own, one write operation and one TLS record per copy. Written
// whole, OpenSSL makes the window's records in one call from the window itself (a 1 GiB
// checkpoint crossed in 7.6 s instead of 8.8 s, the copies gone from the proxy's profile).
net::awaitable<error_code> relay_body(TlsStream& from, beast::flat_buffer& buffer,
                                      http::response_parser<http::buffer_body>& response,
                                      TlsStream& to, RelayProgress& progress) {
  constexpr std::size_t size_line = 18;           // 16 hex digits and CRLF at most
  constexpr std::string_view last = "0\r\n\r\n";  // the last chunk, no trailer
  std::vector<char> window(size_line + copy_window + 2 + last.size());
  char* const data = window.data() + size_line;
  error_code ec;
  for (;;) {
    std::size_t got = 0;
    if (!response.is_done()) {
      response.get().body().data = data;
      response.get().body().size = copy_window;
      co_await http::async_read(from, buffer, response, with_ec(ec));
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        co_return ec;
      }
      got = copy_window - response.get().body().size;
      progress.bytes += got;
      progress.last = Clock::now();
    }
    char* begin = data;
    char* end = data;
    if (got != 0) {
      char line[size_line + 1];
      const int n = std::snprintf(line, sizeof line, "%zx\r\n", got);
      begin -= n;
      std::memcpy(begin, line, static_cast<std::size_t>(n));
      end = std::copy_n("\r\n", 2, data + got);
    }
    const bool done = response.is_done();
    if (done) {
      end = std::copy(last.begin(), last.end(), end);
    }
    co_await net::async_write(to, net::buffer(begin, static_cast<std::size_t>(end - begin)),
                              with_ec(ec));
    if (ec || done) {
      co_return ec;  // the last chunk is out, or the write failed
    }
  }
}

// The image `id` from `from` onto `to`: GET /images/{id}/get into POST /images/load. The two
// connections are berth's own and closed after (an archive is rare and large: no pooling).
net::awaitable<std::expected<void, std::string>> copy_image(UpstreamPool& pool,
                                                            std::shared_ptr<const Runtime> rt,
                                                            Target from, Target to,
                                                            std::string id) {
  auto source = co_await pool.acquire(rt, from);
  if (!source) {
    co_return std::unexpected(failed("connect to the source", source.error()));
  }
  auto target = co_await pool.acquire(rt, to);
  if (!target) {
    (*source)->close();
    co_return std::unexpected(failed("connect to the target", target.error()));
  }
  const auto started = Clock::now();
  auto progress = std::make_shared<RelayProgress>();
  const auto executor = co_await net::this_coro::executor;
  net::co_spawn(executor, watch_relay(progress, *source, *target), net::detached);
  auto copied = co_await save_into_load(**source, **target, id, *progress);
  progress->done = true;
  (*source)->close();
  (*target)->close();
  if (progress->stalled) {
    copied = std::unexpected("no byte moved for " + std::to_string(relay_stall.count()) + " s");
  }
  if (copied) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    log_info("fleet: image " + id + " copied from " + from.host->name + " to " + to.host->name +
             " (" + std::to_string(progress->bytes) + " bytes, " + std::to_string(ms) + " ms)");
  }
  co_return copied;
}

// The copy of a create's image to its host, made once however many creates need it at the
// same time: the first makes it, the others wait for its end (and make it themselves if it
// failed). Returns what went wrong, or nothing.
net::awaitable<std::string> Session::copy_once(Admission& a) {
  SharedIndex& index = worker_.index();
  const std::string key = a.host->name + " " + a.image_id;
  net::steady_timer pause(client_.get_executor());
  for (;;) {
    if (index.begin_copy(key)) {
      const CopyGuard guard(index, key);
      const Target primary{&a.rt->primary()};
      const Target to{a.host};
      auto copied = co_await copy_image(worker_.pool(), a.rt, primary, to, a.image_id);
      if (!copied) {
        co_return "copy of " + a.image_id + " to " + a.host->name + " failed: " + copied.error();
      }
      // Known to be there before the others stop waiting (the host's load event may come
      // later): none of them copies it again.
      index.update_host_facts(a.host->name, [&](HostFacts& f) {
        const auto at = std::lower_bound(f.image_ids.begin(), f.image_ids.end(), a.image_id);
        if (at == f.image_ids.end() || *at != a.image_id) {
          f.image_ids.insert(at, a.image_id);
        }
      });
      co_return std::string();
    }
    while (index.copying(key)) {
      pause.expires_after(std::chrono::milliseconds(100));
      error_code ignored;
      co_await pause.async_wait(with_ec(ignored));
    }
    const auto facts = index.host_facts(a.host->name);
    if (std::binary_search(facts->image_ids.begin(), facts->image_ids.end(), a.image_id)) {
      co_return std::string();
    }
  }
}

namespace {

// "repo:tag" as /images/json lists it, or nothing for a create that names an id.
std::string tag_of(const Admission& a) {
  return a.image_repo.empty() ? "" : a.image_repo + ":" + a.image_tag;
}

}  // namespace

// What a placed create's host lacks of its image: the image, and the name the create uses
// for it. Known from the host's watcher (HostFacts), without a request. The primary holds
// every image.
ImageNeed Session::image_need(const Admission& a) const {
  if (a.host == nullptr || a.host == &a.rt->primary() || a.image_id.empty()) {
    return {};
  }
  const auto facts = worker_.index().host_facts(a.host->name);
  const std::string tag = tag_of(a);
  const auto tagged = facts->image_tags.find(tag);
  return {!std::binary_search(facts->image_ids.begin(), facts->image_ids.end(), a.image_id),
          !tag.empty() && (tagged == facts->image_tags.end() || tagged->second != a.image_id)};
}

// A create placed on a host other than the primary, whose image is not there yet (or not
// under the name the create uses): copied from the primary and tagged, before dockerd sees
// the create.
net::awaitable<std::optional<Refusal>> Session::provide_image(Admission& a, ImageNeed need) {
  const Target to{a.host};
  const std::string tag = tag_of(a);
  std::string problem;
  if (need.copy) {
    problem = co_await copy_once(a);
  }
  if (problem.empty() && need.retag) {
    std::string path = "/images/" + policy::escape_path(a.image_id) + "/tag?" +
                       policy::build_query({{"repo", a.image_repo}, {"tag", a.image_tag}});
    const auto reply = co_await docker_request_to(worker_.pool(), a.rt, to, http::verb::post,
                                                  std::move(path));
    if (!reply || reply->status != 201) {
      problem = "tag of " + a.image_id + " as " + tag + " on " + a.host->name + " failed";
    }
  }
  if (!problem.empty()) {
    log_warn("fleet: " + problem);
    co_return Refusal{policy::Decision::deny(
                          503,
                          "berth: the container's image could not be made ready on the server "
                          "chosen for it; nothing was created, try again later",
                          "fleet.image_copy"),
                      a.client_keep_alive()};
  }
  if (need.retag) {
    worker_.index().update_host_facts(a.host->name,
                                      [&](HostFacts& f) { f.image_tags[tag] = a.image_id; });
  }
  co_return std::nullopt;
}

// A tenant's image removal or prune that the primary did: the same on every other host that
// is up, where it removes berth's copies (a copy a container still uses stays, as dockerd
// keeps it). Their answers are not the tenant's: its images are the primary's.
net::awaitable<void> Session::propagate_image_removal(Admission& a) {
  const http::verb method =
      a.request->route->endpoint == "image.prune" ? http::verb::post : http::verb::delete_;
  for (const HostRuntime& h : a.rt->hosts) {
    if (&h == &a.rt->primary() || !worker_.index().host_facts(h.name)->up) {
      continue;
    }
    const Target to{&h};
    const auto reply =
        co_await docker_request_to(worker_.pool(), a.rt, to, method, a.rewritten.target);
    if (!reply) {
      log_warn("fleet: image removal on " + h.name + " failed: " + reply.error().message());
    }
  }
}

bool Session::commit_elsewhere(const Admission& a, unsigned status) noexcept {
  return status == 201 && a.request->route->index == policy::IndexEffect::image_committed &&
         a.rt->fleet() && a.host != nullptr && a.host != &a.rt->primary();
}

// A commit of a container on another host made its image there; the fleet's images are the
// primary's, so it goes there (under the repository and tag the commit gave) before the
// client hears of it: its next `docker images` lists it. The copy on the commit's host stays,
// as any copy does.
net::awaitable<void> Session::bring_commit_home(Admission& a, const std::string& answer) {
  const auto doc = nlohmann::json::parse(answer, nullptr, false);
  const std::string id = doc.is_object() ? doc.value("Id", std::string()) : std::string();
  if (id.empty()) {
    co_return;
  }
  const Target primary{&a.rt->primary()};
  const Target from{a.host};
  auto copied = co_await copy_image(worker_.pool(), a.rt, from, primary, id);
  std::string repo;
  std::string tag;
  for (auto& [key, value] : query_params(a.rewritten.target)) {
    if (key == "repo") {
      repo = std::move(value);
    } else if (key == "tag") {
      tag = std::move(value);
    }
  }
  if (copied && !repo.empty()) {
    std::string path = "/images/" + policy::escape_path(id) + "/tag?" +
                       policy::build_query({{"repo", repo}, {"tag", tag.empty() ? "latest" : tag}});
    const auto reply = co_await docker_request_to(worker_.pool(), a.rt, primary,
                                                  http::verb::post, std::move(path));
    if (!reply || reply->status != 201) {
      copied = std::unexpected("tag on the primary failed");
    }
  }
  if (!copied) {
    log_warn("fleet: the image " + id + " committed on " + a.host->name +
             " did not reach the primary: " + copied.error());
  }
}

}  // namespace berth::proxy
