// Hijacked streams (attach, exec): dockerd's answer head goes to the client byte for byte, then
// both directions are spliced, each by a coroutine of its own, with half-close preserved: the
// docker CLI closes stdin right after an exec upgrade and still reads the output.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/log.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/stdcopy.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {

constexpr std::string_view moved_message =
    "berth: this session ended because its container is moving to another host, where it "
    "goes on running; attach or exec again";

}  // namespace

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

Session::StreamCut Session::stream_cut(const Admission& a) const {
  StreamCut cut;
  if (!a.tenant() || !a.request || a.request->params.empty()) {
    return cut;
  }
  const std::string_view endpoint = a.request->route->endpoint;
  const std::string& ref = a.request->params.front();
  if (endpoint == "container.attach") {
    cut.container = ref;  // resolved; a container with a TTY never moves (migration_blockers)
  } else if (endpoint == "exec.start") {
    cut.container =
        worker_.index()
            .read([&](const policy::OwnershipIndex& idx) { return idx.exec_container(ref); })
            .value_or("");
    const auto body = nlohmann::json::parse(a.rewritten.body.value_or("{}"), nullptr, false);
    cut.tty = body.is_object() && body.value("Tty", false) == true;
  }
  return cut;
}

net::awaitable<void> Session::splice(Answer& answer, Exchange& ex, StreamCut cut) {
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
  co_await pump(shared_from_this(), upstream, false, &ex.bytes_out, &cut);
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
                                   std::uint64_t* counter, const StreamCut* cut) {
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
  const bool watched = cut != nullptr && !cut->container.empty();
  StdcopyFrames frames;
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
    if (ec && watched && self->worker_.index().switching(cut->container) &&
        (cut->tty || frames.at_boundary())) {
      // dockerd ended the session because a migration is dumping its container (its switch
      // to the twin spans the drain, the dump and the restore).
      const std::string said = cut->tty ? "\r\n" + std::string(moved_message) + "\r\n"
                                        : stderr_frame(std::string(moved_message) + "\n");
      error_code ignored;
      co_await net::async_write(to, net::buffer(said), with_ec(ignored));
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
    if (watched && !cut->tty) {
      frames.feed(window.get(), n);
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
