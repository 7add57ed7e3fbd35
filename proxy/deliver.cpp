// 7. deliver: dockerd's answer to the client, as choose_delivery (proxy/delivery.hpp) says.
//    A small answer in the plain form dockerd writes passes on as dockerd wrote it, in one
//    write; a tenant's rewritten answer that fits the buffer is read, filtered and framed
//    anew without Beast; anything else goes through Beast's parser and is relayed in a window.
//    The filter stage (what the tenant may see) and what the ownership index learns from an
//    answer are the two named steps of a rewrite. A connection returns to the pool only after
//    a final answer was read to its framed end.

#include <array>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "policy/filter.hpp"
#include "proxy/chunked.hpp"
#include "proxy/log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {

// How many bytes after `head` in `buffer` are its whole coded body: Content-Length bytes, or
// a chunked body through its last chunk (waited for only if `wait_for_chunked`), reading the
// rest (dockerd writes an answer in pieces of 4 KiB) while the body holds fewer than `limit`
// bytes. nullopt: no such body (none declared, chunk extensions or trailers), not within
// `limit`, or the read failed; the caller then leaves the answer to Beast.
net::awaitable<std::optional<std::size_t>> read_coded_body(TlsStream& upstream,
                                                            UpstreamBuffer& buffer,
                                                            const ResponseHead& head,
                                                            std::size_t limit,
                                                            bool wait_for_chunked) {
  for (;;) {
    const std::string_view after = buffer_view(buffer).substr(head.size);
    if (head.content_length) {
      if (*head.content_length >= limit) {
        co_return std::nullopt;
      }
      if (after.size() >= *head.content_length) {
        co_return static_cast<std::size_t>(*head.content_length);
      }
    } else if (head.chunked) {
      const ChunkedBody chunked = scan_chunked(after);
      if (chunked.state == ChunkedScan::complete) {
        co_return chunked.length;
      }
      if (chunked.state == ChunkedScan::unsupported || !wait_for_chunked ||
          after.size() >= limit) {
        co_return std::nullopt;
      }
    } else {
      co_return std::nullopt;  // no body, or one delimited by the connection's end
    }
    const std::size_t room =
        std::min(std::max<std::size_t>(buffer.capacity() - buffer.size(), 16 * 1024),
                 buffer.max_size() - buffer.size());
    if (room == 0) {
      co_return std::nullopt;
    }
    error_code ec;
    const std::size_t got = co_await upstream.async_read_some(buffer.prepare(room), with_ec(ec));
    if (ec) {
      co_return std::nullopt;  // Beast's read reports it, as it would have
    }
    buffer.commit(got);
  }
}

// When dockerd's whole answer is already in `buffer` (no body, a Content-Length body, or a
// chunked body through its last chunk): writes header and body, the body coded as dockerd
// coded it, into `out` and returns their length; 0 when the answer must be relayed.
std::size_t pack_whole_response(ResponseParser& rp, UpstreamBuffer& buffer, bool keep_alive,
                                char* out, std::size_t cap) {
  auto& res = rp.get();
  std::uint64_t body = 0;  // bytes of `buffer` that are the body, as dockerd coded it
  if (!rp.is_done()) {
    if (res.chunked()) {
      const ChunkedBody chunked = scan_chunked(buffer_view(buffer));
      if (chunked.state != ChunkedScan::complete) {
        return 0;
      }
      body = chunked.length;
    } else if (res.has_content_length()) {
      body = rp.content_length_remaining().value_or(~0ull);
    } else {
      return 0;  // delimited by the connection's end
    }
  }
  if (body > buffer.size() || body >= cap) {
    return 0;
  }
  if (res.keep_alive() != keep_alive) {  // setting it rewrites the Connection field: only if needed
    res.keep_alive(keep_alive);
  }
  char status[4] = {static_cast<char>('0' + res.result_int() / 100 % 10),
                    static_cast<char>('0' + res.result_int() / 10 % 10),
                    static_cast<char>('0' + res.result_int() % 10), '\0'};
  std::size_t n = put_head(out, cap - body, "HTTP/1.1", status, res.reason(), res.base());
  if (n == 0) {
    return 0;
  }
  net::buffer_copy(net::buffer(out + n, body), buffer.data());
  buffer.consume(body);
  return n + body;
}

}  // namespace

