// What a tenant sees of dockerd's answers: lists, inspect documents, system df, /info, events,
// build output and error messages contain only its own objects (and shared images), under the
// names it gave them, without berth.* labels, berth's cgroup parent or anything of another
// tenant's, not even a name or a count.

#include <catch2/catch.hpp>

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/filter.hpp"
#include "policy/identity.hpp"
#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

std::string id64(std::string_view prefix) {
  std::string id(prefix);
  id.resize(64, '0');
  return id;
}

std::string image_id(std::string_view prefix) { return "sha256:" + id64(prefix); }

const std::string kAcmeWeb = id64("a0e1");
const std::string kAcmeDb = id64("a0d8");
const std::string kAcmeCache = id64("a0c4");
const std::string kAcmeUnnamed = id64("a0f3");
const std::string kGlobexWeb = id64("9e0b");
const std::string kGlobexSecret = id64("9e5e");
const std::string kOperatorTool = id64("0e7a");
const std::string kAcmeBridgeNet = id64("ab01");
const std::string kAcmeFrontNet = id64("ab02");
const std::string kGlobexBackNet = id64("9b01");
const std::string kHostNet = id64("1001");
const std::string kAcmeAnonVolume = id64("3f3f");
const std::string kOtherAnonVolume = id64("4f4f");
const std::string kBusybox = image_id("bb01");
const std::string kAcmeApp = image_id("a9a9");
const std::string kAcmeDangling = image_id("a9d0");
const std::string kGlobexApp = image_id("9a9a");
const std::string kDangling = image_id("dd01");
const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

OwnershipIndex fixture() {
  OwnershipIndex idx;
  idx.put_container({kAcmeWeb, "acme", "acme_web", "running"});
  idx.put_container({kAcmeDb, "acme", "acme_db", "exited"});
  idx.put_container({kAcmeCache, "acme", "acme_cache", "paused"});
  idx.put_container({kAcmeUnnamed, "acme", "happy_turing", "running"});
  idx.put_container({kGlobexWeb, "globex", "globex_web", "running"});
  idx.put_container({kGlobexSecret, "globex", "globex_secret", "running"});
  idx.put_container({kOperatorTool, "", "portainer", "running"});
  idx.put_network({kAcmeBridgeNet, "acme", "acme_bridge"});
  idx.put_network({kAcmeFrontNet, "acme", "acme_front"});
  idx.put_network({kGlobexBackNet, "globex", "globex_back"});
  idx.put_network({kHostNet, "", "host"});
  idx.put_volume({"acme_data", "acme"});
  idx.put_volume({kAcmeAnonVolume, "acme"});
  idx.put_volume({"globex_data", "globex"});
  idx.put_image({kBusybox, "", {"busybox:latest", "acme.berth.local/mine:v1"}});
  idx.put_image({kAcmeApp, "acme", {"acme.berth.local/app:v1"}});
  idx.put_image({kAcmeDangling, "acme", {}});
  idx.put_image({kGlobexApp, "globex", {"globex.berth.local/app:v1"}});
  idx.put_image({kDangling, "", {}});
  return idx;
}

const OwnershipIndex& shared_index() {
  static const OwnershipIndex idx = fixture();
  return idx;
}

Principal tenant(const std::string& id = "acme") {
  Principal p;
  p.role = Role::tenant;
  p.tenant = id;
  p.user = "alice";
  return p;
}

Principal operator_principal() {
  Principal p;
  p.role = Role::operator_;
  p.user = "root";
  return p;
}

json filtered(ResponseView view, const json& body, const Principal& who = tenant()) {
  const auto out = filter_response(view, who, body.dump(), shared_index());
  INFO(body.dump());
  REQUIRE(out.has_value());
  return json::parse(*out);
}

std::optional<json> event(const json& ev, const Principal& who = tenant()) {
  const auto out = filter_event(who, ev.dump(), shared_index());
  if (!out) {
    return std::nullopt;
  }
  return json::parse(*out);
}

bool mentions(const json& doc, std::string_view text) {
  return doc.dump().find(text) != std::string::npos;
}

std::set<std::string> keys(const json& obj) {
  std::set<std::string> out;
  for (const auto& [k, v] : obj.items()) {
    out.insert(k);
  }
  return out;
}

json container_list() {
  return json::parse(R"([
    {"Id":")" + kAcmeWeb + R"(","Names":["/acme_web"],"Image":"acme.berth.local/app:v1",
     "ImageID":")" + kAcmeApp + R"(","State":"running",
     "Labels":{"berth.tenant":"acme","berth.billing":"gold","com.example":"1"},
     "HostConfig":{"NetworkMode":"acme_bridge"},
     "NetworkSettings":{"Networks":{"acme_bridge":{"NetworkID":")" + kAcmeBridgeNet + R"("},
                                    "acme_front":{"NetworkID":")" + kAcmeFrontNet + R"("}}},
     "Mounts":[{"Type":"volume","Name":"acme_data","Destination":"/data"}]},
    {"Id":")" + kAcmeDb + R"(","Names":["/acme_db","/globex_web/acme_db"],"Image":"busybox",
     "Labels":{"berth.tenant":"acme"},"HostConfig":{"NetworkMode":"container:)" + kAcmeWeb + R"("}},
    {"Id":")" + kGlobexWeb + R"(","Names":["/globex_web"],"Image":"globex.berth.local/app:v1",
     "Labels":{"berth.tenant":"globex"},"HostConfig":{"NetworkMode":"globex_back"}},
    {"Id":")" + kOperatorTool + R"(","Names":["/portainer"],"Image":"portainer","Labels":{}},
    {"Id":")" + kGlobexSecret + R"(","Names":["/globex_secret"],"Image":"x"},
    {"Id":")" + kAcmeUnnamed + R"(","Names":["/happy_turing"],"Image":"busybox",
     "Labels":{"berth.tenant":"acme"}}
  ])");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

