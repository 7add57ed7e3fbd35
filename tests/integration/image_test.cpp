// A tenant's images: login, push and pull against a real registry (Debian's docker-registry on
// loopback, TLS and basic auth), import and commit, each in the tenant's own namespace, with
// both docker CLIs. What one tenant pulls with its credentials is nobody else's to see or use.

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::RunOptions;
using berth::test::test_image;
using berth::test::TestRegistry;
using berth::test::trim;
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

TEST_CASE("the Python Docker SDK logs in, pushes and pulls through berth, as a tenant and as "
          "the operator",
          "[proxy][image][registry][sdk]") {
  Fleet f = start_with_registry();
  start_both(f);
  ProxyUnderTest& p = *f.proxy;
  const std::string host = f.registry->host();
  struct Who {
    std::filesystem::path bundle;
    std::string label;
    std::string repo;
  };
  for (const Who& who : {Who{p.tenant_bundle(), p.tenant_label(), p.id() + "/sdk-tenant"},
                         Who{p.operator_bundle(), p.test_label(), p.id() + "/sdk-operator"}}) {
    CAPTURE(who.repo);
    const std::string ref = host + "/" + who.repo + ":v1";
    const auto r = p.python_client("sdk-registry", who.bundle,
                                   {"--registry", host, "--user", "alice", "--password",
                                    "alice-secret", "--name", ref});
    INFO(describe(r));
    REQUIRE(r.ok());
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["login"] == "Login Succeeded");
    CHECK(doc["push_errors"].empty());
    CHECK(doc["push_digest"].get<std::string>().starts_with("sha256:"));
    // The image is the shared test image's content, so it carries that tag too.
    const auto pulled = doc["pulled_tags"];
    CHECK(std::find(pulled.begin(), pulled.end(), ref) != pulled.end());
    CHECK(doc["run"] == "sdk-pulled\n");
    CHECK(f.registry->has_tag(who.repo, "v1"));
    // The operator's pull is dockerd's own: the registry's name, as it would be on the socket.
    // A tenant's is in its namespace, shown under the name it pulled.
    const auto tags = doc["tags"];
    CHECK(std::find(tags.begin(), tags.end(), ref) != tags.end());
  }
  CHECK(dockerd_tags_of(host + "/" + p.id() + "/sdk-operator:v1").size() >= 1);
  CHECK(dockerd_tags_of(host + "/" + p.id() + "/sdk-tenant:v1").empty());
  (void)berth::test::dockerd_request(
      "DELETE", "/images/" + host + "/" + p.id() + "/sdk-operator:v1");
}

TEST_CASE("a tenant imports a root filesystem and commits a container under its own names, "
          "and what they write into the image is judged",
          "[proxy][tenant][image]") {
  ProxyUnderTest p;
  const auto& t = p.tenant_bundle();
  const auto rootfs = p.dir() / "rootfs.tar";
  for (const std::string cli : {new_cli, debian_cli}) {
    CAPTURE(cli);
    const std::string tag = cli == new_cli ? "new" : "debian";
    auto r = p.docker(cli, t, {"create", "--name", "src-" + tag, test_image, "true"});
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"export", "-o", rootfs.string(), "src-" + tag});
    INFO(describe(r));
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"import", "--change", "CMD [\"echo\", \"imported\"]", "--change",
                          "ENV WHO=" + tag, rootfs.string(), "base:" + tag});
    INFO(describe(r));
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"run", "--rm", "base:" + tag});
    CHECK(trim(r.out) == "imported");
    r = p.docker(cli, t, {"run", "--name", "maker-" + tag, "base:" + tag, "sh", "-c",
                          "echo $WHO > /who"});
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"commit", "--change", "CMD [\"cat\", \"/who\"]", "maker-" + tag,
                          "snap:" + tag});
    INFO(describe(r));
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"run", "--rm", "snap:" + tag});
    CHECK(trim(r.out) == tag);
    // The images are the tenant's: listed under its names, owned by its label, and nobody
    // else's to see.
    r = p.docker(cli, t, {"images", "--format", "{{.Repository}}:{{.Tag}}"});
    CHECK_THAT(r.out, Contains("base:" + tag) && Contains("snap:" + tag));
    CHECK_THAT(r.out, !Contains("berth.local"));
    r = p.docker(cli, p.other_tenant_bundle(), {"images", "--format", "{{.Repository}}"});
    CHECK_THAT(r.out, !Contains("base") && !Contains("snap"));
    CHECK(p.docker(cli, p.other_tenant_bundle(), {"run", "--rm", "snap:" + tag}).exit_code != 0);
    for (const char* change : {"LABEL berth.tenant=" "someone", "ONBUILD RUN id", "RUN id"}) {
      CAPTURE(change);
      r = p.docker(cli, t, {"commit", "--change", change, "maker-" + tag, "bad:" + tag});
      CHECK_FALSE(r.ok());
      r = p.docker(cli, t, {"import", "--change", change, rootfs.string(), "bad:" + tag});
      CHECK_FALSE(r.ok());
    }
    CHECK(p.docker(cli, t, {"image", "inspect", "bad:" + tag}).exit_code != 0);
  }
  const auto images = berth::test::list_labelled(p.tenant_label()).images;
  CHECK(images.size() >= 4);  // base and snap of each CLI carry the ownership label
}

