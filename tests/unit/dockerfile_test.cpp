// The Dockerfile parser port reads what dockerd 20.10.24's parser reads (tests/differential
// checks the same against the Go parser itself, on thousands of generated files), and the
// canonical lines berth writes read back as the instructions it judged.

#include "policy/dockerfile.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/build_context.hpp"
#include "policy/ownership_index.hpp"

using namespace berth::policy;
using namespace berth::policy::dockerfile;
using Catch::Matchers::Contains;

namespace {

std::vector<Node> parsed(std::string_view text) {
  auto p = parse(text);
  REQUIRE(p.has_value());
  return p->instructions;
}

}  // namespace

TEST_CASE("a UTF-8 byte order mark is dropped on the first line only", "[policy][dockerfile]") {
  CHECK(parsed("\xef\xbb\xbf"
               "FROM a\n")[0]
            .cmd == "from");
  const auto second = parsed(
      "FROM a\n\xef\xbb\xbf"
      "RUN b\n");
  CHECK(second[1].cmd == "\xef\xbb\xbfrun");  // an unknown instruction: berth refuses it
  CHECK_FALSE(known_instruction(second[1].cmd));
}

TEST_CASE("parser directives count only before any other line", "[policy][dockerfile]") {
  CHECK(parse("# escape=`\nFROM a\n")->escape == '`');
  CHECK(parse(" #  Escape =  `  \nFROM a\n")->escape == '`');
  CHECK(parse("# syntax=x\n# escape=`\nFROM a\n")->escape == '`');
  CHECK(parse("\n# escape=`\nFROM a\n")->escape == '\\');         // an empty line ends them
  CHECK(parse("# hello\n# escape=`\nFROM a\n")->escape == '\\');  // so does a comment
  CHECK(parse("#\vescape=`\nFROM a\n")->escape == '\\');          // RE2's \s has no \v
  CHECK_FALSE(parse("# escape=`\n# escape=`\nFROM a\n").has_value());
  CHECK_FALSE(parse("# escape= \nFROM a\n").has_value());  // the value is " "
  CHECK_FALSE(parse("# escape=x\nFROM a\n").has_value());
}

TEST_CASE(
    "a continuation drops comment lines and whitespace-only lines, and keeps the rest's "
    "leading whitespace",
    "[policy][dockerfile]") {
  const auto n = parsed("RUN a \\\n  # comment\n\n \t \n   b \\  \n\xc2\xa0\nc\n");
  REQUIRE(n.size() == 1);
  CHECK(n[0].original == "RUN a    b c");
  CHECK(parsed("# escape=`\nRUN a `\nb\n")[0].args[0] == "a b");
  // An escaped escape token ends the line; a lone one at the end of the file joins nothing.
  CHECK(parsed("RUN a \\\\\nRUN b\n").size() == 2);
  CHECK(parsed("RUN a \\")[0].args[0] == "a");
  // A carriage return after the escape token is not whitespace to the continuation rule.
  CHECK(parsed("RUN a \\\v\nRUN b\n").size() == 2);
  CHECK(parsed("RUN a \\\r\nRUN b\n").size() == 1);
}

TEST_CASE("words are split as Go's regexes and unicode.IsSpace split them",
          "[policy][dockerfile]") {
  SECTION("the keyword ends at [\\t\\v\\f\\r ] and the line is trimmed of Unicode spaces") {
    for (const std::string sep : {" ", "\t", "\v", "\f", "\r"}) {
      const auto n = parsed("FROM" + sep + "a\n");
      CHECK(n[0].cmd == "from");
      CHECK(n[0].args == std::vector<std::string>{"a"});
    }
    CHECK(parsed("\xc2\xa0\xe3\x80\x80"
                 "FROM a\xe2\x80\x83\n")[0]
              .args[0] == "a");
    CHECK(parsed("FROM\xc2\xa0"
                 "a\n")[0]
              .cmd ==
          "from\xc2\xa0"
          "a");
  }
  SECTION("keywords lowercase as strings.ToLower does, Kelvin sign and dotted I included") {
    CHECK(parsed("HEALTHCHEC\xe2\x84\xaa NONE\n")[0].cmd == "healthcheck");
    CHECK(parsed("ONBU\xc4\xb0LD RUN x\n")[0].cmd == "onbuild");
  }
  SECTION("ENV and LABEL words keep quotes and escapes for the later expansion") {
    CHECK(parsed("ENV a=\"x y\" b=c\\ d\n")[0].args ==
          std::vector<std::string>{"a", "\"x y\"", "b", "c\\ d"});
    CHECK_FALSE(parse("ENV a\xc2\xa0"
                      "b\n")
                    .has_value());  // one word to the old form's split
  }
}

