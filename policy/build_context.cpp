#include "policy/build_context.hpp"
#include "policy/rewrite.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "policy/names.hpp"

namespace berth::policy {

namespace {

constexpr std::size_t block = 512;
constexpr std::uint64_t dockerfile_limit = 1024 * 1024;
constexpr std::size_t meta_limit = 64 * 1024;

Decision refuse_build(std::string message, std::string rule) {
  return Decision::deny(403, "berth: " + std::move(message), std::move(rule));
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) {
    return {};
  }
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) {
      ++i;
    }
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
      ++i;
    }
    if (i > start) {
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

// Lexical path clean, as Go's filepath.Clean on a relative path.
std::string clean_path(std::string_view p) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= p.size()) {
    const auto slash = std::min(p.find('/', i), p.size());
    const std::string_view part = p.substr(i, slash - i);
    if (part == "..") {
      if (!parts.empty()) {
        parts.pop_back();
      }
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    i = slash + 1;
  }
  std::string out;
  for (const auto& part : parts) {
    out += out.empty() ? "" : "/";
    out += part;
  }
  return out;
}

// An image reference in a Dockerfile, as the tenant means it.
std::expected<std::string, Decision> resolve_image(const Tenant& rules, const std::string& ref,
                                                   const OwnershipIndex& index) {
  const std::string_view tenant = rules.id;
  if (ref.find('$') != std::string::npos) {
    return std::unexpected(refuse_build(
        "image reference '" + ref + "' uses a build variable; berth judges image references "
        "before the build, so write the image name out",
        "build.variable"));
  }
  if (lower(ref) == "scratch") {
    return ref;
  }
  auto parsed = names::parse_image_ref(ref);
  auto found = index.find_image(tenant, ref);
  if (found.result == Lookup::found && !image_allowed(rules, found.value)) {
    return std::unexpected(refuse_build("image '" + ref + "' is not among the shared images "
                                        "tenant " + std::string(tenant) + " may use",
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
    return std::unexpected(Decision::deny(400, "invalid reference format: " + ref,
                                          "build.reference"));
  }
  // Neither the tenant's nor shared: dockerd would try to pull it, which tenants cannot.
  return std::unexpected(Decision::deny(
      404, "berth: image " + ref + " not found; build FROM your own images or the operator's "
           "shared ones (pulling images is not available to tenants)",
      "build.image_missing"));
}

// COPY/ADD --from=<stage|index|image>: rewrites an image reference, keeps stage names.
std::expected<std::string, Decision> rewrite_copy(const Tenant& tenant,
                                                  const std::vector<std::string>& w,
                                                  const std::set<std::string>& stages,
                                                  const OwnershipIndex& index, bool& changed) {
  std::string out = w.front();
  for (std::size_t i = 1; i < w.size(); ++i) {
    std::string token = w[i];
    if (lower(token).starts_with("--from=")) {
      const std::string value = token.substr(7);
      const bool number = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return c >= '0' && c <= '9';
      });
      if (!number && !stages.contains(lower(value))) {
        auto image = resolve_image(tenant, value, index);
        if (!image) {
          return std::unexpected(image.error());
        }
        if (*image != value) {
          token = "--from=" + *image;
          changed = true;
        }
      }
    }
    out += ' ';
    out += token;
  }
  return out;
}

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  // width-1 octal digits and a NUL, as Go's archive/tar writes them.
  std::string digits(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0;) {
    digits[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  std::copy(digits.begin(), digits.end(), field);
  field[width - 1] = '\0';
}

std::uint64_t parse_size(const char* field) {
  const auto first = static_cast<unsigned char>(field[0]);
  std::uint64_t v = 0;
  if (first & 0x80) {  // base-256 (GNU) for large sizes
    v = first & 0x7f;
    for (int i = 1; i < 12; ++i) {
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  for (int i = 0; i < 12; ++i) {
    const char c = field[i];
    if (c >= '0' && c <= '7') {
      v = (v << 3) | static_cast<std::uint64_t>(c - '0');
    } else if (c == ' ' && v == 0) {
      continue;
    } else {
      break;
    }
  }
  return v;
}

std::string field_string(const char* f, std::size_t n) {
  std::size_t len = 0;
  while (len < n && f[len] != '\0') {
    ++len;
  }
  return std::string(f, len);
}

}  // namespace

std::expected<std::string, Decision> rewrite_dockerfile(const Tenant& tenant,
                                                        std::string_view dockerfile,
                                                        const OwnershipIndex& index) {
  // Physical lines.
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < dockerfile.size()) {
    const auto nl = dockerfile.find('\n', start);
    const auto end = nl == std::string_view::npos ? dockerfile.size() : nl;
    lines.emplace_back(dockerfile.substr(start, end - start));
    start = end + 1;
  }
  // Parser directives: "# key=value" lines at the very top; only escape matters here.
  char escape = '\\';
  for (const auto& line : lines) {
    const std::string t = trim(line);
    if (!t.starts_with("#")) {
      break;
    }
    const std::string body = lower(trim(std::string_view(t).substr(1)));
    const auto eq = body.find('=');
    if (eq == std::string::npos) {
      break;
    }
    if (trim(std::string_view(body).substr(0, eq)) == "escape") {
      const std::string value = trim(std::string_view(body).substr(eq + 1));
      if (value == "`") {
        escape = '`';
      }
    }
  }
  std::string out;
  std::set<std::string> stages;
  std::size_t i = 0;
  while (i < lines.size()) {
    // One logical line: physical lines joined while they end with the escape character;
    // comment lines inside a continuation are dropped, as the builder does.
    const std::size_t first = i;
    std::string logical;
    for (; i < lines.size(); ++i) {
      std::string t = lines[i];
      while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) {
        t.pop_back();
      }
      if (i > first && trim(t).starts_with("#")) {
        continue;
      }
      if (!t.empty() && t.back() == escape) {
        t.pop_back();
        logical += t;
        continue;
      }
      logical += t;
      ++i;
      break;
    }
    const std::string stripped = trim(logical);
    const auto w = words(stripped);
    auto original = [&] {
      for (std::size_t k = first; k < i; ++k) {
        out += lines[k];
        out += '\n';
      }
    };
    if (w.empty() || stripped.starts_with("#")) {
      original();
      continue;
    }
    const std::string keyword = lower(w.front());
    if (keyword == "from") {
      std::vector<std::string> flags;
      std::size_t k = 1;
      while (k < w.size() && w[k].starts_with("--")) {
        flags.push_back(w[k++]);
      }
      if (k >= w.size()) {
        original();
        continue;  // the builder reports the syntax error itself
      }
      const std::string image = w[k];
      std::string rewritten = image;
      if (!stages.contains(lower(image))) {
        auto resolved = resolve_image(tenant, image, index);
        if (!resolved) {
          return std::unexpected(resolved.error());
        }
        rewritten = *resolved;
      }
      if (k + 2 < w.size() && lower(w[k + 1]) == "as") {
        stages.insert(lower(w[k + 2]));
      }
      if (rewritten == image) {
        original();
        continue;
      }
      std::string line = w.front();
      for (const auto& f : flags) {
        line += ' ' + f;
      }
      line += ' ' + rewritten;
      for (std::size_t r = k + 1; r < w.size(); ++r) {
        line += ' ' + w[r];
      }
      out += line + '\n';
      continue;
    }
    if (keyword == "copy" || keyword == "add") {
      bool changed = false;
      auto line = rewrite_copy(tenant, w, stages, index, changed);
      if (!line) {
        return std::unexpected(line.error());
      }
      if (changed) {
        out += *line + '\n';
      } else {
        original();
      }
      continue;
    }
    if (keyword == "onbuild" && w.size() > 1) {
      const std::string inner = lower(w[1]);
      if (inner == "copy" || inner == "add") {
        bool changed = false;
        std::vector<std::string> rest(w.begin() + 1, w.end());
        auto line = rewrite_copy(tenant, rest, {}, index, changed);
        if (!line) {
          return std::unexpected(line.error());
        }
        if (changed) {
          out += w.front() + " " + *line + '\n';
          continue;
        }
      }
    }
    original();
  }
  if (!dockerfile.empty() && dockerfile.back() != '\n' && !out.empty()) {
    out.pop_back();
  }
  return out;
}

