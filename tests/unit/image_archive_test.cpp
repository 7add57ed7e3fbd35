// Image archives in a tenant's namespace: what `docker load` may bring into dockerd (judged as
// it streams, with manifest.json written by berth, last) and how `docker save` names the images
// it writes out.

#include "policy/image_archive.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/ownership_index.hpp"
#include "tests/unit/tar_fixture.hpp"

using namespace berth::policy;
using namespace berth::test_tar;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

const std::string kConfig = R"({"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],
  "Labels":{"org.example":"yes"}},"rootfs":{"type":"layers","diff_ids":[]}})";
const std::string kConfigName = std::string(64, 'c') + ".json";

std::string manifest(const std::string& tags = R"(["app:v1"])",
                     const std::string& config = kConfigName, const std::string& extra = "") {
  return R"([{"Config":")" + config + R"(","RepoTags":)" + tags +
         R"(,"Layers":["l1/layer.tar"])" + extra + "}]";
}

std::string archive(const std::string& manifest_text, const std::string& config = kConfig) {
  return directory("l1/") + file("l1/layer.tar", std::string(1536, 'x')) +
         file(kConfigName, config) + file("manifest.json", manifest_text) +
         file("repositories", R"({"app":{"v1":"cc"}})") + end_of_archive();
}

struct Loaded {
  bool accepted = false;
  std::string bytes;  ///< what reached dockerd (up to a refusal)
  Decision refusal;
};

Loaded load(std::string_view body, std::size_t piece = 4096) {
  const OwnershipIndex idx;
  LoadArchiveFilter filter("acme");
  Loaded l;
  while (!body.empty()) {
    const auto n = std::min(piece, body.size());
    auto out = filter.feed(body.substr(0, n), idx);
    while (out && filter.pending()) {
      auto more = filter.feed({}, idx);
      if (!more) {
        out = std::move(more);
        break;
      }
      *out += *more;
    }
    body.remove_prefix(n);
    if (!out) {
      l.refusal = out.error();
      return l;
    }
    l.bytes += *out;
  }
  auto tail = filter.finish();
  if (!tail) {
    l.refusal = tail.error();
    return l;
  }
  l.bytes += *tail;
  l.accepted = true;
  return l;
}

// The entries of a tar archive as name -> data, read by the test fixture's own rule (ustar
// name field and octal size only: what berth writes for these short names).
std::map<std::string, std::string> entries(std::string_view tar) {
  std::map<std::string, std::string> out;
  while (tar.size() >= block && tar[0] != '\0') {
    const std::string name(tar.substr(0, 100).data(), tar.substr(0, 100).find('\0'));
    const auto size = std::stoull(std::string(tar.substr(124, 11)), nullptr, 8);
    tar.remove_prefix(block);
    out[name] = std::string(tar.substr(0, size));
    tar.remove_prefix((size + block - 1) / block * block);
  }
  return out;
}

using Verdicts = std::map<std::string, std::optional<std::string>, std::less<>>;

}  // namespace

TEST_CASE("an image configuration is fit unless dockerd would read ONBUILD triggers or a "
          "reserved label other than the ownership label or berth.id in it, in any spelling Go "
          "accepts",
          "[policy][image][load]") {
  CHECK_FALSE(judge_image_config(kConfig).has_value());
  CHECK_FALSE(judge_image_config(R"({"config":null})").has_value());
  const auto onbuild = judge_image_config(R"({"config":{"OnBuild":["RUN id"]}})");
  REQUIRE(onbuild.has_value());
  CHECK_THAT(*onbuild, Contains("ONBUILD"));
  // Go matches struct fields case-insensitively: "CONFIG" and "labels" are what dockerd reads.
  const auto label = judge_image_config(R"({"CONFIG":{"labels":{"berth.quota":"none"}}})");
  REQUIRE(label.has_value());
  CHECK_THAT(*label, Contains("berth.quota"));
  // The last of two spellings wins for an array, as in Go.
  CHECK(judge_image_config(R"({"config":{"OnBuild":["RUN id"],"onbuild":[]}})") == std::nullopt);
  CHECK(judge_image_config(R"({"config":{"onbuild":[],"OnBuild":["RUN id"]}})").has_value());
  CHECK(judge_image_config(R"({"config":{"Labels":{"Berth.Tenant":"x"}}})").has_value());
  // The ownership label is what every build through berth carries: such an image, pushed or
  // saved and brought back, by its builder or another tenant, is kept. Another reserved key
  // is not.
  CHECK(judge_image_config(R"({"config":{"Labels":{"berth.tenant":"globex"}}})") == std::nullopt);
  // So is berth.id, which every container create through berth sets (empty) and a commit
  // copies into the image; a container made from the image gets its own again.
  CHECK(judge_image_config(R"({"config":{"Labels":{"berth.tenant":"acme","berth.id":""}}})") ==
        std::nullopt);
  CHECK(judge_image_config(R"({"config":{"Labels":{"berth.tenant":"acme","berth.x":"y"}}})")
            .has_value());
  // What dockerd could not read at all is not fit either.
  CHECK(judge_image_config(R"({"config":{"Labels":{"a":1}}})").has_value());
  CHECK(judge_image_config("{").has_value());
}

