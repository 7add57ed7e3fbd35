// docker-compose (Debian's 1.29, python-requests and docker-py underneath) as two tenants at
// once, with the same project name: each gets its own containers, network and volume named as
// compose names them, sees only its own in ps and logs, execs into its own, scales its own, and
// takes down only its own.

#include <filesystem>
#include <future>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::list_labelled;
using berth::test::ProxyUnderTest;
using berth::test::RunOptions;
using berth::test::RunResult;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

inline constexpr const char* project = "shop";

/// web writes the tenant's marker to its log and keeps running; worker only runs; both share
/// nothing with the other tenant's project of the same name.
std::string compose_file(const std::string& marker) {
  return std::string(
             "version: \"2.4\"\n"
             "services:\n"
             "  web:\n"
             "    image: ") +
         berth::test::test_image +
         "\n"
         "    command: [\"sh\", \"-c\", \"echo web-says-" +
         marker +
         "; exec sleep 300\"]\n"
         "    volumes:\n"
         "      - data:/data\n"
         "  worker:\n"
         "    image: " +
         berth::test::test_image +
         "\n"
         "    command: [\"sleep\", \"300\"]\n"
         "volumes:\n"
         "  data: {}\n";
}

struct Tenant {
  std::string id;
  std::filesystem::path bundle;
  std::filesystem::path dir;
  std::string marker;
};

RunResult compose(const ProxyUnderTest& p, const Tenant& t, std::vector<std::string> args) {
  args.insert(args.begin(), {"-p", project, "--no-ansi"});
  RunOptions o;
  o.timeout = std::chrono::seconds(120);
  return p.compose(t.bundle, t.dir, args, o);
}

std::string must(const ProxyUnderTest& p, const Tenant& t, const std::vector<std::string>& args) {
  const auto r = compose(p, t, args);
  INFO(t.id << ": docker-compose " << args.front() << ": " << describe(r));
  REQUIRE(r.ok());
  return r.out;
}

std::set<std::string> lines_of(const std::string& out) {
  std::set<std::string> lines;
  std::string line;
  for (const char c : out + "\n") {
    if (c == '\n') {
      if (auto t = trim(line); !t.empty()) {
        lines.insert(t);
      }
      line.clear();
    } else {
      line += c;
    }
  }
  return lines;
}

/// Container names dockerd stores for a tenant, without the leading "/".
std::set<std::string> stored_container_names(const std::string& tenant) {
  std::set<std::string> names;
  const auto reply = berth::test::dockerd_request(
      "GET", "/containers/json?all=1&" + berth::test::label_filter_query("berth.tenant=" + tenant));
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.status != 200 || !doc.is_array()) {
    return names;
  }
  for (const auto& c : doc) {
    for (const auto& n : c.value("Names", nlohmann::json::array())) {
      names.insert(n.get<std::string>().substr(1));
    }
  }
  return names;
}

}  // namespace

