// A moved container keeps the id its tenant knows (issue #16): the index resolves it, and
// every answer that names it shows it, whatever id its current host gave it; the hosts'
// events of the move itself are not the tenant's.

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/filter.hpp"
#include "policy/identity.hpp"
#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"
#include "proxy/stdcopy.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

// The id acme knows its container "app" by, the id the second host gave its twin, and an
// unmoved container whose id shares the first digits with the twin's.
const std::string kKnown = "aaaa1111" + std::string(56, '1');
const std::string kTwin = "bbbb2222" + std::string(56, '2');
const std::string kOther = "bbbb3333" + std::string(56, '3');

Principal tenant(const std::string& id) {
  Principal p;
  p.role = Role::tenant;
  p.tenant = id;
  p.user = "alice";
  return p;
}

ContainerInfo container(const std::string& id, const std::string& tenant_id,
                        const std::string& name, const std::string& state,
                        const std::string& shown = {}, const std::string& twin_of = {}) {
  ContainerInfo c{id, tenant_id, name, state, "h1"};
  c.shown = shown;
  c.twin_of = twin_of;
  return c;
}

// acme's app after its move: the twin alone, shown under its first id.
OwnershipIndex moved_index() {
  OwnershipIndex idx;
  idx.put_container(container(kTwin, "acme", "acme_app", "running", kKnown, kKnown));
  idx.put_container(container(kOther, "acme", "acme_db", "running"));
  return idx;
}

json container_event(const std::string& action, const std::string& id, std::int64_t time_nano,
                     json attributes) {
  attributes["berth.tenant"] = "acme";
  attributes["name"] = "acme_app";
  return {{"Type", "container"},
          {"Action", action},
          {"status", action},
          {"id", id},
          {"from", "busybox"},
          {"Actor", {{"ID", id}, {"Attributes", attributes}}},
          {"time", time_nano / 1000000000},
          {"timeNano", time_nano}};
}

std::optional<json> seen(const OwnershipIndex& idx, const json& ev,
                         const std::string& who = "acme") {
  auto out = filter_event(tenant(who), ev.dump(), idx);
  return out ? std::optional(json::parse(*out)) : std::nullopt;
}

}  // namespace

TEST_CASE(
    "a moved container resolves by the id its tenant knows, in full or by a unique "
    "prefix, and by its name, for its tenant only",
    "[policy][index][migrate]") {
  const OwnershipIndex idx = moved_index();
  for (const std::string& ref :
       {kKnown, kKnown.substr(0, 12), std::string("aaaa"), std::string("app")}) {
    CAPTURE(ref);
    const auto found = idx.find_container("acme", ref);
    REQUIRE(found.result == Lookup::found);
    CHECK(found.value.id == kTwin);
  }
  // Its host id is no prefix the tenant knows: "bbbb" is the other container's alone.
  const auto prefix = idx.find_container("acme", "bbbb");
  REQUIRE(prefix.result == Lookup::found);
  CHECK(prefix.value.id == kOther);
  CHECK(idx.find_container("globex", kKnown).result == Lookup::missing);
  CHECK(idx.find_container("globex", "aaaa").result == Lookup::missing);
  CHECK(idx.host_of_container(kKnown) == std::optional<std::string>("h1"));
}

TEST_CASE(
    "while a moved container moves again, its source and its new twin are one "
    "container to its tenant: the running one answers for the id",
    "[policy][index][migrate]") {
  OwnershipIndex idx = moved_index();
  const std::string third = "cccc" + std::string(60, '4');
  idx.put_container(container(third, "acme", "acme_app", "created", kKnown, kTwin));
  for (const std::string& ref : {kKnown, std::string("aaaa")}) {
    const auto found = idx.find_container("acme", ref);
    REQUIRE(found.result == Lookup::found);
    CHECK(found.value.id == kTwin);
  }
  idx.set_container_state(kTwin, "exited");
  idx.set_container_state(third, "running");
  CHECK(idx.find_container("acme", kKnown).value.id == third);
  idx.erase_container(kTwin);
  CHECK(idx.find_container("acme", "aaaa").value.id == third);
  // The removed twin's host id is still shown as the known one (a prune report names it).
  CHECK(idx.shown_ids("acme").at(kTwin) == kKnown);
  CHECK(idx.shown_ids("acme").at(third) == kKnown);
  CHECK(idx.shown_ids("globex").empty());
}

