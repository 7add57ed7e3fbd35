// berth-bench: the load generator that puts berth-proxy, dockerd's own unix socket and a plain
// TLS-terminating nginx side by side (run_bench.sh drives it once per scenario and target).
//
// Scenarios, each ending by itself (a hard deadline stops the io_contexts if a server hangs):
//   keepalive  N keep-alive HTTP/1.1 connections issuing GET --path for --duration seconds
//   handshake  N workers doing full TLS handshake + GET /_ping + close, for --duration seconds
//   exec       one exec of `head -c BYTES /dev/zero` in --container, upgraded stream read to EOF
//   idle       K idle mTLS connections (handshake + one /_ping each), server RSS before/after
// Each prints a human line and one `result key=value ...` line for the script to tabulate.
// Server cost is what the kernel accounts to --server-pid (and --dockerd-pid, kept apart so a
// proxy's own cost is not hidden in dockerd's).
//
// Threads: one io_context per thread, sessions never migrate (STYLE.md §3.5); the generator
// shares the two cores with the server under test, equally for every target.
#include "tests/bench/bench_client.hpp"
#include "tests/bench/proc_stats.hpp"

#include <sys/resource.h>
#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace berth::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  std::string ca;
  std::string cert;
  std::string key;
  std::string scenario;
  std::string label;  // names the target in the result line (berth, direct, nginx)
  std::string path = "/_ping";
  std::string api = "v1.41";
  std::string container;
  std::string image = "berth-test/busybox:latest";
  std::vector<int> server_pids;
  std::vector<int> dockerd_pids;
  bool with_children = false;
  bool half_close = true;
  bool tty = true;
  int connections = 32;
  int threads = 2;
  int idle = 1000;
  double duration = 5.0;
  double warmup = 0.5;
  double settle = 1.0;
  double timeout = 120.0;
  std::uint64_t exec_bytes = 314572800;
};

struct Setup {
  Options opt;
  Endpoint ep;
  SslCtxPtr tls;
};

using SetupPtr = std::shared_ptr<const Setup>;

// Per-thread counters: only the coroutines of one io_context touch one Stats.
struct Stats {
  std::vector<std::uint32_t> latency_us;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t bytes = 0;
  std::string first_error;

  void error(const std::string& what, const error_code& ec) {
    ++errors;
    if (first_error.empty()) {
      first_error = what + ": " + ec.message();
    }
  }
};

// key=value pairs in insertion order, printed as one `result` line.
class ResultLine {
 public:
  template <typename T>
  ResultLine& add(const std::string& key, const T& value) {
    std::ostringstream s;
    s << value;
    std::string text = s.str();
    std::replace(text.begin(), text.end(), ' ', '_');
    fields_.emplace_back(key, text.empty() ? "-" : text);
    return *this;
  }

