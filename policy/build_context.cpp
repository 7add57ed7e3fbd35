#include "policy/build_context.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "policy/egress.hpp"
#include "policy/names.hpp"
#include "policy/rewrite.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

namespace {

using dockerfile::Node;

Decision refuse_build(std::string message, std::string rule) {
  return Decision::deny(403, "berth: " + std::move(message), std::move(rule));
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Characters of an image reference. dockerd expands FROM names with its shell-word lexer
// (quotes, the escape token, $VAR, a leading BOM); none of these characters means anything to
// it, so a word made only of them reaches the image store as written.
bool image_ref_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '/' || c == ':' || c == '@' || c == '-';
  });
}

// strconv.ParseInt(s, 10, 0) succeeds: dockerd takes COPY --from as a stage index then.
bool parses_as_index(std::string_view s) {
  if (s.starts_with('-') || s.starts_with('+')) {
    s.remove_prefix(1);
  }
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  while (s.size() > 1 && s.front() == '0') {
    s.remove_prefix(1);
  }
  return s.size() < 19 || (s.size() == 19 && s <= "9223372036854775807");
}

// Stage names as instructions.parseBuildStageName accepts them (^[a-z][a-z0-9-_\.]*$ after
// lowercasing), ASCII only (Go lowercases U+212A to 'k').
bool stage_name(std::string_view s) {
  if (s.empty() || !is_ascii(s)) {
    return false;
  }
  const std::string l = lower_ascii(s);
  if (l[0] < 'a' || l[0] > 'z') {
    return false;
  }
  return std::all_of(l.begin(), l.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

Decision unwritable_reference(std::string_view word, std::string_view what) {
  const bool variable = word.find('$') != std::string_view::npos;
  return refuse_build(std::string(what) + " '" + std::string(word) + "' " +
                          (variable ? "uses a build variable" : "is not a plain image name") +
                          "; berth judges image references before the build, so write the "
                          "image name out (letters, digits and . _ / : @ -)",
                      variable ? "build.variable" : "build.reference");
}

// An image reference in a Dockerfile, as the tenant means it.
std::expected<std::string, Decision> resolve_image(const Tenant& rules, const std::string& ref,
                                                   const OwnershipIndex& index) {
  const std::string_view tenant = rules.id;
  if (!image_ref_word(ref)) {
    return std::unexpected(unwritable_reference(ref, "image reference"));
  }
  if (lower_ascii(ref) == "scratch") {
    return ref;
  }
  auto parsed = names::parse_image_ref(ref);
  auto found = index.find_image(tenant, ref);
  if (found.result == Lookup::found && !image_allowed(rules, found.value)) {
    return std::unexpected(refuse_build("image '" + ref +
                                            "' is not among the shared images "
                                            "tenant " +
                                            std::string(tenant) + " may use",
                                        "image.not_allowed"));
  }
  if (found.result == Lookup::found) {
    if (parsed) {
      const std::string stored = names::stored_image(tenant, *parsed);
      if (std::find(found.value.tags.begin(), found.value.tags.end(), stored) !=
          found.value.tags.end()) {
        return stored;
      }
      if (!names::is_tenant_image_repo(parsed->str())) {
        return ref;  // a shared image, by the operator's own name
      }
    }
    return found.value.id;
  }
  if (!parsed) {
    return std::unexpected(
        Decision::deny(400, "invalid reference format: " + ref, "build.reference"));
  }
  // Neither the tenant's nor shared: dockerd would try to pull it, which tenants cannot.
  return std::unexpected(
      Decision::deny(404,
                     "berth: image " + ref +
                         " not found; build FROM your own images or the operator's "
                         "shared ones (pulling images is not available to tenants)",
                     "build.image_missing"));
}

bool same_instruction(const Node& a, const Node& b) {
  return a.cmd == b.cmd && a.flags == b.flags && a.args == b.args && a.json == b.json;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) {
      out += ' ';
    }
    out += w;
  }
  return out;
}

// Judges one Dockerfile, instruction by instruction, in dockerd's order.
class Judge {
 public:
  Judge(const Tenant& tenant, const OwnershipIndex& index, char escape)
      : tenant_(tenant), index_(index), escape_(escape) {}

  // The judged (possibly rewritten) instruction and its canonical line.
  struct Judged {
    Node node;
    std::string line;
    std::string trigger;  // ONBUILD: the trigger text dockerd stores
  };

