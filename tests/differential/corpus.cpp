#include "tests/differential/corpus.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace berth::differential {

namespace {

using namespace std::string_literals;

// splitmix64: the same sequence on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

  bool chance(unsigned percent) { return below(100) < percent; }

  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::uint64_t state_;
};

// A "tame" case keeps mostly to what berth accepts, so the canonical output is checked often; a
// wild one goes for everything.
bool tame = false;

// ---- Dockerfiles ------------------------------------------------------------------------------

const std::vector<std::string> separators = {
    " ",    "  ",       "\t",       "\v",           "\f",
    "\r",   "\xc2\xa0", "\xc2\x85", "\xe2\x80\x83", "\xe3\x80\x80",
    "\xa0", "\x85",     " \t ",     "\xe1\x9a\x80", "\xe2\x80\xa8"};

std::string sep(Rng& r) {
  return r.chance(tame ? 85 : 75) ? " "s : r.pick(separators);
}

std::string keyword(Rng& r, std::string_view kw) {
  std::string out;
  const unsigned style = static_cast<unsigned>(r.below(10));
  for (char c : kw) {
    const char upper = static_cast<char>(c - 'a' + 'A');
    if (style < 6) {
      out += upper;
    } else if (style < 8) {
      out += c;
    } else {
      out += r.chance(50) ? upper : c;
    }
  }
  if (r.chance(3)) {
    // Letters Go's ToLower maps to ASCII: U+0130 for I, U+212A for K.
    std::string odd;
    for (char c : out) {
      if (c == 'I' || c == 'i') {
        odd += "\xc4\xb0";
      } else if (c == 'K' || c == 'k') {
        odd += "\xe2\x84\xaa";
      } else {
        odd += c;
      }
    }
    return odd;
  }
  return out;
}

const std::vector<std::string> images = {"berth-test/busybox",
                                         "berth-test/busybox:latest",
                                         "app:v1",
                                         "app",
                                         "globex.berth.local/app:1",
                                         "scratch",
                                         "Scratch",
                                         "$IMG",
                                         "${IMG}",
                                         "\"berth-test/busybox\"",
                                         "'app:v1'",
                                         "app\\:v1",
                                         "app`:v1",
                                         "BUSYBOX",
                                         "\xef\xbb\xbf"
                                         "app:v1",
                                         "busybox",
                                         "builder",
                                         "base",
                                         "0",
                                         "sha256:" + std::string(64, 'b'),
                                         std::string(12, 'b'),
                                         std::string(12, 'c'),
                                         "app:v1@x",
                                         "acme.berth.local/app:v1",
                                         "missing:1",
                                         "\xc2\xa0"
                                         "app:v1",
                                         "app:v1\\",
                                         "b\xe2\x84\xaa"};

const std::vector<std::string> tame_images = {"berth-test/busybox",
                                              "berth-test/busybox:latest",
                                              "app:v1",
                                              "app:v1",
                                              "berth-test/busybox",
                                              "scratch",
                                              "sha256:" + std::string(64, 'a'),
                                              std::string(12, 'c'),
                                              "builder"};

const std::string& image(Rng& r) {
  return tame && r.chance(85) ? r.pick(tame_images) : r.pick(images);
}

const std::vector<std::string> stages = {"builder",
                                         "Builder",
                                         "base",
                                         "b-1",
                                         "1bad",
                                         "\xe2\x84\xaa"
                                         "a",
                                         "x",
                                         "b_2.c",
                                         "aS",
                                         "x$y"};

const std::vector<std::string> tame_sources = {
    "a", "./b", "src/", "*.txt", "http://allowed.example/ok/file", "c.tar", "dir/x"};

const std::vector<std::string> sources = {"a",
                                          "./b",
                                          "src/",
                                          "http://127.0.0.1:9090/metrics",
                                          "https://example.com/x",
                                          "http://allowed.example/ok/file",
                                          "$URL",
                                          "h$X",
                                          "'http://x/'",
                                          "\"http://x\"",
                                          "ht\\tp://x",
                                          "ht`tp://x",
                                          "\xef\xbb\xbfhttp://x",
                                          "HTTP://x",
                                          "${A}b",
                                          "*.txt",
                                          "h",
                                          "http:/x",
                                          "https:",
                                          "http://allowed.example/ok/$F",
                                          "a b",
                                          "\\$x"};

const std::string& source(Rng& r) {
  return tame && r.chance(85) ? r.pick(tame_sources) : r.pick(sources);
}

std::string json_array(Rng& r, const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += r.chance(50) ? ", " : ",";
    }
    out += items[i];
  }
  out += "]";
  return out;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

const std::vector<std::string> json_oddities = {"1",           "1e999",     "-1e308",
                                                "1e-400",      "null",      "true",
                                                "[\"a\"]",     "{\"a\":1}", "\"\\u0068ttp://x\"",
                                                "\"\\ud800\"", "\"a\xff\"", "\"tab\\there\"",
                                                "\"\\/\"",     "01",        "\"unterminated",
                                                "\"\\x\""};

std::string json_form(Rng& r, const std::vector<std::string>& words) {
  std::vector<std::string> items;
  for (const auto& w : words) {
    items.push_back(quoted(w));
  }
  if (r.chance(tame ? 5 : 25)) {
    items.insert(items.begin() + static_cast<std::ptrdiff_t>(r.below(items.size() + 1)),
                 r.pick(json_oddities));
  }
  std::string out = json_array(r, items);
  if (r.chance(10)) {
    out += r.chance(50) ? " trailing" : "]";
  }
  if (r.chance(5)) {
    out.pop_back();
  }
  return out;
}

const std::vector<std::string> tame_copy_flags = {"--from=builder", "--from=berth-test/busybox",
                                                  "--from=0",       "--from=\"app:v1\"",
                                                  "--chown=1:1",    "--chown=\"a b\"",
                                                  "--from=app:v1",  "--chmod=0755",
                                                  "--from=",        "--from=base"};