  void print() const {
    std::string line = "result";
    for (const auto& [k, v] : fields_) {
      line += ' ' + k + '=' + v;
    }
    std::cout << line << std::endl;
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Runs one io_context per thread until they run out of work or a hard deadline passes.
class Runner {
 public:
  explicit Runner(int threads) {
    for (int i = 0; i < threads; ++i) {
      ios_.push_back(std::make_unique<net::io_context>(1));
    }
  }

  std::size_t size() const { return ios_.size(); }

  net::any_io_executor executor(std::size_t i) { return ios_[i % ios_.size()]->get_executor(); }

  void start() {
    running_ = ios_.size();
    for (auto& io : ios_) {
      io->restart();
      net::io_context* ctx = io.get();
      threads_.emplace_back([this, ctx] {
        ctx->run();
        const std::lock_guard lock(mutex_);
        --running_;
        done_.notify_all();
      });
    }
  }

  /// Returns false if the deadline passed and the remaining work was abandoned.
  bool wait(Clock::time_point hard_deadline) {
    bool finished = false;
    {
      std::unique_lock lock(mutex_);
      finished = done_.wait_until(lock, hard_deadline, [this] { return running_ == 0; });
    }
    if (!finished) {
      for (auto& io : ios_) {
        io->stop();
      }
    }
    for (auto& t : threads_) {
      t.join();
    }
    threads_.clear();
    return finished;
  }

 private:
  std::vector<std::unique_ptr<net::io_context>> ios_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t running_ = 0;
};

// Exceptions in a session are bugs of the generator: say so instead of losing them.
void report_exception(std::exception_ptr e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::cerr << "berth-bench: session failed: " << ex.what() << '\n';
  }
}

net::awaitable<void> sleep_for(Clock::duration d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  error_code ec;
  co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
}

std::string get_request(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n";
}

std::string post_request(const std::string& path, const std::string& body,
                         const std::string& extra_headers) {
  return "POST " + path + " HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n" +
         "Content-Type: application/json\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::uint32_t micros(Clock::duration d) {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

struct Percentiles {
  std::uint64_t count = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

Percentiles percentiles(std::vector<Stats>& stats) {
  std::vector<std::uint32_t> all;
  for (auto& s : stats) {
    all.insert(all.end(), s.latency_us.begin(), s.latency_us.end());
  }
  Percentiles p;
  p.count = all.size();
  if (all.empty()) {
    return p;
  }
  auto at = [&all](double q) {
    const auto i =
        std::min(all.size() - 1, static_cast<std::size_t>(q * static_cast<double>(all.size())));
    std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i), all.end());
    return static_cast<double>(all[i]) / 1000.0;
  };
  p.p50_ms = at(0.50);
  p.p99_ms = at(0.99);
  return p;
}

Stats merged(const std::vector<Stats>& stats) {
  Stats m;
  for (const auto& s : stats) {
    m.requests += s.requests;
    m.errors += s.errors;
    m.non_2xx += s.non_2xx;
    m.bytes += s.bytes;
    if (m.first_error.empty()) {
      m.first_error = s.first_error;
    }
  }
  return m;
}

// Pids to sample, children included when asked (nginx workers).
struct Sampled {
  std::vector<int> server;
  std::vector<int> dockerd;
};

Sampled sampled_pids(const Options& opt) {
  Sampled s;
  s.server = opt.with_children ? with_children(opt.server_pids) : opt.server_pids;
  s.dockerd = opt.dockerd_pids;
  return s;
}

struct CpuSample {
  std::uint64_t server_us = 0;
  std::uint64_t dockerd_us = 0;
  std::uint64_t client_us = 0;
};

// The generator's own CPU: TLS targets cost the client more than the plain socket does, and
// the client shares the cores with the server.
std::uint64_t self_cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000 +
           static_cast<std::uint64_t>(tv.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

CpuSample sample_cpu(const Sampled& pids) {
  return {cpu_time_us(pids.server), cpu_time_us(pids.dockerd), self_cpu_us()};
}

std::string per_unit(std::uint64_t cpu_us, double units, bool have_pids) {
  if (!have_pids || units <= 0) {
    return "-";
  }
  return fixed(static_cast<double>(cpu_us) / units, 1);
}

// One answer, counted when it came within the measured window [from, end].
void record(Stats& stats, const Response& res, Clock::time_point t0, Clock::time_point t1,
            Clock::time_point from, Clock::time_point end) {
  if (t1 < from || t1 > end) {
    return;
  }
  ++stats.requests;
  stats.bytes += res.body_bytes;
  stats.latency_us.push_back(micros(t1 - t0));
  if (res.status / 100 != 2) {
    ++stats.non_2xx;
  }
}

// ---- keepalive -------------------------------------------------------------------------------

net::awaitable<void> keepalive_worker(SetupPtr setup, Stats* stats, Clock::time_point from,
                                      Clock::time_point end) {
  const auto ex = co_await net::this_coro::executor;
  const std::string req = get_request(setup->opt.path);
  while (Clock::now() < end) {
    Client client(ex);
    const error_code ec = co_await client.open(setup->ep, setup->tls.get());
    if (ec) {
      stats->error("connect", ec);
      co_await sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    while (Clock::now() < end) {
      const auto t0 = Clock::now();
      const auto res = co_await client.request(req, false);
      const auto t1 = Clock::now();
      if (!res) {
        stats->error("request", res.error());
        break;
      }
      record(*stats, *res, t0, t1, from, end);
      if (!res->keep_alive) {
        break;
      }
    }
    client.close();
  }
}

// ---- create ----------------------------------------------------------------------------------

// A container create (counted, its latency measured) and the removal of what it made (not
// counted), over and over on one keep-alive connection: create's cost through a proxy,
// placement and routing included, against dockerd's own.
net::awaitable<void> create_worker(SetupPtr setup, Stats* stats, Clock::time_point from,
                                   Clock::time_point end) {
  const auto ex = co_await net::this_coro::executor;
  const std::string prefix = "/" + setup->opt.api;
  const std::string create = post_request(
      prefix + "/containers/create", R"({"Image":")" + setup->opt.image + R"(","Cmd":["true"]})",
      "");
  Client client(ex);
  if (const error_code ec = co_await client.open(setup->ep, setup->tls.get())) {
    stats->error("connect", ec);
    co_return;
  }
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    const auto res = co_await client.request(create, true);
    const auto t1 = Clock::now();
    if (!res) {
      stats->error("create", res.error());
      break;
    }
    record(*stats, *res, t0, t1, from, end);
    // {"Id":"<64 hex>","Warnings":[]}
    const std::size_t at = res->body.find(R"("Id":")");
    const std::string id = at == std::string::npos ? std::string() : res->body.substr(at + 6, 64);
    if (id.size() != 64) {
      co_await sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const std::string remove = "DELETE " + prefix + "/containers/" + id +
                               "?force=1 HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n";
    if (const auto gone = co_await client.request(remove, false); !gone || !gone->keep_alive) {
      stats->error("remove", gone ? error_code{} : gone.error());
      break;
    }
  }
  client.close();
}

// ---- handshake -------------------------------------------------------------------------------

net::awaitable<void> handshake_worker(SetupPtr setup, Stats* stats, Clock::time_point from,
                                      Clock::time_point end) {
  const auto ex = co_await net::this_coro::executor;
  const std::string req = get_request("/_ping");
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    Client client(ex);
    const error_code ec = co_await client.open(setup->ep, setup->tls.get());
    if (ec) {
      stats->error("connect+handshake", ec);
      co_await sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto res = co_await client.request(req, false);
    client.close();
    const auto t1 = Clock::now();
    if (!res) {
      stats->error("ping", res.error());
      continue;
    }
    if (t1 >= from && t1 <= end) {
      ++stats->requests;
      stats->latency_us.push_back(micros(t1 - t0));
      if (res->status / 100 != 2) {
        ++stats->non_2xx;
      }
    }
  }
}

using Worker = net::awaitable<void> (*)(SetupPtr, Stats*, Clock::time_point, Clock::time_point);

int run_timed(const SetupPtr& setup, Worker worker, const std::string& scenario) {
  const Options& opt = setup->opt;
  Runner runner(opt.threads);
  std::vector<Stats> stats(runner.size());
  const auto pids = sampled_pids(opt);
  const auto from = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(opt.warmup));
  const auto end = from + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(opt.duration));
  for (int i = 0; i < opt.connections; ++i) {
    const auto t = static_cast<std::size_t>(i) % runner.size();
    net::co_spawn(runner.executor(t), worker(setup, &stats[t], from, end), report_exception);
  }
  runner.start();
  std::this_thread::sleep_until(from);
  const CpuSample c0 = sample_cpu(pids);
  std::this_thread::sleep_until(end);
  const CpuSample c1 = sample_cpu(pids);
  const bool finished = runner.wait(end + std::chrono::seconds(15));

  const Stats total = merged(stats);
  const Percentiles p = percentiles(stats);
  const double rate = static_cast<double>(total.requests) / opt.duration;
  const double n = static_cast<double>(total.requests);
  const std::string server_cpu = per_unit(c1.server_us - c0.server_us, n, !pids.server.empty());
  const std::string dockerd_cpu = per_unit(c1.dockerd_us - c0.dockerd_us, n, !pids.dockerd.empty());
  const std::string client_cpu = per_unit(c1.client_us - c0.client_us, n, true);
  // Response body size tells views of different sizes apart (a tenant's list vs everything).
  const std::string body_bytes = per_unit(total.bytes, n, true);
  std::cout << scenario << ' ' << opt.label << ' ' << (scenario == "keepalive" ? opt.path : "")
            << ": " << fixed(rate, 1) << " req/s, p50 " << fixed(p.p50_ms, 3) << " ms, p99 "
            << fixed(p.p99_ms, 3) << " ms, server CPU " << server_cpu << " us/req, dockerd CPU "
            << dockerd_cpu << " us/req, client CPU " << client_cpu << " us/req, " << total.requests
            << " requests, " << total.errors << " errors, " << total.non_2xx << " non-2xx, "
            << body_bytes << " body bytes/req" << std::endl;
  if (!total.first_error.empty()) {
    std::cerr << "berth-bench: first error: " << total.first_error << '\n';
  }
  if (!finished) {
    std::cerr << "berth-bench: some connections did not finish by the hard deadline\n";
  }
  ResultLine()
      .add("scenario", scenario)
      .add("target", opt.label)
      .add("path", scenario == "keepalive" ? opt.path
                   : scenario == "create"  ? std::string("/containers/create")
                                           : std::string("/_ping"))
      .add("conns", opt.connections)
      .add("seconds", fixed(opt.duration, 2))
      .add("requests", total.requests)
      .add("errors", total.errors)
      .add("non2xx", total.non_2xx)
      .add("rate", fixed(rate, 1))
      .add("unit", "req/s")
      .add("p50_ms", fixed(p.p50_ms, 3))
      .add("p99_ms", fixed(p.p99_ms, 3))
      .add("server_cpu_us", server_cpu)
      .add("dockerd_cpu_us", dockerd_cpu)
      .add("client_cpu_us", client_cpu)
      .add("body_bytes", body_bytes)
      .add("first_error", total.first_error)
      .print();
  return total.requests > 0 && finished ? 0 : 1;
}

// ---- exec stream -----------------------------------------------------------------------------

struct ExecResult {
  std::string error;
  std::string exec_id;
  std::uint64_t bytes = 0;  // the command's output (without a TTY: the frames' payload)
  bool framing_ok = true;
  double seconds = 0;
  double time_to_101_ms = 0;
  CpuSample cpu_before;
  CpuSample cpu_after;
  std::string exit_code;
};

std::string json_string_field(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const auto pos = body.find(needle);
  if (pos == std::string::npos) {
    return {};
  }
  const auto start = pos + needle.size();
  const auto stop = body.find('"', start);
  return stop == std::string::npos ? std::string{} : body.substr(start, stop - start);
}

std::string json_raw_field(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const auto pos = body.find(needle);
  if (pos == std::string::npos) {
    return {};
  }
  const auto start = pos + needle.size();
  const auto stop = body.find_first_of(",}", start);
  return body.substr(start, stop - start);
}

// Without a TTY dockerd frames the output (stdcopy): an 8-byte header (stream 1 = stdout, 2 =
// stderr; three zero bytes; a big-endian 32-bit length) before each slice. Counts the payload,
// so a complete stream adds up to what the command wrote, whatever the framing overhead.
class FrameCounter {
 public:
  void feed(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size();) {
      if (payload_left_ > 0) {
        const auto take = static_cast<std::uint32_t>(
            std::min<std::size_t>(payload_left_, bytes.size() - i));
        payload_ += take;
        payload_left_ -= take;
        i += take;
        continue;
      }
      header_[header_len_++] = static_cast<unsigned char>(bytes[i++]);
      if (header_len_ < header_.size()) {
        continue;
      }
      header_len_ = 0;
      if (header_[0] != 1) {
        bad_ = true;  // stderr or a broken frame: the command should only write stdout
      }
      payload_left_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                      (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
    }
  }
  std::uint64_t payload() const { return payload_; }
  /// False when a frame was not stdout or the stream ended inside a frame.
  bool intact() const { return !bad_ && header_len_ == 0 && payload_left_ == 0; }

