#include "node/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace berth::node {

namespace {

constexpr std::size_t output_cap = 64 * 1024;

std::vector<char*> argv_of(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  out.reserve(argv.size() + 1);
  for (const std::string& a : argv) {
    out.push_back(const_cast<char*>(a.c_str()));
  }
  out.push_back(nullptr);
  return out;
}

void read_all(int fd, std::string& into) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    if (into.size() < output_cap) {
      into.append(buffer, static_cast<std::size_t>(n));
    }
  }
}

int wait_for(int pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

Ran run(const std::vector<std::string>& argv) {
  Ran ran;
  int out[2];
  if (argv.empty() || ::pipe2(out, O_CLOEXEC) != 0) {
    return ran;
  }
  const auto args = argv_of(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    return ran;
  }
  read_all(out[0], ran.output);
  ::close(out[0]);
  ran.status = wait_for(pid);
  return ran;
}

Child::Child(const std::vector<std::string>& argv, Pipe pipe) {
  int data[2];
  int err[2];
  if (argv.empty() || ::pipe2(data, O_CLOEXEC) != 0) {
    return;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(data[0]);
    ::close(data[1]);
    return;
  }
  const auto args = argv_of(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(pipe == Pipe::to_stdin ? data[0] : null, 0);
    ::dup2(pipe == Pipe::from_stdout ? data[1] : null, 1);
    ::dup2(err[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(err[1]);
  ::close(pipe == Pipe::to_stdin ? data[0] : data[1]);
  fd_ = pipe == Pipe::to_stdin ? data[1] : data[0];
  err_ = err[0];
  if (pid < 0) {
    ::close(fd_);
    ::close(err_);
    fd_ = err_ = -1;
    return;
  }
  pid_ = pid;
}

Ran Child::finish() {
  Ran ran;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (err_ >= 0) {
    read_all(err_, ran.output);
    ::close(err_);
    err_ = -1;
  }
  if (pid_ > 0) {
    ran.status = wait_for(pid_);
    pid_ = -1;
  }
  return ran;
}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
  }
  (void)finish();
}

}  // namespace berth::node