TEST_CASE("a loaded manifest names each image in the tenant's namespace, keeps only what dockerd "
          "needs, and refuses what it cannot judge",
          "[policy][image][load]") {
  const Verdicts fit = {{kConfigName, std::nullopt}};
  auto m = judge_load_manifest(
      "acme", manifest(R"(["app:v1","registry.example.com:5000/team/x:2"])", kConfigName,
                       R"(,"Parent":"sha256:)" + std::string(64, 'f') + "\""),
      fit);
  REQUIRE(m.has_value());
  const json doc = json::parse(*m);
  CHECK(doc[0]["RepoTags"] ==
        json({"acme.berth.local/app:v1", "acme.berth.local/registry.example.com__5000/team/x:2"}));
  CHECK(doc[0]["Layers"] == json({"l1/layer.tar"}));
  CHECK_FALSE(doc[0].contains("Parent"));
  // The configuration by any spelling of its path that dockerd opens the same way.
  CHECK(judge_load_manifest("acme", manifest(R"(["a:1"])", "./" + kConfigName), fit).has_value());
  CHECK(judge_load_manifest("acme", manifest(R"(["a:1"])", "/" + kConfigName), fit).has_value());

  auto refused = [&](const std::string& text, const Verdicts& verdicts, std::string_view why) {
    CAPTURE(text);
    const auto r = judge_load_manifest("acme", text, verdicts);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().tenant_message, Contains(std::string(why)));
  };
  refused(manifest("[]"), fit, "has no name");
  refused(manifest("null"), fit, "has no name");
  refused(manifest(R"(["app"])"), fit, "invalid tag");
  refused(manifest(R"(["app@sha256:)" + std::string(64, 'a') + "\"]"), fit, "invalid tag");
  refused(manifest(R"(["a:1"])", "../" + kConfigName), fit, "not a regular file");
  refused(manifest(R"(["a:1"])", "other.json"), fit, "not a regular file");
  refused(manifest(R"(["a:1"])"), {{kConfigName, "has ONBUILD triggers"}}, "ONBUILD");
  refused(manifest(R"(["a:1"])", kConfigName, R"(,"LayerSources":{"sha256:x":{}})"), fit,
          "foreign layers");
  // Go's decoding: the last of two spellings of RepoTags is the one dockerd uses.
  const auto twice = judge_load_manifest(
      "acme", R"([{"Config":")" + kConfigName + R"(","RepoTags":["a:1"],"repotags":[]}])", fit);
  REQUIRE_FALSE(twice.has_value());
  CHECK_THAT(twice.error().tenant_message, Contains("has no name"));
}

TEST_CASE("a loaded archive reaches dockerd with berth's manifest.json last and no legacy names",
          "[policy][image][load]") {
  for (std::size_t piece : {std::size_t{1}, std::size_t{513}, std::size_t{1} << 20}) {
    CAPTURE(piece);
    const Loaded l = load(archive(manifest()), piece);
    INFO(l.refusal.tenant_message);
    REQUIRE(l.accepted);
    const auto got = entries(l.bytes);
    CHECK(got.at(kConfigName) == kConfig);
    CHECK(got.at("l1/layer.tar") == std::string(1536, 'x'));
    CHECK_FALSE(got.contains("repositories"));
    CHECK(json::parse(got.at("manifest.json"))[0]["RepoTags"] == json({"acme.berth.local/app:v1"}));
  }
  // manifest.json is written last, after the configuration it names was judged, wherever the
  // archive had it.
  const Loaded first = load(file("manifest.json", manifest()) + directory("l1/") +
                            file("l1/layer.tar", "x") + file(kConfigName, kConfig) +
                            end_of_archive());
  REQUIRE(first.accepted);
  CHECK(first.bytes.find("manifest.json") > first.bytes.find(kConfigName));
  // docker save | gzip
  const Loaded zipped = load(gzip(archive(manifest())), 100);
  INFO(zipped.refusal.tenant_message);
  CHECK(zipped.accepted);
}

