// A tenant's pulls, pushes, imports and commits as the policy judges them: the registry must be
// one the operator granted, what dockerd is asked names nothing outside the tenant's namespace
// (a pull goes by digest, a push's registry name is berth's to hold and remove), and what an
// import or commit writes into an image is judged like a build's.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "policy/authorize.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/ownership_index.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

const std::string kBusybox = "sha256:" + std::string(60, 'b') + "bb01";
const std::string kAcmeApp = "sha256:" + std::string(60, 'a') + "a9a9";
const std::string kGlobexApp = "sha256:" + std::string(60, '9') + "9a9a";
const std::string kAcmeWeb = std::string(60, 'a') + "0e1f";

OwnershipIndex fixture() {
  OwnershipIndex idx;
  idx.put_image({kBusybox, "", {"busybox:latest"}});
  idx.put_image({kAcmeApp, "", {"acme.berth.local/registry.example.com__5000/team/app:v1"}});
  idx.put_image({kGlobexApp, "", {"globex.berth.local/registry.example.com__5000/team/app:v2"}});
  idx.put_container({kAcmeWeb, "acme", "acme_web", {}});
  return idx;
}

Tenant rules(const std::string& id) {
  Tenant t;
  t.id = id;
  t.egress.registries = std::vector<std::string>{"registry.example.com:5000"};
  return t;
}

Rewritten judge(const OwnershipIndex& idx, const std::string& tenant, std::string_view method,
                std::string_view target, std::string_view body = {}) {
  Principal who;
  who.tenant = tenant;
  auto c = classify(method, target);
  REQUIRE(c.has_value());
  auto resolved = resolve(who, *c, idx);
  if (!resolved) {
    Rewritten out;
    out.decision = resolved.error();
    return out;
  }
  return rewrite_for_tenant(who, *resolved, body, idx, {}, rules(tenant));
}

std::vector<std::string> values(const Rewritten& r, std::string_view key) {
  std::vector<std::string> out;
  const auto q = r.target.find('?');
  auto parsed = parse_query(q == std::string::npos ? "" : r.target.substr(q + 1));
  REQUIRE(parsed.has_value());
  for (const auto& [k, v] : *parsed) {
    if (k == key) {
      out.push_back(v);
    }
  }
  return out;
}

std::string describe(const Rewritten& r) {
  return std::to_string(r.decision.http_status) + " " + r.decision.rule_id + ": " +
         r.decision.tenant_message;
}

}  // namespace

TEST_CASE("a pull from a granted registry is planned under the tenant's own name",
          "[policy][image][pull]") {
  const auto idx = fixture();
  const Rewritten r = judge(idx, "acme", "POST",
                            "/v1.41/images/create?fromImage=registry.example.com%3A5000%2Fteam%2Fapp&tag=v3");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  REQUIRE(r.transfer.has_value());
  CHECK(r.transfer->kind == ImageTransfer::Kind::pull);
  CHECK(r.transfer->remote_ref() == "registry.example.com:5000/team/app:v3");
  CHECK(r.transfer->stored == "acme.berth.local/registry.example.com__5000/team/app:v3");
  // The proxy swaps the tag for the digest it asks the registry for.
  CHECK(values(r, "fromImage") == std::vector<std::string>{"registry.example.com:5000/team/app"});
  CHECK(values(r, "tag") == std::vector<std::string>{"v3"});
}

