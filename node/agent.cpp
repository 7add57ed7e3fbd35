#include "node/agent.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

#include "node/criu_log.hpp"
#include "node/process.hpp"
#include "node/restore_mark.hpp"
#include <sys/statvfs.h>

namespace berth::node {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t ms(double seconds) { return static_cast<std::int64_t>(seconds * 1000.0 + 0.5); }

Outcome failure(unsigned status, std::string message) {
  Outcome o;
  o.status = status;
  o.message = std::move(message);
  return o;
}

// The container as dockerd describes it; status 0/404/... in `failed` when it cannot.
std::optional<json> inspect(const Dockerd& dockerd, const std::string& id, Outcome& failed) {
  const Reply reply = dockerd.call(http::verb::get, "/containers/" + id + "/json");
  if (reply.status != 200) {
    failed = failure(reply.status == 404 ? 404 : 500,
                     reply.status == 404 ? "no such container: " + id : docker_message(reply));
    return std::nullopt;
  }
  auto doc = json::parse(reply.body, nullptr, false);
  if (!doc.is_object()) {
    failed = failure(500, "dockerd's inspect is not JSON");
    return std::nullopt;
  }
  return doc;
}

// Whether dockerd's inspect of a container says it runs.
bool running(const json& c) { return c.value("State", json::object()).value("Running", false); }

// True when the container (dockerd's inspect) logs with json-file.
bool logs_to_json_file(const json& c) {
  const json& host = c.contains("HostConfig") ? c["HostConfig"] : json();
  const json& config = host.is_object() && host.contains("LogConfig") ? host["LogConfig"] : json();
  return config.is_object() && config.contains("Type") && config["Type"] == "json-file";
}

// Where json-file writes the container's log (dockerd's LogPath), or empty for another driver.
std::string json_log_path(const json& c) {
  const json& path = c.contains("LogPath") ? c["LogPath"] : json();
  return logs_to_json_file(c) && path.is_string() ? path.get<std::string>() : std::string();
}

// The container's writable layer (overlay2's UpperDir), or empty.
std::string upper_dir(const json& c) {
  const json driver = c.value("GraphDriver", json::object());
  if (driver.value("Name", std::string()) != "overlay2") {
    return {};
  }
  const std::string upper = driver.value("Data", json::object()).value("UpperDir", std::string());
  return fs::path(upper).filename() == "diff" ? upper : std::string();
}

std::vector<std::string> drain_rule(int pid, const char* op) {
  return {"nsenter", "-t", std::to_string(pid), "-n", "iptables", "-w", op, "INPUT", "-p", "tcp",
          "--syn", "-j", "DROP"};
}

void remove_tree(const fs::path& p) {
  std::error_code ignored;
  fs::remove_all(p, ignored);
}

// Where restore() keeps a received checkpoint's pages, in the container's directory, until the
// restore is over (see keep_pages_aside()).
constexpr std::string_view pages_aside = "berth-pages";

// CRIU's memory pages in a checkpoint: nearly all of its size.
bool is_pages_file(const fs::path& file) {
  const std::string name = file.filename().string();
  return name.starts_with("pages-") && name.ends_with(".img");
}

// A symbolic link's text that names `file` (absolute) from any directory: it climbs to / first.
// CRIU reads a checkpoint's pages from inside the restored container's mount namespace, where
// an absolute link does not resolve (../shared/lab-multihost: "Can't open parent path"); a
// relative one resolves from the directory CRIU opened, wherever containerd unpacked the set.
std::string climbing_link(const fs::path& file) {
  std::string text;
  for (int i = 0; i < 32; ++i) {
    text += "../";
  }
  return text + file.relative_path().string();
}

// A checkpoint's pages kept out of the way a restore through dockerd takes. dockerd archives
// the whole checkpoint directory into containerd's content store, and containerd unpacks it
// again into a temporary directory, before runc reads a byte: for 1 GiB of memory that trip
// took 36.8 s in the lab, against 3.4 s with the pages outside it. Each pages file of `set` is
// moved into `aside` (one filesystem) and replaced by a link to it, which both archives carry
// as a link.
std::string keep_pages_aside(const fs::path& set, const fs::path& aside) {
  std::error_code ec;
  fs::create_directories(aside, ec);
  if (ec) {
    return "cannot make " + aside.string() + ": " + ec.message();
  }
  for (const auto& e : fs::directory_iterator(set, ec)) {
    std::error_code step;
    if (!is_pages_file(e.path()) || e.symlink_status(step).type() != fs::file_type::regular) {
      continue;
    }
    const fs::path kept = fs::absolute(aside / e.path().filename());
    fs::rename(e.path(), kept, step);
    if (!step) {
      fs::create_symlink(climbing_link(kept), e.path(), step);
    }
    if (step) {
      return "pages " + e.path().string() + ": " + step.message();
    }
  }
  return ec ? "cannot read " + set.string() + ": " + ec.message() : std::string();
}

// A copy of the checkpoint `from` at `to` whose pages are links to `from`'s (see
// keep_pages_aside()): `from` must stay until the restore is over.
std::string copy_set_linking_pages(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& e : fs::directory_iterator(from, ec)) {
    const fs::path into = to / e.path().filename();
    std::error_code step;
    if (is_pages_file(e.path())) {
      fs::create_symlink(climbing_link(fs::absolute(e.path())), into, step);
    } else {
      fs::copy(e.path(), into, fs::copy_options::recursive | fs::copy_options::copy_symlinks, step);
    }
    if (step) {
      return "copy " + e.path().string() + ": " + step.message();
    }
  }
  return ec ? "copy " + from.string() + ": " + ec.message() : std::string();
}

