#include "policy/usage_history.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace berth::policy {

namespace {

constexpr std::string_view cpu_metric = "berth_container_cpu_seconds_total{";
constexpr std::string_view memory_metric = "berth_container_memory_working_set_bytes{";

bool is_hex12(std::string_view s) {
  return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// `metric{...,id="0123456789ab",...} value`: the id and the value.
bool read_sample(std::string_view line, std::string_view metric, std::string& id, double& value) {
  if (!line.starts_with(metric)) {
    return false;
  }
  const auto close = line.find('}');
  const auto at = line.find("id=\"");
  if (close == std::string_view::npos || at == std::string_view::npos || at > close) {
    return false;
  }
  // A label named "id" exactly: the character before is '{' or ','.
  const char before = line[at - 1];
  if (before != '{' && before != ',') {
    return false;
  }
  const std::string_view raw = line.substr(at + 4, 12);
  if (!is_hex12(raw) || line.size() <= at + 16 || line[at + 16] != '"') {
    return false;
  }
  std::string_view number = line.substr(close + 1);
  while (!number.empty() && number.front() == ' ') {
    number.remove_prefix(1);
  }
  number = number.substr(0, number.find(' '));  // an optional timestamp follows
  double v = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || end != number.data() + number.size() || !std::isfinite(v) || v < 0) {
    return false;
  }
  id = std::string(raw);
  value = v;
  return true;
}

std::int64_t percentile95(std::vector<std::int64_t> values) {
  if (values.empty()) {
    return 0;
  }
  const std::size_t k = (values.size() * 95 + 99) / 100 - 1;  // nearest rank
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

}  // namespace

std::vector<ContainerSample> parse_container_samples(std::string_view metrics) {
  std::map<std::string, ContainerSample, std::less<>> by_id;
  std::size_t start = 0;
  while (start < metrics.size()) {
    std::size_t nl = metrics.find('\n', start);
    if (nl == std::string_view::npos) {
      nl = metrics.size();
    }
    const std::string_view line = metrics.substr(start, nl - start);
    start = nl + 1;
    std::string id;
    double value = 0;
    if (read_sample(line, cpu_metric, id, value)) {
      auto& s = by_id[id];
      s.id12 = id;
      s.cpu_seconds = value;
    } else if (read_sample(line, memory_metric, id, value)) {
      auto& s = by_id[id];
      s.id12 = id;
      s.memory = value;
    }
  }
  std::vector<ContainerSample> out;
  out.reserve(by_id.size());
  for (auto& [id, s] : by_id) {
    out.push_back(std::move(s));
  }
  return out;
}

void UsageHistory::add(std::int64_t now_ms, const std::vector<ContainerSample>& samples) {
  std::map<std::string, Series, std::less<>> next;
  for (const ContainerSample& s : samples) {
    Series series;
    if (auto it = series_.find(s.id12); it != series_.end()) {
      series = std::move(it->second);
    }
    Amount point{0, static_cast<std::int64_t>(s.memory)};
    if (series.last_ms != 0 && now_ms > series.last_ms && s.cpu_seconds >= series.last_cpu_seconds) {
      const double seconds = static_cast<double>(now_ms - series.last_ms) / 1000.0;
      point.nano_cpus =
          static_cast<std::int64_t>((s.cpu_seconds - series.last_cpu_seconds) / seconds * 1e9);
    }
    series.last_ms = now_ms;
    series.last_cpu_seconds = s.cpu_seconds;
    series.points.push_back(point);
    if (series.points.size() > window) {
      series.points.pop_front();
    }
    next.emplace(s.id12, std::move(series));
  }
  series_ = std::move(next);
}

std::map<std::string, ContainerUsage, std::less<>> UsageHistory::snapshot() const {
  std::map<std::string, ContainerUsage, std::less<>> out;
  for (const auto& [id, series] : series_) {
    std::vector<std::int64_t> cpu;
    std::vector<std::int64_t> memory;
    for (const Amount& p : series.points) {
      cpu.push_back(p.nano_cpus);
      memory.push_back(p.memory);
    }
    out.emplace(id, ContainerUsage{series.points.back(),
                                   Amount{percentile95(std::move(cpu)),
                                          percentile95(std::move(memory))}});
  }
  return out;
}

}  // namespace berth::policy
