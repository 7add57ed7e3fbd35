// A real Prometheus (Debian's `prometheus`, 2.42) scraping a real berth-meter: promtool's
// checks on the shipped config, rules and the meter's exposition; every dashboard panel's
// query answered with series; invoices from `berthctl usage`'s computation equal to the
// meter's own counters.

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "metering/http.hpp"
#include "metering/prices.hpp"
#include "metering/usage_report.hpp"
#include "tests/metering/integration/support.hpp"

namespace {

namespace fs = std::filesystem;
namespace m = berth::metering;
using namespace berth::metering::it;
using namespace std::chrono_literals;

const fs::path source_dir = BERTH_SOURCE_DIR;
const fs::path prometheus_bin = "/usr/bin/prometheus";
const fs::path promtool_bin = "/usr/bin/promtool";

/// Prometheus's /api/v1/query at `time` (0: now): the parsed answer.
nlohmann::json query(const m::HttpEndpoint& prom, const std::string& expr, std::int64_t time = 0) {
  std::string target = "/api/v1/query?query=" + m::url_encode(expr);
  if (time != 0) {
    target += "&time=" + std::to_string(time);
  }
  auto r = m::http_request(prom, "GET", target, {}, 30s);
  if (!r) {
    return {{"status", "error"}, {"error", r.error()}};
  }
  return nlohmann::json::parse(r->body, nullptr, false);
}

std::size_t result_count(const nlohmann::json& answer) {
  if (!answer.is_object() || answer.value("status", "") != "success") {
    return 0;
  }
  const auto& result = answer["data"]["result"];
  if (result.is_array()) {
    return result.size();
  }
  return result.is_null() ? 0 : 1;  // a scalar
}

/// Grafana's variables as a panel would be asked over the last few minutes of this test.
std::string substitute(std::string expr, const std::string& tenant) {
  const std::pair<const char*, std::string> vars[] = {{"$__rate_interval", "30s"},
                                                      {"$__interval", "5s"},
                                                      {"$__range", "5m"},
                                                      {"$tenant", tenant}};
  for (const auto& [name, value] : vars) {
    for (auto pos = expr.find(name); pos != std::string::npos; pos = expr.find(name)) {
      expr.replace(pos, std::strlen(name), value);
    }
  }
  return expr;
}

struct PanelQuery {
  std::string dashboard;
  std::string panel;
  std::string expr;
};

std::vector<PanelQuery> dashboard_queries() {
  std::vector<PanelQuery> out;
  for (const auto& entry : fs::directory_iterator(source_dir / "deploy/grafana/dashboards")) {
    if (entry.path().extension() != ".json") {
      continue;
    }
    std::ifstream in(entry.path());
    const auto doc = nlohmann::json::parse(in);
    std::vector<nlohmann::json> panels(doc["panels"].begin(), doc["panels"].end());
    for (std::size_t i = 0; i < panels.size(); ++i) {
      const auto& p = panels[i];
      if (p.contains("panels")) {  // a row with nested panels
        panels.insert(panels.end(), p["panels"].begin(), p["panels"].end());
      }
      for (const auto& t : p.value("targets", nlohmann::json::array())) {
        if (t.contains("expr")) {
          out.push_back({entry.path().filename().string(), p.value("title", ""),
                         t["expr"].get<std::string>()});
        }
      }
    }
  }
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("the shipped Prometheus config, rules and the meter's metrics pass promtool",
          "[metering][integration][prometheus]") {
  if (!fs::exists(promtool_bin)) {
    skip_or_fail("promtool is not installed (apt-get install prometheus)");
  }
  const auto config = run_process({promtool_bin, "check", "config",
                                   (source_dir / "deploy/prometheus/prometheus.yml").string()});
  INFO(config.out);
  CHECK(config.exit_code == 0);
  std::vector<std::string> rules{promtool_bin, "check", "rules"};
  for (const auto& f : fs::directory_iterator(source_dir / "deploy/prometheus/rules")) {
    rules.push_back(f.path().string());
  }
  const auto checked = run_process(rules);
  INFO(checked.out);
  CHECK(checked.exit_code == 0);
  CHECK(checked.out.find("SUCCESS: 9 rules found") != std::string::npos);

  TempDir dir;
  TestTenant tenant('m');
  MeterProcess meter({"--listen", "127.0.0.1:0", "--resolution-ms", "200", "--prices",
                      (source_dir / "deploy/prometheus/prices.yml").string()},
                     dir.path() / "meter.log");
  const std::string id = run_container({{"sh", "-c", "sleep 20"}, tenant.id()});
  std::this_thread::sleep_for(1s);
  const std::string text = scrape(meter.port());
  remove_container(id);
  CHECK(text.find("berth_container_cpu_seconds_total{") != std::string::npos);
  const auto lint = run_process({promtool_bin, "check", "metrics"}, text);
  INFO(lint.out);
  CHECK(lint.exit_code == 0);
}

TEST_CASE("a real Prometheus scrapes the meter, answers every dashboard panel and prices "
          "invoices from exact counter values",
          "[metering][integration][prometheus]") {
  if (!fs::exists(prometheus_bin)) {
    skip_or_fail("prometheus is not installed (apt-get install prometheus)");
  }
  TempDir dir;
  TestTenant tenant('p');
  const std::string t = tenant.id();
  const auto prices_file = source_dir / "deploy/prometheus/prices.yml";
  const std::int64_t before = unix_now() - 60;
  MeterProcess meter({"--listen", "127.0.0.1:0", "--resolution-ms", "200", "--prices",
                      prices_file.string()},
                     dir.path() / "meter.log");
  const std::string burner = run_container({{"sh", "-c", "yes > /dev/null"}, t, 0.3});
  const std::string holder = run_container(
      {{"sh", "-c", "dd if=/dev/zero of=/dev/shm/hold bs=1M count=32 2>/dev/null; sleep 600"}, t});

  // Scrape and evaluate every second: the test has a minute, not a month.
  const int port = free_port();
  const fs::path config = dir.path() / "prometheus.yml";
  {
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n";
    for (const auto& f : fs::directory_iterator(source_dir / "deploy/prometheus/rules")) {
      out << "  - " << f.path().string() << "\n";
    }
    out << "scrape_configs:\n  - job_name: berth-meter\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << meter.port() << "']\n";
  }
  if (fs::exists(promtool_bin)) {
    const auto checked = run_process({promtool_bin, "check", "config", config.string()});
    INFO(checked.out);
    REQUIRE(checked.exit_code == 0);
  }
  Child prometheus({prometheus_bin, "--config.file=" + config.string(),
                    "--storage.tsdb.path=" + (dir.path() / "data").string(),
                    "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                   dir.path() / "prometheus.log");
  m::HttpEndpoint prom;
  prom.host = "127.0.0.1";
  prom.port = static_cast<std::uint16_t>(port);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  bool ready = false;
  while (std::chrono::steady_clock::now() < deadline && prometheus.running()) {
    // Ready, scraped, and the hourly rules evaluated over at least two samples.
    const auto r = m::http_request(prom, "GET", "/-/ready", {}, 2s);
    if (r && r->status == 200 &&
        result_count(query(prom, "tenant:berth_cost:increase1h{tenant=\"" + t + "\"}")) > 0 &&
        result_count(query(prom, "tenant:berth_cost_per_hour:rate5m{tenant=\"" + t + "\"}")) > 0 &&
        result_count(query(prom, "tenant:berth_cost:increase1d{tenant=\"" + t + "\"}")) > 0) {
      ready = true;
      break;
    }
    std::this_thread::sleep_for(500ms);
  }
  INFO("meter log:\n" << meter.log_tail());
  REQUIRE(ready);
  std::this_thread::sleep_for(5s);  // a few more samples for the rate() panels

  const auto panels = dashboard_queries();
  REQUIRE(panels.size() >= 20);
  for (const auto& q : panels) {
    const std::string expr = substitute(q.expr, t);
    const auto answer = query(prom, expr);
    INFO(q.dashboard << " / " << q.panel << ":\n" << expr << "\n" << answer.dump());
    CHECK(result_count(answer) > 0);
  }
  const auto tenants = m::http_request(prom, "GET", "/api/v1/label/tenant/values", {}, 10s);
  REQUIRE(tenants);
  CHECK(tenants->body.find("\"" + t + "\"") != std::string::npos);

  // Rules loaded and healthy; the meter is up, so BerthMeterDown is not firing.
  const auto rules = m::http_request(prom, "GET", "/api/v1/rules", {}, 10s);
  REQUIRE(rules);
  const auto doc = nlohmann::json::parse(rules->body);
  std::set<std::string> alerts;
  for (const auto& group : doc["data"]["groups"]) {
    for (const auto& rule : group["rules"]) {
      INFO(rule.dump());
      CHECK(rule.value("health", "") == "ok");
      if (rule.value("type", "") == "alerting") {
        alerts.insert(rule["name"].get<std::string>());
        if (rule["name"] == "BerthMeterDown") {
          CHECK(rule.value("state", "") == "inactive");
        }
      }
    }
  }
  CHECK(alerts.contains("BerthMeterDown"));
  CHECK(alerts.contains("BerthTenantSpendHigh"));

  // Invoice: stop the workload, let the last samples land, and price the period.
  remove_container(burner);
  remove_container(holder);
  std::this_thread::sleep_for(3s);
  const std::int64_t after = unix_now();
  std::this_thread::sleep_for(1500ms);  // samples up to `after` are in
  const auto prices = m::load_prices(prices_file);
  REQUIRE(prices);
  auto prom_query = m::prometheus_http("http://127.0.0.1:" + std::to_string(port));
  REQUIRE(prom_query);
  m::UsageRequest req;
  req.from_unix = before;
  req.to_unix = after;
  req.tenant = t;
  const auto report = m::usage_report(req, *prices, *prom_query);
  REQUIRE(report);
  REQUIRE(report->tenants.size() == 1);
  const auto& bill = report->tenants[0];
  INFO(m::format_report(*report, m::ReportFormat::table));
  CHECK(bill.notes.empty());
  // The burner and the holder are gone: the CPU counter no longer moves, so the invoice must
  // equal the meter's counter and the kernel's figure for the whole life of the tenant.
  const std::string now_text = scrape(meter.port());
  const double meter_cpu =
      sample(now_text, "berth_tenant_cpu_seconds_total{tenant=\"" + t + "\"}").value_or(-1);
  const double meter_mem =
      sample(now_text, "berth_tenant_memory_byte_seconds_total{tenant=\"" + t + "\"}")
          .value_or(-1);
  const auto kernel_cpu = KernelReference::cpu_seconds(t);
  REQUIRE(kernel_cpu);
  CHECK(rel_diff(bill.cpu_seconds, meter_cpu) < 1e-9);
  CHECK(rel_diff(bill.cpu_seconds, *kernel_cpu) < 0.01);
  // Memory keeps growing by the empty aggregate's few KiB after the workload: not exactly equal.
  CHECK(rel_diff(bill.memory_byte_seconds, meter_mem) < 0.005);
  CHECK(bill.memory_byte_seconds > 32.0 * 1024 * 1024 * 10);
  CHECK(bill.cost.total() ==
        Approx(m::price(*prices, bill.cpu_seconds, bill.memory_byte_seconds).total()));

  // The same through the command line's entry point, as CSV.
  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string> args{"--from",     "@" + std::to_string(before),
                                      "--to",       "@" + std::to_string(after),
                                      "--tenant",   t,
                                      "--format",   "csv",
                                      "--prices",   prices_file.string(),
                                      "--prometheus", "http://127.0.0.1:" + std::to_string(port)};
  CHECK(m::usage_command(args, out, err) == 0);
  INFO(err.str());
  CHECK(out.str().find("\n" + t + ",") != std::string::npos);
}