// A container's freezer as runc keeps it (its state.json under `runc_root`): the file that
// freezes it, the words that freeze and thaw it, and the file and word that say it is frozen.
struct Freezer {
  fs::path control;
  std::string freeze, thaw;
  fs::path state;
  std::string frozen;
};

std::optional<Freezer> freezer_of(const fs::path& runc_state) {
  std::ifstream in(runc_state);
  const json doc = json::parse(in, nullptr, false);
  if (!doc.is_object() || !doc.contains("cgroup_paths") || !doc["cgroup_paths"].is_object()) {
    return std::nullopt;
  }
  const json& paths = doc["cgroup_paths"];
  std::error_code ec;
  // CRIU takes cgroup v1's freezer where there is one (a hybrid host has both).
  if (paths.contains("freezer") && paths["freezer"].is_string()) {
    const fs::path dir = paths["freezer"].get<std::string>();
    if (fs::exists(dir / "freezer.state", ec)) {
      return Freezer{dir / "freezer.state", "FROZEN", "THAWED", dir / "freezer.state", "FROZEN"};
    }
  }
  if (paths.contains("") && paths[""].is_string()) {
    const fs::path dir = paths[""].get<std::string>();
    if (fs::exists(dir / "cgroup.freeze", ec)) {
      return Freezer{dir / "cgroup.freeze", "1", "0", dir / "cgroup.events", "frozen 1"};
    }
  }
  return std::nullopt;
}

bool write_word(const fs::path& file, const std::string& word) {
  std::ofstream out(file);
  out << word;
  out.flush();
  return static_cast<bool>(out);
}

bool says(const fs::path& file, const std::string& word) {
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(word) != std::string::npos;
}

}  // namespace

