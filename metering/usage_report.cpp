#include "metering/usage_report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "metering/http.hpp"
#include "policy/vocabulary.hpp"

namespace berth::metering {
namespace {

using nlohmann::json;
using Labels = std::map<std::string, std::string>;

constexpr std::string_view cpu_metric = "berth_tenant_cpu_seconds_total";
constexpr std::string_view memory_metric = "berth_tenant_memory_byte_seconds_total";
constexpr std::string_view first_seen_metric = "berth_tenant_first_seen_timestamp_seconds";

struct Sample {
  Labels labels;  ///< without __name__
  double value = 0.0;
};

/// Series identity across metrics: every label but the name.
std::string series_key(const Labels& labels) {
  std::string key;
  for (const auto& [k, v] : labels) {
    key.append(k).append("=").append(v).append("\x1f");
  }
  return key;
}

std::string quote(std::string_view v) {
  std::string out = "\"";
  for (const char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::expected<double, std::string> sample_value(const json& pair) {
  if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string()) {
    return std::unexpected("malformed sample");
  }
  const std::string text = pair[1].get<std::string>();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v)) {
    return std::unexpected("non-numeric sample '" + text + "'");
  }
  return v;
}

std::expected<json, std::string> api_data(const PrometheusQuery& query, const std::string& expr,
                                          std::int64_t at) {
  auto body = query("/api/v1/query?query=" + url_encode(expr) + "&time=" + std::to_string(at));
  if (!body) {
    return std::unexpected(body.error());
  }
  const json doc = json::parse(*body, nullptr, false);
  if (!doc.is_object()) {
    return std::unexpected("Prometheus answered something that is not JSON");
  }
  if (doc.value("status", std::string()) != "success") {
    return std::unexpected("Prometheus refused '" + expr + "': " + doc.value("error", std::string()));
  }
  const auto data = doc.find("data");
  if (data == doc.end() || !data->is_object() || !data->contains("result") ||
      !(*data)["result"].is_array()) {
    return std::unexpected("Prometheus answer without data.result");
  }
  return *data;
}

Labels labels_of(const json& metric) {
  Labels labels;
  if (metric.is_object()) {
    for (const auto& [k, v] : metric.items()) {
      if (k != "__name__" && v.is_string()) {
        labels[k] = v.get<std::string>();
      }
    }
  }
  return labels;
}

/// An instant query whose result is a vector: series key → sample.
std::expected<std::map<std::string, Sample>, std::string> instant(const PrometheusQuery& query,
                                                                  const std::string& expr,
                                                                  std::int64_t at) {
  auto data = api_data(query, expr, at);
  if (!data) {
    return std::unexpected(data.error());
  }
  if (data->value("resultType", std::string()) != "vector") {
    return std::unexpected("'" + expr + "' did not give a vector");
  }
  std::map<std::string, Sample> out;
  for (const json& r : (*data)["result"]) {
    auto v = sample_value(r.value("value", json()));
    if (!v) {
      return std::unexpected(v.error());
    }
    Sample s{labels_of(r.value("metric", json())), *v};
    out[series_key(s.labels)] = std::move(s);
  }
  return out;
}

/// The raw samples of one series in (at - range, at].
std::expected<std::vector<double>, std::string> raw_samples(const PrometheusQuery& query,
                                                            std::string_view metric,
                                                            const Labels& labels,
                                                            std::int64_t range, std::int64_t at) {
  std::string selector = "{__name__=" + quote(metric);
  for (const auto& [k, v] : labels) {
    selector += "," + k + "=" + quote(v);
  }
  selector += "}[" + std::to_string(range) + "s]";
  auto data = api_data(query, selector, at);
  if (!data) {
    return std::unexpected(data.error());
  }
  std::vector<double> values;
  for (const json& r : (*data)["result"]) {
    const json list = r.value("values", json());
    if (!list.is_array()) {
      continue;
    }
    for (const json& pair : list) {
      auto v = sample_value(pair);
      if (!v) {
        return std::unexpected(v.error());
      }
      values.push_back(*v);
    }
  }
  return values;
}

struct MetricUsage {
  std::map<std::string, double> per_tenant;
  std::map<std::string, std::vector<std::string>> notes;
};

std::expected<MetricUsage, std::string> metric_usage(const UsageRequest& req,
                                                     std::string_view metric,
                                                     const PrometheusQuery& query) {
  const std::string filter = req.tenant ? "{tenant=" + quote(*req.tenant) + "}" : "";
  const std::string sel = std::string(metric) + filter;
  const std::int64_t range = req.to_unix - req.from_unix;
  const std::int64_t lb = req.lookback_seconds;
  const auto over = [&](std::string_view fn, std::int64_t seconds) {
    return std::string(fn) + "(" + sel + "[" + std::to_string(seconds) + "s])";
  };
  auto end = instant(query, over("last_over_time", range + lb), req.to_unix);
  auto start = end ? instant(query, over("last_over_time", lb), req.from_unix) : end;
  auto resets = start ? instant(query, over("resets", range), req.to_unix) : start;
  auto first_in_period = resets ? instant(query, over("min_over_time", range), req.to_unix) : resets;
  auto first_seen =
      first_in_period
          ? instant(query,
                    "last_over_time(" + std::string(first_seen_metric) + filter + "[" +
                        std::to_string(range + lb) + "s])",
                    req.to_unix)
          : first_in_period;
  if (!first_seen) {
    return std::unexpected(first_seen.error());
  }
  MetricUsage usage;
  for (const auto& [key, e] : *end) {
    const auto tenant_it = e.labels.find("tenant");
    if (tenant_it == e.labels.end()) {
      continue;
    }
    const std::string& tenant = tenant_it->second;
    auto& notes = usage.notes[tenant];
    double s = 0.0;
    if (const auto it = start->find(key); it != start->end()) {
      s = it->second.value;
    } else if (const auto fs = first_seen->find(key);
               fs != first_seen->end() && fs->second.value >= static_cast<double>(req.from_unix)) {
      s = 0.0;  // the tenant's counters started inside the period, at 0
    } else if (const auto fp = first_in_period->find(key); fp != first_in_period->end()) {
      s = fp->second.value;
      notes.push_back(std::string(metric) + ": no sample within " + std::to_string(lb) +
                      " s before the period start; billed from the first sample inside it");
    } else {
      continue;  // no sample inside the period at all: nothing to bill
    }
    double delta = e.value - s;
    const auto r = resets->find(key);
    if ((r != resets->end() && r->second.value > 0) || delta < 0) {
      auto values = raw_samples(query, metric, e.labels, range, req.to_unix);
      if (!values) {
        return std::unexpected(values.error());
      }
      double prev = s;
      delta = 0.0;
      for (const double v : *values) {
        // A counter that went down restarted from 0.
        delta += v < prev ? v : v - prev;
        prev = v;
      }
      notes.push_back(std::string(metric) + ": counter reset inside the period, summed piecewise");
    }
    usage.per_tenant[tenant] += delta;
  }
  return usage;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n") == std::string_view::npos) {
    return std::string(s);
  }
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  return out + "\"";
}

