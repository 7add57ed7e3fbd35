// Live migration (issue #16) on the test fleet: berth-node on each host, berth-proxy driving
// it, the operator asking with berthctl migrate, a tenant's application carrying on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "tests/support/fleet.hpp"
#include "tests/support/log_tail.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/text.hpp"

#ifndef BERTH_NODE_BIN
#define BERTH_NODE_BIN "berth-node"
#endif

using berth::test::BackgroundProcess;
using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::RunOptions;
using berth::test::RunResult;
using berth::test::test_image;
using berth::test::TestFleet;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

constexpr const char* cli = "/usr/local/bin/docker";

// Joins a thread still running when its scope ends (a REQUIRE failed before the join), after
// `first` has told it to end.
struct JoinOnExit {
  std::thread& thread;
  std::function<void()> first;

  JoinOnExit(std::thread& t, std::function<void()> f) : thread(t), first(std::move(f)) {}

  JoinOnExit(const JoinOnExit&) = delete;
  JoinOnExit& operator=(const JoinOnExit&) = delete;

  ~JoinOnExit() {
    if (thread.joinable()) {
      first();
      thread.join();
    }
  }
};

// A port no one listens on now (the kernel's choice for an ephemeral bind).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  const auto port = static_cast<unsigned>(a.sin_port);  // network order
  return static_cast<int>(((port & 0xffU) << 8) | (port >> 8));
}

std::string node_bin() {
  const char* env = std::getenv("BERTH_NODE_BIN");
  return env != nullptr ? env : BERTH_NODE_BIN;
}

// The fleet's hosts in the policy, each with its berth-node on loopback; the proxy reaches
// the nodes with the operator's certificate (a real deployment gives berth one of its own).
std::string hosts_with_nodes(const TestFleet& fleet, const std::vector<int>& ports) {
  std::string yaml;
  for (int h = 0; h < fleet.size(); ++h) {
    yaml += fleet.policy_host(h) + "    node:\n      url: tls://127.0.0.1:" +
            std::to_string(ports[static_cast<std::size_t>(h)]) +
            "\n      ca: ca/ca.pem\n      cert: operator/cert.pem\n      key: operator/key.pem\n";
  }
  return yaml;
}

// berth on the fleet, with its nodes, and room for every test container on either host.
ProxyOptions options_with_nodes(const TestFleet& fleet, const std::vector<int>& ports) {
  ProxyOptions options;
  options.hosts = hosts_with_nodes(fleet, ports);
  options.policy_extra = "placement: {cpu_overcommit: 8}\n";
  return options;
}

// One host's berth-node, serving until the test ends; `data_root` is what it believes dockerd's
// data root to be.
BackgroundProcess start_node(const ProxyUnderTest& p, const TestFleet& fleet, int host, int port,
                             const std::string& data_root) {
  const std::string h = std::to_string(host);
  const auto log = p.dir() / ("node-h" + h + ".log");
  BackgroundProcess node(
      {node_bin(), "--listen", "127.0.0.1:" + std::to_string(port), "--cert",
       (p.ca_dir() / "server-cert.pem").string(), "--key", (p.ca_dir() / "server-key.pem").string(),
       "--client-ca", (p.ca_dir() / "ca.pem").string(), "--docker", fleet.url(host), "--data-root",
       data_root, "--exec-root", "/run/bf-" + fleet.id() + "/h" + h, "--state",
       (p.dir() / ("node-h" + h)).string(), "--criu", "/opt/berth/bin/criu"},
      log);
  const auto ready = berth::test::wait_for_line(log, std::regex("listening on"),
                                                std::chrono::seconds(10),
                                                [&node] { return node.running(); });
  INFO(berth::test::tail_lines(log, 20));
  REQUIRE(ready);
  return node;
}

std::string data_root(const TestFleet& fleet, int host) {
  return "/var/lib/bf-" + fleet.id() + "/h" + std::to_string(host);
}

int host_of(const TestFleet& fleet, const ProxyUnderTest& p, const std::string& name) {
  for (int h = 0; h < fleet.size(); ++h) {
    const auto r = fleet.docker(h, {"ps", "-q", "--filter", "label=" + p.tenant_label(),
                                    "--filter", "name=_" + name + "$"});
    if (!trim(r.out).empty()) {
      return h;
    }
  }
  return -1;
}

