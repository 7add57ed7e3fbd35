#include "proxy/docker_client.hpp"

#include <limits>

namespace berth::proxy {

net::awaitable<std::expected<DockerReply, error_code>> docker_request(
    UpstreamPool& pool, std::shared_ptr<const Runtime> rt, http::verb method, std::string target,
    std::string body, std::string registry_auth) {
  const Target primary{&rt->primary()};
  co_return co_await docker_request_to(pool, std::move(rt), primary, method, std::move(target),
                                       std::move(body), std::move(registry_auth));
}

net::awaitable<std::expected<DockerReply, error_code>> docker_request_to(
    UpstreamPool& pool, std::shared_ptr<const Runtime> rt, Target to, http::verb method,
    std::string target, std::string body, std::string registry_auth) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "docker");
  if (!registry_auth.empty()) {
    req.set("X-Registry-Auth", registry_auth);
  }
  req.keep_alive(true);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  // As Session::forward does: a pooled connection dockerd has closed since (it is not probed
  // when it was used less than 2 s ago) gets the request once more on a new connection, when
  // dockerd cannot have acted on it.
  const bool replayable = method == http::verb::get || method == http::verb::head;
  std::shared_ptr<TlsStream> upstream = pool.take_idle(*rt, to);
  bool reused = upstream != nullptr;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(256 * 1024);
  parser.body_limit(std::uint64_t{256} * 1024 * 1024);
  error_code ec;
  for (;;) {
    if (!upstream) {
      auto acquired = co_await pool.acquire(rt, to);
      if (!acquired) {
        co_return std::unexpected(acquired.error());
      }
      upstream = std::move(*acquired);
    }
    error_code wec;
    co_await http::async_write(*upstream, req, with_ec(wec));
    ec = wec;
    if (!wec) {
      co_await http::async_read(*upstream, buffer, parser, with_ec(ec));
    }
    // Dead before dockerd could act: the request could not be written, or, for a GET or
    // HEAD, the connection ended before any answer.
    const bool dead = wec || (replayable && !parser.got_some() && buffer.size() == 0 &&
                              closed_before_answer(ec));
    if (!ec || !reused || !dead) {
      break;
    }
    pool.found_dead(*upstream, to);
    upstream.reset();
    reused = false;
    ec = {};
  }
  if (ec) {
    co_return std::unexpected(ec);
  }
  auto res = parser.release();
  if (res.keep_alive() && buffer.size() == 0) {
    pool.release(std::move(upstream), *rt, to);
  }
  co_return DockerReply{res.result_int(), std::move(res.body())};
}

}  // namespace berth::proxy