int parse_int(std::string_view text, std::int64_t& out) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size() ? 0 : -1;
}

}  // namespace

std::expected<UsageReport, std::string> usage_report(const UsageRequest& request,
                                                     const Prices& prices,
                                                     const PrometheusQuery& query) {
  if (request.from_unix >= request.to_unix) {
    return std::unexpected("--from must be before --to");
  }
  if (request.tenant && !vocabulary::is_valid_tenant_id(*request.tenant)) {
    return std::unexpected("'" + *request.tenant + "' is not a valid tenant id");
  }
  auto cpu = metric_usage(request, cpu_metric, query);
  if (!cpu) {
    return std::unexpected(cpu.error());
  }
  auto mem = metric_usage(request, memory_metric, query);
  if (!mem) {
    return std::unexpected(mem.error());
  }
  UsageReport report;
  report.from_unix = request.from_unix;
  report.to_unix = request.to_unix;
  report.prices = prices;
  std::map<std::string, TenantBill> bills;
  for (const auto& [tenant, v] : cpu->per_tenant) {
    bills[tenant].cpu_seconds = v;
  }
  for (const auto& [tenant, v] : mem->per_tenant) {
    bills[tenant].memory_byte_seconds = v;
  }
  for (auto& [tenant, bill] : bills) {
    bill.tenant = tenant;
    bill.cost = price(prices, bill.cpu_seconds, bill.memory_byte_seconds);
    for (const auto* notes : {&cpu->notes, &mem->notes}) {
      if (const auto it = notes->find(tenant); it != notes->end()) {
        bill.notes.insert(bill.notes.end(), it->second.begin(), it->second.end());
      }
    }
    report.tenants.push_back(std::move(bill));
  }
  return report;
}