const std::vector<std::string> copy_flags = {"--from=builder",
                                             "--from=berth-test/busybox",
                                             "--from=0",
                                             "--from=\"builder\"",
                                             "--from='x y'",
                                             "--from=\\\"q",
                                             "--chown=1:1",
                                             "--chmod=0755",
                                             "--",
                                             "--unknown",
                                             "--from",
                                             "--FROM=busybox",
                                             "--from=app:v1",
                                             "--from=globex.berth.local/app:1",
                                             "--from=-1",
                                             "--from=99999999999999999999",
                                             "--from=" + std::string(12, 'b'),
                                             "--from=",
                                             "--chown=\xc3\xa0",
                                             "--from=$X",
                                             "--chown=a\xa0"
                                             "b"};

std::string shell_text(Rng& r) {
  static const std::vector<std::string> texts = {"echo hello",
                                                 "echo \"a b\" 'c d'",
                                                 "cat <<EOF",
                                                 "echo $HOME ${X:-y}",
                                                 "a \\ b",
                                                 "a ` b",
                                                 "echo \\\\",
                                                 "[\"sh\", \"-c\", \"x\"]",
                                                 "echo ONBUILD",
                                                 "true && false || :",
                                                 "x\\",
                                                 "x\\\\",
                                                 "x`",
                                                 "# not a comment",
                                                 "\xef\xbb\xbf"
                                                 "echo",
                                                 "echo \xff\xfe"};
  return r.pick(texts);
}

std::string instruction(Rng& r, int depth);

std::string flags_then(Rng& r, const std::vector<std::string>& pool, unsigned percent) {
  std::string out;
  while (r.chance(percent)) {
    out += (tame && &pool == &copy_flags && r.chance(85) ? r.pick(tame_copy_flags) : r.pick(pool)) +
           sep(r);
    percent /= 2;
  }
  return out;
}

std::string instruction(Rng& r, int depth) {
  switch (tame && r.chance(40) ? r.below(8) : r.below(depth > 0 ? 17 : 18)) {
    case 0:
    case 1:
    case 2: {
      std::string s = keyword(r, "from") + sep(r);
      if (r.chance(15)) {
        s += (r.chance(70) ? "--platform=linux/amd64"s : "--platform=$BUILDPLATFORM"s) + sep(r);
      }
      s += image(r);
      if (r.chance(40)) {
        s += sep(r) + (r.chance(80) ? keyword(r, "as") : "a\xc5\xbf"s) + sep(r) + r.pick(stages);
      }
      if (r.chance(3)) {
        s += sep(r) + "extra";
      }
      return s;
    }
    case 3:
    case 4: {
      std::string s = keyword(r, "copy") + sep(r) + flags_then(r, copy_flags, 60);
      if (r.chance(20)) {
        return s + json_form(r, {source(r), "/dst/"});
      }
      return s + source(r) + sep(r) + "/dst/";
    }
    case 5:
    case 6: {
      std::string s = keyword(r, "add") + sep(r);
      if (r.chance(20)) {
        s += r.pick(std::vector<std::string>{"--chown=1:1", "--chmod=644", "--from=x"}) + sep(r);
      }
      if (r.chance(20)) {
        return s + json_form(r, {source(r), source(r), "/dst/"});
      }
      s += source(r);
      if (r.chance(30)) {
        s += sep(r) + source(r);
      }
      return s + sep(r) + "/dst/";
    }
    case 7:
    case 8: {
      std::string s = keyword(r, "run") + sep(r);
      if (r.chance(10)) {
        s += "--mount=type=cache,target=/x" + sep(r);
      }
      return s + (r.chance(30) ? json_form(r, {"sh", "-c", "echo hi"}) : shell_text(r));
    }
    case 9:
      return keyword(r, r.pick(std::vector<std::string>{"cmd", "entrypoint", "shell"})) + sep(r) +
             (r.chance(60) ? json_form(r, {"/bin/sh", "-c"}) : shell_text(r));
    case 10: {
      static const std::vector<std::string> kv = {
          "a=b",        "a b",     "a=\"x y\" c=d", "a",       "=b",    "a\\ b=c",
          "a=`x` b=\\", "a='q' b", "k=v\xc2\xa0w",  "\"a=b\"", "a b c", "a=\\\n"};
      return keyword(r, r.pick(std::vector<std::string>{"env", "label", "arg"})) + sep(r) +
             r.pick(kv);
    }
    case 11:
      return keyword(r, r.pick(std::vector<std::string>{"expose", "user", "workdir", "volume",
                                                        "stopsignal", "maintainer"})) +
             sep(r) +
             r.pick(std::vector<std::string>{"80", "1000:1000", "/app", "[\"/data\"]", "SIGTERM",
                                             "me <m@e>", "a b c", "[\"/a\", 1]"});
    case 12:
      return keyword(r, "healthcheck") + sep(r) +
             r.pick(std::vector<std::string>{"NONE", "CMD curl -f http://x/",
                                             "--interval=5s CMD [\"a\"]", "CMD", "cmd\xa0[\"x\"]",
                                             "\xa0"
                                             "CMD x",
                                             "CMD [\"a\", 2]"});
    case 13:
      return keyword(r, r.pick(std::vector<std::string>{"foo", "copyx", "from2", ""})) + sep(r) +
             "bar";
    case 14:
      return keyword(r, "arg") + sep(r) +
             r.pick(std::vector<std::string>{"IMG=app:v1", "URL", "X=1"});
    case 15:
      return keyword(r, "copy") + sep(r) + "--from=" + image(r) + sep(r) + "/a" + sep(r) + "/b";
    case 16:
      return keyword(r, "from") + sep(r) + image(r) + sep(r) + keyword(r, "as") + sep(r) +
             r.pick(stages);
    default: {
      std::string inner = instruction(r, depth + 1);
      return keyword(r, "onbuild") + sep(r) + (r.chance(10) ? "--flag"s + sep(r) : ""s) + inner;
    }
  }
}