TEST_CASE("a tenant's container list shows only its own containers under the names it gave",
          "[policy][filter]") {
  const json out = filtered(ResponseView::container_list, container_list());
  REQUIRE(out.is_array());
  REQUIRE(out.size() == 3);
  CHECK(out[0]["Id"] == kAcmeWeb);
  CHECK(out[1]["Id"] == kAcmeDb);
  CHECK(out[2]["Id"] == kAcmeUnnamed);
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, "portainer"));
  CHECK_FALSE(mentions(out, "berth."));
  CHECK_FALSE(mentions(out, "acme_"));

  SECTION("names, labels and image") {
    const json& web = out[0];
    CHECK(web["Names"] == json{"/web"});
    CHECK(web["Labels"] == json{{"com.example", "1"}});
    CHECK(web["Image"] == "app:v1");
  }
  SECTION("networks and mounts") {
    const json& web = out[0];
    CHECK(web["HostConfig"]["NetworkMode"] == "bridge");
    CHECK(keys(web["NetworkSettings"]["Networks"]) == std::set<std::string>{"bridge", "front"});
    CHECK(web["Mounts"][0]["Name"] == "data");
  }
  SECTION("a name that passes through another tenant's container is not shown") {
    CHECK(out[1]["Names"] == json{"/db"});
    CHECK(out[1]["HostConfig"]["NetworkMode"] == "container:" + kAcmeWeb);
    CHECK(out[1]["Image"] == "busybox");
  }
}

TEST_CASE("another tenant sees the same list as its own, and nothing of the first tenant's",
          "[policy][filter]") {
  const json out = filtered(ResponseView::container_list, container_list(), tenant("globex"));
  REQUIRE(out.size() == 1);
  CHECK(out[0]["Id"] == kGlobexWeb);
  CHECK(out[0]["Names"] == json{"/web"});
  CHECK(out[0]["Image"] == "app:v1");
  CHECK(out[0]["HostConfig"]["NetworkMode"] == "back");
  CHECK_FALSE(mentions(out, "acme"));
}

TEST_CASE("a container the tenant created without a name is listed under dockerd's name for it",
          "[policy][filter]") {
  // Containers created before berth named unnamed containers itself carry dockerd's name;
  // inspect shows it, and the list must too (a private host never has an empty NAMES column).
  const json out = filtered(ResponseView::container_list, container_list());
  REQUIRE(out.size() == 3);
  CHECK(out[2]["Names"] == json{"/happy_turing"});
}

TEST_CASE("container inspect shows the tenant's names and hides berth's own settings",
          "[policy][filter]") {
  const json in = json::parse(R"({
    "Id":")" + kAcmeWeb + R"(","Name":"/acme_web","Image":")" + kAcmeApp + R"(",
    "Config":{"Image":"acme.berth.local/app:v1","Hostname":"a0e1",
              "Labels":{"berth.tenant":"acme","com.example":"1"}},
    "HostConfig":{"CgroupParent":"/berth/acme","NetworkMode":"acme_front",
                  "Binds":["acme_data:/data:ro","acme_cache:/cache"],"VolumesFrom":[")" +
                              kAcmeDb + R"("]},
    "NetworkSettings":{"Networks":{"acme_front":{"Aliases":["web"]},"acme_bridge":{}}},
    "Mounts":[{"Type":"volume","Name":"acme_data","Destination":"/data"}]})");
  const json out = filtered(ResponseView::container_inspect, in);
  CHECK(out["Name"] == "/web");
  CHECK(out["Config"]["Labels"] == json{{"com.example", "1"}});
  CHECK(out["Config"]["Image"] == "app:v1");
  CHECK(out["HostConfig"]["CgroupParent"] == "");
  CHECK(out["HostConfig"]["NetworkMode"] == "front");
  CHECK(out["HostConfig"]["Binds"] == json{"data:/data:ro", "cache:/cache"});
  CHECK(out["HostConfig"]["VolumesFrom"] == json{kAcmeDb});
  CHECK(keys(out["NetworkSettings"]["Networks"]) == std::set<std::string>{"front", "bridge"});
  CHECK(out["Mounts"][0]["Name"] == "data");
  CHECK_FALSE(mentions(out, "berth"));
  CHECK_FALSE(mentions(out, "acme_"));
}

TEST_CASE("network modes that are not networks are shown as dockerd wrote them",
          "[policy][filter]") {
  auto mode = GENERATE_COPY(as<std::string>{}, "none", "default", "container:" + kAcmeDb);
  CAPTURE(mode);
  const json out = filtered(ResponseView::container_inspect,
                            json{{"Name", "/acme_web"}, {"HostConfig", {{"NetworkMode", mode}}}});
  CHECK(out["HostConfig"]["NetworkMode"] == mode);
}

// The container views are rewritten over dockerd's bytes (no DOM); filter_response_dom is the
// reference they must agree with, document for document.

namespace {

std::string inspect_body() {
  return R"({"Id":")" + kAcmeWeb + R"(","Created":"2024-01-01T00:00:00Z","Name":"/acme_web",)"
         R"("State":{"Status":"running","Pid":42,"ExitCode":0},"Image":")" + kAcmeApp + R"(",)"
         R"("HostConfig":{"Binds":["acme_data:/data:ro","/srv:/srv","acme_x",7],)"
         R"("CgroupParent":"/berth/acme","NetworkMode":"acme_front","Links":["/acme_db:/acme_web/db",)"
         R"("/globex_web:/acme_web/gw","/acme_db"],"NanoCpus":0,"Memory":0.5},)"
         R"("Mounts":[{"Type":"volume","Name":"acme_data","Source":"/var/lib/docker/volumes/acme_data/_data",)"
         R"("Destination":"/data"},{"Type":"bind","Source":"/srv"},"odd"],)"
         R"("Config":{"Hostname":"a0e1","Env":["A=\u003cb\u003e"],"Image":"acme.berth.local/app:v1",)"
         R"("Labels":{"berth.tenant":"acme","berth.cgroup":"x","com.example":"\u00e9"}},)"
         R"("NetworkSettings":{"Bridge":"","Networks":{"acme_front":{"Aliases":["web"]},)"
         R"("acme_bridge":{"IPAddress":"10.0.0.2"}}}})";
}

}  // namespace

