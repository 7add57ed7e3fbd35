#pragma once
// One client connection: TLS handshake, then the request pipeline for each request on it
// (identify -> classify -> resolve -> authorize -> forward -> filter -> account), and, when
// dockerd hijacks the connection for attach or exec, a two-way splice with half-close.
//
// Deadlines belong to the client side only (dockerd is trusted): the handshake, an idle
// keep-alive wait, each read of a request header or body, each write to a slow reader.
// Streams and hijacked connections have no deadline and rely on TCP keepalive. A deadline is
// a time, not a timer: the worker's sweep closes connections past theirs once a second.

#include <openssl/x509.h>

#include <chrono>
#include <random>
#include <memory>
#include <optional>
#include <vector>

#include "policy/build_context.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/identity.hpp"
#include "policy/rewrite.hpp"
#include "proxy/client_limits.hpp"
#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net.hpp"
#include "proxy/response_head.hpp"
#include "proxy/tls_stream.hpp"

namespace berth::proxy {

class Worker;

void* recycled_allocate(std::size_t bytes);
void recycled_free(void* p, std::size_t bytes) noexcept;

/// Blocks recycled per thread (sessions never migrate): the 16 KiB buffer each forwarded
/// request reads dockerd's answer into was a large malloc and free every time.
template <typename T>
struct RecyclingAllocator {
  using value_type = T;
  RecyclingAllocator() noexcept = default;
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(std::size_t n) { return static_cast<T*>(recycled_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { recycled_free(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>&) const noexcept {
    return true;
  }
};
using UpstreamBuffer = beast::basic_flat_buffer<RecyclingAllocator<char>>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Clock = std::chrono::steady_clock;

  Session(Worker& worker, TlsStream client, std::string peer,
          ConnectionCounter::Slot address_slot, ConnectionCounter::Slot handshake_slot);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  /// Serves the connection until it closes. Keeps the session alive through `self`.
  static net::awaitable<void> run(std::shared_ptr<Session> self);

  /// Shutdown: closes the connection now if it is between requests.
  void close_if_idle() noexcept;
  /// The worker's sweep: closes the connection if its deadline (handshake, idle wait, a read
  /// of a request, a write to a slow reader, a stream's linger) is past `now`.
  void sweep(Clock::time_point now) noexcept;
  /// Closes the connection whatever it is doing.
  void close() noexcept;
  /// Closes the connection if its client certificate no longer verifies under `rt`.
  void revalidate(const Runtime& rt) noexcept;

  struct Exchange;  // one request's facts, for account()

 private:
  using RequestParser = http::request_parser<http::buffer_body>;
  using ResponseParser = http::response_parser<http::buffer_body>;

  enum class LineMode { none, events, build, stats };

  net::awaitable<bool> handshake();
  // Serves requests while the next one is (partly) there; between requests the session is
  // parked: a readiness wait with a plain handler, so an idle connection holds no coroutine
  // frames. `readable`: woken by that wait, so read at once.
  static net::awaitable<void> serve_requests(std::shared_ptr<Session> self, bool readable);
  static void park(std::shared_ptr<Session> self);
  void finish() noexcept;  // the end of a connection that was not closed by force
  // The end of a connection whose client may still be sending (see session.cpp).
  net::awaitable<void> linger_close(bool tls_up);
  net::awaitable<bool> read_and_serve();
  // One request: the pipeline, then its one account().
  net::awaitable<bool> serve(RequestParser& parser);
  net::awaitable<bool> pipeline(RequestParser& parser, Exchange& ex);
  static bool req_keep_alive(const http::request_parser<http::string_body>& p);
  // Writes "100 Continue" when the client sent Expect: 100-continue and its body is still to
  // come; false when that write failed.
  net::awaitable<bool> continue_if_expected(RequestParser& parser);
  net::awaitable<bool> ensure_objects(std::shared_ptr<const Runtime> rt,
                                      const policy::Principal& who, const policy::Rewritten& rw,
                                      Exchange& ex);
  /// Removes the volumes ensure_objects made for a request dockerd then refused.
  net::awaitable<void> drop_ensured_volumes(std::shared_ptr<const Runtime> rt, Exchange& ex);
  net::awaitable<bool> forward(std::shared_ptr<const Runtime> rt, const policy::Principal& who,
                               const policy::Classified& request, http::request_header<>& header,
                               RequestParser* stream_body, std::optional<std::string> replacement,
                               std::string target, policy::ResponseView view, Exchange& ex,
                               policy::BuildContextFilter* tar = nullptr);
  // The client's header made into dockerd's: the judged target, no hop-by-hop fields.
  // `tenant_route`: the tenant's route, whose fields are allowed by list (null for an
  // operator); `body`: a body follows, whose Content-Type berth writes for a tenant.
  static void upstream_header(http::request_header<>& header, const std::string& target,
                              bool upgrade, const policy::Route* tenant_route, bool body);
  // When dockerd's whole answer is already in `upstream_buffer` (no body, a Content-Length
  // body, or a chunked body through its last chunk): writes header and body, the body coded as
  // dockerd coded it, into `out` and returns their length; 0 when the answer must be relayed.
  static std::size_t pack_whole_response(ResponseParser& rp, UpstreamBuffer& upstream_buffer,
                                         bool keep_alive, char* out, std::size_t cap);
  // Passes on dockerd's answer as it wrote it, head bytes and coded body, in one write, when
  // `head` (scanned, complete) is in `upstream_buffer` and the whole answer is small (reading
  // the rest of its body first). nullopt: not so, the caller parses and relays it as usual
  // (the buffer then holds the head and whatever of the body was read).
  net::awaitable<std::optional<bool>> pass_raw(std::shared_ptr<TlsStream>& upstream,
                                               UpstreamBuffer& upstream_buffer,
                                               const ResponseHead& head, bool is_head,
                                               bool client_keep_alive, Exchange& ex,
                                               const Runtime& rt);
  // For an answer the tenant sees rewritten (respond_whole's): when `head` (scanned,
  // complete) and the whole body fit in `upstream_buffer`, reads the body, has
  // transform_body rewrite it and answers with dockerd's fields and the new length, without
  // Beast. nullopt: not so, the caller goes on with Beast (the buffer then holds the head and
  // whatever of the body was read).
  net::awaitable<std::optional<bool>> respond_raw(
      std::shared_ptr<TlsStream>& upstream, UpstreamBuffer& upstream_buffer,
      const ResponseHead& head, bool client_keep_alive, Exchange& ex, const Runtime& rt,
      const policy::Principal& who, const policy::Classified& request,
      policy::ResponseView view);
  net::awaitable<bool> send_request(TlsStream& upstream, http::request_header<>& header,
                                    RequestParser* stream_body,
                                    std::optional<std::string> replacement,
                                    const std::string& target, bool upgrade, bool tenant,
                                    Exchange& ex, policy::BuildContextFilter* tar);
  net::awaitable<bool> relay_request_body(TlsStream& upstream, RequestParser& parser,
                                          Exchange& ex, policy::BuildContextFilter* tar);
  net::awaitable<bool> relay_response(std::shared_ptr<TlsStream> upstream,
                                      UpstreamBuffer& upstream_buffer, ResponseParser& rp,
                                      bool keep_alive, bool endless, LineMode lines, Exchange& ex,
                                      std::shared_ptr<const Runtime> rt);
  net::awaitable<bool> respond_whole(std::shared_ptr<TlsStream> upstream,
                                     UpstreamBuffer& upstream_buffer, ResponseParser& rp,
                                     bool keep_alive, Exchange& ex,
                                     std::shared_ptr<const Runtime> rt,
                                     const policy::Principal& who,
                                     const policy::Classified& request,
                                     policy::ResponseView view);
  std::optional<std::string> transform_body(const policy::Principal& who,
                                            const policy::Classified& request,
                                            policy::ResponseView view, unsigned status,
                                            const std::string& body, Exchange& ex);
  std::string transform_lines(LineMode mode, std::string_view lines,
                              const policy::Principal& who);
  net::awaitable<void> splice(std::shared_ptr<TlsStream> upstream,
                              UpstreamBuffer& upstream_buffer, ResponseParser& rp,
                              Exchange& ex);
  // Answers `decision` as dockerd would shape it; the request is accounted by serve().
  net::awaitable<bool> refuse(const policy::Decision& decision, bool keep_alive, Exchange& ex);
  net::awaitable<bool> write_response(http::response<http::string_body>& res);
  void account(const Exchange& ex) const;
  // Returns a connection to the pool, which this request no longer uses.
  void release_upstream(std::shared_ptr<TlsStream> connection, const Runtime& rt);

  static net::awaitable<void> pump(std::shared_ptr<Session> self,
                                   std::shared_ptr<TlsStream> upstream, bool client_to_upstream,
                                   std::uint64_t* counter);
  static net::awaitable<void> watch_client(std::shared_ptr<Session> self,
                                           std::shared_ptr<TlsStream> upstream);
  net::awaitable<void> join(bool& done);
  void signal_join() noexcept;

  // A deadline is a time the worker's sweep compares against (once a second), not a timer:
  // setting one costs a clock read, and no connection holds a timer wait.
  using Phase = Metrics::Phase;
  void arm(Clock::duration d, Phase phase) noexcept {
    deadline_ = Clock::now() + d;
    phase_ = phase;
  }
  void disarm() noexcept { deadline_ = Clock::time_point::max(); }
  static const char* phase_name(Phase p) noexcept {
    static constexpr const char* names[] = {"handshake", "request head", "idle",
                                            "request body", "client not reading", "linger"};
    return names[static_cast<int>(p)];
  }

  Worker& worker_;
  TlsStream client_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::unique_ptr<net::steady_timer> join_timer_;  // only while a stream waits for its two sides
  Clock::time_point deadline_ = Clock::time_point::max();
  Phase phase_ = Phase::handshake;
  bool idle_ = true;
  bool closed_ = false;
  bool counted_ = false;  // in berth_proxy_connections (for the session's life)
  policy::Identity identity_;
  struct X509Deleter {
    void operator()(X509* x) const noexcept { X509_free(x); }
  };
  std::unique_ptr<X509, X509Deleter> peer_cert_;
  // The connection to dockerd the current request uses until it goes back to the pool, so
  // that close() can end what the request waits for there.
  TlsStream* upstream_in_use_ = nullptr;
  // Counted connections (proxy/client_limits.hpp): by source address for the session's life,
  // by address while the handshake runs, by client certificate after it.
  ConnectionCounter::Slot address_slot_;
  ConnectionCounter::Slot handshake_slot_;
  ConnectionCounter::Slot certificate_slot_;
};

}  // namespace berth::proxy
