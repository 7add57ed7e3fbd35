#include "metering/prices.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace berth::metering {
namespace {

std::string where(std::string_view source, const YAML::Mark& mark) {
  std::string s(source);
  if (mark.line >= 0) {
    // yaml-cpp counts lines and columns from 0.
    s += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return s;
}

std::expected<double, std::string> number(const YAML::Node& node, std::string_view source,
                                          std::string_view key) {
  if (!node.IsScalar()) {
    return std::unexpected(where(source, node.Mark()) + ": " + std::string(key) +
                           " must be a number");
  }
  double v = 0;
  if (!YAML::convert<double>::decode(node, v) || !std::isfinite(v) || v < 0) {
    return std::unexpected(where(source, node.Mark()) + ": " + std::string(key) +
                           " must be a non-negative number, got '" + node.Scalar() + "'");
  }
  return v;
}

}  // namespace

std::expected<Prices, std::string> parse_prices(std::string_view text, std::string_view source) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return std::unexpected(where(source, e.mark) + ": " + e.msg);
  }
  if (!doc.IsMap()) {
    return std::unexpected(std::string(source) + ": expected a mapping of prices");
  }
  Prices prices;
  std::set<std::string> seen;
  bool have_cpu = false;
  bool have_memory = false;
  for (const auto& entry : doc) {
    const std::string key = entry.first.as<std::string>("");
    const std::string at = where(source, entry.first.Mark());
    // yaml-cpp would silently keep the first of two duplicate keys.
    if (!seen.insert(key).second) {
      return std::unexpected(at + ": duplicate key '" + key + "'");
    }
    const YAML::Node& value = entry.second;
    if (key == "currency") {
      if (!value.IsScalar() || value.Scalar().empty()) {
        return std::unexpected(at + ": currency must be a code such as EUR");
      }
      prices.currency = value.Scalar();
      continue;
    }
    double* target = nullptr;
    if (key == "cpu_hour") {
      target = &prices.per_cpu_hour;
      have_cpu = true;
    } else if (key == "memory_gib_hour") {
      target = &prices.per_gib_hour;
      have_memory = true;
    } else if (key == "daily_spend_alert") {
      target = &prices.daily_spend_alert;
    } else {
      return std::unexpected(at + ": unknown key '" + key +
                             "' (expected currency, cpu_hour, memory_gib_hour, daily_spend_alert)");
    }
    auto v = number(value, source, key);
    if (!v) {
      return std::unexpected(v.error());
    }
    *target = *v;
  }
  if (prices.currency.empty() || !have_cpu || !have_memory) {
    return std::unexpected(std::string(source) +
                           ": currency, cpu_hour and memory_gib_hour are required");
  }
  return prices;
}

std::expected<Prices, std::string> load_prices(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(path.string() + ": cannot be read");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_prices(text.str(), path.string());
}

Cost price(const Prices& prices, double cpu_seconds, double memory_byte_seconds) {
  return Cost{cpu_seconds / seconds_per_hour * prices.per_cpu_hour,
              memory_byte_seconds / seconds_per_hour / bytes_per_gib * prices.per_gib_hour};
}

}  // namespace berth::metering
