#include "ctl/commands.hpp"

// berthctl: the operator's tool. Parses the command line and calls the pki and policy
// libraries; every decision lives there. Errors go to stderr as "berthctl: <message>" with exit
// status 1; a malformed command line prints the usage and exits 2.

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/operator_api.hpp"
#include "policy/diagnostic.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/policy.hpp"
#include "policy/policy_edit.hpp"
#include "policy/query.hpp"
#include "ctl/pki.hpp"

#ifdef BERTH_HAVE_METERING
#include "metering/usage_report.hpp"
#endif

namespace {

namespace pki = berth::ctl::pki;

constexpr int exit_error = 1;
constexpr int exit_usage = 2;

constexpr std::string_view usage_text =
    "usage:\n"
    "  berthctl ca init DIR [--host NAME_OR_IP]... [--days N]\n"
    "  berthctl cert issue --ca DIR (--tenant ID | --operator) --user NAME --out OUTDIR\n"
    "                      [--days N] [--backdate-days M] [--host HOST:PORT] [--key-type ec|rsa]\n"
    "  berthctl cert revoke --ca DIR CERTFILE\n"
    "  berthctl policy check FILE\n"
    "  berthctl host list POLICY_FILE\n"
    "  berthctl host cordon|uncordon HOST POLICY_FILE\n"
    "  berthctl migrate CONTAINER --to HOST [--url tcp://PROXY:PORT] [--cert-path DIR]\n"
    "  berthctl host drain HOST [--url tcp://PROXY:PORT] [--cert-path DIR]\n"
    "      (these two ask berth-proxy with an operator's certificate; defaults: DOCKER_HOST,\n"
    "       DOCKER_CERT_PATH; drain a host cordoned first)\n";

int usage(std::string_view message) {
  if (!message.empty()) {
    std::cerr << "berthctl: " << message << "\n";
  }
  std::cerr << usage_text;
#ifdef BERTH_HAVE_METERING
  std::cerr << berth::metering::usage_command_help;
#endif
  return exit_usage;
}

int error(std::string_view message) {
  std::cerr << "berthctl: " << message << "\n";
  return exit_error;
}

/// The arguments after the subcommand: positionals, and options that either take one value
/// ("--days 3" or "--days=3") or none ("--operator"). Unknown options are usage errors.
struct Args {
  std::vector<std::string> positionals;
  std::multimap<std::string, std::string> options;

  [[nodiscard]] std::optional<std::string> last(const std::string& name) const {
    auto [first, end] = options.equal_range(name);
    if (first == end) {
      return std::nullopt;
    }
    return std::prev(end)->second;
  }

  [[nodiscard]] std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    auto [first, end] = options.equal_range(name);
    for (auto it = first; it != end; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  [[nodiscard]] bool has(const std::string& name) const { return options.contains(name); }
};

struct OptionSpec {
  std::string_view name;
  bool takes_value;
  bool repeatable;
};

std::optional<Args> parse_args(const std::vector<std::string>& argv,
                               std::initializer_list<OptionSpec> specs, std::string& problem) {
  Args args;
  bool options_ended = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (options_ended || arg.size() < 2 || !arg.starts_with("-")) {
      args.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    const std::size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& s : specs) {
      if (s.name == name) {
        spec = &s;
      }
    }
    if (spec == nullptr) {
      problem = "unknown option " + name;
      return std::nullopt;
    }
    if (!spec->repeatable && args.has(name)) {
      problem = "option " + name + " given twice";
      return std::nullopt;
    }
    if (!spec->takes_value) {
      if (eq != std::string::npos) {
        problem = "option " + name + " takes no value";
        return std::nullopt;
      }
      args.options.emplace(name, "");
      continue;
    }
    if (eq != std::string::npos) {
      args.options.emplace(name, arg.substr(eq + 1));
    } else if (i + 1 < argv.size()) {
      args.options.emplace(name, argv[++i]);
    } else {
      problem = "option " + name + " needs a value";
      return std::nullopt;
    }
  }
  return args;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return value;
}

int ca_init(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv, {{"--host", true, true}, {"--days", true, false}}, problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 1) {
    return usage("ca init needs exactly one DIR");
  }
  pki::CaOptions options;
  options.hosts = args->all("--host");
  if (auto days = args->last("--days")) {
    auto n = parse_int(*days);
    if (!n) {
      return usage("--days needs a whole number, got '" + *days + "'");
    }
    options.server_days = *n;
  }
  auto result = pki::init_ca(args->positionals.front(), options);
  if (!result) {
    return error(result.error());
  }
  std::cout << "created CA in " << result->dir.string() << "\n";
  return 0;
}

// The value lands inside `--docker "host=...,ca=..."` and DOCKER_HOST, where a comma, quote or
// space would change the meaning of the printed command.
bool is_valid_host_port(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (text.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return false;
  }
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ',' || c == '"' || c == '\'' || c == '\\' || c == '/') {
      return false;
    }
  }
  return parse_int(text.substr(colon + 1)).has_value();
}