TEST_CASE("flags are split byte by byte with quotes and backslashes, before the arguments",
          "[policy][dockerfile]") {
  const auto n = parsed("COPY --from=\"a b\" --chown=x\\ y -- --c d\n");
  CHECK(n[0].flags == std::vector<std::string>{"--from=a b", "--chown=x y"});
  CHECK(n[0].args == std::vector<std::string>{"--c", "d"});
  // Bytes 0x85 and 0xA0 separate flags: the splitter takes each byte as a Latin-1 rune.
  CHECK(parsed("COPY --a=1\xa0--b=2 c d\n")[0].flags == std::vector<std::string>{"--a=1", "--b=2"});
}

TEST_CASE("JSON forms are read as encoding/json reads the first value", "[policy][dockerfile]") {
  CHECK(parsed("RUN [\"a\", \"b\"] junk\n")[0].json);
  CHECK(parsed("RUN [\"\\u0068i\"]\n")[0].args[0] == "hi");
  CHECK(parsed("RUN [\"a\xff\"]\n")[0].args[0] == "a\xef\xbf\xbd");
  CHECK_FALSE(parsed("RUN [\"a\", 1e999]\n")[0].json);  // beyond float64: the shell form
  CHECK_FALSE(parsed("RUN [\"a\"\n")[0].json);
  CHECK_FALSE(parse("RUN [\"a\", 1]\n").has_value());
  CHECK(parsed("CMD []\n")[0].json);
}

TEST_CASE("ONBUILD's trigger is the text dockerd stores after ONBUILD", "[policy][dockerfile]") {
  CHECK(onbuild_expression("ONBUILD RUN x") == "RUN x");
  CHECK(onbuild_expression(" \tOnBuild  RUN x") == "RUN x");
  CHECK(onbuild_expression("ONBUILD\vRUN x") == "\vRUN x");
  CHECK(onbuild_expression("\vONBUILD RUN x") == "\vONBUILD RUN x");
  CHECK(onbuild_expression("ONBU\xc4\xb0LD RUN x") == "ONBU\xc4\xb0LD RUN x");
}

TEST_CASE("a line of 64 KiB or more makes the Dockerfile unreadable to dockerd",
          "[policy][dockerfile]") {
  CHECK(parse("FROM a\nRUN " + std::string(65531, 'x') + "\n").has_value());
  CHECK_FALSE(parse("FROM a\nRUN " + std::string(65532, 'x') + "\n").has_value());
  CHECK_FALSE(parse("FROM a\nRUN " + std::string(65532, 'x')).has_value());
}

TEST_CASE("an instruction line reads back as the instruction it was written from",
          "[policy][dockerfile]") {
  const std::vector<std::string> flags = {"--from=a b", "--chown=\"q\"\\"};
  auto line = instruction_line("copy", flags, "--x y", '\\');
  REQUIRE(line.has_value());
  const auto n = parsed(*line + "\n");
  CHECK(n[0].flags == flags);
  CHECK(n[0].rest == "--x y");
  CHECK_FALSE(instruction_line("run", {}, "echo \\", '\\').has_value());  // would continue
  CHECK(instruction_line("run", {}, "echo \\", '`').has_value());
  CHECK_FALSE(instruction_line("copy", {"--chown=\xc3\xa9"}, "a b", '\\').has_value());
}

TEST_CASE("judged Dockerfiles read back as judged, continuations and comments gone",
          "[policy][build][dockerfile]") {
  OwnershipIndex idx;
  idx.put_image({"sha256:" + std::string(64, 'a'), "", {"berth-test/busybox:latest"}});
  Tenant acme;
  acme.id = "acme";
  const auto judged = judge_dockerfile(acme,
                                       "# escape=`\n"
                                       "FROM berth-test/busybox AS base\n"
                                       "FROM base\n"
                                       "RUN echo `\n"
                                       "  # a comment inside\n"
                                       "\n"
                                       "   hello\n"
                                       "COPY --from=\"base\" --chown=1:1 [\"a b\", \"/c/\"]\n",
                                       idx);
  REQUIRE(judged.has_value());
  CHECK(judged->text ==
        "# escape=`\n"
        "FROM berth-test/busybox AS base\n"
        "FROM base\n"
        "RUN echo    hello\n"
        "COPY --from=base --chown=1:1 [\"a b\", \"/c/\"]\n");
  REQUIRE(judged->instructions.size() == 4);
  CHECK(judged->instructions[3].json);
  CHECK(judged->instructions[3].args == std::vector<std::string>{"a b", "/c/"});
}
