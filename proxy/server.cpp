#include "proxy/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "proxy/log.hpp"
#include "proxy/session.hpp"

namespace berth::proxy {

namespace {

bool same_host(const HostRuntime& x, const HostRuntime& y) {
  return x.name == y.name && x.address.text == y.address.text;
}

// What a reload may do to the fleet's hosts: keep them (names, urls, order), or, on a fleet,
// add hosts after them. A host removed or moved, or one host becoming a fleet (its networks
// are bridges, a fleet's are overlays), takes a restart.
bool hosts_kept_or_added(const Runtime& next, const Runtime& now) {
  if (next.hosts.size() < now.hosts.size() ||
      (next.hosts.size() > now.hosts.size() && !now.fleet())) {
    return false;
  }
  return std::equal(now.hosts.begin(), now.hosts.end(), next.hosts.begin(), same_host);
}

std::string host_list(const Runtime& rt) {
  std::string out;
  for (const HostRuntime& h : rt.hosts) {
    out += (out.empty() ? "" : ", ") + h.name + " (" + h.address.text + ")";
  }
  return out;
}

// The end of a session's coroutine. An exception here is a bug (expected failures are error
// codes): logged and counted, and the connection is gone with it.
void session_ended(const std::exception_ptr& e, const std::string& peer, Metrics& metrics) {
  if (!e) {
    return;
  }
  metrics.session_failed();
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error("session " + peer + " failed: " + ex.what());
  } catch (...) {
    log_error("session " + peer + " failed with an unknown exception");
  }
}

// How long a worker may go without running its once-a-second sweep before the watchdog
// calls it stalled, and how long after the grace period SIGTERM ends the process regardless.
constexpr std::chrono::seconds stall_after{10};
constexpr std::chrono::seconds exit_margin{5};

// SO_REUSEPORT lets every worker own an acceptor on the same port; the kernel spreads new
// connections across them, so no accept lock and no cross-thread hand-off.
using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

std::expected<net::ip::tcp::endpoint, std::string> parse_listen(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return std::unexpected("listen address '" + text + "' must be HOST:PORT");
  }
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  const auto address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    return std::unexpected("listen address '" + text + "': '" + host +
                           "' is not an IP address");
  }
  unsigned long p = 0;
  try {
    p = std::stoul(port);
  } catch (...) {
    p = 70000;
  }
  if (p > 65535) {
    return std::unexpected("listen address '" + text + "': bad port");
  }
  return net::ip::tcp::endpoint(address, static_cast<unsigned short>(p));
}

}  // namespace

Worker::Worker(RuntimeHolder& runtime, SharedIndex& index, AuditLog& audit, Metrics& metrics,
               const ClientLimits& limits, Counters& counters)
    : runtime_(runtime),
      index_(index),
      audit_(audit),
      metrics_(metrics),
      limits_(limits),
      counters_(counters),
      heartbeat_(std::chrono::steady_clock::now().time_since_epoch().count()),
      acceptor_(context_),
      pool_(context_.get_executor()),
      grace_timer_(context_),
      sweep_timer_(context_) {}

error_code Worker::listen(const net::ip::tcp::endpoint& endpoint) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_.set_option(reuse_port(true), ec);
  }
  if (!ec) {
    acceptor_.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
  }
  if (!ec) {
    acceptor_native_ = acceptor_.native_handle();
  }
  return ec;
}

unsigned short Worker::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Worker::start() {
  sweep();
  net::co_spawn(context_, accept_loop(this), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log_error(std::string("accept loop failed: ") + ex.what());
      }
    }
  });
}

