// `berthctl usage` against a fake Prometheus that evaluates the few query shapes the report
// uses over raw samples, so the invoice arithmetic is checked against hand-computed values.

#include "metering/usage_report.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

namespace {

namespace m = berth::metering;
using Labels = std::map<std::string, std::string>;

struct Series {
  Labels labels;  ///< including __name__
  std::vector<std::pair<std::int64_t, double>> samples;
};

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

class FakePrometheus {
 public:
  std::vector<Series> series;
  std::vector<std::string> queries;

  std::expected<std::string, std::string> operator()(const std::string& target) {
    const auto q = target.find("query=");
    const auto amp = target.find("&time=");
    const std::string expr = url_decode(target.substr(q + 6, amp - q - 6));
    const std::int64_t at = std::stoll(target.substr(amp + 6));
    queries.push_back(expr);
    static const std::regex fn(
        R"re(^(last_over_time|resets|min_over_time)\((\w+)(\{tenant="([a-z0-9-]*)"\})?\[(\d+)s\]\)$)re");
    static const std::regex raw(R"re(^\{__name__="(\w+)"(.*)\}\[(\d+)s\]$)re");
    std::smatch mt;
    nlohmann::json result = nlohmann::json::array();
    std::string type = "vector";
    if (std::regex_match(expr, mt, fn)) {
      const std::string f = mt[1];
      const std::string name = mt[2];
      const std::string tenant = mt[4];
      const std::int64_t range = std::stoll(mt[5]);
      for (const Series& s : series) {
        if (s.labels.at("__name__") != name || (!tenant.empty() && s.labels.at("tenant") != tenant)) {
          continue;
        }
        std::vector<double> in;
        for (const auto& [t, v] : s.samples) {
          if (t > at - range && t <= at) {
            in.push_back(v);
          }
        }
        if (in.empty()) {
          continue;
        }
        double value = in.back();
        if (f == "resets") {
          value = 0;
          for (std::size_t i = 1; i < in.size(); ++i) {
            value += in[i] < in[i - 1] ? 1 : 0;
          }
        } else if (f == "min_over_time") {
          value = *std::min_element(in.begin(), in.end());
        }
        nlohmann::json metric = nlohmann::json::object();
        for (const auto& [k, v] : s.labels) {
          if (k != "__name__") {
            metric[k] = v;
          }
        }
        std::ostringstream text;
        text.precision(17);
        text << value;
        result.push_back({{"metric", metric}, {"value", {at, text.str()}}});
      }
    } else if (std::regex_match(expr, mt, raw)) {
      type = "matrix";
      const std::string name = mt[1];
      const std::int64_t range = std::stoll(mt[3]);
      for (const Series& s : series) {
        if (s.labels.at("__name__") != name) {
          continue;
        }
        bool match = true;
        for (const auto& [k, v] : s.labels) {
          if (k != "__name__" && std::string(mt[2]).find("," + k + "=\"" + v + "\"") ==
                                     std::string::npos) {
            match = false;
          }
        }
        if (!match) {
          continue;
        }
        nlohmann::json values = nlohmann::json::array();
        for (const auto& [t, v] : s.samples) {
          if (t > at - range && t <= at) {
            values.push_back({t, std::to_string(v)});
          }
        }
        result.push_back({{"metric", s.labels}, {"values", values}});
      }
    } else {
      return nlohmann::json{{"status", "error"}, {"error", "fake cannot evaluate " + expr}}.dump();
    }
    return nlohmann::json{{"status", "success"}, {"data", {{"resultType", type}, {"result", result}}}}
        .dump();
  }
};

/// A counter sampled every 10 s from t0 with the given values.
Series counter(const std::string& name, const std::string& tenant, std::int64_t t0,
               std::vector<double> values, const std::string& instance = "h1:9471") {
  Series s;
  s.labels = {{"__name__", name}, {"tenant", tenant}, {"instance", instance}, {"job", "berth-meter"}};
  for (std::size_t i = 0; i < values.size(); ++i) {
    s.samples.emplace_back(t0 + static_cast<std::int64_t>(i) * 10, values[i]);
  }
  return s;
}

Series first_seen(const std::string& tenant, std::int64_t t0, std::size_t n, double when,
                  const std::string& instance = "h1:9471") {
  return counter("berth_tenant_first_seen_timestamp_seconds", tenant, t0,
                 std::vector<double>(n, when), instance);
}

const m::Prices prices{"EUR", 0.04, 0.005, 0};

m::UsageReport run(FakePrometheus& fake, std::int64_t from, std::int64_t to,
                   std::optional<std::string> tenant = std::nullopt) {
  m::UsageRequest req;
  req.from_unix = from;
  req.to_unix = to;
  req.tenant = std::move(tenant);
  req.lookback_seconds = 60;
  auto report = m::usage_report(req, prices, std::ref(fake));
  REQUIRE(report);
  return *report;
}

constexpr std::string_view cpu = "berth_tenant_cpu_seconds_total";
constexpr std::string_view mem = "berth_tenant_memory_byte_seconds_total";

}  // namespace

