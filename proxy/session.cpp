#include "proxy/session.hpp"

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstring>
#include <vector>
#include <limits>

#include "policy/authorize.hpp"
#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/filter.hpp"
#include "policy/names.hpp"
#include "policy/network_pools.hpp"
#include "policy/quota.hpp"
#include "policy/vocabulary.hpp"
#include "proxy/chunked.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"

namespace berth::proxy {

using namespace std::chrono_literals;

namespace {

constexpr auto request_read_timeout = 60s;  // a judged body whole; each read of a streamed one
constexpr auto client_write_timeout = 300s;  // a client that stops reading a response
constexpr auto hijack_linger = 30s;  // after dockerd ends a hijacked stream, for the client's end
// Session::linger_close: how long, and how much, a closing connection still reads and drops.
constexpr auto linger_time = 1s;
constexpr std::size_t linger_bytes = 4 * 1024 * 1024;
// Session::pump: how a stream's small pieces are gathered.
constexpr std::size_t gather_below = 16 * 1024;  // a piece this big is a full TLS record
constexpr auto gather_after = 1ms;
constexpr auto gather_wait = 250us;
constexpr std::size_t header_limit = 256 * 1024;
constexpr std::size_t relay_window = 64 * 1024;
// An answer up to this size is read whole and sent in one write (Session::forward).
constexpr std::uint64_t small_answer = 32 * 1024;
constexpr std::size_t judged_body_limit = 4 * 1024 * 1024;
constexpr std::size_t whole_body_limit = 256 * 1024 * 1024;
// Not boost::none: Boost 1.74's parser compares the content length with the optional limit
// and a disengaged optional compares smaller than every value (body_limit error on any body).
constexpr std::uint64_t unlimited_body = std::numeric_limits<std::uint64_t>::max();

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

bool is_hop_by_hop(std::string_view name) {
  // Expect is answered by berth itself (Session::continue_if_expected): forwarded, dockerd's
  // 100 Continue would come back as an interim answer on a pooled connection.
  static constexpr std::string_view names[] = {"keep-alive", "proxy-connection", "te",
                                               "trailer", "proxy-authorization",
                                               "proxy-authenticate", "expect"};
  for (auto n : names) {
    if (beast::iequals(name, n)) {
      return true;
    }
  }
  return false;
}

bool header_has_token(std::string_view value, std::string_view token) {
  for (auto t : http::token_list(value)) {
    if (beast::iequals(t, token)) {
      return true;
    }
  }
  return false;
}

// One generator per worker thread (sessions never migrate): a per-session mt19937_64 was
// 2.5 KiB of every idle connection's memory.
std::mt19937_64& name_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// Relay windows are recycled per thread (sessions never migrate): a fresh 64 KiB block per
// request cost a page-faulting, zero-filled allocation on every small response.
class Window {
 public:
  Window() {
    auto& pool = free_list();
    if (pool.empty()) {
      block_.reset(new char[relay_window]);  // uninitialised on purpose
    } else {
      block_ = std::move(pool.back());
      pool.pop_back();
    }
  }
  ~Window() {
    auto& pool = free_list();
    if (block_ && pool.size() < 64) {
      pool.push_back(std::move(block_));
    }
  }
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;
  char* get() const noexcept { return block_.get(); }

 private:
  static std::vector<std::unique_ptr<char[]>>& free_list() {
    thread_local std::vector<std::unique_ptr<char[]>> pool;
    return pool;
  }
  std::unique_ptr<char[]> block_;
};

// The recycled blocks of RecyclingAllocator: a few per size, per thread.
class BlockPool {
 public:
  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool() {
    for (const auto& [bytes, block] : blocks_) {
      ::operator delete(block, bytes);
    }
  }
  void* take(std::size_t bytes) noexcept {
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      if (blocks_[i].first == bytes) {
        void* block = blocks_[i].second;
        blocks_[i] = blocks_.back();
        blocks_.pop_back();
        return block;
      }
    }
    return nullptr;
  }
  bool keep(void* block, std::size_t bytes) {
    // A buffer grown for a large header is handed back: the pool keeps only ordinary ones.
    if (blocks_.size() >= 16 || bytes > 64 * 1024) {
      return false;
    }
    blocks_.emplace_back(bytes, block);
    return true;
  }

 private:
  std::vector<std::pair<std::size_t, void*>> blocks_;
};

BlockPool& block_pool() {
  thread_local BlockPool pool;
  return pool;
}

std::string_view buffer_view(const UpstreamBuffer& b) {
  const auto data = b.data();
  return {static_cast<const char*>(data.data()), data.size()};
}

error_code& ignored_ec() {
  thread_local error_code ec;
  return ec;
}

bool header_keep_alive(const http::request_header<>& h) {
  const auto connection = h[http::field::connection];
  if (h.version() >= 11) {
    return !header_has_token(connection, "close");
  }
  return header_has_token(connection, "keep-alive");
}

bool is_raw_stream(std::string_view content_type) {
  return content_type.starts_with("application/vnd.docker.raw-stream") ||
         content_type.starts_with("application/vnd.docker.multiplexed-stream");
}

// Writes "start line CRLF, fields, CRLF" into [out, out + cap) as Beast's serializer would, and
// returns its length, or 0 when it does not fit. The small-message fast paths use it: one
// contiguous buffer, one write(2) (one TLS record), none of the serializer's buffer views.
template <bool isRequest>
std::size_t put_head(char* out, std::size_t cap, std::string_view a, std::string_view b,
                     std::string_view c, const http::header<isRequest>& head) {
  std::size_t at = 0;
  const auto put = [&](std::string_view piece) {
    if (at + piece.size() > cap) {
      return false;
    }
    std::memcpy(out + at, piece.data(), piece.size());
    at += piece.size();
    return true;
  };
  if (!put(a) || !put(" ") || !put(b) || !put(" ") || !put(c) || !put("\r\n")) {
    return 0;
  }
  for (const auto& field : head) {
    const std::string_view name = field.name_string();
    const std::string_view value = field.value();
    // Beast keeps each field as one "Name: value\r\n" line: copied whole when it is laid out
    // so (checked, not assumed), piece by piece otherwise.
    const char* const end = value.data() + value.size();
    if (value.data() == name.data() + name.size() + 2 && name.data()[name.size()] == ':' &&
        end[0] == '\r' && end[1] == '\n') {
      if (!put(std::string_view(name.data(), static_cast<std::size_t>(end + 2 - name.data())))) {
        return 0;
      }
    } else if (!put(name) || !put(": ") || !put(value) || !put("\r\n")) {
      return 0;
    }
  }
  return put("\r\n") ? at : 0;
}

}  // namespace

void* recycled_allocate(std::size_t bytes) {
  if (void* block = block_pool().take(bytes)) {
    return block;
  }
  return ::operator new(bytes);
}

void recycled_free(void* p, std::size_t bytes) noexcept {
  try {
    if (block_pool().keep(p, bytes)) {
      return;
    }
  } catch (...) {  // the pool's vector could not grow: hand the block back instead
  }
  ::operator delete(p, bytes);
}

