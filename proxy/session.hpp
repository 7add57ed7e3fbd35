#pragma once
// One client connection: the TLS handshake, then each request through the pipeline, whose
// stages each live in a file of their own:
//
//   session.cpp   the connection: handshake, the keep-alive loop, deadlines, close, refusals
//   pipeline.cpp  identify -> classify -> resolve -> authorize and rewrite, top to bottom
//   prepare.cpp   what a request needs before dockerd sees it: quota and subnet reservations,
//                 the tenant's default network and volumes, a generated name
//   forward.cpp   to dockerd (the target resolve chose) and its answer's head
//   deliver.cpp   the answer to the client as choose_delivery says (proxy/delivery.hpp):
//                 passed, rewritten (filter, and what the index learns), or line-filtered
//   splice.cpp    hijacked attach and exec streams, both ways, half-close preserved
//   account.cpp   the audit line and metrics, once per request
//
// Each stage gives the next its input or a Refusal; the pipeline answers a refusal at one
// place and serve() accounts every request once.
//
// Deadlines belong to the client side (dockerd is trusted, but a request may wait for its
// answer only as long as its route's timeout class allows): the handshake, a request head, a
// judged body, an idle keep-alive wait, each write to a slow reader. Streams and hijacked
// connections rely on TCP keepalive. A deadline is a time, not a timer: the worker's sweep
// closes connections past theirs once a second.

#include <nlohmann/json.hpp>
#include <openssl/x509.h>

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/image_archive.hpp"
#include "proxy/client_limits.hpp"
#include "proxy/config.hpp"
#include "proxy/delivery.hpp"
#include "proxy/exchange.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net.hpp"
#include "proxy/response_head.hpp"
#include "proxy/tls_stream.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

class Worker;

/// A request a fleet answers from every host (fleet.cpp): container lists, newest first over
/// all hosts; volume lists and system df, whose containers and volumes are on every host;
/// container and volume prunes, done on every host and reported as one.
enum class FanOut { containers, volumes, disk_usage, prune };
[[nodiscard]] std::optional<FanOut> fan_out_of(std::string_view endpoint);

struct MigrationPlan;   // proxy/migrate.cpp
struct HandoffFailure;  // proxy/migrate.cpp

/// What a placed create's host lacks of its image (Session::image_need): the image itself, or
/// only the name the create uses for it. Neither: the usual case, no coroutine is entered.
struct ImageNeed {
  bool copy = false;
  bool retag = false;
};

/// The parameters of a request target's query string: none without one (or with one the
/// judge would have refused).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> query_params(
    std::string_view target);

