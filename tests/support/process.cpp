#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace berth::test {
namespace {

using Clock = std::chrono::steady_clock;

/// Everything execve needs, built before fork() so the child only makes async-signal-safe calls.
struct ExecImage {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv_ptrs;
  std::vector<char*> env_ptrs;
  std::string cwd;
};

std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return name;
}

ExecImage make_image(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) {
    throw std::invalid_argument("run: empty argv");
  }
  ExecImage image;
  image.path = resolve_program(argv.front());
  image.args = argv;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& u : options.unset) {
      drop = drop || u == key;
    }
    for (const auto& [k, v] : options.env) {
      drop = drop || k == key;
    }
    if (!drop) {
      image.env.push_back(entry);
    }
  }
  for (const auto& [k, v] : options.env) {
    image.env.push_back(k + "=" + v);
  }
  for (auto& a : image.args) {
    image.argv_ptrs.push_back(a.data());
  }
  image.argv_ptrs.push_back(nullptr);
  for (auto& e : image.env) {
    image.env_ptrs.push_back(e.data());
  }
  image.env_ptrs.push_back(nullptr);
  image.cwd = options.cwd.string();
  return image;
}

/// Child side after fork(): only async-signal-safe calls from here on.
[[noreturn]] void exec_child(const ExecImage& image) {
  struct sigaction dfl {};

  dfl.sa_handler = SIG_DFL;
  // The test process ignores SIGPIPE; an ignored disposition survives execve, and `cat` or a
  // shell in a pipeline must die of SIGPIPE as usual.
  ::sigaction(SIGPIPE, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (!image.cwd.empty() && ::chdir(image.cwd.c_str()) != 0) {
    static const char msg[] = "process: chdir failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::execve(image.path.c_str(), image.argv_ptrs.data(), image.env_ptrs.data());
  static const char msg[] = "process: execve failed\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(127);
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void record_status(int status, int& exit_code, int& term_signal) {
  if (WIFEXITED(status)) {
    exit_code = WEXITSTATUS(status);
    term_signal = 0;
  } else if (WIFSIGNALED(status)) {
    exit_code = -1;
    term_signal = WTERMSIG(status);
  }
}

/// Reads what is available; returns false at EOF or on a hard error.
bool drain(int fd, std::string& into) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return false;  // EOF, or EIO on a pty master once the slave side is closed
  }
}

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

/// Reaps `pid`, killing its process group if it has not exited by `deadline`.
void reap_bounded(pid_t pid, Clock::time_point deadline, RunResult& result) {
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r < 0) {
      return;  // not our child any more: leave exit_code at -1
    }
    if (r == pid) {
      break;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      kill_group(pid);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  record_status(status, result.exit_code, result.term_signal);
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
  ExecImage image = make_image(argv, options);
  int in[2];
  int out[2];
  int err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    exec_child(image);
  }
  ::setpgid(pid, pid);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  int in_fd = in[1];
  int out_fd = out[0];
  int err_fd = err[0];
  set_nonblocking(in_fd);
  set_nonblocking(out_fd);
  set_nonblocking(err_fd);

  RunResult result;
  std::size_t written = 0;
  if (options.input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  const auto deadline = Clock::now() + options.timeout;
  bool reaped = false;
  Clock::time_point reaped_at{};
  for (;;) {
    if (!reaped) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        record_status(status, result.exit_code, result.term_signal);
        reaped = true;
        reaped_at = Clock::now();
      }
    }
    const bool streams_open = out_fd >= 0 || err_fd >= 0;
    // A grandchild may keep the pipes open after the child exits; give it 2 s, not forever.
    if (reaped && (!streams_open || Clock::now() - reaped_at > std::chrono::seconds(2))) {
      break;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      kill_group(pid);
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    if (out_fd >= 0) {
      fds[n++] = {out_fd, POLLIN, 0};
    }
    if (err_fd >= 0) {
      fds[n++] = {err_fd, POLLIN, 0};
    }
    if (in_fd >= 0) {
      fds[n++] = {in_fd, POLLOUT, 0};
    }
    ::poll(fds, n, std::min(ms_until(deadline), 20));
    if (out_fd >= 0 && !drain(out_fd, result.out)) {
      ::close(out_fd);
      out_fd = -1;
    }
    if (err_fd >= 0 && !drain(err_fd, result.err)) {
      ::close(err_fd);
      err_fd = -1;
    }
    if (in_fd >= 0) {
      const ssize_t w =
          ::write(in_fd, options.input.data() + written, options.input.size() - written);
      if (w > 0) {
        written += static_cast<std::size_t>(w);
      }
      if (written == options.input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) {
      if (fd != in_fd) {
        std::string& sink = fd == out_fd ? result.out : result.err;
        drain(fd, sink);
      }
      ::close(fd);
    }
  }
  if (!reaped) {
    reap_bounded(pid, deadline, result);
  }
  return result;
}

RunResult run_in_pty(const std::vector<std::string>& argv, const std::vector<PtyStep>& steps,
                     const RunOptions& options) {
  ExecImage image = make_image(argv, options);
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 80;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    throw std::runtime_error(std::string("forkpty: ") + std::strerror(errno));
  }
  if (pid == 0) {
    exec_child(image);  // forkpty made it a session leader with the pty as controlling terminal
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  set_nonblocking(master);

  RunResult result;
  std::size_t step = 0;
  std::size_t search_from = 0;
  bool reaped = false;
  const auto deadline = Clock::now() + options.timeout;
  for (;;) {
    while (step < steps.size()) {
      const auto& s = steps[step];
      std::size_t found = 0;
      if (!s.expect.empty()) {
        found = result.out.find(s.expect, search_from);
        if (found == std::string::npos) {
          break;
        }
        search_from = found + s.expect.size();
      }
      std::size_t sent = 0;
      while (sent < s.send.size() && Clock::now() < deadline) {
        const ssize_t w = ::write(master, s.send.data() + sent, s.send.size() - sent);
        if (w > 0) {
          sent += static_cast<std::size_t>(w);
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          break;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      ++step;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      kill_group(pid);
      break;
    }
    pollfd fd{master, POLLIN, 0};
    ::poll(&fd, 1, std::min(ms_until(deadline), 20));
    if (!drain(master, result.out)) {
      break;  // EIO: every holder of the terminal has closed it
    }
    int status = 0;
    if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) {
      record_status(status, result.exit_code, result.term_signal);
      reaped = true;
      drain(master, result.out);
      break;
    }
  }
  ::close(master);
  if (!reaped) {
    reap_bounded(pid, deadline, result);
  }
  return result;
}

std::string describe(const RunResult& r) {
  std::ostringstream s;
  if (r.timed_out) {
    s << "TIMED OUT";
  } else if (r.term_signal != 0) {
    s << "killed by signal " << r.term_signal;
  } else {
    s << "exit " << r.exit_code;
  }
  s << "\n--- stdout ---\n" << r.out << "\n--- stderr ---\n" << r.err;
  return s.str();
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv,
                                     const std::filesystem::path& log_file, const EnvVars& env) {
  RunOptions options;
  options.env = env;
  ExecImage image = make_image(argv, options);
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    throw std::runtime_error("BackgroundProcess: cannot open " + log_file.string());
  }
  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    exec_child(image);
  }
  ::setpgid(pid_, pid_);
  ::close(log_fd);
  ::close(null_fd);
}

BackgroundProcess::BackgroundProcess(BackgroundProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_),
      term_signal_(other.term_signal_) {}

BackgroundProcess& BackgroundProcess::operator=(BackgroundProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      stop(SIGKILL, std::chrono::seconds(5));
    }
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = other.exit_code_;
    term_signal_ = other.term_signal_;
  }
  return *this;
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    stop(SIGKILL, std::chrono::seconds(5));
  }
}

bool BackgroundProcess::running() {
  if (pid_ <= 0) {
    return false;
  }
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    record_status(status, exit_code_, term_signal_);
    pid_ = -1;
    return false;
  }
  return r == 0;
}

void BackgroundProcess::signal(int sig) const {
  if (pid_ > 0) {
    ::kill(pid_, sig);
  }
}

bool BackgroundProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (!running()) {
    return true;
  }
  ::kill(pid_, sig);
  const auto deadline = Clock::now() + grace;
  while (Clock::now() < deadline) {
    if (!running()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_group(pid_);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  record_status(status, exit_code_, term_signal_);
  pid_ = -1;
  return false;
}

}  // namespace berth::test