  std::expected<Judged, Decision> instruction(const Node& node) {
    if (!dockerfile::known_instruction(node.cmd)) {
      return std::unexpected(
          refuse_build("unknown Dockerfile instruction '" + node.original.substr(0, 40) + "'",
                       "build.instruction"));
    }
    if (!in_stage_ && node.cmd != "from" && node.cmd != "arg") {
      return std::unexpected(
          refuse_build("the Dockerfile must start with FROM (only ARG may "
                       "come before it)",
                       "build.instruction"));
    }
    Judged j{node, {}, {}};
    std::expected<void, Decision> checked;
    if (node.cmd == "from") {
      checked = from(j.node);
    } else if (node.cmd == "copy") {
      checked = copy(j.node, committed_);
    } else if (node.cmd == "add") {
      checked = add(j.node, std::string_view(&escape_, 1));
    } else if (node.cmd == "label") {
      checked = label(j.node, std::string_view(&escape_, 1));
    } else if (node.cmd == "onbuild") {
      checked = onbuild(j);
    }
    if (!checked) {
      return std::unexpected(std::move(checked.error()));
    }
    auto line = dockerfile::instruction_line(j.node.cmd, j.node.flags, j.node.rest, escape_);
    if (!line) {
      return std::unexpected(unwritable(line.error()));
    }
    j.line = std::move(*line);
    return j;
  }

 private:
  static Decision unwritable(const std::string& why) {
    return refuse_build(
        "berth cannot forward this Dockerfile in a form dockerd reads back "
        "unchanged: " +
            why,
        "build.dockerfile");
  }

  // FROM [--platform=...] image [AS name]
  std::expected<void, Decision> from(Node& node) {
    for (const auto& flag : node.flags) {
      if (!flag.starts_with("--platform=")) {
        return std::unexpected(refuse_build("FROM accepts only --platform=", "build.instruction"));
      }
    }
    const auto& a = node.args;
    const bool named = a.size() == 3 && lower_ascii(a[1]) == "as";
    if (!(a.size() == 1 || named) || (named && !stage_name(a[2]))) {
      return std::unexpected(
          refuse_build("FROM takes an image and optionally AS <stage name>", "build.instruction"));
    }
    // dockerd commits a stage's name when the stage ends: until the next FROM, the name of the
    // current stage still means an image (COPY --from=<it> inside it reaches the image store).
    // Test: "COPY --from naming the stage it is in reaches the image store and is judged as an
    // image".
    if (in_stage_ && !current_.empty()) {
      committed_.insert(current_);
    }
    in_stage_ = true;
    current_ = named ? lower_ascii(a[2]) : std::string();
    const std::string image = a[0];
    if (!image_ref_word(image)) {
      return std::unexpected(unwritable_reference(image, "image reference"));
    }
    if (committed_.contains(lower_ascii(image)) || image == "scratch") {
      return {};
    }
    auto resolved = resolve_image(tenant_, image, index_);
    if (!resolved) {
      return std::unexpected(std::move(resolved.error()));
    }
    node.args[0] = std::move(*resolved);
    node.rest = join(node.args);
    return {};
  }

  // COPY [--from=stage|index|image] [--chown=...] [--chmod=...] src... dest
  std::expected<void, Decision> copy(Node& node, const std::set<std::string>& stages) {
    bool seen_from = false;
    for (auto& flag : node.flags) {
      const std::string_view body = std::string_view(flag).substr(2);
      const std::string_view name = body.substr(0, body.find('='));
      if (name == "chown" || name == "chmod") {
        continue;
      }
      if (name != "from" || body.size() == name.size()) {
        return std::unexpected(
            refuse_build("COPY accepts only --from=, --chown= and --chmod=", "build.instruction"));
      }
      if (seen_from) {
        return std::unexpected(refuse_build("COPY has --from twice", "build.instruction"));
      }
      seen_from = true;
      const std::string value(body.substr(5));
      if (value.empty()) {
        continue;  // the build context
      }
      if (!image_ref_word(value)) {
        return std::unexpected(unwritable_reference(value, "COPY --from value"));
      }
      // dockerd: a committed stage's name first, then a stage index, then an image.
      if (stages.contains(lower_ascii(value)) || parses_as_index(value)) {
        continue;
      }
      auto resolved = resolve_image(tenant_, value, index_);
      if (!resolved) {
        return std::unexpected(std::move(resolved.error()));
      }
      flag = "--from=" + *resolved;
    }
    return {};
  }

