// go_json decodes a request body the way dockerd's Go encoding/json decodes it into moby's
// structs, and produces the canonical document berth judges and forwards. A tenant who finds
// any difference between the two decoders can make berth judge one document while dockerd
// executes another, so these tests pin Go's behaviour: case-insensitive field names (with the
// long s and the Kelvin sign), repeated keys, null, unknown fields and type errors.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/docker_types.hpp"
#include "policy/go_json.hpp"

namespace go = berth::policy::go;
namespace docker_types = berth::policy::docker_types;
using json = nlohmann::json;
using Catch::Matchers::Contains;

namespace {

// U+017F LATIN SMALL LETTER LONG S and U+212A KELVIN SIGN as raw UTF-8.
const std::string kLongS = "\xC5\xBF";
const std::string kKelvin = "\xE2\x84\xAA";

json decoded(std::string_view body, const go::Type& type = docker_types::container_create()) {
  auto r = go::decode(body, type);
  INFO("body: " << body);
  INFO("error: " << (r ? std::string("(none)") : r.error()));
  REQUIRE(r.has_value());
  return *r;
}

std::string decode_error(std::string_view body,
                         const go::Type& type = docker_types::container_create()) {
  auto r = go::decode(body, type);
  INFO("body: " << body);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

// A small struct for the integer and tie-breaking rules.
const go::Type& numbers() {
  static const go::TypePtr t = go::struct_of({{"I32", go::int32()},
                                              {"I64", go::int64()},
                                              {"U16", go::uint16()},
                                              {"U64", go::uint64()},
                                              {"F", go::float64()},
                                              {"Any", go::any()}});
  return *t;
}

}  // namespace

TEST_CASE("a field name matches in any letter case, as dockerd's decoder matches it",
          "[policy][go_json]") {
  auto key = GENERATE(as<std::string>{}, "Privileged", "privileged", "PRIVILEGED", "pRiViLeGeD",
                      "PrivilegeD", R"(Privil\u0065ged)", R"(\u0050rivileged)");
  CAPTURE(key);
  const json doc = decoded(R"({"HostConfig":{")" + key + R"(":true}})");
  REQUIRE(doc.contains("HostConfig"));
  CHECK(doc["HostConfig"] == json{{"Privileged", true}});
}

TEST_CASE("the long s and the Kelvin sign match s and k in field names, as Go folds them",
          "[policy][go_json]") {
  auto [body, path] = GENERATE_COPY(table<std::string, std::string>({
      {R"({"HostConfig":{"Bind\u017f":["a:/a"]}})", "/HostConfig/Binds"},
      {R"({"HostConfig":{"BIND\u017F":["a:/a"]}})", "/HostConfig/Binds"},
      {R"({"HostConfig":{"Bind)" + kLongS + R"(":["a:/a"]}})", "/HostConfig/Binds"},
      {R"({"Ho\u017ftConfig":{"Binds":["a:/a"]}})", "/HostConfig/Binds"},
      {R"({"Ho)" + kLongS + R"(tconfig":{"Binds":["a:/a"]}})", "/HostConfig/Binds"},
      {R"({"HostConfig":{"Lin\u212as":["db:db"]}})", "/HostConfig/Links"},
      {R"({"HostConfig":{"Lin)" + kKelvin + R"(s":["db:db"]}})", "/HostConfig/Links"},
      {R"({"HostConfig":{"Oom\u212AillDisable":true}})", "/HostConfig/OomKillDisable"},
      {R"({"HostConfig":{"\u212AernelMemory":1}})", "/HostConfig/KernelMemory"},
      {R"({"HostConfig":{"Ma\u017f\u212aedPaths":[]}})", "/HostConfig/MaskedPaths"},
      {R"({"HostConfig":{"\u017fECURITYOPT":["x"]}})", "/HostConfig/SecurityOpt"},
      {R"({"HostConfig":{"Sy\u017fctl\u017f":{"a":"b"}}})", "/HostConfig/Sysctls"},
      {R"({"HostConfig":{"Volume\u017fFrom":["x"]}})", "/HostConfig/VolumesFrom"},
      {R"({"HostConfig":{"Networ\u212aMode":"host"}})", "/HostConfig/NetworkMode"},
      {R"({"Label\u017f":{"a":"b"}})", "/Labels"},
  }));
  CAPTURE(body, path);
  const json doc = decoded(body);
  CHECK(doc.contains(json::json_pointer(path)));
}

TEST_CASE("characters that only look like ASCII letters do not match a field, as in Go",
          "[policy][go_json]") {
  auto key = GENERATE(as<std::string>{},
                      R"(Bind\u0455)",        // CYRILLIC SMALL LETTER DZE
                      R"(Bind\uff53)",        // FULLWIDTH LATIN SMALL LETTER S
                      R"(\u0130pcMode)",      // LATIN CAPITAL LETTER I WITH DOT ABOVE
                      R"(\u0131pcMode)",      // LATIN SMALL LETTER DOTLESS I
                      R"(Binds\u200b)",       // ZERO WIDTH SPACE
                      R"(Binds )", R"( Binds)", R"(Binds\u0000)", "Bind", "Bindss", "Bin_ds",
                      R"(\u017f)", R"(Lin\u212a)");
  CAPTURE(key);
  const json doc = decoded(R"({"HostConfig":{")" + key + R"(":["/:/host"],"IpcMode":"x"}})");
  REQUIRE(doc.contains("HostConfig"));
  CHECK_FALSE(doc["HostConfig"].contains("Binds"));
  CHECK_FALSE(doc["HostConfig"].contains("Links"));
  CHECK(doc["HostConfig"]["IpcMode"] == "x");
}

TEST_CASE("fold_equal is Go's field-name match: ASCII case plus the long s and the Kelvin sign",
          "[policy][go_json]") {
  auto [key, field, expected] = GENERATE_COPY(table<std::string, std::string, bool>({
      {"Binds", "Binds", true},
      {"binds", "Binds", true},
      {"BINDS", "Binds", true},
      {"Bind" + kLongS, "Binds", true},
      {kLongS, "s", true},
      {kLongS, "S", true},
      {kKelvin, "k", true},
      {kKelvin, "K", true},
      {"Lin" + kKelvin + "s", "Links", true},
      {"Bind", "Binds", false},
      {"Bindss", "Binds", false},
      {"", "Binds", false},
      {"Binds", "", false},
      {"", "", true},
      {"Bind\xC5", "Binds", false},              // truncated long s
      {"Lin\xE2\x84s", "Links", false},          // truncated Kelvin sign
      {"Bind\xC5\xBE", "Binds", false},          // U+017E, one code point away
      {"Bind" + kKelvin, "Binds", false},        // Kelvin is k, not s
      {"Lin" + kLongS + "s", "Links", false},    // long s is s, not k
      {"Bind@", "Bind`", false},                 // bytes that differ only in 0x20
      {"Bind[", "Bind{", false},
  }));
  CAPTURE(key, field);
  CHECK(go::fold_equal(key, field) == expected);
}

TEST_CASE("a field repeated in any spelling is decoded again and the last value wins",
          "[policy][go_json]") {
  auto [body, path, expected] = GENERATE(table<std::string, std::string, std::string>({
      {R"({"HostConfig":{"Privileged":true,"privileged":false}})", "/HostConfig/Privileged",
       "false"},
      {R"({"HostConfig":{"privileged":false,"PRIVILEGED":true}})", "/HostConfig/Privileged",
       "true"},
      {R"({"HostConfig":{"NetworkMode":"host","networkmode":"bridge"}})",
       "/HostConfig/NetworkMode", R"("bridge")"},
      {R"({"HostConfig":{"NetworkMode":"bridge","NETWORKMODE":"host"}})",
       "/HostConfig/NetworkMode", R"("host")"},
      {R"({"Image":"a","image":"b","IMAGE":"c"})", "/Image", R"("c")"},
      {R"({"HostConfig":{"OomScoreAdj":-1000,"oomscoreadj":0}})", "/HostConfig/OomScoreAdj",
       "0"},
  }));
  CAPTURE(body);
  const json doc = decoded(body);
  REQUIRE(doc.contains(json::json_pointer(path)));
  CHECK(doc.at(json::json_pointer(path)) == json::parse(expected));
}

TEST_CASE("null leaves a plain field as it was but clears a pointer, slice, map or StrSlice",
          "[policy][go_json]") {
  SECTION("a bool, string or integer keeps its earlier value") {
    const json doc = decoded(
        R"({"HostConfig":{"Privileged":true,"Privileged":null,"NetworkMode":"host",)"
        R"("networkmode":null,"OomScoreAdj":-5,"OomScoreAdj":null}})");
    CHECK(doc["HostConfig"]["Privileged"] == true);
    CHECK(doc["HostConfig"]["NetworkMode"] == "host");
    CHECK(doc["HostConfig"]["OomScoreAdj"] == -5);
  }
  SECTION("a plain field that was never set stays absent") {
    const json doc = decoded(R"({"HostConfig":{"Privileged":null,"LogConfig":null}})");
    CHECK(doc["HostConfig"] == json::object());
  }
  SECTION("a pointer to a struct is reset, so nothing of the first object survives") {
    const json doc = decoded(R"({"HostConfig":{"Privileged":true},"hostconfig":null})");
    CHECK_FALSE(doc.contains("HostConfig"));
  }
  SECTION("a struct after null starts from scratch") {
    const json doc =
        decoded(R"({"HostConfig":{"Privileged":true},"HostConfig":null,"HostConfig":{"Memory":1}})");
    CHECK(doc["HostConfig"] == json{{"Memory", 1}});
  }
  SECTION("slices, maps, pointers and StrSlices are cleared") {
    const json doc = decoded(
        R"({"HostConfig":{"Binds":["/:/host"],"binds":null,"Sysctls":{"a":"b"},"sysctls":null,)"
        R"("Init":true,"init":null,"CapAdd":"ALL","capadd":null,"MemorySwappiness":5,)"
        R"("MemorySwappiness":null},"Labels":{"a":"b"},"Labels":null})");
    CHECK(doc["HostConfig"] == json::object());
    CHECK_FALSE(doc.contains("Labels"));
  }
}

TEST_CASE("repeated objects are merged field by field, as Go decodes into the same struct",
          "[policy][go_json]") {
  SECTION("two HostConfig objects in different spellings") {
    const json doc = decoded(
        R"({"HostConfig":{"Binds":["/:/host"]},"hostconfig":{"Memory":1},)"
        R"("HOSTCONFIG":{"CapAdd":["SYS_ADMIN"]}})");
    CHECK(doc["HostConfig"]["Binds"] == json{"/:/host"});
    CHECK(doc["HostConfig"]["Memory"] == 1);
    CHECK(doc["HostConfig"]["CapAdd"] == json{"SYS_ADMIN"});
  }
  SECTION("nested structs merge too") {
    const json doc = decoded(
        R"({"HostConfig":{"LogConfig":{"Type":"syslog"}},)"
        R"("HostConfig":{"LogConfig":{"Config":{"syslog-address":"tcp://x"}}}})");
    CHECK(doc["HostConfig"]["LogConfig"]["Type"] == "syslog");
    CHECK(doc["HostConfig"]["LogConfig"]["Config"]["syslog-address"] == "tcp://x");
  }
  SECTION("a repeated map keeps the keys of both, and map keys stay case-sensitive") {
    const json doc = decoded(R"({"Labels":{"a":"1","A":"2"},"labels":{"b":"3","a":"4"}})");
    CHECK(doc["Labels"] == json{{"a", "4"}, {"A", "2"}, {"b", "3"}});
  }
}

TEST_CASE("a repeated array replaces the earlier one entirely", "[policy][go_json]") {
  SECTION("a shorter second list") {
    const json doc = decoded(R"({"HostConfig":{"Binds":["/:/host","/etc:/etc"],"binds":["a:/a"]}})");
    CHECK(doc["HostConfig"]["Binds"] == json{"a:/a"});
  }
  SECTION("an empty second list") {
    const json doc = decoded(R"({"HostConfig":{"CapAdd":["SYS_ADMIN"],"capadd":[]}})");
    CHECK(doc["HostConfig"]["CapAdd"] == json::array());
  }
  SECTION("a longer second list") {
    const json doc = decoded(R"({"HostConfig":{"Dns":["1.1.1.1"],"DNS":["8.8.8.8","9.9.9.9"]}})");
    CHECK(doc["HostConfig"]["Dns"] == json{"8.8.8.8", "9.9.9.9"});
  }
}

TEST_CASE("a repeated map key replaces the whole value, as Go decodes into a fresh element",
          "[policy][go_json]") {
  // encoding/json allocates a zero element for every map entry it decodes (mapElem.SetZero()),
  // so nothing of an earlier value under the same key survives, unlike a repeated struct field.
  SECTION("struct values") {
    const json doc = decoded(
        R"({"NetworkingConfig":{"EndpointsConfig":{"front":{"Aliases":["a"]},)"
        R"("front":{"MacAddress":"02:42:ac:11:00:02"}}}})");
    CHECK(doc["NetworkingConfig"]["EndpointsConfig"]["front"] ==
          json{{"MacAddress", "02:42:ac:11:00:02"}});
  }
  SECTION("string values: null decodes to the empty string") {
    const json doc = decoded(R"({"Labels":{"a":"x","a":null}})");
    CHECK(doc["Labels"] == json{{"a", ""}});
  }
}

TEST_CASE("a null element of a list decodes to the element type's zero value, as in Go",
          "[policy][go_json]") {
  // Go stores "" for a null in a []string. A JSON null in the canonical document would be a
  // value no Go field can hold, and judging code reading it as a string would throw (see
  // "[rewrite] a null inside a list is judged, never thrown on").
  const json doc = decoded(R"({"HostConfig":{"Binds":[null,"a:/a"],"Links":[null]},"Env":[null]})");
  CHECK(doc["HostConfig"]["Binds"] == json{"", "a:/a"});
  CHECK(doc["HostConfig"]["Links"] == json{""});
  CHECK(doc["Env"] == json{""});
}

TEST_CASE("unknown fields are dropped from the canonical document, including near misses",
          "[policy][go_json]") {
  const json doc = decoded(
      R"({"Image":"busybox","Config":{"Image":"evil"},"HostConfig":{"Privileged2":true,)"
      R"("Privileged ":true,"X-Privileged":true,"Memory":1,"Extra":{"Binds":["/:/host"]}},)"
      R"("hostconfig2":{"Privileged":true}})");
  CHECK(doc == json{{"Image", "busybox"}, {"HostConfig", {{"Memory", 1}}}});
}

TEST_CASE("the canonical document uses Go's field names, whatever the client wrote",
          "[policy][go_json]") {
  const json doc = decoded(
      R"({"image":"busybox","CMD":"sh","hostconfig":{"networkmode":"none","capdrop":"ALL",)"
      R"("logconfig":{"type":"local"}},"networkingconfig":{"endpointsconfig":{"Front":{"aliases":["a"]}}}})");
  CHECK(doc["Image"] == "busybox");
  CHECK(doc["Cmd"] == json{"sh"});
  CHECK(doc["HostConfig"]["NetworkMode"] == "none");
  CHECK(doc["HostConfig"]["CapDrop"] == json{"ALL"});
  CHECK(doc["HostConfig"]["LogConfig"]["Type"] == "local");
  // Map keys (network names) are data, not field names: kept exactly.
  CHECK(doc["NetworkingConfig"]["EndpointsConfig"]["Front"]["Aliases"] == json{"a"});
}

TEST_CASE("a value of the wrong type is refused, naming the field as Go names it",
          "[policy][go_json]") {
  auto [body, path] = GENERATE(table<std::string, std::string>({
      {R"({"HostConfig":{"Privileged":"true"}})", "HostConfig.Privileged"},
      {R"({"HostConfig":{"privileged":1}})", "HostConfig.Privileged"},
      {R"({"HostConfig":{"Privileged":[true]}})", "HostConfig.Privileged"},
      {R"({"hostconfig":{"memory":"1g"}})", "HostConfig.Memory"},
      {R"({"HostConfig":{"Memory":1.5}})", "HostConfig.Memory"},
      {R"({"HostConfig":{"Memory":1e3}})", "HostConfig.Memory"},
      {R"({"HostConfig":{"Memory":9223372036854775808}})", "HostConfig.Memory"},
      {R"({"HostConfig":{"BlkioWeight":-1}})", "HostConfig.BlkioWeight"},
      {R"({"HostConfig":{"BlkioWeight":65536}})", "HostConfig.BlkioWeight"},
      {R"({"HostConfig":{"Binds":"a:/a"}})", "HostConfig.Binds"},
      {R"({"HostConfig":{"Binds":["a:/a",1]}})", "HostConfig.Binds[1]"},
      {R"({"HostConfig":{"CapAdd":{"SYS_ADMIN":true}}})", "HostConfig.CapAdd"},
      {R"({"HostConfig":{"CapAdd":["ALL",true]}})", "HostConfig.CapAdd[1]"},
      {R"({"HostConfig":[]})", "HostConfig"},
      {R"({"HostConfig":"privileged"})", "HostConfig"},
      {R"({"Labels":{"a":1}})", "Labels.a"},
      {R"({"Cmd":1})", "Cmd"},
      {R"({"Healthcheck":{"Retries":"3"}})", "Healthcheck.Retries"},
      {R"({"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":80}]}}})",
       "HostConfig.PortBindings.80/tcp[0].HostPort"},
      {R"({"HostConfig":{"Mounts":[{"Type":"bind","ReadOnly":"yes"}]}})",
       "HostConfig.Mounts[0].ReadOnly"},
      {R"([{"Image":"busybox"}])", "the body"},
      {R"("busybox")", "the body"},
  }));
  CAPTURE(body);
  CHECK_THAT(decode_error(body), Contains(path));
}

TEST_CASE("integers are range-checked for their Go type", "[policy][go_json]") {
  auto [body, ok] = GENERATE(table<std::string, bool>({
      {R"({"I32":2147483647})", true},
      {R"({"I32":-2147483648})", true},
      {R"({"I32":2147483648})", false},
      {R"({"I32":-2147483649})", false},
      {R"({"I64":9223372036854775807})", true},
      {R"({"I64":-9223372036854775808})", true},
      {R"({"I64":9223372036854775808})", false},
      {R"({"U16":65535})", true},
      {R"({"U16":65536})", false},
      {R"({"U16":-1})", false},
      {R"({"U64":18446744073709551615})", true},
      {R"({"U64":-1})", false},
      {R"({"U64":1.0})", false},
      {R"({"F":1})", true},
      {R"({"F":1.5e300})", true},
      {R"({"F":"1"})", false},
  }));
  CAPTURE(body);
  CHECK(go::decode(body, numbers()).has_value() == ok);
}

TEST_CASE("StrSlice fields take a string or a list of strings", "[policy][go_json]") {
  CHECK(decoded(R"({"Cmd":"sh"})")["Cmd"] == json{"sh"});
  CHECK(decoded(R"({"Cmd":["sh","-c","id"]})")["Cmd"] == json{"sh", "-c", "id"});
  CHECK(decoded(R"({"Entrypoint":[]})")["Entrypoint"] == json::array());
  CHECK_FALSE(decoded(R"({"Cmd":"sh","Cmd":null})").contains("Cmd"));
  CHECK_FALSE(go::decode(R"({"Cmd":1})", docker_types::container_create()).has_value());
  CHECK_FALSE(go::decode(R"({"Cmd":{"0":"sh"}})", docker_types::container_create()).has_value());
}

TEST_CASE("interface{} values are kept as written, the last duplicate key winning",
          "[policy][go_json]") {
  const json doc = decoded(R"({"Any":{"a":1,"a":[2,{"b":null}],"c":"x"}})", numbers());
  CHECK(doc["Any"] == json{{"a", json::array({2, json{{"b", nullptr}}})}, {"c", "x"}});
}

TEST_CASE("an exact field name wins over a case-folded one; otherwise the first field does",
          "[policy][go_json]") {
  static const go::TypePtr t =
      go::struct_of({{"Name", go::string()}, {"name", go::string()}});
  CHECK(decoded(R"({"name":"exact"})", *t) == json{{"name", "exact"}});
  CHECK(decoded(R"({"Name":"exact"})", *t) == json{{"Name", "exact"}});
  CHECK(decoded(R"({"NAME":"folded"})", *t) == json{{"Name", "folded"}});
}

TEST_CASE("an empty body, whitespace or null decodes to an empty document",
          "[policy][go_json]") {
  auto body = GENERATE(as<std::string>{}, "", " ", "\r\n\t ", "null", " null ", "{}");
  CAPTURE(body);
  CHECK(decoded(body) == json::object());
}

TEST_CASE("a body that is not one well-formed JSON document is refused, never guessed at",
          "[policy][go_json]") {
  auto body = GENERATE(as<std::string>{},
                       R"({"Image":"busybox",})",             // trailing comma
                       R"({'Image':'busybox'})",              // single quotes
                       R"({"Image":"busybox")",               // unterminated
                       R"({"Image":"busybox"} {"HostConfig":{"Privileged":true}})",
                       R"({"Image":"busybox"} x)",
                       R"({/*c*/"Image":"busybox"})",
                       R"({"HostConfig":{"Memory":NaN}})",
                       R"({"HostConfig":{"Memory":0x10}})",
                       R"({"Image":"\ud800"})",               // lone surrogate
                       "{\"Image\":\"bad\xff\"}",             // invalid UTF-8
                       "{\"Ima\xc0\xafge\":\"x\"}",           // overlong encoding in a key
                       R"({"Image":"a\x"})");
  CAPTURE(body);
  CHECK_FALSE(go::decode(body, docker_types::container_create()).has_value());
}

TEST_CASE("nesting far beyond any Docker document is refused", "[policy][go_json]") {
  auto nested = [](int depth) {
    return R"({"Any":)" + std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']') + "}";
  };
  CHECK(go::decode(nested(100), numbers()).has_value());
  CHECK_FALSE(go::decode(nested(5000), numbers()).has_value());
}

TEST_CASE("the canonical document decodes to itself, so what berth forwards is what it judged",
          "[policy][go_json]") {
  auto body = GENERATE(as<std::string>{},
                       R"({"HostConfig":{"Privileged":true,"privileged":false}})",
                       R"({"HostConfig":{"Binds":["/:/host"]},"hostconfig":{"Memory":1}})",
                       R"({"hostconfig":{"bind\u017f":["a:/a"],"Lin\u212as":["x:y"]},"LABELS":{"a":"b"}})",
                       R"({"Image":"busybox","Cmd":"sh","HostConfig":null,"HostConfig":{"CapAdd":"ALL"}})",
                       R"({"NetworkingConfig":{"EndpointsConfig":{"a":{"Aliases":["x"]},"b":null}}})");
  CAPTURE(body);
  const json first = decoded(body);
  const json second = decoded(first.dump());
  CHECK(first == second);
}
