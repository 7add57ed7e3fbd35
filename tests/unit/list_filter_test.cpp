// Name and reference filters mean on berth what they mean on a private host: they are matched
// on the tenant's own spelling (anchors and all) with dockerd's matching rules, never on the
// stored names, and only ever narrow the tenant's own list.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "policy/authorize.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/filter.hpp"
#include "policy/list_filter.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

Principal acme() {
  Principal p;
  p.tenant = "acme";
  return p;
}

json containers() {
  json list = json::array();
  for (const char* name : {"/acme_web", "/acme_webapp", "/acme_db", "/globex_web"}) {
    const std::string stored = name;
    const std::string owner = stored.substr(1, stored.find('_') - 1);
    list.push_back({{"Id", std::string(64, stored[1])},
                    {"Names", {stored}},
                    {"Labels", {{"berth.tenant", owner}}}});
  }
  return list;
}

std::vector<std::string> names_of(const std::string& body) {
  std::vector<std::string> out;
  for (const auto& c : json::parse(body)) {
    out.push_back(c["Names"][0].get<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE("a name filter is a Go regular expression found in the name, or the name itself",
          "[policy][filter][names]") {
  CHECK(NameMatcher({"^web$"}).matches("web"));
  CHECK_FALSE(NameMatcher({"^web$"}).matches("webapp"));
  CHECK(NameMatcher({"web"}).matches("my-webapp"));
  CHECK(NameMatcher({"^db", "^web$"}).matches("web"));
  CHECK(NameMatcher({}).matches("anything"));
  // Not a valid regexp: dockerd's Match skips it, and only equality matches.
  CHECK(NameMatcher({"web("}).matches("web("));
  CHECK_FALSE(NameMatcher({"web("}).matches("web(x"));
  // RE2 runs in linear time: a pattern that makes a backtracking engine explode is harmless.
  CHECK_FALSE(NameMatcher({"^(a+)+$"}).matches(std::string(5000, 'a') + "b"));
}

TEST_CASE("a reference filter is a glob on name:tag or on the name alone",
          "[policy][filter][names]") {
  CHECK(reference_matches("app", "app:v1"));
  CHECK(reference_matches("app:v*", "app:v1"));
  CHECK_FALSE(reference_matches("app:v*", "app:latest"));
  CHECK(reference_matches("team/*", "team/tool:2"));
  CHECK_FALSE(reference_matches("*", "team/tool:2"));
  CHECK(reference_matches("localhost:5000/app", "localhost:5000/app:v1"));
}

TEST_CASE("a tenant's name filter is matched by berth on its own names, anchors and all",
          "[policy][filter][names]") {
  const OwnershipIndex idx;
  auto [target, expected] = GENERATE(table<std::string, std::vector<std::string>>({
      {"name=%5Eweb%24", {"/web"}},                       // ^web$
      {"name=%5E%2Fweb%24", {"/web"}},                    // ^/web$
      {"name=web", {"/web", "/webapp"}},
      {"name=acme", {}},                                  // the stored prefix is not its name
      {"name=%5Edb&name=app%24", {"/webapp", "/db"}},     // any of several
  }));
  CAPTURE(target);
  // The judged query: the filter leaves for berth, only the ownership label reaches dockerd.
  const std::string filters = "{\"name\":[" + [&] {
    std::string out;
    auto q = parse_query(target);
    REQUIRE(q.has_value());
    for (const auto& [k, v] : *q) {
      out += (out.empty() ? "\"" : ",\"") + v + "\"";
    }
    return out;
  }() + "]}";
  auto c = classify("GET", "/v1.41/containers/json?all=1&filters=" + percent_encode(filters, ""));
  REQUIRE(c.has_value());
  Tenant rules;
  rules.id = "acme";
  const Rewritten r = rewrite_for_tenant(acme(), *c, "", idx, {}, rules);
  REQUIRE(r.decision.allowed());
  CHECK(r.target.find("name") == std::string::npos);
  REQUIRE_FALSE(r.list_filter.names.empty());
  const auto out =
      filter_response(ResponseView::container_list, acme(), containers().dump(), idx, r.list_filter);
  REQUIRE(out.has_value());
  CHECK(names_of(*out) == expected);
}

TEST_CASE("a reference filter narrows a tenant's images to its own spelling",
          "[policy][filter][names]") {
  OwnershipIndex idx;
  const std::string mine = "sha256:" + std::string(64, 'a');
  const std::string shared = "sha256:" + std::string(64, 'b');
  idx.put_image({mine, "", {"acme.berth.local/team/app:v1", "acme.berth.local/team/app:v2"}});
  idx.put_image({shared, "", {"busybox:latest"}});
  const json list = json::array(
      {{{"Id", mine}, {"RepoTags", {"acme.berth.local/team/app:v1", "acme.berth.local/team/app:v2"}}},
       {{"Id", shared}, {"RepoTags", {"busybox:latest"}}}});
  ListFilter f;
  f.references = {"team/app:v2"};
  const auto out = filter_response(ResponseView::image_list, acme(), list.dump(), idx, f);
  REQUIRE(out.has_value());
  const json images = json::parse(*out);
  REQUIRE(images.size() == 1);
  CHECK(images[0]["RepoTags"] == json::array({"team/app:v2"}));
  f.references = {"acme.berth.local/*"};
  CHECK(json::parse(*filter_response(ResponseView::image_list, acme(), list.dump(), idx, f))
            .empty());
}
