#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <set>

#include "policy/authorize.hpp"
#include "policy/decision.hpp"
#include "policy/endpoint_table.hpp"

using namespace berth::policy;

namespace {

Principal tenant_principal() {
  Principal p;
  p.role = Role::tenant;
  p.tenant = "acme";
  p.user = "alice";
  return p;
}

Principal operator_principal() {
  Principal p;
  p.role = Role::operator_;
  p.user = "root";
  return p;
}

}  // namespace

TEST_CASE("every API version prefix dockerd accepts classifies to the same route",
          "[policy][classify]") {
  const int minor = GENERATE(range(min_api_minor, max_api_minor + 1));
  const std::string version = "1." + std::to_string(minor);
  CAPTURE(version);
  auto c = classify("GET", "/v" + version + "/containers/abc/json");
  REQUIRE(c.has_value());
  CHECK(c->route->endpoint == "container.inspect");
  CHECK(c->api_version == version);
  CHECK(c->params == std::vector<std::string>{"abc"});
  auto unversioned = classify("GET", "/containers/abc/json");
  REQUIRE(unversioned.has_value());
  CHECK(unversioned->api_version.empty());
}

TEST_CASE("API versions outside dockerd's range or in odd spellings are refused with the range",
          "[policy][classify]") {
  auto version = GENERATE(as<std::string>{}, "1.11", "1.42", "1.50", "2.0", "1.041", "1..41",
                          "1.4", "01.41", "1.41.0", "1");
  CAPTURE(version);
  auto c = classify("GET", "/v" + version + "/_ping");
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().http_status == 400);
  CHECK(c.error().tenant_message.find("1.12 to 1.41") != std::string::npos);
}

TEST_CASE("paths that dockerd would route differently than they read are refused",
          "[policy][classify]") {
  auto [target, status] = GENERATE(table<std::string, unsigned>({
      {"//containers/json", 400},
      {"/containers//json", 400},
      {"/containers/./json", 400},
      {"/containers/abc/../json", 400},
      {"/containers/%2e%2e/json", 400},
      {"/containers/%2E/json", 400},
      {"/v1.41/containers/x/%2e%2e/%2e%2e/info", 400},
      {"/containers/abc%00/json", 400},
      {"/containers/abc%0a/json", 400},
      {"/containers/abc%zz/json", 400},
      {"/containers/abc%2/json", 400},
      {"containers/json", 400},
      {"http://evil/containers/json", 400},
      {"*", 400},
      {"/containers/json/", 404},
      {"/containers/a%2Fb/json", 404},
      {"/CONTAINERS/json", 404},
      {"/nope", 404},
      {"/v1.41", 404},
  }));
  CAPTURE(target);
  auto c = classify("GET", target);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().http_status == status);
  CHECK_FALSE(c.error().tenant_message.empty());
}

TEST_CASE("percent-encoded path parameters are judged decoded and forwarded re-encoded",
          "[policy][classify]") {
  auto c = classify("GET", "/v1.41/containers/%77eb/json?size=1");
  REQUIRE(c.has_value());
  CHECK(c->params == std::vector<std::string>{"web"});
  CHECK(canonical_target(*c) == "/v1.41/containers/web/json?size=1");

  auto img = classify("DELETE", "/images/registry.local:5000/team/app:v1%20x");
  REQUIRE(img.has_value());
  CHECK(img->route->endpoint == "image.delete");
  CHECK(img->params == std::vector<std::string>{"registry.local:5000/team/app:v1 x"});
  CHECK(canonical_target(*img) == "/images/registry.local:5000/team/app:v1%20x");
}

TEST_CASE("image names with slashes are captured whole, literal routes win",
          "[policy][classify]") {
  auto inspect = classify("GET", "/images/library/busybox:latest/json");
  REQUIRE(inspect.has_value());
  CHECK(inspect->route->endpoint == "image.inspect");
  CHECK(inspect->params.front() == "library/busybox:latest");
  auto list = classify("GET", "/images/json");
  REQUIRE(list.has_value());
  CHECK(list->route->endpoint == "image.list");
  auto save = classify("GET", "/images/get");
  REQUIRE(save.has_value());
  CHECK(save->route->endpoint == "image.save");
}

