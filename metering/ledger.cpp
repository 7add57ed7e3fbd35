#include "metering/ledger.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace berth::metering {
namespace {

using nlohmann::json;

bool is_container_key(const std::string& key) { return key.starts_with("c/"); }

/// Reads a member of the expected JSON type into `out`; false if missing or mistyped.
template <typename T>
bool member(const json& object, const char* name, T& out) {
  const auto it = object.find(name);
  if (it == object.end()) {
    return false;
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) {
      return false;
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) {
      return false;
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) {
      return false;
    }
  } else if constexpr (std::is_unsigned_v<T>) {
    if (!it->is_number_unsigned()) {
      return false;
    }
  } else {
    if (!it->is_number_integer()) {
      return false;
    }
  }
  out = it->get<T>();
  return true;
}

}  // namespace

TenantUsage& Ledger::tenant(const std::string& id, std::int64_t now_unix_ms) {
  auto [it, inserted] = tenants_.try_emplace(id);
  if (inserted) {
    it->second.first_seen_unix_ms = now_unix_ms;
  }
  return it->second;
}

void Ledger::ensure_tenant(const std::string& id, std::int64_t now_unix_ms) {
  (void)tenant(id, now_unix_ms);
}

void Ledger::bill(SourceState& state, const Observation& obs, std::int64_t now_ns,
                  std::int64_t now_unix_ms, bool is_new, Between between) {
  const Reading& r = obs.reading;
  // The tenant is fixed for the life of one cgroup: billing it to two tenants would count twice.
  if (is_new) {
    state.tenant = obs.tenant;
  }
  state.bills = obs.bills;
  TenantUsage& t = tenant(state.tenant, now_unix_ms);
  const std::int64_t dt = now_ns - state.last_ns;
  if (obs.bills.cpu_memory) {
    t.cpu_ns += counter_delta(state.last.cpu_ns, r.cpu_ns, !is_new);
    // A new cgroup starts from zero memory at the previous scan; a recreated one decays from
    // the old cgroup's last value: both are one trapezoid from the last known point.
    t.memory_byte_seconds += byte_seconds(
        state.last.working_set_bytes,
        between == Between::hold ? state.last.working_set_bytes : r.working_set_bytes, dt);
  }
  const bool net_same = !is_new && state.net_seen;
  const bool blk_same = !is_new && state.blk_seen;
  if (obs.bills.io) {
    if (r.has_net) {
      t.net_rx_bytes += counter_delta(state.last.net_rx_bytes, r.net_rx_bytes, net_same);
      t.net_tx_bytes += counter_delta(state.last.net_tx_bytes, r.net_tx_bytes, net_same);
    }
    if (r.has_blk) {
      t.blk_read_bytes += counter_delta(state.last.blk_read_bytes, r.blk_read_bytes, blk_same);
      t.blk_write_bytes += counter_delta(state.last.blk_write_bytes, r.blk_write_bytes, blk_same);
    }
  }
  // A read that missed the network namespace (the init process was between exec and exit)
  // keeps the old baseline, so the next read bills only the increase.
  if (r.has_net) {
    state.last.net_rx_bytes = r.net_rx_bytes;
    state.last.net_tx_bytes = r.net_tx_bytes;
    state.net_seen = true;
  } else if (is_new) {
    state.net_seen = false;
  }
  if (r.has_blk) {
    state.last.blk_read_bytes = r.blk_read_bytes;
    state.last.blk_write_bytes = r.blk_write_bytes;
    state.blk_seen = true;
  } else if (is_new) {
    state.blk_seen = false;
  }
  state.last.cpu_ns = r.cpu_ns;
  state.last.working_set_bytes = r.working_set_bytes;
  state.generation = obs.generation;
  state.last_ns = now_ns;
}

void Ledger::close(SourceState& state, std::int64_t now_ns) {
  if (state.bills.cpu_memory) {
    // The cgroup went at an unknown instant of the last interval: expect half of it.
    tenants_[state.tenant].memory_byte_seconds +=
        byte_seconds(state.last.working_set_bytes, 0, now_ns - state.last_ns);
  }
}

