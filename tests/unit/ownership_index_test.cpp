// The ownership index resolves a tenant's references (full id, unique id prefix, name) within
// that tenant's own objects, so that another tenant's object can neither be reached nor make a
// tenant's own reference ambiguous: it is indistinguishable from one that does not exist.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "policy/ownership_index.hpp"

using namespace berth::policy;

namespace {

std::string id64(std::string_view prefix) {
  std::string id(prefix);
  id.resize(64, '0');
  return id;
}

std::string image_id(std::string_view prefix) { return "sha256:" + id64(prefix); }

const std::string kAcmeWeb = id64("a0e1");
const std::string kAcmeDb = id64("a0d8");
const std::string kAcmeUnnamed = id64("a0f3");
const std::string kAcmeCoffee = id64("c0ffee01");
const std::string kGlobexCoffee = id64("c0ffee02");
const std::string kAcmeDood1 = id64("d00d01");
const std::string kAcmeDood2 = id64("d00d02");
const std::string kAcmeNamedAbcd = id64("1234");
const std::string kAcmeIdAbcd = id64("abcd");
const std::string kGlobexWeb = id64("9e0b");
const std::string kGlobexSecret = id64("9e5e");
const std::string kOperatorTool = id64("0e7a");

const std::string kAcmeBridgeNet = id64("ab01");
const std::string kAcmeFrontNet = id64("ab02");
const std::string kAcmeBackNet = id64("ab03");
const std::string kGlobexBackNet = id64("9b01");
const std::string kGlobexFrontNet = id64("ab09");
const std::string kHostNet = id64("1001");
const std::string kBridgeNet = id64("1002");

const std::string kBusybox = image_id("bb01");
const std::string kOtherShared = image_id("bb02");
const std::string kAcmeApp = image_id("a9a9");
const std::string kAcmeBase = image_id("a9a8");
const std::string kGlobexApp = image_id("9a9a");
const std::string kGlobexPrefixTwin = image_id("bb03");
const std::string kDangling = image_id("dd01");
const std::string kGlobexTaggedShared = image_id("ee01");

OwnershipIndex fixture() {
  OwnershipIndex idx;
  idx.put_container({kAcmeWeb, "acme", "/acme_web", "running"});
  idx.put_container({kAcmeDb, "acme", "acme_db", "exited"});
  idx.put_container({kAcmeUnnamed, "acme", "happy_turing", "running"});
  idx.put_container({kAcmeCoffee, "acme", "acme_coffee", "running"});
  idx.put_container({kGlobexCoffee, "globex", "globex_coffee", "running"});
  idx.put_container({kAcmeDood1, "acme", "acme_dood1", "running"});
  idx.put_container({kAcmeDood2, "acme", "acme_dood2", "running"});
  idx.put_container({kAcmeNamedAbcd, "acme", "acme_abcd", "running"});
  idx.put_container({kAcmeIdAbcd, "acme", "acme_other", "running"});
  idx.put_container({kGlobexWeb, "globex", "globex_web", "running"});
  idx.put_container({kGlobexSecret, "globex", "globex_secret", "running"});
  idx.put_container({kOperatorTool, "", "portainer", "running"});

  idx.put_network({kAcmeBridgeNet, "acme", "acme_bridge"});
  idx.put_network({kAcmeFrontNet, "acme", "acme_front"});
  idx.put_network({kAcmeBackNet, "acme", "acme_back"});
  idx.put_network({kGlobexBackNet, "globex", "globex_back"});
  idx.put_network({kGlobexFrontNet, "globex", "globex_front"});
  idx.put_network({kHostNet, "", "host"});
  idx.put_network({kBridgeNet, "", "bridge"});

  idx.put_volume({"acme_data", "acme"});
  idx.put_volume({"globex_data", "globex"});
  idx.put_volume({id64("3f3f"), "acme"});

  idx.put_image({kBusybox, "", {"busybox:latest", "acme.berth.local/mine:v1"}});
  idx.put_image({kOtherShared, "", {"alpine:3.19"}});
  idx.put_image({kAcmeApp, "acme", {"acme.berth.local/app:v1"}});
  idx.put_image({kAcmeBase, "acme", {}});
  idx.put_image({kGlobexApp, "globex", {"globex.berth.local/app:v1"}});
  idx.put_image({kGlobexPrefixTwin, "globex", {"globex.berth.local/twin:v1"}});
  idx.put_image({kDangling, "", {}});
  idx.put_image({kGlobexTaggedShared, "globex", {"redis:7"}});
  return idx;
}

}  // namespace

