#pragma once
// The programs berth-node runs below dockerd (tar, nsenter + iptables, criu): started with
// execvp, never through a shell, so no argument is ever parsed twice.

#include <string>
#include <vector>

namespace berth::node {

struct Ran {
  int status = -1;     ///< the exit status; -1 when it could not run or was killed
  std::string output;  ///< stdout and stderr together, at most 64 KiB of them
  [[nodiscard]] bool ok() const noexcept { return status == 0; }
};

/// Runs argv to its end.
Ran run(const std::vector<std::string>& argv);

/// A program whose stdin or stdout is a pipe berth-node feeds or drains (a tar stream).
class Child {
 public:
  enum class Pipe { to_stdin, from_stdout };
  /// Starts argv with the pipe; started() says whether it did.
  Child(const std::vector<std::string>& argv, Pipe pipe);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] bool started() const noexcept { return pid_ > 0; }
  /// The pipe's end in this process.
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// Closes the pipe (EOF to a reader) and waits; the exit status and what it said on stderr.
  Ran finish();

 private:
  int pid_ = -1;
  int fd_ = -1;
  int err_ = -1;  // its stderr
};

}  // namespace berth::node