struct Session::Exchange {
  Clock::time_point started = Clock::now();
  std::string method;
  std::string target;
  std::string endpoint = "-";
  std::string tenant;
  std::string user;
  bool operator_ = false;
  bool allowed = false;
  std::string rule;
  unsigned status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool hijacked = false;
  std::string_view endpoint_class = "unclassified";
  bool stream = false;  // hijacked or endless: no latency observation
  // What the request's own steps share. Here, in the request's coroutine frame, not in the
  // session: an idle connection keeps none of it.
  const policy::Principal* principal = nullptr;  // for line filters during a relay
  std::string created_name;  // stored name of the object the request creates
  std::uint64_t reservation = 0;  // the request's quota reservation, if any
  std::uint64_t subnet_reservation = 0;  // a network create's reserved subnets, if any
  std::vector<policy::Cidr> created_subnets;  // ... and the subnets themselves
  std::vector<std::string> ensured_volumes;  // volumes berth created for the request
  std::optional<policy::Decision> build_refusal;  // a build context refused mid-stream
};

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
  if (upstream_in_use_ != nullptr) {
    error_code ignored;
    upstream_in_use_->socket().cancel(ignored);
  }
  if (join_timer_) {
    join_timer_->cancel();
  }
}

void Session::release_upstream(std::shared_ptr<TlsStream> connection, const Runtime& rt) {
  if (upstream_in_use_ == connection.get()) {
    upstream_in_use_ = nullptr;  // another request may take it from the pool now
  }
  worker_.pool().release(std::move(connection), rt);
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

// The request pipeline, top to bottom.
net::awaitable<bool> Session::pipeline(RequestParser& parser, Exchange& ex) {
  auto& req = parser.get();
  if (!certificate_slot_.held()) {
    ex.method = std::string(req.method_string());
    ex.target = std::string(req.target());
    const policy::Decision refusal =
        policy::Decision::deny(429,
                               "berth: this client certificate already holds " +
                                   std::to_string(worker_.limits().per_certificate) +
                                   " connections to berth; close some and retry",
                               "limit.connections");
    co_return co_await refuse(refusal, false, ex);
  }
  ex.method = std::string(req.method_string());
  ex.target = std::string(req.target());
  const bool keep_alive = req.keep_alive() && parser.is_done();
  const auto rt = worker_.runtime().get();  // this request's policy, whatever reloads meanwhile
  SharedIndex& index = worker_.index();

  // 1. identify
  const auto who = policy::identify(*rt->policy, identity_);
  if (!who) {
    co_return co_await refuse(who.error(), false, ex);
  }
  ex.tenant = who->tenant;
  ex.user = who->user;
  ex.operator_ = who->is_operator();
  // RFC 9110 10.1.1: berth answers Expect itself and never forwards it; an expectation other
  // than 100-continue fails, as Go's server fails it.
  if (const auto expect = req[http::field::expect];
      !expect.empty() && !beast::iequals(expect, "100-continue")) {
    const policy::Decision refusal = policy::Decision::deny(
        417, "berth: unsupported Expect: " + std::string(expect), "http.expect");
    co_return co_await refuse(refusal, false, ex);
  }

  // 2. classify
  const auto request = policy::classify(ex.method, ex.target);
  if (!request) {
    co_return co_await refuse(request.error(), keep_alive, ex);
  }
  ex.endpoint = std::string(request->route->endpoint);
  ex.endpoint_class = policy::access_name(request->route->access);

  // 3. resolve: references in the path, within the tenant's own objects. The index answers
  //    without a round trip; only a miss is checked with dockerd before "no such object".
  auto resolved = index.read(
      [&](const policy::OwnershipIndex& idx) { return policy::resolve(*who, *request, idx); });
  if (!resolved && resolved.error().http_status == 404 &&
      policy::ref_kind(*request->route) != policy::RefKind::none) {
    co_await refresh_reference(index, worker_.pool(), rt, policy::ref_kind(*request->route),
                               who->tenant, request->params.front());
    resolved = index.read(
        [&](const policy::OwnershipIndex& idx) { return policy::resolve(*who, *request, idx); });
  }
  if (!resolved) {
    co_return co_await refuse(resolved.error(), keep_alive, ex);
  }

  // 4. authorize and rewrite
  const policy::Decision decision = policy::authorize_route(*who, *resolved);
  if (!decision.allowed()) {
    co_return co_await refuse(decision, keep_alive, ex);
  }
  ex.rule = decision.rule_id;
  if (who->is_operator()) {
    ex.allowed = true;
    if (!co_await continue_if_expected(parser)) {
      co_return false;
    }
    co_return co_await forward(rt, *who, *resolved, req, &parser, std::nullopt,
                               policy::canonical_target(*resolved), policy::ResponseView::pass,
                               ex);
  }
  const auto body_mode = resolved->route->body;
  const bool read_whole = body_mode == policy::BodyMode::judge ||
                          resolved->route->endpoint == "exec.start";
  // A body where dockerd reads none, or on an attach (Go's ParseForm would read a
  // form-encoded one as parameters), is refused; exec start's is judged JSON.
  if (!parser.is_done() && (body_mode == policy::BodyMode::none ||
                            (body_mode == policy::BodyMode::hijack && !read_whole))) {
    const policy::Decision refusal = policy::Decision::deny(
        400, "berth: " + ex.endpoint + " takes no request body", "body.unexpected");
    co_return co_await refuse(refusal, false, ex);
  }
  // A judged body is read whole before anything reaches dockerd: dockerd acts on a complete
  // JSON document even when the connection is cut right after it.
  std::optional<http::request_parser<http::string_body>> judged;
  if (read_whole && !parser.is_done()) {
    // Beast compares a Content-Length with the body limit only while it parses the head, and
    // the head was parsed with no limit (a stream body may be large): a declared length is
    // checked here, before a byte of it is read; a chunked body meets the limit as it comes.
    if (const auto declared = parser.content_length(); declared && *declared > judged_body_limit) {
      const policy::Decision refusal = policy::Decision::deny(
          413,
          "berth: request body too large (" + std::to_string(*declared) + " bytes; at most " +
              std::to_string(judged_body_limit) + " for " + ex.endpoint + ")",
          "body.too_large");
      co_return co_await refuse(refusal, false, ex);
    }
    if (!co_await continue_if_expected(parser)) {
      co_return false;
    }
    judged.emplace(std::move(parser));
    judged->body_limit(judged_body_limit);
    arm(request_read_timeout, Phase::body);
    error_code ec;
    co_await http::async_read(client_, buffer_, *judged, with_ec(ec));
    disarm();
    if (ec) {
      const bool too_big = ec == http::error::body_limit;
      const policy::Decision refusal =
          policy::Decision::deny(too_big ? 413 : 400,
                                 too_big ? "berth: request body too large"
                                         : "berth: request body could not be read: " + ec.message(),
                                 too_big ? "body.too_large" : "body.unreadable");
      co_return co_await refuse(refusal, false, ex);
    }
  }
  const std::string_view body = judged ? std::string_view(judged->get().body())
                                       : std::string_view();
  const auto facts = index.facts();
  const policy::Tenant* rules = rt->policy->find_tenant(who->tenant);
  if (rules == nullptr) {
    const policy::Decision refusal = policy::Decision::deny(
        403, "berth: tenant " + who->tenant + " is not in the policy", "identity.unknown");
    co_return co_await refuse(refusal, false, ex);
  }
  // A network create's subnets are reserved under the index's write lock, so two creates at
  // once never take the same range; when another took one meanwhile, the request is judged
  // again (a few times) against the index that has it.
  struct SubnetGuard {
    SharedIndex& index;
    std::uint64_t& reservation;
    ~SubnetGuard() {
      if (reservation != 0) {
        index.write([this](policy::OwnershipIndex& idx) { idx.release_subnets(reservation); });
        reservation = 0;
      }
    }
  } subnet_guard{index, ex.subnet_reservation};
  policy::Rewritten rw;
  for (int attempt = 0;; ++attempt) {
    rw = index.read([&](const policy::OwnershipIndex& idx) {
      return policy::rewrite_for_tenant(*who, *resolved, body, idx, *facts, *rules);
    });
    if (!rw.decision.allowed() || rw.claimed_subnets.empty()) {
      break;
    }
    ex.subnet_reservation = index.write([&](policy::OwnershipIndex& idx) {
      return idx.reserve_subnets(rw.claimed_subnets);
    });
    if (ex.subnet_reservation != 0) {
      ex.created_subnets = rw.claimed_subnets;
      break;
    }
    if (attempt == 2) {
      rw.decision = policy::Decision::deny(
          409, "berth: other networks took the address ranges meanwhile; retry", "network.busy");
      break;
    }
  }
  if (!rw.decision.allowed()) {
    co_return co_await refuse(rw.decision, judged ? req_keep_alive(*judged) : keep_alive, ex);
  }
  // Quotas: judged and reserved in one step under the index's write lock, so concurrent
  // creates of one tenant count each other; the reservation becomes the container's holding
  // when dockerd answers (transform_body), and is dropped on any other way out.
  struct ReservationGuard {
    SharedIndex& index;
    std::uint64_t& reservation;
    ~ReservationGuard() {
      if (reservation != 0) {
        index.write([this](policy::OwnershipIndex& idx) { idx.release(reservation); });
        reservation = 0;
      }
    }
  } reservation_guard{index, ex.reservation};
  if (rw.claim) {
    auto reserved = index.write(
        [&](policy::OwnershipIndex& idx) -> std::expected<std::uint64_t, policy::Decision> {
          const policy::Usage in_use = idx.usage_of(who->tenant, rw.claim_container);
          if (auto over = policy::judge_quota(*rules, in_use, *rw.claim,
                                              rw.claim_container.empty())) {
            return std::unexpected(*over);
          }
          return idx.reserve(who->tenant, *rw.claim, rw.claim_container);
        });
    if (!reserved) {
      co_return co_await refuse(reserved.error(),
                                judged ? req_keep_alive(*judged) : keep_alive, ex);
    }
    ex.reservation = *reserved;
  }
  if (rw.local_reply) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "berth");
    res.body() = *rw.local_reply;
    res.keep_alive(keep_alive && !worker_.draining());
    res.prepare_payload();
    ex.allowed = true;
    ex.status = 200;
    const bool written = co_await write_response(res);
    co_return written && res.keep_alive();
  }
  if (!co_await ensure_objects(rt, *who, rw, ex)) {
    co_await drop_ensured_volumes(rt, ex);
    const policy::Decision refusal = policy::Decision::deny(
        500, "berth: could not prepare the tenant's network or volumes", "ensure.failed");
    co_return co_await refuse(refusal, false, ex);
  }
  if (rw.generate_name) {
    // Pick a free "adjective_surname" in the tenant's namespace, as dockerd would have.
    std::string stored;
    for (int attempt = 0; attempt < 16; ++attempt) {
      std::string candidate =
          policy::names::stored(who->tenant, policy::names::generated_name(name_random()()));
      if (attempt >= 8) {
        candidate += std::to_string(name_random()() % 10000);
      }
      const bool taken = index.read([&](const policy::OwnershipIndex& idx) {
        return idx.find_container("", candidate).result == policy::Lookup::found;
      });
      if (!taken) {
        stored = std::move(candidate);
        break;
      }
    }
    rw.created_name = stored;
    rw.target += (rw.target.find('?') == std::string::npos ? "?" : "&");
    rw.target += "name=" + policy::query_escape(stored);
  }
  ex.created_name = rw.created_name;
  if (ex.reservation != 0 && !rw.created_name.empty()) {
    index.write([&](policy::OwnershipIndex& idx) {
      idx.name_reservation(ex.reservation, rw.created_name);
    });
  }
  std::optional<std::string> replacement = rw.body;
  if (!replacement && judged) {
    replacement = judged->get().body();
  }
  ex.allowed = true;
  bool keep = false;
  std::optional<policy::BuildContextFilter> tar;
  if (rw.filter_build_context) {
    tar.emplace(*rules, rw.dockerfile);
  }
  if (judged) {
    keep = co_await forward(rt, *who, *resolved, judged->get(), nullptr, std::move(replacement),
                            rw.target, rw.view, ex);
  } else {
    if (!co_await continue_if_expected(parser)) {
      co_return false;
    }
    keep = co_await forward(rt, *who, *resolved, req, &parser, std::move(replacement), rw.target,
                            rw.view, ex, tar ? &*tar : nullptr);
  }
  // A refused create leaves nothing behind (dockerd makes a container's volumes only once the
  // create succeeds).
  if (ex.status >= 400 || ex.status == 0) {
    co_await drop_ensured_volumes(rt, ex);
  }
  co_return keep;
}