TEST_CASE("a compressed build context is judged like a plain one",
          "[proxy][tenant][build]") {
  ProxyUnderTest p;
  const auto& t = p.tenant_bundle();
  const auto dir = p.dir() / "ctx";
  std::filesystem::create_directories(dir);
  berth::test::write_file(dir / "Dockerfile", std::string("FROM ") + test_image +
                                                  "\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n");
  berth::test::write_file(dir / "msg", "compressed-build\n");
  for (const std::string cli : {new_cli, debian_cli}) {
    CAPTURE(cli);
    auto r = p.docker(cli, t, {"build", "--compress", "-q", "-t", "zipped", dir.string()});
    INFO(describe(r));
    REQUIRE(r.ok());
    r = p.docker(cli, t, {"run", "--rm", "zipped"});
    CHECK(trim(r.out) == "compressed-build");
  }
  // Another tenant's image in FROM is refused, compressed or not.
  berth::test::write_file(dir / "Dockerfile", "FROM " + p.other_tenant() + ".berth.local/x:1\n");
  const auto r = p.docker(new_cli, t, {"build", "--compress", dir.string()});
  CHECK_FALSE(r.ok());
}

TEST_CASE("a tenant's network may be named as dockerd allows, spaces included",
          "[proxy][tenant][network]") {
  ProxyUnderTest p;
  const auto& t = p.tenant_bundle();
  auto r = p.docker(new_cli, t, {"network", "create", "my net"});
  INFO(describe(r));
  REQUIRE(r.ok());
  r = p.docker(new_cli, t, {"run", "--rm", "--network", "my net", test_image, "true"});
  CHECK(r.ok());
  r = p.docker(new_cli, t, {"network", "ls", "--format", "{{.Name}}", "--filter", "name=^my net$"});
  CHECK(trim(r.out) == "my net");
  CHECK(p.docker(new_cli, t, {"network", "rm", "my net"}).ok());
}

TEST_CASE("an image with ONBUILD triggers is not kept when a tenant pulls it",
          "[proxy][tenant][image][registry][attack]") {
  // Its triggers would run unjudged in the tenant's next build FROM it: a COPY --from naming
  // another tenant's image, an ADD of an address the tenant may not reach.
  Fleet f = start_with_registry();
  start_both(f);
  ProxyUnderTest& p = *f.proxy;
  const std::string host = f.registry->host();
  const std::string ref = host + "/" + p.id() + "/trap:v1";
  const auto ctx = p.dir() / "trap";
  std::filesystem::create_directories(ctx);
  berth::test::write_file(ctx / "Dockerfile",
                          std::string("FROM ") + test_image + "\nONBUILD RUN id\n");
  RunOptions raw;
  raw.env = {{"DOCKER_HOST", "unix:///var/run/docker.sock"},
             {"DOCKER_CONFIG", (p.dir() / "raw-config").string()},
             {"DOCKER_BUILDKIT", "0"}};
  const auto on_socket = [&](std::vector<std::string> args, std::string input = {}) {
    args.insert(args.begin(), debian_cli);
    RunOptions o = raw;
    o.input = std::move(input);
    return berth::test::run(args, o);
  };
  REQUIRE(on_socket({"build", "-q", "-t", ref, ctx.string()}).ok());
  REQUIRE(on_socket({"login", host, "-u", "alice", "--password-stdin"}, "alice-secret").ok());
  REQUIRE(on_socket({"push", ref}).ok());
  REQUIRE(on_socket({"rmi", ref}).ok());

  REQUIRE(login(p, new_cli, p.tenant_bundle(), host, "alice", "alice-secret").ok());
  const auto r = p.docker(new_cli, p.tenant_bundle(), {"pull", ref});
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.out + r.err, Contains("ONBUILD triggers, which are not available to tenants"));
  CHECK(p.docker(new_cli, p.tenant_bundle(), {"image", "inspect", ref}).exit_code != 0);
}