// Splits an instruction over physical lines with the escape token, sometimes with comment
// lines, empty lines and whitespace-only lines inside the continuation.
std::string continued(Rng& r, const std::string& line, char escape, const std::string& nl) {
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    out += line[i];
    if ((line[i] == ' ' || line[i] == '\t') && r.chance(12)) {
      out += escape;
      if (r.chance(20)) {
        out += r.chance(50) ? " " : "\t ";
      }
      out += nl;
      while (r.chance(25)) {
        out += r.pick(std::vector<std::string>{"# comment", "", "   ", "\t", " # indented comment",
                                               "\xc2\xa0", "#", "\v"}) +
               nl;
      }
      if (r.chance(20)) {
        out += r.pick(std::vector<std::string>{"  ", "\t", "\xc2\xa0"});
      }
    }
  }
  return out;
}

const std::vector<std::string> directive_prefixes = {"",
                                                     "",
                                                     "",
                                                     "# escape=`\n",
                                                     "# escape=\\\n",
                                                     "#escape=`\n",
                                                     "# syntax=docker/dockerfile:1\n",
                                                     "# syntax=x\n# escape=`\n",
                                                     " # escape = ` \n",
                                                     "\n# escape=`\n",
                                                     "# ESCAPE=`\n",
                                                     "# escape=`\n# escape=`\n",
                                                     "# escape=x\n",
                                                     "# foo=bar\n# escape=`\n",
                                                     "# escape= \n",
                                                     "#\tescape=`\t\n",
                                                     "# escape=`\r\n",
                                                     "# escape=` \v\n",
                                                     "# directive\n# escape=`\n",
                                                     "#\vescape=`\n"};

char escape_of(std::string_view prefix) {
  // Only for choosing continuation characters; the parser decides for real.
  return prefix.find("escape=`") != std::string_view::npos ||
                 prefix.find("escape = `") != std::string_view::npos ||
                 prefix.find("ESCAPE=`") != std::string_view::npos
             ? '`'
             : '\\';
}

std::string dockerfile(Rng& r) {
  std::string out;
  if (r.chance(6)) {
    out += "\xEF\xBB\xBF";
  }
  static const std::vector<std::string> tame_prefixes = {"",
                                                         "",
                                                         "# escape=`\n",
                                                         "# escape=\\\n",
                                                         "#escape=`\n",
                                                         "# syntax=docker/dockerfile:1\n",
                                                         " # escape = ` \n",
                                                         "# escape=`\r\n",
                                                         "\n# escape=`\n",
                                                         "#\tescape=`\t\n"};
  const std::string prefix = tame ? r.pick(tame_prefixes) : r.pick(directive_prefixes);
  out += prefix;
  const char escape = r.chance(90) ? escape_of(prefix) : (escape_of(prefix) == '`' ? '\\' : '`');
  const std::string nl = r.chance(15) ? "\r\n" : "\n";
  const std::size_t n = 1 + r.below(6);
  for (std::size_t i = 0; i < n; ++i) {
    if (r.chance(10)) {
      out += r.pick(std::vector<std::string>{"# a comment", "", "  ", "\t# c"}) + nl;
    }
    std::string line = i == 0 && (tame || r.chance(80))
                           ? keyword(r, "from") + " " + image(r) + (tame ? " AS builder" : "")
                           : instruction(r, 0);
    if (r.chance(10)) {
      line = r.pick(separators) + line;
    }
    if (r.chance(8)) {
      line += r.pick(separators);
    }
    out += r.chance(30) ? continued(r, line, escape, nl) : line;
    if (i + 1 < n || r.chance(85)) {
      out += nl;
    }
  }
  return out;
}

const std::vector<std::string> mutation_bytes = {
    "\\",   "`",  "#",    "\"",  "'",    "[", "]",        "\n",           "\r",    "\t",   "\v",
    "\f",   " ",  "=",    "$",   "{",    "}", "\xc2\xa0", "\xef\xbb\xbf", "\xff",  "\xc2", "\x85",
    "\xa0", "--", "\\\n", "`\n", "\r\n", ",", "\0"s,      "ONBUILD ",     "FROM ", "AS "};

std::string mutate(Rng& r, std::string s) {
  const std::size_t edits = 1 + r.below(4);
  for (std::size_t k = 0; k < edits; ++k) {
    const std::size_t at = r.below(s.size() + 1);
    switch (r.below(3)) {
      case 0:
        s.insert(at, r.pick(mutation_bytes));
        break;
      case 1:
        if (at < s.size()) {
          s.erase(at, 1 + r.below(3));
        }
        break;
      default:
        if (at < s.size()) {
          s.replace(at, 1, r.pick(mutation_bytes));
        }
        break;
    }
  }
  return s;
}

