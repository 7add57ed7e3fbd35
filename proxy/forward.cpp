// 6. forward: the request as judged, to the host of the fleet that serves it (route_request,
//    proxy/fleet.cpp), and the head of its answer. A pooled connection dockerd has closed since (a
//    restart) gets a bodyless request once more on a new one when dockerd cannot have acted
//    on it. Interim answers (1xx but a requested 101) are dropped on the way: the answer is
//    the final one, and a connection returns to the pool only once that has been read to its
//    framed end (deliver.cpp).

#include <string>

#include "policy/endpoint_table.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

Session::Answer::Answer() : buffer(header_limit * 2) {
  parser.header_limit(header_limit);
  parser.body_limit(unlimited_body);
}

void Session::upstream_header(http::request_header<>& header, const std::string& target,
                              bool upgrade, const policy::Route* tenant_route, bool body) {
  header.target(target);
  header.version(11);
  for (auto it = header.begin(); it != header.end();) {
    const auto field = it->name();
    const bool framing = field == http::field::content_length ||
                         field == http::field::transfer_encoding ||
                         field == http::field::upgrade || field == http::field::connection;
    if (is_hop_by_hop(it->name_string()) ||
        (tenant_route != nullptr && !framing &&
         !policy::tenant_field_forwarded(*tenant_route, it->name_string()))) {
      it = header.erase(it);
    } else {
      ++it;
    }
  }
  if (tenant_route != nullptr && body) {
    header.set(http::field::content_type, policy::tenant_body_content_type(*tenant_route));
  }
  if (upgrade) {
    header.set(http::field::connection, "Upgrade");
  } else {
    header.erase(http::field::upgrade);
    header.erase(http::field::connection);
  }
}

// Sends one request whose body is relayed (a stream, an operator's) or replaced by the judged
// document. A build context or image archive refused mid-stream leaves its refusal in `refusal`.
net::awaitable<bool> Session::send_request(Admission& a, TlsStream& upstream, bool upgrade,
                                           std::optional<std::string> body, Exchange& ex,
                                           std::optional<policy::Decision>& refusal) {
  if (!body) {
    // The header is already dockerd's (forward called upstream_header).
    co_return co_await relay_request_body(upstream, a.parser, ex,
                                          a.body_filter.get(), refusal);
  }
  // A judged body: the re-serialized document dockerd will decode, never the client's bytes.
  const http::request_header<>& header = a.header();
  http::request<http::string_body> out{header.method(), a.rewritten.target, 11};
  for (const auto& field : header) {
    const auto name = field.name();
    if (is_hop_by_hop(field.name_string()) || name == http::field::content_length ||
        name == http::field::transfer_encoding || name == http::field::connection ||
        name == http::field::upgrade || name == http::field::content_type ||
        (a.tenant() && !policy::tenant_field_forwarded(*a.request->route, field.name_string()))) {
      continue;
    }
    out.insert(field.name_string(), field.value());
  }
  if (upgrade) {
    out.set(http::field::connection, "Upgrade");
    out.set(http::field::upgrade, header[http::field::upgrade]);
  }
  out.body() = std::move(*body);
  if (!out.body().empty()) {
    out.set(http::field::content_type, "application/json");
  }
  out.prepare_payload();
  ex.bytes_in += out.body().size();
  error_code ec;
  co_await http::async_write(upstream, out, with_ec(ec));
  co_return !ec;
}

// What forward sends: the judged document, or nothing (the client's body is relayed, or
// there is none), with the facts the resend and the head scan depend on.
struct Session::Outgoing {
  std::optional<std::string> body;
  bool body_pending = false;  // the client's body is still to be relayed
  bool bodyless = false;      // the head alone: resent on a new connection when safe
  bool replayable = false;    // a GET or HEAD, also resent when dockerd answered nothing
  bool scan_plain = false;    // not a stream: the answer's head is scanned without Beast
};