void Ledger::apply_scan(std::int64_t now_ns, std::int64_t now_unix_ms,
                        std::span<const Observation> observations) {
  if (last_scan_ns_ && now_ns < *last_scan_ns_) {
    now_ns = *last_scan_ns_;
  }
  // A source first seen now appeared during the last interval: start it from zero at the
  // previous scan. On the very first scan nothing is known about the past memory.
  const std::int64_t previous = last_scan_ns_.value_or(now_ns);
  const std::uint64_t scan = ++scan_count_;
  for (const Observation& obs : observations) {
    if (const auto tomb = tombstones_.find(obs.key); tomb != tombstones_.end()) {
      if (tomb->second.generation == obs.generation) {
        tomb->second.seen_scan = scan;
        continue;  // closed by a final read; its cgroup is about to disappear
      }
      tombstones_.erase(tomb);
    }
    auto it = sources_.find(obs.key);
    const bool brand_new = it == sources_.end();
    if (brand_new) {
      if (obs.stale) {
        continue;
      }
      it = sources_.emplace(obs.key, SourceState{}).first;
      it->second.last_ns = previous;
    }
    SourceState& state = it->second;
    state.seen_scan = scan;
    if (obs.stale) {
      continue;
    }
    const bool is_new = brand_new || state.generation != obs.generation;
    bill(state, obs, now_ns, now_unix_ms, is_new);
  }
  for (auto it = sources_.begin(); it != sources_.end();) {
    if (it->second.seen_scan >= scan) {
      ++it;
      continue;
    }
    close(it->second, now_ns);
    it = sources_.erase(it);
  }
  std::erase_if(tombstones_, [scan](const auto& entry) { return entry.second.seen_scan < scan; });
  last_scan_ns_ = now_ns;
  refresh_gauges(observations);
}

bool Ledger::apply_final(std::int64_t now_ns, std::int64_t now_unix_ms, const Observation& obs) {
  if (const auto tomb = tombstones_.find(obs.key);
      tomb != tombstones_.end() && tomb->second.generation == obs.generation) {
    return false;
  }
  auto it = sources_.find(obs.key);
  const bool brand_new = it == sources_.end();
  if (brand_new) {
    it = sources_.emplace(obs.key, SourceState{}).first;
    it->second.last_ns = std::min(last_scan_ns_.value_or(now_ns), now_ns);
  }
  SourceState& state = it->second;
  const bool is_new = brand_new || state.generation != obs.generation;
  if (now_ns < state.last_ns) {
    now_ns = state.last_ns;
  }
  bill(state, obs, now_ns, now_unix_ms, is_new, Between::hold);
  // Read as the last process left: nothing is held after this instant.
  sources_.erase(it);
  // Kept through the next scan even if that scan's listing missed the lingering cgroup.
  tombstones_[obs.key] = Tombstone{obs.generation, scan_count_ + 1};
  return true;
}

bool Ledger::apply_sample(std::int64_t now_ns, std::int64_t now_unix_ms, const Observation& obs,
                          Between between) {
  if (obs.stale) {
    return false;
  }
  if (const auto tomb = tombstones_.find(obs.key);
      tomb != tombstones_.end() && tomb->second.generation == obs.generation) {
    return false;
  }
  auto it = sources_.find(obs.key);
  const bool brand_new = it == sources_.end();
  if (brand_new) {
    it = sources_.emplace(obs.key, SourceState{}).first;
    it->second.last_ns = now_ns;
    // The next scan may have listed the tree before this cgroup appeared: it must not close
    // the source (and a later scan bill its counters from zero again).
    it->second.seen_scan = scan_count_ + 1;
  } else if (it->second.generation != obs.generation) {
    return false;
  }
  SourceState& state = it->second;
  if (now_ns < state.last_ns) {
    now_ns = state.last_ns;
  }
  bill(state, obs, now_ns, now_unix_ms, brand_new, between);
  if (brand_new) {
    refresh_gauges({});
  }
  return true;
}

void Ledger::refresh_gauges(std::span<const Observation> observations) {
  (void)observations;
  for (auto& [id, usage] : tenants_) {
    usage.working_set_bytes = 0;
    usage.running_containers = 0;
  }
  for (const auto& [key, state] : sources_) {
    TenantUsage& t = tenants_[state.tenant];
    if (state.bills.cpu_memory) {
      t.working_set_bytes += state.last.working_set_bytes;
    }
    if (is_container_key(key)) {
      ++t.running_containers;
    }
  }
}

void Ledger::mark_exported() {
  for (auto& [id, usage] : tenants_) {
    usage.exported = true;
  }
}

void Ledger::forget_sources() {
  sources_.clear();
  tombstones_.clear();
  last_scan_ns_.reset();
  for (auto& [id, usage] : tenants_) {
    usage.working_set_bytes = 0;
    usage.running_containers = 0;
  }
}

TenantUsage Ledger::exported_usage(const TenantUsage& usage) const {
  if (usage.exported) {
    return usage;
  }
  TenantUsage zero;
  zero.first_seen_unix_ms = usage.first_seen_unix_ms;
  zero.working_set_bytes = usage.working_set_bytes;
  zero.running_containers = usage.running_containers;
  return zero;
}

