// The operator's policy through the real docker CLI: quotas that hold under 50 concurrent
// creates and across a proxy restart, container defaults and per-container limits, grants
// (a host path, a capability, host ports), hot reload (a running `logs -f` survives, a broken
// file is refused and the old policy stays, a revoked certificate is cut off), the audit log
// and the proxy's own metrics checked by promtool.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/log_tail.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::dockerd_request;
using berth::test::list_labelled;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

using Bundle = std::filesystem::path;

const std::string kNewCli = "/usr/local/bin/docker";

std::string must(const ProxyUnderTest& p, const std::string& cli, const Bundle& bundle,
                 const std::vector<std::string>& args) {
  const auto r = p.docker(cli, bundle, args);
  INFO("docker " << args.front() << ": " << describe(r));
  REQUIRE(r.ok());
  return trim(r.out);
}

// The refusal a tenant reads on the docker CLI's stderr; nothing is left behind.
std::string refused(const ProxyUnderTest& p, const std::string& cli, const Bundle& bundle,
                    const std::vector<std::string>& args) {
  const auto r = p.docker(cli, bundle, args);
  INFO("docker " << args.front() << ": " << describe(r));
  CHECK_FALSE(r.ok());
  return r.err;
}

json inspect(const std::string& id) {
  const auto reply = dockerd_request("GET", "/containers/" + id + "/json");
  REQUIRE(reply.status == 200);
  return json::parse(reply.body);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// A container that prints "line N" five times a second until removed.
std::string run_ticker(const ProxyUnderTest& p, const Bundle& bundle, const std::string& name) {
  return must(p, kNewCli, bundle,
              {"run", "-d", "--name", name, test_image, "sh", "-c",
               "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"});
}

// `docker logs -f` in the background, writing into `log`.
berth::test::BackgroundProcess follow_logs(const ProxyUnderTest& p, const Bundle& bundle,
                                           const std::string& name,
                                           const std::filesystem::path& log) {
  std::vector<std::string> argv{"/usr/bin/env", "-u", "DOCKER_CONTEXT", "-u",
                                "DOCKER_API_VERSION", kNewCli, "logs", "-f", name};
  return berth::test::BackgroundProcess(argv, log, p.docker_options(bundle).env);
}

std::size_t lines_in(const std::filesystem::path& file) {
  static const std::regex line("^line [0-9]+");
  return berth::test::count_lines(file, line);
}

// Waits (bounded) until `file` has more than `than` ticker lines.
bool grows_beyond(const std::filesystem::path& file, std::size_t than) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (lines_in(file) > than) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

TEST_CASE("50 concurrent creates against a quota of 10 containers leave exactly 10, also after "
          "a proxy restart",
          "[policy][quota][concurrency]") {
  ProxyOptions options;
  options.tenant_rules = "    quota: {containers: 10}\n";
  ProxyUnderTest p(options);

  // 50 creates on 50 connections at once (curl --parallel), each with its own name, so only
  // the quota can refuse.
  std::vector<std::string> args{"-Z",        "--parallel-max", "50", "-X", "POST", "-H",
                                "Content-Type: application/json", "-d",
                                R"({"Image":")" + std::string(test_image) + R"(","Cmd":["true"]})",
                                "-w",        "\n=%{http_code}=\n"};
  for (int i = 0; i < 50; ++i) {
    args.push_back(p.url() + "/v1.41/containers/create?name=c" + std::to_string(i));
  }
  const auto burst = p.curl(p.tenant_bundle(), args);
  INFO("curl: " << describe(burst));
  REQUIRE(burst.ok());
  CHECK(count(burst.out, "=201=") == 10);
  CHECK(count(burst.out, "=403=") == 40);
  CHECK(count(burst.out, "already holds 10 containers; its quota is 10") == 40);
  CHECK(list_labelled(p.tenant_label()).containers.size() == 10);

  // The quota counts what the tenant holds in dockerd, so a fresh proxy knows it too.
  p.stop();
  p.start();
  const std::string err =
      refused(p, kNewCli, p.tenant_bundle(), {"create", "--name", "one-more", test_image, "true"});
  CHECK_THAT(err, Contains("berth: tenant " + p.id() + " already holds 10 containers; its quota "
                           "is 10 (remove one to create another)"));
  CHECK(list_labelled(p.tenant_label()).containers.size() == 10);

  // Removing one frees its place at once.
  const std::string some = must(p, kNewCli, p.tenant_bundle(), {"ps", "-aq"}).substr(0, 12);
  must(p, kNewCli, p.tenant_bundle(), {"rm", some});
  must(p, kNewCli, p.tenant_bundle(), {"create", "--name", "one-more", test_image, "true"});
  CHECK(list_labelled(p.tenant_label()).containers.size() == 10);
  // The other tenant has no quota of its own and is not counted in this one.
  must(p, kNewCli, p.other_tenant_bundle(), {"create", test_image, "true"});
}

TEST_CASE("a create that dockerd or a quota refuses leaves no volume behind",
          "[policy][quota][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyOptions options;
  options.tenant_rules = "    quota: {containers: 1}\n";
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();
  // dockerd refuses: the image does not exist (the named volume would have been made first).
  const auto missing = p.docker(cli, t, {"run", "--rm", "-v", "fresh:/data", "no-such-image:1",
                                         "true"});
  INFO(describe(missing));
  CHECK_FALSE(missing.ok());
  CHECK(must(p, cli, t, {"volume", "ls", "-q"}).empty());
  CHECK(list_labelled(p.tenant_label()).volumes.empty());
  // berth refuses: the quota is used up.
  must(p, cli, t, {"create", "--name", "only", test_image, "true"});
  CHECK_THAT(refused(p, cli, t, {"run", "--rm", "-v", "fresh:/data", test_image, "true"}),
             Contains("its quota is 1"));
  CHECK(list_labelled(p.tenant_label()).volumes.empty());
  CHECK(list_labelled(p.tenant_label()).containers.size() == 1);
}

TEST_CASE("a tenant container gets the policy's defaults; requests above the tenant's limits "
          "or quota are refused with the rule",
          "[policy][defaults][limits][quota]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyOptions options;
  options.tenant_rules =
      "    defaults: {memory: 64MiB, cpus: 0.5, pids_limit: 100, log_max_size: 1MiB, "
      "log_max_file: 2}\n"
      "    limits: {memory: 256MiB, cpus: 1}\n"
      "    quota: {memory: 160MiB, pids_per_container: 200}\n";
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();

  const std::string id = must(p, cli, t, {"run", "-d", "--name", "plain", test_image, "sleep",
                                          "300"});
  const json doc = inspect(id);
  const json& hc = doc["HostConfig"];
  CHECK(hc["Memory"] == 64 * 1024 * 1024);
  CHECK(hc["NanoCpus"] == 500'000'000);
  CHECK(hc["PidsLimit"] == 100);
  CHECK(hc["LogConfig"]["Type"] == "json-file");
  CHECK(hc["LogConfig"]["Config"]["max-size"] == "1048576");
  CHECK(hc["LogConfig"]["Config"]["max-file"] == "2");
  // The tenant reads what it runs with, like on any Docker host.
  CHECK(must(p, cli, t, {"inspect", "-f", "{{.HostConfig.Memory}}", "plain"}) == "67108864");

  CHECK_THAT(refused(p, cli, t, {"run", "-d", "--name", "big", "--memory", "512m", test_image,
                                 "sleep", "300"}),
             Contains("berth: HostConfig.Memory 512MiB is above tenant " + p.id() +
                      "'s per-container limit of 256MiB"));
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "--name", "busy", "--cpus", "2", test_image,
                                 "sleep", "300"}),
             Contains("HostConfig.NanoCpus 2 CPUs is above tenant " + p.id() +
                      "'s per-container limit of 1 CPUs"));
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "--name", "forky", "--pids-limit", "5000",
                                 test_image, "sleep", "300"}),
             Contains("HostConfig.PidsLimit 5000 is above tenant " + p.id() +
                      "'s limit of 200 processes per container"));
  must(p, cli, t, {"run", "-d", "--name", "second", "--memory", "96m", test_image, "sleep", "300"});
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "--name", "third", test_image, "sleep", "300"}),
             Contains("berth: HostConfig.Memory 64MiB does not fit tenant " + p.id() +
                      "'s memory quota: 160MiB of 160MiB is held by its containers"));
  CHECK_THAT(refused(p, cli, t, {"update", "--memory", "200m", "--memory-swap", "400m", "plain"}),
             Contains("memory quota"));
  CHECK(list_labelled(p.tenant_label()).containers.size() == 2);
  CHECK(inspect(id)["HostConfig"]["Memory"] == 64 * 1024 * 1024);  // the update changed nothing
  // Within the quota an update goes through and the new figure counts.
  must(p, cli, t, {"update", "--memory", "32m", "--memory-swap", "64m", "plain"});
  CHECK(inspect(id)["HostConfig"]["Memory"] == 32 * 1024 * 1024);
  must(p, cli, t, {"run", "-d", "--name", "third", "--memory", "32m", test_image, "sleep", "300"});
}

