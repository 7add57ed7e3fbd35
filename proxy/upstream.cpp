#include "proxy/upstream.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace berth::proxy {

namespace {

// A pooled connection that dockerd closed (restart, idle reap) reads as EOF; anything
// readable at all on an idle HTTP connection is just as unusable.
bool still_open(TlsStream& s) {
  char probe = 0;
  const ssize_t r =
      ::recv(s.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

bool closed_before_answer(const error_code& ec) noexcept {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

net::awaitable<std::expected<std::shared_ptr<TlsStream>, error_code>> UpstreamPool::acquire(
    std::shared_ptr<const Runtime> rt, Target target) {
  if (auto idle = take_idle(*rt, target)) {
    co_return idle;
  }
  const UpstreamAddress& up = target.host->address;
  TlsStream::socket_type socket(executor_);
  error_code ec;
  if (up.kind == UpstreamAddress::Kind::unix_socket) {
    const net::generic::stream_protocol::endpoint ep{net::local::stream_protocol::endpoint(up.path)};
    co_await socket.async_connect(ep, with_ec(ec));
  } else {
    net::ip::tcp::resolver resolver(executor_);
    auto results = co_await resolver.async_resolve(up.host, up.port, with_ec(ec));
    if (!ec) {
      ec = net::error::host_not_found;
      for (const auto& entry : results) {
        error_code ignored;
        socket.close(ignored);
        ec = {};
        const net::generic::stream_protocol::endpoint ep{entry.endpoint()};
        co_await socket.async_connect(ep, with_ec(ec));
        if (!ec) {
          socket.set_option(net::ip::tcp::no_delay(true), ignored);
          break;
        }
      }
    }
  }
  if (ec) {
    co_return std::unexpected(ec);
  }
  SslPtr ssl;
  if (up.kind == UpstreamAddress::Kind::tls) {
    ssl.reset(SSL_new(target.host->ctx.get()));
    const std::string& name = target.host->server_name;
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));  // SSL_set_tlsext_host_name, minus its C cast
    SSL_set1_host(ssl.get(), name.c_str());
    SSL_set_connect_state(ssl.get());
  }
  auto stream = std::make_shared<TlsStream>(std::move(socket), std::move(ssl));
  ec = co_await stream->handshake();
  if (ec) {
    co_return std::unexpected(ec);
  }
  co_return stream;
}

UpstreamPool::Pool* UpstreamPool::pool_of(const std::string& key) noexcept {
  for (Pool& p : idle_) {
    if (p.key == key) {
      return &p;
    }
  }
  return nullptr;
}

std::shared_ptr<TlsStream> UpstreamPool::take_idle(const Runtime& rt, Target target) {
  (void)rt;
  Pool* pool = pool_of(target.key());
  if (pool == nullptr) {
    return nullptr;
  }
  const auto now = std::chrono::steady_clock::now();
  while (!pool->idle.empty()) {
    Idle c = std::move(pool->idle.back());
    pool->idle.pop_back();
    if (now - c.since < probe_after || still_open(*c.connection)) {
      return std::move(c.connection);
    }
  }
  return nullptr;
}

void UpstreamPool::release(std::shared_ptr<TlsStream> connection, const Runtime& rt,
                           Target target) {
  if (rt.generation > generation_) {
    // A reload: connections to a daemon the policy no longer names are closed.
    std::erase_if(idle_, [&rt](const Pool& p) {
      return std::none_of(rt.hosts.begin(), rt.hosts.end(),
                          [&p](const HostRuntime& h) { return h.address.text == p.key; });
    });
    generation_ = rt.generation;
  }
  Pool* pool = pool_of(target.key());
  if (pool == nullptr) {
    pool = &idle_.emplace_back(Pool{target.key(), {}});
  }
  if (pool->idle.size() < max_idle) {
    pool->idle.push_back(Idle{std::move(connection), std::chrono::steady_clock::now()});
  }
}

void UpstreamPool::found_dead(TlsStream& connection, Target target) noexcept {
  connection.close();
  if (Pool* pool = pool_of(target.key())) {
    pool->idle.clear();
  }
}

}  // namespace berth::proxy