std::expected<PrometheusQuery, std::string> prometheus_http(std::string_view base_url) {
  auto ep = parse_endpoint(base_url);
  if (!ep) {
    return std::unexpected(ep.error());
  }
  return PrometheusQuery([endpoint = *ep](const std::string& target)
                             -> std::expected<std::string, std::string> {
    auto r = http_request(endpoint, "GET", target, {}, std::chrono::seconds(60));
    if (!r) {
      return std::unexpected("Prometheus: " + r.error());
    }
    // The API answers errors (400 bad query, 422 execution) with a JSON body worth showing.
    if (r->status != 200 && r->status != 400 && r->status != 422) {
      return std::unexpected("Prometheus: HTTP " + std::to_string(r->status));
    }
    return std::move(r->body);
  });
}

std::string format_time(std::int64_t unix_seconds) {
  const std::time_t t = unix_seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::expected<std::int64_t, std::string> parse_time(std::string_view text, std::int64_t now_unix) {
  if (text == "now") {
    return now_unix;
  }
  if (text.starts_with('@')) {
    std::int64_t v = 0;
    if (parse_int(text.substr(1), v) != 0) {
      return std::unexpected("bad unix time '" + std::string(text) + "'");
    }
    return v;
  }
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) !=
          3 ||
      consumed != 10) {
    return std::unexpected("bad time '" + s + "' (expected 2026-11-01[THH:MM[:SS]Z], @UNIX or now)");
  }
  std::string_view rest = text.substr(10);
  if (!rest.empty()) {
    int hh = 0;
    int mm = 0;
    int ss = 0;
    int n = 0;
    const std::string r(rest);
    if (std::sscanf(r.c_str(), "T%2d:%2d:%2dZ%n", &hh, &mm, &ss, &n) == 3 &&
        static_cast<std::size_t>(n) == r.size()) {
    } else if (n = 0, ss = 0; std::sscanf(r.c_str(), "T%2d:%2dZ%n", &hh, &mm, &n) == 2 &&
                              static_cast<std::size_t>(n) == r.size()) {
    } else {
      return std::unexpected("bad time '" + s + "' (times are UTC and end in Z)");
    }
    if (hh > 23 || mm > 59 || ss > 60) {
      return std::unexpected("bad time of day in '" + s + "'");
    }
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31) {
    return std::unexpected("bad date in '" + s + "'");
  }
  const int mday = tm.tm_mday;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = ::timegm(&tm);
  if (tm.tm_mday != mday) {
    return std::unexpected("no such day: '" + s + "'");
  }
  return static_cast<std::int64_t>(t);
}