int cert_issue(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv,
                         {{"--ca", true, false},
                          {"--tenant", true, false},
                          {"--operator", false, false},
                          {"--user", true, false},
                          {"--out", true, false},
                          {"--days", true, false},
                          {"--backdate-days", true, false},
                          {"--host", true, false},
                          {"--key-type", true, false}},
                         problem);
  if (!args) {
    return usage(problem);
  }
  if (!args->positionals.empty()) {
    return usage("unexpected argument '" + args->positionals.front() + "'");
  }
  for (const char* required : {"--ca", "--user", "--out"}) {
    if (!args->has(required)) {
      return usage(std::string("cert issue needs ") + required);
    }
  }
  if (args->has("--tenant") == args->has("--operator")) {
    return usage("cert issue needs exactly one of --tenant ID or --operator");
  }
  pki::IssueOptions options;
  options.ca_dir = *args->last("--ca");
  options.user = *args->last("--user");
  options.out_dir = *args->last("--out");
  if (args->has("--tenant")) {
    options.tenant = *args->last("--tenant");
  }
  for (auto [name, target] :
       {std::pair{"--days", &options.days}, std::pair{"--backdate-days", &options.backdate_days}}) {
    if (auto text = args->last(name)) {
      auto n = parse_int(*text);
      if (!n) {
        return usage(std::string(name) + " needs a whole number, got '" + *text + "'");
      }
      *target = *n;
    }
  }
  if (auto key_type = args->last("--key-type")) {
    if (*key_type == "ec") {
      options.key_type = pki::KeyType::ec_p256;
    } else if (*key_type == "rsa") {
      options.key_type = pki::KeyType::rsa_3072;
    } else {
      return usage("--key-type is ec or rsa, got '" + *key_type + "'");
    }
  }
  const std::string host_port = args->last("--host").value_or("localhost:2376");
  if (!is_valid_host_port(host_port)) {
    return error("--host must be HOST:PORT, got '" + host_port + "'");
  }
  auto bundle = pki::issue_client_cert(options);
  if (!bundle) {
    return error(bundle.error());
  }
  std::cout << pki::describe_bundle(*bundle, host_port);
  return 0;
}

int cert_revoke(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv, {{"--ca", true, false}}, problem);
  if (!args) {
    return usage(problem);
  }
  if (!args->has("--ca")) {
    return usage("cert revoke needs --ca DIR");
  }
  if (args->positionals.size() != 1) {
    return usage("cert revoke needs exactly one CERTFILE");
  }
  auto revoked = pki::revoke_cert(*args->last("--ca"), args->positionals.front());
  if (!revoked) {
    return error(revoked.error());
  }
  std::cout << "revoked serial " << revoked->serial << "\n";
  return 0;
}

std::optional<std::string> read_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf()) || in.bad()) {
    return std::nullopt;
  }
  return text.str();
}

int policy_check(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv, {}, problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 1) {
    return usage("policy check needs exactly one FILE");
  }
  const std::string& file = args->positionals.front();
  const auto text = read_file(file);
  if (!text) {
    return error("cannot read " + file);
  }
  auto policy = berth::policy::parse_policy(*text, file);
  if (!policy) {
    std::string report = berth::policy::format(policy.error());
    if (!report.empty() && report.back() != '\n') {
      report += '\n';
    }
    std::cerr << report;
    return exit_error;
  }
  std::cout << file << ": ok\n";
  return 0;
}

// berthctl host cordon|uncordon HOST POLICY_FILE: the host's `cordoned:` in the policy file.
// A running berth-proxy sees the file change and reloads it (as on SIGHUP).
int host_cordon(const std::vector<std::string>& argv, bool cordoned) {
  std::string problem;
  auto args = parse_args(argv, {}, problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 2) {
    return usage(std::string("host ") + (cordoned ? "cordon" : "uncordon") +
                 " needs a HOST and the POLICY_FILE");
  }
  const std::string& host = args->positionals[0];
  const std::string& file = args->positionals[1];
  const auto text = read_file(file);
  if (!text) {
    return error("cannot read " + file);
  }
  const auto out = berth::policy::set_host_cordoned(*text, host, cordoned);
  if (!out) {
    return error(file + ": " + out.error());
  }
  const char* state = cordoned ? "cordoned" : "uncordoned";
  if (*out == *text) {
    std::cout << host << " is already " << state << " in " << file << "\n";
    return 0;
  }
  if (auto written = pki::replace_file(file, *out); !written) {
    return error(written.error());
  }
  std::cout << host << " " << state << " in " << file
            << "; berth-proxy reloads it (containers on it stay where they are)\n";
  return 0;
}

