#pragma once
// TestRegistry: Debian's docker-registry (the distribution registry 2.8) for one test, on
// loopback, with TLS (a certificate of the test's own CA, which dockerd is told to trust for
// this registry's address only) and basic auth, so that pulls and pushes through berth meet a
// real registry with real credentials. Nothing of it outlives the test: the process, its
// storage and dockerd's trust entry (/etc/docker/certs.d/127.0.0.1:PORT) go with it.

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace berth::test {

inline constexpr const char* registry_bin = "/usr/bin/docker-registry";

struct RegistryUser {
  std::string name;
  std::string password;
};

class TestRegistry {
 public:
  /// Starts the registry with `users` (basic auth), serving `cert`/`key` (a certificate for
  /// 127.0.0.1) and trusted by dockerd through `ca`. Throws (with the registry's log) when it
  /// does not answer within 20 s.
  TestRegistry(const std::filesystem::path& ca, const std::filesystem::path& cert,
               const std::filesystem::path& key, const std::vector<RegistryUser>& users);
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;
  ~TestRegistry();

  /// "127.0.0.1:PORT", the registry host as image references and `docker login` name it.
  [[nodiscard]] const std::string& host() const noexcept { return host_; }

  /// Whether the registry holds `repository:tag` (asked with the first user's credentials).
  [[nodiscard]] bool has_tag(const std::string& repository, const std::string& tag) const;

 private:
  TempDir dir_;
  std::string host_;
  std::filesystem::path trust_dir_;
  std::vector<RegistryUser> users_;
  std::filesystem::path ca_;
  BackgroundProcess proc_;
};

}  // namespace berth::test