std::string format_report(const UsageReport& report, ReportFormat format) {
  const Prices& p = report.prices;
  std::string out;
  if (format == ReportFormat::json) {
    json tenants = json::array();
    for (const TenantBill& b : report.tenants) {
      tenants.push_back({{"tenant", b.tenant},
                         {"cpu_seconds", b.cpu_seconds},
                         {"cpu_hours", b.cpu_hours()},
                         {"memory_byte_seconds", b.memory_byte_seconds},
                         {"memory_gib_hours", b.gib_hours()},
                         {"cost_cpu", b.cost.cpu},
                         {"cost_memory", b.cost.memory},
                         {"cost_total", b.cost.total()},
                         {"notes", b.notes}});
    }
    const json doc = {{"from", format_time(report.from_unix)},
                      {"to", format_time(report.to_unix)},
                      {"currency", p.currency},
                      {"price_per_cpu_hour", p.per_cpu_hour},
                      {"price_per_gib_hour", p.per_gib_hour},
                      {"tenants", tenants}};
    return doc.dump(2) + "\n";
  }
  if (format == ReportFormat::csv) {
    out = "tenant,from,to,cpu_seconds,cpu_hours,memory_byte_seconds,memory_gib_hours,cost_cpu,"
          "cost_memory,cost_total,currency\n";
    for (const TenantBill& b : report.tenants) {
      out += csv_field(b.tenant) + "," + format_time(report.from_unix) + "," +
             format_time(report.to_unix) + "," + fixed(b.cpu_seconds, 6) + "," +
             fixed(b.cpu_hours(), 6) + "," + fixed(b.memory_byte_seconds, 0) + "," +
             fixed(b.gib_hours(), 6) + "," + fixed(b.cost.cpu, 6) + "," +
             fixed(b.cost.memory, 6) + "," + fixed(b.cost.total(), 6) + "," +
             csv_field(p.currency) + "\n";
    }
    return out;
  }
  out = "usage from " + format_time(report.from_unix) + " to " + format_time(report.to_unix) +
        "; prices in " + p.currency + ": " + fixed(p.per_cpu_hour, 4) + " per CPU-hour, " +
        fixed(p.per_gib_hour, 4) + " per GiB-hour\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-24s %14s %14s %12s %12s %12s\n", "TENANT", "CPU-HOURS",
                "GIB-HOURS", "CPU", "MEMORY", "TOTAL");
  out += line;
  double cpu_h = 0;
  double gib_h = 0;
  Cost total;
  for (const TenantBill& b : report.tenants) {
    std::snprintf(line, sizeof line, "%-24s %14.4f %14.4f %12.4f %12.4f %12.4f\n",
                  b.tenant.c_str(), b.cpu_hours(), b.gib_hours(), b.cost.cpu, b.cost.memory,
                  b.cost.total());
    out += line;
    cpu_h += b.cpu_hours();
    gib_h += b.gib_hours();
    total.cpu += b.cost.cpu;
    total.memory += b.cost.memory;
  }
  std::snprintf(line, sizeof line, "%-24s %14.4f %14.4f %12.4f %12.4f %12.4f\n", "TOTAL", cpu_h,
                gib_h, total.cpu, total.memory, total.total());
  out += line;
  for (const TenantBill& b : report.tenants) {
    for (const std::string& note : b.notes) {
      out += "note: " + b.tenant + ": " + note + "\n";
    }
  }
  return out;
}

int usage_command(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  std::optional<std::string> from;
  std::optional<std::string> to;
  UsageRequest req;
  std::string format = "table";
  std::string prometheus = "http://127.0.0.1:9090";
  std::string prices_path = "/etc/berth/prices.yml";
  const auto bad = [&err](const std::string& message) {
    err << "berthctl: " << message << "\nusage:\n" << usage_command_help;
    return 2;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return bad(name + " needs a value");
    }
    if (name == "--from") {
      from = value;
    } else if (name == "--to") {
      to = value;
    } else if (name == "--tenant") {
      req.tenant = value;
    } else if (name == "--format") {
      format = value;
    } else if (name == "--prometheus") {
      prometheus = value;
    } else if (name == "--prices") {
      prices_path = value;
    } else if (name == "--lookback") {
      if (parse_int(value, req.lookback_seconds) != 0 || req.lookback_seconds <= 0) {
        return bad("--lookback needs a positive number of seconds");
      }
    } else {
      return bad("unknown option '" + name + "' for usage");
    }
  }
  if (!from || !to) {
    return bad("usage needs --from and --to");
  }
  const std::int64_t now = std::time(nullptr);
  auto f = parse_time(*from, now);
  auto t = parse_time(*to, now);
  if (!f || !t) {
    return bad(!f ? f.error() : t.error());
  }
  req.from_unix = *f;
  req.to_unix = *t;
  ReportFormat fmt = ReportFormat::table;
  if (format == "csv") {
    fmt = ReportFormat::csv;
  } else if (format == "json") {
    fmt = ReportFormat::json;
  } else if (format != "table") {
    return bad("--format is table, csv or json");
  }
  auto prices = load_prices(prices_path);
  if (!prices) {
    err << "berthctl: " << prices.error() << "\n";
    return 1;
  }
  auto query = prometheus_http(prometheus);
  if (!query) {
    err << "berthctl: --prometheus: " << query.error() << "\n";
    return 1;
  }
  auto report = usage_report(req, *prices, *query);
  if (!report) {
    err << "berthctl: " << report.error() << "\n";
    return 1;
  }
  out << format_report(*report, fmt);
  return 0;
}

}  // namespace berth::metering
