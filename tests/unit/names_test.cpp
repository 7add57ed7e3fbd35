// Tenant-scoped names: what a tenant calls an object, how berth stores it in dockerd so that no
// other tenant can produce the same stored name, and how the stored name is shown back.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/names.hpp"

namespace names = berth::policy::names;

namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("a tenant's object is stored under its tenant id and an underscore",
          "[policy][names]") {
  CHECK(names::stored("acme", "web") == "acme_web");
  CHECK(names::stored("acme", "my_project_default") == "acme_my_project_default");
  CHECK(names::default_network("acme") == "acme_bridge");
  CHECK(names::default_network("globex") == "globex_bridge");
}

TEST_CASE("two tenants can never produce the same stored name", "[policy][names]") {
  // Tenant ids have no '_', so the first '_' of a stored name always ends the tenant id.
  const std::vector<std::string> tenants = {"acme", "acme-eu", "a", "ac", "acm", "me", "eu"};
  const std::vector<std::string> objects = {"web",      "eu_web",  "me_web", "cme_web",
                                            "acme_web", "-eu_web", "bridge", "eu-x_y"};
  for (const auto& t1 : tenants) {
    for (const auto& n1 : objects) {
      for (const auto& t2 : tenants) {
        for (const auto& n2 : objects) {
          if (t1 != t2) {
            CAPTURE(t1, n1, t2, n2);
            CHECK(names::stored(t1, n1) != names::stored(t2, n2));
          }
        }
      }
    }
  }
}

TEST_CASE("a stored name is shown to its owner as the name it gave", "[policy][names]") {
  auto [tenant, stored, view] = GENERATE(table<std::string, std::string, std::string>({
      {"acme", "acme_web", "web"},
      {"acme", "/acme_web", "web"},
      {"acme", "acme_my_app_1", "my_app_1"},
      {"acme", "acme_acme_web", "acme_web"},
      {"acme", "acme_bridge", "bridge"},
      {"acme-eu", "acme-eu_web", "web"},
      {"a", "a_b", "b"},
  }));
  CAPTURE(tenant, stored);
  const auto v = names::tenant_view(tenant, stored);
  REQUIRE(v.has_value());
  CHECK(*v == view);
}

TEST_CASE("another tenant's stored name has no view in a tenant's namespace", "[policy][names]") {
  auto [tenant, stored] = GENERATE(table<std::string, std::string>({
      {"acme", "globex_web"},
      {"acme", "acme-eu_web"},
      {"acme-eu", "acme_web"},
      {"acme", "acmeweb"},
      {"acme", "acme"},
      {"acme", "acme_"},
      {"acme", "/acme_"},
      {"acme", ""},
      {"acme", "/"},
      {"acme", "//acme_web"},
      {"acme", "_acme_web"},
      {"acme", "happy_turing"},
      {"ac", "acme_web"},
      {"acme", "ACME_web"},
  }));
  CAPTURE(tenant, stored);
  CHECK_FALSE(names::tenant_view(tenant, stored).has_value());
}

TEST_CASE("a container or volume name follows dockerd's pattern", "[policy][names]") {
  auto [name, valid] = GENERATE(table<std::string, bool>({
      {"web", true},
      {"Web1", true},
      {"a.b-c_d", true},
      {"0web", true},
      {std::string(200, 'a'), true},
      {"", false},
      {"_web", false},
      {".web", false},
      {"-web", false},
      {"we b", false},
      {"web/x", false},
      {"../x", false},
      {"..", false},
      {"/web", false},
      {"w\xC3\xA9" "b", false},
      {"a:b", false},
      {std::string("a\0b", 3), false},
      {"web\n", false},
      {"a$b", false},
      {std::string(201, 'a'), false},
  }));
  CAPTURE(name);
  CHECK(names::is_valid_object_name(name) == valid);
}