TEST_CASE("a container removal takes a legacy link path as dockerd's {name:.*} route does, "
          "after the checkpoint route",
          "[policy][classify]") {
  auto link = classify("DELETE", "/v1.41/containers/web/db?link=1");
  REQUIRE(link.has_value());
  CHECK(link->route->endpoint == "container.delete");
  CHECK(link->params.front() == "web/db");
  auto checkpoint = classify("DELETE", "/v1.41/containers/web/checkpoints/c1");
  REQUIRE(checkpoint.has_value());
  CHECK(checkpoint->route->endpoint == "checkpoint.delete");
}

TEST_CASE("the method is part of the route", "[policy][classify]") {
  CHECK(classify("HEAD", "/_ping").has_value());
  CHECK(classify("GET", "/_ping").has_value());
  auto post_ping = classify("POST", "/_ping");
  REQUIRE_FALSE(post_ping.has_value());
  CHECK(post_ping.error().http_status == 404);
  CHECK_FALSE(classify("get", "/_ping").has_value());
  CHECK_FALSE(classify("PATCH", "/containers/abc").has_value());
}

TEST_CASE("hijacking routes are marked so the proxy splices them", "[policy][classify]") {
  for (auto [method, target] : {std::pair{"POST", "/containers/c/attach"},
                                std::pair{"POST", "/exec/e/start"},
                                std::pair{"GET", "/containers/c/attach/ws"},
                                std::pair{"POST", "/session"}}) {
    CAPTURE(target);
    auto c = classify(method, target);
    REQUIRE(c.has_value());
    CHECK(may_hijack(c->route->body));
    CHECK(c->route->timeout == TimeoutClass::endless);
  }
  // exec start's body ({Detach, Tty}) is judged like any JSON body before the hijack.
  CHECK(classify("POST", "/exec/e/start")->route->body == BodyMode::judge_hijack);
  CHECK(judged_body(classify("POST", "/exec/e/start")->route->body));
}

TEST_CASE("what an answer tells the ownership index, and which daemon serves a route, are "
          "columns of the table",
          "[policy][classify]") {
  const auto route = [](std::string_view method, std::string_view target) {
    return classify(method, target)->route;
  };
  CHECK(route("POST", "/containers/create")->index == IndexEffect::container_created);
  CHECK(route("DELETE", "/containers/c")->index == IndexEffect::container_removed);
  CHECK(route("POST", "/containers/c/exec")->index == IndexEffect::exec_created);
  CHECK(route("GET", "/containers/c/json")->index == IndexEffect::none);
  for (const Route& r : endpoint_table()) {
    CAPTURE(r.method, r.pattern);
    // A route that names an object in its path is served by the daemon that holds it; one
    // that creates is placed; one that lists or watches everything fans out.
    if (r.scope == Scope::fanout) {
      CHECK(r.pattern.find('{') == std::string_view::npos);
    }
    if (r.index == IndexEffect::container_created || r.index == IndexEffect::network_created ||
        r.index == IndexEffect::volume_created) {
      CHECK(r.scope == Scope::placement);
    }
    if (r.scope == Scope::holder && r.endpoint != "container.commit") {
      CHECK(r.pattern.find('{') != std::string_view::npos);
    }
    CHECK((r.timeout == TimeoutClass::endless) == (answer_deadline(r.timeout).count() == 0));
  }
}

TEST_CASE("the endpoint table has no duplicate or unreachable route", "[policy][classify]") {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const Route& r : endpoint_table()) {
    CAPTURE(r.method, r.pattern);
    CHECK(seen.insert({r.method, r.pattern}).second);
    CHECK(r.pattern.front() == '/');
    CHECK_FALSE(r.endpoint.empty());
    // A concrete path built from the pattern must classify back to this very route.
    std::string path;
    std::size_t i = 0;
    while (i < r.pattern.size()) {
      if (r.pattern[i] == '{') {
        const auto close = r.pattern.find('}', i);
        path += "x1";
        i = close + 1;
      } else {
        path += r.pattern[i++];
      }
    }
    auto c = classify(r.method, path);
    REQUIRE(c.has_value());
    CHECK(c->route == &r);
  }
}