TEST_CASE(
    "a resynchronisation of a host keeps the moved containers' shown ids and the "
    "migrations' records",
    "[policy][index][migrate]") {
  OwnershipIndex idx;
  idx.begin_move(kKnown);
  OwnershipIndex fresh;
  fresh.put_container(container(kTwin, "acme", "acme_app", "running", kKnown, kKnown));
  idx.replace_host("h1", std::move(fresh), true);
  CHECK(idx.find_container("acme", kKnown).value.id == kTwin);
  CHECK(idx.move_hides(kKnown, "", 1));
  OwnershipIndex empty;
  idx.replace_host("h1", std::move(empty), true);
  CHECK(idx.find_container("acme", kKnown).result == Lookup::missing);
  CHECK(idx.shown_ids("acme").at(kTwin) == kKnown);
}

TEST_CASE(
    "only a whole run of 64 hex digits that is a moved container's host id is shown as "
    "the id its tenant knows",
    "[policy][filter][migrate]") {
  const std::unordered_map<std::string, std::string> shown{{kTwin, kKnown}};
  std::string text = "{\"Id\":\"" + kTwin + "\",\"Image\":\"sha256:" + kTwin + "\",\"x\":\"" +
                     kTwin + "0\",\"y\":\"" + kTwin.substr(0, 12) + "\"}";
  show_ids(text, shown);
  CHECK(text == "{\"Id\":\"" + kKnown + "\",\"Image\":\"sha256:" + kKnown + "\",\"x\":\"" + kTwin +
                    "0\",\"y\":\"" + kTwin.substr(0, 12) + "\"}");
}

TEST_CASE(
    "lists, inspect, exec inspect, network inspect, stats and errors show a moved "
    "container under the id its tenant knows",
    "[policy][filter][migrate]") {
  const OwnershipIndex idx = moved_index();
  const json labels = {{"berth.tenant", "acme"}, {"berth.id", kKnown}};
  const json list = json::array(
      {{{"Id", kTwin}, {"Names", {"/acme_app"}}, {"Labels", labels}},
       {{"Id", kOther}, {"Names", {"/acme_db"}}, {"Labels", {{"berth.tenant", "acme"}}}}});
  for (const auto& body :
       {filter_response(ResponseView::container_list, tenant("acme"), list.dump(), idx),
        filter_response_dom(ResponseView::container_list, tenant("acme"), list.dump(), idx)}) {
    REQUIRE(body);
    const json out = json::parse(*body);
    CHECK(out[0]["Id"] == kKnown);
    CHECK(out[0]["Labels"] == json::object());
    CHECK(out[1]["Id"] == kOther);
  }
  const json inspect = {{"Id", kTwin},
                        {"Name", "/acme_app"},
                        {"HostnamePath", "/var/lib/docker/containers/" + kTwin + "/hostname"},
                        {"Config", {{"Labels", labels}}}};
  const json shown = json::parse(
      *filter_response(ResponseView::container_inspect, tenant("acme"), inspect.dump(), idx));
  CHECK(shown["Id"] == kKnown);
  CHECK(shown["HostnamePath"] == "/var/lib/docker/containers/" + kKnown + "/hostname");
  const json exec = {{"ID", "e1"}, {"ContainerID", kTwin}, {"Running", true}};
  CHECK(json::parse(*filter_response(ResponseView::exec_inspect, tenant("acme"), exec.dump(),
                                     idx))["ContainerID"] == kKnown);
  const json stats = {{"id", kTwin}, {"name", "/acme_app"}};
  CHECK(json::parse(filter_stats_line(tenant("acme"), stats.dump(), &idx))["id"] == kKnown);
  CHECK(tenant_error_message(tenant("acme"), "Container " + kTwin + " is not running", &idx) ==
        "Container " + kKnown + " is not running");
  // Another tenant's answers are not rewritten with acme's ids.
  CHECK(tenant_error_message(tenant("globex"), "x " + kTwin, &idx) == "x " + kTwin);
}

TEST_CASE(
    "a container list's id filter matches the id its tenant knows, as dockerd's would "
    "match the id",
    "[policy][filter][migrate]") {
  const OwnershipIndex idx = moved_index();
  const json list = json::array(
      {{{"Id", kTwin},
        {"Names", {"/acme_app"}},
        {"Labels", {{"berth.tenant", "acme"}, {"berth.id", kKnown}}}},
       {{"Id", kOther}, {"Names", {"/acme_db"}}, {"Labels", {{"berth.tenant", "acme"}}}}});
  auto ids = [&](std::vector<std::string> wanted) {
    ListFilter f;
    f.ids = std::move(wanted);
    const json out = json::parse(
        *filter_response(ResponseView::container_list, tenant("acme"), list.dump(), idx, f));
    std::vector<std::string> got;
    for (const auto& c : out) {
      got.push_back(c["Id"]);
    }
    return got;
  };
  CHECK(ids({"aaaa"}) == std::vector<std::string>{kKnown});
  CHECK(ids({kKnown}) == std::vector<std::string>{kKnown});
  CHECK(ids({"bbbb"}) == std::vector<std::string>{kOther});
  CHECK(ids({"^bbbb2"}).empty());
  CHECK(ids({"aaaa", "bbbb3"}) == std::vector<std::string>{kKnown, kOther});
}