net::awaitable<bool> Session::continue_if_expected(RequestParser& parser) {
  // A client that asked to wait (Expect: 100-continue) sends its body once berth has judged
  // the head and is about to read it; one that did not ask, or whose body is already here,
  // gets nothing.
  if (parser.is_done() || parser.get()[http::field::expect].empty()) {
    co_return true;
  }
  static constexpr std::string_view continue_head = "HTTP/1.1 100 Continue\r\n\r\n";
  arm(client_write_timeout, Phase::write);
  error_code ec;
  co_await net::async_write(client_, net::buffer(continue_head), with_ec(ec));
  disarm();
  co_return !ec;
}

net::awaitable<void> Session::drop_ensured_volumes(std::shared_ptr<const Runtime> rt,
                                                  Exchange& ex) {
  std::vector<std::string> made = std::move(ex.ensured_volumes);
  ex.ensured_volumes.clear();
  for (const auto& volume : made) {
    auto removed = co_await docker_request(worker_.pool(), rt, http::verb::delete_,
                                           "/volumes/" + policy::escape_path(volume));
    if (removed && removed->status == 204) {
      worker_.index().write([&](policy::OwnershipIndex& idx) { idx.erase_volume(volume); });
    }
  }
}

bool Session::req_keep_alive(const http::request_parser<http::string_body>& p) {
  return p.get().keep_alive();
}