std::vector<std::string> handwritten_dockerfiles() {
  const std::string victim = "globex.berth.local/app:1";
  std::vector<std::string> v = {
      // The review's attacks.
      "\xef\xbb\xbf"
      "FROM " +
          victim + "\n",
      "FROM\v" + victim + "\n",
      "FROM\f" + victim + "\n",
      "\xc2\xa0"
      "FROM " +
          victim + "\n",
      "FROM \\\n\n" + victim + "\n",
      "FROM berth-test/busybox\nCOPY \\\n\n--from=" + victim + " / /\n",
      "FROM \\\n# comment\n" + victim + "\n",
      "FROM \\\n \t \n" + victim + "\n",
      "# escape=`\nFROM `\n" + victim + "\n",
      "# escape=`\nFROM \\\n" + victim + "\n",
      "FROM\xc2\x85" + victim + "\n",
      "FROM\xe3\x80\x80" + victim + "\n",
      "FROM berth-test/busybox AS bbbbbbbbbbbb\nCOPY --from=bbbbbbbbbbbb / /\n",
      "FROM berth-test/busybox\nCOPY --from=\"" + victim + "\" / /\n",
      "FROM berth-test/busybox\nADD http://127.0.0.1:9090/metrics /m\n",
      "FROM berth-test/busybox\nADD $URL /m\n",
      "FROM berth-test/busybox\nADD [\"\\u0068ttp://127.0.0.1:9090/\", \"/m\"]\n",
      "FROM berth-test/busybox\nONBUILD ADD http://127.0.0.1:9090/ /m\n",
      "FROM berth-test/busybox\nONBUILD COPY --from=" + victim + " / /\n",
      "FROM berth-test/busybox\n\\\n\xc2\xa0ONBUILD RUN x\n",
      "FROM berth-test/busybox\nONBU\xc4\xb0LD RUN x\n",
      "FROM berth-test/busybox\nONBUILD\vRUN x\n",
      // Line length limits of bufio.Scanner.
      "FROM berth-test/busybox\nRUN " + std::string(65531, 'a') + "\n",
      "FROM berth-test/busybox\nRUN " + std::string(65532, 'a') + "\n",
      "FROM berth-test/busybox\nRUN " + std::string(65531, 'a'),
      "FROM berth-test/busybox\nRUN " + std::string(65532, 'a'),
      "FROM berth-test/busybox\nRUN " + std::string(65530, 'a') + "\r\n",
      "FROM berth-test/busybox\nRUN " + std::string(40000, 'a') + " \\\n" +
          std::string(40000, 'b') + "\n",
      // CRLF and carriage returns.
      "FROM berth-test/busybox\r\nRUN echo\r\r\n",
      "FROM berth-test/busybox\r\nRUN echo \\\r\r\nx\r\n",
      "FROM berth-test/busybox\nRUN echo \\\r\nx\n",
      // JSON forms.
      "FROM berth-test/busybox\nRUN [\"a\", 1e999]\n",
      "FROM berth-test/busybox\nRUN [\"a\", 1]\n",
      "FROM berth-test/busybox\nRUN [\"a\"] junk\n",
      "FROM berth-test/busybox\nCMD []\n",
      "FROM berth-test/busybox\nCOPY [\"a\", \"b\"] [\"c\"]\n",
      "FROM berth-test/busybox\nCOPY [\"a\", 1e999, \"/b\"]\n",
      "FROM berth-test/busybox\nENTRYPOINT [\"\\ud800\\udc00\", \"\\udc00\", \"\\ud800x\"]\n",
      // Keywords and flags.
      "FROM berth-test/busybox\nHEALTHCHEC\xe2\x84\xaa CMD x\n",
      "FROM berth-test/busybox\nMA\xc4\xb0NTA\xc4\xb0NER me\n",
      "FROM --platform=linux/amd64 berth-test/busybox AS b\nFROM b\nCOPY --from=b / /\n",
      "FROM \"berth-test/busybox\"\n",
      "FROM berth-test/busybox a\xc5\xbf x\n",
      "FROM berth-test/busybox\nCOPY -- --from=x /a /b\n",
      "FROM berth-test/busybox\nCOPY --from=\"a b\" /a /b\n",
      "FROM berth-test/busybox\nRUN --\xa0x\n",
      "FROM berth-test/busybox\nRUN\xe2\x80\x80\xa0x\n",
      // Escapes at the end of lines.
      "FROM berth-test/busybox\nRUN echo \\\\\nRUN b\n",
      "FROM berth-test/busybox\nRUN echo \\\v\nRUN b\n",
      "FROM berth-test/busybox\nRUN echo \\",
      "FROM berth-test/busybox\n\\",
      "\\\n",
      "",
      "\n\n",
      "# escape=`\n# escape=\\\nFROM x\n",
      "# escape=\\\nFROM berth-test/busybox\nRUN a `\nb\n",
      "FROM berth-test/busybox\nARG a=\\\nENV b=c\n",
      "FROM berth-test/busybox\nENV a b c\n",
      "FROM berth-test/busybox\nENV a\xc2\xa0"
      "b\n",
      "FROM berth-test/busybox\nLABEL a\n",
      "ARG IMG=app:v1\nFROM $IMG\n",
      "FROM app:v1\nRUN <<EOF\necho hi\nEOF\n",
      // encoding/json corners.
      "FROM a\nRUN [\"\\b\\f\\n\\r\\t\\/\\\\\\\"\"]\n",
      "FROM a\nRUN [\"a\",]\n",
      "FROM a\nRUN [ ]\n",
      "FROM a\nRUN [-0, 1E5, 1.5e+3, 0.0]\n",
      "FROM a\nRUN [\"\\u00e9\\uD83D\\uDE00\", \"\\uDE00\\uD83D\"]\n",
      "FROM a\nRUN [true false]\n",
      "FROM a\nRUN [\"a\" \"b\"]\n",
      "FROM a\nRUN {\"a\":1}\n",
      "FROM a\nRUN [{\"a\":[1,{\"b\":null}]}]\n",
      "FROM a\nRUN [\"\x01\"]\n",
      "FROM a\nRUN [\"a\"]\xff\n",
      "FROM a\nRUN [1e400, \"a\"]\n",
      "FROM a\nRUN [0.000000000000000000000000001e-400]\n",
      "FROM a\nRUN [123456789012345678901234567890e290]\n",
      "FROM a\nRUN [\"a\\u12\"]\n",
      "FROM a\nRUN " + std::string(10001, '[') + std::string(10001, ']') + "\n",
      "FROM a\nRUN " + std::string(10000, '[') + std::string(10000, ']') + "\n",
      // HEALTHCHECK's byte-wise split.
      "FROM a\nHEALTHCHECK\xc2\xa0"
      "CMD x\n",
      "FROM a\nHEALTHCHECK CMD\x85[\"a\"]\n",
      "FROM a\nHEALTHCHECK \xa0\n",
      // Instructions without arguments, and other odd bytes.
      "ARG\nENV\nLABEL\nONBUILD\nFROM\nRUN\nCMD\nHEALTHCHECK\nEXPOSE\nCOPY\nADD\n",
      "FROM a\nCOPY --from a b\nCOPY --from= a b\n",
      "FR\xffOM x\n",
      "\xef\xbb\xbf# escape=`\nFROM x `\nAS y\n",
      "#escape=\\\\\nFROM x\n",
      std::string("FROM a\0b\nRUN a\0\n", 17),
      "FROM a\nRUN a\r\r\r\n",
      "FROM a\n\tONBUILD \t RUN x\n",
      "FROM a\nONBUILD ONBUILD\n",
      "FROM a\nONBUILD [\"x\"]\n",
  };
  return v;
}

// ---- tar ----------------------------------------------------------------------------------------

constexpr std::size_t block = 512;