net::awaitable<void> Worker::accept_loop(Worker* self) {
  for (;;) {
    TlsStream::socket_type socket(self->context_);
    error_code ec;
    co_await self->acceptor_.async_accept(socket, with_ec(ec));
    if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) {
      co_return;
    }
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      log_warn("accept failed: " + ec.message());
      net::steady_timer pause(self->context_, std::chrono::milliseconds(50));
      co_await pause.async_wait(with_ec(ec));
      continue;
    }
    error_code ignored;
    socket.set_option(net::ip::tcp::no_delay(true), ignored);
    std::string address = "?";
    std::string peer = "?";
    const auto remote = socket.remote_endpoint(ignored);
    if (!ignored) {
      if (remote.protocol().family() == AF_INET || remote.protocol().family() == AF_INET6) {
        // The generic endpoint carries a sockaddr; format it as ip:port.
        net::ip::tcp::endpoint tcp_ep;
        std::memcpy(tcp_ep.data(), remote.data(), std::min(remote.size(), tcp_ep.capacity()));
        address = tcp_ep.address().to_string();
        peer = address + ":" + std::to_string(tcp_ep.port());
      }
    }
    // Caps per source address, before any TLS work: one client cannot take every descriptor
    // or every handshake slot from the others.
    const ClientLimits& limits = self->limits_;
    ConnectionCounter::Slot by_address =
        self->counters_.addresses.acquire(address, limits.per_address);
    ConnectionCounter::Slot handshaking;
    if (by_address.held()) {
      handshaking = self->counters_.handshakes.acquire(address, limits.handshakes_per_address);
    }
    if (!handshaking.held()) {
      const bool total = !by_address.held();
      self->metrics_.connection_refused(total ? Metrics::Refusal::per_address
                                              : Metrics::Refusal::handshakes_per_address);
      const auto now = std::chrono::steady_clock::now();
      if (now - self->last_refusal_log_ >= std::chrono::seconds(1)) {
        self->last_refusal_log_ = now;
        log_warn("refusing connections from " + address + ": it holds " +
                 (total ? std::to_string(limits.per_address) + " connections"
                        : std::to_string(limits.handshakes_per_address) + " unfinished handshakes") +
                 " (logged at most once a second)");
      }
      socket.set_option(net::socket_base::linger(true, 0), ignored);  // RST: nothing to linger
      socket.close(ignored);
      continue;
    }
    const auto rt = self->runtime_.get();
    SslPtr ssl(SSL_new(rt->server_ctx.get()));
    if (!ssl) {
      log_error("SSL_new failed");
      continue;
    }
    SSL_set_accept_state(ssl.get());
    auto session =
        std::make_shared<Session>(*self, TlsStream(std::move(socket), std::move(ssl)), peer,
                                  std::move(by_address), std::move(handshaking));
    self->sessions_.push_back(session);
    net::co_spawn(self->context_, Session::run(session),
                  [peer, metrics = &self->metrics_](std::exception_ptr e) {
                    session_ended(e, peer, *metrics);
                  });
  }
}

void Worker::sweep() {
  // Connections hold no timer each: one pass a second closes those past their deadline, and
  // lets go of the entries of sessions that ended (whose memory a weak_ptr keeps).
  const auto now = std::chrono::steady_clock::now();
  heartbeat_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  sessions_.remove_if([now](const std::weak_ptr<Session>& w) {
    if (auto s = w.lock()) {
      s->sweep(now);
      return false;
    }
    return true;
  });
  if (draining_ && sessions_.empty()) {
    return;  // shutting down and nothing left to watch: let the worker's loop end
  }
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](error_code ec) {
    if (!ec) {
      sweep();
    }
  });
}

void Worker::isolate() noexcept {
  // shutdown(2) is safe from any thread and leaves the descriptor open (no reuse race with the
  // worker's own acceptor object); on Linux it unhashes a listening socket, which leaves the
  // SO_REUSEPORT group and resets the connections queued on it.
  ::shutdown(acceptor_native_, SHUT_RDWR);
}

void Worker::revalidate(std::shared_ptr<const Runtime> rt) {
  net::post(context_, [this, rt = std::move(rt)] {
    for (auto& w : sessions_) {
      if (auto s = w.lock()) {
        s->revalidate(*rt);
      }
    }
  });
}

void Worker::begin_shutdown(std::chrono::seconds grace) {
  net::post(context_, [this, grace] { shutdown_now(grace); });
}

void Worker::shutdown_now(std::chrono::seconds grace) {
  draining_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  pool_.clear();
  for (auto& w : sessions_) {
    if (auto s = w.lock()) {
      s->close_if_idle();
    }
  }
  grace_timer_.expires_after(grace);
  grace_timer_.async_wait([this](error_code ec) {
    if (ec) {
      return;
    }
    for (auto& w : sessions_) {
      if (auto s = w.lock()) {
        s->close();
      }
    }
    pool_.clear();
  });
  // Once every session has ended, the grace timer is the only work left; stop waiting then.
  auto poll = std::make_shared<net::steady_timer>(context_);
  auto check = std::make_shared<std::function<void(error_code)>>();
  *check = [this, poll, check](error_code) {
    const bool any = std::any_of(sessions_.begin(), sessions_.end(),
                                 [](const std::weak_ptr<Session>& w) { return !w.expired(); });
    if (!any) {
      grace_timer_.cancel();
      sweep_timer_.cancel();
      pool_.clear();
      *check = nullptr;  // break the self-reference
      return;
    }
    poll->expires_after(std::chrono::milliseconds(100));
    poll->async_wait(*check);
  };
  (*check)({});
}

Server::Server(Options options, std::shared_ptr<const Runtime> initial)
    : options_(std::move(options)), runtime_(std::move(initial)) {}

