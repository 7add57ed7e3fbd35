#pragma once
// A C++ port of the Dockerfile parser dockerd 20.10.24 uses (buildkit's
// frontend/dockerfile/parser, vendored in docker 20.10: parser.go, line_parsers.go,
// split_command.go), so berth reads a Dockerfile exactly as the classic builder will.
//
// Every quirk that decides which instruction dockerd sees is kept, because each one let a
// tenant hide a FROM from a simpler reader: the UTF-8 BOM on the first line only; parser
// directives (escape, syntax) only before anything else; line continuation with the escape
// token, where comment lines and blank lines inside a continuation are dropped; whitespace as
// Go's regexes ([\t\v\f\r ]), unicode.IsSpace (which includes U+0085 and U+00A0) and the
// byte-wise flag splitter define it; invalid UTF-8 turned into U+FFFD where Go's decoders do;
// bufio.Scanner's CRLF handling and its 64 KiB line limit; encoding/json's reading of JSON
// forms (the first array only, trailing text ignored, a number beyond float64 making it shell
// form). Tests: tests/differential (against the Go parser itself) and
// tests/unit/dockerfile_test.cpp.

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::policy::dockerfile {

/// One instruction as the parser's Node holds it.
struct Node {
  std::string cmd;                 ///< Node.Value: the keyword as strings.ToLower makes it
  std::vector<std::string> flags;  ///< Node.Flags: the leading --words
  std::vector<std::string> args;   ///< the values along Node.Next (ONBUILD: none)
  bool json = false;               ///< Attributes["json"]: the JSON form was used
  std::vector<Node> child;         ///< ONBUILD: its instruction (at most one)
  std::string original;            ///< Node.Original: the logical line
  std::string rest;                ///< what the line parser read: the text after the flags
  std::size_t start_line = 0;      ///< 1-based
};

struct Parsed {
  char escape = '\\';  ///< the escape token in force ('\\' or '`')
  std::vector<Node> instructions;
};

struct ParseError {
  std::string message;
  std::size_t line = 0;
};

/// parser.Parse: the instructions of `text`, or the error dockerd reports.
[[nodiscard]] std::expected<Parsed, ParseError> parse(std::string_view text);

/// The classic builder's ONBUILD trigger: Node.Original without (?i)^\s*ONBUILD\s* (RE2's \s:
/// tab, newline, form feed, carriage return, space). dockerd stores it in the image and parses
/// it again, with the default escape token, when an image is built FROM that image.
[[nodiscard]] std::string onbuild_expression(std::string_view original);

/// True when `keyword` names an instruction the parser knows (its dispatch table).
[[nodiscard]] bool known_instruction(std::string_view cmd);

/// The physical line that the parser reads back as the instruction `cmd` with `flags` and
/// the line-parser text `rest`, under `escape`; an error when there is none (a flag that the
/// flag splitter cannot read back byte for byte, a line that would continue onto the next,
/// or one beyond the scanner's limit).
[[nodiscard]] std::expected<std::string, std::string> instruction_line(
    std::string_view cmd, const std::vector<std::string>& flags, std::string_view rest,
    char escape);

/// Go's unicode.IsSpace.
[[nodiscard]] bool is_space(char32_t r) noexcept;

}  // namespace berth::policy::dockerfile
