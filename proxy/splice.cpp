// Hijacked streams (attach, exec): dockerd's answer head goes to the client byte for byte, then
// both directions are spliced, each by a coroutine of its own, with half-close preserved: the
// docker CLI closes stdin right after an exec upgrade and still reads the output.

#include <memory>
#include <optional>
#include <string>

#include "proxy/log.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

void Session::signal_join() noexcept {
  if (join_timer_) {
    join_timer_->cancel();
  }
}

net::awaitable<void> Session::join(bool& done) {
  // A timer used as an event: the finishing side cancels it (Boost 1.74 has no channels).
  // Made here, for the streams that need it, and gone afterwards.
  while (!done) {
    if (!join_timer_) {
      join_timer_ = std::make_unique<net::steady_timer>(client_.get_executor());
    }
    join_timer_->expires_at(Clock::time_point::max());
    error_code ec;
    co_await join_timer_->async_wait(with_ec(ec));
  }
  join_timer_.reset();
}

net::awaitable<void> Session::splice(Answer& answer, Exchange& ex) {
  std::shared_ptr<TlsStream> upstream = std::move(answer.upstream);
  UpstreamBuffer& upstream_buffer = answer.buffer;
  const ResponseParser& rp = answer.parser;
  // The response header goes to the client byte for byte as dockerd wrote it (reason phrase
  // "UPGRADED" included), then whatever dockerd sent after it.
  const auto& res = rp.get();
  std::string head = "HTTP/1.1 " + std::to_string(res.result_int()) + " " +
                     std::string(res.reason()) + "\r\n";
  for (const auto& field : res) {
    head += field.name_string();
    head += ": ";
    head += field.value();
    head += "\r\n";
  }
  head += "\r\n";
  error_code ec;
  disarm();
  co_await net::async_write(client_, net::buffer(head), with_ec(ec));
  if (!ec && upstream_buffer.size() != 0) {
    ex.bytes_out += upstream_buffer.size();
    co_await net::async_write(client_, upstream_buffer.data(), with_ec(ec));
    upstream_buffer.consume(upstream_buffer.size());
  }
  // Bytes the client sent after its request (stdin typed early) go to dockerd first.
  if (!ec && buffer_.size() != 0) {
    ex.bytes_in += buffer_.size();
    co_await net::async_write(*upstream, buffer_.data(), with_ec(ec));
    buffer_.consume(buffer_.size());
  }
  if (ec) {
    upstream->close();
    close();
    co_return;
  }
  error_code ignored;
  client_.socket().set_option(net::socket_base::keep_alive(true), ignored);
  // A relay window of plaintext is four TLS records: one send for all four.
  client_.coalesce_records(relay_window + relay_window / 8);

  bool client_side_done = false;
  net::co_spawn(client_.get_executor(), pump(shared_from_this(), upstream, true, &ex.bytes_in),
                [self = shared_from_this(), &client_side_done](std::exception_ptr) {
                  client_side_done = true;
                  self->signal_join();
                });
  co_await pump(shared_from_this(), upstream, false, &ex.bytes_out);
  if (!client_side_done) {
    // dockerd ended its direction and the client was told (close_notify + FIN). Like dockerd,
    // which closes a finished hijacked connection, give the client a bounded time to finish.
    arm(hijack_linger, Phase::linger);
  }
  co_await join(client_side_done);
  disarm();
  upstream->close();
  close();
}

net::awaitable<void> Session::pump(std::shared_ptr<Session> self,
                                   std::shared_ptr<TlsStream> upstream, bool client_to_upstream,
                                   std::uint64_t* counter) {
  TlsStream& from = client_to_upstream ? self->client_ : *upstream;
  TlsStream& to = client_to_upstream ? *upstream : self->client_;
  Window window;
  // dockerd's side of a TTY stream arrives in pieces of at most 4 KiB, back to back when a
  // program writes in bulk. Each piece relayed on its own costs a TLS record, a send, and a
  // wakeup of berth and of the client. So after a small piece that came soon after the one
  // before (within gather_after), the next read waits gather_wait, and what arrived in the
  // meantime goes on as one piece: at most gather_wait later. A piece after a pause (typing,
  // a prompt) is read and relayed at once.
  const bool gathers = !client_to_upstream && !from.is_tls();
  std::optional<net::steady_timer> gather;
  Clock::time_point last_read{};
  bool pause = false;
  for (;;) {
    error_code ec;
    if (pause) {
      if (!gather) {
        gather.emplace(from.get_executor());
      }
      gather->expires_after(gather_wait);
      co_await gather->async_wait(with_ec(ec));
      ec = {};
    }
    const std::size_t n =
        co_await from.async_read_some(net::buffer(window.get(), relay_window), with_ec(ec));
    if (gathers) {
      const auto now = Clock::now();
      pause = n < gather_below && now - last_read < gather_after;
      last_read = now;
    }
    if (ec == net::error::eof) {
      // Half-close preserved: the other side learns this direction is over and may go on
      // sending (the docker CLI closes stdin right after an exec upgrade and still reads).
      to.shutdown_send();
      co_return;
    }
    if (ec) {
      from.close();
      to.close();
      co_return;
    }
    *counter += n;
    co_await net::async_write(to, net::buffer(window.get(), n), with_ec(ec));
    if (ec) {
      from.close();
      to.close();
      co_return;
    }
  }
}

}  // namespace berth::proxy