TEST_CASE("a tenant resolves its own container by full id, unique id prefix and name",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto [ref, expected] = GENERATE_COPY(table<std::string, std::string>({
      {kAcmeWeb, kAcmeWeb},
      {kAcmeWeb.substr(0, 12), kAcmeWeb},
      {"a0e1", kAcmeWeb},
      {"web", kAcmeWeb},
      {"/web", kAcmeWeb},
      {"db", kAcmeDb},
      {"happy_turing", kAcmeUnnamed},
      {"/happy_turing", kAcmeUnnamed},
      {"acme_web", kAcmeWeb},  // the stored spelling is the tenant's own object too
  }));
  CAPTURE(ref);
  const auto r = idx.find_container("acme", ref);
  REQUIRE(r.result == Lookup::found);
  CHECK(r.value.id == expected);
  CHECK(r.value.tenant == "acme");
}

TEST_CASE("another tenant's container cannot be resolved by any reference", "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto ref = GENERATE_COPY(as<std::string>{}, kGlobexWeb, kGlobexWeb.substr(0, 12), "9e0b", "9e",
                           "globex_web", "/globex_web", "secret", "/secret", "globex_secret",
                           kGlobexSecret, kOperatorTool, "portainer", "0e7a", "");
  CAPTURE(ref);
  const auto r = idx.find_container("acme", ref);
  CHECK(r.result == Lookup::missing);
  CHECK(r.value.id.empty());
}

TEST_CASE("an id prefix is unique when it is unique among the tenant's own containers",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  SECTION("another tenant's container with the same prefix does not make it ambiguous") {
    const auto r = idx.find_container("acme", "c0ffee");
    REQUIRE(r.result == Lookup::found);
    CHECK(r.value.id == kAcmeCoffee);
    const auto g = idx.find_container("globex", "c0ffee");
    REQUIRE(g.result == Lookup::found);
    CHECK(g.value.id == kGlobexCoffee);
  }
  SECTION("two of the tenant's own containers with the prefix are ambiguous") {
    CHECK(idx.find_container("acme", "d00d0").result == Lookup::ambiguous);
    CHECK(idx.find_container("acme", "d00d").result == Lookup::ambiguous);
    CHECK(idx.find_container("acme", "d00d02").value.id == kAcmeDood2);
  }
  SECTION("a prefix only another tenant has is missing, not ambiguous") {
    CHECK(idx.find_container("acme", "9e").result == Lookup::missing);
  }
}

TEST_CASE("a name wins over an id prefix, as in dockerd", "[policy][index]") {
  const OwnershipIndex idx = fixture();
  const auto r = idx.find_container("acme", "abcd");
  REQUIRE(r.result == Lookup::found);
  CHECK(r.value.id == kAcmeNamedAbcd);
  CHECK(idx.find_container("acme", "abcd0").value.id == kAcmeIdAbcd);
}

TEST_CASE("a name dockerd generated for an unnamed container resolves for its owner only",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  CHECK(idx.find_container("acme", "happy_turing").result == Lookup::found);
  CHECK(idx.find_container("globex", "happy_turing").result == Lookup::missing);
  // A tenant whose id is dockerd's adjective cannot reach it under its own spelling either.
  CHECK(idx.find_container("happy", "turing").result == Lookup::missing);
  CHECK(idx.find_container("happy", "happy_turing").result == Lookup::missing);
}

TEST_CASE("objects without an ownership label belong to the operator and to no tenant",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  CHECK(idx.find_container("", "portainer").value.id == kOperatorTool);
  CHECK(idx.find_container("acme", "portainer").result == Lookup::missing);
  CHECK(idx.find_container("", "acme_web").result == Lookup::missing);
  CHECK(idx.find_network("acme", kHostNet).result == Lookup::missing);
  CHECK(idx.find_network("", "host").value.id == kHostNet);
}