net::awaitable<std::optional<Session::Outgoing>> Session::outgoing(Admission& a, Answer& answer) {
  http::request_header<>& header = a.header();
  const policy::Route& route = *a.request->route;
  answer.is_head = header.method() == http::verb::head;
  answer.upgrade = policy::may_hijack(route.body) &&
                   header_has_token(header[http::field::connection], "upgrade");
  if (answer.is_head) {
    answer.parser.skip(true);
  }
  Outgoing out;
  out.body = a.rewritten.body;
  if (!out.body && a.judged) {
    out.body = a.judged->get().body();
  }
  if (!out.body) {
    out.body_pending = !a.parser.is_done();
    // Before its head is made dockerd's (which drops the client's Expect).
    if (expects_continue(a.parser)) {
      if (!co_await continue_if_expected(a.parser)) {
        co_return std::nullopt;
      }
    }
    upstream_header(header, a.rewritten.target, answer.upgrade, a.tenant() ? &route : nullptr,
                    out.body_pending);
  }
  // A connection from the pool may have been closed by dockerd since (a restart) without
  // berth having looked (see UpstreamPool). A bodyless request on one then goes once more on
  // a new connection, when that is safe: its head could not be written (so dockerd saw none of
  // it), or, for a GET or HEAD, dockerd ended the connection before answering anything.
  out.bodyless = !out.body && !out.body_pending && !a.body_filter;
  out.replayable = out.bodyless && (header.method() == http::verb::get || answer.is_head);
  // An answer that is not a stream: its head is scanned without Beast first, so that a small
  // one may be passed on as dockerd wrote it or answered anew (deliver).
  out.scan_plain = !policy::may_hijack(route.body) &&
                   route.timeout != policy::TimeoutClass::endless &&
                   !line_view(a.rewritten.view);
  co_return out;
}

net::awaitable<std::optional<Refusal>> Session::forward(Admission& a, Answer& answer,
                                                        Exchange& ex) {
  const Target target = answer.target;  // route_request's choice
  std::optional<Outgoing> out = co_await outgoing(a, answer);
  if (!out) {
    co_return Refusal::gone();
  }
  const policy::Route& route = *a.request->route;
  std::shared_ptr<TlsStream>& upstream = answer.upstream;
  upstream = worker_.pool().take_idle(*a.rt, target);
  bool reused = upstream != nullptr;
  upstream_in_use_ = upstream;  // close() cancels what this request waits for there
  for (;;) {
    if (!upstream) {
      auto acquired = co_await worker_.pool().acquire(a.rt, target);
      if (!acquired) {
        log_error("cannot reach dockerd at " + target.key() + ": " +
                  acquired.error().message());
        co_return Refusal{policy::Decision::deny(502, "berth: cannot reach the Docker daemon",
                                                 "upstream.down"),
                          a.client_keep_alive() && !out->body_pending};
      }
      upstream = std::move(*acquired);
      upstream_in_use_ = upstream;
    }
    if (closed_) {
      // Closed while this request was on its way (SIGTERM's grace ran out, a deadline): close()
      // has run and will not run again, so nothing may start on dockerd that it would have had
      // to cancel (a stream left open kept a worker from stopping).
      co_return Refusal::gone();
    }
    if (out->bodyless) {
      // dockerd saw none of a head that could not be written: on a reused connection (any
      // method) it goes again.
      if (const error_code ec = co_await write_bodyless(a, answer, ex)) {
        if (reused && !closed_) {
          drop_dead(answer, target, ec, ex);
          reused = false;
          continue;
        }
        upstream->close();
        co_return Refusal::gone();
      }
    } else {
      std::optional<policy::Decision> refusal;
      const bool sent =
          co_await send_request(a, *upstream, answer.upgrade, std::move(out->body), ex, refusal);
      out->body.reset();
      if (!sent) {
        upstream->close();
        if (refusal) {
          co_return Refusal{*refusal, false};
        }
        co_return Refusal::gone();
      }
    }
    // How long the route's timeout class lets a request wait for dockerd's answer.
    if (const auto deadline = policy::answer_deadline(route.timeout); deadline.count() > 0) {
      arm(deadline, Phase::upstream);
    }
    const error_code ec = co_await read_answer_head(answer, out->scan_plain);
    disarm();
    if (ec && reused && out->replayable && !closed_ && !answer.parser.got_some() &&
        answer.buffer.size() == 0 && closed_before_answer(ec)) {
      drop_dead(answer, target, ec, ex);
      reused = false;
      continue;
    }
    if (ec) {
      log_error("dockerd closed or garbled the response to " + ex.method + " " + ex.target +
                ": " + ec.message());
      upstream->close();
      co_return Refusal{policy::Decision::deny(502, "berth: the Docker daemon did not answer",
                                               "upstream.no_response"),
                        a.client_keep_alive()};
    }
    co_return std::nullopt;
  }
}