TEST_CASE("a tenant's container list and inspect are the documents the DOM filter makes",
          "[policy][filter][stream]") {
  auto [view, body] = GENERATE(table<ResponseView, std::string>({
      {ResponseView::container_list, container_list().dump()},
      {ResponseView::container_list, " \n[ ]\n"},
      {ResponseView::container_list, R"([1,"x",null,{"Labels":{"berth.tenant":"acme"}},[]])"},
      {ResponseView::container_list,
       R"([{"Names":["/acme_web","/acme_db/web"],"Labels":{"berth.tenant":"acme"},"Image":7,)"
       R"("HostConfig":{"NetworkMode":"host"},"NetworkSettings":{"Networks":null},"Mounts":null}])"},
      {ResponseView::container_list,
       R"([{"Names":["/\u0061cme_web"],"Labels":{"berth.tenant":"\u0061cme","x":"y"}}])"},
      {ResponseView::container_list,
       R"([{"Labels":{"berth.tenant":"acme"},"Image":"globex.berth.local/app:v1"}])"},
      {ResponseView::container_inspect, inspect_body()},
      {ResponseView::container_inspect, R"({"Name":"/globex_web","Config":{},"HostConfig":{}})"},
      {ResponseView::container_inspect,
       R"({"Name":5,"Config":{"Labels":null,"Image":null},"HostConfig":{"Links":null,)"
       R"("Binds":null,"NetworkMode":"container:x"},"NetworkSettings":[],"Mounts":{}})"},
      {ResponseView::container_inspect, "{}"},
  }));
  auto who = GENERATE(as<std::string>{}, "acme", "globex");
  CAPTURE(body, who);
  const auto streamed = filter_response(view, tenant(who), body, shared_index());
  const auto reference = filter_response_dom(view, tenant(who), body, shared_index());
  REQUIRE(streamed.has_value() == reference.has_value());
  if (streamed) {
    CHECK(json::parse(*streamed) == json::parse(*reference));
  }
}

TEST_CASE("a tenant's container views keep dockerd's member order, numbers and escapes",
          "[policy][filter][stream]") {
  // A re-serialized document would sort the members, print 1.5 and unescape \u0026.
  const std::string list = R"([{"Names":["/acme_web"],"Id":"x","Created":1.50,)"
                           R"("Labels":{"berth.tenant":"acme","b":"\u0026"}}])";
  CHECK(filter_response(ResponseView::container_list, tenant(), list, shared_index()) ==
        R"([{"Names":["/web"],"Id":"x","Created":1.50,"Labels":{"b":"\u0026"}}])");
  const std::string inspect =
      R"({"Name":"/acme_web","Config":{"Labels":{"berth.tenant":"acme"},"Tty":true},)"
      R"("HostConfig":{"CgroupParent":"/berth/acme"},"Args":["\u003c"]})";
  CHECK(filter_response(ResponseView::container_inspect, tenant(), inspect, shared_index()) ==
        R"({"Name":"/web","Config":{"Labels":{},"Tty":true},"HostConfig":{"CgroupParent":""},)"
        R"("Args":["\u003c"]})");
}

TEST_CASE("a container view the streaming rewrite cannot judge alone gets the DOM filter's answer",
          "[policy][filter][stream]") {
  auto [view, body] = GENERATE(table<ResponseView, std::string>({
      // nlohmann keeps the last of two equal keys: the owner is globex.
      {ResponseView::container_list,
       R"([{"Names":["/acme_web"],"Labels":{"berth.tenant":"acme","berth.tenant":"globex"}}])"},
      {ResponseView::container_list,
       R"([{"Labels":{"berth.tenant":"globex"},"Labels":{"berth.tenant":"acme"}}])"},
      {ResponseView::container_inspect, R"({"Name":"/acme_web","Name":"/globex_web"})"},
      // acme_bridge and the shared bridge would both be shown as "bridge".
      {ResponseView::container_inspect,
       R"({"NetworkSettings":{"Networks":{"acme_bridge":{"A":1},"bridge":{"A":2}}}})"},
      {ResponseView::container_inspect, R"({"Name":"/acme_web","Size":1e3})"},
      {ResponseView::container_inspect, "\xEF\xBB\xBF{\"Name\":\"/acme_web\"}"},
      {ResponseView::container_inspect, R"({"Name":"/acme_web"} x)"},
      {ResponseView::container_inspect, "{\"Name\":\"/acme_\xC0web\"}"},
      {ResponseView::container_list, R"([{"Labels":{"berth.tenant":"acme"}})"},
  }));
  CAPTURE(body);
  CHECK(filter_response(view, tenant(), body, shared_index()) ==
        filter_response_dom(view, tenant(), body, shared_index()));
}

TEST_CASE("a container name or link that is not a string fails as it did with the DOM filter",
          "[policy][filter][stream]") {
  auto [view, body] = GENERATE(table<ResponseView, std::string>({
      {ResponseView::container_list, R"([{"Names":[1],"Labels":{"berth.tenant":"acme"}}])"},
      {ResponseView::container_inspect, R"({"HostConfig":{"Links":[null]}})"},
  }));
  CAPTURE(body);
  CHECK_THROWS(filter_response_dom(view, tenant(), body, shared_index()));
  CHECK_THROWS(filter_response(view, tenant(), body, shared_index()));
}

// ---------------------------------------------------------------------------------------------
// Networks and volumes
// ---------------------------------------------------------------------------------------------

TEST_CASE("a tenant's network list shows its own networks, its default one as bridge",
          "[policy][filter][network]") {
  const json in = json::parse(R"([
    {"Name":"acme_bridge","Id":")" + kAcmeBridgeNet + R"(","Labels":{"berth.tenant":"acme"}},
    {"Name":"acme_front","Id":")" + kAcmeFrontNet + R"(",
     "Labels":{"berth.tenant":"acme","com.docker.compose.network":"front"}},
    {"Name":"globex_back","Id":")" + kGlobexBackNet + R"(","Labels":{"berth.tenant":"globex"}},
    {"Name":"bridge","Id":"x","Labels":{}},
    {"Name":"host","Id":")" + kHostNet + R"(","Labels":{}},
    {"Name":"none","Id":"y","Labels":null}])");
  const json out = filtered(ResponseView::network_list, in);
  REQUIRE(out.size() == 2);
  CHECK(out[0]["Name"] == "bridge");
  CHECK(out[0]["Id"] == kAcmeBridgeNet);
  CHECK(out[1]["Name"] == "front");
  CHECK(out[1]["Labels"] == json{{"com.docker.compose.network", "front"}});
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, "berth."));
}

