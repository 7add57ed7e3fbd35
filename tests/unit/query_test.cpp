// Query parameters of tenants' requests: allowed by list per route, read as dockerd reads them,
// forwarded only as judged (issue #13, 1.2).

#include <catch2/catch.hpp>

#include <string>

#include "policy/endpoint_table.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;

namespace {

std::expected<std::string, Decision> judged(std::string_view method, std::string_view target) {
  auto c = classify(method, target);
  REQUIRE(c.has_value());
  return judge_query(c->route->query, c->query, api_minor(*c),
                     std::string(method) + " " + std::string(c->route->pattern));
}

std::string ps_args(std::string_view value) { return "ps_args=" + query_escape(value); }

}  // namespace

TEST_CASE("docker top takes only ps options whose output keeps the container's own PID column",
          "[policy][query][top]") {
  for (const char* ok : {"", "-ef", "aux", "-eo pid,comm", "-eo pid,ppid,args", "-eLf"}) {
    CAPTURE(ok);
    const auto q = judged("GET", "/v1.41/containers/web/top?" + ps_args(ok));
    REQUIRE(q.has_value());
    CHECK(*q == ps_args(ok));
  }
  // Each of these reached other processes' command lines, names or environment through
  // dockerd's "Unexpected pid" error, or made dockerd read every host process.
  const auto leak = GENERATE(as<std::string>{}, "-ocomm=PID -p 1", "-oargs=PID,pid -u root",
                             "-oargs,pid -p 1", "-eo lstart,pid,args", "-otty=,pid -p 1",
                             "aux h", "--no-headers", "eww", "-o pid,cmd e", "-Z", "auxf",
                             "-ef --forest", "aux --sort=-%cpu", "-ef -p 1", "-ef ", " -ef",
                             "-ef  -p 1", "-eo pid,args,user", "-N", "-q 1");
  CAPTURE(leak);
  const auto q = judged("GET", "/v1.41/containers/web/top?" + ps_args(leak));
  REQUIRE_FALSE(q.has_value());
  CHECK(q.error().http_status == 403);
  CHECK(q.error().rule_id == "query.not_allowed");
  CHECK(q.error().tenant_message.find("ps_args") != std::string::npos);
}

TEST_CASE("a query parameter a route does not list is refused, as an unknown route is",
          "[policy][query]") {
  for (const Route& r : endpoint_table()) {
    if (r.access != Access::tenant) {
      continue;
    }
    std::string path(r.pattern);
    for (auto [from, to] : {std::pair{"{id}", "x"}, {"{id*}", "x"}, {"{name*}", "x"},
                            {"{checkpoint}", "x"}}) {
      if (auto at = path.find(from); at != std::string::npos) {
        path.replace(at, std::string_view(from).size(), to);
      }
    }
    CAPTURE(r.method, r.pattern);
    const auto q = judged(r.method, "/v1.41" + path + "?berth_unknown=1");
    REQUIRE_FALSE(q.has_value());
    CHECK(q.error().http_status == 403);
  }
}

TEST_CASE("a parameter dockerd reads once may appear once", "[policy][query]") {
  auto [method, target] = GENERATE(table<std::string, std::string>({
      {"GET", "/v1.41/containers/web/top?ps_args=aux&ps_args=-ocomm%3DPID"},
      {"GET", "/v1.41/containers/json?filters=%7B%7D&filters=%7B%7D"},
      {"POST", "/v1.41/containers/web/kill?signal=TERM&signal=KILL"},
      {"GET", "/v1.41/containers/web/logs?stdout=1&stdout=0"},
  }));
  CAPTURE(target);
  const auto q = judged(method, target);
  REQUIRE_FALSE(q.has_value());
  CHECK(q.error().rule_id == "query.not_allowed");
  // Parameters dockerd reads in full may repeat: a build's tags.
  CHECK(judged("POST", "/v1.41/build?t=a&t=b").has_value());
}

TEST_CASE("values are forwarded in the one spelling dockerd reads as the judged value",
          "[policy][query]") {
  // httputils.BoolValue: anything but "", 0, no, false, none is true, case and spaces aside.
  CHECK(*judged("GET", "/v1.41/containers/json?all=True&size=%20no%20") == "all=1&size=0");
  CHECK(*judged("GET", "/v1.41/containers/json?all=off") == "all=1");
  // A parameter without a value is present and false (BoolValueOrDefault).
  CHECK(*judged("GET", "/v1.41/containers/web/stats?stream") == "stream=0");
  CHECK(*judged("POST", "/v1.41/containers/web/kill?signal=sigterm") == "signal=TERM");
  CHECK(*judged("POST", "/v1.41/containers/web/kill?signal=9") == "signal=9");
  CHECK(*judged("POST", "/v1.41/containers/web/kill?signal=SIGRTMIN%2B3") == "signal=RTMIN%2B3");
  CHECK(*judged("GET", "/v1.41/networks/n?verbose=T") == "verbose=true");
  // docker-py's inert trunc_cmd is accepted and not forwarded.
  CHECK(*judged("GET", "/v1.41/containers/json?trunc_cmd=0&all=1") == "all=1");
  // docker-py removes with link=False.
  CHECK(*judged("DELETE", "/v1.41/containers/web?v=False&link=False&force=False") ==
        "v=0&link=0&force=0");
}