TEST_CASE("grants: a granted host path mounts read-only, a granted capability and host ports "
          "work, and anything beyond them is refused with the rule",
          "[policy][grants][escape]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  berth::test::TempDir shared("berth-grant");
  berth::test::write_file(shared.path() / "hello", "hello from the host\n");
  std::filesystem::permissions(shared.path(), std::filesystem::perms::owner_all |
                                                  std::filesystem::perms::group_read |
                                                  std::filesystem::perms::group_exec |
                                                  std::filesystem::perms::others_read |
                                                  std::filesystem::perms::others_exec);
  // Host ports no other test uses at the same time.
  const int port = 20000 + static_cast<int>(::getpid() % 20000) / 5 * 5;
  const std::string host = shared.path().string();
  ProxyOptions options;
  options.tenant_rules = "    grants:\n"
                         "      bind_mounts:\n"
                         "        - {path: \"" + host + "\", mode: ro}\n"
                         "      capabilities: [NET_ADMIN]\n"
                         "      host_ports: [\"" + std::to_string(port) + "-" +
                         std::to_string(port + 4) + "\"]\n"
                         "    quota: {published_ports: 1}\n";
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();

  CHECK(must(p, cli, t, {"run", "--rm", "-v", host + ":/data:ro", test_image, "cat",
                         "/data/hello"}) == "hello from the host");
  CHECK_THAT(refused(p, cli, t, {"run", "--rm", "-v", host + ":/data", test_image, "true"}),
             Contains("must be read-only: tenant " + p.id() + " is granted " + host +
                      " read-only (add :ro)"));
  CHECK_THAT(refused(p, cli, t, {"run", "--rm", "-v", "/etc:/host-etc:ro", test_image, "true"}),
             Contains("mounts a host path, which is not allowed for tenant " + p.id()));
  CHECK_THAT(refused(p, cli, t, {"run", "--rm", "-v", host + "/hello:/h:ro", test_image, "true"}),
             Contains("mounts a host path"));

  // NET_ADMIN: the container may take its loopback down; without the grant it may not.
  const std::string net_admin = "ip link set lo down && ip link set lo up && echo ok";
  CHECK(must(p, cli, t, {"run", "--rm", "--cap-add", "NET_ADMIN", test_image, "sh", "-c",
                         net_admin}) == "ok");
  const auto without = p.docker(cli, t, {"run", "--rm", test_image, "sh", "-c", net_admin});
  CHECK_FALSE(without.ok());
  CHECK_THAT(refused(p, cli, t, {"run", "--rm", "--cap-add", "SYS_ADMIN", test_image, "true"}),
             Contains("SYS_ADMIN' is not allowed for tenant " + p.id()));

  const std::string inside = "127.0.0.1:" + std::to_string(port + 2) + ":80";
  must(p, cli, t, {"run", "-d", "--name", "published", "-p", inside, test_image, "sleep", "300"});
  CHECK(must(p, cli, t, {"port", "published"}).find(std::to_string(port + 2)) !=
        std::string::npos);
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "-p", "80:80", test_image, "sleep", "300"}),
             Contains("host port 80 is outside the host ports of tenant " + p.id()));
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "-p", "127.0.0.1:" + std::to_string(port + 3) +
                                                      ":80",
                                 test_image, "sleep", "300"}),
             Contains("1 published port(s) do not fit tenant " + p.id() +
                      "'s quota: 1 of 1 are in use"));
  CHECK_THAT(refused(p, cli, t, {"run", "-d", "-P", "--expose", "80", test_image, "sleep", "300"}),
             Contains("1 published port(s) do not fit tenant " + p.id()));
  CHECK_THAT(refused(p, cli, p.other_tenant_bundle(),
                     {"run", "-d", "-P", "--expose", "80", test_image, "sleep", "300"}),
             Contains("needs host ports granted to tenant " + p.other_tenant()));
  // The other tenant has no grants at all.
  CHECK_THAT(refused(p, cli, p.other_tenant_bundle(),
                     {"run", "--rm", "-v", host + ":/data:ro", test_image, "true"}),
             Contains("mounts a host path"));
  CHECK(list_labelled(p.tenant_label()).containers.size() == 1);
}

