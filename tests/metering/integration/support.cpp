#include "tests/metering/integration/support.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "metering/http.hpp"

namespace berth::metering::it {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

const HttpEndpoint& docker_endpoint() {
  static const HttpEndpoint ep = parse_endpoint("/var/run/docker.sock").value();
  return ep;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// "key value" from a flat keyed kernel file.
std::optional<double> keyed(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  double v = 0;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
  }
  return std::nullopt;
}

bool v2() { return fs::exists("/sys/fs/cgroup/cgroup.controllers"); }

}  // namespace

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/berth-meter-it-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("BERTH_KEEP_TEMP");
  if (keep != nullptr && std::string_view(keep) == "1") {
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TestTenant::TestTenant(char suffix) : id_("mt" + std::to_string(::getpid()) + suffix) {}

TestTenant::~TestTenant() {
  remove_tenant_containers(id_);
  // dockerd made /berth/<id> in every controller; it disappears once no container is left.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::error_code ec;
  for (;;) {
    bool left = false;
    for (const auto& controller : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      const fs::path dir = controller.path() / "berth" / id_;
      if (fs::exists(dir) && ::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
        left = true;
      }
    }
    const fs::path v2dir = fs::path("/sys/fs/cgroup/berth") / id_;
    if (v2() && fs::exists(v2dir) && ::rmdir(v2dir.c_str()) != 0) {
      left = true;
    }
    if (!left || Clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string run_container(const ContainerSpec& spec) {
  nlohmann::json host = {{"AutoRemove", spec.auto_remove}};
  nlohmann::json labels = nlohmann::json::object();
  if (!spec.tenant.empty()) {
    labels["berth.tenant"] = spec.tenant;
    host["CgroupParent"] = "/berth/" + spec.tenant;
  } else {
    labels["berth.test"] = "metering-" + std::to_string(::getpid());
    if (!spec.cgroup_parent.empty()) {
      host["CgroupParent"] = spec.cgroup_parent;
    }
  }
  if (spec.cpus > 0) {
    host["NanoCpus"] = static_cast<std::int64_t>(spec.cpus * 1e9);
  }
  if (spec.shm_bytes > 0) {
    host["ShmSize"] = spec.shm_bytes;
  }
  const nlohmann::json body = {
      {"Image", image}, {"Cmd", spec.cmd}, {"Labels", labels}, {"HostConfig", host}};
  auto created = http_request(docker_endpoint(), "POST", "/containers/create", body.dump());
  if (!created || created->status != 201) {
    throw std::runtime_error("create: " + (created ? created->body : created.error()));
  }
  const std::string id = nlohmann::json::parse(created->body).value("Id", "");
  auto started = http_request(docker_endpoint(), "POST", "/containers/" + id + "/start", "");
  if (!started || started->status != 204) {
    throw std::runtime_error("start: " + (started ? started->body : started.error()));
  }
  return id;
}

void remove_container(const std::string& id) {
  (void)http_request(docker_endpoint(), "DELETE", "/containers/" + id + "?force=1&v=1", "");
}

bool wait_container(const std::string& id, std::chrono::seconds timeout) {
  auto r = http_request(docker_endpoint(), "POST", "/containers/" + id + "/wait", "",
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  // 404: already gone (AutoRemove).
  return r && (r->status == 200 || r->status == 404);
}

void remove_tenant_containers(const std::string& tenant) {
  const std::string filters =
      url_encode(nlohmann::json{{"label", {"berth.tenant=" + tenant}}}.dump());
  auto r = http_request(docker_endpoint(), "GET", "/containers/json?all=1&filters=" + filters);
  if (!r || r->status != 200) {
    return;
  }
  for (const auto& c : nlohmann::json::parse(r->body, nullptr, false)) {
    if (c.is_object() && c.contains("Id")) {
      remove_container(c["Id"].get<std::string>());
    }
  }
}

MeterProcess::MeterProcess(std::vector<std::string> args, fs::path log) : log_(std::move(log)) {
  const char* env_bin = std::getenv("BERTH_METER_BIN");
  const std::string bin = env_bin != nullptr ? env_bin : BERTH_METER_BIN;
  args.insert(args.begin(), bin);
  // A restarted meter appends to the same log: only what it writes counts.
  const std::size_t log_start = read_all(log_).size();
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    const std::string all = read_all(log_);
    const std::string text = all.size() > log_start ? all.substr(log_start) : std::string();
    const auto pos = text.rfind("berth-meter: ready on port ");
    if (pos != std::string::npos && text.find('\n', pos) != std::string::npos) {
      port_ = std::stoi(text.substr(pos + 27));
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("berth-meter did not become ready:\n" + log_tail());
}

MeterProcess::~MeterProcess() {
  if (pid_ > 0) {
    (void)terminate();
  }
}

void MeterProcess::kill9() {
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int MeterProcess::terminate() {
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return status;
}

std::string MeterProcess::log_tail() const {
  const std::string text = read_all(log_);
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

std::string scrape(int port) {
  HttpEndpoint ep;
  ep.host = "127.0.0.1";
  ep.port = static_cast<std::uint16_t>(port);
  auto r = http_request(ep, "GET", "/metrics", {}, std::chrono::seconds(10));
  if (!r || r->status != 200) {
    throw std::runtime_error("scrape failed: " + (r ? std::to_string(r->status) : r.error()));
  }
  return r->body;
}

std::optional<double> sample(const std::string& metrics, const std::string& series) {
  const auto pos = metrics.find("\n" + series + " ");
  if (pos == std::string::npos) {
    return std::nullopt;
  }
  return std::stod(metrics.substr(pos + series.size() + 2));
}

KernelReference::KernelReference(std::string tenant, std::chrono::milliseconds period)
    : tenant_(std::move(tenant)), period_(period), thread_([this] { run(); }) {}

KernelReference::~KernelReference() { stop(); }

void KernelReference::stop() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

double KernelReference::memory_byte_seconds() const {
  const std::lock_guard lock(mu_);
  return byte_seconds_;
}

std::optional<double> KernelReference::working_set(const std::string& tenant) {
  if (v2()) {
    const fs::path dir = fs::path("/sys/fs/cgroup/berth") / tenant;
    const std::string current = read_all(dir / "memory.current");
    if (current.empty()) {
      return std::nullopt;
    }
    const auto inactive = keyed(read_all(dir / "memory.stat"), "inactive_file");
    return std::stod(current) - inactive.value_or(0);
  }
  const fs::path dir = fs::path("/sys/fs/cgroup/memory/berth") / tenant;
  const std::string usage = read_all(dir / "memory.usage_in_bytes");
  if (usage.empty()) {
    return std::nullopt;
  }
  const auto inactive = keyed(read_all(dir / "memory.stat"), "total_inactive_file");
  return std::stod(usage) - inactive.value_or(0);
}

std::optional<double> KernelReference::cpu_seconds(const std::string& tenant) {
  if (v2()) {
    const auto usec = keyed(read_all(fs::path("/sys/fs/cgroup/berth") / tenant / "cpu.stat"),
                            "usage_usec");
    if (!usec) {
      return std::nullopt;
    }
    return *usec / 1e6;
  }
  const std::string ns =
      read_all(fs::path("/sys/fs/cgroup/cpuacct/berth") / tenant / "cpuacct.usage");
  if (ns.empty()) {
    return std::nullopt;
  }
  return std::stod(ns) / 1e9;
}

void KernelReference::run() {
  std::optional<double> prev;
  auto prev_t = Clock::now();
  auto next = prev_t;
  while (!stop_) {
    const auto now = Clock::now();
    // A cgroup that does not exist (yet, or any more) holds nothing.
    const double ws = working_set(tenant_).value_or(0.0);
    if (prev) {
      const double dt = std::chrono::duration<double>(now - prev_t).count();
      const std::lock_guard lock(mu_);
      byte_seconds_ += (*prev + ws) / 2.0 * dt;
    }
    prev = ws;
    prev_t = now;
    ++samples_;
    next += period_;
    std::this_thread::sleep_until(next);
  }
}

RunResult run_process(const std::vector<std::string>& argv, const std::string& input,
                      std::chrono::seconds timeout) {
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(out_pipe[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: execv's signature
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  // Small inputs only (a scrape): written whole before reading.
  std::size_t off = 0;
  while (off < input.size()) {
    const ssize_t n = ::write(in_pipe[1], input.data() + off, input.size() - off);
    if (n <= 0) {
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(in_pipe[1]);
  RunResult result;
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    pollfd p{out_pipe[0], POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      continue;
    }
    const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    result.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Child::Child(std::vector<std::string> argv, const fs::path& log) {
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Child::~Child() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool Child::running() {
  int status = 0;
  if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
  }
  return pid_ > 0;
}

void skip_or_fail(const std::string& what) {
  const char* require = std::getenv("BERTH_REQUIRE_DOCKER");
  if (require != nullptr && std::string_view(require) == "1") {
    FAIL(what + " and BERTH_REQUIRE_DOCKER=1");
  }
  WARN(what + ": skipping (exit 77)");
  std::exit(77);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API demands it
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API demands it
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace berth::metering::it