std::string octal(std::uint64_t v, std::size_t width) {
  std::string digits(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0;) {
    digits[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  return digits + '\0';
}

std::string octal_min(std::uint64_t v) {
  std::string d;
  do {
    d.insert(d.begin(), static_cast<char>('0' + (v & 7)));
    v >>= 3;
  } while (v != 0);
  return d;
}

std::string base256(std::uint64_t v, std::size_t width) {
  std::string out(width, '\0');
  for (std::size_t i = width; i-- > 1;) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out[0] = static_cast<char>(0x80);
  return out;
}

// A numeric field in one of the spellings tar writers (and attackers) use: `weird` percent of
// the time not the canonical one; `valid_only` keeps to what GNU tar, Go, Python and busybox
// write.
std::string numeric(Rng& r, std::uint64_t v, std::size_t width, unsigned weird,
                    bool valid_only = false) {
  if (!r.chance(weird)) {
    return octal(v, width);
  }
  const std::string d = octal_min(v);
  auto fit = [&](std::string s) {
    s.resize(width, '\0');
    return s;
  };
  const std::size_t variant = valid_only ? r.below(7) : r.below(15);
  switch (variant) {
    case 0:
      return fit(std::string(width > d.size() ? width - d.size() : 0, '0') + d);  // no NUL
    case 1:
      return fit(std::string(width - 1 > d.size() ? width - 1 - d.size() : 0, '0') + d + " ");
    case 2:
      return fit(std::string(width - 2 > d.size() ? width - 2 - d.size() : 0, ' ') + d + " ");
    case 3:
      return fit(std::string(width - 2 > d.size() ? width - 2 - d.size() : 0, '0') + d + " \0"s);
    case 4:
      return fit(d);  // digits, then NULs
    case 5:
      return base256(v, width);
    case 6:
      return fit("   " + d + "\0 "s);
    case 7:
      return fit("\0"s + d);  // a leading NUL (Go skips it)
    case 8:
      return fit(d.substr(0, 1) + "\0"s + d.substr(1) + "7");  // an embedded NUL
    case 9:
      return fit(d + "x");
    case 10:
      return std::string(width, '\0');
    case 11:
      return fit("+" + d);
    case 12:
      return fit(d + "\t");
    case 13:
      return fit("\0\0\0"s + std::string(width - 4 > d.size() ? width - 4 - d.size() : 0, '0') + d);
    default:
      return fit(std::string(width, ' '));
  }
}

struct Header {
  std::string name;
  std::string mode;
  std::string uid;
  std::string gid;
  std::string size;
  std::string mtime;
  char type = '0';
  std::string link;
  std::string magic = "ustar\0"s;
  std::string version = "00";
  std::string uname = "root";
  std::string gname = "root";
  std::string devmajor;
  std::string devminor;
  std::string prefix;
  std::string tail;  // bytes 500..512 (ustar) or 345..512 (GNU), raw
  int checksum = 0;  // 0 good, 1 signed, 2 wrong, 3 spaces-terminated, 4 garbage
};

void put(std::string& b, std::size_t at, std::string_view s, std::size_t width) {
  b.replace(at, std::min(s.size(), width), s.substr(0, std::min(s.size(), width)));
}

std::string header_block(Rng& r, const Header& h) {
  std::string b(block, '\0');
  put(b, 0, h.name, 100);
  put(b, 100, h.mode.empty() ? octal(0644, 8) : h.mode, 8);
  put(b, 108, h.uid.empty() ? octal(0, 8) : h.uid, 8);
  put(b, 116, h.gid.empty() ? octal(0, 8) : h.gid, 8);
  put(b, 124, h.size.empty() ? octal(0, 12) : h.size, 12);
  put(b, 136, h.mtime.empty() ? octal(1700000000, 12) : h.mtime, 12);
  b[156] = h.type;
  put(b, 157, h.link, 100);
  put(b, 257, h.magic, 6);
  put(b, 263, h.version, 2);
  put(b, 265, h.uname, 32);
  put(b, 297, h.gname, 32);
  put(b, 329, h.devmajor.empty() ? octal(0, 8) : h.devmajor, 8);
  put(b, 337, h.devminor.empty() ? octal(0, 8) : h.devminor, 8);
  put(b, 345, h.prefix, 155);
  if (!h.tail.empty()) {
    put(b, block - h.tail.size(), h.tail, h.tail.size());
  }
  std::fill(b.begin() + 148, b.begin() + 156, ' ');
  unsigned u = 0;
  int s = 0;
  for (char c : b) {
    u += static_cast<unsigned char>(c);
    s += static_cast<signed char>(c);
  }
  std::string sum;
  switch (h.checksum) {
    case 1:
      sum = octal(static_cast<std::uint64_t>(s < 0 ? 0 : s), 7) + " ";
      break;
    case 2:
      sum = octal(u + 1, 7) + " ";
      break;
    case 3:
      sum = "  " + octal_min(u) + " ";
      break;
    case 4:
      sum = numeric(r, u, 8, 100);
      break;
    default:
      sum = octal(u, 7) + " ";
      break;
  }
  put(b, 148, sum, 8);
  return b;
}

std::string pax_record(std::string_view key, std::string_view value) {
  std::size_t size = key.size() + value.size() + 3;
  size += std::to_string(size).size();
  std::string head = std::to_string(size);
  if (head.size() + 3 + key.size() + value.size() != size) {
    size = head.size() + 3 + key.size() + value.size();
    head = std::to_string(size);
  }
  return head + " " + std::string(key) + "=" + std::string(value) + "\n";
}

struct Spec {
  std::string path;
  char type = '0';
  std::string data;
  std::string link;
};

class TarWriter {
 public:
  explicit TarWriter(Rng& r) : r_(r) {}

  void special(char type, const std::string& data, const std::string& name, bool gnu) {
    Header h;
    h.name = name;
    h.type = type;
    h.size = numeric(r_, data.size(), 12, 3);
    if (gnu) {
      h.magic = "ustar ";
      h.version = " \0"s;
    }
    out_ += header_block(r_, h);
    data_(data);
  }

  void entry(const Spec& s) {
    Header h;
    h.type = s.type;
    const unsigned weird = tame ? 25 : 4;
    h.mode =
        numeric(r_, s.type == '5' ? 0755 : 0644 | (r_.chance(3) ? 0104000 : 0), 8, weird, tame);
    h.uid = numeric(r_, r_.chance(90) ? 0 : 1000 + r_.below(5000000), 8, weird, tame);
    h.gid = numeric(r_, r_.chance(90) ? 0 : 100, 8, weird, tame);
    h.mtime = numeric(r_, r_.chance(95) ? 1700000000 : (std::uint64_t{1} << 34), 12, weird, tame);
    h.size = numeric(r_, s.data.size(), 12, tame ? 25 : 6, tame);
    h.link = s.link;
    const bool gnu = r_.chance(25);
    if (gnu) {
      h.magic = "ustar ";
      h.version = " \0"s;
    } else if (!tame && r_.chance(2)) {
      h.magic = std::string(6, '\0');  // V7
      h.version = std::string(2, '\0');
    } else if (!tame && r_.chance(2)) {
      h.tail = "tar\0"s;  // STAR
    }
    if (r_.chance(3)) {
      h.devmajor = numeric(r_, 0, 8, 60);
    }
    if (gnu && r_.chance(5)) {
      h.tail = std::string(167, '\0');
      h.tail.replace(0, 12, numeric(r_, 1700000000, 12, 50));
    }
    if (!tame && r_.chance(2)) {
      h.uname = std::string("root\0junk", 9);
    }
    h.checksum = r_.chance(92) ? 0 : static_cast<int>(r_.below(tame ? 2 : 5));

    // The name: plain, ustar prefix, GNU long name, PAX path, or several at once.
    std::string name = s.path;
    std::vector<std::string> pax;
    const unsigned how = static_cast<unsigned>(r_.below(tame ? 92 : 100));
    if (how < 55 && name.size() <= 100) {
      h.name = name;
    } else if (how < 65 && !gnu && name.size() > 100 && name.find('/') != std::string::npos) {
      const auto slash = name.rfind('/', 155);
      if (slash != std::string::npos && slash > 0) {
        h.prefix = name.substr(0, slash);
        h.name = name.substr(slash + 1);
      } else {
        h.name = name.substr(0, 100);
      }
    } else if (how < 78) {
      special('L',
              name + (tame || r_.chance(90) ? "\0"s
                      : r_.chance(50)       ? ""s
                                            : "\0x"s),
              "././@LongLink", true);
      h.name = name.substr(0, 100);
      if (!tame && r_.chance(8)) {
        special('L', "other/Dockerfile\0"s, "././@LongLink", true);  // two long names
      }
    } else if (how < 92) {
      pax.push_back(pax_record("path", name));
      h.name = r_.chance(50) ? name.substr(0, 100) : "decoy";
    } else {
      // A GNU long name and a PAX path for one entry: Go takes the long name.
      special('L', "decoy-gnu\0"s, "././@LongLink", true);
      pax.push_back(pax_record("path", name));
      h.name = "decoy-ustar";
    }
    if (s.link.size() > 100 || (r_.chance(5) && (!tame || !s.link.empty()))) {
      if (r_.chance(50)) {
        pax.push_back(pax_record("linkpath", s.link));
      } else {
        special('K', s.link + "\0"s, "././@LongLink", true);
      }
      h.link = s.link.substr(0, std::min<std::size_t>(100, s.link.size()));
    }
    // Other PAX records.
    static const std::vector<std::pair<std::string, std::string>> extras = {
        {"mtime", "1700000000.5"},
        {"mtime", "-1"},
        {"mtime", "1e3"},
        {"atime", "1.25"},
        {"uid", "1000"},
        {"gid", "+5"},
        {"uid", "99999999999"},
        {"uname", "me"},
        {"SCHILY.xattr.security.capability", "\x01\0\0\x02"s},
        {"comment", "hi"},
        {"GNU.sparse.major", "1"},
        {"hdrcharset", "BINARY"},
        {"path", ""},
        {"size", "+3"},
        {"SCHILY.xattr.user.x", "y"},
        {"ctime", "12.x"},
        {"LIBARCHIVE.xattr.user.a", "b"}};
    static const std::vector<std::pair<std::string, std::string>> tame_extras = {
        {"mtime", "1700000000.5"},
        {"atime", "1.25"},
        {"uid", "1000"},
        {"gid", "5"},
        {"uname", "me"},
        {"SCHILY.xattr.security.capability", "\x01\0\0\x02"s},
        {"comment", "hi"},
        {"hdrcharset", "BINARY"},
        {"LIBARCHIVE.xattr.user.a", "b"},
        {"mtime", "1700000001"}};
    while (r_.chance(15)) {
      const auto& [k, v] = tame ? r_.pick(tame_extras) : r_.pick(extras);
      pax.push_back(pax_record(k, v));
    }
    std::string data = s.data;
    if (r_.chance(4) && s.type == '0') {
      // The real size in a PAX record, the header's field 0 (Python's way) or a decoy.
      pax.push_back(pax_record("size", std::to_string(data.size())));
      h.size = octal(r_.chance(50) ? 0 : data.size() + 512, 12);
    }
    if (!pax.empty() || r_.chance(3)) {
      std::string records;
      for (const auto& p : pax) {
        records += p;
      }
      if (!tame && r_.chance(5)) {
        records += r_.pick(std::vector<std::string>{"5 a=b\n", "12 path=x\n", "0009 a=bc\n", "x",
                                                    "6 =ab\n", "7 a=b\n\n"});
      }
      special('x', records, "PaxHeaders/x", false);
      if (!tame && r_.chance(5)) {
        special('x', pax_record("path", "Dockerfile"), "PaxHeaders/y", false);  // two PAX
      }
    }
    out_ += header_block(r_, h);
    data_(data);
  }

  void global(const std::string& records) { special('g', records, "pax_global_header", false); }

  void zero_blocks(std::size_t n) { out_.append(n * block, '\0'); }

  std::string& bytes() { return out_; }

 private:
  void data_(const std::string& d) {
    out_ += d;
    const std::size_t pad = (block - d.size() % block) % block;
    if (r_.chance(3) && pad > 0) {
      out_ += std::string(pad, 'P');  // padding bytes nobody reads
    } else {
      out_.append(pad, '\0');
    }
  }

  Rng& r_;
  std::string out_;
};

const std::vector<std::string> dockerfile_names = {
    "Dockerfile",      "Dockerfile",     "Dockerfile",  "./Dockerfile",      "a/../Dockerfile",
    "dockerfile",      "sub/Dockerfile", "Dockerfile/", "/Dockerfile",       "Dockerfile/x",
    "sub//Dockerfile", "../Dockerfile",  "DOCKERFILE",  "Dockerfile\xc2\xa0"};

const std::vector<std::string> file_names = {"a",
                                             "b.txt",
                                             "sub/c",
                                             "./d",
                                             "sub/",
                                             "deep/" + std::string(120, 'x') + "/file",
                                             std::string(99, 'n'),
                                             std::string(100, 'n'),
                                             std::string(101, 'n'),
                                             std::string(300, 'L'),
                                             "\xc3\xa9t\xc3\xa9",
                                             "../escape",
                                             "/etc/passwd",
                                             "a/./b/../c",
                                             "",
                                             ".",
                                             "sub",
                                             "x\\y",
                                             "BZh.txt",
                                             "dir/"};

const std::vector<std::string> tame_file_names = {"a",
                                                  "b.txt",
                                                  "sub/c",
                                                  "./d",
                                                  "deep/" + std::string(120, 'x') + "/file",
                                                  std::string(99, 'n'),
                                                  std::string(100, 'n'),
                                                  std::string(101, 'n'),
                                                  std::string(300, 'L'),
                                                  "\xc3\xa9t\xc3\xa9",
                                                  "a/./b/../c",
                                                  "x\\y",
                                                  "dir/sub/file"};

Spec random_spec(Rng& r, const std::string& dockerfile_text) {
  Spec s;
  if (tame) {
    switch (r.below(5)) {
      case 0:
      case 1:
        s.path = r.pick(tame_file_names);
        s.data = std::string(r.below(1200), static_cast<char>('a' + r.below(26)));
        return s;
      case 2:
        s.path = r.pick(std::vector<std::string>{"sub", "sub/", "dir", ".", "x/y", "./"});
        s.type = '5';
        return s;
      case 3:
        s.path = r.pick(std::vector<std::string>{"ln", "sub/ln", "lnk"});
        s.type = '2';
        s.link = r.pick(std::vector<std::string>{"other", "/abs/target", "../up",
                                                 std::string(150, 'l'), "a b"});
        return s;
      default:
        s.path = r.pick(std::vector<std::string>{"h", "sub/h2"});
        s.type = '1';
        s.link = r.pick(std::vector<std::string>{"a", "./b.txt", "sub/c"});
        return s;
    }
  }
  switch (r.below(14)) {
    case 0:
    case 1:
    case 2:
      s.path = r.pick(dockerfile_names);
      s.data = dockerfile_text;
      s.type = r.chance(90) ? '0' : '\0';
      return s;
    case 3:
    case 4:
    case 5:
      s.path = r.pick(file_names);
      s.data = std::string(r.below(1200), static_cast<char>('a' + r.below(26)));
      s.type = r.chance(85) ? '0' : '\0';
      return s;
    case 6:
      s.path = r.pick(std::vector<std::string>{"sub", "sub/", "dir", ".", "Dockerfile", "x/y"});
      s.type = r.chance(80) ? '5' : '\0';
      if (s.type == '\0' && !s.path.ends_with('/')) {
        s.path += '/';
      }
      return s;
    case 7:
    case 8:
      s.path = r.pick(std::vector<std::string>{"sub", "x", "link", "Dockerfile", "dockerfile",
                                               "sub/Dockerfile", "sub/inner"});
      s.type = '2';
      s.link = r.pick(std::vector<std::string>{".", "/", "..", "Dockerfile", "other", "sub",
                                               std::string(150, 'l'), ""});
      return s;
    case 9:
      s.path = r.pick(std::vector<std::string>{"h", "sub/h", "Dockerfile", "x"});
      s.type = '1';
      s.link = r.pick(std::vector<std::string>{"Dockerfile", "a", "sub", "x", "./a", "/a", "../a",
                                               "x/Dockerfile"});
      return s;
    case 10:
      s.path = "dev";
      s.type = r.pick(std::vector<char>{'3', '4', '6', '7', 'S', 'V', 'M', 'D', 'Z', 'N', '9'});
      s.data = s.type == '7' ? "data" : "";
      return s;
    case 11:
      s.path = "x/Dockerfile";
      s.data = dockerfile_text;
      return s;
    default:
      s.path = r.pick(file_names);
      s.data = "x";
      if (r.chance(20)) {
        s.type = '5';  // a directory that claims data
      }
      return s;
  }
}

std::string tar_case(Rng& r, const std::string& dockerfile_text) {
  TarWriter w(r);
  if (r.chance(5)) {
    w.global(pax_record("comment", "global") + (r.chance(20) ? pax_record("path", "x") : ""));
  }
  const std::size_t n = 1 + r.below(6);
  bool placed = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!placed && (r.chance(45) || i + 1 == n)) {
      Spec df{tame || r.chance(85) ? "Dockerfile"s : r.pick(dockerfile_names), '0', dockerfile_text,
              ""};
      w.entry(df);
      placed = true;
      continue;
    }
    w.entry(random_spec(r, dockerfile_text));
    if (r.chance(3)) {
      w.global(pax_record("comment", "mid"));
    }
  }
  if (!tame && r.chance(3)) {
    w.special(r.chance(50) ? 'x' : 'L', pax_record("path", "Dockerfile"), "stray", r.chance(50));
  }
  switch (tame ? 6 + r.below(6) : r.below(12)) {
    case 0:
      break;  // no end marker
    case 1:
      w.zero_blocks(1);
      break;
    case 2:
      w.zero_blocks(2);
      w.bytes() += std::string(600, 'G');  // after the end: never read
      break;
    case 3:
      w.zero_blocks(1);
      w.special('0', "late", "late", false);  // a zero block, then a header
      break;
    case 4:
      w.zero_blocks(20);  // a record-padded archive
      break;
    case 5:
      w.bytes().resize(w.bytes().size() - std::min(w.bytes().size(), r.below(700)));
      break;
    default:
      w.zero_blocks(2);
      break;
  }
  std::string bytes = std::move(w.bytes());
  if (!tame && r.chance(12) && bytes.size() >= block) {
    // Random damage inside a header, sometimes with the checksum made right again.
    const std::size_t blocks = bytes.size() / block;
    const std::size_t at = r.below(blocks) * block;
    const std::size_t k = 1 + r.below(4);
    for (std::size_t i = 0; i < k; ++i) {
      bytes[at + r.below(block)] = static_cast<char>(r.below(256));
    }
    if (r.chance(60)) {
      std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(at + 148),
                bytes.begin() + static_cast<std::ptrdiff_t>(at + 156), ' ');
      unsigned u = 0;
      for (std::size_t i = 0; i < block; ++i) {
        u += static_cast<unsigned char>(bytes[at + i]);
      }
      const std::string sum = octal(u, 7);
      std::copy(sum.begin(), sum.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at + 148));
    }
  }
  return bytes;
}