BuildContextFilter::BuildContextFilter(Tenant rules, std::string dockerfile_param)
    : tenant_(std::move(rules)),
      wanted_(clean_path(dockerfile_param.empty() ? "Dockerfile" : dockerfile_param)) {
  // dockerd falls back to "dockerfile" when the default "Dockerfile" is missing.
  if (dockerfile_param.empty() || dockerfile_param == "Dockerfile") {
    wanted_lower_ = "dockerfile";
  }
}

std::expected<void, Decision> BuildContextFilter::on_header(const OwnershipIndex& index,
                                                            std::string& out) {
  (void)index;
  const char* h = held_.data();
  const char type = h[156];
  const std::uint64_t size = parse_size(h + 124);
  std::string name = field_string(h, 100);
  if (std::string_view(h + 257, 6) == std::string_view("ustar\0", 6)) {
    const std::string prefix = field_string(h + 345, 155);
    if (!prefix.empty()) {
      name = prefix + "/" + name;
    }
  }
  if (type == 'x' || type == 'L') {
    meta_type_ = type;
    meta_.clear();
    if (size > meta_limit) {
      return std::unexpected(refuse_build("the build context has an oversized tar extension "
                                          "header", "build.context"));
    }
    out += held_;
    remaining_ = size;
    padding_ = (block - size % block) % block;
    state_ = State::data;
    return {};
  }
  if (!next_name_.empty()) {
    name = next_name_;
  }
  const std::string cleaned = clean_path(name);
  const bool is_dockerfile = cleaned == wanted_ || (!wanted_lower_.empty() && cleaned == wanted_lower_);
  const bool regular = type == '0' || type == '\0' || type == '7';
  meta_type_ = 0;
  // A link on the way to the Dockerfile would make dockerd read a file berth did not judge.
  if ((type == '1' || type == '2') && wanted_.starts_with(cleaned + "/")) {
    return std::unexpected(refuse_build("the build context has a link on the Dockerfile's path",
                                        "build.dockerfile"));
  }
  if (is_dockerfile && type != 'g') {
    if (!regular) {
      return std::unexpected(refuse_build("the Dockerfile in the build context must be a regular "
                                          "file, not a link",
                                          "build.dockerfile"));
    }
    if (pax_size_ || size > dockerfile_limit) {
      return std::unexpected(refuse_build("the Dockerfile is larger than berth judges (1 MiB)",
                                          "build.dockerfile"));
    }
    held_header_ = held_;
    remaining_ = size;
    padding_ = (block - size % block) % block;
    state_ = State::dockerfile;
    held_.clear();
    saw_dockerfile_ = true;
    next_name_.clear();
    pax_size_ = false;
    return {};
  }
  out += held_;
  remaining_ = size;
  padding_ = (block - size % block) % block;
  state_ = State::data;
  if (type != 'g') {
    next_name_.clear();
    pax_size_ = false;
  }
  return {};
}