net::awaitable<bool> Session::ensure_objects(std::shared_ptr<const Runtime> rt,
                                             const policy::Principal& who,
                                             const policy::Rewritten& rw, Exchange& ex) {
  SharedIndex& index = worker_.index();
  const std::string label = nlohmann::json(std::string(vocabulary::tenant_label)).dump();
  if (rw.ensure_default_network) {
    const std::string name = policy::names::default_network(who.tenant);
    const bool known = index.read([&](const policy::OwnershipIndex& idx) {
      return idx.find_network(who.tenant, policy::names::default_network_view).result ==
             policy::Lookup::found;
    });
    const policy::Tenant* rules = rt->policy->find_tenant(who.tenant);
    if (!known && rules != nullptr) {
      // Its subnet comes from the tenant's pools, like any network it creates.
      const auto facts = index.facts();
      std::uint64_t reserved = 0;
      std::string create;
      for (int attempt = 0; attempt < 3 && create.empty(); ++attempt) {
        auto planned = index.read([&](const policy::OwnershipIndex& idx) {
          return policy::default_network_create(*rules, idx, *facts);
        });
        if (!planned) {
          log_error("cannot create default network " + name + ": " +
                    planned.error().tenant_message);
          co_return false;
        }
        reserved = planned->second.empty()
                       ? 0
                       : index.write([&](policy::OwnershipIndex& idx) {
                           return idx.reserve_subnets(planned->second);
                         });
        if (planned->second.empty() || reserved != 0) {
          create = planned->first.dump();
        }
      }
      if (create.empty()) {
        co_return false;
      }
      auto reply = co_await docker_request(worker_.pool(), rt, http::verb::post,
                                           "/networks/create", create);
      if (reply && reply->status == 201) {
        co_await refresh_reference(index, worker_.pool(), rt, policy::RefKind::network, "",
                                   name);
      }
      if (reserved != 0) {
        index.write([&](policy::OwnershipIndex& idx) { idx.release_subnets(reserved); });
      }
      if (!reply || (reply->status != 201 && reply->status != 409)) {
        log_error("cannot create default network " + name + ": " +
                  (reply ? reply->body : reply.error().message()));
        co_return false;
      }
      if (reply->status == 409) {
        co_await refresh_reference(index, worker_.pool(), rt, policy::RefKind::network, "",
                                   name);
      }
    }
  }
  for (const auto& volume : rw.ensure_volumes) {
    const bool known = index.read([&](const policy::OwnershipIndex& idx) {
      return idx.volume(volume).has_value();
    });
    if (known) {
      continue;
    }
    nlohmann::json create = {{"Name", volume},
                             {"Labels", {{std::string(vocabulary::tenant_label), who.tenant}}}};
    auto reply = co_await docker_request(worker_.pool(), rt, http::verb::post, "/volumes/create",
                                         create.dump());
    if (!reply || reply->status != 201) {
      co_return false;
    }
    index_volume(index, reply->body);
    ex.ensured_volumes.push_back(volume);
  }
  co_return true;
}