std::vector<std::pair<std::string, std::string>> handwritten_tars() {
  Rng r(7);
  std::vector<std::pair<std::string, std::string>> v;
  const std::string good = "FROM berth-test/busybox\n";
  const std::string evil = "FROM globex.berth.local/app:1\n";
  auto raw = [&](const Header& h, const std::string& data) {
    std::string out = header_block(r, h) + data;
    out.append((block - data.size() % block) % block, '\0');
    return out;
  };
  auto file = [&](const std::string& name, const std::string& data) {
    Header h;
    h.name = name;
    h.size = octal(data.size(), 12);
    return raw(h, data);
  };
  auto gnu = [&](char type, const std::string& data) {
    Header h;
    h.name = "././@LongLink";
    h.type = type;
    h.magic = "ustar ";
    h.version = " \0"s;
    h.size = octal(data.size(), 12);
    return raw(h, data);
  };
  auto pax = [&](const std::string& records) {
    Header h;
    h.name = "PaxHeaders/x";
    h.type = 'x';
    h.size = octal(records.size(), 12);
    return raw(h, records);
  };
  const std::string end(2 * block, '\0');
  // A GNU long name followed by a PAX path: Go takes the long name (the review).
  v.emplace_back("gnu-then-pax", gnu('L', "Dockerfile\0"s) + pax(pax_record("path", "innocent")) +
                                     file("x", evil) + file("innocent", good) + end);
  v.emplace_back("pax-then-gnu", pax(pax_record("path", "innocent")) + gnu('L', "Dockerfile\0"s) +
                                     file("x", evil) + end);
  // A size field with leading NULs (Go trims them; berth once stopped at the first one).
  {
    Header h;
    h.name = "pad";
    h.size =
        "\0\0\0\0"
        "0000037\0"s;
    h.size.resize(12, '\0');
    std::string data(31, 'z');
    v.emplace_back("size-leading-nuls", raw(h, data) + file("Dockerfile", evil) + end);
  }
  v.emplace_back("symlink-dot", [&] {
    Header l;
    l.name = "sub";
    l.type = '2';
    l.link = ".";
    return raw(l, "") + file("Dockerfile", good) + file("sub/Dockerfile", evil) + end;
  }());
  v.emplace_back("two-dockerfiles", file("Dockerfile", good) + file("./Dockerfile", evil) + end);
  v.emplace_back("lowercase-only", file("dockerfile", good) + end);
  v.emplace_back("global-then-file", [&] {
    Header g;
    g.name = "g";
    g.type = 'g';
    const std::string rec = pax_record("path", "Dockerfile");
    g.size = octal(rec.size(), 12);
    return raw(g, rec) + file("Dockerfile", good) + end;
  }());
  v.emplace_back("no-end", file("Dockerfile", good));
  v.emplace_back("one-zero-block", file("Dockerfile", good) + std::string(block, '\0'));
  v.emplace_back("bzh-first", file("BZh91", "x") + file("Dockerfile", good) + end);
  v.emplace_back("long-dockerfile-path", file(std::string(120, 'd') + "/Dockerfile", good) +
                                             file("Dockerfile", good) + end);
  return v;
}

}  // namespace

