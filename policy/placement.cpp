#include "policy/placement.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include <re2/re2.h>

#include "policy/policy.hpp"
#include "policy/units.hpp"

namespace berth::policy {

namespace {

constexpr std::string_view constraints_label = "com.docker.swarm.constraints";
constexpr std::string_view affinities_label = "com.docker.swarm.affinities";

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Swarm's key rule ([a-z_][a-z0-9-_]+, case-insensitive), with '.' as Triton allows, so the
// dotted engine labels operators use (com.example.zone) can be named; one character is enough.
bool valid_key(std::string_view key) {
  if (key.empty() || !(is_alpha(key.front()) || key.front() == '_')) {
    return false;
  }
  return std::all_of(key.begin(), key.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.';
  });
}

// Swarm's value alphabet (expr.go): letters, digits and -:_ whitespace .*/()?+[]\^$|, plus '@'
// so an image can be named by digest. Anything else is refused rather than guessed at.
bool valid_value(std::string_view value) {
  constexpr std::string_view extra = "-:_ \t.*/()?+[]\\^$|@";
  return !value.empty() && std::all_of(value.begin(), value.end(), [&](char c) {
    return is_alpha(c) || is_digit(c) || extra.find(c) != std::string_view::npos;
  });
}

std::expected<std::shared_ptr<const re2::RE2>, std::string> compile(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(1 << 20);  // a tenant's pattern; RE2 runs in linear time whatever it is
  auto re =
      std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    return std::unexpected(re->error());
  }
  return re;
}

std::string_view kind_name(Expression::Kind kind) {
  return kind == Expression::Kind::constraint ? "constraint" : "affinity";
}

std::expected<void, std::string> add_expression(std::string_view text, Expression::Kind kind,
                                                Author author, PlacementRules& rules) {
  auto e = parse_expression(text, kind, author);
  if (!e) {
    return std::unexpected(std::move(e.error()));
  }
  auto& list = kind == Expression::Kind::constraint ? rules.constraints : rules.affinities;
  list.push_back(std::move(*e));
  return {};
}

std::expected<void, std::string> add_label(const nlohmann::json& labels, std::string_view name,
                                           Expression::Kind kind, Author author,
                                           PlacementRules& rules) {
  const auto it = labels.find(std::string(name));
  if (it == labels.end()) {
    return {};
  }
  const std::string where = "label " + std::string(name);
  if (!it->is_string()) {
    return std::unexpected(where + " must be a string holding a JSON array of expressions");
  }
  const auto list = nlohmann::json::parse(it->get_ref<const std::string&>(), nullptr, false);
  if (!list.is_array()) {
    return std::unexpected(where +
                           " is not a JSON array of expressions: " + it->get<std::string>());
  }
  for (const auto& item : list) {
    if (!item.is_string()) {
      return std::unexpected(where + " holds a non-string: " + item.dump());
    }
    if (auto added = add_expression(item.get<std::string>(), kind, author, rules); !added) {
      return std::unexpected(where + ": " + added.error());
    }
  }
  return {};
}

std::string format_factor(double f) {
  std::string s = std::to_string(std::round(f * 100) / 100);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') {
    s.pop_back();
  }
  return s;
}

// CPUs to two decimals: "0.01", not the "0.008868896" of a leftover reservation.
std::string format_cpu(std::int64_t nano_cpus) {
  constexpr std::int64_t step = 10'000'000;
  return units::format_cpus((nano_cpus + step / 2) / step * step);
}

std::string format_port(const HostPort& p) {
  return std::to_string(p.port) + (p.udp ? "/udp" : "/tcp");
}

std::int64_t scaled(std::int64_t amount, double factor) {
  return static_cast<std::int64_t>(static_cast<double>(amount) * factor);
}

// The requesting tenant's presence, found by host name without a map per decision: the few
// hosts a tenant is on, sorted once, then a binary search per host.
class PresenceIndex {
 public:
  explicit PresenceIndex(const std::vector<TenantPresence>& presence) {
    if (presence.empty()) {
      return;
    }
    sorted_.reserve(presence.size());
    for (const auto& p : presence) {
      sorted_.push_back(&p);
    }
    std::sort(sorted_.begin(), sorted_.end(),
              [](const TenantPresence* a, const TenantPresence* b) { return a->host < b->host; });
  }