  // ADD [--chown=...] src... dest: dockerd fetches a source that is an http(s) URL after its
  // shell-word expansion (builder/dockerfile/copy.go, urlutil.IsURL), from the host's network.
  // Tests: "ADD of a URL is fetched only where the tenant's egress rules allow it", "an ADD
  // source that dockerd's word expansion could turn into a URL is refused".
  std::expected<void, Decision> add(const Node& node, std::string_view escapes) {
    for (const auto& flag : node.flags) {
      if (!flag.starts_with("--chown=") && !flag.starts_with("--chmod=")) {
        return std::unexpected(
            refuse_build("ADD accepts only --chown= and --chmod=", "build.instruction"));
      }
    }
    if (node.args.size() < 2) {
      return std::unexpected(
          refuse_build("ADD needs a source and a destination", "build.instruction"));
    }
    for (std::size_t i = 0; i + 1 < node.args.size(); ++i) {
      if (auto refused = add_source(node.args[i], escapes); !refused) {
        return refused;
      }
    }
    return {};
  }

  std::expected<void, Decision> add_source(std::string_view source, std::string_view escapes) {
    // The literal prefix: up to the first character the lexer treats specially ($, quotes,
    // the escape token) or that is not printable ASCII (a leading BOM is dropped by it).
    std::size_t plain = 0;
    while (plain < source.size()) {
      const auto c = static_cast<unsigned char>(source[plain]);
      if (c < 0x20 || c > 0x7e || c == '$' || c == '\'' || c == '"' ||
          escapes.find(static_cast<char>(c)) != std::string_view::npos) {
        break;
      }
      ++plain;
    }
    const std::string_view prefix = source.substr(0, plain);
    const bool literal = plain == source.size();
    if (prefix.starts_with("http://") || prefix.starts_with("https://")) {
      if (!literal) {
        return std::unexpected(
            refuse_build("ADD source '" + std::string(source) +
                             "' is a URL with variables, quotes or "
                             "escapes; berth judges URLs before the build, so write it out",
                         "build.url"));
      }
      if (auto refused = judge_fetch_url(tenant_, source)) {
        return std::unexpected(std::move(*refused));
      }
      return {};
    }
    if (!literal && (std::string_view("http://").starts_with(prefix) ||
                     std::string_view("https://").starts_with(prefix))) {
      return std::unexpected(refuse_build(
          "ADD source '" + std::string(source) +
              "' could become a URL when dockerd expands "
              "it; write local sources and URLs out without variables, quotes or escapes",
          "build.url"));
    }
    return {};
  }

  // LABEL key=value...: the berth. prefix is the operator's (the ownership label). The build's
  // own labels (berth.tenant) land on the final stage only, so a LABEL berth.tenant=<other> in
  // an earlier stage would give another tenant an image. dockerd expands keys (quotes, the
  // escape token, $VAR): a key is refused when, with quotes and escapes dropped, it starts
  // with "berth." or its literal part before a '$' could still become that.
  std::expected<void, Decision> label(const Node& node, std::string_view escapes) {
    static constexpr std::string_view reserved = vocabulary::reserved_label_prefix;
    for (std::size_t i = 0; i < node.args.size(); i += 2) {
      std::string literal;
      bool variable = false;
      for (char c : node.args[i]) {
        if (c == '$') {
          variable = true;
          break;
        }
        if (c == '\'' || c == '"' || escapes.find(c) != std::string_view::npos) {
          continue;
        }
        literal += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
      const bool may_be_reserved =
          literal.starts_with(reserved) || (variable && reserved.starts_with(literal));
      if (may_be_reserved) {
        return std::unexpected(refuse_build("the label '" + node.args[i] +
                                                "' is reserved (or "
                                                "could expand to one): the berth. prefix belongs "
                                                "to the operator",
                                            "label.reserved"));
      }
    }
    return {};
  }

  // ONBUILD <instruction>: dockerd stores the text after ONBUILD and parses it again, with the
  // default escape token, when an image is built FROM this one; its COPY --from is then
  // resolved against the whole image store. So the stored text is what is judged (tests:
  // "ONBUILD ADD of a URL is judged as the later build will run it", and ONBUILD\vCOPY in "no
  // spelling of FROM that dockerd accepts hides the image reference from berth").
  std::expected<void, Decision> onbuild(Judged& j) {
    const Node& node = j.node;
    if (!node.flags.empty() || node.child.empty()) {
      return std::unexpected(refuse_build("ONBUILD takes one instruction", "build.instruction"));
    }
    const std::string& inner = node.child[0].cmd;
    if (inner == "onbuild" || inner == "from" || inner == "maintainer") {
      return std::unexpected(
          refuse_build("ONBUILD " + lower_ascii(inner) + " is not allowed", "build.instruction"));
    }
    const std::string expression = dockerfile::onbuild_expression(node.original);
    auto trigger = dockerfile::parse(expression);
    if (!trigger || trigger->instructions.size() != 1) {
      return std::unexpected(
          refuse_build("an ONBUILD trigger berth cannot read as dockerd "
                       "will store it",
                       "build.instruction"));
    }
    Node t = std::move(trigger->instructions[0]);
    if (!dockerfile::known_instruction(t.cmd) || t.cmd == "onbuild" || t.cmd == "from" ||
        t.cmd == "maintainer") {
      return std::unexpected(
          refuse_build("an ONBUILD trigger that is not an ordinary "
                       "instruction",
                       "build.instruction"));
    }
    std::expected<void, Decision> checked;
    if (t.cmd == "copy") {
      checked = copy(t, {});  // the later build's stages are unknown: names are images
    } else if (t.cmd == "add") {
      checked = add(t, "\\`");  // expanded with the later Dockerfile's escape token
    } else if (t.cmd == "label") {
      checked = label(t, "\\`");
    }
    if (!checked) {
      return std::unexpected(std::move(checked.error()));
    }
    auto line = dockerfile::instruction_line(t.cmd, t.flags, t.rest, '\\');
    if (!line) {
      return std::unexpected(unwritable(line.error()));
    }
    j.trigger = *line;
    j.node.child.assign(1, std::move(t));
    j.node.rest = std::move(*line);
    return {};
  }

  const Tenant& tenant_;
  const OwnershipIndex& index_;
  char escape_;
  bool in_stage_ = false;
  std::string current_;
  std::set<std::string> committed_;
};

}  // namespace