// A request without a body (a GET, a bodiless POST): its head alone, in one write.
net::awaitable<error_code> Session::write_bodyless(Admission& a, Answer& answer, Exchange& ex) {
  const http::request_header<>& header = a.header();
  Window out;
  const std::size_t n = put_head(out.get(), relay_window, header.method_string(), header.target(),
                                 "HTTP/1.1", header);
  error_code ec;
  if (n != 0) {
    co_await net::async_write(*answer.upstream, net::buffer(out.get(), n), with_ec(ec));
    co_return ec;
  }
  // A head larger than a window: through Beast's serializer.
  std::optional<policy::Decision> unused;
  const bool sent =
      co_await send_request(a, *answer.upstream, answer.upgrade, std::nullopt, ex, unused);
  if (!sent) {
    ec = net::error::broken_pipe;
  }
  co_return ec;
}

// A pooled connection turned out closed by dockerd (a restart) before it saw the request.
void Session::drop_dead(Answer& answer, Target target, const error_code& why, Exchange& ex) {
  log_info("a pooled connection to dockerd was closed (" + why.message() + "); sending " +
           ex.method + " " + ex.target + " again on a new one");
  worker_.pool().found_dead(*answer.upstream, target);
  upstream_in_use_.reset();
  answer.upstream.reset();
}

// Reads dockerd's answer head into answer.buffer: scanned without Beast when `scan_plain`
// (answer.head complete: a plain head, left for deliver to pass or parse), parsed by Beast
// otherwise. Interim answers are consumed on the way.
net::awaitable<error_code> Session::read_answer_head(Answer& answer, bool scan_plain) {
  UpstreamBuffer& buffer = answer.buffer;
  // Beast reads max(512, free capacity) bytes at a time: without room, a 4 KiB body would
  // arrive, and be relayed, as eight 512-byte chunks.
  buffer.reserve(16 * 1024);
  error_code ec;
  for (;;) {
    const std::string_view seen = buffer_view(buffer);
    bool partial_interim = false;
    if (const std::size_t interim = interim_head_size(seen, partial_interim)) {
      buffer.consume(interim);
      continue;
    }
    answer.head = scan_response_head(seen);
    if ((answer.head.state != HeadScan::incomplete && !partial_interim) ||
        buffer.size() >= header_limit) {
      break;
    }
    const std::size_t room = std::max<std::size_t>(buffer.capacity() - buffer.size(), 512);
    const std::size_t got =
        co_await answer.upstream->async_read_some(buffer.prepare(room), with_ec(ec));
    if (ec) {
      // What Beast's read would have said.
      if (buffer.size() != 0) {
        ec = http::error::partial_message;
      } else if (ec == net::error::eof) {
        ec = http::error::end_of_stream;
      }
      co_return ec;
    }
    buffer.commit(got);
  }
  if (!scan_plain) {
    answer.head.state = HeadScan::unsupported;  // streams and hijacks are parsed by Beast
  }
  if (answer.head.state != HeadScan::complete) {
    co_await http::async_read_header(*answer.upstream, buffer, answer.parser, with_ec(ec));
  }
  co_return ec;
}

