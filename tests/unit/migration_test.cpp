#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/migration.hpp"
#include "proxy/ownership.hpp"

using berth::policy::migration_blockers;
using berth::policy::event_admitted;
using berth::policy::migration_create_body;
using berth::policy::moved_event;
using berth::policy::Recovery;
using berth::policy::recovery_steps;
using berth::policy::SourceSeen;
using Step = berth::policy::RecoveryStep;
using Kind = berth::policy::RecoveryStep::Kind;
using json = nlohmann::json;

namespace {

// A running container on a tenant's overlay, as dockerd 20.10's inspect describes it.
json movable() {
  return json::parse(R"({
    "Id": "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff",
    "Name": "/acme_app",
    "Image": "sha256:aaaa",
    "State": {"Running": true, "Paused": false, "Pid": 42},
    "Config": {"Hostname": "4f1e2d3c4b5a", "Image": "acme/app:v1", "Tty": false,
               "OpenStdin": false, "Cmd": ["sh", "-c", "serve"], "Env": ["A=1"],
               "Labels": {"berth.tenant": "acme"}},
    "HostConfig": {"NetworkMode": "acme_net", "Memory": 67108864,
                   "RestartPolicy": {"Name": "always"}, "Tmpfs": {"/run": ""},
                   "PortBindings": {}, "Devices": [], "Links": null},
    "Mounts": [{"Type": "tmpfs", "Destination": "/run"}],
    "NetworkSettings": {"Networks": {"acme_net": {
      "IPAddress": "10.0.9.7", "Aliases": ["4f1e2d3c4b5a", "app", "web"]}}}
  })");
}

// recovery_steps over sources known by id ("S": host h0, running or not).
std::vector<Recovery> recover(const std::vector<berth::policy::TwinSeen>& twins,
                              const std::vector<berth::policy::KeptSeen>& kept,
                              const std::map<std::string, SourceSeen>& sources,
                              const std::string& in_flight = {}) {
  return recovery_steps(
      twins, kept,
      [&](std::string_view id) -> std::optional<SourceSeen> {
        const auto it = sources.find(std::string(id));
        return it == sources.end() ? std::nullopt : std::optional(it->second);
      },
      [&](std::string_view id) { return id == in_flight; });
}

}  // namespace

TEST_CASE("a running container on one network, with tmpfs only, may move", "[migrate]") {
  CHECK(migration_blockers(movable()).empty());
}

