// The strict tar reader reads build contexts as Go's archive/tar does, or refuses where two
// readers could disagree; the writer's headers read back as the entries berth judged.

#include "policy/tar_stream.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/unit/tar_fixture.hpp"

using namespace berth::policy;
using namespace berth::test_tar;
using Catch::Matchers::Contains;

namespace {

struct Read {
  bool ok = false;
  std::string error;
  std::vector<tar::Entry> entries;
  std::vector<std::string> data;
};

// Reads `bytes` in pieces of `piece` bytes.
Read read(std::string_view bytes, std::size_t piece = 1 << 20) {
  Read r;
  tar::Reader reader;
  while (true) {
    std::string_view window = bytes.substr(0, std::min(piece, bytes.size()));
    bytes.remove_prefix(window.size());
    for (;;) {
      auto step = reader.next(window);
      if (!step) {
        r.error = step.error();
        return r;
      }
      if (step->event == tar::Reader::Event::need_more) {
        break;
      }
      if (step->event == tar::Reader::Event::entry) {
        r.entries.push_back(reader.entry());
        r.data.emplace_back();
      } else if (step->event == tar::Reader::Event::data) {
        r.data.back().append(step->data);
      }
    }
    if (bytes.empty()) {
      break;
    }
  }
  if (auto f = reader.finish(); !f) {
    r.error = f.error();
    return r;
  }
  r.ok = true;
  return r;
}

Fields named(std::string name) {
  Fields f;
  f.name = std::move(name);
  return f;
}

}  // namespace

TEST_CASE("numeric fields are read as GNU tar, Go, Python's tarfile and busybox write them",
          "[policy][tar]") {
  auto [spelling, value] = GENERATE(table<std::string, std::uint64_t>({
      {std::string("00000000005\0", 12), 5},  // Go, Python, busybox
      {std::string("000000000005", 12), 5},   // all digits, no terminator
      {std::string("00000000005 ", 12), 5},   // space-terminated (old GNU)
      {std::string("         5 \0", 12), 5},  // leading spaces
      {std::string("5\0\0\0\0\0\0\0\0\0\0\0", 12), 5},
      {std::string("\x80\0\0\0\0\0\0\0\0\0\0\5", 12), 5},  // GNU base-256
  }));
  CAPTURE(spelling);
  Fields f = named("f");
  f.size = spelling;
  const Read r = read(header(f) + padded("abcde") + end_of_archive());
  REQUIRE(r.ok);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].size == value);
  CHECK(r.data[0] == "abcde");
}

