// An operator's live migration of a running container to another host of the fleet (issue
// #16): POST /containers/{id}/migrate?to=HOST with an operator's certificate (berthctl
// migrate). berth drives it; each host's berth-node does what dockerd cannot (node/agent.hpp):
//
//   1. judge: the container can move (policy::migration_blockers), the target host is up, not
//      cordoned, and both hosts have a berth-node;
//   2. the target gets the image (copied from the source host if it lacks it, and tagged);
//   3. the twin is created on the target: same configuration, name, labels, network, address
//      and aliases (policy::migration_create_body); an overlay allocates the address at start,
//      so this is allowed while the source still runs;
//   4. the source's node drains new connections and checkpoints the container (it stops); its
//      archive (checkpoint and writable layer) is streamed from the source's node straight
//      into the target's, which restores the twin from it;
//   5. commit: the source's node removes the stopped source; or, when 4 failed after the dump,
//      rollback: the twin is removed and the source's node starts the source again from its
//      kept checkpoint. A failure before the dump leaves the source running, untouched.
// The tenant's index follows from the hosts' events (the source destroyed, the twin created).

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "policy/endpoint_table.hpp"
#include "policy/migration.hpp"
#include "policy/names.hpp"
#include "policy/query.hpp"
#include "proxy/body_relay.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;
using json = nlohmann::json;

std::vector<std::pair<std::string, std::string>> query_params(std::string_view target);

// Why step 4 failed, and whether the source had stopped into its checkpoint (then it must
// be rolled back).
struct HandoffFailure {
  bool dumped = false;
  std::string message;
};

namespace {

using Clock = std::chrono::steady_clock;

// New connections are dropped this long before the dump, so requests already accepted end;
// clients retry their SYN and reach the restored twin (../shared/lab-multihost: 0 failed
// requests with it, hangs without).
constexpr int drain_ms = 300;

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

policy::Decision refused(unsigned status, const std::string& message, std::string rule) {
  return policy::Decision::deny(status, "berth: " + message, std::move(rule));
}

std::string message_of(const DockerReply& reply) {
  const auto doc = json::parse(reply.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return doc["message"].get<std::string>();
  }
  return reply.body.substr(0, 300);
}

// A failure's reason from a node's answer whose head is read.
net::awaitable<std::string> node_refusal(TlsStream& from, beast::flat_buffer& buffer,
                                         http::response_parser<http::buffer_body>& head) {
  http::response_parser<http::string_body> rest{std::move(head)};
  rest.body_limit(64 * 1024);
  error_code ec;
  co_await http::async_read(from, buffer, rest, with_ec(ec));
  DockerReply reply{rest.get().result_int(), ec ? std::string() : rest.get().body()};
  co_return std::to_string(reply.status) + " " + message_of(reply);
}

// Step 4 on two connections of berth's own: the source node's checkpoint answer streamed
// into the target node's restore request. The figures of both nodes on success.
net::awaitable<std::expected<json, HandoffFailure>> hand_over(TlsStream& source,
                                                              TlsStream& target,
                                                              const std::string& old_id,
                                                              const std::string& new_id,
                                                              const std::string& checkpoint,
                                                              RelayProgress& progress) {
  http::request<http::empty_body> dump{
      http::verb::post,
      "/v1/containers/" + old_id + "/checkpoint?checkpoint=" + checkpoint +
          "&drain_ms=" + std::to_string(drain_ms) + "&twin=" + new_id,
      11};
  dump.set(http::field::host, "berth-node");
  dump.content_length(0);
  error_code ec;
  const auto asked = Clock::now();
  co_await http::async_write(source, dump, with_ec(ec));
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> archive;
  archive.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) {
    co_await http::async_read_header(source, buffer, archive, with_ec(ec));
  }
  if (ec) {
    // Whether the dump happened is unknown: the rollback finds out (it refuses without a
    // kept checkpoint, and the source then still runs).
    co_return std::unexpected(HandoffFailure{true, "checkpoint: " + ec.message()});
  }
  if (archive.get().result() != http::status::ok) {
    std::string why = co_await node_refusal(source, buffer, archive);
    co_return std::unexpected(HandoffFailure{false, "checkpoint: " + why});
  }
  json figures = json::parse(archive.get()["Berth-Checkpoint"], nullptr, false);
  if (!figures.is_object()) {
    figures = json::object();
  }
  const auto transfer_start = Clock::now();
  http::request<http::buffer_body> restore{
      http::verb::post, "/v1/containers/" + new_id + "/restore?checkpoint=" + checkpoint, 11};
  restore.set(http::field::host, "berth-node");
  restore.set(http::field::content_type, "application/x-tar");
  restore.chunked(true);
  http::request_serializer<http::buffer_body> serializer{restore};
  co_await http::async_write_header(target, serializer, with_ec(ec));
  if (!ec) {
    ec = co_await relay_body(source, buffer, archive, target, progress);
  }
  if (ec) {
    co_return std::unexpected(HandoffFailure{true, "transfer: " + ec.message()});
  }
  figures["transfer_ms"] = ms_since(transfer_start);
  figures["archive_bytes"] = progress.bytes;
  beast::flat_buffer answer_buffer;
  http::response_parser<http::string_body> answer;
  answer.body_limit(64 * 1024);
  co_await http::async_read(target, answer_buffer, answer, with_ec(ec));
  if (ec || answer.get().result() != http::status::ok) {
    DockerReply reply{answer.get().result_int(), ec ? ec.message() : answer.get().body()};
    co_return std::unexpected(HandoffFailure{true, "restore: " + message_of(reply)});
  }
  const json restored = json::parse(answer.get().body(), nullptr, false);
  if (restored.is_object()) {
    figures.update(restored);
  }
  // From the freeze (the dump's start, after the drain) to the twin running: what the
  // application lives as a pause. The source's removal after it is not part of it.
  figures["downtime_ms"] = ms_since(asked) - figures.value("drain_ms", std::int64_t{0});
  co_return figures;
}