TEST_CASE("what belongs to a container's host, or cannot be carried, keeps it from moving, "
          "each said in words",
          "[migrate]") {
  auto with = [](const char* pointer, json value) {
    json c = movable();
    c[json::json_pointer(pointer)] = std::move(value);
    return migration_blockers(c);
  };
  auto says = [](const std::vector<std::string>& reasons, const std::string& part) {
    for (const auto& r : reasons) {
      if (r.find(part) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  CHECK(says(with("/State/Running", false), "not running"));
  CHECK(says(with("/State/Paused", true), "paused"));
  CHECK(says(with("/Config/Tty", true), "TTY"));
  CHECK(says(with("/Config/OpenStdin", true), "stdin"));
  CHECK(says(with("/Config/Labels/berth.migrate", "no"), "marked not to move"));
  CHECK(says(with("/Mounts/0", json{{"Type", "bind"}, {"Destination", "/data"}}),
             "bind at /data"));
  CHECK(says(with("/Mounts/0", json{{"Type", "volume"}, {"Destination", "/v"}}), "volume at /v"));
  CHECK(says(with("/HostConfig/Devices", json::array({json::object()})), "devices"));
  CHECK(says(with("/HostConfig/Privileged", true), "privileged"));
  CHECK(says(with("/HostConfig/PortBindings", json{{"80/tcp", {{{"HostPort", "8080"}}}}}),
             "publishes port 80/tcp"));
  CHECK(says(with("/HostConfig/NetworkMode", "host"), "network namespace of its host"));
  CHECK(says(with("/HostConfig/NetworkMode", "container:db"), "network namespace of db"));
  CHECK(says(with("/NetworkSettings/Networks/other", json::object()), "more than one network"));
  // Published-port keys with no binding are not a host port.
  CHECK(with("/HostConfig/PortBindings", json{{"80/tcp", nullptr}}).empty());
}

TEST_CASE("the twin's create keeps the configuration, the host configuration, the network, the "
          "address and the chosen aliases, not the alias of the old id",
          "[migrate]") {
  const json body = migration_create_body(movable());
  CHECK(body["Image"] == "acme/app:v1");
  CHECK(body["Hostname"] == "4f1e2d3c4b5a");
  CHECK(body["Cmd"] == json::array({"sh", "-c", "serve"}));
  CHECK(body["Labels"]["berth.tenant"] == "acme");
  CHECK(body["Labels"]["berth.migrated-from"] == movable()["Id"]);
  CHECK(body["Labels"]["berth.id"] == movable()["Id"]);
  CHECK(body["HostConfig"]["Memory"] == 67108864);
  CHECK(body["HostConfig"]["RestartPolicy"]["Name"] == "always");
  const json& endpoint = body["NetworkingConfig"]["EndpointsConfig"]["acme_net"];
  CHECK(endpoint["IPAMConfig"]["IPv4Address"] == "10.0.9.7");
  CHECK(endpoint["Aliases"] == json::array({"app", "web"}));
}

TEST_CASE("a twin of a container that moved before keeps the id its tenant knows, not its "
          "source's id on the host",
          "[migrate]") {
  json twin = movable();
  const std::string first = "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
  twin["Id"] = std::string(64, 'b');
  twin["Config"]["Labels"]["berth.id"] = first;
  const json body = migration_create_body(twin);
  CHECK(body["Labels"]["berth.id"] == first);
  CHECK(body["Labels"]["berth.migrated-from"] == std::string(64, 'b'));
  CHECK(berth::policy::tenant_id_of(twin) == first);
  // A label that is not a full id is no id to show.
  twin["Config"]["Labels"]["berth.id"] = "4f1e2d3c4b5a";
  CHECK(berth::policy::tenant_id_of(twin) == std::string(64, 'b'));
  twin["Config"]["Labels"]["berth.id"] = std::string(64, 'B');
  CHECK(berth::policy::shown_id(twin["Config"]["Labels"]).empty());
}

TEST_CASE("a container switched by two overlapping migrations is held until both have ended",
          "[proxy][migrate]") {
  berth::proxy::SharedIndex index;
  CHECK_FALSE(index.switching("acme_app"));
  index.begin_switch({"old-id", "twin-id", "acme_app"});
  CHECK(index.switching("old-id"));
  CHECK(index.switching("twin-id"));
  CHECK(index.switching("acme_app"));
  CHECK_FALSE(index.switching("acme_other"));
  // A second migration of the same name (the twin moved on) while the first has not ended.
  index.begin_switch({"twin-id", "third-id", "acme_app"});
  index.end_switch({"old-id", "twin-id", "acme_app"});
  CHECK_FALSE(index.switching("old-id"));
  CHECK(index.switching("twin-id"));
  CHECK(index.switching("acme_app"));
  index.end_switch({"twin-id", "third-id", "acme_app"});
  CHECK_FALSE(index.switching("acme_app"));
  CHECK_FALSE(index.switching("twin-id"));
}

TEST_CASE("after a kill mid-migration, a twin that has run stays and its stopped source is "
          "removed with its checkpoint, and a second twin that never started goes first",
          "[migrate]") {
  const auto steps =
      recover({{"T", "h1", "S", "running", "acme", "acme_app"},
               {"T2", "h2", "S", "created", "acme", "acme_app"}},
              {{"h0", "S", "berth-1", "T"}}, {{"S", {"h0", false, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].source == "S");
  CHECK(steps[0].steps ==
        std::vector<Step>{{Kind::discard, "h2", "T2"}, {Kind::commit, "h0", "S"}});
  // A twin that ran and stopped since (the tenant stopped it) is the container all the same.
  CHECK(recover({{"T", "h1", "S", "exited", "acme", "acme_app"}}, {{"h0", "S", "berth-1", "T"}},
                {{"S", {"h0", false, "acme", "acme_app"}}})[0]
            .steps == std::vector<Step>{{Kind::commit, "h0", "S"}});
}

TEST_CASE("after a kill mid-migration, a twin that never started is removed before its stopped "
          "source runs again from the checkpoint its node keeps, or afresh without one",
          "[migrate]") {
  auto steps = recover({{"T", "h1", "S", "created", "acme", "acme_app"}},
                       {{"h0", "S", "berth-1", "T"}}, {{"S", {"h0", false, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps ==
        std::vector<Step>{{Kind::discard, "h1", "T"}, {Kind::rollback, "h0", "S", "berth-1"}});
  steps = recover({}, {{"h0", "S", "", "T"}}, {{"S", {"h0", false, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::rollback, "h0", "S", ""}});
}

TEST_CASE("a source that never stopped into its checkpoint keeps running, its checkpoint "
          "released, and a twin made before the dump is removed",
          "[migrate]") {
  auto steps = recover({}, {{"h0", "S", "berth-1", "T"}}, {{"S", {"h0", true, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::release, "h0", "S"}});
  steps = recover({{"T", "h1", "S", "created", "acme", "acme_app"}}, {},
                  {{"S", {"h0", true, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::discard, "h1", "T"}});
}

TEST_CASE("once the source is gone nothing labelled with it is touched, started or not, and a "
          "checkpoint left of it is released",
          "[migrate]") {
  // A moved container, and one of the tenant's made from an image committed from it.
  CHECK(recover({{"T", "h1", "S", "created", "acme", "acme_app"},
                 {"U", "h0", "R", "running", "acme", "acme_db"}},
                {}, {})
            .empty());
  const auto steps = recover({{"T", "h1", "S", "created", "acme", "acme_app"}},
                             {{"h0", "S", "berth-1", "T"}}, {});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::release, "h0", "S"}});
}

TEST_CASE("a migration this proxy drives, by its source or by a twin moving on, is left to it, "
          "and a source stopped without a kept checkpoint is not started by recovery",
          "[migrate]") {
  const std::vector<berth::policy::TwinSeen> twin{{"T", "h1", "S", "created", "acme", "acme_app"}};
  const std::map<std::string, SourceSeen> stopped{{"S", {"h0", false, "acme", "acme_app"}}};
  CHECK(recover(twin, {{"h0", "S", "berth-1", "T"}}, stopped, "S").empty());
  CHECK(recover(twin, {{"h0", "S", "berth-1", "T"}}, stopped, "T").empty());
  CHECK(recover({}, {}, stopped).empty());
}

TEST_CASE("a container whose migration label names another tenant's container, or one of "
          "another name, is no twin of it: the victim is never removed nor rolled back",
          "[migrate]") {
  // A label from an image berth did not build, naming a running container it should not touch.
  CHECK(recover({{"X", "h1", "S", "running", "evil", "evil_app"}}, {},
                {{"S", {"h0", true, "acme", "acme_app"}}})
            .empty());
  CHECK(recover({{"X", "h1", "S", "running", "acme", "acme_other"}}, {},
                {{"S", {"h0", false, "acme", "acme_app"}}})
            .empty());
  // With a kept checkpoint of the victim (a migration cut mid-way), only the recorded twin
  // counts: the impostor's running does not commit (remove) the victim.
  auto steps = recover({{"X", "h1", "S", "running", "evil", "evil_app"}},
                       {{"h0", "S", "berth-1", "T"}}, {{"S", {"h0", false, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::rollback, "h0", "S", "berth-1"}});
  // The twin the node recorded is the twin even when renamed since.
  steps = recover({{"T", "h1", "S", "running", "acme", "acme_renamed"}},
                  {{"h0", "S", "berth-1", "T"}}, {{"S", {"h0", false, "acme", "acme_app"}}});
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].steps == std::vector<Step>{{Kind::commit, "h0", "S"}});
}

TEST_CASE("a recovery holds its source as a migration, so that none begins meanwhile, and "
          "every beginning and end of one changes the epoch a recovery reads under",
          "[proxy][migrate]") {
  berth::proxy::SharedIndex index;
  const auto epoch = index.migration_epoch();
  {
    const berth::proxy::MigrationHold first(index, "S");
    CHECK(first.held());
    CHECK(index.migrating("S"));
    const berth::proxy::MigrationHold second(index, "S");
    CHECK_FALSE(second.held());
  }
  CHECK_FALSE(index.migrating("S"));
  CHECK(index.migration_epoch() != epoch);
}

TEST_CASE("the moved event is a container event of the id the tenant knows with the container's "
          "labels, image and stored name, and the id it had on its host",
          "[migrate]") {
  json twin = movable();
  twin["Id"] = std::string(64, 'c');
  twin["Config"]["Labels"]["berth.id"] = std::string(64, '9');
  const json ev = moved_event(twin, 1700000000123456789);
  CHECK(ev["Type"] == "container");
  CHECK(ev["Action"] == "moved");
  CHECK(ev["status"] == "moved");
  CHECK(ev["id"] == std::string(64, '9'));
  CHECK(ev["Actor"]["ID"] == std::string(64, '9'));
  CHECK(moved_event(movable(), 1)["id"] == movable()["Id"]);
  CHECK(ev["Actor"]["Attributes"]["name"] == "acme_app");
  CHECK(ev["Actor"]["Attributes"]["image"] == "acme/app:v1");
  CHECK(ev["Actor"]["Attributes"]["previousId"] == std::string(64, 'c'));
  CHECK(ev["Actor"]["Attributes"]["berth.tenant"] == "acme");
  CHECK(ev["time"] == 1700000000);
  CHECK(ev["timeNano"] == 1700000000123456789);
}

TEST_CASE("an events filter admits the moved event as dockerd's filter would, and one on a "
          "network, a volume or another action, type, container or label excludes it",
          "[migrate]") {
  json twin = movable();
  twin["Config"]["Labels"]["berth.id"] = std::string(64, '9');
  const json ev = moved_event(twin, 1);
  using F = std::map<std::string, std::vector<std::string>>;
  CHECK(event_admitted(F{}, ev));
  CHECK(event_admitted(F{{"type", {"network", "container"}}, {"event", {"die", "moved"}}}, ev));
  CHECK(event_admitted(F{{"container", {std::string(64, '9')}}}, ev));
  CHECK(event_admitted(F{{"container", {movable()["Id"].get<std::string>()}}}, ev));
  CHECK(event_admitted(F{{"container", {"acme_app"}}}, ev));
  CHECK(event_admitted(F{{"image", {"acme/app"}}}, ev));
  CHECK(event_admitted(F{{"label", {"berth.tenant=acme", "berth.tenant"}}}, ev));
  CHECK(event_admitted(F{{"scope", {"local"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"event", {"die"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"type", {"network"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"container", {"acme_db"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"image", {"acme/ap"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"label", {"berth.tenant=acme", "team"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"network", {"acme_net"}}}, ev));
  CHECK_FALSE(event_admitted(F{{"volume", {"data"}}}, ev));
}
