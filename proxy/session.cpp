#include "proxy/session.hpp"

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <array>
#include <memory>
#include <string>

#include "policy/decision.hpp"
#include "policy/identity.hpp"
#include "proxy/log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {


// One X509_NAME entry; empty when absent or repeated (two CNs or two Os would let the
// certificate mean two identities).
std::string single_entry(X509_NAME* name, int nid) {
  const int first = X509_NAME_get_index_by_NID(name, nid, -1);
  if (first < 0 || X509_NAME_get_index_by_NID(name, nid, first) >= 0) {
    return {};
  }
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, first));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    return {};
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

policy::Identity peer_identity(SSL* ssl) {
  policy::Identity id;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert) {
    return id;
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  id.common_name = single_entry(subject, NID_commonName);
  id.organization = single_entry(subject, NID_organizationName);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      id.serial = policy::normalize_serial(hex);
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  return id;
}

}  // namespace

Session::Session(Worker& worker, TlsStream client, std::string peer,
                 ConnectionCounter::Slot address_slot, ConnectionCounter::Slot handshake_slot)
    : worker_(worker),
      client_(std::move(client)),
      peer_(std::move(peer)),
      buffer_(512 * 1024),
      address_slot_(std::move(address_slot)),
      handshake_slot_(std::move(handshake_slot)) {}

Session::~Session() {
  if (counted_) {
    worker_.metrics().connection_closed();
  }
}

void Session::close() noexcept {
  if (closed_) {
    return;
  }
  closed_ = true;
  client_.close();
  // A request waiting on dockerd (logs -f of a quiet container, events, a wait) must end too:
  // its reads are cancelled, and a connection whose read was cancelled is never pooled.
  if (const auto upstream = upstream_in_use_.lock()) {
    error_code ignored;
    upstream->socket().cancel(ignored);
  }
  if (join_timer_) {
    join_timer_->cancel();
  }
}