TEST_CASE("a one-character name is refused, as dockerd's [a-zA-Z0-9][a-zA-Z0-9_.-]+ refuses it",
          "[policy][names]") {
  // moby's RestrictedNamePattern ends in '+', so volume (and container) names have at least
  // two characters; a private host refuses a volume named "a".
  CHECK_FALSE(names::is_valid_object_name("a"));
  CHECK_FALSE(names::is_valid_object_name("0"));
}

TEST_CASE("a generated container name looks like dockerd's and is valid in any namespace",
          "[policy][names]") {
  std::vector<std::string> seen;
  for (std::uint64_t random : {0ULL, 1ULL, 47ULL, 48ULL, 1000ULL, 123456789ULL, ~0ULL}) {
    const std::string name = names::generated_name(random);
    CAPTURE(random, name);
    CHECK(names::is_valid_object_name(name));
    const auto underscore = name.find('_');
    REQUIRE(underscore != std::string::npos);
    CHECK(underscore > 0);
    CHECK(underscore + 1 < name.size());
    CHECK(name.find('_', underscore + 1) == std::string::npos);
    CHECK(names::generated_name(random) == name);  // a function of `random` only
    CHECK(names::tenant_view("acme", names::stored("acme", name)) == name);
    seen.push_back(name);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(std::unique(seen.begin(), seen.end()) - seen.begin() >= 5);
}

TEST_CASE("a stored name in some tenant's namespace is told apart from any other name",
          "[policy][names]") {
  auto [stored, in_some_namespace] = GENERATE(table<std::string, bool>({
      {"globex_web", true},
      {"/acme_web", true},
      {"acme-eu_my_app", true},
      {"happy_turing", true},
      {"portainer", false},
      {"Upper_case", false},
      {"a.b_c", false},
      {"_web", false},
      {"acme_", false},
      {"", false},
  }));
  CAPTURE(stored);
  CHECK(names::tenant_view_of_other(stored) == in_some_namespace);
}

TEST_CASE("an image reference is read as the docker CLI reads it", "[policy][names]") {
  auto [text, name, tag, digest] =
      GENERATE_COPY(table<std::string, std::string, std::string, std::string>({
          {"busybox", "busybox", "latest", ""},
          {"busybox:1.36", "busybox", "1.36", ""},
          {"busybox:Latest_1.x-y", "busybox", "Latest_1.x-y", ""},
          {"docker.io/library/busybox", "busybox", "latest", ""},
          {"index.docker.io/library/busybox:1", "busybox", "1", ""},
          {"library/busybox", "busybox", "latest", ""},
          {"docker.io/busybox", "busybox", "latest", ""},
          {"docker.io/team/app:v1", "team/app", "v1", ""},
          {"docker.io/library/team/app", "library/team/app", "latest", ""},
          {"team/app", "team/app", "latest", ""},
          {"localhost:5000/app", "localhost:5000/app", "latest", ""},
          {"localhost:5000/app:v2", "localhost:5000/app", "v2", ""},
          {"Registry.Example.com/team/app", "Registry.Example.com/team/app", "latest", ""},
          {"app@" + kDigest, "app", "", kDigest},
          {"app:v1@" + kDigest, "app", "v1", kDigest},
          {"acme.berth.local/app:v1", "acme.berth.local/app", "v1", ""},
      }));
  CAPTURE(text);
  const auto ref = names::parse_image_ref(text);
  REQUIRE(ref.has_value());
  CHECK(ref->name == name);
  CHECK(ref->tag == tag);
  CHECK(ref->digest == digest);
}

TEST_CASE("an invalid image reference is refused", "[policy][names]") {
  auto text = GENERATE_COPY(as<std::string>{}, "", "App", "team/App", "app:", ":v1", "app:v 1",
                            "app:tag!", "app:" + std::string(129, 't'), "a b", "app@sha256:abc",
                            "app@md5:0123", "@" + kDigest, "app@" + kDigest + "x",
                            std::string(513, 'a'), "app\n", "team//app:");
  CAPTURE(text);
  CHECK_FALSE(names::parse_image_ref(text).has_value());
}

TEST_CASE("an image reference prints back as name, tag and digest", "[policy][names]") {
  CHECK(names::ImageRef{"busybox", "latest", ""}.str() == "busybox:latest");
  CHECK(names::ImageRef{"app", "", kDigest}.str() == "app@" + kDigest);
  CHECK(names::ImageRef{"app", "v1", kDigest}.str() == "app:v1@" + kDigest);
}

TEST_CASE("a tenant's image repositories live under its own registry-style prefix",
          "[policy][names]") {
  const auto ref = names::parse_image_ref("app:v1");
  REQUIRE(ref.has_value());
  CHECK(names::image_prefix("acme") == "acme.berth.local/");
  CHECK(names::stored_image("acme", *ref) == "acme.berth.local/app:v1");

  SECTION("the owner sees its own spelling") {
    CHECK(names::tenant_image_view("acme", "acme.berth.local/app:v1") == "app:v1");
    CHECK(names::tenant_image_view("acme", "acme.berth.local/team/app:v1") == "team/app:v1");
  }
  SECTION("nobody else has a view of it") {
    auto [tenant, stored] = GENERATE(table<std::string, std::string>({
        {"globex", "acme.berth.local/app:v1"},
        {"acme", "acme-eu.berth.local/app:v1"},
        {"acme-eu", "acme.berth.local/app:v1"},
        {"acme", "acme.berth.local/"},
        {"acme", "acme.berth.localx/app:v1"},
        {"acme", "busybox:latest"},
        {"acme", "x.acme.berth.local/app:v1"},
    }));
    CAPTURE(tenant, stored);
    CHECK_FALSE(names::tenant_image_view(tenant, stored).has_value());
  }
}

TEST_CASE("a tenant's image repository is told apart from a shared image", "[policy][names]") {
  auto [stored, tenant_repo] = GENERATE(table<std::string, bool>({
      {"acme.berth.local/app:v1", true},
      {"a.berth.local/x:latest", true},
      {"acme-eu.berth.local/team/app:v1", true},
      {"busybox:latest", false},
      {"registry.example.com/app:v1", false},
      {"berth.local/app:v1", false},
      {".berth.local/app:v1", false},
      {"ACME.berth.local/app:v1", false},
      {"a_b.berth.local/app:v1", false},
      {"-acme.berth.local/app:v1", false},
      {"acme.berth.local.evil.com/app:v1", false},
      {"acme.berth.localx/app:v1", false},
      {"x.acme.berth.local/app:v1", false},
  }));
  CAPTURE(stored);
  CHECK(names::is_tenant_image_repo(stored) == tenant_repo);
}

TEST_CASE("a registry's port is stored as a path component dockerd accepts and shown back as a port",
          "[policy][names]") {
  auto [text, stored] = GENERATE(table<std::string, std::string>({
      {"localhost:5000/app:v2", "acme.berth.local/localhost__5000/app:v2"},
      {"127.0.0.1:5055/team/app:v1", "acme.berth.local/127.0.0.1__5055/team/app:v1"},
      {"Registry.Example.com:443/app", "acme.berth.local/registry.example.com__443/app:latest"},
      {"registry.example.com/app:v1", "acme.berth.local/registry.example.com/app:v1"},
      {"team/app:v1", "acme.berth.local/team/app:v1"},
  }));
  CAPTURE(text);
  const auto ref = names::parse_image_ref(text);
  REQUIRE(ref.has_value());
  CHECK(names::stored_image("acme", *ref) == stored);
  auto view = names::tenant_image_view("acme", stored);
  REQUIRE(view.has_value());
  // Host names are stored in lower case, so the view of an upper-case host is its lower case.
  std::string expected = ref->str();
  std::transform(expected.begin(), expected.begin() + static_cast<long>(expected.find('/')),
                 expected.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  CHECK(*view == (ref->name.find('/') == std::string::npos ? ref->str() : expected));
}

TEST_CASE("a Docker Hub namespace spelled with a double underscore is not read as a port",
          "[policy][names]") {
  CHECK(names::tenant_image_view("acme", "acme.berth.local/team__5000/app:v1") ==
        "team__5000/app:v1");
}
