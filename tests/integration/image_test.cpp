// A tenant's images: login, push and pull against a real registry (Debian's docker-registry on
// loopback, TLS and basic auth), import and commit, each in the tenant's own namespace, with
// both docker CLIs. What one tenant pulls with its credentials is nobody else's to see or use.

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::RunOptions;
using berth::test::test_image;
using berth::test::TestRegistry;
using Catch::Matchers::Contains;

namespace {

constexpr const char* new_cli = "/usr/local/bin/docker";
constexpr const char* debian_cli = "/usr/bin/docker";

// Both tenants may reach the test registry (the operator lists it), so what keeps one from
// another's image is the registry's own credentials and berth's namespaces.
struct Fleet {
  std::unique_ptr<TestRegistry> registry;
  std::unique_ptr<ProxyUnderTest> proxy;
};

Fleet start_with_registry() {
  // The proxy's CA issues the registry's certificate (its server certificate names 127.0.0.1).
  ProxyOptions none;
  none.start = false;
  auto proxy = std::make_unique<ProxyUnderTest>(none);
  auto registry = std::make_unique<TestRegistry>(
      proxy->ca_dir() / "ca.pem", proxy->ca_dir() / "server-cert.pem",
      proxy->ca_dir() / "server-key.pem",
      std::vector<berth::test::RegistryUser>{{"alice", "alice-secret"}, {"bob", "bob-secret"}});
  const std::string rules = "    egress:\n      registries: [\"" + registry->host() + "\"]\n";
  proxy->set_rules(rules);
  return {std::move(registry), std::move(proxy)};
}

void start_both(Fleet& f) {
  // The other tenant's section: the same registry allowed.
  const std::string rules = "    egress:\n      registries: [\"" + f.registry->host() + "\"]\n";
  f.proxy->set_other_rules(rules);
  f.proxy->start();
}

berth::test::RunResult login(const ProxyUnderTest& p, const std::string& cli,
                             const std::filesystem::path& bundle, const std::string& host,
                             const std::string& user, const std::string& password) {
  RunOptions o;
  o.input = password;
  return p.docker(cli, bundle, {"login", host, "-u", user, "--password-stdin"}, o);
}

std::vector<std::string> dockerd_tags_of(const std::string& image) {
  const auto reply = berth::test::dockerd_request("GET", "/images/" + image + "/json");
  std::vector<std::string> out;
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.status == 200 && doc.is_object()) {
    for (const auto& t : doc.value("RepoTags", nlohmann::json::array())) {
      out.push_back(t.get<std::string>());
    }
    for (const auto& t : doc.value("RepoDigests", nlohmann::json::array())) {
      out.push_back(t.get<std::string>());
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a tenant logs in, pushes its image to a registry and pulls it back under its own "
          "name, with both docker CLIs",
          "[proxy][tenant][image][registry]") {
  Fleet f = start_with_registry();
  start_both(f);
  ProxyUnderTest& p = *f.proxy;
  const std::string host = f.registry->host();
  for (const std::string cli : {new_cli, debian_cli}) {
    CAPTURE(cli);
    const std::string tag = cli == new_cli ? "new" : "debian";
    const std::string ref = host + "/" + p.id() + "/app:" + tag;
    auto r = login(p, cli, p.tenant_bundle(), host, "alice", "alice-secret");
    INFO(describe(r));
    REQUIRE(r.ok());
    r = p.docker(cli, p.tenant_bundle(), {"tag", test_image, ref});
    REQUIRE(r.ok());
    r = p.docker(cli, p.tenant_bundle(), {"push", ref});
    INFO(describe(r));
    REQUIRE(r.ok());
    CHECK_THAT(r.out, Contains(tag + ": digest: sha256:"));
    CHECK(f.registry->has_tag(p.id() + "/app", tag));
    // The registry's name was the push's for its duration only: dockerd holds the image under
    // the tenant's stored name and the shared one, nothing else.
    std::string stored_host = host;
    stored_host.replace(stored_host.find(':'), 1, "__");
    const std::string stored = p.id() + ".berth.local/" + stored_host + "/" + p.id() + "/app:" + tag;
    auto tags = dockerd_tags_of(ref);
    CHECK(tags.empty());
    r = p.docker(cli, p.tenant_bundle(), {"rmi", ref});
    INFO(describe(r));
    REQUIRE(r.ok());
    CHECK(dockerd_tags_of(stored).empty());
    r = p.docker(cli, p.tenant_bundle(), {"pull", ref});
    INFO(describe(r));
    REQUIRE(r.ok());
    CHECK_THAT(r.out, Contains(tag + ": Pulling from " + p.id() + "/app"));
    CHECK_THAT(r.out, !Contains("@sha256:"));
    tags = dockerd_tags_of(stored);
    CHECK(std::find(tags.begin(), tags.end(), stored) != tags.end());
    CHECK(std::none_of(tags.begin(), tags.end(),
                       [&](const std::string& t) { return t.starts_with(host); }));
    r = p.docker(cli, p.tenant_bundle(), {"run", "--rm", ref, "echo", "pulled-" + tag});
    INFO(describe(r));
    CHECK(r.ok());
    CHECK_THAT(r.out, Contains("pulled-" + tag));
    r = p.docker(cli, p.tenant_bundle(), {"images", "--format", "{{.Repository}}:{{.Tag}}"});
    CHECK_THAT(r.out, Contains(ref));
    CHECK_THAT(r.out, !Contains(".berth.local"));
  }
}

TEST_CASE("an image one tenant pulled with its credentials is neither visible nor usable to "
          "another tenant",
          "[proxy][tenant][image][registry][isolation]") {
  Fleet f = start_with_registry();
  start_both(f);
  ProxyUnderTest& p = *f.proxy;
  const std::string host = f.registry->host();
  const std::string ref = host + "/" + p.id() + "/secret:v1";
  // An image of the tenant's own (a commit), pushed, removed and pulled back.
  auto r = p.docker(new_cli, p.tenant_bundle(),
                    {"run", "--name", "maker", test_image, "sh", "-c", "echo s3cret > /secret"});
  INFO(describe(r));
  REQUIRE(r.ok());
  r = p.docker(new_cli, p.tenant_bundle(), {"commit", "maker", ref});
  INFO(describe(r));
  REQUIRE(r.ok());
  REQUIRE(login(p, new_cli, p.tenant_bundle(), host, "alice", "alice-secret").ok());
  r = p.docker(new_cli, p.tenant_bundle(), {"push", ref});
  INFO(describe(r));
  REQUIRE(r.ok());
  const std::string id =
      berth::test::trim(p.docker(new_cli, p.tenant_bundle(),
                                 {"image", "inspect", "--format", "{{.Id}}", ref}).out);
  REQUIRE(id.starts_with("sha256:"));
  REQUIRE(p.docker(new_cli, p.tenant_bundle(), {"rm", "maker"}).ok());
  REQUIRE(p.docker(new_cli, p.tenant_bundle(), {"rmi", ref}).ok());
  r = p.docker(new_cli, p.tenant_bundle(), {"pull", ref});
  INFO(describe(r));
  REQUIRE(r.ok());
  r = p.docker(new_cli, p.tenant_bundle(), {"run", "--rm", ref, "cat", "/secret"});
  CHECK_THAT(r.out, Contains("s3cret"));

  // The other tenant, without the registry's credentials, gets nothing: not by name, not by id.
  for (const std::string cli : {new_cli, debian_cli}) {
    CAPTURE(cli);
    r = p.docker(cli, p.other_tenant_bundle(), {"pull", ref});
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.err, Contains("no basic auth credentials") || Contains("unauthorized"));
    r = p.docker(cli, p.other_tenant_bundle(), {"run", "--rm", ref, "cat", "/secret"});
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.out + r.err, !Contains("s3cret"));
    r = p.docker(cli, p.other_tenant_bundle(), {"run", "--rm", id, "cat", "/secret"});
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.out + r.err, !Contains("s3cret"));
    r = p.docker(cli, p.other_tenant_bundle(), {"image", "inspect", id});
    CHECK_FALSE(r.ok());
    r = p.docker(cli, p.other_tenant_bundle(), {"images", "-a", "--no-trunc", "--digests"});
    CHECK(r.ok());
    CHECK_THAT(r.out, !Contains(id.substr(7)) && !Contains("secret"));
  }
  // With its own login it may pull the image too, as its own: the first tenant's name stays
  // the first tenant's.
  REQUIRE(login(p, new_cli, p.other_tenant_bundle(), host, "bob", "bob-secret").ok());
  r = p.docker(new_cli, p.other_tenant_bundle(), {"pull", ref});
  INFO(describe(r));
  REQUIRE(r.ok());
  r = p.docker(new_cli, p.other_tenant_bundle(), {"run", "--rm", ref, "cat", "/secret"});
  CHECK_THAT(r.out, Contains("s3cret"));
  REQUIRE(p.docker(new_cli, p.other_tenant_bundle(), {"rmi", ref}).ok());
  r = p.docker(new_cli, p.tenant_bundle(), {"run", "--rm", ref, "cat", "/secret"});
  CHECK_THAT(r.out, Contains("s3cret"));
}

TEST_CASE("a pull or push to a registry the operator did not list is refused before dockerd "
          "contacts it",
          "[proxy][tenant][image][registry][egress]") {
  Fleet f = start_with_registry();
  f.proxy->start();  // the other tenant has no egress
  ProxyUnderTest& p = *f.proxy;
  const std::string ref = f.registry->host() + "/x/app:v1";
  auto r = p.docker(new_cli, p.other_tenant_bundle(), {"pull", ref});
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("egress"));
  REQUIRE(p.docker(new_cli, p.other_tenant_bundle(), {"tag", test_image, ref}).ok());
  r = p.docker(new_cli, p.other_tenant_bundle(), {"push", ref});
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("egress"));
  CHECK_FALSE(f.registry->has_tag("x/app", "v1"));
}
