#pragma once
// Runs programs for the integration tests: argv (never a shell string), optional stdin, captured
// stdout/stderr, a hard timeout after which the whole process group is killed, and a variant that
// runs under a pseudo-terminal with expect-style steps (for `docker run -it`, `exec -it`,
// `attach` with detach keys). Nothing here ever waits without a bound.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace berth::test {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

struct RunOptions {
  EnvVars env;                     ///< set (or replace) on top of this process's environment
  std::vector<std::string> unset;  ///< removed from the environment
  std::string input;               ///< written to stdin, which is then closed
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::filesystem::path cwd;  ///< empty: inherit
};

struct RunResult {
  int exit_code = -1;   ///< -1 when the process did not exit normally
  int term_signal = 0;  ///< signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out;  ///< stdout (for a pty run: everything the terminal showed)
  std::string err;  ///< stderr (empty for a pty run)

  [[nodiscard]] bool ok() const noexcept { return !timed_out && exit_code == 0; }
};

/// Runs argv[0] (an absolute path, or searched in PATH) to completion or timeout.
[[nodiscard]] RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

/// One expect-style step of a terminal session: wait (bounded by the run's timeout) until the
/// terminal has shown `expect` after the previous match, then type `send`.
struct PtyStep {
  std::string expect;  ///< empty: do not wait
  std::string send;
};

/// Runs argv with stdin, stdout and stderr on a fresh 80x24 pseudo-terminal, so the program
/// sees a TTY. `options.input` is ignored; the steps type into the terminal instead.
[[nodiscard]] RunResult run_in_pty(const std::vector<std::string>& argv,
                                   const std::vector<PtyStep>& steps,
                                   const RunOptions& options = {});

/// A one-line description for INFO/CAPTURE: exit status, and both streams.
[[nodiscard]] std::string describe(const RunResult& result);

/// A long-running child (the proxy under test) with stdout and stderr appended to a log file.
class BackgroundProcess {
 public:
  BackgroundProcess() = default;
  BackgroundProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                    const EnvVars& env = {});
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  BackgroundProcess(BackgroundProcess&& other) noexcept;
  BackgroundProcess& operator=(BackgroundProcess&& other) noexcept;
  ~BackgroundProcess();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// True while the child has not exited (reaps it if it has).
  [[nodiscard]] bool running();

  /// Exit status once it has exited: as RunResult's exit_code/term_signal.
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }

  [[nodiscard]] int term_signal() const noexcept { return term_signal_; }

  void signal(int sig) const;
  /// Sends `sig`, waits up to `grace`, then SIGKILLs. Returns true if it stopped within grace.
  bool stop(int sig, std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int term_signal_ = 0;
};

}  // namespace berth::test