void Server::reload() {
  // Whatever the verdict, these files have been judged: the watcher waits for the next change.
  stamp_ = file_stamp();
  const std::uint64_t gen = generation_.fetch_add(1) + 1;
  auto next = load_runtime(options_, gen);
  if (!next) {
    log_error("policy reload refused, the running policy stays in force: " + next.error());
    metrics_.reload(false);
    return;
  }
  const std::size_t hosts_before = runtime_.get()->hosts.size();
  if (!hosts_kept_or_added(**next, *runtime_.get())) {
    // A host's containers, volumes and place in the index are its watcher's: a host removed
    // or moved would lose them from view.
    log_error("policy reload refused, the running policy stays in force: the fleet's hosts "
              "(names, urls, order) may only be added to, after the others, by a reload; "
              "other changes take a restart");
    metrics_.reload(false);
    return;
  }
  if ((*next)->listen != runtime_.get()->listen) {
    log_warn("policy reload: a new listen address takes effect only after a restart");
  }
  runtime_.set(*next);
  // A host added: its watcher reads it and follows it. Until it has, placement and the
  // fanned-out requests pass it by (HostFacts::up).
  for (std::size_t i = hosts_before; i < (*next)->hosts.size(); ++i) {
    watchers_.push_back(
        std::make_unique<IndexWatcher>(index_, runtime_, false, (*next)->hosts[i].name));
    watchers_.back()->start();
    log_info("fleet: host " + (*next)->hosts[i].name + " added");
  }
  metrics_.reload(true);
  log_info("policy reloaded (generation " + std::to_string(gen) + ")");
  for (auto& w : workers_) {
    w->revalidate(*next);
  }
}

// The policy file and every TLS file it names, as "path:mtime:size" entries: a change in any
// of them (an edited policy, a renewed certificate, a CRL written by `berthctl cert revoke`)
// triggers the same validated reload as SIGHUP.
std::string Server::file_stamp() const {
  const auto rt = runtime_.get();
  std::string stamp;
  for (const std::string& f : {options_.policy_path, rt->policy->tls.cert, rt->policy->tls.key,
                               rt->policy->tls.client_ca, rt->policy->tls.crl}) {
    if (f.empty()) {
      continue;
    }
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0) {
      stamp += f + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
               std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) + ";";
    } else {
      stamp += f + ":missing;";
    }
  }
  return stamp;
}

void Server::watch_workers(net::steady_timer& timer) {
  // A worker runs its sweep once a second; one that has not for stall_after is stuck (a
  // deadlock, a loop). Its listener leaves the SO_REUSEPORT group, so new connections go to
  // the others instead of waiting in a queue nobody serves; the log and
  // berth_proxy_worker_stalls_total say so. With every worker stuck nothing can serve: the
  // process exits for its supervisor to restart it.
  timer.expires_after(std::chrono::seconds(1));
  timer.async_wait([this, &timer](error_code ec) {
    if (ec) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    std::size_t stuck = 0;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      Worker& w = *workers_[i];
      const bool late = now - w.heartbeat() > stall_after;
      if (late && !stalled_[i]) {
        stalled_[i] = true;
        log_error("worker " + std::to_string(i) + " has made no progress for " +
                  std::to_string(stall_after.count()) +
                  " s; its listener is taken out of service");
        metrics_.worker_stalled(true);
        w.isolate();
      } else if (!late && stalled_[i]) {
        stalled_[i] = false;
        log_warn("worker " + std::to_string(i) +
                 " made progress again; its listener stays out of service until a restart");
        metrics_.worker_stalled(false);
      }
      if (stalled_[i]) {
        ++stuck;
      }
    }
    report_hosts(now);
    if (stuck == workers_.size()) {
      log_error("every worker is stalled; exiting so the supervisor restarts berth-proxy");
      std::fflush(nullptr);
      std::_Exit(70);
    }
    watch_workers(timer);
  });
}

void Server::report_hosts(std::chrono::steady_clock::time_point now) {
  for (const HostRuntime& h : runtime_.get()->hosts) {
    const auto usage = index_.host_usage(h.name);
    const double age =
        usage ? std::chrono::duration<double>(now - usage->at).count() : -1.0;
    metrics_.fleet_host(h.name, index_.host_facts(h.name)->up, age);
  }
}

void Server::watch_files(net::steady_timer& timer) {
  timer.expires_after(std::chrono::seconds(2));
  timer.async_wait([this, &timer](error_code ec) {
    if (ec) {
      return;
    }
    if (file_stamp() != stamp_) {
      log_info("policy or certificate files changed; reloading");
      reload();  // a refused reload is not retried until the files change again
    }
    watch_files(timer);
  });
}