void Session::revalidate(const Runtime& rt) noexcept {
  if (closed_ || !peer_cert_) {
    return;
  }
  // The new store carries the new CA bundle and CRL (with CRL checking on when one is set).
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  if (!ctx) {
    return;
  }
  bool valid = false;
  if (X509_STORE_CTX_init(ctx, SSL_CTX_get_cert_store(rt.server_ctx.get()), peer_cert_.get(),
                          nullptr) == 1) {
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    valid = X509_verify_cert(ctx) == 1;
    if (!valid) {
      log_warn("closing connection from " + peer_ + " (CN=" + identity_.common_name +
               ", serial " + identity_.serial + "): certificate no longer accepted: " +
               X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
  }
  X509_STORE_CTX_free(ctx);
  if (!valid) {
    close();
  }
}

void Session::close_if_idle() noexcept {
  if (idle_) {
    close();
  }
}

void Session::sweep(Clock::time_point now) noexcept {
  if (!closed_ && now >= deadline_) {
    worker_.metrics().client_timed_out(phase_);
    log_info("connection from " + peer_ + " timed out (" + phase_name(phase_) + "); closing");
    close();
  }
}

net::awaitable<bool> Session::handshake() {
  arm(worker_.limits().handshake, Phase::handshake);
  const error_code ec = co_await client_.handshake();
  disarm();
  handshake_slot_.release();
  if (ec) {
    std::string reason = ec.message();
    const long verify = SSL_get_verify_result(client_.ssl());
    if (verify != X509_V_OK) {
      reason = std::string("client certificate refused: ") +
               X509_verify_cert_error_string(verify);
    } else if (SSL_get0_peer_certificate(client_.ssl()) == nullptr &&
               (reason.find("certificate") != std::string::npos)) {
      reason = "no client certificate: " + reason;
    }
    log_warn("tls handshake from " + peer_ + " refused: " + reason);
    worker_.metrics().handshake_failed();
    co_return false;
  }
  identity_ = peer_identity(client_.ssl());
  if (X509* cert = SSL_get0_peer_certificate(client_.ssl())) {
    X509_up_ref(cert);
    peer_cert_.reset(cert);
  }
  // One client certificate may hold so many connections, wherever they come from; past that
  // its requests are answered 429 and the connection ends (pipeline()).
  certificate_slot_ = worker_.counters().certificates.acquire(
      identity_.serial.empty() ? "cn:" + identity_.common_name : identity_.serial,
      worker_.limits().per_certificate);
  if (!certificate_slot_.held()) {
    worker_.metrics().connection_refused(Metrics::Refusal::per_certificate);
  }
  co_return true;
}

net::awaitable<void> Session::run(std::shared_ptr<Session> self) {
  // Counted for the session's life, not this coroutine's: an idle session is parked outside it.
  self->worker_.metrics().connection_opened();
  self->counted_ = true;
  if (!co_await self->handshake()) {
    // OpenSSL has written its alert ("certificate required", "revoked"): closing at once
    // would answer the client's already-sent request with a reset that destroys the alert.
    co_await self->linger_close(false);
    co_return;
  }
  {
    // Refuse an unknown identity in the log at once; the client learns it on its first request.
    const auto rt = self->worker_.runtime().get();
    if (auto who = policy::identify(*rt->policy, self->identity_); !who) {
      log_warn("connection from " + self->peer_ + ": " + who.error().tenant_message);
    }
  }
  co_await serve_requests(self, false);
}

net::awaitable<void> Session::serve_requests(std::shared_ptr<Session> self, bool readable) {
  bool idle = false;
  while (!self->closed_) {
    if (!readable) {
      self->idle_ = true;
      if (self->worker_.draining()) {
        break;
      }
      self->arm(self->worker_.limits().idle, Phase::idle);
      if (self->buffer_.size() == 0 && SSL_has_pending(self->client_.ssl()) == 0) {
        idle = true;
        break;
      }
    }
    readable = false;
    if (!co_await self->read_and_serve()) {
      break;
    }
  }
  if (!idle && !self->closed_) {
    co_await self->linger_close(true);
    co_return;
  }
  if (idle) {
    // Idle: nothing allocated for the next request but the wait. The parser, the read
    // buffer and the request's coroutine frames exist only once bytes arrive.
    self->buffer_.shrink_to_fit();
    // OpenSSL's record buffers too (nothing is pending in them: checked above).
    if (SSL* ssl = self->client_.ssl()) {
      (void)SSL_free_buffers(ssl);
    }
    park(self);
  } else {
    self->finish();
  }
}

void Session::park(std::shared_ptr<Session> self) {
  TlsStream::socket_type& socket = self->client_.socket();
  socket.async_wait(net::socket_base::wait_read, [self = std::move(self)](error_code ec) mutable {
    if (ec || self->closed_) {
      self->finish();
      return;
    }
    const auto executor = self->client_.get_executor();
    std::string peer = self->peer_;
    Metrics* metrics = &self->worker_.metrics();
    net::co_spawn(executor, serve_requests(std::move(self), true),
                  [peer = std::move(peer), metrics](std::exception_ptr e) {
                    if (e) {
                      metrics->session_failed();
                      try {
                        std::rethrow_exception(e);
                      } catch (const std::exception& ex) {
                        log_error("session " + peer + " failed: " + ex.what());
                      } catch (...) {
                        log_error("session " + peer + " failed with an unknown exception");
                      }
                    }
                  });
  });
}

net::awaitable<void> Session::linger_close(bool tls_up) {
  // Stop sending (close_notify and FIN), then read and drop what the client still sends for
  // a moment before closing: a close with unread bytes in the socket sends a reset, which
  // destroys the answer (a refusal, an alert) the client has not read yet. Bounded in time
  // and bytes, so a client cannot hold the connection this way.
  if (tls_up) {
    client_.shutdown_send();
  } else {
    client_.socket().shutdown(net::socket_base::shutdown_send, ignored_ec());
  }
  arm(linger_time, Phase::linger);
  // On the heap: a local array would live in this coroutine's frame.
  const auto sink = std::make_unique<std::array<char, 16 * 1024>>();
  std::size_t drained = 0;
  while (drained < linger_bytes && !closed_) {
    error_code ec;
    drained += co_await client_.socket().async_read_some(net::buffer(*sink), with_ec(ec));
    if (ec) {
      break;
    }
  }
  disarm();
  close();
}

void Session::finish() noexcept {
  disarm();
  if (!closed_) {
    client_.shutdown_send();
    close();
  }
}

net::awaitable<bool> Session::read_and_serve() {
  RequestParser parser;
  parser.header_limit(header_limit);
  parser.body_limit(unlimited_body);
  // Bytes of a request are here (or the client is trickling them): the whole head must
  // arrive within the header deadline, however slowly each byte comes.
  arm(worker_.limits().header, Phase::header);
  error_code ec;
  co_await http::async_read_header(client_, buffer_, parser, with_ec(ec));
  disarm();
  idle_ = false;
  if (ec) {
    // A client that hangs up (before or inside a header) gets no answer; a request Beast
    // cannot parse gets Go's answers: 431 for an oversized header, 400 otherwise.
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message && !closed_) {
      Exchange ex;
      const bool too_big = ec == http::error::header_limit || ec == http::error::buffer_overflow;
      policy::Decision bad = policy::Decision::deny(
          too_big ? 431 : 400, "berth: malformed HTTP request: " + ec.message(),
          too_big ? "http.header_too_large" : "http.malformed");
      co_await refuse(bad, false, ex);
      account(ex);
    }
    co_return false;
  }
  co_return co_await serve(parser);
}

net::awaitable<bool> Session::serve(RequestParser& parser) {
  Exchange ex;
  const bool keep = co_await pipeline(parser, ex);
  // 7. account: once per request, however it ended (a refusal inside forward used to be
  //    accounted twice).
  account(ex);
  co_return keep;
}

net::awaitable<bool> Session::refuse(const policy::Decision& decision, bool keep_alive,
                                     Exchange& ex) {
  ex.allowed = false;
  ex.rule = decision.rule_id;
  ex.status = decision.http_status;
  http::response<http::string_body> res{static_cast<http::status>(decision.http_status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "berth");
  res.body() = policy::docker_error_body(decision.tenant_message);
  res.keep_alive(keep_alive && !worker_.draining());
  res.prepare_payload();
  bool written = false;
  if (ex.method == "HEAD") {
    // A HEAD answer carries the length of the body it would have, but never the body.
    http::response_serializer<http::string_body> sr{res};
    error_code ec;
    arm(client_write_timeout, Phase::write);
    co_await http::async_write_header(client_, sr, with_ec(ec));
    disarm();
    written = !ec;
  } else {
    written = co_await write_response(res);
  }
  co_return written && res.keep_alive();
}

net::awaitable<bool> Session::write_response(http::response<http::string_body>& res) {
  error_code ec;
  arm(client_write_timeout, Phase::write);
  co_await http::async_write(client_, res, with_ec(ec));
  disarm();
  co_return !ec;
}

}  // namespace berth::proxy