TEST_CASE(
    "the tenant's events say nothing of a move's steps on the hosts, and show the moved "
    "container's later events under the id it knows",
    "[policy][filter][migrate]") {
  OwnershipIndex idx;
  idx.put_container(container(kKnown, "acme", "acme_app", "running"));
  CHECK(seen(idx, container_event("die", kKnown, 100, json::object())));
  idx.begin_move(kKnown);
  const json twin_attrs = {{"berth.migrated-from", kKnown}, {"berth.id", kKnown}};
  CHECK_FALSE(seen(idx, container_event("update", kKnown, 200, json::object())));
  CHECK_FALSE(seen(idx, container_event("create", kTwin, 210, twin_attrs)));
  CHECK_FALSE(seen(idx, container_event("die", kKnown, 220, json::object())));
  idx.put_container(container(kTwin, "acme", "acme_app", "running", kKnown, kKnown));
  idx.end_move(kKnown, true, 300);
  CHECK_FALSE(seen(idx, container_event("start", kTwin, 250, twin_attrs)));
  CHECK_FALSE(seen(idx, container_event("destroy", kKnown, 310, json::object())));
  json moved = container_event("moved", kKnown, 305, {{"previousId", kKnown}});
  CHECK(seen(idx, moved));
  CHECK_FALSE(seen(idx, moved, "globex"));
  const auto later = seen(idx, container_event("die", kTwin, 400, twin_attrs));
  REQUIRE(later);
  CHECK((*later)["id"] == kKnown);
  CHECK((*later)["Actor"]["ID"] == kKnown);
  CHECK_FALSE((*later)["Actor"]["Attributes"].contains("berth.id"));
  // A network event of the twin during the move is one of its steps too.
  const json connect = {
      {"Type", "network"},
      {"Action", "connect"},
      {"timeNano", 250},
      {"Actor", {{"ID", "n1"}, {"Attributes", {{"container", kTwin}, {"name", "acme_net"}}}}}};
  CHECK_FALSE(seen(idx, connect));
}

TEST_CASE(
    "a move undone leaves the twin unseen and the source's stop and restart hidden up to "
    "its end, and its later events shown",
    "[policy][filter][migrate]") {
  OwnershipIndex idx;
  idx.put_container(container(kKnown, "acme", "acme_app", "running"));
  idx.begin_move(kKnown);
  idx.end_move(kKnown, false, 300);
  const json twin_attrs = {{"berth.migrated-from", kKnown}, {"berth.id", kKnown}};
  CHECK_FALSE(seen(idx, container_event("die", kKnown, 220, json::object())));
  CHECK_FALSE(seen(idx, container_event("start", kKnown, 290, json::object())));
  CHECK_FALSE(seen(idx, container_event("destroy", kTwin, 295, twin_attrs)));
  CHECK_FALSE(seen(idx, container_event("destroy", kTwin, 900, twin_attrs)));
  CHECK(seen(idx, container_event("die", kKnown, 400, json::object())));
  // A container made later from an image committed from a twin carries its label: shown.
  idx.end_move(kKnown, true, 300);
  CHECK(seen(idx, container_event("create", kOther, 500, {{"berth.migrated-from", kKnown}})));
}

TEST_CASE(
    "berth's word to a session cut by a move goes between two of dockerd's frames, never "
    "inside one, however the bytes are split",
    "[proxy][migrate]") {
  const std::string stream = berth::proxy::stderr_frame("hello\n") +
                             std::string("\x01\0\0\0\0\0\x01\x2c", 8) + std::string(300, 'x');
  CHECK(stream.substr(0, 8) == std::string("\x02\0\0\0\0\0\0\x06", 8));
  for (const std::size_t piece : {1UL, 3UL, 8UL, 13UL, 64UL, 1000UL}) {
    CAPTURE(piece);
    berth::proxy::StdcopyFrames frames;
    CHECK(frames.at_boundary());
    for (std::size_t at = 0; at < stream.size(); at += piece) {
      const std::size_t n = std::min(piece, stream.size() - at);
      frames.feed(stream.data() + at, n);
      const std::size_t end = at + n;
      CHECK(frames.at_boundary() == (end == 14 || end == stream.size()));
    }
    CHECK(frames.at_boundary());
  }
}