TEST_CASE("numeric fields with leading or embedded NULs, signs or other bytes are refused",
          "[policy][tar]") {
  // Go trims leading NULs and stops at an embedded one; other readers do neither.
  const auto spelling = GENERATE(values<std::string>(
      {std::string("\0\0\0\0"
                   "0000005\0",
                   12),
       std::string("00\0"
                   "00000005\0",
                   12),
       std::string("0000000005x\0", 12), std::string("+0000000005\0", 12),
       std::string("0000000005\t\0", 12), std::string("\0\0\0\0\0\0\0\0\0\0\0\0", 12),
       std::string("            ", 12), std::string("\x81\0\0\0\0\0\0\0\0\0\0\5", 12),
       std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfb", 12)}));
  Fields f = named("f");
  f.size = spelling;
  const Read r = read(header(f) + padded("abcde") + end_of_archive());
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Contains("numeric field"));
}

TEST_CASE("header checksums are verified as Go verifies them", "[policy][tar]") {
  Fields f = named("f");
  f.good_checksum = false;
  CHECK_THAT(read(header(f) + end_of_archive()).error, Contains("checksum"));
  // Go also takes the sum of signed bytes.
  Fields utf8 = named("\xc3\xa9");
  std::string h = header(utf8);
  int sum = 0;
  std::fill(h.begin() + 148, h.begin() + 156, ' ');
  for (char c : h) {
    sum += static_cast<signed char>(c);
  }
  h.replace(148, 8, octal(static_cast<std::uint64_t>(sum), 7) + " ");
  CHECK(read(h + end_of_archive()).ok);
}

TEST_CASE("only ustar and GNU headers are read", "[policy][tar]") {
  std::string v7 = header(named("f"));
  std::fill(v7.begin() + 257, v7.begin() + 265, '\0');
  std::fill(v7.begin() + 148, v7.begin() + 156, ' ');
  unsigned sum = 0;
  for (char c : v7) {
    sum += static_cast<unsigned char>(c);
  }
  v7.replace(148, 8, octal(sum, 7) + " ");
  CHECK_THAT(read(v7 + end_of_archive()).error, Contains("neither ustar nor GNU"));
  Fields gnu = named("g");
  gnu.gnu = true;
  CHECK(read(header(gnu) + end_of_archive()).ok);
}

TEST_CASE(
    "PAX records set the next entry's path, link, size, owner and time; others are "
    "dropped",
    "[policy][tar]") {
  const std::string records =
      pax_record("path", "a/" + std::string(200, 'p')) + pax_record("size", "3") +
      pax_record("uid", "4000000") + pax_record("gid", "7") + pax_record("mtime", "1700000000.75") +
      pax_record("atime", "1.5") +
      pax_record("SCHILY.xattr.security.capability", std::string("\x01\0\0\x02", 4)) +
      pax_record("comment", "ignored") + pax_record("uname", "me");
  Fields f = named("short");
  f.size = octal(0, 12);  // Python writes 0 here when the real size is in a record
  const Read r = read(pax(records) + header(f) + padded("xyz") + end_of_archive());
  REQUIRE(r.ok);
  REQUIRE(r.entries.size() == 1);
  const tar::Entry& e = r.entries[0];
  CHECK(e.path == "a/" + std::string(200, 'p'));
  CHECK(e.size == 3);
  CHECK(r.data[0] == "xyz");
  CHECK(e.uid == 4000000);
  CHECK(e.gid == 7);
  CHECK(e.mtime == 1700000000);
}

TEST_CASE("malformed, repeated, empty or sparse PAX records are refused", "[policy][tar]") {
  const auto records = GENERATE(values<std::string>(
      {"5 a=b\n", "12 path=x\n", "0009 a=bc\n", "x", "6 =ab\n",
       pax_record("path", "a") + pax_record("path", "b"), pax_record("path", ""),
       pax_record("size", "+3"), pax_record("uid", "-1"), pax_record("mtime", "1e3"),
       pax_record("GNU.sparse.major", "1"), pax_record("path", std::string("a\0b", 3))}));
  CAPTURE(records);
  CHECK_FALSE(read(pax(records) + file("f", "") + end_of_archive()).ok);
}

TEST_CASE("GNU long names and links are merged into the next entry", "[policy][tar]") {
  const std::string name = "d/" + std::string(150, 'n');
  const std::string target = std::string(120, 't');
  Fields link = named("short");
  link.type = '2';
  link.link = "short";
  const Read r = read(gnu_long('L', name) + gnu_long('K', target) + entry(link) + end_of_archive());
  REQUIRE(r.ok);
  CHECK(r.entries[0].path == name);
  CHECK(r.entries[0].link == target);
  CHECK(r.entries[0].type == tar::Type::symlink);
}

TEST_CASE("extension records that two readers could apply differently are refused",
          "[policy][tar]") {
  const std::string f = file("x", "");
  SECTION("a PAX path and a GNU long name for one entry (Go takes the long name)") {
    CHECK_THAT(read(gnu_long('L', "a") + pax(pax_record("path", "b")) + f).error,
               Contains("both a PAX path and a GNU long name"));
    CHECK_FALSE(read(pax(pax_record("path", "b")) + gnu_long('L', "a") + f).ok);
  }
  SECTION("two PAX headers, or two long names, for one entry (Go keeps the last)") {
    CHECK_FALSE(read(pax(pax_record("path", "a")) + pax(pax_record("path", "b")) + f).ok);
    CHECK_FALSE(read(gnu_long('L', "a") + gnu_long('L', "b") + f).ok);
    CHECK_FALSE(read(gnu_long('K', "a") + gnu_long('K', "b") + f).ok);
  }
  SECTION("an extension header with no entry after it (Go drops it)") {
    CHECK_FALSE(read(pax(pax_record("path", "a")) + end_of_archive()).ok);
    CHECK_FALSE(read(gnu_long('L', "a")).ok);
    CHECK_FALSE(read(pax(pax_record("path", "a")) + pax(pax_record("comment", "c"), 'g') + f).ok);
  }
  SECTION("an empty long name (Go ignores it) or one with bytes after its NUL") {
    CHECK_FALSE(read(gnu_long('L', "") + f).ok);
    CHECK_FALSE(read(gnu_long('L', std::string("a\0b", 3)) + f).ok);
  }
}

TEST_CASE("PAX global headers are checked and dropped, as Untar ignores them", "[policy][tar]") {
  const Read r = read(pax(pax_record("comment", "hi"), 'g') + file("f", "1") + end_of_archive());
  REQUIRE(r.ok);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].path == "f");
  CHECK_FALSE(read(pax("garbage", 'g') + file("f", "1")).ok);
}

TEST_CASE("entry kinds are allowed by list", "[policy][tar]") {
  auto [type, what] = GENERATE(table<char, std::string>({{'3', "character device"},
                                                         {'4', "block device"},
                                                         {'6', "FIFO"},
                                                         {'7', "contiguous-file"},
                                                         {'S', "sparse-file"},
                                                         {'V', "volume-label"},
                                                         {'M', "multi-volume"},
                                                         {'D', "GNU dump-directory"},
                                                         {'Z', "unknown ('Z')"}}));
  Fields f = named("dev");
  f.type = type;
  CHECK_THAT(read(entry(f) + end_of_archive()).error, Contains(what + " entries are not accepted"));
}