bool valid_container_id(const std::string& id) {
  return id.size() == 64 &&
         id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool valid_checkpoint_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && name.front() != '-' &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

void Figures::phase(const std::string& name, double seconds, bool ok) {
  std::lock_guard lock(mutex_);
  Phase& p = phases_[name];
  (ok ? p.ok : p.failed) += 1;
  p.seconds += seconds;
  p.last = seconds;
}

void Figures::bytes(const std::string& direction, std::uint64_t n) {
  std::lock_guard lock(mutex_);
  bytes_[direction] += n;
}

std::string Figures::prometheus_text() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP berth_node_phase_total Migration phases run on this host, by outcome.\n"
         "# TYPE berth_node_phase_total counter\n";
  for (const auto& [name, p] : phases_) {
    out << "berth_node_phase_total{phase=\"" << name << "\",outcome=\"ok\"} " << p.ok << "\n"
        << "berth_node_phase_total{phase=\"" << name << "\",outcome=\"failed\"} " << p.failed
        << "\n";
  }
  out << "# HELP berth_node_phase_seconds_total Time spent in each phase.\n"
         "# TYPE berth_node_phase_seconds_total counter\n";
  for (const auto& [name, p] : phases_) {
    out << "berth_node_phase_seconds_total{phase=\"" << name << "\"} " << p.seconds << "\n";
  }
  out << "# HELP berth_node_phase_last_seconds The last run of each phase.\n"
         "# TYPE berth_node_phase_last_seconds gauge\n";
  for (const auto& [name, p] : phases_) {
    out << "berth_node_phase_last_seconds{phase=\"" << name << "\"} " << p.last << "\n";
  }
  out << "# HELP berth_node_bytes_total Checkpoint and writable-layer bytes moved.\n"
         "# TYPE berth_node_bytes_total counter\n";
  for (const auto& [direction, n] : bytes_) {
    out << "berth_node_bytes_total{direction=\"" << direction << "\"} " << n << "\n";
  }
  return out.str();
}

namespace {

constexpr std::string_view criu_config_mark = "# berth-node: CRIU options for live migration";
constexpr std::string_view criu_options = "tcp-established\nskip-in-flight\n";

}  // namespace

std::string ensure_criu_config(const Settings& settings) {
  const fs::path file(settings.criu_config);
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bool mine = !in.is_open() || text.starts_with(criu_config_mark);
  if (!mine) {
    const bool enough = text.find("tcp-established") != std::string::npos &&
                        text.find("skip-in-flight") != std::string::npos;
    return enough ? std::string()
                  : file.string() + " is not berth-node's and lacks tcp-established and "
                                    "skip-in-flight: containers with open TCP connections "
                                    "cannot move";
  }
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const fs::path temp = file.string() + ".berth-node";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << criu_config_mark << "\n" << criu_options;
    if (!out) {
      return "cannot write " + temp.string();
    }
  }
  fs::rename(temp, file, ec);
  return ec ? "cannot write " + file.string() + ": " + ec.message() : std::string();
}

Agent::Agent(Settings settings) : settings_(std::move(settings)), dockerd_(settings_.docker_socket) {
  fs::create_directories(fs::path(settings_.state_dir) / "ckpt");
}

fs::path Agent::container_dir(const std::string& id) const {
  return fs::path(settings_.data_root) / "containers" / id;
}

std::string Agent::kept(const std::string& id) const {
  return (fs::path(settings_.state_dir) / "ckpt" / id).string();
}

json Agent::kept_source(const std::string& id) const {
  std::ifstream in(fs::path(kept(id)) / "source.json");
  return json::parse(in, nullptr, false);
}

json Agent::preflight() const {
  json out = json::object();
  const Ran version = run({settings_.criu, "--version"});
  out["criu_version"] = version.ok() ? version.output.substr(0, version.output.find('\n')) : "";
  const Ran check = run({settings_.criu, "check"});
  out["criu_check"] = check.ok();
  if (!check.ok()) {
    out["criu_problem"] = check.output.substr(0, 2000);
  }
  // Pre-copy needs the kernel's soft-dirty bits; post-copy needs userfaultfd.
  out["dirty_tracking"] = run({settings_.criu, "check", "--feature", "mem_dirty_track"}).ok();
  out["lazy_pages"] = run({settings_.criu, "check", "--feature", "uffd-noncoop"}).ok();
  const Reply info = dockerd_.call(http::verb::get, "/info");
  const auto doc = json::parse(info.body, nullptr, false);
  out["docker_checkpoints"] = doc.is_object() && doc.value("ExperimentalBuild", false);
  out["storage_driver"] = doc.is_object() ? doc.value("Driver", std::string()) : std::string();
  struct statvfs space {};
  if (::statvfs(settings_.data_root.c_str(), &space) == 0) {
    out["data_root_free_bytes"] = static_cast<std::uint64_t>(space.f_bavail) * space.f_frsize;
  }
  const std::string options = ensure_criu_config(settings_);
  out["criu_options"] = options.empty();
  if (!options.empty()) {
    out["criu_options_problem"] = options;
  }
  // runc's state of dockerd's containers, where the dump finds them (--exec-root).
  std::error_code ec;
  out["runc_root"] = fs::is_directory(settings_.runc_root, ec);
  out["ready"] = out["runc_root"].get<bool>() && out["criu_check"].get<bool>() &&
                 out["docker_checkpoints"].get<bool>() && out["storage_driver"] == "overlay2" &&
                 options.empty();
  return out;
}