void Session::release_upstream(std::shared_ptr<TlsStream> connection, const Runtime& rt,
                               Target target) {
  if (upstream_in_use_.lock() == connection) {
    upstream_in_use_.reset();  // another request may take it from the pool now
  }
  worker_.pool().release(std::move(connection), rt, target);
}

net::awaitable<bool> Session::deliver(Admission& a, Answer& answer, Exchange& ex) {
  // A plain head, scanned without Beast: a small answer passes, or is rewritten, in one write.
  if (answer.head.state == HeadScan::complete) {
    ex.status = answer.head.status;
    const AnswerHead facts{answer.head.status, answer.upgrade, false, true};
    const Delivery d = choose_delivery(*a.request->route, a.rewritten.view,
                                       !a.tenant() || answer.is_head, facts);
    std::optional<bool> kept;
    if (d == Delivery::pass) {
      kept = co_await pass_raw(answer, a.client_keep_alive(), ex, *a.rt);
    } else if (d == Delivery::rewrite) {
      kept = co_await respond_raw(a, answer, ex);
    }
    if (kept) {
      co_return *kept;
    }
    // Not so after all (too large, no plain framing): Beast parses the head already read.
    error_code ec;
    co_await http::async_read_header(*answer.upstream, answer.buffer, answer.parser,
                                     with_ec(ec));
    if (ec) {
      answer.upstream->close();
      const policy::Decision refusal = policy::Decision::deny(
          502, "berth: the Docker daemon did not answer", "upstream.no_response");
      co_return co_await refuse(refusal, a.client_keep_alive(), ex);
    }
  }
  co_return co_await deliver_parsed(a, answer, ex);
}

// The answer's head parsed by Beast: streams, hijacks, and what the plain paths declined.
net::awaitable<bool> Session::deliver_parsed(Admission& a, Answer& answer, Exchange& ex) {
  auto& res = answer.parser.get();
  ex.status = res.result_int();
  const AnswerHead facts{res.result_int(), answer.upgrade,
                         is_raw_stream(res[http::field::content_type]),
                         res.has_content_length() || res.chunked()};
  const policy::Route& route = *a.request->route;
  const Delivery d = choose_delivery(route, a.rewritten.view, !a.tenant() || answer.is_head, facts);
  const bool endless = route.timeout == policy::TimeoutClass::endless;
  const bool keep_alive = a.client_keep_alive();
  if (d == Delivery::refuse) {
    // A framing doubt: the connection is not reused.
    answer.upstream->close();
    log_error("dockerd sent " + std::to_string(res.result_int()) + " to " + ex.method + " " +
              ex.target + "; closing that connection");
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon sent an unexpected answer", "upstream.unexpected");
    co_return co_await refuse(refusal, false, ex);
  }
  if (d == Delivery::splice) {
    ex.hijacked = true;
    ex.stream = true;
    const GaugeHold stream(worker_.metrics(), true);
    co_await splice(answer, ex, stream_cut(a));
    co_return false;
  }
  std::optional<GaugeHold> stream;
  if (endless) {
    ex.stream = true;
    stream.emplace(worker_.metrics(), true);
  }
  if (d == Delivery::pass) {
    if (const Follow follow = follows_move(a, answer); follow != Follow::none) {
      co_return co_await follow_move(a, answer, ex, follow);
    }
  }
  if (d == Delivery::rewrite) {
    co_return co_await respond_whole(a, answer, ex);
  }
  if (d == Delivery::pass && !endless) {
    if (const auto kept = co_await pass_whole(answer, keep_alive, ex, *a.rt)) {
      co_return *kept;
    }
  }
  LineMode lines = LineMode::none;
  if (d == Delivery::lines) {
    lines = a.rewritten.view == policy::ResponseView::events         ? LineMode::events
            : a.rewritten.view == policy::ResponseView::build_stream ? LineMode::build
                                                                     : LineMode::stats;
    if (a.rewritten.transfer && res.result_int() == 200) {
      lines = LineMode::transfer;
      ex.transfer = &a;
    }
  } else if (d == Delivery::archive) {
    lines = LineMode::archive;
  }
  co_return co_await relay_response(answer, keep_alive, endless, lines, &*a.who, ex, *a.rt);
}