RunResult migrate(const ProxyUnderTest& p, const std::string& container, int to) {
  return p.berthctl({"migrate", container, "--to", "h" + std::to_string(to), "--url",
                     "tcp://127.0.0.1:" + std::to_string(p.port()), "--cert-path",
                     p.operator_bundle().string()});
}

// berth's stored name of the tenant's container (what the operator sees on the hosts).
std::string stored_name(const TestFleet& fleet, int host, const ProxyUnderTest& p,
                        const std::string& name) {
  const auto r = fleet.docker(host, {"ps", "--filter", "label=" + p.tenant_label(), "--filter",
                                     "name=_" + name + "$", "--format", "{{.Names}}"});
  return trim(r.out);
}

// A count the app wrote, or -1 for anything else (a read between its truncation and write).
long number(const std::string& text) {
  const std::string t = trim(text);
  long n = -1;
  const auto [end, err] = std::from_chars(t.data(), t.data() + t.size(), n);
  return err == std::errc() && end == t.data() + t.size() && !t.empty() ? n : -1;
}

long counter(const ProxyUnderTest& p) {
  for (int attempt = 0;; ++attempt) {
    const auto r = p.docker(cli, p.tenant_bundle(), {"exec", "app", "cat", "/dev/shm/count"});
    INFO(describe(r));
    REQUIRE(r.ok());
    if (number(r.out) >= 0 || attempt == 4) {
      return number(r.out);
    }
  }
}

// True once `ready` holds, checked every 200 ms for at most `limit`.
template <typename F>
bool eventually(std::chrono::seconds limit, F&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

// The states of every copy of the tenant's container `name` on the fleet's hosts, as the
// operator sees them there ("running", "created", "exited"...).
std::vector<std::string> copies(const TestFleet& fleet, const ProxyUnderTest& p,
                                const std::string& name) {
  std::vector<std::string> out;
  for (int h = 0; h < fleet.size(); ++h) {
    const auto r = fleet.docker(h, {"ps", "-a", "--filter", "label=" + p.tenant_label(),
                                    "--filter", "name=_" + name + "$", "--format", "{{.State}}"});
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (!trim(line).empty()) {
        out.push_back(trim(line));
      }
    }
  }
  return out;
}

// Whether host `h` holds a migration's twin now (berth's label on it).
bool twin_on(const TestFleet& fleet, int h) {
  return !trim(fleet.docker(h, {"ps", "-aq", "--filter", "label=berth.migrated-from"}).out).empty();
}

}  // namespace