TEST_CASE("values outside what a parameter means are refused with the parameter named",
          "[policy][query]") {
  auto [method, target, status] = GENERATE(table<std::string, std::string, unsigned>({
      {"POST", "/v1.41/containers/web/stop?t=-1", 400u},  // dockerd would wait forever
      {"POST", "/v1.41/containers/web/restart?t=99999", 400u},
      {"POST", "/v1.41/containers/web/kill?signal=NOPE", 400u},
      {"POST", "/v1.41/containers/web/kill?signal=0", 400u},
      {"POST", "/v1.41/containers/web/wait?condition=anything", 403u},
      {"GET", "/v1.41/containers/json?limit=ten", 400u},
      {"GET", "/v1.41/containers/json?all=%C2%A0yes", 400u},
      {"GET", "/v1.41/events?since=yesterday", 400u},
      {"GET", "/v1.41/networks/n?verbose=yes", 400u},
      {"POST", "/v1.41/containers/web/start?checkpoint=c1", 403u},
      {"GET", "/v1.41/containers/web/archive?path=%2Fetc%0A", 400u},
      {"GET", "/v1.41/containers/json?filters=" + query_escape(R"({"bogus":["x"]})"), 403u},
  }));
  CAPTURE(target);
  const auto q = judged(method, target);
  REQUIRE_FALSE(q.has_value());
  CHECK(q.error().http_status == status);
}

TEST_CASE("a parameter dockerd reads only in some API versions is forwarded only there",
          "[policy][query]") {
  CHECK(*judged("GET", "/v1.41/containers/web/stats?stream=0&one-shot=1") ==
        "stream=0&one-shot=1");
  CHECK(*judged("GET", "/v1.40/containers/web/stats?stream=0&one-shot=1") == "stream=0");
  CHECK(judged("POST", "/v1.29/containers/web/wait?condition=next-exit")->empty());
  CHECK(*judged("POST", "/v1.41/containers/web/wait?condition=next-exit") ==
        "condition=next-exit");
}

TEST_CASE("the docker CLI's classic build parameters pass, neutral values included",
          "[policy][query][build]") {
  // What docker build (20.10 and 28, DOCKER_BUILDKIT=0) sends for a plain build.
  const std::string cli =
      "buildargs=%7B%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0&cpusetcpus=&"
      "cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D&memory=0&memswap=0&"
      "networkmode=default&rm=1&shmsize=0&t=app&target=&ulimits=null&version=1";
  const auto q = judged("POST", "/v1.41/build?" + cli);
  INFO((q ? *q : q.error().tenant_message));
  REQUIRE(q.has_value());
  CHECK(q->find("cgroupparent") == std::string::npos);
  CHECK(q->find("ulimits") == std::string::npos);
}

TEST_CASE("a tenant's request fields reach dockerd by list, and its body's type is berth's",
          "[policy][query][fields]") {
  // Host, the client's name and the copy's compression pass; everything else dockerd reads
  // would let the tenant steer it: a form-encoded Content-Type makes Go read the body as
  // parameters (remote=, t= on a build), X-Meta-* reach registries, X-Registry-* carry
  // credentials.
  for (const char* name : {"Host", "user-agent", "Accept-Encoding"}) {
    CAPTURE(name);
    CHECK(tenant_field_forwarded(name));
  }
  for (const char* name : {"Content-Type", "X-Meta-Foo", "X-Registry-Auth", "X-Registry-Config",
                           "Expect", "Cookie", "X-Forwarded-For", "Authorization"}) {
    CAPTURE(name);
    CHECK_FALSE(tenant_field_forwarded(name));
  }
  const auto route = [](std::string_view method, std::string_view target) {
    return classify(method, target)->route;
  };
  // A tenant's registry credentials reach dockerd on its pulls and pushes only.
  CHECK(tenant_field_forwarded(*route("POST", "/v1.41/images/create"), "X-Registry-Auth"));
  CHECK(tenant_field_forwarded(*route("POST", "/v1.41/images/app/push"), "x-registry-auth"));
  CHECK(tenant_field_forwarded(*route("POST", "/v1.41/images/app/push"), "Host"));
  CHECK_FALSE(tenant_field_forwarded(*route("POST", "/v1.41/build"), "X-Registry-Auth"));
  CHECK_FALSE(tenant_field_forwarded(*route("POST", "/v1.41/images/create"), "X-Registry-Config"));
  CHECK(tenant_body_content_type(*route("POST", "/v1.41/build")) == "application/x-tar");
  CHECK(tenant_body_content_type(*route("PUT", "/v1.41/containers/x/archive")) ==
        "application/x-tar");
  CHECK(tenant_body_content_type(*route("POST", "/v1.41/containers/create")) ==
        "application/json");
}