  const TenantPresence* find(const std::string& host) const {
    if (sorted_.empty()) {
      return nullptr;
    }
    const auto it = std::lower_bound(
        sorted_.begin(), sorted_.end(), host,
        [](const TenantPresence* p, const std::string& name) { return p->host < name; });
    return it != sorted_.end() && (*it)->host == host ? *it : nullptr;
  }

 private:
  std::vector<const TenantPresence*> sorted_;
};

struct Context {
  const PlacementRequest& request;
  const PlacementOptions& options;
  Amount demand;
};

std::string_view trait_of(const HostState& host, const std::string& key) {
  const auto it = std::lower_bound(host.traits.begin(), host.traits.end(), key,
                                   [](const std::pair<std::string, std::string>& t,
                                      const std::string& k) { return t.first < k; });
  return it != host.traits.end() && it->first == key ? std::string_view(it->second)
                                                     : std::string_view();
}

bool any_container_matches(const Expression& e, const TenantPresence* presence) {
  if (presence == nullptr) {
    return false;
  }
  return std::any_of(presence->container_names.begin(), presence->container_names.end(),
                     [&](const std::string& name) { return e.matches(name); });
}

// Only shared images and the tenant's own: an affinity must not reveal whether another
// tenant's image exists anywhere.
bool any_image_matches(const Expression& e, const HostState& host, const std::string& tenant) {
  for (const auto& image : host.images) {
    if (!image.owner.empty() && image.owner != tenant) {
      continue;
    }
    if (e.matches(image.id) || std::any_of(image.references.begin(), image.references.end(),
                                           [&](const std::string& r) { return e.matches(r); })) {
      return true;
    }
  }
  return false;
}

bool satisfied(const Expression& e, const HostState& host, const TenantPresence* presence,
               const std::string& tenant) {
  bool found = false;
  if (e.kind == Expression::Kind::affinity) {
    found = e.key == "container" ? any_container_matches(e, presence)
                                 : any_image_matches(e, host, tenant);
  } else if (e.key == "node") {
    found = e.matches(host.name);
  } else {
    found = e.matches(trait_of(host, e.key));
  }
  return e.equal ? found : !found;
}

std::optional<Rejection> hard_rule(const std::vector<Expression>& rules, Refusal why,
                                   const HostState& host, const TenantPresence* presence,
                                   const std::string& tenant, bool pins) {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if ((pins || !rules[i].soft) && !satisfied(rules[i], host, presence, tenant)) {
      return Rejection{0, why, static_cast<std::uint32_t>(i), 0, 0};
    }
  }
  return std::nullopt;
}

// Whether the host may run the tenant's container at all, whatever its load.
std::optional<Rejection> eligibility(const HostState& host, const TenantPresence* presence,
                                     const Context& ctx) {
  if (!host.healthy) {
    return Rejection{0, Refusal::unhealthy, 0, 0, 0};
  }
  if (host.cordoned) {
    return Rejection{0, Refusal::cordoned, 0, 0, 0};
  }
  const auto& r = ctx.request;
  if (auto no = hard_rule(r.pins, Refusal::pin, host, presence, r.tenant, true)) {
    return no;
  }
  for (std::size_t i = 0; i < r.dependencies.size(); ++i) {
    if (r.dependencies[i].host != host.name) {
      return Rejection{0, Refusal::dependency, static_cast<std::uint32_t>(i), 0, 0};
    }
  }
  if (r.image_required &&
      !std::binary_search(host.image_ids.begin(), host.image_ids.end(), r.image_id)) {
    return Rejection{0, Refusal::image, 0, 0, 0};
  }
  if (auto no =
          hard_rule(r.rules.constraints, Refusal::constraint, host, presence, r.tenant, false)) {
    return no;
  }
  return hard_rule(r.rules.affinities, Refusal::affinity, host, presence, r.tenant, false);
}