/// A tenant's /info (already filtered) on a fleet: the CPUs and memory of every host that is
/// up, from what each watcher read of its host's /info (policy::with_fleet_totals).
[[nodiscard]] std::string fleet_info(const Runtime& rt, const SharedIndex& index,
                                     std::string_view info);

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
using ResponseParser = http::response_parser<http::buffer_body>;

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
  /// The worker's sweep: closes the connection if its deadline (handshake, a request head or
  /// body, an idle wait, a write to a slow reader, dockerd's answer, a stream's linger) is past.
  void sweep(Clock::time_point now) noexcept;
  /// Closes the connection whatever it is doing, and what it waits for on dockerd.
  void close() noexcept;
  /// Closes the connection if its client certificate no longer verifies under `rt`.
  void revalidate(const Runtime& rt) noexcept;

 private:
  // How a relayed answer is filtered: line by line (events, build output, stats, a pull's or
  // push's progress), or as a saved image archive (policy::SaveArchiveFilter).
  enum class LineMode { none, events, build, stats, transfer, archive };

  // dockerd's answer as forward() leaves it for deliver().
  struct Answer {
    std::shared_ptr<TlsStream> upstream;
    UpstreamBuffer buffer;
    ResponseParser parser;
    ResponseHead head;  // complete: a plain head scanned without Beast (not yet parsed)
    bool upgrade = false;  // berth asked dockerd for an upgrade (attach, exec)
    bool is_head = false;  // a HEAD request: no body follows the head
    Target target;  // the host `upstream` leads to, whose pool takes it back
    Answer();
  };

  // session.cpp: the connection.
  net::awaitable<bool> handshake();
  // Serves requests while the next one is (partly) there; between requests the session is
  // parked: a readiness wait with a plain handler, so an idle connection holds no coroutine
  // frames. `readable`: woken by that wait, so read at once.
  static net::awaitable<void> serve_requests(std::shared_ptr<Session> self, bool readable);
  static void park(std::shared_ptr<Session> self);
  void finish() noexcept;  // the end of a connection that was not closed by force
  // The end of a connection whose client may still be sending.
  net::awaitable<void> linger_close(bool tls_up);
  net::awaitable<bool> read_and_serve();
  // One request: the pipeline, then its one account().
  net::awaitable<bool> serve(RequestParser& parser);
  // Answers `decision` as dockerd would shape it; the request is accounted by serve().
  net::awaitable<bool> refuse(const policy::Decision& decision, bool keep_alive, Exchange& ex);
  net::awaitable<bool> write_response(http::response<http::string_body>& res);

  // pipeline.cpp: the stages up to forward.
  net::awaitable<bool> pipeline(RequestParser& parser, Exchange& ex);
  net::awaitable<std::optional<Refusal>> admit(Admission& a, Exchange& ex);
  std::optional<Refusal> check_head(Admission& a, Exchange& ex);
  std::optional<Refusal> identify(Admission& a, Exchange& ex);
  std::optional<Refusal> classify(Admission& a, Exchange& ex);
  using Resolved = std::expected<policy::Classified, policy::Decision>;
  Resolved look_up(Admission& a);  // the request's references, in the ownership index
  static bool worth_asking_dockerd(const Admission& a, const Resolved& resolved);
  bool switching(const Admission& a, const Resolved& resolved);  // a migration moves it now
  net::awaitable<void> hold_while_switching(std::string key);
  static std::vector<std::string> image_refs_in_query(const policy::Classified& request);
  std::optional<Refusal> resolve(Admission& a, Resolved resolved, Exchange& ex);
  net::awaitable<std::optional<Refusal>> read_judged_body(Admission& a, Exchange& ex);
  std::optional<Refusal> authorize_and_rewrite(Admission& a, Exchange& ex);
  // Writes "100 Continue" when the client sent Expect: 100-continue and its body is still to
  // come (expects_continue); false when that write failed.
  static bool expects_continue(RequestParser& parser);
  net::awaitable<bool> continue_if_expected(RequestParser& parser);
  net::awaitable<bool> answer_locally(Admission& a, Exchange& ex);

  // prepare.cpp: what a tenant's request needs before dockerd sees it (admit() calls it for
  // a tenant's request that dockerd will see, not for one berth answers itself).
  net::awaitable<std::optional<Refusal>> prepare(Admission& a, Exchange& ex);
  net::awaitable<std::optional<Refusal>> publish_image_ports(Admission& a);
  std::optional<Refusal> reserve_quota(Admission& a);
  net::awaitable<bool> ensure_default_network(Admission& a);
  net::awaitable<bool> ensure_volumes(Admission& a, Exchange& ex);
  void generate_name(Admission& a);
  // Removes the volumes prepare() made for a request that dockerd or berth then refused.
  net::awaitable<void> drop_ensured_volumes(Admission& a, Exchange& ex);

  // transfer.cpp: a tenant's pull or push (policy::ImageTransfer). begin_transfer runs in
  // prepare; end_transfer before the stream's end reaches the client (its text ends the
  // stream), or after the request on any other way out (a push's name is always removed).
  net::awaitable<std::optional<Refusal>> begin_transfer(Admission& a);
  net::awaitable<std::optional<Refusal>> begin_pull(Admission& a);
  net::awaitable<std::optional<Refusal>> begin_push(Admission& a);
  net::awaitable<std::string> end_transfer(Admission& a, bool succeeded);
  static std::string transfer_lines(const Exchange& ex, std::string_view lines,
                                    const policy::Principal& who);

  // forward.cpp: to dockerd, and its answer's head.
  struct Outgoing;
  net::awaitable<std::optional<Outgoing>> outgoing(Admission& a, Answer& answer);
  net::awaitable<std::optional<Refusal>> forward(Admission& a, Answer& answer, Exchange& ex);
  net::awaitable<bool> finish_request_body(TlsStream& upstream,
                                           http::request_serializer<http::buffer_body>& sr,
                                           http::request<http::buffer_body>& req);
  net::awaitable<bool> send_request(Admission& a, TlsStream& upstream, bool upgrade,
                                    std::optional<std::string> body, Exchange& ex,
                                    std::optional<policy::Decision>& refusal);
  net::awaitable<bool> relay_request_body(TlsStream& upstream, RequestParser& parser,
                                          Exchange& ex, policy::TarBodyFilter* tar,
                                          std::optional<policy::Decision>& refusal);
  // The client's header made into dockerd's: the judged target, no hop-by-hop fields, a
  // tenant's fields by list (`tenant_route`: null for an operator), and the Content-Type berth
  // writes on a tenant's body (`body`).
  static void upstream_header(http::request_header<>& header, const std::string& target,
                              bool upgrade, const policy::Route* tenant_route, bool body);
  net::awaitable<error_code> read_answer_head(Answer& answer, bool scan_plain);
  net::awaitable<error_code> write_bodyless(Admission& a, Answer& answer, Exchange& ex);
  std::expected<std::string, policy::Decision> judge_context(policy::TarBodyFilter& tar,
                                                             std::string_view piece, bool last);
  void drop_dead(Answer& answer, Target target, const error_code& why, Exchange& ex);

  // deliver.cpp: the answer to the client.
  net::awaitable<bool> deliver(Admission& a, Answer& answer, Exchange& ex);
  net::awaitable<bool> deliver_parsed(Admission& a, Answer& answer, Exchange& ex);
  // Passes on dockerd's answer as it wrote it, head bytes and coded body, in one write, when
  // the whole answer is small. nullopt: not so, deliver goes on through Beast.
  net::awaitable<std::optional<bool>> pass_raw(Answer& answer, bool keep_alive, Exchange& ex,
                                               const Runtime& rt);
  // For an answer read whole and rewritten: when the head and the whole body fit the buffer,
  // answers with dockerd's fields and the new length, without Beast. nullopt: not so.
  net::awaitable<std::optional<bool>> respond_raw(Admission& a, Answer& answer, Exchange& ex);
  net::awaitable<std::optional<bool>> pass_whole(Answer& answer, bool keep_alive, Exchange& ex,
                                                 const Runtime& rt);
  net::awaitable<bool> relay_response(Answer& answer, bool keep_alive, bool endless,
                                      LineMode lines, const policy::Principal* who, Exchange& ex,
                                      const Runtime& rt);
  net::awaitable<bool> relay_body(Answer& answer, http::response_serializer<http::buffer_body>& sr,
                                  bool until_eof, LineMode lines, const policy::Principal* who,
                                  Exchange& ex);
  net::awaitable<bool> respond_whole(Admission& a, Answer& answer, Exchange& ex);

  // follow_move.cpp: a tenant's wait or log stream on a fleet, which follows its container
  // across a move.
  enum class Follow { none, wait, logs };
  using FollowedHead = http::response<http::buffer_body>;
  using FollowSerializer = http::response_serializer<http::buffer_body>;
  [[nodiscard]] Follow follows_move(const Admission& a, const Answer& answer) const;
  net::awaitable<bool> follow_move(Admission& a, Answer& answer, Exchange& ex, Follow follow);
  net::awaitable<bool> follow_wait(Admission& a, Answer& answer, FollowSerializer& sr,
                                   Exchange& ex);
  net::awaitable<bool> follow_logs(Admission& a, Answer& answer, FollowSerializer& sr,
                                   Exchange& ex);
  net::awaitable<bool> relay_followed(Answer& from, FollowedHead& out, FollowSerializer& sr,
                                      const Runtime& rt, Exchange& ex);
  net::awaitable<std::optional<std::string>> read_wait_body(Answer& answer, const Runtime& rt);
  std::optional<std::pair<std::string, Target>> where_now(const Admission& a);
  net::awaitable<bool> ask_again(const Admission& a, http::verb method, const std::string& path,
                                 Target to, Answer& answer);
  // What the ownership index learns from dockerd's answer to a create, update or removal
  // (the route's IndexEffect), before the event stream confirms it.
  void learn_from_answer(Admission& a, unsigned status, const std::string& body);
  // The tenant's view of a whole answer; nullopt when it is not what the view expects.
  std::optional<std::string> filter_answer(Admission& a, unsigned status,
                                           const std::string& body);
  std::expected<std::string, std::string> filter_archive(policy::SaveArchiveFilter& archive,
                                                         std::string_view piece, bool last);
  std::string transform_lines(LineMode mode, std::string_view lines,
                              const policy::Principal& who);
  static net::awaitable<void> watch_client(std::shared_ptr<Session> self,
                                           std::shared_ptr<TlsStream> upstream);
  // A watcher of the client (watch_client, or the event merge's) run beside a stream; `done`
  // turns true when it has ended. end_watch cancels one still running and waits for its end.
  void start_watch(net::awaitable<void> watcher, bool& done);
  net::awaitable<void> end_watch(bool& done);
  // Returns a connection to the pool, which this request no longer uses.
  void release_upstream(std::shared_ptr<TlsStream> connection, const Runtime& rt,
                        Target target);

  // fleet.cpp: which host of a fleet serves a request, placement of a new container, and the
  // lists merged from every host.
  // Sets answer.target, a.host and (a fleet) ex.host; a refusal when the host is down.
  std::optional<policy::Decision> route_request(Admission& a, Answer& answer, Exchange& ex);
  std::expected<Target, policy::Decision> target_of(Admission& a);
  void name_network_in_path(Admission& a);
  std::optional<Refusal> place_container(Admission& a, Exchange& ex);
  [[nodiscard]] ImageNeed image_need(const Admission& a) const;
  net::awaitable<std::optional<Refusal>> provide_image(Admission& a, ImageNeed need);
  net::awaitable<std::string> copy_once(Admission& a);
  net::awaitable<void> propagate_image_removal(Admission& a);
  [[nodiscard]] static bool commit_elsewhere(const Admission& a, unsigned status) noexcept;
  net::awaitable<void> bring_commit_home(Admission& a, const std::string& answer);
  net::awaitable<bool> fan_out(Admission& a, Exchange& ex, FanOut kind);
  net::awaitable<void> settle_network_removal(Admission& a);
  net::awaitable<bool> delete_fleet_network(Admission& a, Exchange& ex);
  // proxy/migrate.cpp: an operator's live migration of a container to another host, and
  // the drain of a host (each of its containers migrated in turn).
  net::awaitable<bool> migrate_container(Admission& a, Exchange& ex);
  net::awaitable<bool> drain_host(Admission& a, Exchange& ex);
  std::optional<std::string> drain_target(const Runtime& rt, const std::string& from);
  net::awaitable<std::expected<nlohmann::json, policy::Decision>> migrate(
      std::shared_ptr<const Runtime> rt, std::string ref, std::string to);
  net::awaitable<std::expected<MigrationPlan, policy::Decision>> plan_migration(
      std::shared_ptr<const Runtime> rt, const std::string& ref, const std::string& to_name);
  net::awaitable<std::expected<nlohmann::json, HandoffFailure>> hand_over_between_nodes(
      std::shared_ptr<const Runtime> rt, const MigrationPlan& plan, const std::string& new_id,
      const std::string& checkpoint);
  net::awaitable<std::string> image_for_migration(std::shared_ptr<const Runtime> rt,
                                                  Target from, Target to,
                                                  const nlohmann::json& inspect);
  struct Gather;
  static net::awaitable<void> gather_one(std::shared_ptr<Session> self,
                                         std::shared_ptr<Gather> gather, std::size_t i,
                                         std::shared_ptr<const Runtime> rt, http::verb method,
                                         std::string target);
  struct EventMerge;
  std::uint64_t subscribe_berth_events(Admission& a, const std::shared_ptr<EventMerge>& merge);
  // Whole event lines (a host's, or berth's own) into the merged stream, in the requester's
  // view: held while since= replays, else pending; the writer is woken.
  void add_events(EventMerge& merge, std::string_view lines);
  net::awaitable<bool> fan_out_events(Admission& a, Exchange& ex);
  void start_event_readers(Admission& a, const std::shared_ptr<EventMerge>& merge);
  static net::awaitable<void> read_events(std::shared_ptr<Session> self,
                                          std::shared_ptr<EventMerge> merge,
                                          std::shared_ptr<const Runtime> rt, Target from,
                                          std::string target);
  static net::awaitable<void> watch_merge_client(std::shared_ptr<Session> self,
                                                 std::shared_ptr<EventMerge> merge);

  // splice.cpp: hijacked streams. `cut`: the container whose attach or exec session this is
  // (its id on its host; none for the operator's), and whether it has a TTY (a raw stream)
  // or not (Docker's multiplexed frames): a migration that ends it says so to the client.
  struct StreamCut {
    std::string container;
    bool tty = false;
  };
  [[nodiscard]] StreamCut stream_cut(const Admission& a) const;
  net::awaitable<void> splice(Answer& answer, Exchange& ex, StreamCut cut);
  static net::awaitable<void> pump(std::shared_ptr<Session> self,
                                   std::shared_ptr<TlsStream> upstream, bool client_to_upstream,
                                   std::uint64_t* counter, const StreamCut* cut = nullptr);
  net::awaitable<void> join(bool& done);
  void signal_join() noexcept;

  // account.cpp
  void account(const Exchange& ex) const;

  // A deadline is a time the worker's sweep compares against (once a second), not a timer:
  // setting one costs a clock read, and no connection holds a timer wait.
  using Phase = Metrics::Phase;
  void arm(Clock::duration d, Phase phase) noexcept {
    deadline_ = Clock::now() + d;
    phase_ = phase;
  }
  void disarm() noexcept { deadline_ = Clock::time_point::max(); }
  static const char* phase_name(Phase p) noexcept {
    static constexpr const char* names[] = {"handshake",          "request head",
                                            "idle",               "request body",
                                            "client not reading", "linger",
                                            "dockerd's answer"};
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
  // that close() can end what the request waits for there. Weak: a connection dropped on an
  // error path (closed, never pooled) is freed with its request's Answer, and a raw pointer
  // left behind would be cancelled after it was freed.
  std::weak_ptr<TlsStream> upstream_in_use_;
  // Counted connections (proxy/client_limits.hpp): by source address for the session's life,
  // by address while the handshake runs, by client certificate after it.
  ConnectionCounter::Slot address_slot_;
  ConnectionCounter::Slot handshake_slot_;
  ConnectionCounter::Slot certificate_slot_;
};

}  // namespace berth::proxy