// One piece of a build context or image archive through the filter that judges it (the end
// of the archive with the last piece): the bytes to forward, or the refusal.
std::expected<std::string, policy::Decision> Session::judge_context(
    policy::TarBodyFilter& tar, std::string_view piece, bool last) {
  auto out = worker_.index().read(
      [&](const policy::OwnershipIndex& idx) { return tar.feed(piece, idx); });
  if (out && last && !tar.pending()) {
    auto tail = tar.finish();
    if (!tail) {
      return std::unexpected(tail.error());
    }
    *out += *tail;
  }
  return out;
}

// A stream's body (a build context, an image archive, a copy into a container, an operator's
// upload), relayed through one window; a build context or image archive through the filter
// that judges it as it comes.
net::awaitable<bool> Session::relay_request_body(TlsStream& upstream, RequestParser& parser,
                                                 Exchange& ex, policy::TarBodyFilter* tar,
                                                 std::optional<policy::Decision>& refusal) {
  auto& req = parser.get();
  if (tar && !parser.is_done()) {
    // The judged archive may change length: frame it in chunks toward dockerd.
    req.erase(http::field::content_length);
    req.chunked(true);
  }
  http::request_serializer<http::buffer_body> sr{req};
  error_code ec;
  req.body().data = nullptr;
  req.body().size = 0;
  req.body().more = !parser.is_done();
  if (parser.is_done()) {
    co_await http::async_write(upstream, sr, with_ec(ec));
    co_return !ec;
  }
  co_await http::async_write_header(upstream, sr, with_ec(ec));
  if (ec) {
    co_return false;
  }
  // Beast's buffer_body relay: the window is the only memory a large body ever uses.
  Window window;
  buffer_.reserve(16 * 1024);
  while (!parser.is_done()) {
    req.body().data = window.get();
    req.body().size = relay_window;
    arm(request_read_timeout, Phase::body);
    co_await http::async_read_some(client_, buffer_, parser, with_ec(ec));
    disarm();
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      log_info("request body from " + peer_ + " ended early: " + ec.message());
      upstream.close();  // dockerd must not act on a partial body
      co_return false;
    }
    std::size_t n = relay_window - req.body().size;
    ex.bytes_in += n;
    std::string_view piece(window.get(), n);
    // A compressed archive gives its judged bytes a bounded piece at a time: drained here
    // before the next read.
    do {
      std::string judged;
      if (tar) {
        auto out = judge_context(*tar, piece, parser.is_done());
        piece = {};
        if (!out) {
          // Refused mid-stream: cut dockerd's side before the archive is complete, so no build
          // or load runs, and tell the client why.
          upstream.close();
          log_info("archive refused for " + peer_ + ": " + out.error().tenant_message);
          refusal = out.error();
          co_return false;
        }
        judged = std::move(*out);
        n = judged.size();
        req.body().data = n == 0 ? nullptr : judged.data();
      } else {
        // An empty buffer with data set would be serialized as one more chunk: data must be null.
        req.body().data = n == 0 ? nullptr : window.get();
      }
      req.body().size = n;
      req.body().more = !parser.is_done() || (tar && tar->pending());
      if (n == 0 && req.body().more) {
        continue;
      }
      co_await http::async_write(upstream, sr, with_ec(ec));
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      if (ec) {
        co_return false;
      }
    } while (tar && tar->pending());
  }
  co_return co_await finish_request_body(upstream, sr, req);
}

// The last chunk of a relayed body, when the serializer has not written it yet.
net::awaitable<bool> Session::finish_request_body(
    TlsStream& upstream, http::request_serializer<http::buffer_body>& sr,
    http::request<http::buffer_body>& req) {
  if (sr.is_done()) {
    co_return true;
  }
  req.body().data = nullptr;
  req.body().size = 0;
  req.body().more = false;
  error_code ec;
  co_await http::async_write(upstream, sr, with_ec(ec));
  co_return !ec || ec == http::error::need_buffer;
}

}  // namespace berth::proxy