std::expected<JudgedDockerfile, Decision> judge_dockerfile(const Tenant& tenant,
                                                           std::string_view text,
                                                           const OwnershipIndex& index) {
  if (text.size() > dockerfile_limit) {
    return std::unexpected(
        refuse_build("the Dockerfile is larger than berth judges (1 MiB)", "build.dockerfile"));
  }
  auto parsed = dockerfile::parse(text);
  if (!parsed) {
    return std::unexpected(Decision::deny(400,
                                          "berth: the Dockerfile does not parse (line " +
                                              std::to_string(parsed.error().line) +
                                              "): " + parsed.error().message,
                                          "build.dockerfile"));
  }
  Judge judge(tenant, index, parsed->escape);
  JudgedDockerfile out;
  out.text = std::string("# escape=") + parsed->escape + "\n";
  std::vector<Judge::Judged> judged;
  judged.reserve(parsed->instructions.size());
  for (const auto& node : parsed->instructions) {
    auto j = judge.instruction(node);
    if (!j) {
      return std::unexpected(std::move(j.error()));
    }
    out.text += j->line;
    out.text += '\n';
    judged.push_back(std::move(*j));
  }
  // What dockerd will read is what berth judged: parse the text back and compare. (The
  // differential test checks the same against dockerd's own parser.)
  auto reread = dockerfile::parse(out.text);
  bool same =
      reread && reread->escape == parsed->escape && reread->instructions.size() == judged.size();
  for (std::size_t i = 0; same && i < judged.size(); ++i) {
    const Node& got = reread->instructions[i];
    const Node& want = judged[i].node;
    if (want.cmd != "onbuild") {
      same = same_instruction(got, want);
      continue;
    }
    const auto trigger = dockerfile::parse(dockerfile::onbuild_expression(got.original));
    same = got.cmd == "onbuild" && got.flags.empty() && got.child.size() == 1 &&
           got.child[0].cmd == want.child[0].cmd &&
           dockerfile::onbuild_expression(got.original) == judged[i].trigger && trigger &&
           trigger->instructions.size() == 1 &&
           same_instruction(trigger->instructions[0], want.child[0]);
  }
  if (!same) {
    return std::unexpected(
        refuse_build("berth cannot forward this Dockerfile in a form dockerd "
                     "reads back unchanged",
                     "build.dockerfile"));
  }
  out.instructions = std::move(reread->instructions);
  return out;
}

std::expected<std::string, Decision> rewrite_dockerfile(const Tenant& tenant,
                                                        std::string_view dockerfile,
                                                        const OwnershipIndex& index) {
  auto judged = judge_dockerfile(tenant, dockerfile, index);
  if (!judged) {
    return std::unexpected(std::move(judged.error()));
  }
  return std::move(judged->text);
}

// ---- the build context --------------------------------------------------------------------