Outcome Agent::checkpoint(const std::string& id, const std::string& name, int drain_ms,
                          const std::string& twin) {
  std::lock_guard lock(busy_);
  if (fs::exists(fs::path(kept(id)) / "source.json")) {
    // Its first state (restart policy, drain) is in there: berth-proxy's recovery ends that
    // migration first.
    return failure(409, "an earlier migration of this container is not finished yet");
  }
  Outcome failed;
  const auto c = inspect(dockerd_, id, failed);
  if (!c) {
    return failed;
  }
  const json state = c->value("State", json::object());
  if (!state.value("Running", false) || state.value("Paused", false)) {
    return failure(409, "the container is not running");
  }
  const std::string upper = upper_dir(*c);
  if (upper.empty()) {
    return failure(409, "the container's writable layer is not overlay2's");
  }
  const fs::path dir = kept(id);
  remove_tree(dir);
  std::error_code made;
  fs::create_directories(dir, made);
  if (made) {
    return failure(500, "cannot make " + dir.string() + ": " + made.message());
  }
  const json restart = c->value("HostConfig", json::object()).value("RestartPolicy", json::object());
  const json networks = c->value("NetworkSettings", json::object()).value("Networks", json::object());
  std::ofstream(dir / "source.json")
      << json{{"RestartPolicy", restart}, {"UpperDir", upper}, {"Networks", networks},
              {"LogPath", json_log_path(*c)}, {"Twin", twin}}
             .dump();
  // dockerd must not start the source again once it has stopped into its checkpoint.
  const json no_restart = {{"RestartPolicy", {{"Name", "no"}}}};
  const Reply updated =
      dockerd_.call(http::verb::post, "/containers/" + id + "/update", no_restart.dump());
  if (updated.status != 200) {
    remove_tree(dir);
    return failure(500, "restart policy: " + docker_message(updated));
  }
  const int pid = state.value("Pid", 0);
  const auto drain_start = Clock::now();
  const bool drained = drain_ms > 0 && pid > 0 && run(drain_rule(pid, "-I")).ok();
  if (drained) {
    std::this_thread::sleep_for(std::chrono::milliseconds(drain_ms));
  }
  const double drain_s = seconds_since(drain_start);
  const auto dump_start = Clock::now();
  const std::string problem = dump(id, dir / name);
  const double dump_s = seconds_since(dump_start);
  figures_.phase("dump", dump_s, problem.empty());
  if (!problem.empty()) {
    Outcome gone;
    const auto now = inspect(dockerd_, id, gone);
    const bool runs = now && running(*now);
    if (drained && runs) {
      (void)run(drain_rule(pid, "-D"));
    }
    (void)dockerd_.call(http::verb::post, "/containers/" + id + "/update",
                        json{{"RestartPolicy", restart}}.dump());
    remove_tree(dir);
    std::string why = "checkpoint: " + problem;
    if (!runs) {
      // Stopped by a dump that failed: it runs again, without its memory.
      const Reply plain = dockerd_.call(http::verb::post, "/containers/" + id + "/start");
      why += plain.status < 400 && plain.status != 0
                 ? "; the dump had stopped it: it was started again without its memory state"
                 : "; the dump had stopped it and it could not be started again: " +
                       docker_message(plain);
    }
    std::cerr << "berth-node: " << id << ": " << why << "\n";
    return failure(500, why);
  }
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir / name, ec)) {
    if (e.is_regular_file(ec)) {
      bytes += e.file_size(ec);
    }
  }
  Outcome o;
  o.detail = {{"drain_ms", drained ? ms(drain_s) : 0}, {"dump_ms", ms(dump_s)},
              {"checkpoint_bytes", bytes}};
  return o;
}