TEST_CASE("a port published without a host port (-p PORT, -P) gets a free one from the "
          "tenant's range, never the host's ephemeral ports",
          "[policy][grants][ports]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  const int port = 20000 + static_cast<int>(::getpid() % 20000) / 5 * 5;
  ProxyOptions options;
  options.tenant_rules = "    grants:\n"
                         "      host_ports: [\"" + std::to_string(port) + "-" +
                         std::to_string(port + 4) + "\"]\n";
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();
  must(p, cli, t, {"run", "-d", "--name", "one", "-p", "80", test_image, "sleep", "300"});
  must(p, cli, t, {"run", "-d", "--name", "all", "-P", "--expose", "81", "--expose", "82/udp",
                   test_image, "sleep", "300"});
  std::set<std::string> taken;  // "<host port>/<protocol>"
  for (const char* name : {"one", "all"}) {
    const std::string out = must(p, cli, t, {"port", name});
    CAPTURE(out);
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      // "82/udp -> 0.0.0.0:20001" (and the same on [::] for the newer CLI)
      const int host_port = std::stoi(line.substr(line.rfind(':') + 1));
      CHECK(host_port >= port);
      CHECK(host_port <= port + 4);
      const auto slash = line.find('/');
      taken.insert(std::to_string(host_port) + line.substr(slash, line.find(' ') - slash));
    }
  }
  // 80 of one; 81 and 82/udp of all: each binding its own host port of its protocol.
  CHECK(taken.size() == 3);
}