std::vector<Case> generate(std::uint64_t seed, std::size_t dockerfiles, std::size_t tars) {
  Rng r(seed);
  std::vector<Case> out;
  for (const auto& d : handwritten_dockerfiles()) {
    out.push_back({Case::Kind::dockerfile, "handwritten", d, {}});
  }
  while (out.size() < dockerfiles) {
    tame = r.chance(50);
    std::string d = dockerfile(r);
    std::string label = "generated";
    if (!tame && r.chance(40)) {
      d = mutate(r, std::move(d));
      label = "mutated";
    }
    out.push_back({Case::Kind::dockerfile, tame ? "generated tame" : label, std::move(d), {}});
  }
  const std::size_t first_tar = out.size();
  for (auto& [label, bytes] : handwritten_tars()) {
    out.push_back({Case::Kind::tar, "handwritten " + label, std::move(bytes), {}});
  }
  static const std::vector<std::string> params = {"",
                                                  "",
                                                  "",
                                                  "",
                                                  "",
                                                  "Dockerfile",
                                                  "sub/Dockerfile",
                                                  "./Dockerfile",
                                                  "/Dockerfile",
                                                  "../x",
                                                  "dockerfile",
                                                  "x/Dockerfile"};
  while (out.size() - first_tar < tars) {
    tame = r.chance(50);
    const std::string text =
        r.chance(60) ? "FROM berth-test/busybox\nRUN echo hi\n"s : dockerfile(r);
    std::string bytes = tar_case(r, text);
    out.push_back({Case::Kind::tar, tame ? "generated tame" : "generated", std::move(bytes),
                   tame ? ""s : r.pick(params)});
  }
  return out;
}

}  // namespace berth::differential