// berthctl host list POLICY_FILE: the fleet as the policy describes it.
int host_list(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv, {}, problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 1) {
    return usage("host list needs the POLICY_FILE");
  }
  const std::string& file = args->positionals.front();
  const auto text = read_file(file);
  if (!text) {
    return error("cannot read " + file);
  }
  const auto policy = berth::policy::parse_policy(*text, file);
  if (!policy) {
    return error(berth::policy::format(policy.error()));
  }
  std::cout << "HOST\tSTATE\tURL\tLABELS\tCAPACITY\tMETER\n";
  for (const auto& h : policy->hosts) {
    std::string labels;
    for (const auto& [key, value] : h.labels) {
      labels += (labels.empty() ? "" : ",") + key + "=" + value;
    }
    std::string capacity;
    if (h.nano_cpus) {
      capacity += std::to_string(*h.nano_cpus / 1'000'000'000) + " cpus";
    }
    if (h.memory) {
      capacity += (capacity.empty() ? "" : ", ") + std::to_string(*h.memory >> 20) + " MiB";
    }
    std::cout << h.name << "\t" << (h.cordoned ? "cordoned" : "schedulable") << "\t" << h.url
              << "\t" << (labels.empty() ? "-" : labels) << "\t"
              << (capacity.empty() ? "dockerd's" : capacity) << "\t"
              << (h.meter.empty() ? "-" : h.meter) << "\n";
  }
  return 0;
}

// The proxy berthctl asks, and the operator's certificates: the command line's, or the
// docker CLI's environment.
berth::ctl::ProxyEndpoint proxy_endpoint(const Args& args) {
  const char* docker_host = std::getenv("DOCKER_HOST");
  const char* cert_path = std::getenv("DOCKER_CERT_PATH");
  return {args.last("--url").value_or(docker_host != nullptr ? docker_host : ""),
          args.last("--cert-path").value_or(cert_path != nullptr ? cert_path : "")};
}

// berth-proxy's answer to an operator's POST: its JSON printed, or its message as the error.
int ask_proxy(const berth::ctl::ProxyEndpoint& endpoint, const std::string& target) {
  if (endpoint.url.empty() || endpoint.cert_path.empty()) {
    return usage("the proxy's address and an operator's certificates are needed (--url and "
                 "--cert-path, or DOCKER_HOST and DOCKER_CERT_PATH)");
  }
  const auto answer = berth::ctl::operator_post(endpoint, target, std::chrono::minutes(30));
  if (!answer) {
    return error(answer.error());
  }
  const auto doc = nlohmann::json::parse(answer->body, nullptr, false);
  if (answer->status != 200) {
    const bool said = doc.is_object() && doc.contains("message") && doc["message"].is_string();
    return error(said ? doc["message"].get<std::string>() : answer->body);
  }
  std::cout << (doc.is_object() ? doc.dump(2) : answer->body) << "\n";
  return 0;
}

// berthctl migrate CONTAINER --to HOST: berth-proxy moves the running container to HOST
// (proxy/migrate.cpp) and says how long each step took, or why it did not move it.
int migrate(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(
      argv, {{"--to", true, false}, {"--url", true, false}, {"--cert-path", true, false}},
      problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 1 || !args->has("--to")) {
    return usage("migrate needs one CONTAINER and --to HOST");
  }
  return ask_proxy(proxy_endpoint(*args),
                   "/containers/" + berth::policy::escape_path(args->positionals.front()) +
                       "/migrate?" + berth::policy::build_query({{"to", *args->last("--to")}}));
}

// berthctl host drain HOST: every running container of the cordoned HOST moved elsewhere, one
// at a time; what could not move is listed with the reason.
int host_drain(const std::vector<std::string>& argv) {
  std::string problem;
  auto args = parse_args(argv, {{"--url", true, false}, {"--cert-path", true, false}}, problem);
  if (!args) {
    return usage(problem);
  }
  if (args->positionals.size() != 1) {
    return usage("host drain needs one HOST");
  }
  return ask_proxy(proxy_endpoint(*args),
                   "/hosts/" + berth::policy::escape_path(args->positionals.front()) + "/drain");
}

}  // namespace

namespace berth::ctl {

int run(const std::vector<std::string>& all) {
  for (const std::string& arg : all) {
    if (arg == "--") {
      break;
    }
    if (arg == "--help" || arg == "-h") {
      std::cout << usage_text;
      return exit_usage;
    }
  }
#ifdef BERTH_HAVE_METERING
  if (!all.empty() && all[0] == "usage") {
    const std::vector<std::string> args(all.begin() + 1, all.end());
    return berth::metering::usage_command(args, std::cout, std::cerr);
  }
#endif
  if (all.size() < 2) {
    return usage(all.empty() ? "" : "missing subcommand");
  }
  const std::string command = all[0] + " " + all[1];
  const std::vector<std::string> rest(all.begin() + 2, all.end());
  if (all[0] == "migrate") {
    return migrate(std::vector<std::string>(all.begin() + 1, all.end()));
  }
  if (command == "host drain") {
    return host_drain(rest);
  }
  if (command == "ca init") {
    return ca_init(rest);
  }
  if (command == "cert issue") {
    return cert_issue(rest);
  }
  if (command == "cert revoke") {
    return cert_revoke(rest);
  }
  if (command == "policy check") {
    return policy_check(rest);
  }
  if (command == "host list") {
    return host_list(rest);
  }
  if (command == "host cordon" || command == "host uncordon") {
    return host_cordon(rest, command == "host cordon");
  }
  return usage("unknown command '" + command + "'");
}

}  // namespace berth::ctl