TEST_CASE("a loaded archive is refused for what would make dockerd load other than what berth "
          "judged",
          "[policy][image][load]") {
  auto refused = [](const std::string& body, std::string_view why) {
    const Loaded l = load(body);
    CHECK_FALSE(l.accepted);
    CHECK_THAT(l.refusal.tenant_message, Contains(std::string(why)));
    CHECK(l.refusal.http_status >= 400);
  };
  const std::string layer = directory("l1/") + file("l1/layer.tar", "x");
  const std::string labelled = R"({"config":{"Labels":{"berth.quota":"none"}}})";
  refused(archive(manifest(), labelled), "reserved");
  refused(archive(manifest(), R"({"config":{"OnBuild":["ADD http://10.0.0.1/ /"]}})"), "ONBUILD");
  // A judged configuration replaced by a later entry at its path.
  refused(layer + file(kConfigName, kConfig) + file(kConfigName, labelled) +
              file("manifest.json", manifest()) + end_of_archive(),
          "two entries");
  // manifest.json reached through a link, or written through one.
  refused(layer + file(kConfigName, kConfig) + file("m.json", manifest()) +
              symbolic_link("manifest.json", "m.json") + end_of_archive(),
          "must be a regular file");
  refused(layer + file(kConfigName, kConfig) + symbolic_link("d", ".") +
              file("d/manifest.json", manifest()) + end_of_archive(),
          "symbolic link");
  // The configuration's directory replaced, after it was judged, by a link to another one.
  refused(layer + file("d/" + kConfigName, kConfig) + directory("e/") +
              file("e/" + kConfigName, labelled) + symbolic_link("d", "e") +
              file("manifest.json", manifest(R"(["a:1"])", "d/" + kConfigName)) + end_of_archive(),
          "replaces the directory 'd'");
  refused(layer + file("d/" + kConfigName, kConfig) + file("x", "y") + hard_link("d", "x") +
              file("manifest.json", manifest(R"(["a:1"])", "d/" + kConfigName)) + end_of_archive(),
          "replaces the directory 'd'");
  // The configuration as a link to a file berth did not read as one.
  refused(layer + file("big", kConfig) + symbolic_link(kConfigName, "big") +
              file("manifest.json", manifest()) + end_of_archive(),
          "not a regular file");
  // The legacy format dockerd names from "repositories".
  refused(layer + file(kConfigName, kConfig) + file("repositories", R"({"app":{"v1":"x"}})") +
              end_of_archive(),
          "no manifest.json");
  refused(std::string("BZh91AY&SY") + std::string(600, '\0'), "only gzip-compressed");
  // More entries than berth remembers.
  std::string many;
  for (int i = 0; i <= 65536; ++i) {
    many += directory("d" + std::to_string(i) + "/");
  }
  refused(many + end_of_archive(), "more entries than berth reads");
  // A cut archive: dockerd must not see its end.
  const std::string whole = archive(manifest());
  const Loaded cut = load(whole.substr(0, 700));
  CHECK_FALSE(cut.accepted);
}

TEST_CASE("a saved archive names the tenant's images as the tenant does and passes the rest as "
          "dockerd wrote it",
          "[policy][image][save]") {
  const std::string saved =
      directory("l1/") + file("l1/layer.tar", std::string(2000, 'y')) + file(kConfigName, kConfig) +
      file("manifest.json",
           manifest(R"(["acme.berth.local/app:v1","acme.berth.local/127.0.0.1__5000/x:1",)"
                    R"("berth-test/busybox:latest"])")) +
      file("repositories", R"({"acme.berth.local/app":{"v1":"cc"},"berth-test/busybox":{"latest":"cc"}})") +
      end_of_archive();
  for (std::size_t piece : {std::size_t{1}, std::size_t{700}, std::size_t{1} << 20}) {
    CAPTURE(piece);
    SaveArchiveFilter filter("acme");
    std::string out;
    for (std::size_t at = 0; at < saved.size(); at += piece) {
      auto part = filter.feed(std::string_view(saved).substr(at, piece));
      REQUIRE(part.has_value());
      out += *part;
    }
    auto tail = filter.finish();
    REQUIRE(tail.has_value());
    out += *tail;
    const auto got = entries(out);
    CHECK(got.at("l1/layer.tar") == std::string(2000, 'y'));
    CHECK(got.at(kConfigName) == kConfig);
    CHECK(json::parse(got.at("manifest.json"))[0]["RepoTags"] ==
          json({"app:v1", "127.0.0.1:5000/x:1", "berth-test/busybox:latest"}));
    CHECK(json::parse(got.at("repositories")) ==
          json::parse(R"({"app":{"v1":"cc"},"berth-test/busybox":{"latest":"cc"}})"));
    CHECK(out.find("berth.local") == std::string::npos);
  }
  // The operator's archive is dockerd's.
  SaveArchiveFilter op("");
  auto whole = op.feed(saved);
  REQUIRE(whole.has_value());
  CHECK_THAT(*whole, Contains("acme.berth.local/app"));
  // A cut archive is an error, so the stream is cut rather than ended as if whole.
  SaveArchiveFilter cut("acme");
  REQUIRE(cut.feed(std::string_view(saved).substr(0, 1000)).has_value());
  CHECK_FALSE(cut.finish().has_value());
}