net::awaitable<std::optional<bool>> Session::pass_raw(Answer& answer, bool client_keep_alive,
                                                      Exchange& ex, const Runtime& rt) {
  const ResponseHead& head = answer.head;
  UpstreamBuffer& buffer = answer.buffer;
  // The body as dockerd coded it: nothing after a HEAD, a 204 or a 304; else up to 32 KiB of
  // Content-Length bytes or of a chunked body. Only routes that are not streams get here.
  std::uint64_t body = 0;
  if (!answer.is_head && head.status != 204 && head.status != 304) {
    // Only a JSON document (an inspect) is waited for when chunked: another chunked answer
    // may be written slowly, and is relayed as it comes.
    const auto coded = co_await read_coded_body(*answer.upstream, buffer, head,
                                                static_cast<std::size_t>(small_answer), head.json);
    if (!coded) {
      co_return std::nullopt;
    }
    body = *coded;
  }
  constexpr std::string_view close_field = "Connection: close\r\n";
  if (head.size + body + close_field.size() > relay_window) {
    co_return std::nullopt;
  }
  // dockerd's head as it is (scan_response_head let through no field berth must rewrite),
  // with Connection: close before its last CRLF when this connection ends here.
  const bool keep_alive = client_keep_alive && !worker_.draining();
  const char* const from = buffer_view(buffer).data();
  Window out;
  std::size_t n = head.fields_end;
  std::memcpy(out.get(), from, n);
  if (!keep_alive) {
    std::memcpy(out.get() + n, close_field.data(), close_field.size());
    n += close_field.size();
  }
  const std::size_t rest = head.size - head.fields_end + static_cast<std::size_t>(body);
  std::memcpy(out.get() + n, from + head.fields_end, rest);
  n += rest;
  buffer.consume(head.size + static_cast<std::size_t>(body));
  ex.bytes_out += body;
  arm(client_write_timeout, Phase::write);
  error_code wec;
  co_await net::async_write(client_, net::buffer(out.get(), n), with_ec(wec));
  disarm();
  if (buffer.size() == 0) {
    release_upstream(std::move(answer.upstream), rt, answer.target);
  }
  co_return !wec && keep_alive;
}

net::awaitable<std::optional<bool>> Session::respond_raw(Admission& a, Answer& answer,
                                                         Exchange& ex) {
  const ResponseHead& head = answer.head;
  UpstreamBuffer& buffer = answer.buffer;
  // The whole coded body, as far as the buffer goes (Beast reads a larger one).
  const auto read = co_await read_coded_body(*answer.upstream, buffer, head,
                                             buffer.max_size() - head.size, true);
  if (!read) {
    co_return std::nullopt;
  }
  const std::size_t coded = *read;
  const std::string_view bytes = buffer_view(buffer);
  const std::string_view coded_body = bytes.substr(head.size, coded);
  std::string out = head_without_framing(bytes, head);
  const std::string plain = head.chunked ? dechunk(coded_body) : std::string(coded_body);
  learn_from_answer(a, head.status, plain);
  if (commit_elsewhere(a, head.status)) {
    co_await bring_commit_home(a, plain);
  }
  const std::optional<std::string> body = filter_answer(a, head.status, plain);
  buffer.consume(head.size + coded);
  if (buffer.size() == 0) {
    release_upstream(std::move(answer.upstream), *a.rt, answer.target);
  }
  if (!body) {
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon sent an unexpected answer", "upstream.unexpected");
    co_return co_await refuse(refusal, a.client_keep_alive(), ex);
  }
  // dockerd's fields but its framing, the body's new length, and Connection: close when this
  // connection ends here: what respond_whole writes through Beast.
  const bool keep_alive = a.client_keep_alive() && !worker_.draining();
  out += "Content-Length: ";
  out += std::to_string(body->size());
  out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  ex.bytes_out += body->size();
  arm(client_write_timeout, Phase::write);
  error_code wec;
  const std::array<net::const_buffer, 2> pieces{net::buffer(out), net::buffer(*body)};
  co_await net::async_write(client_, pieces, with_ec(wec));
  disarm();
  co_return !wec && keep_alive;
}