TEST_CASE("daemon-wide administration stays with the operator", "[policy][authorize]") {
  const auto tenant = tenant_principal();
  // Routes whose effect or view spans every tenant: swarm, plugins (beyond the empty list a
  // tenant sees), the build cache, checkpoints. (Image loads and saves are the tenant's, judged
  // in policy/image_archive.)
  const std::set<std::string_view> operator_only = {
      "swarm.inspect", "swarm.unlockkey", "swarm.init", "swarm.join", "swarm.leave",
      "swarm.update", "swarm.unlock", "node.list", "node.inspect", "node.delete", "node.update",
      "service.list", "service.create", "service.inspect", "service.update", "service.delete",
      "service.logs", "task.list", "task.inspect", "task.logs", "secret.list", "secret.create",
      "secret.inspect", "secret.delete", "secret.update", "config.list", "config.create",
      "config.inspect", "config.delete", "config.update", "plugin.privileges", "plugin.pull",
      "plugin.create", "plugin.enable", "plugin.disable", "plugin.push", "plugin.upgrade",
      "plugin.set", "plugin.delete", "build.prune", "build.grpc", "container.copy", "checkpoint.list", "checkpoint.create", "checkpoint.delete",
      "container.migrate", "host.drain",  // berth's own: containers moved between hosts
      "distribution.inspect",
      // cancels any BuildKit build by its id, whoever started it
      "build.cancel"};
  for (const Route& r : endpoint_table()) {
    CAPTURE(r.method, r.pattern);
    Classified c;
    c.route = &r;
    const auto d = authorize_route(tenant, c);
    if (operator_only.contains(r.endpoint)) {
      CHECK_FALSE(d.allowed());
      CHECK(d.http_status == 403);
      CHECK(d.tenant_message.find("not available to tenants") != std::string::npos);
    } else {
      CHECK(d.allowed());
    }
  }
}

TEST_CASE("operators may use every classified route", "[policy][authorize]") {
  const auto op = operator_principal();
  for (const Route& r : endpoint_table()) {
    Classified c;
    c.route = &r;
    CHECK(authorize_route(op, c).allowed());
  }
}

TEST_CASE("a tenant's /info hides daemon-wide counts, names and settings",
          "[policy][filter]") {
  const std::string upstream = R"({"ID":"ABCD:1234","Containers":42,"ContainersRunning":7,
    "Images":99,"Name":"prod-host-3","DockerRootDir":"/var/lib/docker","HttpProxy":"http://p",
    "Labels":["secret=1"],"RegistryConfig":{"Mirrors":["m"]},"Swarm":{"NodeID":"n"},
    "ServerVersion":"20.10.24","NCPU":2,"MemTotal":1000,"OSType":"linux",
    "SomeFutureField":"leak"})";
  const auto out = redact_info_for_tenant(upstream);
  REQUIRE_FALSE(out.empty());
  const auto doc = nlohmann::json::parse(out);
  CHECK(doc["Containers"] == 0);
  CHECK(doc["ContainersRunning"] == 0);
  CHECK(doc["Images"] == 0);
  CHECK(doc["Name"] == "berth");
  CHECK(doc["ID"] == "");
  CHECK(doc["ServerVersion"] == "20.10.24");
  CHECK(doc["NCPU"] == 2);
  // Every key dockerd sent is there (clients read them), with a neutral value.
  for (const char* neutral : {"DockerRootDir", "HttpProxy", "SomeFutureField"}) {
    CAPTURE(neutral);
    CHECK(doc[neutral] == "");
  }
  CHECK(doc["RegistryConfig"]["Mirrors"].empty());
  CHECK(doc["Swarm"]["NodeID"] == "");
  CHECK(doc["Swarm"]["LocalNodeState"] == "inactive");
  CHECK(out.find("leak") == std::string::npos);
  CHECK(doc["Labels"].empty());
  CHECK(redact_info_for_tenant("not json").empty());
  CHECK(redact_info_for_tenant("[1,2]").empty());
}

TEST_CASE("errors are sent in dockerd's JSON shape", "[policy][decision]") {
  CHECK(docker_error_body("No such container: web") ==
        "{\"message\":\"No such container: web\"}\n");
  CHECK(docker_error_body("quote \" and \xff") == "{\"message\":\"quote \\\" and \xEF\xBF\xBD\"}\n");
}