 private:
  std::array<unsigned char, 8> header_{};
  std::size_t header_len_ = 0;
  std::uint32_t payload_left_ = 0;
  std::uint64_t payload_ = 0;
  bool bad_ = false;
};

net::awaitable<void> exec_session(SetupPtr setup, ExecResult* out, Sampled pids) {
  const auto ex = co_await net::this_coro::executor;
  const Options& opt = setup->opt;
  Client control(ex);
  error_code ec = co_await control.open(setup->ep, setup->tls.get());
  if (ec) {
    out->error = "connect: " + ec.message();
    co_return;
  }
  const std::string tty = opt.tty ? "true" : "false";
  const std::string create_body = R"({"AttachStdout":true,"Tty":)" + tty +
                                  R"(,"Cmd":["head","-c",")" + std::to_string(opt.exec_bytes) +
                                  R"(","/dev/zero"]})";
  const auto created = co_await control.request(
      post_request("/" + opt.api + "/containers/" + opt.container + "/exec", create_body, ""),
      true);
  if (!created) {
    out->error = "exec create: " + created.error().message();
    co_return;
  }
  if (created->status != 201) {
    out->error = "exec create: HTTP " + std::to_string(created->status) + " " + created->body;
    co_return;
  }
  out->exec_id = json_string_field(created->body, "Id");
  if (out->exec_id.empty()) {
    out->error = "exec create: no Id in " + created->body;
    co_return;
  }

  // The docker CLI hijacks on a connection of its own.
  Client stream(ex);
  ec = co_await stream.open(setup->ep, setup->tls.get());
  if (ec) {
    out->error = "connect (start): " + ec.message();
    co_return;
  }
  stream.reserve_read_buffer(256 * 1024);
  out->cpu_before = sample_cpu(pids);
  const auto t0 = Clock::now();
  const auto started = co_await stream.request(
      post_request("/" + opt.api + "/exec/" + out->exec_id + "/start",
                   R"({"Detach":false,"Tty":)" + tty + "}",
                   "Connection: Upgrade\r\nUpgrade: tcp\r\n"),
      true);
  const auto t101 = Clock::now();
  if (!started) {
    out->error = "exec start: " + started.error().message();
    co_return;
  }
  if (started->status != 101) {
    out->error = "exec start: expected 101, got HTTP " + std::to_string(started->status) + " " +
                 started->body;
    co_return;
  }
  out->time_to_101_ms = std::chrono::duration<double, std::milli>(t101 - t0).count();
  if (opt.half_close) {
    // docker exec without -i closes its sending side right after the upgrade.
    ec = co_await stream.close_write();
    if (ec) {
      out->error = "half-close: " + ec.message();
      co_return;
    }
  }
  FrameCounter frames;
  const auto take = [&] {
    if (opt.tty) {
      out->bytes += stream.buffered();
    } else {
      frames.feed(stream.buffered_view());
      out->bytes = frames.payload();
    }
    stream.discard_buffered();
  };
  take();
  for (;;) {
    ec = co_await stream.read_more();
    take();
    if (ec) {
      break;
    }
  }
  if (!opt.tty && !frames.intact()) {
    out->framing_ok = false;
    out->error = "stream framing: a frame was not stdout, or the stream ended inside one";
  }
  const auto t1 = Clock::now();
  out->cpu_after = sample_cpu(pids);
  out->seconds = std::chrono::duration<double>(t1 - t101).count();
  if (ec != net::error::eof) {
    out->error = "stream read: " + ec.message();
  }
  stream.close();

  // Exit status, on a fresh connection (a proxy may have closed the idle control one).
  control.close();
  Client inspect(ex);
  ec = co_await inspect.open(setup->ep, setup->tls.get());
  if (!ec) {
    const auto info = co_await inspect.request(
        get_request("/" + opt.api + "/exec/" + out->exec_id + "/json"), true);
    if (info && info->status == 200) {
      out->exit_code = json_raw_field(info->body, "ExitCode");
      if (json_raw_field(info->body, "Running") == "true") {
        out->exit_code = "running";
      }
    }
  }
  inspect.close();
}