std::expected<std::string, Decision> BuildContextFilter::feed(std::string_view bytes,
                                                              const OwnershipIndex& index) {
  std::string out;
  if (first_block_ && !bytes.empty()) {
    const auto b0 = static_cast<unsigned char>(bytes[0]);
    if (b0 == 0x1f || b0 == 0xfd || b0 == 0x28 || bytes.starts_with("BZh")) {
      return std::unexpected(refuse_build(
          "compressed build contexts are not judged; send the context uncompressed "
          "(docker build without --compress)",
          "build.compressed"));
    }
    first_block_ = false;
  }
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::string_view rest = bytes.substr(pos);
    switch (state_) {
      case State::end:
        out += rest;
        pos = bytes.size();
        break;
      case State::header: {
        const std::size_t take = std::min(block - held_.size(), rest.size());
        held_.append(rest.substr(0, take));
        pos += take;
        if (held_.size() < block) {
          break;
        }
        if (std::all_of(held_.begin(), held_.end(), [](char c) { return c == '\0'; })) {
          out += held_;
          held_.clear();
          if (++zero_blocks_ >= 2) {
            state_ = State::end;
          }
          break;
        }
        zero_blocks_ = 0;
        auto r = on_header(index, out);
        if (!r) {
          return std::unexpected(r.error());
        }
        if (state_ != State::dockerfile) {
          held_.clear();
        }
        if (state_ == State::data && remaining_ == 0) {
          state_ = padding_ ? State::padding : State::header;
        }
        break;
      }
      case State::data: {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
        if (meta_type_ != 0) {
          meta_.append(rest.substr(0, take));
        }
        out += rest.substr(0, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          if (meta_type_ == 'L') {
            next_name_ = field_string(meta_.data(), meta_.size());
          } else if (meta_type_ == 'x') {
            // PAX records: "<len> <key>=<value>\n"
            std::size_t p = 0;
            while (p < meta_.size()) {
              const auto sp = meta_.find(' ', p);
              if (sp == std::string::npos) {
                break;
              }
              const std::size_t len = std::strtoul(meta_.c_str() + p, nullptr, 10);
              if (len == 0 || p + len > meta_.size()) {
                break;
              }
              const std::string record = meta_.substr(sp + 1, p + len - sp - 2);
              const auto eq = record.find('=');
              if (eq != std::string::npos) {
                const std::string key = record.substr(0, eq);
                if (key == "path") {
                  next_name_ = record.substr(eq + 1);
                } else if (key == "size") {
                  pax_size_ = true;
                }
              }
              p += len;
            }
          }
          meta_type_ = 0;
          state_ = padding_ ? State::padding : State::header;
        }
        break;
      }
      case State::dockerfile: {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
        held_.append(rest.substr(0, take));
        pos += take;
        remaining_ -= take;
        if (remaining_ != 0) {
          break;
        }
        auto rewritten = rewrite_dockerfile(tenant_, held_, index);
        if (!rewritten) {
          return std::unexpected(rewritten.error());
        }
        std::string header = held_header_;
        put_octal(header.data() + 124, 12, rewritten->size());
        std::fill(header.begin() + 148, header.begin() + 156, ' ');
        unsigned sum = 0;
        for (char c : header) {
          sum += static_cast<unsigned char>(c);
        }
        char chk[8];
        std::snprintf(chk, sizeof chk, "%06o", sum & 0777777u);
        std::copy(chk, chk + 6, header.begin() + 148);
        header[154] = '\0';
        header[155] = ' ';
        out += header;
        out += *rewritten;
        out.append((block - rewritten->size() % block) % block, '\0');
        held_.clear();
        held_header_.clear();
        // The original padding is dropped: the rewritten entry brought its own.
        state_ = padding_ ? State::padding : State::header;
        skip_padding_ = true;
        break;
      }
      case State::padding: {
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(padding_, rest.size()));
        if (!skip_padding_) {
          out += rest.substr(0, take);
        }
        pos += take;
        padding_ -= take;
        if (padding_ == 0) {
          state_ = State::header;
          skip_padding_ = false;
        }
        break;
      }
    }
  }
  return out;
}

std::expected<std::string, Decision> BuildContextFilter::finish() {
  if (state_ == State::dockerfile || state_ == State::data ||
      (state_ == State::header && !held_.empty())) {
    return std::unexpected(refuse_build("the build context ended in the middle of an entry",
                                        "build.context"));
  }
  if (!saw_dockerfile_) {
    // Nothing judged: whatever dockerd would build from, berth has not seen it.
    return std::unexpected(refuse_build("the build context has no Dockerfile named '" + wanted_ +
                                            "' (a regular file at that path)",
                                        "build.dockerfile"));
  }
  std::string out;
  if (state_ == State::header) {
    out = std::move(held_);
  }
  return out;
}

}  // namespace berth::policy
