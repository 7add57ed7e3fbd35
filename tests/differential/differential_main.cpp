// The differential test: berth's tar reader, build-context filter and Dockerfile parser against
// dockerd's own Go code (berth_go_harness, built from the Debian source of docker.io 20.10.24).
//
// For every generated case it checks two things:
//  1. berth's reading of the input equals Go's, or berth refuses it. (For Dockerfiles the port
//     must agree with Go on refusals too: both fail or both read the same instructions.)
//  2. Go's reading of what berth forwards (the canonical tar, the canonical Dockerfile) equals
//     the entry list or instruction list berth judged, exactly.
// The filter's output must also not depend on how the body is cut into pieces.
//
//   berth_differential --harness PATH --work DIR [--seed N] [--dockerfiles N] [--tars N]
//   berth_differential --dump DIR [--seed N] ...   (writes the corpus, for fuzz seeds)
//   berth_differential --bench MIB                 (feed throughput on a MIB MiB context)
//   berth_differential --filter FILE               (runs one context through the filter)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "policy/build_context.hpp"
#include "policy/dockerfile.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
#include "policy/tar_stream.hpp"
#include "tests/differential/corpus.hpp"

namespace {

using berth::differential::Case;
using namespace berth::policy;
using Json = nlohmann::json;

std::string esc(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7e && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string ascii_or(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return "<non-ascii>";
    }
  }
  return esc(s);
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

// strings.EqualFold(word, "as"): 'ſ' (U+017F) folds to 's'.
bool fold_as(std::string_view w) {
  if (w.empty() || (w[0] != 'a' && w[0] != 'A')) {
    return false;
  }
  w.remove_prefix(1);
  return w == "s" || w == "S" || w == "\xc5\xbf";
}

std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

// The same view of a node as harness/main.go prints.
Json node_view(const dockerfile::Node& n, bool top) {
  Json v = Json::object();
  v["cmd"] = ascii_or(n.cmd);
  Json flags = Json::array();
  for (const auto& f : n.flags) {
    flags.push_back(esc(f));
  }
  v["flags"] = flags;
  v["json"] = n.json;
  v["original"] = esc(n.original);
  Json args = Json::array();
  for (const auto& a : n.args) {
    args.push_back(esc(a));
  }
  v["args"] = args;
  if (!n.child.empty()) {
    v["child"] = node_view(n.child[0], false);
  }
  if (top && n.cmd == "from" && !n.args.empty()) {
    v["base"] = esc(n.args[0]);
    if (n.args.size() == 3 && fold_as(n.args[1])) {
      v["stage"] =
          ascii_or(n.args[2]) == "<non-ascii>" ? "<non-ascii>" : esc(ascii_lower(n.args[2]));
    }
  }
  if (top && n.cmd == "onbuild") {
    const std::string trigger = dockerfile::onbuild_expression(n.original);
    v["trigger"] = esc(trigger);
    auto parsed = dockerfile::parse(trigger);
    if (!parsed) {
      v["trigger_parse"] = "error";
    } else {
      Json list = Json::array();
      for (const auto& c : parsed->instructions) {
        list.push_back(node_view(c, false));
      }
      v["trigger_parse"] = list;
    }
  }
  return v;
}

Json dockerfile_view(char escape, const std::vector<dockerfile::Node>& instructions) {
  Json list = Json::array();
  for (const auto& n : instructions) {
    list.push_back(node_view(n, true));
  }
  return Json{{"escape", std::string(1, escape)}, {"instructions", list}};
}

Json entry_view(const tar::Entry& e, const std::string& sha) {
  return Json{{"type", esc(std::string(1, static_cast<char>(e.type)))},
              {"name", esc(e.path)},
              {"link", esc(e.link)},
              {"size", e.size},
              {"mode", e.mode},
              {"uid", e.uid},
              {"gid", e.gid},
              {"mtime", e.mtime},
              {"sha256", sha}};
}

struct TarView {
  bool ok = false;
  std::string error;
  std::vector<tar::Entry> entries;
  std::vector<std::string> data;  // each entry's data
};

TarView read_tar(std::string_view bytes) {
  TarView v;
  tar::Reader reader;
  std::string_view rest = bytes;
  for (;;) {
    auto step = reader.next(rest);
    if (!step) {
      v.error = step.error();
      return v;
    }
    if (step->event == tar::Reader::Event::need_more) {
      break;
    }
    if (step->event == tar::Reader::Event::entry) {
      v.entries.push_back(reader.entry());
      v.data.emplace_back();
    } else if (step->event == tar::Reader::Event::data) {
      v.data.back().append(step->data);
    }
  }
  if (auto f = reader.finish(); !f) {
    v.error = f.error();
    return v;
  }
  v.ok = true;
  return v;
}

Json entries_view(const TarView& v) {
  Json list = Json::array();
  for (std::size_t i = 0; i < v.entries.size(); ++i) {
    list.push_back(entry_view(v.entries[i], sha256_hex(v.data[i])));
  }
  return list;
}

// The candidates BuildContextFilter derives from the dockerfile parameter.
std::vector<std::string> candidates(const std::string& param) {
  std::string_view p = param;
  if (p.empty()) {
    p = "Dockerfile";
  }
  while (p.starts_with('/')) {
    p.remove_prefix(1);
  }
  std::vector<std::string> out{tar::clean_path(p)};
  if (param.empty() || param == "Dockerfile") {
    out.emplace_back("dockerfile");
  }
  return out;
}

const OwnershipIndex& sample_index() {
  static const OwnershipIndex index = [] {
    OwnershipIndex idx;
    idx.put_image({"sha256:" + std::string(64, 'a'), "", {"berth-test/busybox:latest"}});
    idx.put_image({"sha256:" + std::string(64, 'b'), "globex", {"globex.berth.local/app:1"}});
    idx.put_image({"sha256:" + std::string(64, 'c'), "acme", {"acme.berth.local/app:v1"}});
    idx.put_image({"sha256:" + std::string(64, 'd'), "", {"busybox:latest"}});
    return idx;
  }();
  return index;
}

const Tenant& sample_tenant() {
  static const Tenant tenant = [] {
    Tenant t;
    t.id = "acme";
    t.images = std::vector<std::string>{"berth-test/*"};
    t.egress.urls = std::vector<std::string>{"http://allowed.example/ok/"};
    return t;
  }();
  return tenant;
}

struct Outcome {
  bool accepted = false;
  std::string bytes;
  std::string refusal;
};

Outcome run_filter(const Case& c, std::size_t max_piece, std::uint64_t seed) {
  BuildContextFilter filter(sample_tenant(), c.dockerfile_param);
  Outcome o;
  std::string_view rest = c.data;
  std::uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  while (!rest.empty()) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::size_t n = std::min<std::size_t>(rest.size(), 1 + (x >> 33) % max_piece);
    auto out = filter.feed(rest.substr(0, n), sample_index());
    if (!out) {
      o.refusal = out.error().rule_id + ": " + out.error().tenant_message;
      return o;
    }
    o.bytes += *out;
    rest.remove_prefix(n);
  }
  auto tail = filter.finish();
  if (!tail) {
    o.refusal = tail.error().rule_id + ": " + tail.error().tenant_message;
    return o;
  }
  o.bytes += *tail;
  o.accepted = true;
  return o;
}