std::optional<Rejection> over(Refusal why, std::int64_t needed, std::int64_t left) {
  if (needed <= left) {
    return std::nullopt;
  }
  return Rejection{0, why, 0, needed, std::max<std::int64_t>(left, 0)};
}

// Whether the host has room: its ports, then reservations under the overcommit, then (with a
// snapshot) what it really uses under the headroom.
std::optional<Rejection> room(const HostState& host, const Context& ctx) {
  const auto& ports = ctx.request.ports;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (std::binary_search(host.ports_in_use.begin(), host.ports_in_use.end(), ports[i])) {
      return Rejection{0, Refusal::port, static_cast<std::uint32_t>(i), 0, 0};
    }
  }
  const Amount& cap = host.capacity;
  const Amount& d = ctx.demand;
  if (auto no = over(Refusal::reserved_memory, d.memory,
                     scaled(cap.memory, host.memory_overcommit) - host.reserved.memory)) {
    return no;
  }
  if (auto no = over(Refusal::reserved_cpu, d.nano_cpus,
                     scaled(cap.nano_cpus, host.cpu_overcommit) - host.reserved.nano_cpus)) {
    return no;
  }
  if (!host.measured) {
    return std::nullopt;
  }
  const Amount& m = *host.measured;
  if (auto no = over(
          Refusal::measured_memory, d.memory,
          scaled(cap.memory, ctx.options.memory_headroom) - m.memory - host.unmeasured.memory)) {
    return no;
  }
  return over(
      Refusal::measured_cpu, d.nano_cpus,
      scaled(cap.nano_cpus, ctx.options.cpu_headroom) - m.nano_cpus - host.unmeasured.nano_cpus);
}

// What fraction of the host stays free once the container is there: measured when the host
// has a snapshot, else by reservations.
struct Dimension {
  std::int64_t capacity;
  double overcommit;
  double headroom;
  std::int64_t reserved;
  bool measured;
  std::int64_t used;  ///< measured plus unmeasured, when measured
};

double free_fraction(const Dimension& dim, std::int64_t demand) {
  const auto [capacity, overcommit, headroom, reserved, measured, used] = dim;
  if (capacity <= 0) {
    return 0;
  }
  const double cap = static_cast<double>(capacity);
  if (measured) {
    return (cap * headroom - static_cast<double>(used + demand)) / cap;
  }
  return (cap * overcommit - static_cast<double>(reserved + demand)) / (cap * overcommit);
}

double soft_score(const std::vector<Expression>& rules, const HostState& host,
                  const TenantPresence* presence, const std::string& tenant) {
  double n = 0;
  for (const auto& e : rules) {
    if (e.soft && satisfied(e, host, presence, tenant)) {
      n += 1;
    }
  }
  return n;
}

double score(const HostState& host, const TenantPresence* presence, const Context& ctx) {
  const auto& o = ctx.options;
  const bool measured = host.measured.has_value();
  const Amount used = measured ? *host.measured : Amount{};
  const Dimension memory{host.capacity.memory,
                         host.memory_overcommit,
                         o.memory_headroom,
                         host.reserved.memory,
                         measured,
                         used.memory + host.unmeasured.memory};
  const Dimension cpu{host.capacity.nano_cpus,
                      host.cpu_overcommit,
                      o.cpu_headroom,
                      host.reserved.nano_cpus,
                      measured,
                      used.nano_cpus + host.unmeasured.nano_cpus};
  double s = o.weight_free_memory * free_fraction(memory, ctx.demand.memory);
  s += o.weight_free_cpu * free_fraction(cpu, ctx.demand.nano_cpus);
  const std::uint32_t mine = presence != nullptr ? presence->containers : 0;
  s += o.weight_spread / (1.0 + static_cast<double>(mine));
  const auto& r = ctx.request;
  if (!r.image_id.empty() &&
      std::binary_search(host.image_ids.begin(), host.image_ids.end(), r.image_id)) {
    s += o.weight_image;
  }
  if (!r.rules.constraints.empty() || !r.rules.affinities.empty()) {
    s += o.weight_soft * (soft_score(r.rules.constraints, host, presence, r.tenant) +
                          soft_score(r.rules.affinities, host, presence, r.tenant));
  }
  return s;
}