TEST_CASE("a pull berth cannot keep in the tenant's namespace is refused with the reason",
          "[policy][image][pull]") {
  const auto idx = fixture();
  auto [target, status, rule] = GENERATE(table<std::string, unsigned, std::string>({
      // not granted: dockerd would contact it from the host's network
      {"/v1.41/images/create?fromImage=busybox&tag=latest", 403u, "egress.registry"},
      {"/v1.41/images/create?fromImage=127.0.0.1%3A5000%2Fapp&tag=v1", 403u, "egress.registry"},
      {"/v1.41/images/create?fromImage=registry.example.com%2Fapp&tag=v1", 403u,
       "egress.registry"},
      // every tag at once (docker pull -a), or by digest: no tag to keep it under
      {"/v1.41/images/create?fromImage=registry.example.com%3A5000%2Fapp", 403u,
       "image.pull_all_tags"},
      {"/v1.41/images/create?fromImage=registry.example.com%3A5000%2Fapp&tag=sha256%3A" +
           std::string(64, 'c'),
       403u, "image.pull_digest"},
      {"/v1.41/images/create?fromImage=registry.example.com%3A5000%2FApp&tag=v1", 400u,
       "image.reference"},
  }));
  CAPTURE(target);
  const Rewritten r = judge(idx, "acme", "POST", target);
  INFO(describe(r));
  REQUIRE_FALSE(r.decision.allowed());
  CHECK(r.decision.http_status == status);
  CHECK(r.decision.rule_id == rule);
  CHECK_FALSE(r.transfer.has_value());
}

TEST_CASE("a push takes only the tenant's own tag to a granted registry",
          "[policy][image][push]") {
  const auto idx = fixture();
  const Rewritten mine =
      judge(idx, "acme", "POST", "/v1.41/images/registry.example.com:5000/team/app/push?tag=v1");
  INFO(describe(mine));
  REQUIRE(mine.decision.allowed());
  REQUIRE(mine.transfer.has_value());
  CHECK(mine.transfer->kind == ImageTransfer::Kind::push);
  CHECK(mine.transfer->image_id == kAcmeApp);
  CHECK(mine.transfer->remote_ref() == "registry.example.com:5000/team/app:v1");
  CHECK(mine.target.starts_with("/v1.41/images/registry.example.com:5000/team/app/push?"));
  CHECK(values(mine, "tag") == std::vector<std::string>{"v1"});

  // Globex's v2 of the same repository, a shared image, every tag, a registry not granted.
  auto [tenant, target, status, rule] =
      GENERATE(table<std::string, std::string, unsigned, std::string>({
          {"acme", "/v1.41/images/registry.example.com:5000/team/app/push?tag=v2", 404u,
           "resolve.image"},
          {"acme", "/v1.41/images/busybox/push?tag=latest", 404u, "resolve.image"},
          {"acme", "/v1.41/images/registry.example.com:5000/team/app/push", 403u,
           "image.push_all_tags"},
          {"globex", "/v1.41/images/registry.example.com:5000/team/app/push?tag=v1", 404u,
           "resolve.image"},
      }));
  CAPTURE(tenant, target);
  const Rewritten r = judge(idx, tenant, "POST", target);
  INFO(describe(r));
  REQUIRE_FALSE(r.decision.allowed());
  CHECK(r.decision.http_status == status);
  CHECK(r.decision.rule_id == rule);
}

TEST_CASE("an import comes from the request body only and lands in the tenant's namespace with "
          "its ownership label",
          "[policy][image][import]") {
  const auto idx = fixture();
  const Rewritten r = judge(idx, "acme", "POST",
                            "/v1.41/images/create?fromSrc=-&repo=base&tag=v1&message=m"
                            "&changes=ENV%20A%3D1&changes=CMD%20%5B%22sh%22%5D");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  CHECK(values(r, "repo") == std::vector<std::string>{"acme.berth.local/base"});
  CHECK(values(r, "tag") == std::vector<std::string>{"v1"});
  CHECK(values(r, "changes") ==
        std::vector<std::string>{"ENV A=1", "CMD [\"sh\"]", "LABEL berth.tenant=acme"});

  const Rewritten url =
      judge(idx, "acme", "POST", "/v1.41/images/create?fromSrc=http%3A%2F%2F10.0.0.1%2Fx.tar");
  CHECK(url.decision.rule_id == "image.import_url");
}