TEST_CASE("network inspect shows the tenant's containers under their names",
          "[policy][filter][network]") {
  const json in = json::parse(R"({"Name":"acme_front","Id":")" + kAcmeFrontNet + R"(",
    "Labels":{"berth.tenant":"acme"},
    "Containers":{")" + kAcmeWeb + R"(":{"Name":"acme_web","IPv4Address":"10.0.0.2/24"}}})");
  const json out = filtered(ResponseView::network_inspect, in);
  CHECK(out["Name"] == "front");
  CHECK(out["Labels"] == json::object());
  CHECK(out["Containers"][kAcmeWeb]["Name"] == "web");
}

TEST_CASE("network inspect never shows another tenant's or the operator's container on it",
          "[policy][filter][network]") {
  // An operator may connect its own containers to a tenant's network; their names and
  // addresses are not the tenant's to see.
  const json in = json::parse(R"({"Name":"acme_front","Id":")" + kAcmeFrontNet + R"(",
    "Labels":{"berth.tenant":"acme"},"Containers":{
      ")" + kAcmeWeb + R"(":{"Name":"acme_web","IPv4Address":"10.0.0.2/24"},
      ")" + kGlobexWeb + R"(":{"Name":"globex_web","IPv4Address":"10.0.0.3/24"},
      ")" + kOperatorTool + R"(":{"Name":"portainer","IPv4Address":"10.0.0.4/24"}}})");
  const json out = filtered(ResponseView::network_inspect, in);
  CHECK(keys(out["Containers"]) == std::set<std::string>{kAcmeWeb});
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, "portainer"));
}

TEST_CASE("a tenant's volume list shows volumes it owns by label or by the index",
          "[policy][filter][volumes]") {
  const json in = json::parse(R"({"Volumes":[
    {"Name":"acme_data","Driver":"local","Labels":{"berth.tenant":"acme","team":"x"}},
    {"Name":")" + kAcmeAnonVolume + R"(","Driver":"local","Labels":null},
    {"Name":"globex_data","Driver":"local","Labels":{"berth.tenant":"globex"}},
    {"Name":")" + kOtherAnonVolume + R"(","Driver":"local","Labels":null},
    {"Name":"acme_cache","Driver":"local","Labels":{"berth.tenant":"acme"}}],
    "Warnings":["volume globex_old is in a bad state"]})");
  const json out = filtered(ResponseView::volume_list, in);
  REQUIRE(out["Volumes"].size() == 3);
  CHECK(out["Volumes"][0]["Name"] == "data");
  CHECK(out["Volumes"][0]["Labels"] == json{{"team", "x"}});
  CHECK(out["Volumes"][1]["Name"] == kAcmeAnonVolume);
  CHECK(out["Volumes"][2]["Name"] == "cache");
  CHECK(out["Warnings"] == json::array());
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, kOtherAnonVolume));
}

TEST_CASE("an empty volume list stays a list", "[policy][filter][volumes]") {
  const json out = filtered(ResponseView::volume_list, json{{"Volumes", nullptr},
                                                            {"Warnings", nullptr}});
  CHECK(out["Volumes"] == json::array());
  CHECK(out["Warnings"] == json::array());
}

TEST_CASE("volume inspect shows the tenant's name and no berth labels",
          "[policy][filter][volumes]") {
  const json out = filtered(ResponseView::volume_inspect,
                            json{{"Name", "acme_data"},
                                 {"Labels", {{"berth.tenant", "acme"}, {"x", "y"}}}});
  CHECK(out["Name"] == "data");
  CHECK(out["Labels"] == json{{"x", "y"}});
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

namespace {

json image_list() {
  return json::parse(R"([
    {"Id":")" + kBusybox + R"(","Size":100,"Labels":null,
     "RepoTags":["busybox:latest","acme.berth.local/mine:v1","globex.berth.local/theirs:v2"],
     "RepoDigests":["busybox@)" + kDigest + R"(","globex.berth.local/theirs@)" + kDigest + R"("]},
    {"Id":")" + kAcmeApp + R"(","Size":10,"Labels":{"berth.tenant":"acme"},
     "RepoTags":["acme.berth.local/app:v1"],"RepoDigests":[]},
    {"Id":")" + kGlobexApp + R"(","Size":20,"Labels":{"berth.tenant":"globex"},
     "RepoTags":["globex.berth.local/app:v1"],"RepoDigests":[]},
    {"Id":")" + kDangling + R"(","Size":30,"Labels":null,
     "RepoTags":["<none>:<none>"],"RepoDigests":["<none>@<none>"]},
    {"Id":")" + kAcmeDangling + R"(","Size":40,"Labels":{"berth.tenant":"acme","x":"1"},
     "RepoTags":["<none>:<none>"],"RepoDigests":["<none>@<none>"]}
  ])");
}

}  // namespace

TEST_CASE("a tenant's image list shows its own and shared images with only tags it may see",
          "[policy][filter][images]") {
  const json out = filtered(ResponseView::image_list, image_list());
  REQUIRE(out.size() == 3);
  CHECK(out[0]["Id"] == kBusybox);
  CHECK(out[0]["RepoTags"] == json{"busybox:latest", "mine:v1"});
  CHECK(out[0]["RepoDigests"] == json{"busybox@" + kDigest});
  CHECK(out[1]["Id"] == kAcmeApp);
  CHECK(out[1]["RepoTags"] == json{"app:v1"});
  CHECK(out[1]["Labels"].is_null());
  CHECK(out[2]["Id"] == kAcmeDangling);
  CHECK(out[2]["RepoTags"] == json{"<none>:<none>"});
  CHECK(out[2]["Labels"] == json{{"x", "1"}});
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, "berth"));
}

TEST_CASE("another tenant sees the shared image with its own tags and not the first tenant's",
          "[policy][filter][images]") {
  const json out = filtered(ResponseView::image_list, image_list(), tenant("globex"));
  REQUIRE(out.size() == 2);
  CHECK(out[0]["RepoTags"] == json{"busybox:latest", "theirs:v2"});
  CHECK(out[0]["RepoDigests"] == json{"busybox@" + kDigest, "theirs@" + kDigest});
  CHECK(out[1]["Id"] == kGlobexApp);
  CHECK(out[1]["RepoTags"] == json{"app:v1"});
  CHECK_FALSE(mentions(out, "acme"));
  CHECK_FALSE(mentions(out, "mine:v1"));
}