void Session::upstream_header(http::request_header<>& header, const std::string& target,
                              bool upgrade, const policy::Route* tenant_route, bool body) {
  // The upstream request is the client's header with the judged target, no hop-by-hop
  // fields, keep-alive toward dockerd unless the client asked for an upgrade. A tenant's
  // fields are allowed by list, and its body's Content-Type is the one dockerd expects there
  // (a form-encoded one would have Go read the body as query parameters).
  header.target(target);
  header.version(11);
  for (auto it = header.begin(); it != header.end();) {
    const auto field = it->name();
    const bool framing = field == http::field::content_length ||
                         field == http::field::transfer_encoding ||
                         field == http::field::upgrade || field == http::field::connection;
    if (is_hop_by_hop(it->name_string()) ||
        (tenant_route != nullptr && !framing &&
         !policy::tenant_field_forwarded(it->name_string()))) {
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

std::size_t Session::pack_whole_response(ResponseParser& rp, UpstreamBuffer& upstream_buffer,
                                         bool keep_alive, char* out, std::size_t cap) {
  auto& res = rp.get();
  std::uint64_t body = 0;  // bytes of upstream_buffer that are the body, as dockerd coded it
  if (!rp.is_done()) {
    if (res.chunked()) {
      const ChunkedBody chunked = scan_chunked(buffer_view(upstream_buffer));
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
  if (body > upstream_buffer.size() || body >= cap) {
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
  net::buffer_copy(net::buffer(out + n, body), upstream_buffer.data());
  upstream_buffer.consume(body);
  return n + body;
}

namespace {

// How many bytes after `head` in `upstream_buffer` are its whole coded body: Content-Length
// bytes, or a chunked body through its last chunk (waited for only if `wait_for_chunked`),
// reading the rest (dockerd writes an answer in pieces of 4 KiB) while the body holds fewer
// than `limit` bytes. nullopt: no such body (none declared, chunk extensions or trailers),
// not within `limit`, or the read failed; the caller then leaves the answer to Beast.
net::awaitable<std::optional<std::size_t>> read_coded_body(TlsStream& upstream,
                                                            UpstreamBuffer& upstream_buffer,
                                                            const ResponseHead& head,
                                                            std::size_t limit,
                                                            bool wait_for_chunked) {
  for (;;) {
    const std::string_view after = buffer_view(upstream_buffer).substr(head.size);
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
    const std::size_t room = std::min(
        std::max<std::size_t>(upstream_buffer.capacity() - upstream_buffer.size(), 16 * 1024),
        upstream_buffer.max_size() - upstream_buffer.size());
    if (room == 0) {
      co_return std::nullopt;
    }
    error_code ec;
    const std::size_t got =
        co_await upstream.async_read_some(upstream_buffer.prepare(room), with_ec(ec));
    if (ec) {
      co_return std::nullopt;  // Beast's read reports it, as it would have
    }
    upstream_buffer.commit(got);
  }
}

}  // namespace

net::awaitable<std::optional<bool>> Session::pass_raw(std::shared_ptr<TlsStream>& upstream,
                                                      UpstreamBuffer& upstream_buffer,
                                                      const ResponseHead& head, bool is_head,
                                                      bool client_keep_alive, Exchange& ex,
                                                      const Runtime& rt) {
  // The body as dockerd coded it: nothing after a HEAD, a 204 or a 304; else up to 32 KiB of
  // Content-Length bytes or of a chunked body. Only routes that are not streams get here.
  std::uint64_t body = 0;
  if (!is_head && head.status != 204 && head.status != 304) {
    // Only a JSON document (an inspect) is waited for when chunked: another chunked answer
    // may be written slowly, and is relayed as it comes.
    const auto coded = co_await read_coded_body(*upstream, upstream_buffer, head,
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
  const char* const from = buffer_view(upstream_buffer).data();
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
  upstream_buffer.consume(head.size + static_cast<std::size_t>(body));
  ex.bytes_out += body;
  arm(client_write_timeout, Phase::write);
  error_code wec;
  co_await net::async_write(client_, net::buffer(out.get(), n), with_ec(wec));
  disarm();
  if (upstream_buffer.size() == 0) {
    release_upstream(std::move(upstream), rt);
  }
  co_return !wec && keep_alive;
}

net::awaitable<std::optional<bool>> Session::respond_raw(
    std::shared_ptr<TlsStream>& upstream, UpstreamBuffer& upstream_buffer,
    const ResponseHead& head, bool client_keep_alive, Exchange& ex, const Runtime& rt,
    const policy::Principal& who, const policy::Classified& request, policy::ResponseView view) {
  // The whole coded body, as far as the buffer goes (Beast reads a larger one).
  const auto read = co_await read_coded_body(*upstream, upstream_buffer, head,
                                             upstream_buffer.max_size() - head.size, true);
  if (!read) {
    co_return std::nullopt;
  }
  const std::size_t coded = *read;
  const std::string_view bytes = buffer_view(upstream_buffer);
  const std::string_view coded_body = bytes.substr(head.size, coded);
  std::string out = head_without_framing(bytes, head);
  const std::optional<std::string> body =
      transform_body(who, request, view, head.status,
                     head.chunked ? dechunk(coded_body) : std::string(coded_body), ex);
  upstream_buffer.consume(head.size + coded);
  if (upstream_buffer.size() == 0) {
    release_upstream(std::move(upstream), rt);
  }
  if (!body) {
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon sent an unexpected answer", "upstream.unexpected");
    co_return co_await refuse(refusal, client_keep_alive, ex);
  }
  // dockerd's fields but its framing, the body's new length, and Connection: close when this
  // connection ends here: what respond_whole writes through Beast.
  const bool keep_alive = client_keep_alive && !worker_.draining();
  out += "Content-Length: ";
  out += std::to_string(body->size());
  out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  ex.bytes_out += body->size();
  arm(client_write_timeout, Phase::write);
  error_code wec;
  const std::array<net::const_buffer, 2> answer{net::buffer(out), net::buffer(*body)};
  co_await net::async_write(client_, answer, with_ec(wec));
  disarm();
  co_return !wec && keep_alive;
}

net::awaitable<bool> Session::send_request(TlsStream& upstream, http::request_header<>& header,
                                           RequestParser* stream_body,
                                           std::optional<std::string> replacement,
                                           const std::string& target, bool upgrade, bool tenant,
                                           Exchange& ex, policy::BuildContextFilter* tar) {
  if (!replacement && stream_body) {
    // The header is already dockerd's (forward called upstream_header).
    co_return co_await relay_request_body(upstream, *stream_body, ex, tar);
  }
  // A judged body: the re-serialized document dockerd will decode, never the client's bytes.
  http::request<http::string_body> out{header.method(), target, 11};
  for (const auto& field : header) {
    const auto name = field.name();
    if (is_hop_by_hop(field.name_string()) || name == http::field::content_length ||
        name == http::field::transfer_encoding || name == http::field::connection ||
        name == http::field::upgrade || name == http::field::content_type ||
        (tenant && !policy::tenant_field_forwarded(field.name_string()))) {
      continue;
    }
    out.insert(field.name_string(), field.value());
  }
  if (upgrade) {
    out.set(http::field::connection, "Upgrade");
    out.set(http::field::upgrade, header[http::field::upgrade]);
  }
  out.body() = replacement.value_or("");
  if (!out.body().empty()) {
    out.set(http::field::content_type, "application/json");
  }
  out.prepare_payload();
  ex.bytes_in += out.body().size();
  error_code ec;
  co_await http::async_write(upstream, out, with_ec(ec));
  co_return !ec;
}

net::awaitable<bool> Session::forward(std::shared_ptr<const Runtime> rt,
                                      const policy::Principal& who,
                                      const policy::Classified& request,
                                      http::request_header<>& header,
                                      RequestParser* stream_body,
                                      std::optional<std::string> replacement,
                                      std::string target, policy::ResponseView view,
                                      Exchange& ex, policy::BuildContextFilter* tar) {
  const bool client_keep_alive = header_keep_alive(header);
  const bool body_pending = stream_body && !stream_body->is_done();
  const bool hijackable = request.route->body == policy::BodyMode::hijack;
  const bool upgrade =
      hijackable && header_has_token(header[http::field::connection], "upgrade");
  const bool endless = request.route->timeout == policy::TimeoutClass::endless;
  const bool is_head = header.method() == http::verb::head;

  // A connection from the pool may have been closed by dockerd since (a restart) without
  // berth having looked (see UpstreamPool). A bodyless request on one then goes once more on a
  // new connection, when that is safe: its head could not be written (so dockerd saw none of
  // it), or, for a GET or HEAD, dockerd ended the connection before answering anything.
  const bool bodyless = !replacement && stream_body && stream_body->is_done() && !tar;
  const bool replayable = bodyless && (header.method() == http::verb::get || is_head);
  const auto unreachable = [&](const error_code& why) {
    ex.allowed = false;
    log_error("cannot reach dockerd at " + rt->upstream.text + ": " + why.message());
    return policy::Decision::deny(502, "berth: cannot reach the Docker daemon", "upstream.down");
  };
  // Creates, updates and container removals are read whole: the index learns from them.
  const std::string_view endpoint = request.route->endpoint;
  const bool created = endpoint == "container.create" || endpoint == "exec.create" ||
                       endpoint == "network.create" || endpoint == "volume.create" ||
                       endpoint == "container.update" || endpoint == "container.delete";
  // An answer that is not a stream: its head is read and scanned without Beast first, and
  // parsed only if it is neither passed on as dockerd wrote it (pass_raw) nor read whole and
  // answered anew (respond_raw).
  const bool raw_first = !hijackable && !endless && view != policy::ResponseView::events &&
                         view != policy::ResponseView::build_stream;
  ResponseHead head;
  std::shared_ptr<TlsStream> upstream = worker_.pool().take_idle(*rt);
  bool reused = upstream != nullptr;
  // close() cancels what this request waits for on dockerd (see upstream_in_use_).
  struct InUse {
    TlsStream*& slot;
    ~InUse() { slot = nullptr; }
  } in_use{upstream_in_use_};
  upstream_in_use_ = upstream.get();
  const auto drop_dead = [&](const error_code& why) {
    log_info("a pooled connection to dockerd was closed (" + why.message() + "); sending " +
             ex.method + " " + ex.target + " again on a new one");
    worker_.pool().found_dead(*upstream);
    upstream_in_use_ = nullptr;
    upstream.reset();
    reused = false;
  };
  if (!replacement && stream_body) {
    upstream_header(header, target, upgrade, who.is_operator() ? nullptr : request.route,
                    body_pending);
  }
  UpstreamBuffer upstream_buffer(header_limit * 2);
  ResponseParser rp;
  rp.header_limit(header_limit);
  rp.body_limit(unlimited_body);
  if (is_head) {
    rp.skip(true);
  }
  error_code ec;
  for (;;) {
    if (!upstream) {
      auto acquired = co_await worker_.pool().acquire(rt);
      if (!acquired) {
        co_return co_await refuse(unreachable(acquired.error()),
                                  client_keep_alive && !body_pending, ex);
      }
      upstream = std::move(*acquired);
      upstream_in_use_ = upstream.get();
    }
    bool sent = false;
    if (bodyless) {
      // No body (a GET, a bodiless POST): the header alone, in one write, from here rather
      // than through two more coroutines.
      Window out;
      const std::size_t n = put_head(out.get(), relay_window, header.method_string(),
                                     header.target(), "HTTP/1.1", header);
      if (n != 0) {
        error_code wec;
        co_await net::async_write(*upstream, net::buffer(out.get(), n), with_ec(wec));
        if (wec) {
          if (reused && !closed_) {
            drop_dead(wec);
            continue;
          }
          upstream->close();
          co_return false;
        }
        sent = true;
      }
    }
    if (!sent && !co_await send_request(*upstream, header, stream_body,
                                        std::exchange(replacement, std::nullopt), target,
                                        upgrade, !who.is_operator(), ex, tar)) {
      upstream->close();
      if (ex.build_refusal) {
        const policy::Decision refusal = *ex.build_refusal;
        ex.build_refusal.reset();
        co_return co_await refuse(refusal, false, ex);
      }
      co_return false;
    }

    // Beast reads max(512, free capacity) bytes at a time: without room, a 4 KiB body would
    // arrive, and be relayed, as eight 512-byte chunks.
    upstream_buffer.reserve(16 * 1024);
    ec = {};
    // dockerd's answer head, read and scanned here for every route. Interim answers (1xx
    // other than a 101) are dropped on the way: the answer is the final one, and a connection
    // goes back to the pool only once that has been read to its framed end (berth removed the
    // client's Expect, so dockerd has no reason to send one; this is the rule that makes it so
    // whatever dockerd sends).
    for (;;) {
      const std::string_view seen = buffer_view(upstream_buffer);
      bool partial_interim = false;
      if (const std::size_t interim = interim_head_size(seen, partial_interim)) {
        upstream_buffer.consume(interim);
        continue;
      }
      head = scan_response_head(seen);
      if ((head.state != HeadScan::incomplete && !partial_interim) ||
          upstream_buffer.size() >= header_limit) {
        break;
      }
      const std::size_t room =
          std::max<std::size_t>(upstream_buffer.capacity() - upstream_buffer.size(), 512);
      const std::size_t got =
          co_await upstream->async_read_some(upstream_buffer.prepare(room), with_ec(ec));
      if (ec) {
        // What Beast's read would have said.
        if (upstream_buffer.size() != 0) {
          ec = http::error::partial_message;
        } else if (ec == net::error::eof) {
          ec = http::error::end_of_stream;
        }
        break;
      }
      upstream_buffer.commit(got);
    }
    if (!raw_first) {
      head.state = HeadScan::unsupported;  // streams and hijacks are parsed by Beast
    }
    if (!ec && head.state != HeadScan::complete) {
      co_await http::async_read_header(*upstream, upstream_buffer, rp, with_ec(ec));
    }
    if (ec && reused && replayable && !closed_ && !rp.got_some() &&
        upstream_buffer.size() == 0 && closed_before_answer(ec)) {
      drop_dead(ec);
      continue;
    }
    break;
  }
  if (!ec && head.state == HeadScan::complete) {
    ex.status = head.status;
    const bool pass_through =
        who.is_operator() || is_head ||
        (view == policy::ResponseView::pass && head.status < 400 && !created);
    const bool whole = head.status >= 400 || created ||
                       (head.status == 200 && view != policy::ResponseView::pass);
    if (pass_through) {
      if (const auto kept = co_await pass_raw(upstream, upstream_buffer, head, is_head,
                                              client_keep_alive, ex, *rt)) {
        co_return *kept;
      }
    } else if (whole) {
      if (const auto kept = co_await respond_raw(upstream, upstream_buffer, head,
                                                 client_keep_alive, ex, *rt, who, request, view)) {
        co_return *kept;
      }
    }
    // Not passed on as it is: Beast parses the head already read, with no I/O.
    co_await http::async_read_header(*upstream, upstream_buffer, rp, with_ec(ec));
  }
  if (ec) {
    log_error("dockerd closed or garbled the response to " + ex.method + " " + ex.target + ": " +
              ec.message());
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon did not answer", "upstream.no_response");
    co_return co_await refuse(refusal, client_keep_alive, ex);
  }
  auto& res = rp.get();
  ex.status = res.result_int();
  // Only a 101 to an upgrade berth asked for may precede what is not the final answer; any
  // other interim or switching answer here is a framing doubt: the connection is not reused.
  if (res.result_int() < 200 &&
      !(res.result() == http::status::switching_protocols && upgrade)) {
    upstream->close();
    log_error("dockerd sent " + std::to_string(res.result_int()) + " to " + ex.method + " " +
              ex.target + "; closing that connection");
    const policy::Decision refusal = policy::Decision::deny(502,
                                                            "berth: the Docker daemon sent an "
                                                            "unexpected answer",
                                                            "upstream.unexpected");
    co_return co_await refuse(refusal, false, ex);
  }

  // dockerd hijacks attach and exec start: 101 UPGRADED when the client asked for an upgrade,
  // 200 with a raw-stream content type and no framing for the older hijack.
  const bool hijacked =
      hijackable &&
      (res.result() == http::status::switching_protocols ||
       (res.result() == http::status::ok && is_raw_stream(res[http::field::content_type]) &&
        !res.has_content_length() && !res.chunked()));
  if (hijacked) {
    ex.hijacked = true;
    ex.stream = true;
    const GaugeHold stream(worker_.metrics(), true);
    co_await splice(std::move(upstream), upstream_buffer, rp, ex);
    co_return false;
  }
  std::optional<GaugeHold> stream;
  if (endless) {
    ex.stream = true;
    stream.emplace(worker_.metrics(), true);
  }
  const bool pass_through =
      who.is_operator() || is_head ||
      (view == policy::ResponseView::pass && res.result_int() < 400 && !created);
  if (pass_through && !endless) {
    // A small answer (no body, a Content-Length body, or a chunked JSON document such as an
    // inspect; up to 32 KiB) is read whole, then header and body leave in one write, from one
    // buffer. dockerd writes such an answer in pieces of 4 KiB: the rest is read here first.
    // Only routes that are not streams get here (not `endless`): their answers are written
    // at once, so waiting for the whole one delays nothing.
    error_code rec;
    const bool json = res[http::field::content_type].starts_with("application/json");
    for (;;) {
      std::size_t want = 0;
      if (rp.is_done()) {
        want = 0;
      } else if (res.chunked()) {
        if (json && scan_chunked(buffer_view(upstream_buffer)).state == ChunkedScan::incomplete &&
            upstream_buffer.size() < small_answer) {
          want = static_cast<std::size_t>(small_answer) - upstream_buffer.size();
        }
      } else if (const auto body = rp.content_length_remaining();
                 body && *body < small_answer && upstream_buffer.size() < *body) {
        want = static_cast<std::size_t>(*body) - upstream_buffer.size();
      }
      if (want == 0) {
        break;
      }
      const std::size_t got =
          co_await upstream->async_read_some(upstream_buffer.prepare(want), with_ec(rec));
      if (rec) {
        break;  // relay_response reports it, as it would have
      }
      upstream_buffer.commit(got);
    }
    Window out;
    const bool keep_alive = client_keep_alive && !worker_.draining();
    const bool reusable = res.keep_alive();
    const std::size_t before = upstream_buffer.size();
    if (const std::size_t n =
            pack_whole_response(rp, upstream_buffer, keep_alive, out.get(), relay_window)) {
      ex.bytes_out += before - upstream_buffer.size();
      arm(client_write_timeout, Phase::write);
      error_code wec;
      co_await net::async_write(client_, net::buffer(out.get(), n), with_ec(wec));
      disarm();
      if (reusable && upstream_buffer.size() == 0) {
        release_upstream(std::move(upstream), *rt);
      }
      co_return !wec && keep_alive;
    }
  }
  if (who.is_operator() || is_head) {
    co_return co_await relay_response(std::move(upstream), upstream_buffer, rp,
                                      client_keep_alive, endless, LineMode::none, ex, rt);
  }
  // 6. filter: what the tenant may see of the answer.
  const bool whole = res.result_int() >= 400 || created ||
                     (res.result() == http::status::ok && view != policy::ResponseView::pass &&
                      view != policy::ResponseView::events &&
                      view != policy::ResponseView::build_stream &&
                      view != policy::ResponseView::stats_stream);
  if (whole) {
    co_return co_await respond_whole(std::move(upstream), upstream_buffer, rp, client_keep_alive,
                                     ex, rt, who, request, view);
  }
  const LineMode lines = view == policy::ResponseView::events         ? LineMode::events
                         : view == policy::ResponseView::build_stream ? LineMode::build
                         : view == policy::ResponseView::stats_stream ? LineMode::stats
                                                                      : LineMode::none;
  ex.principal = &who;
  co_return co_await relay_response(std::move(upstream), upstream_buffer, rp, client_keep_alive,
                                    endless, lines, ex, rt);
}

net::awaitable<bool> Session::relay_request_body(TlsStream& upstream, RequestParser& parser,
                                                 Exchange& ex, policy::BuildContextFilter* tar) {
  auto& req = parser.get();
  if (tar && !parser.is_done()) {
    // The judged context may change length: frame it in chunks toward dockerd.
    req.erase(http::field::content_length);
    req.chunked(true);
  }
  http::request_serializer<http::buffer_body> sr{req};
  error_code ec;
  if (parser.is_done()) {
    req.body().data = nullptr;
    req.body().size = 0;
    req.body().more = false;
    co_await http::async_write(upstream, sr, with_ec(ec));
    co_return !ec;
  }
  req.body().data = nullptr;
  req.body().more = true;
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
    std::string judged;
    if (tar) {
      auto out = worker_.index().read([&](const policy::OwnershipIndex& idx) {
        return tar->feed(std::string_view(window.get(), n), idx);
      });
      if (out && parser.is_done()) {
        auto tail = tar->finish();
        if (tail) {
          *out += *tail;
        } else {
          out = std::unexpected(tail.error());
        }
      }
      if (!out) {
        // Refused mid-stream: cut dockerd's side before the context is complete, so no build
        // runs, and tell the client why.
        upstream.close();
        log_info("build context refused for " + peer_ + ": " + out.error().tenant_message);
        ex.build_refusal = out.error();
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
    req.body().more = !parser.is_done();
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
  }
  if (!sr.is_done()) {
    req.body().data = nullptr;
    req.body().size = 0;
    req.body().more = false;
    co_await http::async_write(upstream, sr, with_ec(ec));
    if (ec == http::error::need_buffer) {
      ec = {};
    }
  }
  co_return !ec;
}

net::awaitable<bool> Session::relay_response(std::shared_ptr<TlsStream> upstream,
                                             UpstreamBuffer& upstream_buffer,
                                             ResponseParser& rp, bool keep_alive, bool endless,
                                             LineMode lines, Exchange& ex,
                                             std::shared_ptr<const Runtime> rt) {
  auto& res = rp.get();
  const bool upstream_reusable = res.keep_alive();
  const bool until_eof = !rp.is_done() && !res.chunked() && !res.has_content_length();
  keep_alive = keep_alive && !worker_.draining();
  res.keep_alive(keep_alive);
  if (until_eof || (lines != LineMode::none && !rp.is_done())) {
    // Frame a close-delimited body so the client connection survives; filtered line streams
    // change length, so they are always chunked.
    res.erase(http::field::content_length);
    res.chunked(true);
  }
  http::response_serializer<http::buffer_body> sr{res};
  error_code ec;
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = !rp.is_done();
  // A body that came with the header (the start of an answer too large for forward's one
  // write) leaves with it in the first write below: one TLS record and one write(2) instead of
  // two. A stream's header leaves now.
  const bool header_with_body =
      !rp.is_done() && !endless && lines == LineMode::none && upstream_buffer.size() != 0;
  if (!header_with_body) {
    arm(client_write_timeout, Phase::write);
    co_await http::async_write_header(client_, sr, with_ec(ec));
    disarm();
  }
  if (ec) {
    upstream->close();
    co_return false;
  }
  if (rp.is_done()) {
    if (upstream_reusable && upstream_buffer.size() == 0) {
      release_upstream(std::move(upstream), *rt);
    }
    co_return keep_alive;
  }

  // A long-lived stream (logs -f, events, stats) ends when dockerd ends it or when the client
  // goes away; the watcher notices the latter while nothing is being written.
  bool watching = false;
  bool watch_done = true;
  if (endless) {
    watching = true;
    watch_done = false;
    net::co_spawn(client_.get_executor(), watch_client(shared_from_this(), upstream),
                  [self = shared_from_this(), &watch_done](std::exception_ptr) {
                    watch_done = true;
                    self->signal_join();
                  });
  }

  Window window;
  std::string pending_lines;
  bool ok = true;
  while (!rp.is_done()) {
    res.body().data = window.get();
    res.body().size = relay_window;
    co_await http::async_read_some(*upstream, upstream_buffer, rp, with_ec(ec));
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec == http::error::end_of_stream && until_eof) {
      ec = {};
    }
    if (ec) {
      ok = false;
      break;
    }
    std::size_t n = relay_window - res.body().size;
    std::string filtered;
    if (lines != LineMode::none) {
      // Only whole lines (one JSON event or build message each) are judged and passed on.
      pending_lines.append(window.get(), n);
      const auto last_nl = pending_lines.rfind('\n');
      if (rp.is_done()) {
        filtered = transform_lines(lines, pending_lines, *ex.principal);
        pending_lines.clear();
      } else if (last_nl != std::string::npos) {
        filtered = transform_lines(lines, std::string_view(pending_lines).substr(0, last_nl + 1),
                                   *ex.principal);
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
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      ok = false;
      break;
    }
  }
  if (ok && !sr.is_done()) {
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    arm(client_write_timeout, Phase::write);
    co_await http::async_write(client_, sr, with_ec(ec));
    disarm();
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    ok = !ec;
  }
  if (watching) {
    if (!watch_done) {
      error_code ignored;
      client_.socket().cancel(ignored);
    }
    co_await join(watch_done);
  }
  if (!ok || closed_) {
    upstream->close();
    co_return false;
  }
  if (upstream_reusable && !until_eof && upstream_buffer.size() == 0 && upstream->socket().is_open()) {
    release_upstream(std::move(upstream), *rt);
  }
  co_return keep_alive;
}

net::awaitable<void> Session::watch_client(std::shared_ptr<Session> self,
                                           std::shared_ptr<TlsStream> upstream) {
  error_code ec;
  const std::size_t n = co_await self->client_.async_read_some(
      self->buffer_.prepare(4096), with_ec(ec));
  if (!ec) {
    self->buffer_.commit(n);  // a pipelined request: kept for the next read
    co_return;
  }
  if (ec != net::error::operation_aborted) {
    // The client hung up on a stream: stop dockerd's side too.
    upstream->close();
  }
}

net::awaitable<bool> Session::respond_whole(std::shared_ptr<TlsStream> upstream,
                                            UpstreamBuffer& upstream_buffer,
                                            ResponseParser& rp, bool keep_alive, Exchange& ex,
                                            std::shared_ptr<const Runtime> rt,
                                            const policy::Principal& who,
                                            const policy::Classified& request,
                                            policy::ResponseView view) {
  http::response_parser<http::string_body> full{std::move(rp)};
  full.body_limit(whole_body_limit);
  error_code ec;
  co_await http::async_read(*upstream, upstream_buffer, full, with_ec(ec));
  if (ec) {
    upstream->close();
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon did not answer", "upstream.no_response");
    co_return co_await refuse(refusal, keep_alive, ex);
  }
  auto upstream_res = full.release();
  if (upstream_res.keep_alive() && upstream_buffer.size() == 0) {
    release_upstream(std::move(upstream), *rt);
  }
  const std::optional<std::string> body =
      transform_body(who, request, view, upstream_res.result_int(), upstream_res.body(), ex);
  if (!body) {
    const policy::Decision refusal = policy::Decision::deny(
        502, "berth: the Docker daemon sent an unexpected answer", "upstream.unexpected");
    co_return co_await refuse(refusal, keep_alive, ex);
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
  res.keep_alive(keep_alive && !worker_.draining());
  res.prepare_payload();
  ex.bytes_out += res.body().size();
  co_return co_await write_response(res) && res.keep_alive();
}

std::optional<std::string> Session::transform_body(const policy::Principal& who,
                                                   const policy::Classified& request,
                                                   policy::ResponseView view, unsigned status,
                                                   const std::string& body, Exchange& ex) {
  if (status >= 400) {
    // dockerd's errors name stored objects; the tenant reads its own names.
    auto doc = nlohmann::json::parse(body, nullptr, false);
    return worker_.index().read([&](const policy::OwnershipIndex& idx) {
      if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
        return policy::docker_error_body(
            policy::tenant_error_message(who, doc["message"].get<std::string>(), &idx));
      }
      return policy::tenant_error_message(who, body, &idx);
    });
  }
  SharedIndex& index = worker_.index();
  const std::string_view endpoint = request.route->endpoint;
  if (endpoint == "container.create" || endpoint == "exec.create" ||
      endpoint == "network.create") {
    // Record what was just created, so the next request resolves it without waiting for
    // dockerd's event.
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    if (!doc.is_object() || !doc.contains("Id") || !doc["Id"].is_string()) {
      return body;
    }
    const std::string id = doc["Id"].get<std::string>();
    index.write([&](policy::OwnershipIndex& idx) {
      if (endpoint == "container.create") {
        idx.put_container({id, who.tenant, ex.created_name, "created"});
        idx.commit(ex.reservation, id);
        ex.reservation = 0;
      } else if (endpoint == "exec.create") {
        idx.put_exec(id, request.params.front());
      } else {
        idx.put_network({id, who.tenant, ex.created_name, ex.created_subnets});
      }
    });
    return body;
  }
  if (endpoint == "container.update") {
    index.write([&](policy::OwnershipIndex& idx) {
      idx.commit(ex.reservation, request.params.front());
      ex.reservation = 0;
    });
    return body;
  }
  if (endpoint == "container.delete") {
    // Removed now, not when dockerd's event arrives: the quota it held is free at once.
    index.write([&](policy::OwnershipIndex& idx) { idx.erase_container(request.params.front()); });
    return body;
  }
  if (endpoint == "volume.create") {
    index_volume(index, body);
    view = policy::ResponseView::volume_inspect;
  }
  return index.read([&](const policy::OwnershipIndex& idx) {
    return policy::filter_response(view, who, body, idx);
  });
}

std::string Session::transform_lines(LineMode mode, std::string_view lines,
                                     const policy::Principal& who) {
  std::string out;
  std::size_t start = 0;
  while (start < lines.size()) {
    auto nl = lines.find('\n', start);
    const bool complete = nl != std::string_view::npos;
    if (!complete) {
      nl = lines.size();
    }
    const std::string_view line = lines.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) {
      continue;
    }
    if (mode == LineMode::stats) {
      out += policy::filter_stats_line(who, line);
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

net::awaitable<void> Session::splice(std::shared_ptr<TlsStream> upstream,
                                     UpstreamBuffer& upstream_buffer, ResponseParser& rp,
                                     Exchange& ex) {
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

void Session::account(const Exchange& ex) const {
  const auto elapsed = Clock::now() - ex.started;
  worker_.metrics().request(ex.operator_ ? std::string_view("(operator)") : ex.tenant,
                            ex.endpoint_class, ex.allowed,
                            std::chrono::duration<double>(elapsed).count(), ex.stream);
  if (ex.allowed && !worker_.audit().enabled()) {
    return;
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // Bodies never appear here: they carry environment values and registry credentials.
  std::string line;
  line.reserve(384 + ex.target.size());
  const auto field = [&line](std::string_view name) {
    line += line.empty() ? "{\"" : ",\"";
    line += name;
    line += "\":";
  };
  const auto text = [&](std::string_view name, std::string_view value) {
    field(name);
    append_json_string(line, value);
  };
  const auto number = [&](std::string_view name, auto value) {
    field(name);
    line += std::to_string(value);
  };
  const auto flag = [&](std::string_view name, bool value) {
    field(name);
    line += value ? "true" : "false";
  };
  number("time_ms", now);
  text("client", peer_);
  text("tenant", ex.tenant);
  flag("operator", ex.operator_);
  text("user", identity_.common_name);
  text("serial", identity_.serial);
  text("method", ex.method);
  text("path", ex.target);
  text("endpoint", ex.endpoint);
  text("class", ex.endpoint_class);
  text("decision", ex.allowed ? "allow" : "deny");
  text("rule", ex.rule);
  number("status", ex.status);
  number("bytes_in", ex.bytes_in);
  number("bytes_out", ex.bytes_out);
  flag("hijacked", ex.hijacked);
  number("duration_us", us);
  line += '}';
  if (!worker_.audit().write(line)) {
    worker_.metrics().audit_dropped();
  }
  if (!ex.allowed) {
    log_info(line);  // refusals are always logged, audit file or not
  }
}

}  // namespace berth::proxy
