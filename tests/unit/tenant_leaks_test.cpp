// The smaller leaks of issue #13 (1.5) and the login egress rule (1.4): another tenant's
// objects answered as missing ones, names in the tenant's own spelling, shared images usable
// only as the policy says, registries only as the operator lists them.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/endpoint_table.hpp"
#include "policy/filter.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

const std::string kShared = "sha256:" + std::string(64, 'b');
const std::string kGlobexApp = "sha256:" + std::string(64, '9');
const std::string kAcmeApp = "sha256:" + std::string(64, 'a');

OwnershipIndex images() {
  OwnershipIndex idx;
  idx.put_image({kShared, "", {"busybox:latest"}});
  idx.put_image({kGlobexApp, "globex", {"globex.berth.local/secret:v1"}});
  idx.put_image({kAcmeApp, "acme", {"acme.berth.local/app:v1"}});
  return idx;
}

Principal acme() {
  Principal p;
  p.role = Role::tenant;
  p.tenant = "acme";
  return p;
}

Rewritten judge(const Tenant& rules, std::string_view method, std::string_view target,
                std::string_view body = {}) {
  auto c = classify(method, target);
  REQUIRE(c);
  const OwnershipIndex idx = images();
  auto resolved = resolve(acme(), *c, idx);
  if (!resolved) {
    Rewritten out;
    out.decision = resolved.error();
    return out;
  }
  return rewrite_for_tenant(acme(), *resolved, body, idx, DaemonFacts{}, rules);
}

Tenant acme_rules() {
  Tenant t;
  t.id = "acme";
  return t;
}

std::string filters(std::string_view json_text) {
  return "filters=" + query_escape(json_text);
}

}  // namespace

TEST_CASE("an image list filtered since or before another tenant's image answers as for a "
          "missing one",
          "[policy][images][leak]") {
  const auto rel = GENERATE(as<std::string>{}, "since", "before");
  CAPTURE(rel);
  const Rewritten theirs = judge(acme_rules(), "GET",
                                 "/v1.41/images/json?" +
                                     filters(R"({")" + rel + R"(":["globex.berth.local/secret:v1"]})"));
  const Rewritten missing =
      judge(acme_rules(), "GET",
            "/v1.41/images/json?" + filters(R"({")" + rel + R"(":["nothere:v1"]})"));
  REQUIRE_FALSE(theirs.decision.allowed());
  REQUIRE_FALSE(missing.decision.allowed());
  CHECK(theirs.decision.http_status == 404);
  CHECK(missing.decision.http_status == 404);
  CHECK(theirs.decision.rule_id == missing.decision.rule_id);
  // Its own image, by the name it knows, becomes the id dockerd resolves.
  const Rewritten mine =
      judge(acme_rules(), "GET", "/v1.41/images/json?" + filters(R"({")" + rel + R"(":["app:v1"]})"));
  REQUIRE(mine.decision.allowed());
  CHECK(mine.target.find(std::string(64, 'a')) != std::string::npos);
}

TEST_CASE("docker stats shows a tenant its container under the name it gave",
          "[policy][stats][leak]") {
  const std::string sample = R"({"read":"2026-12-05T00:00:00Z","id":"abc","name":"/acme_web",)"
                             R"("cpu_stats":{"cpu_usage":{"total_usage":1}}})";
  const json out = json::parse(filter_stats_line(acme(), sample));
  CHECK(out["name"] == "/web");
  CHECK(out["cpu_stats"]["cpu_usage"]["total_usage"] == 1);
  // A name outside the tenant's namespace is never shown.
  const json other = json::parse(filter_stats_line(acme(), R"({"name":"/globex_db","id":"x"})"));
  CHECK_FALSE(other.contains("name"));
  const Rewritten r = judge(acme_rules(), "GET", "/v1.41/containers/x/stats");
  // (the container is not in this index: resolution answers 404 before any stream)
  CHECK(r.decision.http_status == 404);
}

TEST_CASE("a shared image the policy does not let a tenant use cannot become its own by a tag",
          "[policy][images][leak]") {
  Tenant rules = acme_rules();
  rules.images = std::vector<std::string>{"alpine:*"};
  const Rewritten r = judge(rules, "POST", "/v1.41/images/busybox:latest/tag?repo=mine&tag=v1");
  REQUIRE_FALSE(r.decision.allowed());
  CHECK(r.decision.rule_id == "image.not_allowed");
  rules.images = std::vector<std::string>{"busybox:*"};
  CHECK(judge(rules, "POST", "/v1.41/images/busybox:latest/tag?repo=mine&tag=v1")
            .decision.allowed());
  // Its own images it tags freely.
  CHECK(judge(acme_rules(), "POST", "/v1.41/images/app:v1/tag?repo=app&tag=v2").decision.allowed());
}

TEST_CASE("docker login reaches only the registries the operator lists for the tenant",
          "[policy][egress][auth]") {
  Tenant rules = acme_rules();
  // The review scanned the host's loopback through dockerd's login.
  for (const char* server : {"127.0.0.1:9470", "http://localhost:2375", "", "10.0.0.5:5000"}) {
    CAPTURE(server);
    const Rewritten r = judge(rules, "POST", "/v1.41/auth",
                              json{{"username", "u"}, {"password", "p"}, {"serveraddress", server}}
                                  .dump());
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.rule_id == "egress.registry");
  }
  rules.egress.registries = std::vector<std::string>{"registry.example.com:5000"};
  const Rewritten ok = judge(rules, "POST", "/v1.41/auth",
                             R"({"username":"u","serveraddress":"registry.example.com:5000"})");
  REQUIRE(ok.decision.allowed());
  // Judged as dockerd's decoder reads it: keys fold case, the last duplicate wins, and what is
  // forwarded is the document berth judged.
  const Rewritten smuggled = judge(
      rules, "POST", "/v1.41/auth",
      R"({"serveraddress":"registry.example.com:5000","ServerAddress":"127.0.0.1:9470"})");
  REQUIRE_FALSE(smuggled.decision.allowed());
  const Rewritten folded = judge(
      rules, "POST", "/v1.41/auth",
      R"({"ServerAddress":"127.0.0.1:9470","serveraddress":"registry.example.com:5000"})");
  REQUIRE(folded.decision.allowed());
  CHECK(json::parse(*folded.body)["serveraddress"] == "registry.example.com:5000");
  CHECK_FALSE(judge(rules, "POST", "/v1.41/auth", "null").decision.allowed());
}