std::string dependency_text(const Dependency& d) {
  switch (d.kind) {
    case DependencyKind::volume:
      return "volume " + d.object;
    case DependencyKind::volumes_from:
      return "container " + d.object + " (--volumes-from)";
    case DependencyKind::network_container:
      return "container " + d.object + " (--network container:" + d.object + ")";
    case DependencyKind::network:
      return "network " + d.object;
    case DependencyKind::image:
      return "image " + d.object;
  }
  return d.object;
}

// The tenant's words for one kind of refusal, from its own request only.
std::string tenant_clause(const Rejection& r, const PlacementRequest& request) {
  switch (r.why) {
    case Refusal::unhealthy:
    case Refusal::cordoned:
      return "host unavailable";
    case Refusal::pin:
      return "outside this tenant's placement policy";
    case Refusal::dependency:
      return dependency_text(request.dependencies[r.item]) + " is on another host";
    case Refusal::image:
      return "image not present";
    case Refusal::constraint:
      return "constraint " + request.rules.constraints[r.item].str() + " not met";
    case Refusal::affinity:
      return "affinity " + request.rules.affinities[r.item].str() + " not met";
    case Refusal::port:
      return "port " + format_port(request.ports[r.item]) + " in use";
    case Refusal::reserved_memory:
      return "not " + units::format_size(r.needed) + " of memory left to reserve";
    case Refusal::reserved_cpu:
      return "not " + format_cpu(r.needed) + " CPUs left to reserve";
    case Refusal::measured_memory:
      return "not " + units::format_size(r.needed) + " of memory free";
    case Refusal::measured_cpu:
      return "not " + format_cpu(r.needed) + " CPUs free";
  }
  return "refused";
}

}  // namespace

std::string Expression::str() const {
  return key + (equal ? "==" : "!=") + (soft ? "~" : "") + value;
}

bool Expression::matches(std::string_view what) const {
  switch (match) {
    case Match::exact:
      return what == value;
    case Match::glob:
      // '.' is itself: Swarm made a glob a regular expression where it matched anything;
      // Triton and berth do not.
      return star_match(value, what);
    case Match::regex:
      return regex && RE2::PartialMatch(re2::StringPiece(what.data(), what.size()), *regex);
  }
  return false;
}

std::expected<Expression, std::string> parse_expression(std::string_view text,
                                                        Expression::Kind kind, Author author) {
  const std::string quoted = std::string(kind_name(kind)) + " '" + std::string(text) + "'";
  // Swarm looks for "==" first, then "!=" (expr.go); keys hold neither.
  bool equal = true;
  std::size_t op = text.find("==");
  if (op == std::string_view::npos) {
    equal = false;
    op = text.find("!=");
  }
  if (op == std::string_view::npos) {
    return std::unexpected(quoted + ": expected KEY==VALUE or KEY!=VALUE (soft: ==~ or !=~)");
  }
  Expression e;
  e.kind = kind;
  e.equal = equal;
  const std::string_view key = text.substr(0, op);
  std::string_view value = text.substr(op + 2);
  if (!valid_key(key)) {
    return std::unexpected(quoted +
                           ": the key must be letters, digits, '-', '_' or '.', "
                           "starting with a letter or '_'");
  }
  e.key = lowercase(key);
  if (!value.empty() && value.front() == '~') {
    e.soft = true;
    value.remove_prefix(1);
  }
  if (!valid_value(value)) {
    return std::unexpected(quoted +
                           ": the value must be non-empty letters, digits or "
                           "-:_.*/()?+[]\\^$|@ (a glob with '*' or a /regex/)");
  }
  e.value = std::string(value);
  if (kind == Expression::Kind::affinity && e.key != "container" && e.key != "image") {
    return std::unexpected(quoted +
                           ": an affinity names a container or an image "
                           "(container==NAME, image==NAME)");
  }
  if (kind == Expression::Kind::constraint && e.key == "node" && author == Author::tenant) {
    return std::unexpected(quoted +
                           ": tenants cannot choose hosts by name; constrain on a "
                           "host trait instead");
  }
  if (value.size() >= 3 && value.front() == '/' && value.back() == '/') {
    auto re = compile(value.substr(1, value.size() - 2));
    if (!re) {
      return std::unexpected(quoted + ": invalid regular expression: " + re.error());
    }
    e.match = Expression::Match::regex;
    e.regex = std::move(*re);
  } else if (value.find('*') != std::string_view::npos) {
    e.match = Expression::Match::glob;
  }
  return e;
}