TEST_CASE("a renamed container answers to its new name only", "[policy][index]") {
  OwnershipIndex idx = fixture();
  idx.rename_container(kAcmeWeb, "/acme_api");
  CHECK(idx.find_container("acme", "web").result == Lookup::missing);
  CHECK(idx.find_container("acme", "api").value.id == kAcmeWeb);
  CHECK(idx.container_by_id(kAcmeWeb)->name == "acme_api");
  // The same id put again with a new name behaves the same way.
  idx.put_container({kAcmeDb, "acme", "acme_database", "exited"});
  CHECK(idx.find_container("acme", "db").result == Lookup::missing);
  CHECK(idx.find_container("acme", "database").value.id == kAcmeDb);
}

TEST_CASE("a removed container no longer resolves and takes its exec sessions with it",
          "[policy][index]") {
  OwnershipIndex idx = fixture();
  idx.put_exec("e1", kAcmeWeb);
  idx.put_exec("e2", kAcmeDb);
  REQUIRE(idx.exec_container("e1") == kAcmeWeb);
  idx.erase_container(kAcmeWeb);
  CHECK(idx.find_container("acme", "web").result == Lookup::missing);
  CHECK(idx.find_container("acme", kAcmeWeb).result == Lookup::missing);
  CHECK_FALSE(idx.container_by_id(kAcmeWeb).has_value());
  CHECK_FALSE(idx.exec_container("e1").has_value());
  CHECK(idx.exec_container("e2") == kAcmeDb);
}

TEST_CASE("a new container can take the name of a removed one", "[policy][index]") {
  OwnershipIndex idx = fixture();
  const std::string fresh = id64("a0e2");
  idx.put_container({fresh, "acme", "acme_web", "created"});
  idx.erase_container(kAcmeWeb);  // the old one's removal arrives late
  CHECK(idx.find_container("acme", "web").value.id == fresh);
}

TEST_CASE("a tenant's container list and states come from the index", "[policy][index]") {
  OwnershipIndex idx = fixture();
  CHECK(idx.containers_of("acme").size() == 8);
  CHECK(idx.containers_of("globex").size() == 3);
  CHECK(idx.containers_of("nobody").empty());
  for (const auto& c : idx.containers_of("acme")) {
    CHECK(c.tenant == "acme");
  }
  idx.set_container_state(kAcmeDb, "running");
  CHECK(idx.container_by_id(kAcmeDb)->state == "running");
  idx.set_container_state(id64("ffff"), "running");  // unknown ids are ignored
  CHECK(idx.container_count() == 12);
}

TEST_CASE("a full resynchronisation keeps exec sessions only of containers that still exist",
          "[policy][index]") {
  OwnershipIndex idx = fixture();
  idx.put_exec("e-web", kAcmeWeb);
  idx.put_exec("e-db", kAcmeDb);
  OwnershipIndex fresh;
  fresh.put_container({kAcmeWeb, "acme", "acme_web", "running"});
  idx.replace_all(std::move(fresh));
  CHECK(idx.exec_container("e-web") == kAcmeWeb);
  CHECK_FALSE(idx.exec_container("e-db").has_value());
  CHECK(idx.find_container("acme", "db").result == Lookup::missing);
  CHECK(idx.container_count() == 1);
}

TEST_CASE("a tenant resolves its networks by id, name and prefix, and 'bridge' as its default",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto [ref, expected] = GENERATE_COPY(table<std::string, std::string>({
      {kAcmeFrontNet, kAcmeFrontNet},
      {"front", kAcmeFrontNet},
      {"ab02", kAcmeFrontNet},
      {"bridge", kAcmeBridgeNet},
      {"back", kAcmeBackNet},
  }));
  CAPTURE(ref);
  const auto r = idx.find_network("acme", ref);
  REQUIRE(r.result == Lookup::found);
  CHECK(r.value.id == expected);
}

TEST_CASE("another tenant's or the operator's network cannot be resolved by any reference",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto ref = GENERATE_COPY(as<std::string>{}, kGlobexBackNet, "9b01", "globex_back",
                           "globex_bridge", "back_globex", kHostNet, "1001", kBridgeNet, "host",
                           "none", "");
  CAPTURE(ref);
  CHECK(idx.find_network("acme", ref).result == Lookup::missing);
}

