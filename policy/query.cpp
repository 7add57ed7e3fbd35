#include "policy/query.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include <nlohmann/json.hpp>

#include "policy/endpoint_table.hpp"
#include "policy/hex.hpp"

namespace berth::policy {

namespace {

Decision malformed(std::string message) {
  return Decision::deny(400, std::move(message), "query.invalid");
}

Decision not_allowed(std::string message) {
  return Decision::deny(403, "berth: " + std::move(message), "query.not_allowed");
}

bool has_control(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// httputils.BoolValue reads strings.ToLower(strings.TrimSpace(v)). Only ASCII is accepted
// here, so berth's trim and Go's (which also trims Unicode spaces) agree.
std::optional<bool> bool_value(std::string_view v) {
  if (std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return std::nullopt;
  }
  while (!v.empty() && (v.front() == ' ' || (v.front() >= '\t' && v.front() <= '\r'))) {
    v.remove_prefix(1);
  }
  while (!v.empty() && (v.back() == ' ' || (v.back() >= '\t' && v.back() <= '\r'))) {
    v.remove_suffix(1);
  }
  const std::string s = ascii_lower(v);
  return !(s.empty() || s == "0" || s == "no" || s == "false" || s == "none");
}

// strconv.ParseBool's spellings.
std::optional<bool> strict_bool(std::string_view v) {
  for (auto t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (v == t) {
      return true;
    }
  }
  for (auto f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (v == f) {
      return false;
    }
  }
  return std::nullopt;
}

// strconv.Atoi / ParseInt(v, 10, 64): an optional sign and decimal digits, nothing else.
std::optional<std::int64_t> integer(std::string_view v) {
  std::string_view digits = v;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
    digits.remove_prefix(1);
  }
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                     [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t n = 0;
  const char* first = v.data() + (v.front() == '+' ? 1 : 0);
  const auto [end, ec] = std::from_chars(first, v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) {
    return std::nullopt;
  }
  return n;
}

// timetypes.ParseTimestamps: seconds, optionally a '.' and up to nine digits of fraction.
bool timestamp(std::string_view v) {
  const auto dot = v.find('.');
  if (!integer(v.substr(0, dot))) {
    return false;
  }
  if (dot == std::string_view::npos) {
    return true;
  }
  const std::string_view frac = v.substr(dot + 1);
  return !frac.empty() && frac.size() <= 9 &&
         std::all_of(frac.begin(), frac.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// pkg/signal's SignalMap (Linux), the names ParseSignal accepts after an optional "SIG".
constexpr std::string_view signal_names[] = {
    "ABRT", "ALRM", "BUS",  "CHLD",   "CLD",  "CONT", "FPE",   "HUP",  "ILL",  "INT",
    "IO",   "IOT",  "KILL", "PIPE",   "POLL", "PROF", "PWR",   "QUIT", "SEGV", "STKFLT",
    "STOP", "SYS",  "TERM", "TRAP",   "TSTP", "TTIN", "TTOU",  "UNUSED", "URG", "USR1",
    "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX"};

std::optional<std::string> signal(std::string_view v) {
  if (auto n = integer(v)) {
    if (*n < 1 || *n > 64) {
      return std::nullopt;
    }
    return std::to_string(*n);
  }
  std::string name;
  for (char c : v) {
    name += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  if (name.starts_with("SIG")) {
    name.erase(0, 3);
  }
  for (auto known : signal_names) {
    if (name == known) {
      return name;
    }
  }
  // RTMIN+1..RTMIN+15 and RTMAX-14..RTMAX-1
  for (std::string_view base : {"RTMIN+", "RTMAX-"}) {
    if (name.starts_with(base)) {
      const auto n = integer(std::string_view(name).substr(base.size()));
      if (n && *n >= 1 && *n <= (base == "RTMIN+" ? 15 : 14) &&
          name.size() == base.size() + std::to_string(*n).size()) {
        return name;
      }
    }
  }
  return std::nullopt;
}

std::string join(std::span<const std::string_view> values) {
  std::string out;
  for (auto v : values) {
    out += out.empty() ? "" : ", ";
    out += v.empty() ? "(empty)" : std::string(v);
  }
  return out;
}

}  // namespace

std::optional<std::string> query_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) {
        return std::nullopt;
      }
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string query_escape(std::string_view s) { return percent_encode(s, ""); }

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  // Go's url.ParseQuery refuses ';' separators (and dockerd then drops the pair): refusing the
  // whole query keeps berth from judging a parameter dockerd would not see.
  if (q.find(';') != std::string_view::npos) {
    return std::nullopt;
  }
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    auto key = query_unescape(pair.substr(0, eq));
    auto value = query_unescape(eq == std::string_view::npos ? std::string_view()
                                                             : pair.substr(eq + 1));
    if (!key || !value) {
      return std::nullopt;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

std::string build_query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (!out.empty()) {
      out += '&';
    }
    out += query_escape(key);
    out += '=';
    out += query_escape(value);
  }
  return out;
}

std::optional<std::map<std::string, std::vector<std::string>>> parse_filters(
    std::string_view json_text) {
  auto doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::nullopt;
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [key, value] : doc.items()) {
    auto& values = out[key];
    if (value.is_object()) {
      for (const auto& [v, on] : value.items()) {
        if (!on.is_boolean()) {
          return std::nullopt;
        }
        if (on.get<bool>()) {
          values.push_back(v);
        }
      }
    } else if (value.is_array()) {
      for (const auto& v : value) {
        if (!v.is_string()) {
          return std::nullopt;
        }
        values.push_back(v.get<std::string>());
      }
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string serialize_filters(const std::map<std::string, std::vector<std::string>>& f) {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [key, values] : f) {
    nlohmann::json set = nlohmann::json::object();
    for (const auto& v : values) {
      set[v] = true;
    }
    doc[key] = std::move(set);
  }
  return doc.dump();
}

std::expected<std::string, Decision> judge_query(std::span<const QueryParam> params,
                                                 std::string_view query, int minor,
                                                 std::string_view route_name) {
  if (query.empty()) {
    return std::string();
  }
  auto pairs = parse_query(query);
  if (!pairs) {
    return std::unexpected(malformed(
        "berth: malformed query string (a ';' separator or an invalid %-escape)"));
  }
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(pairs->size());
  std::vector<std::string_view> seen;
  for (auto& [key, value] : *pairs) {
    const auto spec = std::find_if(params.begin(), params.end(),
                                   [&](const QueryParam& p) { return p.name == key; });
    if (spec == params.end()) {
      return std::unexpected(not_allowed("query parameter '" + key + "' is not accepted on " +
                                         std::string(route_name)));
    }
    if (spec->kind == QueryKind::refused) {
      return std::unexpected(not_allowed("query parameter '" + key + "' is not allowed on " +
                                         std::string(route_name) + ": " +
                                         std::string(spec->reason)));
    }
    if (!spec->repeated) {
      if (std::find(seen.begin(), seen.end(), spec->name) != seen.end()) {
        return std::unexpected(not_allowed("query parameter '" + key + "' appears twice on " +
                                           std::string(route_name) +
                                           " (dockerd reads only the first)"));
      }
      seen.push_back(spec->name);
    }
    if (minor < spec->min_minor || minor > spec->max_minor || spec->kind == QueryKind::ignored) {
      continue;  // dockerd does not read it at this version: not forwarded
    }
    const auto bad_value = [&](std::string expected) {
      return std::unexpected(malformed("berth: query parameter '" + key + "' on " +
                                       std::string(route_name) + " must be " + expected +
                                       ", not '" + value + "'"));
    };
    switch (spec->kind) {
      case QueryKind::flag: {
        const auto b = bool_value(value);
        if (!b) {
          return bad_value("a boolean such as 1, 0, true or false");
        }
        out.emplace_back(key, *b ? "1" : "0");
        break;
      }
      case QueryKind::false_only: {
        const auto b = bool_value(value);
        if (!b) {
          return bad_value("a boolean");
        }
        if (*b) {
          return std::unexpected(not_allowed("query parameter '" + key + "' on " +
                                             std::string(route_name) +
                                             " may not be true for tenants" +
                                             (spec->reason.empty()
                                                  ? std::string()
                                                  : ": " + std::string(spec->reason))));
        }
        break;  // false is what dockerd assumes without it
      }
      case QueryKind::neutral_only:
        if (std::find(spec->values.begin(), spec->values.end(), value) == spec->values.end()) {
          return std::unexpected(not_allowed("query parameter '" + key + "' is not allowed on " +
                                             std::string(route_name) + ": " +
                                             std::string(spec->reason)));
        }
        break;  // means what its absence means
      case QueryKind::strict_bool: {
        const auto b = strict_bool(value);
        if (!b) {
          return bad_value("true or false");
        }
        out.emplace_back(key, *b ? "true" : "false");
        break;
      }
      case QueryKind::integer: {
        const auto n = integer(value);
        if (!n || *n < spec->min || *n > spec->max) {
          return bad_value("a whole number from " + std::to_string(spec->min) + " to " +
                           std::to_string(spec->max));
        }
        out.emplace_back(key, std::to_string(*n));
        break;
      }
      case QueryKind::text:
        if (value.size() > static_cast<std::size_t>(spec->max) || has_control(value)) {
          return bad_value("text of at most " + std::to_string(spec->max) +
                           " characters without control characters");
        }
        out.emplace_back(key, std::move(value));
        break;
      case QueryKind::one_of:
        if (std::find(spec->values.begin(), spec->values.end(), value) == spec->values.end()) {
          return std::unexpected(not_allowed("query parameter '" + key + "' on " +
                                             std::string(route_name) + " may be one of: " +
                                             join(spec->values) + "; not '" + value + "'"));
        }
        out.emplace_back(key, std::move(value));
        break;
      case QueryKind::timestamp:
        if (!value.empty() && !timestamp(value)) {
          return bad_value("a Unix time in seconds (with an optional fraction)");
        }
        out.emplace_back(key, std::move(value));
        break;
      case QueryKind::signal: {
        if (value.empty()) {
          break;  // dockerd's default (SIGKILL), as without it
        }
        auto s = signal(value);
        if (!s) {
          return bad_value("a signal name or number");
        }
        out.emplace_back(key, std::move(*s));
        break;
      }
      case QueryKind::filters: {
        if (value.empty()) {
          break;  // no filters, as without it
        }
        auto f = parse_filters(value);
        if (!f) {
          return std::unexpected(Decision::deny(400, "invalid filter '" + value + "'",
                                                "query.filters"));
        }
        for (const auto& [filter, ignored] : *f) {
          if (std::find(spec->values.begin(), spec->values.end(), filter) == spec->values.end()) {
            return std::unexpected(not_allowed("filter '" + filter + "' is not accepted on " +
                                               std::string(route_name) +
                                               " (accepted: " + join(spec->values) + ")"));
          }
        }
        out.emplace_back(key, serialize_filters(*f));
        break;
      }
      case QueryKind::judged:
        if (value.size() > static_cast<std::size_t>(spec->max)) {
          return bad_value("at most " + std::to_string(spec->max) + " bytes");
        }
        out.emplace_back(key, std::move(value));
        break;
      case QueryKind::ignored:
      case QueryKind::refused:
        break;
    }
  }
  return build_query(out);
}

}  // namespace berth::policy