// A small answer (no body, a Content-Length body, or a chunked JSON document such as an
// inspect; up to 32 KiB) is read whole, then header and body leave in one write, from one
// buffer. dockerd writes such an answer in pieces of 4 KiB: the rest is read here first. Only
// answers that are not streams get here, written at once, so waiting for the whole one delays
// nothing. nullopt: not such an answer; it is relayed.
net::awaitable<std::optional<bool>> Session::pass_whole(Answer& answer, bool client_keep_alive,
                                                        Exchange& ex, const Runtime& rt) {
  ResponseParser& rp = answer.parser;
  UpstreamBuffer& buffer = answer.buffer;
  auto& res = rp.get();
  error_code rec;
  const bool json = res[http::field::content_type].starts_with("application/json");
  for (;;) {
    std::size_t want = 0;
    if (rp.is_done()) {
      want = 0;
    } else if (res.chunked()) {
      if (json && scan_chunked(buffer_view(buffer)).state == ChunkedScan::incomplete &&
          buffer.size() < small_answer) {
        want = static_cast<std::size_t>(small_answer) - buffer.size();
      }
    } else if (const auto body = rp.content_length_remaining();
               body && *body < small_answer && buffer.size() < *body) {
      want = static_cast<std::size_t>(*body) - buffer.size();
    }
    if (want == 0) {
      break;
    }
    const std::size_t got =
        co_await answer.upstream->async_read_some(buffer.prepare(want), with_ec(rec));
    if (rec) {
      break;  // relay_response reports it, as it would have
    }
    buffer.commit(got);
  }
  Window out;
  const bool keep_alive = client_keep_alive && !worker_.draining();
  const bool reusable = res.keep_alive();
  const std::size_t before = buffer.size();
  const std::size_t n = pack_whole_response(rp, buffer, keep_alive, out.get(), relay_window);
  if (n == 0) {
    co_return std::nullopt;
  }
  ex.bytes_out += before - buffer.size();
  arm(client_write_timeout, Phase::write);
  error_code wec;
  co_await net::async_write(client_, net::buffer(out.get(), n), with_ec(wec));
  disarm();
  if (reusable && buffer.size() == 0) {
    release_upstream(std::move(answer.upstream), rt, answer.target);
  }
  co_return !wec && keep_alive;
}

// An answer relayed as it comes, through one window: a stream (logs -f, events, stats, build
// output), or a large one. A close-delimited body is framed chunked so the client connection
// survives; a line-filtered stream changes length, so it is always chunked.
net::awaitable<bool> Session::relay_response(Answer& answer, bool keep_alive, bool endless,
                                             LineMode lines, const policy::Principal* who,
                                             Exchange& ex, const Runtime& rt) {
  ResponseParser& rp = answer.parser;
  auto& res = rp.get();
  const bool upstream_reusable = res.keep_alive();
  const bool until_eof = !rp.is_done() && !res.chunked() && !res.has_content_length();
  keep_alive = keep_alive && !worker_.draining();
  res.keep_alive(keep_alive);
  if (until_eof || (lines != LineMode::none && !rp.is_done())) {
    res.erase(http::field::content_length);
    res.chunked(true);
  }
  http::response_serializer<http::buffer_body> sr{res};
  error_code ec;
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = !rp.is_done();
  // A body that came with the header (the start of an answer too large for one write) leaves
  // with it in the first write of relay_body: one TLS record and one write(2) instead of two.
  // A stream's header leaves now.
  const bool header_with_body =
      !rp.is_done() && !endless && lines == LineMode::none && answer.buffer.size() != 0;
  if (!header_with_body) {
    arm(client_write_timeout, Phase::write);
    co_await http::async_write_header(client_, sr, with_ec(ec));
    disarm();
  }
  if (ec) {
    answer.upstream->close();
    co_return false;
  }
  if (rp.is_done()) {
    if (upstream_reusable && answer.buffer.size() == 0) {
      release_upstream(std::move(answer.upstream), rt, answer.target);
    }
    co_return keep_alive;
  }
  // A long-lived stream ends when dockerd ends it or when the client goes away; the watcher
  // notices the latter while nothing is being written.
  bool watch_done = true;
  if (endless) {
    start_watch(watch_client(shared_from_this(), answer.upstream), watch_done);
  }
  const bool ok = co_await relay_body(answer, sr, until_eof, lines, who, ex);
  co_await end_watch(watch_done);
  if (!ok || closed_) {
    answer.upstream->close();
    co_return false;
  }
  if (upstream_reusable && !until_eof && answer.buffer.size() == 0 &&
      answer.upstream->socket().is_open()) {
    release_upstream(std::move(answer.upstream), rt, answer.target);
  }
  co_return keep_alive;
}