std::string Agent::dump(const std::string& id, const fs::path& images) {
  // runc itself, underneath dockerd: dockerd's own checkpoint sends every page through
  // containerd's content store (see keep_pages_aside()). runc reads CRIU's options from
  // settings.criu_config, as for dockerd's calls.
  //
  // The container is frozen first: CRIU would freeze it itself, but it looks whether the
  // freezer is done only every 100 ms, which was 100 ms of every downtime here; finding it
  // frozen, it goes straight on (and thaws it after seizing its tasks, as when it froze it).
  const auto freezer = freezer_of(fs::path(settings_.runc_root) / id / "state.json");
  bool frozen = false;
  if (freezer && write_word(freezer->control, freezer->freeze)) {
    for (int i = 0; i < 1000 && !frozen; ++i) {
      frozen = says(freezer->state, freezer->frozen);
      if (!frozen) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (!frozen) {
      (void)write_word(freezer->control, freezer->thaw);  // CRIU does it, its own way
    }
  }
  const Ran dumped = run({settings_.runc, "--root", settings_.runc_root, "--criu", settings_.criu,
                          "checkpoint", "--tcp-established", "--image-path", images.string(), id});
  if (!dumped.ok() && frozen) {
    (void)write_word(freezer->control, freezer->thaw);  // never left frozen by a failed dump
  }
  if (!dumped.ok()) {
    std::string why = "runc: " + dumped.output.substr(0, 500);
    std::ifstream log(images / "dump.log");
    if (const std::string criu = criu_errors(log); !criu.empty()) {
      why += "; CRIU: " + criu;
    }
    return why;
  }
  return {};
}

void Agent::wait_stopped(const std::string& id) {
  const auto start = Clock::now();
  bool stopped = false;
  for (int i = 0; i < 1000 && !stopped; ++i) {
    Outcome gone;
    const auto c = inspect(dockerd_, id, gone);
    stopped = !c || !running(*c);
    if (!stopped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  figures_.phase("exit_seen", seconds_since(start), stopped);
}

std::vector<std::string> Agent::archive_command(const std::string& id,
                                                const std::string& name) const {
  const json source = kept_source(id);
  const std::string upper = source.is_object() ? source.value("UpperDir", std::string()) : "";
  std::vector<std::string> command = {"tar", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                                      "-c", "-f", "-", "-C", kept(id), name,
                                      "-C", fs::path(upper).parent_path().string(), "diff"};
  // The container's log and its rotated files, so that `docker logs` on the twin shows what
  // was logged before the move.
  const fs::path log = source.is_object() ? source.value("LogPath", std::string()) : "";
  std::vector<std::string> logs;
  std::error_code ec;
  if (!log.empty()) {
    for (const auto& e : fs::directory_iterator(log.parent_path(), ec)) {
      const std::string file = e.path().filename().string();
      if (e.symlink_status(ec).type() == fs::file_type::regular &&
          file.starts_with(log.filename().string())) {
        logs.push_back(file);
      }
    }
  }
  if (!logs.empty()) {
    command.insert(command.end(), {"-C", log.parent_path().string()});
    command.insert(command.end(), logs.begin(), logs.end());
  }
  return command;
}

Outcome Agent::commit(const std::string& id) {
  std::lock_guard lock(busy_);
  const Reply removed = dockerd_.call(http::verb::delete_, "/containers/" + id + "?force=1");
  if (removed.status != 204 && removed.status != 404) {
    return failure(500, "remove the source: " + docker_message(removed));  // kept: tried again
  }
  remove_tree(kept(id));
  return {};
}

Outcome Agent::start_from_checkpoint(const std::string& id, const std::string& name) {
  const auto start = Clock::now();
  // This restore's mark, in a file of the set: containerd unpacks the whole set into a
  // temporary directory of its own and leaves it there, and the mark tells this restore's
  // directories from those of restores other dockerds on this machine run meanwhile, which
  // are still being read. Each try marks the set anew: dockerd refuses a set whose archive is
  // already in containerd's content store ("content sha256:...: already exists"), as an
  // earlier try can leave it; CRIU reads only its own files.
  const std::string mark = restore_mark(name);
  const fs::path set = container_dir(id) / "checkpoints" / name;
  Reply started;
  // The address is the source's: on an overlay the manager frees it a moment after the source
  // stopped.
  int attempts = 0;
  for (;;) {
    ++attempts;
    std::ofstream(set / restore_mark_file) << mark << " " << attempts << "\n";
    started = dockerd_.call(http::verb::post, "/containers/" + id + "/start?checkpoint=" + name);
    if (started.status < 400 || seconds_since(start) > 10 ||
        docker_message(started).find("in use") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double restore_s = seconds_since(start);
  figures_.phase("restore", restore_s, started.status < 400);
  clean_containerd_tmp(mark);
  const fs::path home = container_dir(id);
  remove_tree(home / "checkpoints" / name);
  remove_tree(home / pages_aside);  // the pages of a set restore() received
  if (started.status >= 400 || started.status == 0) {
    return failure(500, "restore: " + docker_message(started));
  }
  Outcome o;
  std::ifstream log(fs::path(settings_.data_root) / "containerd" / "daemon" /
                    "io.containerd.runtime.v2.task" / "moby" / id / "restore.log");
  o.detail = restore_figures(log);
  o.detail["restore_ms"] = ms(restore_s);
  o.detail["restore_attempts"] = attempts;
  return o;
}

// The source's json-file logs from the archive, renamed for the twin ("<old id>-json.log.1"
// becomes "<id>-json.log.1") into its directory, before dockerd starts it: json-file opens its
// log to append, so `docker logs` shows the history first.
void Agent::take_logs(const std::string& id, const json& twin, const fs::path& incoming) const {
  if (!logs_to_json_file(twin)) {
    return;  // another driver keeps its logs elsewhere, in its own form
  }
  const fs::path into = container_dir(id);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(incoming, ec)) {
    const std::string file = e.path().filename().string();
    constexpr std::string_view suffix = "-json.log";
    if (file.size() < 64 + suffix.size() || !valid_container_id(file.substr(0, 64)) ||
        file.compare(64, suffix.size(), suffix) != 0 ||
        e.symlink_status(ec).type() != fs::file_type::regular) {
      continue;
    }
    std::error_code moved;
    fs::rename(e.path(), into / (id + file.substr(64)), moved);
    if (moved) {
      std::cerr << "berth-node: " << id << ": log " << file << " not carried over: "
                << moved.message() << "\n";
    }
  }
}

void Agent::clean_containerd_tmp(const std::string& mark) const {
  // A minute: a restore whose node was killed may still be read by its CRIU for a while.
  for (const fs::path& dir :
       containerd_dirs_to_clean(settings_.containerd_tmp, mark, std::chrono::minutes(1))) {
    remove_tree(dir);
  }
}

// A stopped container's addresses made its own again: dockerd gives a container without a
// fixed address (IPAMConfig) whatever is free at its next start, and CRIU cannot bind its
// restored sockets to any other. Each network is left and joined again with the address the
// container had, and its aliases.
void Agent::pin_addresses(const std::string& id, const json& networks) {
  for (const auto& [network, endpoint] : networks.items()) {
    const std::string address = endpoint.value("IPAddress", std::string());
    if (address.empty() || network == "bridge" || network == "host" || network == "none") {
      continue;
    }
    json aliases = json::array();
    for (const json& alias : endpoint.value("Aliases", json::array())) {
      if (alias.is_string() && alias != id.substr(0, 12)) {
        aliases.push_back(alias);
      }
    }
    const std::string path = "/networks/" + network;
    (void)dockerd_.call(http::verb::post, path + "/disconnect",
                        json{{"Container", id}, {"Force", true}}.dump());
    const json join = {{"Container", id},
                       {"EndpointConfig",
                        {{"IPAMConfig", {{"IPv4Address", address}}}, {"Aliases", aliases}}}};
    const Reply joined = dockerd_.call(http::verb::post, path + "/connect", join.dump());
    if (joined.status != 200) {
      std::cerr << "berth-node: " << id << " could not get " << address << " on " << network
                << " back: " << docker_message(joined) << "\n";
    }
  }
}

Outcome Agent::rollback(const std::string& id, const std::string& name) {
  std::lock_guard lock(busy_);
  const auto start = Clock::now();
  const fs::path dir = kept(id);
  const json source = kept_source(id);
  if (!source.is_object()) {
    return failure(409, "no checkpoint of this container is kept here");
  }
  Outcome failed;
  auto c = inspect(dockerd_, id, failed);
  if (!c) {
    if (failed.status == 404) {
      remove_tree(dir);  // nothing left to roll back
    }
    return failed;
  }
  std::error_code ec;
  const bool dumped = !name.empty() && fs::exists(dir / name / "inventory.img", ec);
  if (dumped && running(*c)) {
    wait_stopped(id);  // stopped by the dump: dockerd may not know it yet
    c = inspect(dockerd_, id, failed);
    if (!c) {
      return failed;
    }
  }
  if (running(*c)) {
    return failure(409, "the container runs: nothing to roll back (release its checkpoint)");
  }
  // No checkpoint when the node was killed before the dump ended and the source stopped
  // anyway (a reboot while drained): it is started afresh.
  Outcome o = failure(500, "no checkpoint was made");
  if (!name.empty() && fs::exists(dir / name)) {
    pin_addresses(id, source.value("Networks", json::object()));
    const fs::path into = container_dir(id) / "checkpoints";
    std::error_code made;
    fs::create_directories(into, made);
    remove_tree(into / name);
    const std::string copied = copy_set_linking_pages(dir / name, into / name);
    o = copied.empty() ? start_from_checkpoint(id, name) : failure(500, copied);
  }
  if (!o.ok()) {
    std::cerr << "berth-node: rollback of " << id << " from its checkpoint failed: " << o.message
              << "; starting it afresh\n";
    // Its memory is lost, but it runs: better than a container that is gone.
    const Reply plain = dockerd_.call(http::verb::post, "/containers/" + id + "/start");
    if (plain.status < 400 && plain.status != 0) {
      const std::string why = o.message;
      o = Outcome{};
      o.detail["state_lost"] = true;
      o.detail["restore_problem"] = why;
    }
  }
  (void)dockerd_.call(http::verb::post, "/containers/" + id + "/update",
                      json{{"RestartPolicy", source.value("RestartPolicy", json::object())}}.dump());
  if (o.ok()) {
    remove_tree(dir);  // else kept, and berth-proxy's recovery tries again
  }
  figures_.phase("rollback", seconds_since(start), o.ok());
  return o;
}

Outcome Agent::release(const std::string& id) {
  std::lock_guard lock(busy_);
  const fs::path dir = kept(id);
  const json source = kept_source(id);
  if (!source.is_object()) {
    return failure(409, "no checkpoint of this container is kept here");
  }
  Outcome failed;
  const auto c = inspect(dockerd_, id, failed);
  if (c && running(*c)) {
    const int pid = c->value("State", json::object()).value("Pid", 0);
    // Deleted until none is left: a drain interrupted before its own -D left one.
    for (int i = 0; pid > 0 && i < 8 && run(drain_rule(pid, "-D")).ok(); ++i) {
    }
    const Reply updated = dockerd_.call(
        http::verb::post, "/containers/" + id + "/update",
        json{{"RestartPolicy", source.value("RestartPolicy", json::object())}}.dump());
    if (updated.status != 200) {
      return failure(500, "restart policy: " + docker_message(updated));
    }
  } else if (c) {
    // A source stopped into its checkpoint is rolled back or committed, never let go of.
    return failure(409, "the container is stopped: roll it back or commit it");
  } else if (failed.status != 404) {
    return failed;
  }
  remove_tree(dir);
  return {};
}

json Agent::kept_checkpoints() const {
  json out = json::array();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(settings_.state_dir) / "ckpt", ec)) {
    const std::string id = e.path().filename().string();
    if (!valid_container_id(id) || !fs::exists(e.path() / "source.json", ec)) {
      continue;
    }
    const json source = kept_source(id);
    const json twin = source.is_object() ? source.value("Twin", json()) : json();
    std::string checkpoint;
    for (const auto& sub : fs::directory_iterator(e.path(), ec)) {
      const std::string name = sub.path().filename().string();
      if (sub.is_directory(ec) && valid_checkpoint_name(name)) {
        checkpoint = name;
      }
    }
    out.push_back({{"Id", id}, {"Checkpoint", checkpoint},
                   {"Twin", twin.is_string() ? twin.get<std::string>() : std::string()}});
  }
  return out;
}

Outcome Agent::discard(const std::string& id) {
  std::lock_guard lock(busy_);
  Outcome failed;
  const auto c = inspect(dockerd_, id, failed);
  if (!c) {
    return failed.status == 404 ? Outcome{} : failed;
  }
  if (c->value("State", json::object()).value("Status", std::string()) != "created") {
    return failure(409, "the container has run: it is the container now");
  }
  const Reply removed = dockerd_.call(http::verb::delete_, "/containers/" + id + "?force=1");
  if (removed.status != 204 && removed.status != 404) {
    return failure(500, "remove the twin: " + docker_message(removed));
  }
  return {};
}

std::string Agent::begin_restore(const std::string& id, std::string& problem) {
  Outcome failed;
  const auto c = inspect(dockerd_, id, failed);
  if (!c) {
    problem = failed.message;
    return {};
  }
  if (running(*c)) {
    problem = "the target container is already running";
    return {};
  }
  if (upper_dir(*c).empty()) {
    problem = "the target container's writable layer is not overlay2's";
    return {};
  }
  const fs::path dir = container_dir(id) / "berth-incoming";
  remove_tree(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    problem = "cannot make " + dir.string() + ": " + ec.message();
    return {};
  }
  return dir.string();
}

std::vector<std::string> Agent::extract_command(const std::string& dir) {
  return {"tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-x", "-p", "-f", "-",
          "-C", dir};
}

void Agent::abandon_restore(const std::string& dir) { remove_tree(dir); }

Outcome Agent::restore(const std::string& id, const std::string& name, const std::string& dir) {
  std::lock_guard lock(busy_);
  Outcome failed;
  const auto c = inspect(dockerd_, id, failed);
  if (!c) {
    remove_tree(dir);
    return failed;
  }
  const std::string upper = upper_dir(*c);
  const fs::path incoming(dir);
  if (upper.empty() || !fs::is_directory(incoming / name) || !fs::is_directory(incoming / "diff")) {
    remove_tree(dir);
    return failure(400, "the archive holds no checkpoint '" + name + "' and writable layer");
  }
  const auto layer_start = Clock::now();
  const Ran layer = run({"cp", "-a", (incoming / "diff").string() + "/.", upper + "/"});
  figures_.phase("layer", seconds_since(layer_start), layer.ok());
  take_logs(id, *c, incoming);
  const fs::path home = container_dir(id);
  const std::string aside = keep_pages_aside(incoming / name, home / pages_aside);
  std::error_code ec;
  fs::create_directories(home / "checkpoints", ec);
  if (!ec && aside.empty()) {
    fs::rename(incoming / name, home / "checkpoints" / name, ec);
  }
  remove_tree(dir);
  if (!layer.ok() || ec || !aside.empty()) {
    remove_tree(home / pages_aside);
    return failure(500, !layer.ok()      ? "writable layer: " + layer.output.substr(0, 500)
                        : !aside.empty() ? aside
                                         : "checkpoint into place: " + ec.message());
  }
  return start_from_checkpoint(id, name);
}

}  // namespace berth::node
