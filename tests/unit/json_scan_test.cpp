// The JSON cursor the streaming response filters stand on: it never accepts what nlohmann
// refuses (a streaming filter would then answer where the DOM filter answers 502), it decodes
// strings as nlohmann does, and what it writes nlohmann reads back unchanged.

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/json_scan.hpp"

using berth::policy::json_scan::append_quoted;
using berth::policy::json_scan::Cursor;
using json = nlohmann::json;

namespace {

bool scans_whole(std::string_view text) {
  Cursor c(text);
  return c.skip_value() && c.at_end();
}

}  // namespace

TEST_CASE("the cursor accepts the JSON dockerd writes and hands back each value's bytes",
          "[policy][json_scan]") {
  const std::string text =
      R"({"Id":"a0e1","Names":["/acme_web"],"Created":1700000000,"SizeRw":-12,"Cpu":0.25,)"
      R"("Labels":{},"Ports":[],"Tty":false,"Health":null,"Cmd":"echo \u003cok\u003e \u0026"})"
      "\n";
  CHECK(scans_whole(text));
  Cursor c(text);
  std::string_view raw;
  REQUIRE(c.skip_value(raw));
  CHECK(raw == std::string_view(text).substr(0, text.size() - 1));
}

TEST_CASE("the cursor refuses everything nlohmann refuses", "[policy][json_scan]") {
  auto text = GENERATE(as<std::string>{}, "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}",
                       "[01]", "[1.]", "[-]", "[.5]", "[+1]", "tru", "nul", "[true false]",
                       "{} {}", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\u12g4\"",
                       "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", std::string("\"a\0b\"", 5),
                       "\"tab\there\"", "\"\x80\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"",
                       "\"\xF4\x90\x80\x80\"", "\"\xE2\x82\"", "{1:2}", "[\"a\":1]");
  CAPTURE(text);
  REQUIRE_FALSE(json::accept(text));
  CHECK_FALSE(scans_whole(text));
}

TEST_CASE("the cursor declines numbers nlohmann would turn into doubles that may overflow",
          "[policy][json_scan]") {
  auto text = GENERATE(as<std::string>{}, "1e5", "[2E-3]", "-1.5e+300", std::string(301, '7'));
  CAPTURE(text);
  CHECK_FALSE(scans_whole(text));
}

TEST_CASE("the cursor declines nesting deeper than its limit instead of recursing on",
          "[policy][json_scan]") {
  const int depth = berth::policy::json_scan::max_depth + 5;
  const std::string deep = std::string(static_cast<std::size_t>(depth), '[') +
                           std::string(static_cast<std::size_t>(depth), ']');
  REQUIRE(json::accept(deep));
  CHECK_FALSE(scans_whole(deep));
  CHECK(scans_whole("[[[[[[[[[[]]]]]]]]]]"));
}

TEST_CASE("whatever the cursor accepts nlohmann accepts too", "[policy][json_scan]") {
  auto text = GENERATE(as<std::string>{}, "0", "-0", "-0.0", "123456789012345678901234567890",
                       "\"\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\ud83d\\ude00\"",
                       "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"", "\"\x7f\"",
                       " {\"a\" : [ 1 , {\"b\":null} ] } \r\n\t", "[[],{}]");
  CAPTURE(text);
  CHECK(scans_whole(text));
  CHECK(json::accept(text));
}

TEST_CASE("strings are decoded as nlohmann decodes them", "[policy][json_scan]") {
  auto text = GENERATE(as<std::string>{}, R"("plain")", R"("a\"b\\c\/d")", R"("\u00e9\u20ac")",
                       R"("\ud83d\ude00 \uD83D\uDE00")", R"("\b\f\n\r\t\u0000x")",
                       R"("\u003cacme_web\u003e")");
  CAPTURE(text);
  Cursor c(text);
  std::string_view raw;
  std::string_view value;
  std::string scratch;
  REQUIRE(c.read_string(raw, value, scratch));
  CHECK(raw == text);
  CHECK(std::string(value) == json::parse(text).get<std::string>());
}

TEST_CASE("a quoted string reads back as the same text", "[policy][json_scan]") {
  auto text = GENERATE(as<std::string>{}, "", "web", "a\"b\\c", std::string("nul\0x", 5),
                       "\x01\x1f\b\f\n\r\t", "caf\xC3\xA9 \xF0\x9F\x98\x80", "</script>&");
  std::string out;
  append_quoted(out, text);
  CAPTURE(out);
  REQUIRE(json::accept(out));
  CHECK(json::parse(out).get<std::string>() == text);
}