TEST_CASE("a network id prefix counts only the tenant's own networks", "[policy][index]") {
  const OwnershipIndex idx = fixture();
  // ab01, ab02, ab03 are acme's; ab09 is globex's.
  CHECK(idx.find_network("acme", "ab0").result == Lookup::ambiguous);
  const auto g = idx.find_network("globex", "ab0");
  REQUIRE(g.result == Lookup::found);
  CHECK(g.value.id == kGlobexFrontNet);
  OwnershipIndex idx2 = fixture();
  idx2.erase_network(kAcmeBackNet);
  idx2.erase_network(kAcmeBridgeNet);
  CHECK(idx2.find_network("acme", "ab0").value.id == kAcmeFrontNet);
  CHECK_FALSE(idx2.network_by_id(kAcmeBackNet).has_value());
}

TEST_CASE("volumes are found by their stored name with their owner", "[policy][index]") {
  OwnershipIndex idx = fixture();
  REQUIRE(idx.volume("acme_data").has_value());
  CHECK(idx.volume("acme_data")->tenant == "acme");
  CHECK(idx.volume("globex_data")->tenant == "globex");
  CHECK_FALSE(idx.volume("data").has_value());
  CHECK(idx.volumes_of("acme").size() == 2);
  idx.erase_volume("acme_data");
  CHECK_FALSE(idx.volume("acme_data").has_value());
  CHECK(idx.volumes_of("acme").size() == 1);
}

TEST_CASE("a tenant may see its own images, its own tags and shared images only",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto [id, visible] = GENERATE_COPY(table<std::string, bool>({
      {kBusybox, true},             // shared tag
      {kOtherShared, true},         // shared tag
      {kAcmeApp, true},             // labelled for acme
      {kAcmeBase, true},            // labelled for acme, untagged
      {kGlobexApp, false},          // labelled for globex
      {kGlobexPrefixTwin, false},   // labelled for globex
      {kDangling, false},           // no label, no tag: nobody's to see
      {kGlobexTaggedShared, false},  // a shared-looking tag on globex's image
  }));
  CAPTURE(id);
  const auto img = idx.image_by_id(id);
  REQUIRE(img.has_value());
  CHECK(idx.image_visible("acme", *img) == visible);
  CHECK(idx.image_visible("", *img));  // operators see everything
}

TEST_CASE("an unlabelled image tagged only in other tenants' namespaces is not shared",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  ImageInfo img{image_id("ff01"), "", {"globex.berth.local/leak:v1"}};
  CHECK_FALSE(idx.image_visible("acme", img));
  CHECK(idx.image_visible("globex", img));
  img.tags.push_back("acme.berth.local/mine:v1");
  CHECK(idx.image_visible("acme", img));
}

TEST_CASE("a tenant resolves images by its own tag, a shared name or an id it may see",
          "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto [ref, expected] = GENERATE_COPY(table<std::string, std::string>({
      {"app:v1", kAcmeApp},
      {"mine:v1", kBusybox},
      {"busybox", kBusybox},
      {"busybox:latest", kBusybox},
      {"docker.io/library/busybox", kBusybox},
      {"docker.io/library/busybox:latest", kBusybox},
      {"library/busybox", kBusybox},
      {"alpine:3.19", kOtherShared},
      {kAcmeApp, kAcmeApp},
      {kAcmeApp.substr(7), kAcmeApp},
      {"sha256:a9a9", kAcmeApp},
      {"a9a9", kAcmeApp},
      {kAcmeBase, kAcmeBase},
      {"a9a8", kAcmeBase},
      {kBusybox, kBusybox},
      {"bb01", kBusybox},
  }));
  CAPTURE(ref);
  const auto r = idx.find_image("acme", ref);
  REQUIRE(r.result == Lookup::found);
  CHECK(r.value.id == expected);
}

TEST_CASE("a tenant's own tag shadows a shared image of the same name", "[policy][index]") {
  OwnershipIndex idx = fixture();
  idx.put_image({image_id("a9a7"), "acme", {"acme.berth.local/busybox:latest"}});
  CHECK(idx.find_image("acme", "busybox").value.id == image_id("a9a7"));
  CHECK(idx.find_image("globex", "busybox").value.id == kBusybox);
}