BuildContextFilter::BuildContextFilter(Tenant rules, std::string dockerfile_param)
    : TarBodyFilter("build context", "build.context", "build.compressed"),
      tenant_(std::move(rules)) {
  // dockerd opens filepath.Join(context, param), following symbolic links inside the context,
  // and falls back to "dockerfile" when the parameter is the default "Dockerfile" and no such
  // file exists.
  const bool fallback = dockerfile_param.empty() || dockerfile_param == "Dockerfile";
  std::string_view param = dockerfile_param;
  if (param.empty()) {
    param = "Dockerfile";
  }
  while (param.starts_with('/')) {
    param.remove_prefix(1);
  }
  std::string path = tar::clean_path(param);
  if (path == "." || path == ".." || path.starts_with("../")) {
    (void)refuse(refusal("the dockerfile parameter must name a file inside the build context",
                         "build.dockerfile"));
    return;
  }
  candidates_.push_back(path);
  if (fallback) {
    candidates_.emplace_back("dockerfile");
  }
  for (const auto& c : candidates_) {
    for (auto slash = c.find('/'); slash != std::string::npos; slash = c.find('/', slash + 1)) {
      candidate_parents_.push_back(c.substr(0, slash));
    }
  }
  seen_.assign(candidates_.size(), false);
}

BuildContextFilter::~BuildContextFilter() = default;
BuildContextFilter::BuildContextFilter(BuildContextFilter&&) noexcept = default;
BuildContextFilter& BuildContextFilter::operator=(BuildContextFilter&&) noexcept = default;

bool BuildContextFilter::is_candidate(std::string_view path) const {
  return std::find(candidates_.begin(), candidates_.end(), path) != candidates_.end();
}

std::expected<void, Decision> BuildContextFilter::on_entry(const tar::Entry& e, std::string& out) {
  if (e.type == tar::Type::hardlink && is_candidate(e.link)) {
    return refuse(refusal("the build context has a hard link to the Dockerfile", "build.dockerfile"));
  }
  for (const auto& c : candidates_) {
    if (e.path.size() > c.size() && e.path.starts_with(c) && e.path[c.size()] == '/') {
      return refuse(
          refusal("the build context has an entry below the Dockerfile's path", "build.dockerfile"));
    }
  }
  if (e.type != tar::Type::directory &&
      std::find(candidate_parents_.begin(), candidate_parents_.end(), e.path) !=
          candidate_parents_.end()) {
    // Untar replaces what is there: a later link or file at a parent directory would make
    // dockerd read another Dockerfile than the one judged (test: "a link or file where the
    // Dockerfile's directory must be is refused, in any order").
    return refuse(refusal("the build context has a link or file at '" + e.path +
                              "', where the Dockerfile's directory must be",
                          "build.dockerfile"));
  }
  const auto candidate = std::find(candidates_.begin(), candidates_.end(), e.path);
  if (candidate == candidates_.end()) {
    passing_size_ = e.size;
    return emit_header(e, out);
  }
  if (e.type != tar::Type::regular) {
    return refuse(refusal("the Dockerfile '" + e.path +
                              "' in the build context must be a regular file, not a link or "
                              "directory",
                          "build.dockerfile"));
  }
  const auto k = static_cast<std::size_t>(candidate - candidates_.begin());
  if (seen_[k]) {
    return refuse(
        refusal("the build context has two entries named '" + e.path + "'", "build.dockerfile"));
  }
  if (e.size > dockerfile_limit) {
    return refuse(refusal("the Dockerfile is larger than berth judges (1 MiB)", "build.dockerfile"));
  }
  seen_[k] = true;
  holding_ = true;
  held_entry_ = e;
  held_.clear();
  held_.reserve(static_cast<std::size_t>(e.size));
  return {};
}

void BuildContextFilter::on_data(std::string_view data, std::string& out) {
  if (holding_) {
    held_.append(data);
  } else {
    out.append(data);
  }
}

std::expected<void, Decision> BuildContextFilter::on_entry_end(const OwnershipIndex& index,
                                                               std::string& out) {
  if (!holding_) {
    tar::append_padding(out, passing_size_);
    return {};
  }
  holding_ = false;
  auto judged = judge_dockerfile(tenant_, held_, index);
  if (!judged) {
    return refuse(std::move(judged.error()));
  }
  held_entry_.size = judged->text.size();
  if (auto r = emit_header(held_entry_, out); !r) {
    return r;
  }
  out += judged->text;
  tar::append_padding(out, judged->text.size());
  held_.clear();
  held_.shrink_to_fit();
  return {};
}

std::expected<void, Decision> BuildContextFilter::on_finish(std::string&) {
  if (std::find(seen_.begin(), seen_.end(), true) == seen_.end()) {
    // Nothing judged: whatever dockerd would build from, berth has not seen it.
    return std::unexpected(refusal("the build context has no Dockerfile named '" +
                                   candidates_[0] + "' (a regular file at that path)",
                                   "build.dockerfile"));
  }
  return {};
}

}  // namespace berth::policy