TEST_CASE("an invoice is the difference of the counters' values at the period boundaries",
          "[metering][usage]") {
  FakePrometheus fake;
  // 1000 + 10 s of CPU per 10 s sample; memory at 1 GiB constant: 10 GiB-s per 10 s.
  fake.series.push_back(counter(std::string(cpu), "acme", 1000, {100, 110, 120, 130, 140, 150}));
  const double gib = 1073741824.0;
  fake.series.push_back(counter(std::string(mem), "acme", 1000,
                                {0, 10 * gib, 20 * gib, 30 * gib, 40 * gib, 50 * gib}));
  fake.series.push_back(first_seen("acme", 1000, 6, 900));
  const auto report = run(fake, 1015, 1045);
  REQUIRE(report.tenants.size() == 1);
  const auto& b = report.tenants[0];
  // Last sample at or before 1015 is at 1010 (110); before 1045 at 1040 (140).
  CHECK(b.cpu_seconds == Approx(30));
  CHECK(b.memory_byte_seconds == Approx(30 * gib));
  CHECK(b.cost.cpu == Approx(30.0 / 3600 * 0.04));
  CHECK(b.cost.memory == Approx(30.0 / 3600 * 0.005));
  CHECK(b.notes.empty());
  for (const auto& q : fake.queries) {
    CAPTURE(q);
    CHECK(q.find("increase") == std::string::npos);
    CHECK(q.find("rate") == std::string::npos);
  }
}

TEST_CASE("consecutive periods add up to the whole, with nothing billed twice",
          "[metering][usage]") {
  FakePrometheus fake;
  fake.series.push_back(counter(std::string(cpu), "acme", 1000, {0, 7, 9, 30, 31, 50, 77}));
  fake.series.push_back(counter(std::string(mem), "acme", 1000, {0, 1, 2, 3, 4, 5, 6}));
  fake.series.push_back(first_seen("acme", 1000, 7, 1000));
  const double whole = run(fake, 995, 1060).tenants[0].cpu_seconds;
  const double a = run(fake, 995, 1025).tenants[0].cpu_seconds;
  const double b = run(fake, 1025, 1060).tenants[0].cpu_seconds;
  CHECK(whole == Approx(77));
  CHECK(a + b == Approx(whole));
}

TEST_CASE("a tenant whose counters started inside the period is billed from zero",
          "[metering][usage]") {
  FakePrometheus fake;
  fake.series.push_back(counter(std::string(cpu), "newco", 1050, {5, 15}));
  fake.series.push_back(counter(std::string(mem), "newco", 1050, {1, 2}));
  fake.series.push_back(first_seen("newco", 1050, 2, 1049));
  const auto report = run(fake, 1000, 1065);
  REQUIRE(report.tenants.size() == 1);
  CHECK(report.tenants[0].cpu_seconds == Approx(15));
  CHECK(report.tenants[0].notes.empty());
}

TEST_CASE("a series without data at the period start is billed from its first sample, with a note",
          "[metering][usage]") {
  FakePrometheus fake;
  // Counters existed long before (first seen at 10) but Prometheus has nothing before 1050.
  fake.series.push_back(counter(std::string(cpu), "old", 1050, {500, 510}));
  fake.series.push_back(counter(std::string(mem), "old", 1050, {1, 2}));
  fake.series.push_back(first_seen("old", 1050, 2, 10));
  const auto report = run(fake, 900, 1065);
  CHECK(report.tenants[0].cpu_seconds == Approx(10));
  CHECK_FALSE(report.tenants[0].notes.empty());
}

TEST_CASE("a counter reset inside the period is summed piece by piece", "[metering][usage]") {
  FakePrometheus fake;
  // The meter lost its state at 1030: its counter restarted from 0.
  fake.series.push_back(counter(std::string(cpu), "acme", 1000, {100, 110, 120, 4, 14, 24}));
  fake.series.push_back(counter(std::string(mem), "acme", 1000, {0, 0, 0, 0, 0, 0}));
  fake.series.push_back(first_seen("acme", 1000, 6, 10));
  const auto report = run(fake, 1005, 1055);
  // 100 -> 110 -> 120, reset to 4 (4 more), -> 14 -> 24: 20 + 4 + 20.
  CHECK(report.tenants[0].cpu_seconds == Approx(44));
  CHECK_FALSE(report.tenants[0].notes.empty());
}