TEST_CASE("another tenant's image cannot be resolved by tag, id or prefix", "[policy][index]") {
  const OwnershipIndex idx = fixture();
  auto ref = GENERATE_COPY(as<std::string>{}, "globex.berth.local/app:v1",
                           "globex.berth.local/app", kGlobexApp, kGlobexApp.substr(7),
                           "sha256:9a9a", "9a9a", "9a", "redis:7", "redis", kDangling, "dd01",
                           "app:v2", "");
  CAPTURE(ref);
  CHECK(idx.find_image("acme", ref).result == Lookup::missing);
}

TEST_CASE("an image id prefix counts only the images the tenant may see", "[policy][index]") {
  const OwnershipIndex idx = fixture();
  // bb01 and bb02 are shared, bb03 is globex's.
  CHECK(idx.find_image("acme", "bb0").result == Lookup::ambiguous);
  CHECK(idx.find_image("acme", "bb03").result == Lookup::missing);
  OwnershipIndex idx2 = fixture();
  idx2.erase_image(kOtherShared);
  CHECK(idx2.find_image("acme", "bb0").value.id == kBusybox);
  CHECK(idx2.find_image("acme", "sha256:bb0").value.id == kBusybox);
  CHECK(idx2.find_image("acme", "alpine:3.19").result == Lookup::missing);
}

TEST_CASE("a tag moved from one image to another stays resolvable whichever update comes last",
          "[policy][index]") {
  // dockerd moves "busybox:latest" to a newly pulled image and untags the old one. Whatever
  // order the proxy applies the two updates in, the tag must name the new image: re-putting
  // the old image without the tag must not erase the new image's tag, or container create
  // would name "acme.berth.local/busybox:latest", which does not exist.
  OwnershipIndex idx;
  const std::string old_id = image_id("b0");
  const std::string new_id = image_id("b1");
  idx.put_image({old_id, "", {"busybox:latest"}});
  idx.put_image({new_id, "", {"busybox:latest"}});
  idx.put_image({old_id, "", {}});
  const auto r = idx.find_image("acme", "busybox");
  REQUIRE(r.result == Lookup::found);
  CHECK(r.value.id == new_id);
}

TEST_CASE("a removed image takes its tags with it", "[policy][index]") {
  OwnershipIndex idx = fixture();
  idx.erase_image(kAcmeApp);
  CHECK(idx.find_image("acme", "app:v1").result == Lookup::missing);
  CHECK_FALSE(idx.image_by_id(kAcmeApp).has_value());
  CHECK(idx.images().size() == 7);
}

TEST_CASE("of concurrent pulls of one digest only the last to end removes its reference, across "
          "a rebuild of the index",
          "[policy][index][image]") {
  OwnershipIndex idx;
  const std::string ref = "registry.example.com/app@sha256:" + std::string(64, 'e');
  idx.hold_pull(ref);
  idx.hold_pull(ref);
  idx.replace_all(OwnershipIndex{});  // dockerd's lists read again while both pulls run
  CHECK_FALSE(idx.release_pull(ref));
  CHECK(idx.release_pull(ref));
  // A pull that never held (it ended before asking dockerd) removes what it made.
  CHECK(idx.release_pull(ref));
}