TEST_CASE("image inspect hides other tenants' tags, berth labels and the build container",
          "[policy][filter][images]") {
  const json in = json::parse(R"({"Id":")" + kBusybox + R"(",
    "RepoTags":["busybox:latest","globex.berth.local/theirs:v2","acme.berth.local/mine:v1"],
    "RepoDigests":["globex.berth.local/theirs@)" + kDigest + R"("],
    "Container":")" + kGlobexWeb + R"(",
    "ContainerConfig":{"Labels":{"berth.tenant":"globex","y":"2"}},
    "Config":{"Labels":{"berth.tenant":"acme","x":"1"}}})");
  const json out = filtered(ResponseView::image_inspect, in);
  CHECK(out["RepoTags"] == json{"busybox:latest", "mine:v1"});
  CHECK(out["RepoDigests"] == json::array());
  CHECK(out["Container"] == "");
  CHECK(out["ContainerConfig"]["Labels"] == json{{"y", "2"}});
  CHECK(out["Config"]["Labels"] == json{{"x", "1"}});
  CHECK_FALSE(mentions(out, "globex"));
}

TEST_CASE("image history shows only tags the tenant may see", "[policy][filter][images]") {
  const json in = json::parse(R"([
    {"Id":")" + kBusybox + R"(","Tags":["busybox:latest","globex.berth.local/theirs:v2",
                                        "acme.berth.local/mine:v1"]},
    {"Id":"<missing>","Tags":null}])");
  const json out = filtered(ResponseView::image_history, in);
  CHECK(out[0]["Tags"] == json{"busybox:latest", "mine:v1"});
  CHECK(out[1]["Tags"].is_null());
  CHECK_FALSE(mentions(out, "globex"));
}

// ---------------------------------------------------------------------------------------------
// system df and /info
// ---------------------------------------------------------------------------------------------

namespace {

json system_df() {
  return json::parse(R"({"LayersSize":1000,
    "Images":[
      {"Id":")" + kBusybox + R"(","Size":100,"SharedSize":0,"Containers":3,"Labels":null,
       "RepoTags":["busybox:latest"]},
      {"Id":")" + kAcmeApp + R"(","Size":10,"Containers":0,"Labels":{"berth.tenant":"acme"},
       "RepoTags":["acme.berth.local/app:v1"]},
      {"Id":")" + kGlobexApp + R"(","Size":20,"Containers":0,"Labels":{"berth.tenant":"globex"},
       "RepoTags":["globex.berth.local/app:v1"]}],
    "Containers":[
      {"Id":")" + kAcmeWeb + R"(","Names":["/acme_web"],"ImageID":")" + kBusybox + R"(",
       "Labels":{"berth.tenant":"acme"},"SizeRw":5},
      {"Id":")" + kGlobexWeb + R"(","Names":["/globex_web"],"ImageID":")" + kBusybox + R"(",
       "Labels":{"berth.tenant":"globex"},"SizeRw":7},
      {"Id":")" + kGlobexSecret + R"(","Names":["/globex_secret"],"ImageID":")" + kBusybox + R"(",
       "Labels":{"berth.tenant":"globex"},"SizeRw":9}],
    "Volumes":[
      {"Name":"acme_data","Labels":{"berth.tenant":"acme"},"UsageData":{"Size":1,"RefCount":1}},
      {"Name":"globex_data","Labels":{"berth.tenant":"globex"},"UsageData":{"Size":2,"RefCount":2}}],
    "BuildCache":[{"ID":"globex-cache","Size":500}],
    "BuilderSize":500})");
}

}  // namespace

TEST_CASE("system df accounts only the tenant's images, containers and volumes",
          "[policy][filter][df]") {
  const json out = filtered(ResponseView::system_df, system_df());
  REQUIRE(out["Images"].size() == 2);
  CHECK(out["Images"][0]["Id"] == kBusybox);
  // The shared image is used by one of acme's containers and two of globex's: acme sees 1.
  CHECK(out["Images"][0]["Containers"] == 1);
  CHECK(out["Images"][1]["RepoTags"] == json{"app:v1"});
  CHECK(out["Images"][1]["Containers"] == 0);
  CHECK(out["LayersSize"] == 110);
  REQUIRE(out["Containers"].size() == 1);
  CHECK(out["Containers"][0]["Names"] == json{"/web"});
  REQUIRE(out["Volumes"].size() == 1);
  CHECK(out["Volumes"][0]["Name"] == "data");
  CHECK(out["BuildCache"] == json::array());
  CHECK_FALSE(mentions(out, "globex"));
}

TEST_CASE("system df reveals no size of the daemon-wide build cache",
          "[policy][filter][df]") {
  // BuilderSize (still sent by dockerd 20.10) is the size of every tenant's build cache.
  const json out = filtered(ResponseView::system_df, system_df());
  CHECK(out.value("BuilderSize", 0) == 0);
}

TEST_CASE("an image list never shows how many containers use a shared image",
          "[policy][filter][images]") {
  json list = image_list();
  list[0]["Containers"] = 5;
  const json out = filtered(ResponseView::image_list, list);
  REQUIRE_FALSE(out.empty());
  CHECK(out[0]["Containers"] == -1);
}