int run_exec(const SetupPtr& setup) {
  const Options& opt = setup->opt;
  if (opt.container.empty()) {
    std::cerr << "berth-bench: exec needs --container ID (a running container)\n";
    return 2;
  }
  Runner runner(1);
  ExecResult result;
  const auto pids = sampled_pids(opt);
  net::co_spawn(runner.executor(0), exec_session(setup, &result, pids), report_exception);
  runner.start();
  const bool finished = runner.wait(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(opt.timeout)));
  if (!finished && result.error.empty()) {
    result.error = "timed out after " + fixed(opt.timeout, 0) + " s";
  }
  const bool complete = result.bytes == opt.exec_bytes && result.framing_ok;
  const double mb = static_cast<double>(result.bytes) / 1e6;
  const double rate = result.seconds > 0 ? mb / result.seconds : 0;
  const std::string server_cpu =
      per_unit(result.cpu_after.server_us - result.cpu_before.server_us, mb, !pids.server.empty());
  const std::string dockerd_cpu = per_unit(
      result.cpu_after.dockerd_us - result.cpu_before.dockerd_us, mb, !pids.dockerd.empty());
  const std::string client_cpu =
      per_unit(result.cpu_after.client_us - result.cpu_before.client_us, mb, true);
  std::cout << "exec " << opt.label << (opt.tty ? "" : " (no TTY)")
            << (opt.half_close ? " (client half-closes)" : "") << ": "
            << fixed(rate, 1) << " MB/s, " << result.bytes << " of " << opt.exec_bytes
            << " bytes in " << fixed(result.seconds, 3) << " s, 101 after "
            << fixed(result.time_to_101_ms, 2) << " ms, server CPU " << server_cpu
            << " us/MB, dockerd CPU " << dockerd_cpu << " us/MB, exit code "
            << (result.exit_code.empty() ? "?" : result.exit_code) << std::endl;
  if (!complete) {
    std::cerr << "berth-bench: *** BYTE COUNT MISMATCH on " << opt.label << ": received "
              << result.bytes << " bytes, the exec wrote " << opt.exec_bytes << " ***\n";
  }
  if (!result.error.empty()) {
    std::cerr << "berth-bench: exec " << opt.label << ": " << result.error << '\n';
  }
  ResultLine()
      .add("scenario", std::string(opt.half_close ? "exec-halfclose" : "exec") +
                           (opt.tty ? "" : "-notty"))
      .add("target", opt.label)
      .add("bytes", result.bytes)
      .add("expected", opt.exec_bytes)
      .add("complete", complete ? 1 : 0)
      .add("seconds", fixed(result.seconds, 3))
      .add("rate", fixed(rate, 1))
      .add("unit", "MB/s")
      .add("p50_ms", "-")
      .add("p99_ms", "-")
      .add("time_to_101_ms", fixed(result.time_to_101_ms, 2))
      .add("server_cpu_us", server_cpu)
      .add("dockerd_cpu_us", dockerd_cpu)
      .add("client_cpu_us", client_cpu)
      .add("exit_code", result.exit_code)
      .add("first_error", result.error)
      .print();
  return complete && result.error.empty() ? 0 : 3;
}