json Ledger::to_json() const {
  json tenants = json::object();
  for (const auto& [id, u] : tenants_) {
    tenants[id] = {{"cpu_ns", u.cpu_ns},
                   {"memory_byte_seconds", u.memory_byte_seconds},
                   {"net_rx_bytes", u.net_rx_bytes},
                   {"net_tx_bytes", u.net_tx_bytes},
                   {"blk_read_bytes", u.blk_read_bytes},
                   {"blk_write_bytes", u.blk_write_bytes},
                   {"first_seen_unix_ms", u.first_seen_unix_ms},
                   {"exported", u.exported}};
  }
  json sources = json::object();
  for (const auto& [key, s] : sources_) {
    sources[key] = {{"tenant", s.tenant},
                    {"generation", s.generation},
                    {"bills_cpu_memory", s.bills.cpu_memory},
                    {"bills_io", s.bills.io},
                    {"cpu_ns", s.last.cpu_ns},
                    {"working_set_bytes", s.last.working_set_bytes},
                    {"net_seen", s.net_seen},
                    {"net_rx_bytes", s.last.net_rx_bytes},
                    {"net_tx_bytes", s.last.net_tx_bytes},
                    {"blk_seen", s.blk_seen},
                    {"blk_read_bytes", s.last.blk_read_bytes},
                    {"blk_write_bytes", s.last.blk_write_bytes},
                    {"last_ns", s.last_ns}};
  }
  json tombstones = json::object();
  for (const auto& [key, tomb] : tombstones_) {
    tombstones[key] = tomb.generation;
  }
  json doc = {{"tenants", tenants}, {"sources", sources}, {"tombstones", tombstones}};
  doc["last_scan_ns"] = last_scan_ns_ ? json(*last_scan_ns_) : json(nullptr);
  return doc;
}

std::expected<Ledger, std::string> Ledger::from_json(const json& doc) {
  if (!doc.is_object()) {
    return std::unexpected("ledger: not a JSON object");
  }
  Ledger ledger;
  const auto tenants = doc.find("tenants");
  const auto sources = doc.find("sources");
  const auto tombstones = doc.find("tombstones");
  if (tenants == doc.end() || !tenants->is_object() || sources == doc.end() ||
      !sources->is_object() || tombstones == doc.end() || !tombstones->is_object()) {
    return std::unexpected("ledger: tenants, sources and tombstones must be objects");
  }
  for (const auto& [id, t] : tenants->items()) {
    TenantUsage u;
    if (!t.is_object() || !member(t, "cpu_ns", u.cpu_ns) ||
        !member(t, "memory_byte_seconds", u.memory_byte_seconds) ||
        !member(t, "net_rx_bytes", u.net_rx_bytes) || !member(t, "net_tx_bytes", u.net_tx_bytes) ||
        !member(t, "blk_read_bytes", u.blk_read_bytes) ||
        !member(t, "blk_write_bytes", u.blk_write_bytes) ||
        !member(t, "first_seen_unix_ms", u.first_seen_unix_ms) ||
        !member(t, "exported", u.exported) || u.memory_byte_seconds < 0) {
      return std::unexpected("ledger: tenant '" + id + "' is malformed");
    }
    ledger.tenants_.emplace(id, u);
  }
  for (const auto& [key, s] : sources->items()) {
    SourceState st;
    if (!s.is_object() || !member(s, "tenant", st.tenant) ||
        !member(s, "generation", st.generation) ||
        !member(s, "bills_cpu_memory", st.bills.cpu_memory) ||
        !member(s, "bills_io", st.bills.io) || !member(s, "cpu_ns", st.last.cpu_ns) ||
        !member(s, "working_set_bytes", st.last.working_set_bytes) ||
        !member(s, "net_seen", st.net_seen) || !member(s, "net_rx_bytes", st.last.net_rx_bytes) ||
        !member(s, "net_tx_bytes", st.last.net_tx_bytes) || !member(s, "blk_seen", st.blk_seen) ||
        !member(s, "blk_read_bytes", st.last.blk_read_bytes) ||
        !member(s, "blk_write_bytes", st.last.blk_write_bytes) ||
        !member(s, "last_ns", st.last_ns) || !ledger.tenants_.contains(st.tenant)) {
      return std::unexpected("ledger: source '" + key + "' is malformed");
    }
    st.last.has_net = st.net_seen;
    st.last.has_blk = st.blk_seen;
    ledger.sources_.emplace(key, st);
  }
  for (const auto& [key, generation] : tombstones->items()) {
    if (!generation.is_number_unsigned()) {
      return std::unexpected("ledger: tombstone '" + key + "' is malformed");
    }
    ledger.tombstones_.emplace(key, Tombstone{generation.get<std::uint64_t>(), 0});
  }
  const auto last = doc.find("last_scan_ns");
  if (last != doc.end() && last->is_number_integer()) {
    ledger.last_scan_ns_ = last->get<std::int64_t>();
  } else if (last != doc.end() && !last->is_null()) {
    return std::unexpected("ledger: last_scan_ns is malformed");
  }
  return ledger;
}

}  // namespace berth::metering