TEST_CASE("the changes of an import or a commit cannot claim the berth labels or plant ONBUILD "
          "triggers",
          "[policy][image][import][attack]") {
  const auto idx = fixture();
  auto [change, rule] = GENERATE(table<std::string, std::string>({
      {"LABEL%20berth.tenant%3Dglobex", "label.reserved"},
      {"LABEL%20%22berth.tenant%22%3Dglobex", "label.reserved"},
      {"LABEL%20berth%5C.tenant%3Dglobex", "label.reserved"},
      {"LABEL%20%24K%3Dglobex", "label.reserved"},
      {"LABEL%20a%3Db%0ALABEL%20berth.tenant%3Dglobex", "query.invalid"},  // no newlines
      {"ONBUILD%20RUN%20id", "image.onbuild"},
      {"RUN%20id", "image.changes"},
      {"FROM%20busybox", "image.changes"},
  }));
  for (const std::string route : {"/v1.41/images/create?fromSrc=-&changes=",
                                  "/v1.41/commit?container=web&changes="}) {
    CAPTURE(route, change);
    const Rewritten r = judge(idx, "acme", "POST", route + change);
    INFO(describe(r));
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.rule_id == rule);
  }
}

TEST_CASE("a commit is of the tenant's own container, under its own name, with its label",
          "[policy][image][commit]") {
  const auto idx = fixture();
  const Rewritten r =
      judge(idx, "acme", "POST", "/v1.41/commit?container=web&repo=snap&tag=v1&pause=1",
            R"({"Cmd":["sh"],"Labels":{"team":"a"}})");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  CHECK(values(r, "container") == std::vector<std::string>{kAcmeWeb});
  CHECK(values(r, "repo") == std::vector<std::string>{"acme.berth.local/snap"});
  REQUIRE(r.body.has_value());
  const auto body = json::parse(*r.body);
  CHECK(body["Labels"]["berth.tenant"] == "acme");
  CHECK(body["Labels"]["team"] == "a");

  const Rewritten other = judge(idx, "globex", "POST", "/v1.41/commit?container=web&repo=x");
  CHECK(other.decision.http_status == 404);
  const Rewritten labelled = judge(idx, "acme", "POST", "/v1.41/commit?container=web",
                                   R"({"labels":{"berth.tenant":"globex"}})");
  CHECK(labelled.decision.rule_id == "label.reserved");
  const Rewritten onbuild =
      judge(idx, "acme", "POST", "/v1.41/commit?container=web", R"({"OnBuild":["RUN id"]})");
  CHECK(onbuild.decision.rule_id == "image.onbuild");
}

TEST_CASE("a registry name held for a push is nobody's to see or use while it lasts",
          "[policy][image][push][index]") {
  auto idx = fixture();
  const std::string remote = "registry.example.com:5000/team/app:v1";
  REQUIRE(idx.hold_transient(remote));
  CHECK_FALSE(idx.hold_transient(remote));  // a second push of the name waits
  idx.put_image({kAcmeApp, "", {"acme.berth.local/registry.example.com__5000/team/app:v1", remote}});
  for (const char* tenant : {"globex", "initech"}) {
    CAPTURE(tenant);
    CHECK(idx.find_image(tenant, remote).result != Lookup::found);
    CHECK_FALSE(idx.image_visible(tenant, *idx.image_by_id(kAcmeApp)));
  }
  idx.untag_image(remote);
  idx.release_transient(remote);
  CHECK(idx.image_by_tag(remote) == std::nullopt);
  CHECK(idx.image_visible("acme", *idx.image_by_id(kAcmeApp)));
}

TEST_CASE("an image another tenant's labels claim is the tenant's once it tags it, and not the "
          "labelled tenant's",
          "[policy][image][index]") {
  OwnershipIndex idx;
  const std::string id = "sha256:" + std::string(64, 'e');
  // Pulled by globex from a registry; its config says berth.tenant=acme (built by acme, or
  // forged).
  idx.put_image({id, "acme", {"globex.berth.local/team/app:v1"}});
  CHECK(idx.image_visible("globex", *idx.image_by_id(id)));
  CHECK_FALSE(idx.image_visible("acme", *idx.image_by_id(id)));
  // An untagged build of acme's is acme's by its label.
  idx.put_image({id, "acme", {}});
  CHECK(idx.image_visible("acme", *idx.image_by_id(id)));
  CHECK_FALSE(idx.image_visible("globex", *idx.image_by_id(id)));
}