struct Pending {
  std::size_t index;
  bool output;  // the record is berth's output, not the case's input
};

struct Checked {
  std::size_t index;
  // Dockerfiles
  std::optional<dockerfile::Parsed> parsed;
  std::optional<JudgedDockerfile> judged;
  char judged_escape = '\\';
  std::string judge_refusal;
  // tars
  TarView input_view;
  Outcome filtered;
  Json expected_output;
};

void write_record(std::ostream& out, std::string_view kind, std::size_t id, std::string_view data) {
  out << kind << ' ' << id << ' ' << data.size() << '\n';
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string preview(std::string_view s) {
  std::string e = esc(s.substr(0, 160));
  if (s.size() > 160) {
    e += "...(" + std::to_string(s.size()) + " bytes)";
  }
  return e;
}

std::string shorten(const Json& j) {
  std::string s = j.dump();
  if (s.size() > 2000) {
    s = s.substr(0, 2000) + "...";
  }
  return s;
}

// The first element where two views differ, for the report.
std::string first_difference(const Json& a, const Json& b) {
  const Json& x = a.contains("view") ? a["view"] : a;
  const Json& y = b.contains("view") ? b["view"] : b;
  const Json& xs = x.is_object() && x.contains("instructions") ? x["instructions"] : x;
  const Json& ys = y.is_object() && y.contains("instructions") ? y["instructions"] : y;
  if (!xs.is_array() || !ys.is_array()) {
    return "";
  }
  for (std::size_t i = 0; i < std::max(xs.size(), ys.size()); ++i) {
    if (i >= xs.size() || i >= ys.size() || xs[i] != ys[i]) {
      return "\n  first difference at " + std::to_string(i) +
             ":\n    berth: " + (i < xs.size() ? shorten(xs[i]) : "-") +
             "\n    go:    " + (i < ys.size() ? shorten(ys[i]) : "-");
    }
  }
  return "";
}

// Feed throughput: a context of `mib` MiB (files of `file_size` bytes and a Dockerfile), fed
// in the proxy's 64 KiB windows; against a plain copy of the same bytes for scale.
int bench_one(std::size_t mib, std::size_t file_size) {
  std::string context;
  context.reserve((mib + 1) << 20);
  auto add = [&](const std::string& name, std::string_view data) {
    tar::Entry e;
    e.path = name;
    e.size = data.size();
    e.mode = 0644;
    tar::append_header(context, e);
    context += data;
    tar::append_padding(context, data.size());
  };
  add("Dockerfile", "FROM berth-test/busybox\nCOPY . /src\nRUN true\n");
  const std::string chunk(file_size, 'x');
  for (std::size_t i = 0; context.size() < (mib << 20); ++i) {
    add("data/file" + std::to_string(i), chunk);
  }
  tar::append_end(context);
  constexpr std::size_t window = 64 * 1024;
  double best = 1e9;
  double copy_best = 1e9;
  std::size_t forwarded = 0;
  for (int round = 0; round < 5; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    BuildContextFilter filter(sample_tenant(), "");
    forwarded = 0;
    for (std::size_t at = 0; at < context.size(); at += window) {
      auto out = filter.feed(std::string_view(context).substr(at, window), sample_index());
      if (!out) {
        std::cerr << "refused: " << out.error().tenant_message << "\n";
        return 1;
      }
      forwarded += out->size();
    }
    auto tail = filter.finish();
    forwarded += tail ? tail->size() : 0;
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    // The least a relay that hands each window on as a new string can do.
    const auto c0 = std::chrono::steady_clock::now();
    std::size_t copied = 0;
    for (std::size_t at = 0; at < context.size(); at += window) {
      std::string out;
      out.reserve(window + 2048);
      out.append(std::string_view(context).substr(at, window));
      copied += out.size();
    }
    const auto c1 = std::chrono::steady_clock::now();
    copy_best = std::min(copy_best, std::chrono::duration<double>(c1 - c0).count());
    if (copied != context.size()) {
      return 1;
    }
  }
  const double size_mib = static_cast<double>(context.size()) / (1 << 20);
  std::cout << "context " << size_mib << " MiB of " << file_size
            << "-byte files in 64 KiB windows: " << size_mib / best
            << " MiB/s through BuildContextFilter (best of 5, " << best << " s), "
            << size_mib / copy_best << " MiB/s for a plain copy per window; forwarded " << forwarded
            << " bytes\n";
  return 0;
}

int bench(std::size_t mib) {
  return bench_one(mib, 1 << 20) != 0 || bench_one(mib, 4096) != 0 || bench_one(mib, 100) != 0;
}

int usage() {
  std::cerr << "usage: berth_differential --harness PATH --work DIR [--seed N] [--dockerfiles N] "
               "[--tars N] | --dump DIR\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string harness;
  std::string work;
  std::string dump;
  std::uint64_t seed = 20261205;
  std::size_t n_dockerfiles = 3000;
  std::size_t n_tars = 3000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--harness") {
      harness = value;
    } else if (key == "--work") {
      work = value;
    } else if (key == "--dump") {
      dump = value;
    } else if (key == "--seed") {
      seed = std::stoull(value);
    } else if (key == "--dockerfiles") {
      n_dockerfiles = std::stoull(value);
    } else if (key == "--filter") {
      std::ifstream in(value, std::ios::binary);
      Case c;
      c.kind = Case::Kind::tar;
      c.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      const Outcome o = run_filter(c, 65536, 1);
      const TarView v = read_tar(o.bytes);
      std::cout << (o.accepted ? "forwarded " + std::to_string(v.entries.size()) + " entries"
                               : "refused: " + o.refusal)
                << "\n";
      return o.accepted ? 0 : 1;
    } else if (key == "--bench") {
      return bench(std::stoull(value));
    } else if (key == "--tars") {
      n_tars = std::stoull(value);
    } else {
      return usage();
    }
  }
  const std::vector<Case> cases = berth::differential::generate(seed, n_dockerfiles, n_tars);

  if (!dump.empty()) {
    std::filesystem::create_directories(dump + "/dockerfile");
    std::filesystem::create_directories(dump + "/tar");
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const bool df = cases[i].kind == Case::Kind::dockerfile;
      std::ofstream f(dump + (df ? "/dockerfile/" : "/tar/") + std::to_string(i) + "-" +
                          (cases[i].label.find("hand") != std::string::npos ? "hand" : "gen"),
                      std::ios::binary);
      if (!df) {
        f << '\x08';  // tests/fuzz/fuzz_tar.cpp's control byte: default parameter, 38-byte pieces
      }
      f << cases[i].data;
    }
    std::cout << "wrote " << cases.size() << " cases to " << dump << "\n";
    return 0;
  }
  if (harness.empty() || work.empty()) {
    return usage();
  }
  std::filesystem::create_directories(work);
  std::filesystem::remove_all(work + "/failures");
  const std::string batch_path = work + "/batch.bin";
  const std::string result_path = work + "/go.jsonl";

  // berth's side, and the batch for Go's side.
  std::vector<Checked> checked;
  checked.reserve(cases.size());
  std::map<std::size_t, Pending> ids;
  std::size_t failures = 0;
  auto fail = [&](const Case& c, std::size_t index, const std::string& what) {
    ++failures;
    if (failures <= 25) {
      std::cout << "MISMATCH case " << index << " (" << c.label << ", "
                << (c.kind == Case::Kind::tar ? "tar, dockerfile=" + esc(c.dockerfile_param)
                                              : std::string("dockerfile"))
                << "): " << what << "\n  input: " << preview(c.data) << "\n";
      std::filesystem::create_directories(work + "/failures");
      std::ofstream(work + "/failures/" + std::to_string(index), std::ios::binary) << c.data;
    }
  };
  {
    std::ofstream batch(batch_path, std::ios::binary);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      Checked k;
      k.index = i;
      if (c.kind == Case::Kind::dockerfile) {
        auto parsed = dockerfile::parse(c.data);
        if (parsed) {
          k.parsed = std::move(*parsed);
        }
        auto judged = judge_dockerfile(sample_tenant(), c.data, sample_index());
        if (judged) {
          k.judged_escape = k.parsed ? k.parsed->escape : '\\';
          k.judged = std::move(*judged);
        } else {
          k.judge_refusal = judged.error().rule_id + ": " + judged.error().tenant_message;
        }
        ids[2 * i] = {i, false};
        write_record(batch, "df", 2 * i, c.data);
        if (k.judged) {
          ids[2 * i + 1] = {i, true};
          write_record(batch, "df", 2 * i + 1, k.judged->text);
        }
      } else {
        k.input_view = read_tar(c.data);
        k.filtered = run_filter(c, 1 << 20, i);
        const Outcome pieces = run_filter(c, 1 + i % 700, i + 1);
        if (pieces.accepted != k.filtered.accepted || pieces.refusal != k.filtered.refusal ||
            (pieces.accepted && pieces.bytes != k.filtered.bytes)) {
          fail(c, i,
               "the filter's result depends on how the body is cut: '" + k.filtered.refusal +
                   "' vs '" + pieces.refusal + "'");
        }
        if (k.filtered.accepted && !k.input_view.ok) {
          fail(c, i, "the filter accepted what the reader refuses: " + k.input_view.error);
        }
        ids[2 * i] = {i, false};
        write_record(batch, "tar", 2 * i, c.data);
        if (k.filtered.accepted) {
          // Expected: the entries as read, each Dockerfile replaced by its canonical text.
          const auto wanted = candidates(c.dockerfile_param);
          Json expected = Json::array();
          for (std::size_t e = 0; e < k.input_view.entries.size(); ++e) {
            tar::Entry entry = k.input_view.entries[e];
            std::string data = k.input_view.data[e];
            if (std::find(wanted.begin(), wanted.end(), entry.path) != wanted.end()) {
              auto text = rewrite_dockerfile(sample_tenant(), data, sample_index());
              if (!text) {
                fail(c, i, "the filter accepted a Dockerfile rewrite_dockerfile refuses");
                continue;
              }
              data = *text;
              entry.size = data.size();
            }
            expected.push_back(entry_view(entry, sha256_hex(data)));
          }
          k.expected_output = expected;
          const TarView again = read_tar(k.filtered.bytes);
          if (!again.ok || entries_view(again) != expected) {
            fail(c, i, "berth's reader does not read berth's output as judged: " + again.error);
          }
          ids[2 * i + 1] = {i, true};
          write_record(batch, "tar", 2 * i + 1, k.filtered.bytes);
        }
      }
      checked.push_back(std::move(k));
    }
  }

  const std::string command = "'" + harness + "' < '" + batch_path + "' > '" + result_path + "'";
  if (std::system(command.c_str()) != 0) {
    std::cerr << "berth_differential: the Go harness failed: " << command << "\n";
    return 1;
  }

  std::map<std::size_t, Json> go;
  {
    std::ifstream in(result_path);
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line);
      if (!j.is_object() || !j.contains("id") || !j["id"].is_number_unsigned()) {
        std::cerr << "berth_differential: unexpected harness output: " << line.substr(0, 300)
                  << "\n";
        return 1;
      }
      const auto id = j["id"].get<std::size_t>();
      go[id] = std::move(j);
    }
  }
  if (go.size() != ids.size()) {
    std::cerr << "berth_differential: the Go harness answered " << go.size() << " of " << ids.size()
              << " records\n";
    return 1;
  }

  struct Counts {
    std::size_t cases = 0, berth_read = 0, go_read = 0, forwarded = 0;
  } df_counts, tar_counts;

  for (const auto& k : checked) {
    const Case& c = cases[k.index];
    const Json& in = go[2 * k.index];
    const bool go_ok = in["ok"].get<bool>();
    if (c.kind == Case::Kind::dockerfile) {
      ++df_counts.cases;
      df_counts.go_read += go_ok;
      df_counts.berth_read += k.parsed.has_value();
      if (k.parsed.has_value() != go_ok) {
        fail(c, k.index,
             std::string("the port ") + (k.parsed ? "parses" : "refuses") + " what Go " +
                 (go_ok ? "parses" : "refuses") +
                 (go_ok ? "" : ": " + in["error"].get<std::string>()));
      } else if (go_ok) {
        const Json mine = dockerfile_view(k.parsed->escape, k.parsed->instructions);
        if (mine != in["view"]) {
          fail(c, k.index,
               "the port reads the Dockerfile differently\n  berth: " + shorten(mine) +
                   "\n  go:    " + shorten(in["view"]) + first_difference(mine, in));
        }
      }
      if (k.judged) {
        ++df_counts.forwarded;
        const Json& out = go[2 * k.index + 1];
        const Json mine = dockerfile_view(k.judged_escape, k.judged->instructions);
        if (!out["ok"].get<bool>() || mine != out["view"]) {
          fail(c, k.index,
               "Go reads berth's canonical Dockerfile differently from what berth "
               "judged\n  canonical: " +
                   preview(k.judged->text) + "\n  berth: " + shorten(mine) +
                   "\n  go:    " + shorten(out) + first_difference(mine, out));
        }
      }
      continue;
    }
    // The input is compared with archive/tar's own reading; what berth forwards with what
    // Untar reads after tarsum's re-encoding (which rounds sub-second times, for one).
    const bool go_direct = in["direct_ok"].get<bool>();
    ++tar_counts.cases;
    tar_counts.go_read += go_direct;
    tar_counts.berth_read += k.input_view.ok;
    if (k.input_view.ok) {
      const Json mine = entries_view(k.input_view);
      if (!go_direct || mine != in["direct"]) {
        fail(c, k.index,
             "berth reads the tar differently from Go\n  berth: " + shorten(mine) +
                 "\n  go:    " + shorten(in) + first_difference(mine, in["direct"]));
      }
    }
    if (k.filtered.accepted) {
      ++tar_counts.forwarded;
      const Json& out = go[2 * k.index + 1];
      if (!out["ok"].get<bool>() || k.expected_output != out["view"] ||
          !out["direct_ok"].get<bool>() || k.expected_output != out["direct"]) {
        fail(c, k.index,
             "Go reads berth's canonical tar differently from what berth judged\n"
             "  berth: " +
                 shorten(k.expected_output) + "\n  go:    " + shorten(out) +
                 first_difference(k.expected_output, out));
      }
    }
  }
  if (std::getenv("BERTH_DIFFERENTIAL_REASONS") != nullptr) {
    std::map<std::string, int> reasons;
    for (const auto& k : checked) {
      std::string r = cases[k.index].kind == Case::Kind::dockerfile ? "df " + k.judge_refusal
                                                                    : "tar " + k.filtered.refusal;
      reasons[r.substr(0, 110)]++;
    }
    for (const auto& [r, n] : reasons) {
      std::cout << n << "\t" << esc(r) << "\n";
    }
  }
  std::cout << "dockerfiles: " << df_counts.cases << " cases; Go parses " << df_counts.go_read
            << ", berth's port parses " << df_counts.berth_read << ", berth forwards "
            << df_counts.forwarded << " (canonical text checked against Go)\n";
  std::cout << "tars: " << tar_counts.cases << " cases; Go reads " << tar_counts.go_read
            << ", berth's reader reads " << tar_counts.berth_read << ", berth forwards "
            << tar_counts.forwarded << " (canonical tar checked against Go)\n";
  std::cout << (failures == 0 ? "no differences\n"
                              : std::to_string(failures) + " differences (see above; inputs in " +
                                    work + "/failures)\n");
  return failures == 0 ? 0 : 1;
}