TEST_CASE("a valid policy change takes effect on reload without dropping a running logs -f",
          "[policy][reload]") {
  ProxyUnderTest p;
  const Bundle& t = p.tenant_bundle();
  run_ticker(p, t, "ticker");
  const auto log = p.dir() / "logs-f.log";
  auto stream = follow_logs(p, t, "ticker", log);
  REQUIRE(grows_beyond(log, 2));

  p.set_rules("    quota: {containers: 1}\n");
  const std::string verdict = p.reload();
  REQUIRE_THAT(verdict, Contains("policy reloaded"));
  CHECK_THAT(refused(p, kNewCli, t, {"create", "--name", "second", test_image, "true"}),
             Contains("already holds 1 containers; its quota is 1"));

  // The stream opened under the old policy is still flowing.
  const std::size_t before = lines_in(log);
  CHECK(grows_beyond(log, before + 3));
  CHECK(stream.running());
  stream.stop(SIGTERM, std::chrono::seconds(5));
}

TEST_CASE("a broken policy file is refused on reload with its line and reason, and the running "
          "policy stays in force",
          "[policy][reload]") {
  ProxyOptions options;
  options.tenant_rules = "    quota: {containers: 1}\n";
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();
  must(p, kNewCli, t, {"create", "--name", "first", test_image, "true"});

  p.set_rules("    quota: {containers: lots}\n");
  // The line of the broken value in the file the fixture wrote.
  int line = 0;
  {
    std::ifstream in(p.policy_file());
    int n = 0;
    for (std::string text; std::getline(in, text);) {
      ++n;
      if (text.find("lots") != std::string::npos) {
        line = n;
      }
    }
  }
  REQUIRE(line > 0);
  const std::string where = "policy.yaml:" + std::to_string(line) + ":";
  const std::string verdict = p.reload();
  CHECK_THAT(verdict, Contains("policy reload refused, the running policy stays in force"));
  CHECK_THAT(verdict, Contains(where) && Contains("expected a whole number"));

  // Still the old policy: one container, and tenants and operators still served.
  CHECK_THAT(refused(p, kNewCli, t, {"create", "--name", "second", test_image, "true"}),
             Contains("its quota is 1"));
  must(p, kNewCli, p.operator_bundle(), {"version"});

  // The same verdict offline, for scripts.
  const auto check = berth::test::run({berth::test::berth_proxy_bin(), "--check",
                                       p.policy_file().string()});
  CHECK(check.exit_code == 1);
  CHECK_THAT(check.out + check.err, Contains(where));
  const auto ctl = p.berthctl({"policy", "check", p.policy_file().string()});
  CHECK_FALSE(ctl.ok());
  CHECK_THAT(ctl.out + ctl.err, Contains("expected a whole number"));

  // A fixed file is taken on the next reload.
  p.set_rules("    quota: {containers: 2}\n");
  CHECK_THAT(p.reload(), Contains("policy reloaded"));
  must(p, kNewCli, t, {"create", "--name", "second", test_image, "true"});
}