namespace {

std::string manifest_of(const std::filesystem::path& archive) {
  return berth::test::run({"tar", "-xOf", archive.string(), "manifest.json"}).out;
}

}  // namespace

TEST_CASE("a tenant saves its images and loads them back under the names it knows",
          "[proxy][tenant][image]") {
  ProxyUnderTest p;
  const auto& t = p.tenant_bundle();
  const auto& other = p.other_tenant_bundle();
  for (const std::string cli : {new_cli, debian_cli}) {
    CAPTURE(cli);
    const std::string tag = cli == new_cli ? "new" : "debian";
    const std::string name = "keep:" + tag;
    const auto archive = p.dir() / ("saved-" + tag + ".tar");
    REQUIRE(p.docker(cli, t, {"tag", test_image, name}).ok());
    auto r = p.docker(cli, t, {"save", "-o", archive.string(), name});
    INFO(describe(r));
    REQUIRE(r.ok());
    // The archive names the image as the tenant does, so it loads anywhere under that name.
    const std::string manifest = manifest_of(archive);
    CHECK_THAT(manifest, Contains("\"" + name + "\"") && !Contains("berth.local"));
    // Another tenant cannot save it: the name is not one it knows.
    CHECK_FALSE(p.docker(cli, other, {"save", "-o", (p.dir() / "stolen.tar").string(), name}).ok());
    REQUIRE(p.docker(cli, t, {"rmi", name}).ok());
    r = p.docker(cli, t, {"load", "-i", archive.string()});
    INFO(describe(r));
    REQUIRE(r.ok());
    CHECK_THAT(r.out, Contains("Loaded image: " + name) && !Contains("berth.local"));
    r = p.docker(cli, t, {"run", "--rm", name, "echo", "loaded"});
    CHECK(trim(r.out) == "loaded");
    // The image is stored in the tenant's namespace only; the other tenant still has no such name.
    CHECK_FALSE(dockerd_tags_of(p.id() + ".berth.local/" + name).empty());
    CHECK(dockerd_tags_of(name).empty());
    CHECK_FALSE(p.docker(cli, other, {"image", "inspect", name}).ok());
    // A gzip-compressed archive (docker save | gzip) loads the same way.
    const auto zipped = p.dir() / ("saved-" + tag + ".tar.gz");
    REQUIRE(berth::test::run({"sh", "-c", "gzip -c " + archive.string() + " > " + zipped.string()}).ok());
    REQUIRE(p.docker(cli, t, {"rmi", name}).ok());
    r = p.docker(cli, t, {"load", "-i", zipped.string()});
    INFO(describe(r));
    CHECK(r.ok());
    CHECK(p.docker(cli, t, {"image", "inspect", name}).ok());
    // The other tenant may load the same archive, which it holds: under its own name.
    r = p.docker(cli, other, {"load", "-i", archive.string()});
    CHECK(r.ok());
    CHECK_FALSE(dockerd_tags_of(p.other_tenant() + ".berth.local/" + name).empty());
    // An image the tenant built through berth carries its ownership label, and comes back.
    const auto ctx = p.dir() / ("ctx-" + tag);
    std::filesystem::create_directories(ctx);
    berth::test::write_file(ctx / "Dockerfile", std::string("FROM ") + test_image +
                                                    "\nCMD [\"echo\", \"built\"]\n");
    const std::string built = "built:" + tag;
    r = p.docker(cli, t, {"build", "-q", "-t", built, ctx.string()});
    INFO(describe(r));
    REQUIRE(r.ok());
    const auto built_archive = p.dir() / ("built-" + tag + ".tar");
    REQUIRE(p.docker(cli, t, {"save", "-o", built_archive.string(), built}).ok());
    REQUIRE(p.docker(cli, t, {"rmi", built}).ok());
    r = p.docker(cli, t, {"load", "-i", built_archive.string()});
    INFO(describe(r));
    CHECK(r.ok());
    CHECK(trim(p.docker(cli, t, {"run", "--rm", built}).out) == "built");
    // The other tenant may load it too, under its own name.
    r = p.docker(cli, other, {"load", "-i", built_archive.string()});
    INFO(describe(r));
    CHECK(r.ok());
    CHECK(trim(p.docker(cli, other, {"run", "--rm", built}).out) == "built");
  }
}