// The audit log, the metrics listener and every worker's listener, or the reason berth
// cannot start; the listening endpoint (its port picked by the first worker for port 0).
std::expected<net::ip::tcp::endpoint, std::string> Server::open_listeners() {
  const auto rt = runtime_.get();
  if (!options_.audit_log.empty()) {
    if (auto err = audit_.open(options_.audit_log); !err.empty()) {
      return std::unexpected("cannot open the audit log " + err);
    }
  }
  auto endpoint = parse_listen(rt->listen);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  const std::string metrics_address = options_.metrics_listen_override.empty()
                                          ? rt->policy->metrics_listen
                                          : options_.metrics_listen_override;
  if (!metrics_address.empty()) {
    if (auto err = metrics_.listen(metrics_address); !err.empty()) {
      return std::unexpected(err);
    }
    std::printf("berth-proxy: metrics on port %u\n", static_cast<unsigned>(metrics_.port()));
    log_info("metrics on " + metrics_address + " (port " + std::to_string(metrics_.port()) + ")");
  }
  unsigned n = options_.workers ? options_.workers : std::thread::hardware_concurrency();
  n = std::max(1u, n);
  stalled_.assign(n, false);
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(runtime_, index_, audit_, metrics_,
                                                options_.client, counters_));
    if (const auto ec = workers_.back()->listen(*endpoint)) {
      return std::unexpected("cannot listen on " + rt->listen + ": " + ec.message());
    }
    if (i == 0) {
      endpoint->port(workers_[0]->port());  // port 0: every worker shares the one picked
    }
  }
  return *endpoint;
}

// SIGHUP reloads; SIGTERM and SIGINT begin the shutdown, and whatever the workers do (a
// stalled one never runs its shutdown) the process ends a few seconds after the grace period.
void Server::on_signal(int sig, Signals& s) {
  if (sig == SIGHUP) {
    reload();
    wait_for_signal(s);
    return;
  }
  s.file_timer.cancel();
  s.watchdog_timer.cancel();
  log_info("shutting down: no new connections; running requests have " +
           std::to_string(options_.shutdown_grace_seconds) + " s to finish");
  for (auto& w : workers_) {
    w->begin_shutdown(std::chrono::seconds(options_.shutdown_grace_seconds));
  }
  s.exit_timer.expires_after(std::chrono::seconds(options_.shutdown_grace_seconds) + exit_margin);
  s.exit_timer.async_wait([this](error_code timer_ec) {
    if (!timer_ec) {
      log_error("workers did not stop within the grace period; exiting now");
      audit_.close();  // what was accounted so far reaches the file
      std::fflush(nullptr);
      std::_Exit(1);
    }
  });
}

void Server::wait_for_signal(Signals& s) {
  s.set.async_wait([this, &s](error_code ec, int sig) {
    if (!ec) {
      on_signal(sig, s);
    }
  });
}

int Server::run() {
  const auto endpoint = open_listeners();
  if (!endpoint) {
    std::cerr << "berth-proxy: " << endpoint.error() << "\n";
    return 1;
  }
  // The ownership index first: tenants' requests are authorized against it.
  // One watcher per host of the fleet (a reload may add more: reload()).
  for (const HostRuntime& host : runtime_.get()->hosts) {
    const bool primary = &host == &runtime_.get()->primary();
    watchers_.push_back(std::make_unique<IndexWatcher>(
        index_, runtime_, primary && options_.bridge_isolation, host.name));
    watchers_.back()->start();
  }
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    if (!watchers_[i]->wait_ready(std::chrono::seconds(i == 0 ? 15 : 5))) {
      log_warn("ownership index: host " + runtime_.get()->hosts[i].name +
               " not synchronised (is its dockerd up?); serving anyway: its containers answer "
               "503 until it is");
    }
  }
  for (auto& w : workers_) {
    w->start();
  }
  // Signals, the policy files and the workers are watched on a thread of their own.
  Signals signals;
  wait_for_signal(signals);
  stamp_ = file_stamp();
  watch_files(signals.file_timer);
  watch_workers(signals.watchdog_timer);
  std::thread signal_thread([&signals] { signals.context.run(); });

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->run(); });
  }
  std::printf("berth-proxy: ready on port %u\n", static_cast<unsigned>(endpoint->port()));
  std::fflush(stdout);
  log_info("listening on " + endpoint->address().to_string() + ":" +
           std::to_string(endpoint->port()) + " with " + std::to_string(workers_.size()) +
           " workers; hosts " + host_list(*runtime_.get()));
  workers_[0]->run();
  for (auto& t : threads) {
    t.join();
  }
  signals.context.stop();
  signal_thread.join();
  for (auto& w : watchers_) {  // the signal thread, which adds them, has ended
    w->stop();
  }
  audit_.close();
  log_info("stopped");
  return 0;
}

}  // namespace berth::proxy