TEST_CASE("a revoked certificate's open stream is cut at reload and its new connections are "
          "refused, while the tenant's other certificates work",
          "[policy][reload][crl]") {
  ProxyOptions options;
  options.crl = true;
  ProxyUnderTest p(options);
  const Bundle carol = p.issue("carol", {"--tenant", p.id(), "--user", "carol"});
  run_ticker(p, p.tenant_bundle(), "ticker");
  const auto log = p.dir() / "carol-logs.log";
  auto stream = follow_logs(p, carol, "ticker", log);
  REQUIRE(grows_beyond(log, 2));

  const auto revoke =
      p.berthctl({"cert", "revoke", "--ca", p.ca_dir().string(), (carol / "cert.pem").string()});
  INFO(describe(revoke));
  REQUIRE(revoke.ok());
  CHECK_THAT(p.reload(), Contains("policy reloaded"));

  // carol's stream ends within a few seconds, and carol cannot connect again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stream.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_FALSE(stream.running());
  const auto again = p.docker(kNewCli, carol, {"ps"});
  CHECK_FALSE(again.ok());
  CHECK(must(p, kNewCli, p.tenant_bundle(), {"ps", "--format", "{{.Names}}"}) == "ticker");
}

TEST_CASE("the audit log has one JSON line per request, refusals included, and no request "
          "bodies",
          "[policy][audit]") {
  berth::test::TempDir audit_dir("berth-audit");
  const auto audit = audit_dir.path() / "audit.log";
  ProxyOptions options;
  options.proxy_args = {"--audit-log", audit.string()};
  ProxyUnderTest p(options);
  const Bundle& t = p.tenant_bundle();
  must(p, kNewCli, t, {"run", "--rm", "-e", "SECRET_TOKEN=hunter2-do-not-log", test_image, "true"});
  CHECK_THAT(refused(p, kNewCli, t, {"run", "--rm", "--privileged", test_image, "true"}),
             Contains("HostConfig.Privileged is not allowed for tenant " + p.id()));

  // The writer gathers lines for a moment before it writes them: wait (bounded) for the refusal.
  std::string text = berth::test::read_file(audit);
  for (int i = 0; i < 50 && text.find("escape.privileged") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = berth::test::read_file(audit);
  }
  CHECK_THAT(text, !Contains("hunter2"));
  bool saw_create = false;
  bool saw_refusal = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto entry = json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE(entry.is_object());
    for (const char* field : {"time_ms", "client", "tenant", "user", "serial", "method", "path",
                              "endpoint", "class", "decision", "rule", "status", "bytes_in",
                              "bytes_out", "duration_us"}) {
      CHECK(entry.contains(field));
    }
    if (entry["endpoint"] == "container.create" && entry["decision"] == "allow") {
      saw_create = true;
      CHECK(entry["tenant"] == p.id());
      CHECK(entry["class"] == "tenant");
      CHECK(entry["status"] == 201);
      CHECK(entry["bytes_in"].get<int>() > 0);
    }
    if (entry["decision"] == "deny") {
      saw_refusal = true;
      CHECK(entry["rule"] == "escape.privileged");
      CHECK(entry["status"] == 403);
      CHECK(entry["user"] == "alice");
    }
  }
  CHECK(saw_create);
  CHECK(saw_refusal);
}