// ---- idle connections ------------------------------------------------------------------------

using Held = std::vector<std::unique_ptr<Client>>;

net::awaitable<void> idle_opener(SetupPtr setup, Stats* stats, Held* held, int count) {
  const auto ex = co_await net::this_coro::executor;
  const std::string req = get_request("/_ping");
  for (int i = 0; i < count; ++i) {
    auto client = std::make_unique<Client>(ex);
    const error_code ec = co_await client->open(setup->ep, setup->tls.get());
    if (ec) {
      stats->error("connect+handshake", ec);
      continue;
    }
    const auto res = co_await client->request(req, false);
    if (!res) {
      stats->error("ping", res.error());
      continue;
    }
    if (res->status / 100 != 2) {
      ++stats->non_2xx;
      continue;
    }
    ++stats->requests;
    held->push_back(std::move(client));
  }
}

// Pings every held connection once more: did the server keep them all?
net::awaitable<void> idle_check(Stats* stats, Held* held) {
  const std::string req = get_request("/_ping");
  for (auto& client : *held) {
    const auto res = co_await client->request(req, false);
    if (res && res->status / 100 == 2) {
      ++stats->requests;
    } else {
      ++stats->errors;
    }
  }
}

int run_idle(const SetupPtr& setup) {
  const Options& opt = setup->opt;
  if (!setup->ep.tls) {
    std::cerr << "berth-bench: idle measures TLS connections; the target is not https\n";
    return 2;
  }
  if (opt.server_pids.empty()) {
    std::cerr << "berth-bench: idle needs --server-pid\n";
    return 2;
  }
  Runner runner(opt.threads);
  std::vector<Stats> stats(runner.size());
  std::vector<Held> held(runner.size());
  const auto pids = sampled_pids(opt);
  const std::uint64_t before = rss_kib(pids.server);
  const std::uint64_t pss_before = pss_kib(pids.server);
  const std::uint64_t dockerd_before = rss_kib(pids.dockerd);
  const int workers = std::max(1, std::min(opt.connections, opt.idle));
  for (int w = 0; w < workers; ++w) {
    const int count = opt.idle / workers + (w < opt.idle % workers ? 1 : 0);
    const auto t = static_cast<std::size_t>(w) % runner.size();
    net::co_spawn(runner.executor(t), idle_opener(setup, &stats[t], &held[t], count),
                  report_exception);
  }
  const auto t0 = Clock::now();
  runner.start();
  const bool opened_in_time = runner.wait(
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.timeout)));
  const double open_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.settle));
  const std::uint64_t after = rss_kib(pids.server);
  const std::uint64_t pss_after = pss_kib(pids.server);
  const std::uint64_t dockerd_after = rss_kib(pids.dockerd);
  const Stats opening = merged(stats);

  std::vector<Stats> checks(runner.size());
  if (opened_in_time) {
    for (std::size_t t = 0; t < runner.size(); ++t) {
      net::co_spawn(runner.executor(t), idle_check(&checks[t], &held[t]), report_exception);
    }
    runner.start();
    runner.wait(Clock::now() + std::chrono::seconds(30));
  }
  const Stats alive = merged(checks);
  held.clear();

  const auto opened = opening.requests;
  const double delta = static_cast<double>(after) - static_cast<double>(before);
  const double per_conn = opened > 0 ? delta / static_cast<double>(opened) : 0;
  // The same growth by proportional set size (nginx's workers share pages with its master).
  const double pss_per_conn =
      opened > 0
          ? (static_cast<double>(pss_after) - static_cast<double>(pss_before)) /
                static_cast<double>(opened)
          : 0;
  const double dockerd_delta =
      static_cast<double>(dockerd_after) - static_cast<double>(dockerd_before);
  const std::string dockerd_per_conn = pids.dockerd.empty() || opened == 0
                                           ? "-"
                                           : fixed(dockerd_delta / static_cast<double>(opened), 2);
  std::cout << "idle " << opt.label << ": " << opened << " of " << opt.idle << " connections open ("
            << fixed(open_seconds, 2) << " s), " << alive.requests
            << " still answering; server RSS " << before << " -> " << after
            << " KiB = " << fixed(per_conn, 2) << " KiB/conn; PSS " << pss_before << " -> "
            << pss_after << " KiB = " << fixed(pss_per_conn, 2) << " KiB/conn; over "
            << pids.server.size()
            << " processes; dockerd " << dockerd_per_conn << " KiB/conn" << std::endl;
  if (!opening.first_error.empty()) {
    std::cerr << "berth-bench: first error: " << opening.first_error << '\n';
  }
  ResultLine()
      .add("scenario", "idle")
      .add("target", opt.label)
      .add("conns", opt.idle)
      .add("opened", opened)
      .add("alive", alive.requests)
      .add("errors", opening.errors + opening.non_2xx)
      .add("open_seconds", fixed(open_seconds, 2))
      .add("rss_before_kib", before)
      .add("rss_after_kib", after)
      .add("pss_before_kib", pss_before)
      .add("pss_after_kib", pss_after)
      .add("pss_kib_per_conn", fixed(pss_per_conn, 2))
      .add("rate", fixed(per_conn, 2))
      .add("unit", "KiB/conn")
      .add("p50_ms", "-")
      .add("p99_ms", "-")
      .add("server_cpu_us", "-")
      .add("dockerd_kib_per_conn", dockerd_per_conn)
      .add("first_error", opening.first_error)
      .print();
  return opened == static_cast<std::uint64_t>(opt.idle) && alive.requests == opened ? 0 : 1;
}