TEST_CASE("names are cleaned as Untar cleans them and stay inside the context", "[policy][tar]") {
  CHECK(read(file("./a//b/../c", "") + end_of_archive()).entries.at(0).path == "a/c");
  CHECK_FALSE(read(file("../x", "") + end_of_archive()).ok);
  CHECK_FALSE(read(file("a/../../x", "") + end_of_archive()).ok);
  CHECK_FALSE(read(file("/etc/passwd", "") + end_of_archive()).ok);
  CHECK_FALSE(read(file(".", "") + end_of_archive()).ok);
  CHECK(read(directory("./") + end_of_archive()).entries.at(0).path == ".");
  CHECK_FALSE(read(hard_link("h", "../x") + end_of_archive()).ok);
  CHECK(read(hard_link("h", "./a/b") + end_of_archive()).entries.at(0).link == "a/b");
  // A symbolic link's target is kept as written: the kernel, not a lexical clean, resolves it.
  CHECK(read(symbolic_link("s", "a/../b") + end_of_archive()).entries.at(0).link == "a/../b");
}

TEST_CASE("a '\\0' entry whose name ends in '/' is a directory; a '0' one is refused",
          "[policy][tar]") {
  Fields legacy = named("d/");
  legacy.type = '\0';
  CHECK(read(entry(legacy) + end_of_archive()).entries.at(0).type == tar::Type::directory);
  CHECK_FALSE(read(file("d/", "") + end_of_archive()).ok);  // Go's writer (tarsum) refuses it
}

TEST_CASE("links and directories carry no data", "[policy][tar]") {
  Fields d = named("d");
  d.type = '5';
  CHECK_THAT(read(entry(d, "x") + end_of_archive()).error, Contains("carries data"));
}

TEST_CASE("the archive ends at its marker, or at an entry boundary", "[policy][tar]") {
  CHECK(read(file("f", "1") + end_of_archive() + "anything at all").entries.size() == 1);
  CHECK(read(file("f", "1")).ok);
  CHECK(read(file("f", "1") + std::string(512, '\0')).ok);
  CHECK_FALSE(read(file("f", "1") + std::string(512, '\0') + file("g", "2")).ok);
  CHECK_FALSE(read(file("f", "12345").substr(0, 514)).ok);  // cut inside the data
  CHECK_FALSE(read(file("f", "1").substr(0, 100)).ok);      // cut inside a header
}

TEST_CASE("the reader gives the same entries whether fed whole or a byte at a time",
          "[policy][tar]") {
  const std::string context = gnu_long('L', std::string(300, 'L')) + file("a", "hello") +
                              pax(pax_record("path", "b")) + file("x", std::string(1000, 'z')) +
                              symbolic_link("s", "t") + end_of_archive();
  const Read whole = read(context);
  const Read bytes = read(context, 1);
  REQUIRE(whole.ok);
  REQUIRE(bytes.ok);
  CHECK(whole.entries == bytes.entries);
  CHECK(whole.data == bytes.data);
}

TEST_CASE("berth's headers read back as the entries it wrote them for", "[policy][tar]") {
  const auto path =
      GENERATE(values<std::string>({"a", std::string(100, 'n'), std::string(101, 'n'),
                                    std::string(150, 'p') + "/" + std::string(100, 'n'),
                                    std::string(156, 'p') + "/" + std::string(10, 'n'),
                                    std::string(300, 'x'), "\xc3\xa9t\xc3\xa9", "."}));
  tar::Entry e;
  e.type = path == "." ? tar::Type::directory : tar::Type::regular;
  e.path = path;
  e.size = path == "." ? 0 : 3;
  e.mode = 04755;
  e.uid = 4000000000;  // beyond octal: base-256
  e.gid = 5;
  e.mtime = 1700000000;
  std::string out;
  tar::append_header(out, e);
  out += e.size != 0 ? "abc" : "";
  tar::append_padding(out, e.size);
  tar::append_end(out);
  const Read r = read(out);
  REQUIRE(r.ok);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0] == e);

  tar::Entry link;
  link.type = tar::Type::symlink;
  link.path = "l";
  link.link = std::string(200, 't');
  std::string l;
  tar::append_header(l, link);
  CHECK(read(l).entries.at(0) == link);

  tar::Entry big;
  big.path = "big";
  big.size = std::uint64_t{1} << 34;  // beyond the 11 octal digits of a size field
  std::string b;
  tar::append_header(b, big);
  tar::Reader reader;
  std::string_view view = b;
  auto step = reader.next(view);
  REQUIRE(step.has_value());
  REQUIRE(step->event == tar::Reader::Event::entry);
  CHECK(reader.entry().size == big.size);
}