TEST_CASE(
    "two tenants bring up, use, scale and take down the same docker-compose project at once "
    "without collision or seeing each other's",
    "[isolation][compose]") {
  ProxyUnderTest p;
  Tenant tenants[2] = {{p.id(), p.tenant_bundle(), p.dir() / "project-a", "tenant-a-" + p.id()},
                       {p.other_tenant(), p.other_tenant_bundle(), p.dir() / "project-b",
                        "tenant-b-" + p.other_tenant()}};
  for (const auto& t : tenants) {
    std::filesystem::create_directories(t.dir);
    berth::test::write_file(t.dir / "docker-compose.yml", compose_file(t.marker));
  }

  // up -d, both at once.
  auto up = [&p](const Tenant& t) { return compose(p, t, {"up", "-d"}); };
  auto up_a = std::async(std::launch::async, up, std::cref(tenants[0]));
  auto up_b = std::async(std::launch::async, up, std::cref(tenants[1]));
  const RunResult ups[2] = {up_a.get(), up_b.get()};
  for (std::size_t i = 0; i < 2; ++i) {
    INFO(tenants[i].id << ": docker-compose up -d: " << describe(ups[i]));
    REQUIRE(ups[i].ok());
  }

  for (std::size_t i = 0; i < 2; ++i) {
    const Tenant& own = tenants[i];
    const Tenant& other = tenants[1 - i];
    CAPTURE(own.id);
    // In dockerd: the tenant's own containers, network and volume, under stored names.
    CHECK(stored_container_names(own.id) ==
          std::set<std::string>{own.id + "_shop_web_1", own.id + "_shop_worker_1"});
    const auto stored = list_labelled("berth.tenant=" + own.id);
    CHECK(stored.networks.size() == 1);
    CHECK(stored.volumes == std::vector<std::string>{own.id + "_shop_data"});

    // ps: its own two containers, under compose's names; ps -q: exactly their ids.
    const auto ps = must(p, own, {"ps"});
    CAPTURE(ps);
    CHECK_THAT(ps, Contains("shop_web_1") && Contains("shop_worker_1"));
    CHECK_THAT(ps, !Contains(own.id) && !Contains(other.id));
    const auto ids = lines_of(must(p, own, {"ps", "-q"}));
    CHECK(ids == std::set<std::string>(stored.containers.begin(), stored.containers.end()));
    CHECK(lines_of(must(p, own, {"ps", "--services"})) == std::set<std::string>{"web", "worker"});

    // logs: its own web's output only.
    const auto logs = must(p, own, {"logs", "--no-color", "web"});
    CHECK_THAT(logs, Contains("web-says-" + own.marker));
    CHECK_THAT(logs, !Contains(other.marker));

    // docker ps with the CLI agrees with compose.
    const auto cli_ps =
        p.docker("/usr/local/bin/docker", own.bundle, {"ps", "-a", "--format", "{{.Names}}"});
    INFO(describe(cli_ps));
    CHECK(lines_of(cli_ps.out) == std::set<std::string>{"shop_web_1", "shop_worker_1"});
  }

  // exec -T: each writes its marker into its own `data` volume, then reads back its own.
  for (const auto& t : tenants) {
    must(p, t, {"exec", "-T", "web", "sh", "-c", "echo " + t.marker + " > /data/marker"});
  }
  for (const auto& t : tenants) {
    CHECK(trim(must(p, t, {"exec", "-T", "web", "cat", "/data/marker"})) == t.marker);
  }

  // up -d --scale: only the first tenant's worker is scaled.
  must(p, tenants[0], {"up", "-d", "--scale", "worker=2"});
  CHECK(stored_container_names(tenants[0].id) ==
        std::set<std::string>{tenants[0].id + "_shop_web_1", tenants[0].id + "_shop_worker_1",
                              tenants[0].id + "_shop_worker_2"});
  CHECK(stored_container_names(tenants[1].id) ==
        std::set<std::string>{tenants[1].id + "_shop_web_1", tenants[1].id + "_shop_worker_1"});
  const auto scaled = must(p, tenants[0], {"ps"});
  CHECK_THAT(scaled, Contains("shop_worker_2"));
  const auto unscaled = must(p, tenants[1], {"ps"});
  CHECK_THAT(unscaled, !Contains("shop_worker_2"));

  // down -v: the first tenant's project is gone from dockerd, the second's is untouched.
  const auto second_before = list_labelled("berth.tenant=" + tenants[1].id);
  must(p, tenants[0], {"down", "-v", "-t", "1"});
  const auto first_left = list_labelled("berth.tenant=" + tenants[0].id);
  INFO("left: " << first_left.describe());
  CHECK(first_left.empty());
  CHECK(list_labelled("berth.tenant=" + tenants[1].id) == second_before);
  CHECK(trim(must(p, tenants[1], {"exec", "-T", "web", "cat", "/data/marker"})) ==
        tenants[1].marker);
  CHECK(lines_of(must(p, tenants[1], {"ps", "--services"})) ==
        std::set<std::string>{"web", "worker"});
  must(p, tenants[1], {"down", "-v", "-t", "1"});
  const auto second_left = list_labelled("berth.tenant=" + tenants[1].id);
  INFO("left: " << second_left.describe());
  CHECK(second_left.empty());
}
