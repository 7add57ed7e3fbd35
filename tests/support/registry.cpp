#include "tests/support/registry.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/support/log_tail.hpp"

namespace berth::test {

namespace {

// A port the kernel just gave out: the registry binds it a moment later (a collision shows as
// the registry not answering, and the test fails with its log).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("no free port for the test registry");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

// bcrypt, the only hash the registry's htpasswd accepts, from the system's libcrypt.
std::string htpasswd_line(const RegistryUser& user) {
  const RunResult r = run({"/usr/bin/python3", "-W", "ignore", "-c",
                           "import crypt,sys; print(crypt.crypt(sys.argv[1], "
                           "crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                           user.password});
  if (!r.ok() || !r.out.starts_with("$2")) {
    throw std::runtime_error("cannot hash a registry password: " + describe(r));
  }
  return user.name + ":" + r.out;
}

}  // namespace

TestRegistry::TestRegistry(const std::filesystem::path& ca, const std::filesystem::path& cert,
                           const std::filesystem::path& key, const std::vector<RegistryUser>& users)
    : users_(users), ca_(ca) {
  const int port = free_port();
  host_ = "127.0.0.1:" + std::to_string(port);
  std::string htpasswd;
  for (const auto& user : users) {
    htpasswd += htpasswd_line(user);
  }
  write_text(dir_ / "htpasswd", htpasswd);
  write_text(dir_ / "config.yml",
             "version: 0.1\n"
             "log:\n  level: warn\n"
             "storage:\n  filesystem:\n    rootdirectory: " + (dir_ / "data").string() + "\n"
             "  delete:\n    enabled: true\n"
             "http:\n  addr: " + host_ + "\n"
             "  tls:\n    certificate: " + cert.string() + "\n    key: " + key.string() + "\n"
             "auth:\n  htpasswd:\n    realm: berth-test\n    path: " +
                 (dir_ / "htpasswd").string() + "\n");
  // dockerd verifies this registry's certificate against the test's CA.
  trust_dir_ = std::filesystem::path("/etc/docker/certs.d") / host_;
  std::filesystem::create_directories(trust_dir_);
  std::filesystem::copy_file(ca, trust_dir_ / "ca.crt",
                             std::filesystem::copy_options::overwrite_existing);
  proc_ = BackgroundProcess({registry_bin, "serve", (dir_ / "config.yml").string()},
                            dir_ / "registry.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    const RunResult r = run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                             "2", "--cacert", ca.string(), "https://" + host_ + "/v2/"});
    if (r.out == "401") {
      return;
    }
    if (!proc_.running() || std::chrono::steady_clock::now() > deadline) {
      const std::string log = tail_lines(dir_ / "registry.log", 30);
      std::filesystem::remove_all(trust_dir_);
      throw std::runtime_error("the test registry did not start on " + host_ + ":\n" + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TestRegistry::~TestRegistry() {
  proc_.stop(SIGTERM, std::chrono::seconds(5));
  std::error_code ignored;
  std::filesystem::remove_all(trust_dir_, ignored);
}

bool TestRegistry::has_tag(const std::string& repository, const std::string& tag) const {
  const RunResult r =
      run({"curl", "-s", "--max-time", "10", "--cacert", ca_.string(), "-u",
           users_.front().name + ":" + users_.front().password,
           "https://" + host_ + "/v2/" + repository + "/tags/list"});
  return r.ok() && r.out.find("\"" + tag + "\"") != std::string::npos;
}

}  // namespace berth::test