// ---- command line ----------------------------------------------------------------------------

void usage() {
  std::cerr <<
      R"(usage: berth-bench --scenario keepalive|handshake|create|exec|idle --target TARGET [options]
  TARGET               unix:/var/run/docker.sock (plain HTTP) or https://IP:PORT (mTLS)
  --ca/--cert/--key F  client TLS material for https targets
  --label NAME         target name printed in the result line (default: the target)
  --server-pid P[,P]   processes whose CPU time / RSS is the server's cost
  --with-children      add the direct children of --server-pid (nginx workers)
  --dockerd-pid P      dockerd, reported in its own column
  --connections N      keep-alive connections / handshake workers / idle openers (32)
  --duration S         measured seconds (5), after --warmup S (0.5)
  --path PATH          keepalive request path (/_ping)
  --image REF          create: the image of each container (berth-test/busybox:latest);
                       each create's container is removed after it (not counted)
  --container ID       exec: running container; --bytes N (314572800); --no-half-close;
                       --no-tty (dockerd frames the output; the payload is counted)
  --idle K             idle: connections to hold (1000); --settle S before reading RSS (1)
  --threads N          client threads, one io_context each (2); --timeout S hard limit (120)
)";
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options opt;
  std::map<std::string, std::string*> strings = {
      {"--target", &opt.target},      {"--ca", &opt.ca},
      {"--cert", &opt.cert},          {"--key", &opt.key},
      {"--scenario", &opt.scenario},  {"--label", &opt.label},
      {"--path", &opt.path},          {"--api", &opt.api},
      {"--container", &opt.container}, {"--image", &opt.image}};
  std::map<std::string, int*> ints = {
      {"--connections", &opt.connections}, {"--threads", &opt.threads}, {"--idle", &opt.idle}};
  std::map<std::string, double*> doubles = {{"--duration", &opt.duration},
                                            {"--warmup", &opt.warmup},
                                            {"--settle", &opt.settle},
                                            {"--timeout", &opt.timeout}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return std::nullopt;
    }
    if (arg == "--with-children") {
      opt.with_children = true;
      continue;
    }
    if (arg == "--no-half-close") {
      opt.half_close = false;
      continue;
    }
    if (arg == "--no-tty") {
      opt.tty = false;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "berth-bench: " << arg << " needs a value\n";
      return std::nullopt;
    }
    const std::string value = argv[++i];
    try {
      if (const auto s = strings.find(arg); s != strings.end()) {
        *s->second = value;
      } else if (const auto n = ints.find(arg); n != ints.end()) {
        *n->second = std::stoi(value);
      } else if (const auto d = doubles.find(arg); d != doubles.end()) {
        *d->second = std::stod(value);
      } else if (arg == "--bytes") {
        opt.exec_bytes = std::stoull(value);
      } else if (arg == "--server-pid") {
        if (!parse_pid_list(value, opt.server_pids)) {
          throw std::invalid_argument("pid list");
        }
      } else if (arg == "--dockerd-pid") {
        if (!parse_pid_list(value, opt.dockerd_pids)) {
          throw std::invalid_argument("pid list");
        }
      } else {
        std::cerr << "berth-bench: unknown option " << arg << '\n';
        return std::nullopt;
      }
    } catch (const std::exception&) {
      std::cerr << "berth-bench: bad value for " << arg << ": " << value << '\n';
      return std::nullopt;
    }
  }
  if (opt.target.empty() || opt.scenario.empty() || opt.connections < 1 || opt.threads < 1 ||
      opt.idle < 1 || opt.duration <= 0 || opt.warmup < 0) {
    return std::nullopt;
  }
  if (opt.label.empty()) {
    opt.label = opt.target;
  }
  return opt;
}