TEST_CASE("a fleet host's resynchronisation replaces its own containers and volumes only, and "
          "the primary's also the networks and images",
          "[policy][index][fleet]") {
  OwnershipIndex idx;
  idx.put_container({id64("a1"), "acme", "acme_web", "running", "h1"});
  idx.put_container({id64("b2"), "acme", "acme_db", "running", "h2"});
  idx.put_container({id64("b3"), "acme", "acme_old", "exited", "h2"});
  idx.set_resources(id64("b2"), Resources{512 << 20, 1'000'000'000, 0});
  idx.put_exec("e1", id64("b2"));
  idx.put_volume({"acme_data", "acme", "h2"});
  idx.put_network({id64("n1"), "acme", "acme_net"});
  idx.put_image({image_id("i1"), "", {"busybox:latest"}});

  // h2 comes back with db (still there) and a new container; old is gone.
  OwnershipIndex h2;
  h2.put_container({id64("b2"), "acme", "acme_db", "running"});
  h2.put_container({id64("b4"), "acme", "acme_new", "created"});
  idx.replace_host("h2", std::move(h2), false);
  CHECK(idx.host_of_container("acme_db") == "h2");
  CHECK(idx.host_of_container("acme_new") == "h2");
  CHECK_FALSE(idx.host_of_container("acme_old").has_value());
  CHECK(idx.host_of_container("acme_web") == "h1");
  CHECK(idx.resources_of(id64("b2")).has_value());   // kept where the lists did not tell
  CHECK(idx.exec_container("e1") == id64("b2"));     // its container is still there
  CHECK_FALSE(idx.volume("acme_data").has_value());  // h2 no longer lists it
  CHECK(idx.network_by_id(id64("n1")).has_value());  // not h2's to replace
  CHECK(idx.image_by_id(image_id("i1")).has_value());

  // The primary (h1) lists no networks now: they go, and the other hosts' containers stay.
  OwnershipIndex h1;
  h1.put_container({id64("a1"), "acme", "acme_web", "running"});
  idx.replace_host("h1", std::move(h1), true);
  CHECK_FALSE(idx.network_by_id(id64("n1")).has_value());
  CHECK(idx.images().empty());
  CHECK(idx.host_of_container("acme_db") == "h2");
  CHECK(idx.resources_of(id64("b2")).has_value());
  CHECK(idx.exec_container("e1") == id64("b2"));
  CHECK(idx.usage_of("acme").containers == 3);
}

TEST_CASE("a container's host is found by full id, stored name or unique id prefix, never by "
          "an ambiguous prefix",
          "[policy][index][fleet]") {
  OwnershipIndex idx;
  idx.put_container({id64("abc1"), "acme", "acme_web", "running", "h1"});
  idx.put_container({id64("abc2"), "globex", "/globex_web", "running", "h2"});
  CHECK(idx.host_of_container(id64("abc1")) == "h1");
  CHECK(idx.host_of_container("globex_web") == "h2");
  CHECK(idx.host_of_container("/acme_web") == "h1");
  CHECK(idx.host_of_container("abc2") == "h2");
  CHECK_FALSE(idx.host_of_container("abc").has_value());
  CHECK_FALSE(idx.host_of_container("").has_value());
  CHECK_FALSE(idx.host_of_container("ffff").has_value());
}

TEST_CASE("a create in flight holds its stored name against another create of the same name",
          "[policy][index][fleet]") {
  OwnershipIndex idx;
  const auto first = idx.reserve("acme", Resources{}, "");
  idx.name_reservation(first, "acme_web");
  const auto second = idx.reserve("acme", Resources{}, "");
  idx.name_reservation(second, "acme_web");
  CHECK(idx.name_reserved("acme_web", second));
  CHECK(idx.name_reserved("acme_web", first));
  CHECK_FALSE(idx.name_reserved("acme_db", first));
  idx.release(first);
  CHECK_FALSE(idx.name_reserved("acme_web", second));
}

TEST_CASE("a migrated container's name stays with its twin on the other host, however the "
          "hosts' events about the two interleave",
          "[policy][index][migrate]") {
  const std::string source(64, 'a');
  const std::string twin(64, 'b');
  OwnershipIndex idx;
  idx.put_container({source, "acme", "acme_app", "running", "h0"});
  // The twin is created on h1 under the same name: the newer container takes it.
  idx.put_container({twin, "acme", "acme_app", "created", "h1"});
  CHECK(idx.host_of_container("acme_app") == "h1");
  // h0 reports the source's dump (it stops): read again, it does not take the name back.
  idx.put_container({source, "acme", "acme_app", "exited", "h0"});
  CHECK(idx.host_of_container("acme_app") == "h1");
  // The source is removed: the name stays the twin's.
  idx.erase_container(source);
  CHECK(idx.host_of_container("acme_app") == "h1");

  // A rollback: the twin goes, the source (which held the name before) gets it back.
  OwnershipIndex back;
  back.put_container({source, "acme", "acme_app", "running", "h0"});
  back.put_container({twin, "acme", "acme_app", "created", "h1"});
  back.erase_container(twin);
  CHECK(back.host_of_container("acme_app") == "h0");
  // A rename still moves a container's name.
  back.put_container({source, "acme", "acme_web", "running", "h0"});
  CHECK(back.host_of_container("acme_web") == "h0");
  CHECK_FALSE(back.host_of_container("acme_app").has_value());
}