TEST_CASE("a container moved by berthctl migrate keeps its name, address, memory, files and "
          "open TCP connection, a failed restore rolls it back, a drain empties a cordoned host, "
          "and what cannot move stays put",
          "[fleet][migrate]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  const std::vector<int> ports{free_port(), free_port()};
  ProxyUnderTest p(options_with_nodes(fleet, ports));
  auto tenant = [&](const std::vector<std::string>& args) {
    return p.docker(cli, p.tenant_bundle(), args);
  };
  REQUIRE(tenant({"network", "create", "appnet"}).ok());
  auto r = tenant({"run", "-d", "--name", "app", "--network", "appnet", test_image, "sh", "-c",
                   "trap 'exit 42' USR1; echo booted | tee -a /boots; "
                   "(while true; do nc -l -p 7000 -e sh -c "
                   "'while true; do echo tick; sleep 0.2; done'; done) & "
                   "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.1; done"});
  INFO(describe(r));
  REQUIRE(r.ok());
  // A client holding one TCP connection to the app: nc ends (and its container stops) if the
  // connection breaks.
  r = tenant({"run", "-d", "--name", "client", "--network", "appnet", test_image, "sh", "-c",
              "sleep 1; nc app 7000 > /ticks"});
  REQUIRE(r.ok());
  // A `docker wait` on the app, held through the rollback and every move below: it ends with
  // the app's own exit at the end (42, on SIGUSR1), not with the dump's 137 at the first move.
  RunResult waited;
  std::thread waiter([&] {
    RunOptions patient;
    patient.timeout = std::chrono::minutes(15);
    waited = p.docker(cli, p.tenant_bundle(), {"wait", "app"}, patient);
  });
  // And a `docker logs -f` on it, held as long: it goes on with what the app writes where it
  // runs after each move, none of it twice, and ends with the app's exit.
  RunResult followed;
  std::thread follower([&] {
    RunOptions patient;
    patient.timeout = std::chrono::minutes(15);
    followed = p.docker(cli, p.tenant_bundle(), {"logs", "-f", "app"}, patient);
  });
  const JoinOnExit end_follow{follower, [] {}};  // ends with the app, which end_wait ends
  const JoinOnExit end_wait{waiter, [&] { (void)tenant({"kill", "-s", "USR1", "app"}); }};
  const std::string address_before = trim(
      tenant({"inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "app"})
          .out);
  REQUIRE_FALSE(address_before.empty());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int home = host_of(fleet, p, "app");
  REQUIRE(home >= 0);
  const int away = 1 - home;
  const std::string stored = stored_name(fleet, home, p, "app");
  BackgroundProcess home_node = start_node(p, fleet, home, ports[static_cast<std::size_t>(home)],
                                           data_root(fleet, home));
  // The other host's node is misconfigured at first: it puts checkpoints where its dockerd
  // never looks.
  BackgroundProcess away_node = start_node(p, fleet, away, ports[static_cast<std::size_t>(away)],
                                           (p.dir() / "not-the-data-root").string());

  {  // A tenant cannot ask for a migration.
    r = p.berthctl({"migrate", stored, "--to", "h" + std::to_string(1 - home), "--url",
                    "tcp://127.0.0.1:" + std::to_string(p.port()), "--cert-path",
                    p.tenant_bundle().string()});
    CHECK(r.exit_code == 1);
    CHECK(host_of(fleet, p, "app") == home);
  }

  // Away while the node there is misconfigured: the restore fails after the dump, and the app
  // is rolled back onto its host from its checkpoint, still counting from where it was.
  {
    const long before = counter(p);
    r = migrate(p, stored, away);
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("rolled back") &&
                          Contains("runs again on h" + std::to_string(home)) &&
                          Contains(" ms after the failure"));
    CHECK(host_of(fleet, p, "app") == home);
    const long after = counter(p);
    CHECK(after >= before);  // its memory, not a restart
    CHECK(trim(tenant({"exec", "app", "cat", "/boots"}).out) == "booted");
    // Nothing of the failed twin is left on h1.
    CHECK(trim(fleet.docker(away, {"ps", "-aq", "--filter", "label=" + p.tenant_label(),
                                   "--filter", "name=_app$"})
                   .out)
              .empty());
  }
  away_node.stop(SIGTERM, std::chrono::seconds(2));
  away_node = start_node(p, fleet, away, ports[static_cast<std::size_t>(away)],
                         data_root(fleet, away));

  // The id the tenant knows its app by, which it keeps wherever the app runs.
  const std::string known_id = trim(tenant({"inspect", "-f", "{{.Id}}", "app"}).out);
  REQUIRE(known_id.size() == 64);
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    home = host_of(fleet, p, "app");
    const int to = 1 - home;
    const long before = counter(p);
    // The tenant keeps asking the app for its counter while it moves: a request that comes
    // during the switch waits for it and reaches the app where it runs, none fails.
    std::atomic<bool> moving{true};
    std::vector<RunResult> during;
    std::thread asker([&] {
      while (moving.load()) {
        during.push_back(tenant({"exec", "app", "cat", "/dev/shm/count"}));
      }
    });
    // The tenant's `docker events` (for 12 s: the migration ends well within) say that it
    // moved, under the id it knows, and nothing of the steps on the hosts: no die, create,
    // start or destroy of either copy. Filtered on the app, they say it moved.
    // Another tenant's, unfiltered, say nothing of it.
    RunResult events;
    RunResult on_app;
    RunResult strangers;
    const auto listen = [&](const std::filesystem::path& bundle, std::vector<std::string> filters) {
      std::vector<std::string> args{"12", cli, "events", "--format",
                                    "{{.Actor.Attributes.name}} {{.Action}} {{.Actor.ID}}"};
      args.insert(args.end(), filters.begin(), filters.end());
      return p.docker("/usr/bin/timeout", bundle, args);
    };
    std::thread listener([&] {
      std::vector<std::string> lifecycle;
      for (const char* action : {"create", "start", "kill", "die", "stop", "destroy", "moved"}) {
        lifecycle.insert(lifecycle.end(), {"--filter", std::string("event=") + action});
      }
      events = listen(p.tenant_bundle(), lifecycle);
    });
    std::thread app_listener([&] {
      on_app = listen(p.tenant_bundle(), {"--filter", "container=app", "--filter", "event=moved"});
    });
    std::thread stranger([&] {
      if (round == 0) {
        strangers = listen(p.other_tenant_bundle(), {});
      }
    });
    // An exec session open through the move is ended, and its client told why.
    RunResult session;
    std::thread exec_session([&] {
      if (round == 0) {
        session = tenant({"exec", "app", "sh", "-c", "echo started; sleep 60"});
      }
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    r = migrate(p, stored, to);
    moving.store(false);
    asker.join();
    listener.join();
    app_listener.join();
    stranger.join();
    exec_session.join();
    if (round == 0) {
      INFO(describe(session));
      CHECK(trim(session.out) == "started");
      CHECK_THAT(session.err, Contains("berth: this session ended because its container is "
                                       "moving to another host"));
    }
    {
      // The migration's own outcome first: the events below say nothing of one that failed.
      INFO(describe(r));
      INFO(berth::test::tail_lines(p.log_file(), 30));
      REQUIRE(r.ok());
    }
    {
      INFO(describe(events));
      CHECK(trim(events.out) == "app moved " + known_id);
      INFO(describe(on_app));
      CHECK(trim(on_app.out) == "app moved " + known_id);
      CHECK(trim(strangers.out).empty());
    }
    CHECK(during.size() >= 2);
    for (const RunResult& asked : during) {
      INFO(describe(asked));
      CHECK(asked.ok());
    }
    const auto figures = nlohmann::json::parse(r.out);
    CHECK(figures["To"] == "h" + std::to_string(to));
    CHECK(figures["downtime_ms"].get<long>() > 0);
    CHECK(host_of(fleet, p, "app") == to);
    // Same name and address, its memory carried on, its writable layer with it, one boot.
    const long after = counter(p);
    CHECK(after >= before);
    CHECK(trim(tenant({"exec", "app", "cat", "/boots"}).out) == "booted");
    // Its log came along: what it wrote before the move, once.
    CHECK(trim(tenant({"logs", "app"}).out) == "booted");
    // The same id: inspected, listed, filtered on, named in a request, in its stats.
    CHECK(figures["TenantId"] == known_id);
    CHECK(figures["Id"] != known_id);
    CHECK(trim(tenant({"inspect", "-f", "{{.Id}}", "app"}).out) == known_id);
    CHECK(trim(tenant({"ps", "-q", "--no-trunc", "--filter", "name=^app$"}).out) == known_id);
    CHECK(trim(tenant({"ps", "--format", "{{.Names}}", "--filter",
                       "id=" + known_id.substr(0, 12)}).out) == "app");
    CHECK(trim(tenant({"exec", known_id.substr(0, 12), "cat", "/boots"}).out) == "booted");
    CHECK(trim(tenant({"stats", "--no-stream", "--format", "{{.ID}} {{.Name}}", "app"}).out) ==
          known_id.substr(0, 12) + " app");
    CHECK(trim(tenant({"inspect", "-f",
                       "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "app"})
                   .out) == address_before);
    const auto listed = tenant({"ps", "--format", "{{.Names}}"});
    CHECK(trim(listed.out).find("app") != std::string::npos);
    // The client's one connection is alive: still running, ticks still arriving.
    const auto ticks = [&] {
      return std::stol(trim(tenant({"exec", "client", "sh", "-c", "wc -l < /ticks"}).out));
    };
    const long t0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(ticks() > t0);
    CHECK(trim(tenant({"inspect", "-f", "{{.State.Running}}", "client"}).out) == "true");
    // The source is gone from its host, and no checkpoint is left behind by the nodes.
    CHECK(trim(fleet.docker(home, {"ps", "-aq", "--filter", "label=" + p.tenant_label(),
                                   "--filter", "name=_app$"})
                   .out)
              .empty());
  }
  for (int h = 0; h < 2; ++h) {
    CHECK(std::filesystem::is_empty(p.dir() / ("node-h" + std::to_string(h)) / "ckpt"));
  }
  // A line the app writes now, after the rollback and both moves, reaches the `docker logs -f`
  // started before them.
  REQUIRE(tenant({"exec", "app", "sh", "-c", "echo after > /proc/1/fd/1"}).ok());

  // What cannot move is said, and it stays where it runs.
  REQUIRE(tenant({"run", "-d", "-t", "--name", "term", test_image, "sh"}).ok());
  const int term_home = host_of(fleet, p, "term");
  r = migrate(p, stored_name(fleet, term_home, p, "term"), 1 - term_home);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("cannot move") && Contains("TTY"));
  CHECK(host_of(fleet, p, "term") == term_home);
  CHECK(trim(tenant({"inspect", "-f", "{{.State.Running}}", "term"}).out) == "true");

  // A drain takes every container off a cordoned host, one at a time, and says what stays.
  const int drained = host_of(fleet, p, "app");
  const std::string drained_name = "h" + std::to_string(drained);
  r = p.berthctl({"host", "drain", drained_name, "--url",
                  "tcp://127.0.0.1:" + std::to_string(p.port()), "--cert-path",
                  p.operator_bundle().string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("not cordoned"));
  r = p.berthctl({"host", "cordon", drained_name, p.policy_file().string()});
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK_THAT(p.reload(), Contains("policy reloaded"));
  const long before_drain = counter(p);
  r = p.berthctl({"host", "drain", drained_name, "--url",
                  "tcp://127.0.0.1:" + std::to_string(p.port()), "--cert-path",
                  p.operator_bundle().string()});
  INFO(describe(r));
  REQUIRE(r.ok());
  const auto report = nlohmann::json::parse(r.out);
  CHECK(host_of(fleet, p, "app") == 1 - drained);
  CHECK(counter(p) >= before_drain);
  CHECK(trim(tenant({"exec", "app", "cat", "/boots"}).out) == "booted");
  bool app_moved = false;
  for (const auto& m : report["Moved"]) {
    app_moved = app_moved || m["Name"] == stored;
  }
  CHECK(app_moved);
  if (term_home == drained) {
    REQUIRE(report["Stayed"].size() == 1);
    CHECK_THAT(report["Stayed"][0]["Reason"].get<std::string>(), Contains("TTY"));
  }
  CHECK(trim(fleet.docker(drained, {"ps", "-q", "--filter", "label=" + p.tenant_label(),
                                    "--filter", "name=_app$"})
                 .out)
            .empty());

  // The wait held since the start is still waiting, and answers the app's own exit.
  CHECK(trim(tenant({"inspect", "-f", "{{.State.Running}}", "app"}).out) == "true");
  REQUIRE(tenant({"kill", "-s", "USR1", "app"}).ok());
  waiter.join();
  INFO(describe(waited));
  CHECK(waited.ok());
  CHECK(trim(waited.out) == "42");
  // The log stream followed the app through the rollback and every move, and the drain's:
  // its boot line once, the line written after the moves, nothing else.
  follower.join();
  INFO(describe(followed));
  CHECK(followed.ok());
  CHECK(followed.out == "booted\nafter\n");
}

TEST_CASE("a migration cut by a kill of berth-proxy or of a berth-node is finished or undone "
          "once they are back: one copy runs, with its memory, and no checkpoint is left",
          "[fleet][migrate]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  const std::vector<int> ports{free_port(), free_port()};
  ProxyUnderTest p(options_with_nodes(fleet, ports));
  auto tenant = [&](const std::vector<std::string>& args) {
    return p.docker(cli, p.tenant_bundle(), args);
  };
  REQUIRE(tenant({"network", "create", "appnet"}).ok());
  auto r = tenant({"run", "-d", "--name", "app", "--network", "appnet", "--restart",
                   "unless-stopped", test_image, "sh", "-c",
                   "echo booted >> /boots; "
                   "(while true; do nc -l -p 7000 -e echo tick; done) & "
                   "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.1; done"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const int home = host_of(fleet, p, "app");
  REQUIRE(home >= 0);
  const int away = 1 - home;
  const std::string stored = stored_name(fleet, home, p, "app");
  std::vector<BackgroundProcess> nodes;
  for (int h = 0; h < 2; ++h) {
    nodes.push_back(start_node(p, fleet, h, ports[static_cast<std::size_t>(h)], data_root(fleet, h)));
  }
  // A migration started in the background; `cut` runs once its twin exists on the target.
  // What berthctl said.
  const auto cut_migration = [&](const std::function<void()>& cut) {
    RunResult moved;
    std::thread operator_thread([&] { moved = migrate(p, stored, away); });
    const bool twin = eventually(std::chrono::seconds(60), [&] { return twin_on(fleet, away); });
    cut();
    operator_thread.join();
    CHECK(twin);
    return moved;
  };
  // Exactly one copy, running, with the memory and files it had: never two, never none.
  // `steps`: the recovery steps berth must have logged as done ("discard|rollback"); empty
  // when the proxy undid the migration itself.
  const auto one_copy_runs = [&](long before, const std::string& steps) {
    const bool settled = eventually(std::chrono::seconds(30), [&] {
      return copies(fleet, p, "app") == std::vector<std::string>{"running"};
    });
    INFO(berth::test::tail_lines(p.log_file(), 30));
    INFO(berth::test::tail_lines(p.dir() / "node-h0.log", 10));
    INFO(berth::test::tail_lines(p.dir() / "node-h1.log", 10));
    REQUIRE(settled);
    if (!steps.empty()) {
      CHECK(eventually(std::chrono::seconds(10), [&] {
        return berth::test::count_lines(
                   p.log_file(),
                   std::regex("migration recovery: (" + steps + ") [0-9a-f]+ on h[01]: 200")) > 0;
      }));
    }
    CHECK(eventually(std::chrono::seconds(15), [&] {
      const auto c = tenant({"exec", "app", "cat", "/dev/shm/count"});
      return c.ok() && number(c.out) >= before;
    }));
    CHECK(trim(tenant({"exec", "app", "cat", "/boots"}).out) == "booted");
    // New connections are let in again, and the restart policy is the tenant's again.
    const auto probe = tenant({"run", "--rm", "--network", "appnet", test_image, "sh", "-c",
                               "nc -w 3 app 7000"});
    INFO(describe(probe));
    CHECK(trim(probe.out) == "tick");
    CHECK(trim(tenant({"inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "app"}).out) ==
          "unless-stopped");
    CHECK(eventually(std::chrono::seconds(10), [&] {
      return std::filesystem::is_empty(p.dir() / "node-h0" / "ckpt") &&
             std::filesystem::is_empty(p.dir() / "node-h1" / "ckpt");
    }));
  };

  SECTION("berth-proxy killed once the twin exists, and restarted") {
    const long before = counter(p);
    const auto moved = cut_migration([&] { p.kill_and_restart(); });
    INFO(describe(moved));
    // The node may or may not have stopped the source into its checkpoint before the kill;
    // rarely the move was over already.
    one_copy_runs(before, moved.ok() ? "" : "discard");
  }
  // The source's node killed at a moment the source shows (`reached`), then started again:
  // until it is back nothing is decided; then its kept checkpoint tells.
  const auto kill_source_node = [&](const std::function<bool()>& reached,
                                    const std::string& steps) {
    const long before = counter(p);
    auto moved = cut_migration([&] {
      CHECK(eventually(std::chrono::seconds(30), reached));
      nodes[static_cast<std::size_t>(home)].stop(SIGKILL, std::chrono::seconds(5));
    });
    nodes[static_cast<std::size_t>(home)] =
        start_node(p, fleet, home, ports[static_cast<std::size_t>(home)], data_root(fleet, home));
    one_copy_runs(before, steps);
    return moved;
  };
  const auto source_shows = [&](const std::string& format) {
    return trim(fleet.docker(home, {"inspect", "-f", format, stored}).out);
  };
  SECTION("the target's berth-node killed while it restores: the source runs again") {
    const long before = counter(p);
    const auto moved = cut_migration([&] {
      CHECK(eventually(std::chrono::seconds(30), [&] {
        return trim(fleet.docker(home, {"inspect", "-f", "{{.State.Running}}", stored}).out) ==
               "false";
      }));
      nodes[static_cast<std::size_t>(away)].stop(SIGKILL, std::chrono::seconds(5));
    });
    INFO(describe(moved));
    if (!moved.ok()) {  // else the twin was restored before the kill, and the move is done
      CHECK_THAT(moved.err, Contains("rolled back"));
      CHECK(host_of(fleet, p, "app") == home);
    }
    nodes[static_cast<std::size_t>(away)] =
        start_node(p, fleet, away, ports[static_cast<std::size_t>(away)], data_root(fleet, away));
    one_copy_runs(before, "");
  }
  SECTION("the source's berth-node killed while it drains new connections, and restarted") {
    // Its restart policy reads "no" from just before the drain.
    // Killed in the drain, the source runs on with its checkpoint released; killed a moment
    // later, in the dump, it is rolled back.
    const auto moved =
        kill_source_node([&] { return source_shows("{{.HostConfig.RestartPolicy.Name}}") == "no"; },
                         "release|rollback");
    CHECK_FALSE(moved.ok());
  }
  SECTION("the source's berth-node killed once the source stopped into its checkpoint") {
    // The twin may have been restored before the kill (a small archive goes in milliseconds):
    // the migration then succeeded, and the source's removal waits for its node.
    (void)kill_source_node([&] { return source_shows("{{.State.Running}}") == "false"; },
                           "commit|rollback");
  }
}