TEST_CASE("/info shows the tenant's own counts and no daemon-wide facts",
          "[policy][filter][info]") {
  const json in = json::parse(R"({"ID":"ABCD:EFGH","Name":"host-7","Containers":57,
    "ContainersRunning":40,"ContainersPaused":2,"ContainersStopped":15,"Images":90,
    "DockerRootDir":"/var/lib/docker","NCPU":8,"MemTotal":33554432000,
    "ServerVersion":"20.10.24","OperatingSystem":"Debian GNU/Linux 12","KernelVersion":"6.1",
    "Labels":["customer=globex"],"HttpProxy":"http://proxy:3128","NoProxy":"internal",
    "RegistryConfig":{"Mirrors":["https://mirror.internal"]},"Swarm":{"NodeID":"n1"},
    "Plugins":{"Volume":["local","sshfs"]},"Runtimes":{"runc":{},"nvidia":{}},
    "Warnings":["WARNING: bridge-nf-call-iptables is disabled"]})");
  const json out = filtered(ResponseView::info, in);
  CHECK(out["Containers"] == 4);
  CHECK(out["ContainersRunning"] == 2);
  CHECK(out["ContainersPaused"] == 1);
  CHECK(out["ContainersStopped"] == 1);
  // busybox, app:v1 and its own untagged image, as `docker images -a` lists them; neither
  // globex's nor the operator's untagged one.
  CHECK(out["Images"] == 3);
  CHECK(out["NCPU"] == 8);
  CHECK(out["ServerVersion"] == "20.10.24");
  CHECK(out["Name"] == "berth");
  CHECK(out["ID"] == "");
  CHECK(out["Labels"] == json::array());
  CHECK(out["Warnings"] == json::array());
  for (const char* neutral : {"DockerRootDir", "HttpProxy", "NoProxy"}) {
    CAPTURE(neutral);
    CHECK(out[neutral] == "");
  }
  CHECK(out["Plugins"]["Volume"] == json::array({"local"}));
  CHECK_FALSE(mentions(out, "sshfs"));
  CHECK_FALSE(mentions(out, "mirror.internal"));
  CHECK_FALSE(mentions(out, "n1"));
  CHECK_FALSE(mentions(out, "globex"));
  CHECK_FALSE(mentions(out, "host-7"));
}

// ---------------------------------------------------------------------------------------------
// Operators, malformed bodies
// ---------------------------------------------------------------------------------------------

TEST_CASE("operators see dockerd's answers unchanged", "[policy][filter]") {
  auto view = GENERATE(ResponseView::container_list, ResponseView::container_inspect,
                       ResponseView::network_list, ResponseView::volume_list,
                       ResponseView::image_list, ResponseView::system_df, ResponseView::info);
  CAPTURE(static_cast<int>(view));
  const std::string body = container_list().dump();
  const auto out = filter_response(view, operator_principal(), body, shared_index());
  REQUIRE(out.has_value());
  CHECK(*out == body);
}