// The reason migration_blockers() gives, as one sentence.
std::string joined(const std::vector<std::string>& reasons) {
  std::string out;
  for (const std::string& r : reasons) {
    out += out.empty() ? r : "; " + r;
  }
  return out;
}

// A berth route's JSON answer to an operator.
http::response<http::string_body> json_answer(const json& body, bool keep_alive) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::server, "berth");
  res.set(http::field::content_type, "application/json");
  res.body() = body.dump() + "\n";
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

}  // namespace

net::awaitable<bool> Session::migrate_container(Admission& a, Exchange& ex) {
  std::string to;
  for (const auto& [key, value] : query_params(a.rewritten.target)) {
    if (key == "to") {
      to = value;
    }
  }
  const std::string ref = a.request->params.front();
  auto moved = co_await migrate(a.rt, ref, to);
  if (!moved) {
    co_return co_await refuse(moved.error(), a.client_keep_alive(), ex);
  }
  auto res = json_answer(*moved, a.client_keep_alive() && !worker_.draining());
  ex.status = 200;
  ex.bytes_out += res.body().size();
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

// POST /hosts/{name}/drain (berthctl host drain): every running container of a cordoned host
// migrated in turn, one at a time, each to the host that is up, not cordoned, has a berth-node
// and holds the fewest containers then. What cannot move stays, with the reason.
net::awaitable<bool> Session::drain_host(Admission& a, Exchange& ex) {
  const std::shared_ptr<const Runtime> rt = a.rt;
  const std::string name = a.request->params.front();
  const HostRuntime* host = rt->host(name);
  std::optional<policy::Decision> no;
  if (!rt->fleet() || host == nullptr) {
    no = refused(404, "no host " + name + " in the policy's fleet", "drain.unknown");
  } else if (host->spec == nullptr || !host->spec->cordoned) {
    no = refused(409,
                 "host " + name + " is not cordoned: cordon it first (berthctl host cordon), "
                 "so that nothing new is placed on it while it drains",
                 "drain.uncordoned");
  }
  if (no) {
    co_return co_await refuse(*no, a.client_keep_alive(), ex);
  }
  const auto running = worker_.index().read([&](const policy::OwnershipIndex& idx) {
    std::vector<policy::ContainerInfo> out;
    for (auto& c : idx.all_containers()) {
      if (c.host == name && c.state == "running") {
        out.push_back(std::move(c));
      }
    }
    return out;
  });
  json moved = json::array();
  json stayed = json::array();
  for (const policy::ContainerInfo& c : running) {
    const std::optional<std::string> to = drain_target(*rt, name);
    if (!to) {
      stayed.push_back({{"Name", c.name}, {"Reason", "no other host can take it"}});
      continue;
    }
    auto result = co_await migrate(rt, c.id, *to);
    if (result) {
      moved.push_back({{"Name", c.name}, {"To", *to}, {"Id", (*result)["Id"]},
                       {"downtime_ms", (*result)["downtime_ms"]}});
    } else {
      stayed.push_back({{"Name", c.name}, {"Reason", result.error().tenant_message}});
    }
  }
  log_info("drain: host " + name + ": " + std::to_string(moved.size()) + " moved, " +
           std::to_string(stayed.size()) + " stayed");
  auto res = json_answer(json{{"Host", name}, {"Moved", moved}, {"Stayed", stayed}},
                         a.client_keep_alive() && !worker_.draining());
  ex.status = 200;
  ex.bytes_out += res.body().size();
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

// Where a drained host's next container goes: the host, other than `from`, that is up, not
// cordoned, has a berth-node, and holds the fewest containers now.
std::optional<std::string> Session::drain_target(const Runtime& rt, const std::string& from) {
  // How many containers each host holds, counted in one pass over the index.
  const auto held = worker_.index().read([](const policy::OwnershipIndex& idx) {
    std::map<std::string, std::size_t> count;
    for (const policy::ContainerInfo& c : idx.all_containers()) {
      ++count[c.host];
    }
    return count;
  });
  std::optional<std::string> best;
  std::size_t fewest = std::numeric_limits<std::size_t>::max();
  for (const HostRuntime& h : rt.hosts) {
    if (h.name == from || !h.node || (h.spec != nullptr && h.spec->cordoned) ||
        !worker_.index().host_facts(h.name)->up) {
      continue;
    }
    const auto n = held.find(h.name);
    const std::size_t here = n == held.end() ? 0 : n->second;
    if (here < fewest) {
      fewest = here;
      best = h.name;
    }
  }
  return best;
}

// Step 2: the image the container runs, on the target, under the name its configuration
// gives. Copied from the source host (which has it, whatever the primary has done since).
net::awaitable<std::string> Session::image_for_migration(std::shared_ptr<const Runtime> rt,
                                                         Target from, Target to,
                                                         const json& inspect) {
  const std::string id = inspect.value("Image", std::string());
  const std::string name = inspect.value("Config", json::object()).value("Image", std::string());
  const auto facts = worker_.index().host_facts(to.host->name);
  if (!std::binary_search(facts->image_ids.begin(), facts->image_ids.end(), id)) {
    auto copied = co_await copy_image(worker_.pool(), rt, from, to, id);
    if (!copied) {
      co_return "copy of its image to " + to.host->name + " failed: " + copied.error();
    }
  }
  const auto ref = name.starts_with("sha256:") ? std::nullopt : policy::names::parse_image_ref(name);
  const auto tagged = facts->image_tags.find(name);
  if (ref && !ref->tag.empty() && (tagged == facts->image_tags.end() || tagged->second != id)) {
    std::string path = "/images/" + policy::escape_path(id) + "/tag?" +
                       policy::build_query({{"repo", ref->name}, {"tag", ref->tag}});
    const auto reply = co_await docker_request_to(worker_.pool(), rt, to, http::verb::post,
                                                  std::move(path));
    if (!reply || reply->status != 201) {
      co_return "tag of its image as " + name + " on " + to.host->name + " failed";
    }
  }
  co_return std::string();
}

// What step 1 judged: where the container is and goes, and dockerd's description of it.
struct MigrationPlan {
  Target from;
  Target to;
  json inspect;
  std::string old_id;
  std::string name;
};

namespace {

// The switch of a container between hosts, as requests for it see it (SharedIndex::
// begin_switch): on from the twin's creation, off however migrate() ends.
struct SwitchGuard {
  SharedIndex& index;
  std::vector<std::string> keys;
  SwitchGuard(SharedIndex& i, std::vector<std::string> k) : index(i), keys(std::move(k)) {
    index.begin_switch(keys);
  }
  SwitchGuard(const SwitchGuard&) = delete;
  SwitchGuard& operator=(const SwitchGuard&) = delete;
  ~SwitchGuard() { index.end_switch(keys); }
};

std::int64_t now_nano() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The migration as the tenant's `docker events` see it (OwnershipIndex::begin_move): from
// before the twin is made until migrate() ends, having moved the container or not.
struct MoveRecord {
  SharedIndex& index;
  std::string source;
  bool moved = false;
  MoveRecord(SharedIndex& i, std::string s) : index(i), source(std::move(s)) {
    index.write([&](policy::OwnershipIndex& idx) { idx.begin_move(source); });
  }
  MoveRecord(const MoveRecord&) = delete;
  MoveRecord& operator=(const MoveRecord&) = delete;
  ~MoveRecord() {
    const std::int64_t end = now_nano();
    index.write([&](policy::OwnershipIndex& idx) { idx.end_move(source, moved, end); });
  }
};

// The container the migration removed leaves the index before the requests it held go on
// (the host's destroy event may come later): its name is the other one's again at once.
void forget_container(SharedIndex& index, const std::string& id) {
  index.write([&](policy::OwnershipIndex& idx) { idx.erase_container(id); });
}

// After a failed step 4: the twin removed, and the source started again from its kept
// checkpoint when it had stopped into one. The operator's refusal says what happened.
net::awaitable<policy::Decision> undo(UpstreamPool& pool, SharedIndex& index,
                                      std::shared_ptr<const Runtime> rt,
                                      const MigrationPlan& plan, std::string new_id,
                                      std::string checkpoint, HandoffFailure failure) {
  const auto started = Clock::now();
  std::string twin = "/containers/" + new_id + "?force=1";
  const auto removed =
      co_await docker_request_to(pool, rt, plan.to, http::verb::delete_, std::move(twin));
  if (removed && (removed->status == 204 || removed->status == 404)) {
    forget_container(index, new_id);
  }
  std::string outcome = "the container still runs on " + plan.from.host->name;
  if (failure.dumped) {
    const Target node{plan.from.host->node.get()};
    std::string resume = "/v1/containers/" + plan.old_id + "/rollback?checkpoint=" + checkpoint;
    const auto resumed = co_await docker_request_to(pool, rt, node, http::verb::post,
                                                    std::move(resume));
    const json said = resumed ? json::parse(resumed->body, nullptr, false) : json();
    if (resumed && resumed->status == 200) {
      // From the failure to the source running again: the twin's removal and the rollback.
      const std::int64_t ms = ms_since(started);
      outcome = "it was rolled back: it runs again on " + plan.from.host->name +
                (said.is_object() && said.value("state_lost", false)
                     ? ", restarted without its memory state (" +
                           said.value("restore_problem", std::string()) + ")"
                     : "") +
                ", " + std::to_string(ms) + " ms after the failure";
    } else if (resumed && resumed->status == 409) {
      outcome = "the container was never stopped: it still runs on " + plan.from.host->name;
    } else {
      outcome = resumed ? "its rollback on " + plan.from.host->name + " failed too (" +
                              message_of(*resumed) + ")"
                        : "the berth-node of " + plan.from.host->name +
                              " does not answer: berth rolls it back once it does";
    }
  }
  log_warn("migrate: " + plan.name + " from " + plan.from.host->name + " to " +
           plan.to.host->name + " failed: " + failure.message + "; " + outcome);
  co_return refused(500,
                    "the migration of " + plan.name + " to " + plan.to.host->name +
                        " failed (" + failure.message + "); " + outcome,
                    "migrate.failed");
}

}  // namespace

// Step 1: whether, from where and to where the container may move. Nothing is changed.
net::awaitable<std::expected<MigrationPlan, policy::Decision>> Session::plan_migration(
    std::shared_ptr<const Runtime> rt, const std::string& ref, const std::string& to_name) {
  if (!rt->fleet()) {
    co_return std::unexpected(refused(
        400, "a migration moves a container between the hosts of a fleet; this one has one",
        "migrate.no_fleet"));
  }
  const HostRuntime* to = rt->host(to_name);
  if (to == nullptr) {
    co_return std::unexpected(
        refused(400, "migrate needs ?to=HOST, one of the policy's hosts", "migrate.to"));
  }
  const auto holder = worker_.index().read(
      [&](const policy::OwnershipIndex& idx) { return idx.host_of_container(ref); });
  const HostRuntime* source = holder ? rt->host(*holder) : nullptr;
  if (source == nullptr) {
    co_return std::unexpected(refused(404, "No such container: " + ref, "migrate.unknown"));
  }
  const std::optional<Target> from = Target{source};
  std::optional<policy::Decision> no;
  if (from->host == to) {
    no = refused(409, "the container already runs on " + to->name, "migrate.same_host");
  } else if (!worker_.index().host_facts(to->name)->up ||
             !worker_.index().host_facts(source->name)->up) {
    no = refused(503, "host " + to->name + " or " + source->name + " is down", "migrate.down");
  } else if (to->spec != nullptr && to->spec->cordoned) {
    no = refused(409, "host " + to->name + " is cordoned", "migrate.cordoned");
  } else if (!from->host->node || !to->node) {
    no = refused(409,
                 "host " + (from->host->node ? to->name : from->host->name) +
                     " has no berth-node in the policy (hosts.node)",
                 "migrate.no_node");
  }
  if (no) {
    co_return std::unexpected(*no);
  }
  std::string path = "/containers/" + policy::escape_path(ref) + "/json";
  const auto inspected =
      co_await docker_request_to(worker_.pool(), rt, *from, http::verb::get, std::move(path));
  if (!inspected || inspected->status != 200) {
    co_return std::unexpected(
        inspected ? refused(inspected->status, message_of(*inspected), "migrate.inspect")
                  : refused(502, "the Docker daemon did not answer", "upstream.failed"));
  }
  MigrationPlan plan{*from, Target{to}, json::parse(inspected->body, nullptr, false), {}, {}};
  if (const auto blockers = policy::migration_blockers(plan.inspect); !blockers.empty()) {
    co_return std::unexpected(
        refused(409, "this container cannot move: " + joined(blockers), "migrate.immovable"));
  }
  plan.old_id = plan.inspect["Id"].get<std::string>();
  plan.name = plan.inspect["Name"].get<std::string>().substr(1);
  // A second container of its name is the twin of an earlier migration cut mid-way, which the
  // recovery (proxy/recovery.cpp) has not removed yet.
  const auto namesakes = worker_.index().read([&](const policy::OwnershipIndex& idx) {
    const auto all = idx.all_containers();
    return std::count_if(all.begin(), all.end(),
                         [&](const policy::ContainerInfo& c) { return c.name == plan.name; });
  });
  if (namesakes > 1) {
    co_return std::unexpected(refused(
        409, "an earlier migration of " + plan.name + " is not finished yet; try again shortly",
        "migrate.unfinished"));
  }
  co_return plan;
}

// Steps 2 to 5 (the file's head).
net::awaitable<std::expected<json, policy::Decision>> Session::migrate(
    std::shared_ptr<const Runtime> rt, std::string ref, std::string to) {
  auto planned = co_await plan_migration(rt, ref, to);
  if (!planned) {
    co_return std::unexpected(planned.error());
  }
  const MigrationPlan& plan = *planned;
  const MigrationHold driving(worker_.index(), plan.old_id);
  if (!driving.held()) {
    co_return std::unexpected(refused(409, "a migration of " + plan.name + " is under way",
                                      "migrate.busy"));
  }
  MoveRecord record(worker_.index(), plan.old_id);
  std::string problem = co_await image_for_migration(rt, plan.from, plan.to, plan.inspect);
  if (!problem.empty()) {
    co_return std::unexpected(refused(503, problem, "migrate.image"));
  }
  std::string create = "/containers/create?" + policy::build_query({{"name", plan.name}});
  std::string body = policy::migration_create_body(plan.inspect).dump();
  const auto created = co_await docker_request_to(worker_.pool(), rt, plan.to,
                                                  http::verb::post, std::move(create),
                                                  std::move(body));
  const json made = created ? json::parse(created->body, nullptr, false) : json();
  if (!created || created->status != 201 || !made.is_object() || !made.contains("Id")) {
    co_return std::unexpected(refused(
        500, "the container's twin could not be created on " + plan.to.host->name + ": " +
                 (created ? message_of(*created) : std::string("no answer")),
        "migrate.create"));
  }
  const std::string new_id = made["Id"].get<std::string>();
  const SwitchGuard held(worker_.index(), {plan.old_id, new_id, plan.name});
  const std::string checkpoint =
      "berth-" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  auto handed = co_await hand_over_between_nodes(rt, plan, new_id, checkpoint);
  if (!handed) {
    auto refusal = co_await undo(worker_.pool(), worker_.index(), rt, plan, new_id, checkpoint,
                                 handed.error());
    co_return std::unexpected(std::move(refusal));
  }
  record.moved = true;
  const Target source_node{plan.from.host->node.get()};
  std::string commit = "/v1/containers/" + plan.old_id + "/commit";
  const auto committed = co_await docker_request_to(worker_.pool(), rt, source_node,
                                                    http::verb::post, std::move(commit));
  if (committed && committed->status == 200) {
    forget_container(worker_.index(), plan.old_id);
  } else {
    log_warn("migrate: " + plan.name + " runs on " + plan.to.host->name +
             ", but its stopped source on " + plan.from.host->name + " was not removed: " +
             (committed ? message_of(*committed) : std::string("no answer")));
  }
  // The tenant's `docker events` say that it moved (proxy/fleet.cpp, policy::moved_event).
  worker_.index().publish_event(policy::moved_event(plan.inspect, now_nano()).dump() + "\n");
  json figures = std::move(*handed);
  figures["Id"] = new_id;
  figures["PreviousId"] = plan.old_id;
  figures["TenantId"] = policy::tenant_id_of(plan.inspect);
  figures["Name"] = plan.name;
  figures["From"] = plan.from.host->name;
  figures["To"] = plan.to.host->name;
  log_info("migrate: " + plan.name + " moved from " + plan.from.host->name + " to " +
           plan.to.host->name + " " + figures.dump());
  co_return figures;
}

// Step 4 on two connections of berth's own to the two nodes, closed after.
net::awaitable<std::expected<json, HandoffFailure>> Session::hand_over_between_nodes(
    std::shared_ptr<const Runtime> rt, const MigrationPlan& plan, const std::string& new_id,
    const std::string& checkpoint) {
  const Target source_node{plan.from.host->node.get()};
  const Target target_node{plan.to.host->node.get()};
  auto source = co_await worker_.pool().acquire(rt, source_node);
  if (!source) {
    co_return std::unexpected(HandoffFailure{false, "berth-node of " + plan.from.host->name +
                                                        ": " + source.error().message()});
  }
  auto into = co_await worker_.pool().acquire(rt, target_node);
  if (!into) {
    (*source)->close();
    co_return std::unexpected(HandoffFailure{false, "berth-node of " + plan.to.host->name +
                                                        ": " + into.error().message()});
  }
  auto progress = std::make_shared<RelayProgress>();
  net::co_spawn(client_.get_executor(), watch_relay(progress, *source, *into), net::detached);
  auto handed = co_await hand_over(**source, **into, plan.old_id, new_id, checkpoint, *progress);
  progress->done = true;
  (*source)->close();
  (*into)->close();
  if (!handed && progress->stalled) {
    handed.error().message += " (no byte moved for " + std::to_string(relay_stall.count()) + " s)";
  }
  co_return handed;
}

}  // namespace berth::proxy