// relay_response's loop: dockerd's body read into the window and written to the client, whole
// lines only when they are filtered (one JSON event, build message or stats sample each).
net::awaitable<bool> Session::relay_body(Answer& answer,
                                         http::response_serializer<http::buffer_body>& sr,
                                         bool until_eof, LineMode lines,
                                         const policy::Principal* who, Exchange& ex) {
  ResponseParser& rp = answer.parser;
  auto& res = rp.get();
  Window window;
  std::string pending_lines;
  std::optional<policy::SaveArchiveFilter> archive;
  if (lines == LineMode::archive) {
    archive.emplace(who->tenant);
  }
  error_code ec;
  const auto transform = [&](LineMode mode, std::string_view text) {
    return mode == LineMode::transfer ? transfer_lines(ex, text, *who)
                                      : transform_lines(mode, text, *who);
  };
  while (!rp.is_done()) {
    res.body().data = window.get();
    res.body().size = relay_window;
    co_await http::async_read_some(*answer.upstream, answer.buffer, rp, with_ec(ec));
    if (ec == http::error::need_buffer || (ec == http::error::end_of_stream && until_eof)) {
      ec = {};
    }
    if (ec) {
      co_return false;
    }
    std::size_t n = relay_window - res.body().size;
    std::string filtered;
    if (archive) {
      auto piece = filter_archive(*archive, std::string_view(window.get(), n), rp.is_done());
      if (!piece) {
        co_return false;  // the client sees a cut archive, not a wrong one
      }
      filtered = std::move(*piece);
      n = filtered.size();
      res.body().data = n == 0 ? nullptr : filtered.data();
    } else if (lines != LineMode::none) {
      pending_lines.append(window.get(), n);
      const auto last_nl = pending_lines.rfind('\n');
      if (rp.is_done()) {
        filtered = transform(lines, pending_lines);
        pending_lines.clear();
        if (lines == LineMode::transfer) {
          // berth's own steps end the stream, so that the image is the tenant's (or the push's
          // name gone) when the client sees the end.
          Admission& transfer = *ex.transfer;
          const bool succeeded = !transfer.transfer_failed;
          filtered += co_await end_transfer(transfer, succeeded);
        }
      } else if (last_nl != std::string::npos) {
        filtered = transform(lines, std::string_view(pending_lines).substr(0, last_nl + 1));
        pending_lines.erase(0, last_nl + 1);
      }
      n = filtered.size();
      res.body().data = n == 0 ? nullptr : filtered.data();
    } else {
      res.body().data = n == 0 ? nullptr : window.get();
    }
    res.body().size = n;
    res.body().more = !rp.is_done();
    if (n == 0 && res.body().more) {
      continue;
    }
    ex.bytes_out += n;
    arm(client_write_timeout, Phase::write);
    co_await http::async_write(client_, sr, with_ec(ec));
    disarm();
    if (ec && ec != http::error::need_buffer) {
      co_return false;
    }
  }
  if (!sr.is_done()) {
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    arm(client_write_timeout, Phase::write);
    co_await http::async_write(client_, sr, with_ec(ec));
    disarm();
    co_return !ec || ec == http::error::need_buffer;
  }
  co_return true;
}