TEST_CASE("several hosts' meters are summed per tenant and tenants can be selected",
          "[metering][usage]") {
  FakePrometheus fake;
  fake.series.push_back(counter(std::string(cpu), "acme", 1000, {0, 10, 20}, "h1:9471"));
  fake.series.push_back(counter(std::string(cpu), "acme", 1000, {5, 6, 7}, "h2:9471"));
  fake.series.push_back(counter(std::string(cpu), "globex", 1000, {1, 2, 3}, "h1:9471"));
  for (const char* t : {"acme", "globex"}) {
    fake.series.push_back(counter(std::string(mem), t, 1000, {0, 0, 0}));
    fake.series.push_back(first_seen(t, 1000, 3, 1));
  }
  fake.series.push_back(first_seen("acme", 1000, 3, 1, "h2:9471"));
  auto report = run(fake, 1000, 1020);
  REQUIRE(report.tenants.size() == 2);
  CHECK(report.tenants[0].tenant == "acme");
  CHECK(report.tenants[0].cpu_seconds == Approx(22));
  CHECK(report.tenants[1].cpu_seconds == Approx(2));
  report = run(fake, 1000, 1020, "globex");
  REQUIRE(report.tenants.size() == 1);
  CHECK(report.tenants[0].tenant == "globex");

  m::UsageRequest req{1000, 1020, std::string("not valid!"), 60};
  CHECK_FALSE(m::usage_report(req, prices, std::ref(fake)));
  req = {1020, 1000, std::nullopt, 60};
  CHECK_FALSE(m::usage_report(req, prices, std::ref(fake)));
}

TEST_CASE("a Prometheus error reaches the operator instead of an empty invoice",
          "[metering][usage]") {
  m::UsageRequest req{1000, 1020, std::nullopt, 60};
  const m::PrometheusQuery down = [](const std::string&) -> std::expected<std::string, std::string> {
    return std::unexpected("Prometheus: connect 127.0.0.1:9090: Connection refused");
  };
  auto r = m::usage_report(req, prices, down);
  REQUIRE_FALSE(r);
  CHECK(r.error().find("Connection refused") != std::string::npos);
}

TEST_CASE("invoices print as a table, CSV or JSON", "[metering][usage]") {
  m::UsageReport report;
  report.from_unix = 1793491200;  // 2026-11-01T00:00:00Z
  report.to_unix = 1796083200;    // 2026-12-01T00:00:00Z
  report.prices = prices;
  m::TenantBill b;
  b.tenant = "acme";
  b.cpu_seconds = 7200;
  b.memory_byte_seconds = 3600.0 * 1073741824.0;
  b.cost = m::price(prices, b.cpu_seconds, b.memory_byte_seconds);
  report.tenants.push_back(b);
  const auto table = m::format_report(report, m::ReportFormat::table);
  CHECK(table.find("2026-11-01T00:00:00Z") != std::string::npos);
  CHECK(table.find("acme") != std::string::npos);
  CHECK(table.find("2.0000") != std::string::npos);
  const auto csv = m::format_report(report, m::ReportFormat::csv);
  CHECK(csv.find("acme,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,7200.000000,2.000000,") == 
        csv.find('\n') + 1);
  const auto json = nlohmann::json::parse(m::format_report(report, m::ReportFormat::json));
  CHECK(json["tenants"][0]["cost_total"].get<double>() == Approx(0.085));
  CHECK(json["currency"] == "EUR");
}

TEST_CASE("period boundaries are UTC dates, times, unix seconds or now", "[metering][usage]") {
  CHECK(m::parse_time("2026-11-01", 0) == 1793491200);
  CHECK(m::parse_time("2026-11-01T01:02:03Z", 0) == 1793491200 + 3723);
  CHECK(m::parse_time("2026-11-01T01:02Z", 0) == 1793491200 + 3720);
  CHECK(m::parse_time("@1793491200", 0) == 1793491200);
  CHECK(m::parse_time("now", 42) == 42);
  CHECK_FALSE(m::parse_time("2026-02-30", 0));
  CHECK_FALSE(m::parse_time("2026-11-01T01:02:03", 0));
  CHECK_FALSE(m::parse_time("yesterday", 0));
  CHECK(m::format_time(1793491200) == "2026-11-01T00:00:00Z");
}

TEST_CASE("the usage command refuses a malformed command line with its usage",
          "[metering][usage]") {
  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string> missing{"--from", "2026-11-01"};
  CHECK(m::usage_command(missing, out, err) == 2);
  CHECK(err.str().find("--from and --to") != std::string::npos);
  const std::vector<std::string> bad_format{"--from", "2026-11-01", "--to", "now", "--format",
                                            "xml"};
  CHECK(m::usage_command(bad_format, out, err) == 2);
  const std::vector<std::string> no_prices{"--from",   "2026-11-01", "--to",
                                           "now",      "--prices",   "/nonexistent/prices.yml"};
  CHECK(m::usage_command(no_prices, out, err) == 1);
}
