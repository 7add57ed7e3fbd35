#include "proxy/docker_client.hpp"

#include <limits>

namespace berth::proxy {

net::awaitable<std::expected<DockerReply, error_code>> docker_request(
    UpstreamPool& pool, std::shared_ptr<const Runtime> rt, http::verb method, std::string target,
    std::string body) {
  auto acquired = co_await pool.acquire(rt);
  if (!acquired) {
    co_return std::unexpected(acquired.error());
  }
  std::shared_ptr<TlsStream> upstream = std::move(*acquired);
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "docker");
  req.keep_alive(true);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  error_code ec;
  co_await http::async_write(*upstream, req, with_ec(ec));
  if (ec) {
    co_return std::unexpected(ec);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(256 * 1024);
  parser.body_limit(std::uint64_t{256} * 1024 * 1024);
  co_await http::async_read(*upstream, buffer, parser, with_ec(ec));
  if (ec) {
    co_return std::unexpected(ec);
  }
  auto res = parser.release();
  if (res.keep_alive() && buffer.size() == 0) {
    pool.release(std::move(upstream), *rt);
  }
  co_return DockerReply{res.result_int(), std::move(res.body())};
}

}  // namespace berth::proxy