// One window of a saved image archive through the filter that names its images as the tenant
// does (with the end of the archive on the last).
std::expected<std::string, std::string> Session::filter_archive(policy::SaveArchiveFilter& archive,
                                                                std::string_view piece, bool last) {
  auto out = archive.feed(piece);
  if (out && last) {
    auto tail = archive.finish();
    if (!tail) {
      out = std::unexpected(tail.error());
    } else {
      *out += *tail;
    }
  }
  if (!out) {
    log_error("image archive from dockerd could not be read for " + peer_ + ": " + out.error());
  }
  return out;
}

void Session::start_watch(net::awaitable<void> watcher, bool& done) {
  done = false;
  net::co_spawn(client_.get_executor(), std::move(watcher),
                [self = shared_from_this(), &done](std::exception_ptr) {
                  done = true;
                  self->signal_join();
                });
}

net::awaitable<void> Session::end_watch(bool& done) {
  if (done) {
    co_return;
  }
  error_code ignored;
  client_.socket().cancel(ignored);
  co_await join(done);
}

net::awaitable<void> Session::watch_client(std::shared_ptr<Session> self,
                                           std::shared_ptr<TlsStream> upstream) {
  error_code ec;
  const std::size_t n =
      co_await self->client_.async_read_some(self->buffer_.prepare(4096), with_ec(ec));
  if (!ec) {
    self->buffer_.commit(n);  // a pipelined request: kept for the next read
    co_return;
  }
  if (ec != net::error::operation_aborted) {
    // The client hung up on a stream: stop dockerd's side too.
    upstream->close();
  }
}