TEST_CASE("a body that is not the JSON a view expects is never passed to a tenant",
          "[policy][filter]") {
  auto [view, body] = GENERATE(table<ResponseView, std::string>({
      {ResponseView::container_list, "{}"},
      {ResponseView::container_list, "not json"},
      {ResponseView::container_list, R"([{"Names":["/globex_web"])"},
      {ResponseView::container_inspect, "[]"},
      {ResponseView::network_list, "{}"},
      {ResponseView::network_inspect, "[]"},
      {ResponseView::volume_list, "[]"},
      {ResponseView::volume_inspect, "\"x\""},
      {ResponseView::image_list, "{}"},
      {ResponseView::image_inspect, "[]"},
      {ResponseView::image_history, "{}"},
      {ResponseView::system_df, "[]"},
      {ResponseView::info, "[]"},
      {ResponseView::info, "{"},
      {ResponseView::exec_inspect, "{"},
  }));
  CAPTURE(static_cast<int>(view), body);
  CHECK_FALSE(filter_response(view, tenant(), body, shared_index()).has_value());
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

namespace {

json container_event(const std::string& id, json attributes) {
  return json{{"status", "start"},
              {"id", id},
              {"Type", "container"},
              {"Action", "start"},
              {"Actor", {{"ID", id}, {"Attributes", std::move(attributes)}}},
              {"scope", "local"},
              {"time", 1},
              {"timeNano", 1}};
}

json typed_event(const std::string& type, const std::string& action, const std::string& id,
                 json attributes) {
  return json{{"Type", type},
              {"Action", action},
              {"Actor", {{"ID", id}, {"Attributes", std::move(attributes)}}},
              {"scope", "local"},
              {"time", 1}};
}

}  // namespace

TEST_CASE("the tenant's container events show its names and no berth labels",
          "[policy][filter][events]") {
  json ev = container_event(kAcmeWeb, {{"berth.tenant", "acme"},
                                       {"berth.billing", "gold"},
                                       {"com.example", "1"},
                                       {"image", "acme.berth.local/app:v1"},
                                       {"name", "acme_web"}});
  ev["from"] = "acme.berth.local/app:v1";
  const auto out = event(ev);
  REQUIRE(out.has_value());
  const json& attrs = (*out)["Actor"]["Attributes"];
  CHECK(attrs == json{{"com.example", "1"}, {"image", "app:v1"}, {"name", "web"}});
  CHECK((*out)["from"] == "app:v1");
  CHECK((*out)["Actor"]["ID"] == kAcmeWeb);
  CHECK_FALSE(mentions(*out, "berth"));
}

TEST_CASE("another tenant's container events are never shown", "[policy][filter][events]") {
  SECTION("labelled for another tenant") {
    CHECK_FALSE(event(container_event(kGlobexWeb, {{"berth.tenant", "globex"},
                                                   {"name", "globex_web"}}))
                    .has_value());
  }
  SECTION("unlabelled, owned by another tenant in the index") {
    CHECK_FALSE(event(container_event(kGlobexWeb, {{"name", "globex_web"}})).has_value());
  }
  SECTION("unlabelled and unknown") {
    CHECK_FALSE(event(container_event(id64("ffff"), {{"name", "x"}})).has_value());
  }
  SECTION("the operator's") {
    CHECK_FALSE(event(container_event(kOperatorTool, {{"name", "portainer"}})).has_value());
  }
  SECTION("seen by the owner, not by the other tenant") {
    const json ev = container_event(kAcmeWeb, {{"berth.tenant", "acme"}, {"name", "acme_web"}});
    CHECK(event(ev, tenant("acme")).has_value());
    CHECK_FALSE(event(ev, tenant("globex")).has_value());
  }
}

TEST_CASE("a container event without labels is the tenant's when the index says so",
          "[policy][filter][events]") {
  const auto out = event(container_event(kAcmeDb, {{"name", "acme_db"}, {"exitCode", "0"}}));
  REQUIRE(out.has_value());
  CHECK((*out)["Actor"]["Attributes"]["name"] == "db");
}

TEST_CASE("network events are shown for the tenant's networks and its own containers only",
          "[policy][filter][events][network]") {
  SECTION("its own network, the default one shown as bridge") {
    const auto out = event(typed_event("network", "create", kAcmeBridgeNet,
                                       {{"name", "acme_bridge"}, {"type", "bridge"}}));
    REQUIRE(out.has_value());
    CHECK((*out)["Actor"]["Attributes"]["name"] == "bridge");
  }
  SECTION("its container connecting to its network") {
    const auto out = event(typed_event("network", "connect", kAcmeFrontNet,
                                       {{"name", "acme_front"}, {"container", kAcmeWeb}}));
    REQUIRE(out.has_value());
    CHECK((*out)["Actor"]["Attributes"]["name"] == "front");
  }
  SECTION("another tenant's container connecting to its network") {
    CHECK_FALSE(event(typed_event("network", "connect", kAcmeFrontNet,
                                  {{"name", "acme_front"}, {"container", kGlobexWeb}}))
                    .has_value());
  }
  SECTION("another tenant's or the operator's network") {
    auto id = GENERATE_COPY(as<std::string>{}, kGlobexBackNet, kHostNet, id64("ffff"));
    CAPTURE(id);
    CHECK_FALSE(
        event(typed_event("network", "connect", id, {{"name", "x"}, {"container", kAcmeWeb}}))
            .has_value());
  }
}

TEST_CASE("volume events are shown for the tenant's volumes under its names",
          "[policy][filter][events][volumes]") {
  SECTION("its own") {
    json ev = typed_event("volume", "create", "acme_data", {{"driver", "local"}});
    ev["id"] = "acme_data";
    const auto out = event(ev);
    REQUIRE(out.has_value());
    CHECK((*out)["Actor"]["ID"] == "data");
    CHECK((*out)["id"] == "data");
  }
  SECTION("another tenant's or an unknown one") {
    auto name = GENERATE_COPY(as<std::string>{}, "globex_data", kOtherAnonVolume);
    CAPTURE(name);
    CHECK_FALSE(event(typed_event("volume", "mount", name, {{"driver", "local"}})).has_value());
  }
}

TEST_CASE("image events are shown for tags in the tenant's namespace only",
          "[policy][filter][events][images]") {
  SECTION("its own tag") {
    const auto out =
        event(typed_event("image", "tag", kBusybox, {{"name", "acme.berth.local/mine:v1"}}));
    REQUIRE(out.has_value());
    CHECK((*out)["Actor"]["Attributes"]["name"] == "mine:v1");
  }
  SECTION("another tenant's tag or the operator's pull") {
    auto name = GENERATE(as<std::string>{}, "globex.berth.local/app:v1", "busybox:latest",
                         "sha256:abc");
    CAPTURE(name);
    CHECK_FALSE(event(typed_event("image", "tag", kBusybox, {{"name", name}})).has_value());
  }
}

TEST_CASE("image events of the tenant's own images carry no berth labels",
          "[policy][filter][events][images]") {
  // dockerd copies an image's labels into its events' attributes.
  const auto out = event(typed_event(
      "image", "tag", kAcmeApp,
      {{"name", "acme.berth.local/app:v2"}, {"berth.tenant", "acme"}, {"x", "1"}}));
  REQUIRE(out.has_value());
  CHECK_FALSE(mentions(*out, "berth"));
  CHECK((*out)["Actor"]["Attributes"]["x"] == "1");
}

TEST_CASE("a rename event shows the old name as the tenant gave it",
          "[policy][filter][events]") {
  // dockerd's rename event carries oldName ("/acme_web") beside the new name.
  json ev = typed_event("container", "rename", kAcmeWeb,
                        {{"berth.tenant", "acme"}, {"name", "acme_api"}, {"oldName", "/acme_web"}});
  const auto out = event(ev);
  REQUIRE(out.has_value());
  CHECK((*out)["Actor"]["Attributes"]["name"] == "api");
  CHECK((*out)["Actor"]["Attributes"]["oldName"] == "/web");
}

TEST_CASE("daemon-wide and malformed events are never shown to a tenant",
          "[policy][filter][events]") {
  auto ev = GENERATE_COPY(as<std::string>{},
      typed_event("daemon", "reload", "ABCD", {{"name", "host-7"}}).dump(),
      typed_event("plugin", "enable", "p", {{"name", "vieux/sshfs"}}).dump(),
      typed_event("service", "create", "s", {{"name", "globex_api"}}).dump(),
      typed_event("node", "update", "n", json::object()).dump(),
      typed_event("secret", "create", "s", json::object()).dump(),
      typed_event("config", "create", "c", json::object()).dump(),
      typed_event("builder", "prune", "b", json::object()).dump(),
      typed_event("", "start", kAcmeWeb, {{"berth.tenant", "acme"}}).dump(),
      std::string("not json"), std::string("[]"), std::string(R"({"Type":"container"})"),
      std::string(R"({"Type":"container","Actor":"x"})"));
  CAPTURE(ev);
  CHECK_FALSE(filter_event(tenant(), ev, shared_index()).has_value());
}

TEST_CASE("operators see every event unchanged", "[policy][filter][events]") {
  const std::string ev =
      container_event(kGlobexWeb, {{"berth.tenant", "globex"}, {"name", "globex_web"}}).dump();
  CHECK(filter_event(operator_principal(), ev, shared_index()) == ev);
}

// ---------------------------------------------------------------------------------------------
// Build output and error messages
// ---------------------------------------------------------------------------------------------

TEST_CASE("build output names images in the tenant's namespace", "[policy][filter][build]") {
  auto [line, shown] = GENERATE(table<std::string, std::string>({
      {R"({"stream":"Successfully tagged acme.berth.local/app:v1\n"})",
       R"({"stream":"Successfully tagged app:v1\n"})"},
      {R"({"stream":"Step 1/2 : FROM acme.berth.local/base:1\n"})",
       R"({"stream":"Step 1/2 : FROM base:1\n"})"},
      {R"({"aux":{"ID":"sha256:abc"}})", R"({"aux":{"ID":"sha256:abc"}})"},
      {R"({"stream":"FROM globex.berth.local/x\n"})", R"({"stream":"FROM globex.berth.local/x\n"})"},
  }));
  CAPTURE(line);
  CHECK(filter_build_message(tenant(), line) == shown);
  CHECK(filter_build_message(operator_principal(), line) == line);
}

TEST_CASE("dockerd's error messages name the tenant's objects as the tenant named them",
          "[policy][filter][errors]") {
  auto [message, shown] = GENERATE(table<std::string, std::string>({
      {"No such container: acme_web", "No such container: web"},
      {R"(Conflict. The container name "/acme_web" is already in use by container "a0e1". You have to remove (or rename) that container to be able to reuse that name.)",
       // Without an index showing the holder is the tenant's, its id is not revealed.
       R"(Conflict. The container name "/web" is already in use. You have to remove (or rename) that container to be able to reuse that name.)"},
      {"network acme_front not found", "network front not found"},
      {"network acme_bridge not found", "network bridge not found"},
      {"error while removing network: network acme_front id ab02 has active endpoints",
       "error while removing network: network front id ab02 has active endpoints"},
      {"get acme_data: no such volume", "get data: no such volume"},
      {"remove acme_data: volume is in use - [a0e1]", "remove data: volume is in use - [a0e1]"},
      {"No such image: acme.berth.local/app:v1", "No such image: app:v1"},
      {"pull access denied for acme.berth.local/app, repository does not exist",
       "pull access denied for app, repository does not exist"},
      {"Cannot link to /acme_db, as it does not belong to the default network",
       "Cannot link to /db, as it does not belong to the default network"},
      {"conflict: unable to delete 'acme_web' (must be forced)",
       "conflict: unable to delete 'web' (must be forced)"},
      {"Container (acme_web) is not running", "Container (web) is not running"},
      {"Error response: :acme_web", "Error response: :web"},
      {"acme_web is restarting", "web is restarting"},
  }));
  CAPTURE(message);
  CHECK(tenant_error_message(tenant(), message) == shown);
}

TEST_CASE("an error message keeps what is not the tenant's stored name",
          "[policy][filter][errors]") {
  auto message = GENERATE(as<std::string>{}, "No such container: globex_web",
                          "No such container: notacme_web", "No such container: xacme_web",
                          "network acme-eu_front not found", "No such image: globex.berth.local/app:v1",
                          "invalid reference format: repository name must be lowercase");
  CAPTURE(message);
  CHECK(tenant_error_message(tenant(), message) == message);
  CHECK(tenant_error_message(operator_principal(), "No such container: acme_web") ==
        "No such container: acme_web");
}

TEST_CASE("an error message strips the tenant's prefix once, not from the tenant's own name",
          "[policy][filter][errors]") {
  // A tenant's container named "acme_web" is stored as "acme_acme_web"; stripping twice
  // would tell the tenant about "web", another of its containers.
  CHECK(tenant_error_message(tenant(), "No such container: acme_acme_web") ==
        "No such container: acme_web");
  CHECK(tenant_error_message(tenant(), R"(The container name "/acme_acme_web" is already in use)") ==
        R"(The container name "/acme_web" is already in use)");
}

TEST_CASE("a fleet's network events read as one private host's: destroy, no update, no copies",
          "[filter][events][fleet]") {
  const auto event = [](std::string_view action, std::string_view scope,
                        std::string_view type = "overlay") {
    return json{{"Type", "network"},
                {"Action", action},
                {"scope", scope},
                {"Actor", {{"ID", "a1cxuv0w3ktxk55vidmzmgmwy"},
                           {"Attributes", {{"name", "acme_net"}, {"type", type}}}}},
                {"time", 1}}
               .dump() +
           "\n";
  };
  SECTION("the Swarm's remove of a network reads destroy, still one line") {
    const auto seen = fleet_event_view(event("remove", "swarm"), true);
    REQUIRE(seen.has_value());
    CHECK(seen->ends_with("\n"));
    CHECK(json::parse(*seen)["Action"] == "destroy");
    CHECK(json::parse(*seen)["Actor"]["Attributes"]["name"] == "acme_net");
  }
  SECTION("the Swarm's update of a network and a host's copy of an overlay are not shown") {
    CHECK_FALSE(fleet_event_view(event("update", "swarm"), true).has_value());
    CHECK_FALSE(fleet_event_view(event("create", "local"), true).has_value());
    CHECK_FALSE(fleet_event_view(event("destroy", "local"), true).has_value());
  }
  SECTION("a network's own create, a bridge's destroy and other events pass unchanged") {
    for (const auto& line : {event("create", "swarm"), event("destroy", "local", "bridge"),
                             event("connect", "local"),
                             std::string(R"({"Type":"container","Action":"start"})" "\n"),
                             std::string("not json\n")}) {
      CHECK(fleet_event_view(line, true) == line);
      CHECK(fleet_event_view(line, false) == line);
    }
  }
  SECTION("image events come from the primary alone: the other hosts' are berth's copies") {
    const std::string load =
        R"({"status":"load","id":"sha256:0a1b","Type":"image","Action":"load",)"
        R"("Actor":{"ID":"sha256:0a1b","Attributes":{"berth.tenant":"acme"}},"time":1})"
        "\n";
    CHECK(fleet_event_view(load, true) == load);
    CHECK_FALSE(fleet_event_view(load, false).has_value());
    // A container event whose label says "Type":"image" is still a container event.
    const std::string start = json{{"Type", "container"},
                                   {"Action", "start"},
                                   {"Actor", {{"ID", "c1"},
                                              {"Attributes", {{"x", R"("Type":"image")"}}}}}}
                                  .dump() +
                              "\n";
    CHECK(fleet_event_view(start, false) == start);
  }
}

TEST_CASE("a fleet's /info counts the CPUs and memory of every host that is up, and keeps the "
          "rest as filtered",
          "[filter][fleet]") {
  const std::string info = R"({"NCPU":2,"MemTotal":1024,"KernelVersion":"6.1","Containers":3})";
  const auto seen = json::parse(with_fleet_totals(info, 6, 3072));
  CHECK(seen["NCPU"] == 6);
  CHECK(seen["MemTotal"] == 3072);
  CHECK(seen["KernelVersion"] == "6.1");
  CHECK(seen["Containers"] == 3);
  CHECK(with_fleet_totals("not json", 6, 3072) == "not json");
}