TEST_CASE("the proxy's metrics listener counts requests by tenant, class and decision, and "
          "promtool accepts what it serves",
          "[policy][metrics]") {
  ProxyOptions options;
  options.policy_extra = "metrics_listen: \"127.0.0.1:0\"\n";
  ProxyUnderTest p(options);
  REQUIRE(p.metrics_port() > 0);
  const Bundle& t = p.tenant_bundle();
  must(p, kNewCli, t, {"ps"});
  refused(p, kNewCli, t, {"run", "--rm", "--privileged", test_image, "true"});
  refused(p, kNewCli, t, {"swarm", "init"});
  must(p, kNewCli, p.operator_bundle(), {"version"});
  CHECK_THAT(p.reload(), Contains("policy reloaded"));

  const std::string url = "http://127.0.0.1:" + std::to_string(p.metrics_port()) + "/metrics";
  const auto scrape = [&] {
    const auto r = berth::test::run({"curl", "-sS", "--max-time", "10", url});
    INFO(describe(r));
    REQUIRE(r.ok());
    return r.out;
  };
  const auto value_in = [](const std::string& m, const std::string& series) -> double {
    const auto at = m.find("\n" + series + " ");
    if (at == std::string::npos) {
      return -1;
    }
    return std::stod(m.substr(at + series.size() + 2));
  };
  // An open stream (logs -f) counts as a stream and its connection as open.
  run_ticker(p, t, "ticker");
  const auto log = p.dir() / "metrics-logs.log";
  auto stream = follow_logs(p, t, "ticker", log);
  REQUIRE(grows_beyond(log, 1));
  const std::string during = scrape();
  CHECK(value_in(during, "berth_proxy_streams") >= 1);
  CHECK(value_in(during, "berth_proxy_connections") >= 1);
  stream.stop(SIGTERM, std::chrono::seconds(5));
  std::string m;
  for (int i = 0; i < 100; ++i) {  // the proxy sees the client go within moments
    m = scrape();
    if (value_in(m, "berth_proxy_streams") == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto value = [&](const std::string& series) { return value_in(m, series); };
  const std::string tenant = "tenant=\"" + p.id() + "\"";
  CHECK(value("berth_proxy_requests_total{class=\"tenant\",decision=\"allowed\"," + tenant +
              "}") >= 1);
  CHECK(value("berth_proxy_requests_total{class=\"tenant\",decision=\"refused\"," + tenant +
              "}") >= 1);
  CHECK(value("berth_proxy_requests_total{class=\"operator_only\",decision=\"refused\"," +
              tenant + "}") >= 1);
  CHECK(value("berth_proxy_requests_total{class=\"tenant\",decision=\"allowed\","
              "tenant=\"(operator)\"}") >= 1);
  CHECK(value("berth_proxy_policy_reloads_total{result=\"applied\"}") == 1);
  CHECK(value("berth_proxy_policy_reloads_total{result=\"refused\"}") == 0);
  CHECK(value("berth_proxy_connections") >= 0);
  CHECK(value("berth_proxy_streams") == 0);  // the stream has ended
  CHECK_THAT(m, Contains("berth_proxy_request_duration_seconds_bucket{class=\"tenant\",le=\"0.1\"}"));

  berth::test::RunOptions stdin_metrics;
  stdin_metrics.input = m;
  const auto promtool = berth::test::run({"promtool", "check", "metrics"}, stdin_metrics);
  INFO("promtool: " << describe(promtool));
  CHECK(promtool.ok());
}