// An answer read whole through Beast (too large for the plain path, or not in its form),
// then learnt from, filtered and answered anew.
net::awaitable<bool> Session::respond_whole(Admission& a, Answer& answer, Exchange& ex) {
  http::response_parser<http::string_body> full{std::move(answer.parser)};
  full.body_limit(whole_body_limit);
  error_code ec;
  co_await http::async_read(*answer.upstream, answer.buffer, full, with_ec(ec));
  if (ec) {
    answer.upstream->close();
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon did not answer", "upstream.no_response");
    co_return co_await refuse(refusal, a.client_keep_alive(), ex);
  }
  auto upstream_res = full.release();
  if (upstream_res.keep_alive() && answer.buffer.size() == 0) {
    release_upstream(std::move(answer.upstream), *a.rt, answer.target);
  }
  learn_from_answer(a, upstream_res.result_int(), upstream_res.body());
  if (commit_elsewhere(a, upstream_res.result_int())) {
    co_await bring_commit_home(a, upstream_res.body());
  }
  std::optional<std::string> body = filter_answer(a, upstream_res.result_int(), upstream_res.body());
  if (!body) {
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon sent an unexpected answer", "upstream.unexpected");
    co_return co_await refuse(refusal, a.client_keep_alive(), ex);
  }
  http::response<http::string_body> res{upstream_res.result(), 11};
  for (const auto& field : upstream_res) {
    if (field.name() != http::field::content_length &&
        field.name() != http::field::transfer_encoding &&
        field.name() != http::field::connection) {
      res.insert(field.name_string(), field.value());
    }
  }
  res.body() = std::move(*body);
  res.keep_alive(a.client_keep_alive() && !worker_.draining());
  res.prepare_payload();
  ex.bytes_out += res.body().size();
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

// What a create, update or removal tells the ownership index, so that the next request
// resolves the object (or no longer does) without waiting for dockerd's event.
void Session::learn_from_answer(Admission& a, unsigned status, const std::string& body) {
  const policy::Route& route = *a.request->route;
  if (!a.tenant() || status >= 400 || route.index == policy::IndexEffect::none) {
    return;
  }
  SharedIndex& index = worker_.index();
  const std::string& tenant = a.who->tenant;
  std::uint64_t& reservation = a.reservations.quota;
  switch (route.index) {
    case policy::IndexEffect::container_created:
    case policy::IndexEffect::exec_created:
    case policy::IndexEffect::network_created: {
      const auto doc = nlohmann::json::parse(body, nullptr, false);
      if (!doc.is_object() || !doc.contains("Id") || !doc["Id"].is_string()) {
        return;
      }
      const std::string id = doc["Id"].get<std::string>();
      if (route.index == policy::IndexEffect::container_created && a.rt->fleet() &&
          a.host != nullptr && !a.published.empty()) {
        // Its ports are taken from now on: the next create must not be placed beside it
        // before dockerd's start event says so (placement, HostState::ports_in_use).
        index.update_host_facts(a.host->name,
                                [&](HostFacts& facts) { facts.published[id] = a.published; });
      }
      index.write([&](policy::OwnershipIndex& idx) {
        if (route.index == policy::IndexEffect::container_created) {
          idx.put_container({id, tenant, a.rewritten.created_name, "created",
                             a.host != nullptr ? a.host->name : a.rt->primary().name});
          idx.commit(reservation, id);
          reservation = 0;
        } else if (route.index == policy::IndexEffect::exec_created) {
          idx.put_exec(id, a.request->params.front());
        } else {
          // On a fleet a tenant network is an attachable overlay (rewrite), else a bridge.
          idx.put_network({id, tenant, a.rewritten.created_name, a.rewritten.claimed_subnets,
                           !a.rt->fleet()});
        }
      });
      return;
    }
    case policy::IndexEffect::container_updated:
      index.write([&](policy::OwnershipIndex& idx) {
        idx.commit(reservation, a.request->params.front());
        reservation = 0;
      });
      return;
    case policy::IndexEffect::container_removed:
      // Removed now, not when dockerd's event arrives: the quota it held is free at once.
      index.write(
          [&](policy::OwnershipIndex& idx) { idx.erase_container(a.request->params.front()); });
      return;
    case policy::IndexEffect::volume_created:
      index_volume(index, body, a.host != nullptr ? a.host->name : a.rt->primary().name);
      return;
    case policy::IndexEffect::none:
    case policy::IndexEffect::image_committed:  // bring_commit_home
      return;
  }
}

// The filter stage: what the tenant may see of a whole answer. dockerd's errors name stored
// objects; the tenant reads its own names.
std::optional<std::string> Session::filter_answer(Admission& a, unsigned status,
                                                  const std::string& body) {
  if (!a.tenant()) {
    return body;
  }
  const policy::Principal& who = *a.who;
  if (status >= 400) {
    auto doc = nlohmann::json::parse(body, nullptr, false);
    return worker_.index().read([&](const policy::OwnershipIndex& idx) {
      if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
        return policy::docker_error_body(
            policy::tenant_error_message(who, doc["message"].get<std::string>(), &idx));
      }
      return policy::tenant_error_message(who, body, &idx);
    });
  }
  policy::ResponseView view = a.rewritten.view;
  switch (a.request->route->index) {
    case policy::IndexEffect::volume_created:
      view = policy::ResponseView::volume_inspect;
      break;
    case policy::IndexEffect::none:
      break;
    default:
      return body;  // an id, or nothing: the tenant's own
  }
  auto seen = worker_.index().read([&](const policy::OwnershipIndex& idx) {
    return policy::filter_response(view, who, body, idx, a.rewritten.list_filter);
  });
  if (seen && view == policy::ResponseView::info && a.rt->fleet()) {
    return fleet_info(*a.rt, worker_.index(), *seen);
  }
  return seen;
}

std::string Session::transform_lines(LineMode mode, std::string_view lines,
                                     const policy::Principal& who) {
  std::string out;
  std::size_t start = 0;
  while (start < lines.size()) {
    auto nl = lines.find('\n', start);
    if (nl == std::string_view::npos) {
      nl = lines.size();
    }
    const std::string_view line = lines.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) {
      continue;
    }
    if (mode == LineMode::stats) {
      out += worker_.index().read([&](const policy::OwnershipIndex& idx) {
        return policy::filter_stats_line(who, line, &idx);
      });
      out += '\n';
    } else if (mode == LineMode::events) {
      auto filtered = worker_.index().read([&](const policy::OwnershipIndex& idx) {
        return policy::filter_event(who, line, idx);
      });
      if (filtered) {
        out += *filtered;
        out += '\n';
      }
    } else {
      out += policy::filter_build_message(who, line);
      out += '\n';
    }
  }
  return out;
}

}  // namespace berth::proxy
