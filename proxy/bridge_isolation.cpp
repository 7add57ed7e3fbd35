#include "proxy/bridge_isolation.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "policy/isolation.hpp"
#include "proxy/log.hpp"

extern char** environ;

namespace berth::proxy {

namespace {

struct Outcome {
  int status = -1;     // exit status, -1 when it could not run
  std::string output;  // stdout and stderr
};

// Runs argv (searched in PATH) with `input` on stdin; waits for it.
Outcome run_tool(const std::vector<std::string>& argv, const std::string& input) {
  Outcome result;
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    result.output = std::strerror(errno);
    return result;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.output = std::strerror(errno);
    ::close(in[0]);
    ::close(in[1]);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    result.output = argv[0] + ": " + std::strerror(rc);
    ::close(in[1]);
    ::close(out[0]);
    return result;
  }
  std::size_t off = 0;
  while (off < input.size()) {
    const ssize_t w = ::write(in[1], input.data() + off, input.size() - off);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      break;
    }
    off += static_cast<std::size_t>(w);
  }
  ::close(in[1]);
  char buffer[4096];
  for (;;) {
    const ssize_t r = ::read(out[0], buffer, sizeof buffer);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      break;
    }
    result.output.append(buffer, static_cast<std::size_t>(r));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace

bool BridgeIsolation::ensure_jump() {
  if (jump_ready_) {
    return true;
  }
  const std::string chain(policy::isolation::chain);
  // Creating the chain fails harmlessly when it exists.
  (void)run_tool({"iptables", "-w", "-t", "mangle", "-N", chain}, {});
  if (run_tool({"iptables", "-w", "-t", "mangle", "-C", "FORWARD", "-j", chain}, {}).status != 0) {
    const Outcome added =
        run_tool({"iptables", "-w", "-t", "mangle", "-I", "FORWARD", "1", "-j", chain}, {});
    if (added.status != 0) {
      if (!warned_) {
        log_warn("bridge isolation: cannot add the " + chain + " chain (" + added.output +
                 "); tenant bridges rely on dockerd's own isolation rules");
        warned_ = true;
      }
      return false;
    }
  }
  jump_ready_ = true;
  return true;
}

void BridgeIsolation::update(const std::vector<std::string>& bridges) {
  if (!enabled_) {
    return;
  }
  const std::string script = policy::isolation::restore_script(bridges);
  if (script == applied_ || !ensure_jump()) {
    return;
  }
  const Outcome restored = run_tool({"iptables-restore", "-w", "--noflush"}, script);
  if (restored.status != 0) {
    if (!warned_) {
      log_warn("bridge isolation: iptables-restore failed (" + restored.output +
               "); tenant bridges rely on dockerd's own isolation rules");
      warned_ = true;
    }
    jump_ready_ = false;  // check the jump again next time
    return;
  }
  applied_ = script;
}

}  // namespace berth::proxy
