#include "policy/policy_edit.hpp"

#include <yaml-cpp/yaml.h>

#include "policy/diagnostic.hpp"
#include "policy/policy.hpp"

namespace berth::policy {

namespace {

// The byte offset where line `line` (0-based) of `text` ends (its '\n', or the end).
std::size_t end_of_line(std::string_view text, int line) {
  std::size_t at = 0;
  for (int i = 0; i < line && at != std::string_view::npos; ++i) {
    at = text.find('\n', at);
    if (at != std::string_view::npos) {
      ++at;
    }
  }
  if (at == std::string_view::npos) {
    return text.size();
  }
  const std::size_t nl = text.find('\n', at);
  return nl == std::string_view::npos ? text.size() : nl;
}

std::expected<std::string, std::string> edited(std::string_view yaml_text, std::string_view host,
                                               bool cordoned) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return std::unexpected("the policy is not YAML: " + std::string(e.what()));
  }
  const YAML::Node hosts = root.IsMap() ? root["hosts"] : YAML::Node();
  if (!hosts.IsSequence()) {
    return std::unexpected("the policy lists no fleet hosts (hosts:)");
  }
  const std::string value = cordoned ? "true" : "false";
  for (const YAML::Node& entry : hosts) {
    if (!entry.IsMap() || !entry["name"] || !entry["name"].IsScalar() ||
        entry["name"].Scalar() != host) {
      continue;
    }
    if (entry.Style() == YAML::EmitterStyle::Flow) {
      return std::unexpected("host " + std::string(host) +
                             " is written in flow style ({...}); set its cordoned: by hand");
    }
    std::string out(yaml_text);
    for (auto it = entry.begin(); it != entry.end(); ++it) {
      if (it->first.Scalar() != "cordoned") {
        continue;
      }
      const YAML::Mark at = it->second.Mark();
      const std::string& old = it->second.Scalar();
      if (!it->second.IsScalar() || at.pos < 0 ||
          out.compare(static_cast<std::size_t>(at.pos), old.size(), old) != 0) {
        return std::unexpected("host " + std::string(host) +
                               "'s cordoned: is not a plain value; set it by hand");
      }
      out.replace(static_cast<std::size_t>(at.pos), old.size(), value);
      return out;
    }
    // No cordoned: yet: a line of its own under name:, at the same indentation.
    YAML::Mark name_key;
    for (auto it = entry.begin(); it != entry.end(); ++it) {
      if (it->first.Scalar() == "name") {
        name_key = it->first.Mark();
      }
    }
    const std::size_t eol = end_of_line(yaml_text, entry["name"].Mark().line);
    out.insert(eol, "\n" + std::string(static_cast<std::size_t>(name_key.column), ' ') +
                        "cordoned: " + value);
    return out;
  }
  return std::unexpected("the policy has no fleet host named " + std::string(host));
}

}  // namespace

std::expected<std::string, std::string> set_host_cordoned(std::string_view yaml_text,
                                                          std::string_view host, bool cordoned) {
  auto out = edited(yaml_text, host, cordoned);
  if (!out) {
    return out;
  }
  if (auto parsed = parse_policy(*out, "the edited policy"); !parsed) {
    return std::unexpected(format(parsed.error()));
  }
  return out;
}

}  // namespace berth::policy