// 1000 idle connections plus the servers' share need more than the default 1024 descriptors.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int run(int argc, char** argv) {
  auto parsed = parse_args(argc, argv);
  if (!parsed) {
    usage();
    return 2;
  }
  auto setup = std::make_shared<Setup>();
  setup->opt = std::move(*parsed);
  auto ep = parse_target(setup->opt.target);
  if (!ep) {
    std::cerr << "berth-bench: " << ep.error() << '\n';
    return 2;
  }
  setup->ep = std::move(*ep);
  if (setup->ep.tls) {
    if (setup->opt.ca.empty() || setup->opt.cert.empty() || setup->opt.key.empty()) {
      std::cerr << "berth-bench: https targets need --ca, --cert and --key\n";
      return 2;
    }
    auto tls = make_client_tls(setup->opt.ca, setup->opt.cert, setup->opt.key);
    if (!tls) {
      std::cerr << "berth-bench: " << tls.error() << '\n';
      return 2;
    }
    setup->tls = std::move(*tls);
  }
  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);  // a server closing mid-write is an error code, not a signal
  const std::string& scenario = setup->opt.scenario;
  const SetupPtr shared = setup;
  if (scenario == "keepalive") {
    return run_timed(shared, keepalive_worker, scenario);
  }
  if (scenario == "create") {
    return run_timed(shared, create_worker, scenario);
  }
  if (scenario == "handshake") {
    if (!shared->ep.tls) {
      std::cerr << "berth-bench: handshake measures TLS; the target is not https\n";
      return 2;
    }
    return run_timed(shared, handshake_worker, scenario);
  }
  if (scenario == "exec") {
    return run_exec(shared);
  }
  if (scenario == "idle") {
    return run_idle(shared);
  }
  std::cerr << "berth-bench: unknown scenario " << scenario << '\n';
  usage();
  return 2;
}

}  // namespace

}  // namespace berth::bench

int main(int argc, char** argv) {
  return berth::bench::run(argc, argv);
}