std::expected<PlacementRules, std::string> parse_placement_rules(const nlohmann::json& body,
                                                                 Author author) {
  PlacementRules rules;
  if (!body.is_object()) {
    return rules;
  }
  if (const auto env = body.find("Env"); env != body.end() && env->is_array()) {
    for (const auto& entry : *env) {
      if (!entry.is_string()) {
        continue;
      }
      const std::string_view s = entry.get_ref<const std::string&>();
      const auto colon = s.find(':');
      const std::string_view prefix = s.substr(0, colon);
      if (colon == std::string_view::npos || (prefix != "constraint" && prefix != "affinity")) {
        continue;
      }
      const auto kind =
          prefix == "constraint" ? Expression::Kind::constraint : Expression::Kind::affinity;
      if (auto added = add_expression(s.substr(colon + 1), kind, author, rules); !added) {
        return std::unexpected("Env " + added.error());
      }
    }
  }
  if (const auto labels = body.find("Labels"); labels != body.end() && labels->is_object()) {
    if (auto ok =
            add_label(*labels, constraints_label, Expression::Kind::constraint, author, rules);
        !ok) {
      return std::unexpected(std::move(ok.error()));
    }
    if (auto ok = add_label(*labels, affinities_label, Expression::Kind::affinity, author, rules);
        !ok) {
      return std::unexpected(std::move(ok.error()));
    }
  }
  return rules;
}

