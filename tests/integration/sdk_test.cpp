// Clients other than the docker CLI: the Python Docker SDK over mTLS, and the old hijack (exec
// start without an Upgrade header) that some SDKs still send.

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"

using berth::test::describe;
using berth::test::ProxyUnderTest;

namespace {

nlohmann::json json_output(const berth::test::RunResult& r) {
  INFO(describe(r));
  REQUIRE(r.ok());
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  return doc;
}

}  // namespace

TEST_CASE("the Python Docker SDK runs a container through berth and reads its logs",
          "[proxy][operator][sdk]") {
  ProxyUnderTest p;
  const auto doc =
      json_output(p.python_client("sdk-run-logs", p.operator_bundle(), {"--name", p.name("sdk")}));
  CAPTURE(doc.dump());
  CHECK(doc["status"] == 0);
  CHECK(doc["stdout"] == "sdk-out-42\n");
  CHECK(doc["stderr"] == "sdk-err\n");
  CHECK(berth::test::container_state(p.name("sdk")).empty());
}

TEST_CASE("the Python Docker SDK gets the exit code of exec_run through berth",
          "[proxy][operator][sdk][exec]") {
  ProxyUnderTest p;
  const auto doc =
      json_output(p.python_client("sdk-exec", p.operator_bundle(), {"--name", p.name("sdk-exec")}));
  CAPTURE(doc.dump());
  CHECK(doc["exit_code"] == 5);
  CHECK(doc["output"] == "exec-out\n");
}

TEST_CASE("an exec started without an Upgrade header gets 200 and a raw stream with its output",
          "[proxy][operator][hijack]") {
  ProxyUnderTest p;
  const auto doc = json_output(
      p.python_client("raw-exec-start", p.operator_bundle(), {"--name", p.name("raw")}));
  CAPTURE(doc.dump());
  CHECK(doc["status"] == 200);
  CHECK(doc["headers"].value("content-type", "") == "application/vnd.docker.raw-stream");
  CHECK(doc["stdout"] == "raw-out\n");
  CHECK(doc["stderr"] == "raw-err\n");
  CHECK(doc["leftover_bytes"] == 0);
}