TEST_CASE("the Python Docker SDK saves and loads an image through berth, as a tenant and as the "
          "operator",
          "[proxy][image][sdk]") {
  ProxyUnderTest p;
  struct Who {
    std::filesystem::path bundle;
    std::string name;
  };
  for (const Who& who : {Who{p.tenant_bundle(), "sdk-saved:v1"},
                         Who{p.operator_bundle(), p.id() + "/sdk-saved:v1"}}) {
    CAPTURE(who.name);
    const auto r = p.python_client("sdk-save-load", who.bundle, {"--name", who.name});
    INFO(describe(r));
    REQUIRE(r.ok());
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["archive_tags"] == nlohmann::json::array({who.name}));
    const auto loaded = doc["loaded_tags"];
    CHECK(std::find(loaded.begin(), loaded.end(), who.name) != loaded.end());
    CHECK(doc["run"] == "sdk-loaded\n");
  }
  CHECK_FALSE(dockerd_tags_of(p.id() + ".berth.local/sdk-saved:v1").empty());
  (void)berth::test::dockerd_request("DELETE", "/images/" + p.id() + "/sdk-saved:v1");
}

TEST_CASE("a hostile image archive is refused whole and dockerd loads nothing of it",
          "[proxy][tenant][image][hostile]") {
  ProxyUnderTest p;
  const auto& t = p.tenant_bundle();
  const auto saved = p.dir() / "saved.tar";
  REQUIRE(p.docker(new_cli, t, {"tag", test_image, "base:v1"}).ok());
  REQUIRE(p.docker(new_cli, t, {"save", "-o", saved.string(), "base:v1"}).ok());
  const auto script = berth::test::integration_source_dir() / "forge_image_archive.py";
  struct Case {
    const char* mode;
    const char* reason;
  };
  for (const Case c : {Case{"label", "labels beginning with 'berth.' are reserved"},
                       Case{"onbuild", "ONBUILD triggers"},
                       Case{"legacy", "no manifest.json"},
                       Case{"unnamed", "has no name"},
                       Case{"symlink", "must be a regular file"},
                       Case{"twice", "two entries at"},
                       Case{"foreign", "foreign layers"}}) {
    CAPTURE(c.mode);
    const std::string name = std::string("forged:") + c.mode;
    const auto forged = p.dir() / (std::string(c.mode) + ".tar");
    const auto made = berth::test::run(
        {"python3", script.string(), saved.string(), forged.string(), c.mode, name});
    REQUIRE(made.ok());
    const std::string forged_id = trim(made.out);
    for (const std::string cli : {new_cli, debian_cli}) {
      CAPTURE(cli);
      const auto r = p.docker(cli, t, {"load", "-i", forged.string()});
      CHECK_FALSE(r.ok());
      CHECK_THAT(r.out + r.err, Contains(c.reason));
    }
    // Nothing of it in dockerd: no name, and no image of a configuration berth refused.
    if (std::string_view(c.mode) == "label" || std::string_view(c.mode) == "onbuild" ||
        std::string_view(c.mode) == "twice") {
      CHECK(berth::test::dockerd_request("GET", "/images/" + forged_id + "/json").status == 404);
    }
    CHECK(dockerd_tags_of(p.id() + ".berth.local/" + name).empty());
    CHECK(dockerd_tags_of(name).empty());
  }
  // The control: the same forging without a fault loads.
  const auto control = p.dir() / "named.tar";
  REQUIRE(berth::test::run({"python3", script.string(), saved.string(), control.string(), "named",
                            "forged:named"})
              .ok());
  const auto r = p.docker(new_cli, t, {"load", "-i", control.string()});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(p.docker(new_cli, t, {"image", "inspect", "forged:named"}).ok());
}