std::vector<HostPort> fixed_host_ports(const nlohmann::json& port_map) {
  std::vector<HostPort> out;
  if (!port_map.is_object()) {
    return out;
  }
  for (const auto& [key, bindings] : port_map.items()) {
    const bool udp = key.ends_with("/udp");
    for (const auto& b : bindings.is_array() ? bindings : nlohmann::json::array()) {
      const auto& port = b.is_object() ? b.value("HostPort", nlohmann::json()) : nlohmann::json();
      if (!port.is_string()) {
        continue;
      }
      const std::string text = port.get<std::string>();
      unsigned value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size() && value > 0 && value < 65536) {
        out.push_back({static_cast<std::uint16_t>(value), udp});
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void normalize(HostState& host) {
  for (auto& [key, value] : host.traits) {
    key = lowercase(key);
  }
  std::sort(host.traits.begin(), host.traits.end());
  std::sort(host.ports_in_use.begin(), host.ports_in_use.end());
  std::sort(host.image_ids.begin(), host.image_ids.end());
}

Amount demand_of(Amount limits, const PlacementOptions& options) {
  return Amount{limits.nano_cpus > 0 ? limits.nano_cpus : options.default_demand.nano_cpus,
                limits.memory > 0 ? limits.memory : options.default_demand.memory};
}

Amount accounted(Amount limits, std::optional<Amount> p95, const PlacementOptions& options) {
  const Amount d = demand_of(limits, options);
  if (!p95) {
    return d;
  }
  return Amount{std::max(d.nano_cpus, p95->nano_cpus), std::max(d.memory, p95->memory)};
}

Placement place(std::span<const HostState> hosts, const PlacementRequest& request,
                const PlacementOptions& options) {
  Placement out;
  out.rejections.reserve(hosts.size());
  const Context ctx{request, options, demand_of(request.limits, options)};
  const PresenceIndex presence(request.presence);
  for (std::uint32_t i = 0; i < hosts.size(); ++i) {
    const HostState& host = hosts[i];
    const TenantPresence* mine = presence.find(host.name);
    auto no = eligibility(host, mine, ctx);
    if (!no) {
      no = room(host, ctx);
    }
    if (no) {
      no->host = i;
      out.rejections.push_back(*no);
      continue;
    }
    const double s = score(host, mine, ctx);
    if (!out.host || s > out.score || (s == out.score && host.name < hosts[*out.host].name)) {
      out.host = i;
      out.score = s;
    }
  }
  out.measured = out.host && hosts[*out.host].measured.has_value();
  return out;
}

std::string describe(const Rejection& r, std::span<const HostState> hosts,
                     const PlacementRequest& request, const PlacementOptions& options) {
  const HostState& host = hosts[r.host];
  switch (r.why) {
    case Refusal::unhealthy:
      return "unhealthy";
    case Refusal::cordoned:
      return "cordoned";
    case Refusal::pin:
      return "outside the tenant's placement pins (" + request.pins[r.item].str() + ")";
    case Refusal::dependency:
      return "does not hold " + dependency_text(request.dependencies[r.item]);
    case Refusal::image:
      return "does not hold image " + request.image_id;
    case Refusal::constraint:
      return "constraint " + request.rules.constraints[r.item].str() + " not met";
    case Refusal::affinity:
      return "affinity " + request.rules.affinities[r.item].str() + " not met";
    case Refusal::port:
      return "port " + format_port(request.ports[r.item]) + " in use";
    case Refusal::reserved_memory:
      return "memory: needs " + units::format_size(r.needed) + ", " + units::format_size(r.left) +
             " left under the " + format_factor(host.memory_overcommit) + "x overcommit";
    case Refusal::reserved_cpu:
      return "CPU: needs " + format_cpu(r.needed) + ", " + format_cpu(r.left) + " left under the " +
             format_factor(host.cpu_overcommit) + "x overcommit";
    case Refusal::measured_memory:
      return "measured free memory " + units::format_size(r.left) + " < " +
             units::format_size(r.needed) + " (headroom " + format_factor(options.memory_headroom) +
             ")";
    case Refusal::measured_cpu:
      return "measured free CPU " + format_cpu(r.left) + " < " + format_cpu(r.needed) +
             " (headroom " + format_factor(options.cpu_headroom) + ")";
  }
  return "refused";
}

std::vector<std::string> audit_detail(const Placement& placement, std::span<const HostState> hosts,
                                      const PlacementRequest& request,
                                      const PlacementOptions& options) {
  std::vector<std::string> lines;
  lines.reserve(placement.rejections.size() + 1);
  if (placement.host) {
    lines.push_back("placed on " + hosts[*placement.host].name + " (score " +
                    format_factor(placement.score) +
                    (placement.measured ? ")" : "; no meter snapshot, reservations only)"));
  } else {
    lines.emplace_back("no host fits");
  }
  for (const auto& r : placement.rejections) {
    lines.push_back(hosts[r.host].name + ": " + describe(r, hosts, request, options));
  }
  return lines;
}

std::string tenant_refusal(const Placement& placement, const PlacementRequest& request) {
  struct Count {
    std::string clause;
    std::size_t hosts = 0;
  };

  std::vector<Count> counts;
  for (const auto& r : placement.rejections) {
    std::string clause = tenant_clause(r, request);
    const auto it = std::find_if(counts.begin(), counts.end(),
                                 [&](const Count& c) { return c.clause == clause; });
    if (it != counts.end()) {
      ++it->hosts;
    } else {
      counts.push_back({std::move(clause), 1});
    }
  }
  if (counts.empty()) {
    return "berth: no host can run this container: the fleet has no hosts";
  }
  std::stable_sort(counts.begin(), counts.end(),
                   [](const Count& a, const Count& b) { return a.hosts > b.hosts; });
  // The reasons, most common first, without counts: how many hosts there are, and how many
  // are busy with other tenants' ports or memory, is not the tenant's to know.
  std::string message = "berth: no host can run this container: ";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    message += (i > 0 ? "; " : "") + counts[i].clause;
  }
  return message;
}

}  // namespace berth::policy
