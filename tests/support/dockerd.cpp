#include "tests/support/dockerd.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

namespace berth::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string url_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0x0f];
    }
  }
  return out;
}

bool send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        return false;
      }
      ::poll(&p, 1, static_cast<int>(left.count()));
      continue;
    }
    return false;
  }
  return true;
}

std::vector<std::string> ids_from(const HttpReply& reply, const char* key,
                                  const char* list_key = nullptr) {
  std::vector<std::string> ids;
  if (reply.status != 200) {
    return ids;
  }
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (doc.is_discarded()) {
    return ids;
  }
  const auto& list = list_key != nullptr ? doc.value(list_key, nlohmann::json::array()) : doc;
  if (!list.is_array()) {
    return ids;
  }
  for (const auto& item : list) {
    if (item.contains(key) && item[key].is_string()) {
      ids.push_back(item[key].get<std::string>());
    }
  }
  return ids;
}

HttpReply request_on(const std::string& socket, std::string_view method,
                     std::string_view target, std::string_view json_body,
                     std::chrono::milliseconds timeout) {
  HttpReply reply;
  const auto deadline = Clock::now() + timeout;
  sockaddr_un addr{};
  if (socket.size() >= sizeof addr.sun_path) {
    return reply;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return reply;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API demands it
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return reply;
  }
  std::ostringstream req;
  req << method << ' ' << target << " HTTP/1.0\r\nHost: docker\r\n";
  if (!json_body.empty()) {
    req << "Content-Type: application/json\r\nContent-Length: " << json_body.size() << "\r\n";
  }
  req << "\r\n" << json_body;
  std::string raw;
  if (send_all(fd, req.str(), deadline)) {
    char buf[16384];
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        continue;
      }
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        raw.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
  }
  ::close(fd);
  return parse_http_response(raw);
}

/// BERTH_TEST_FLEET="ID:N" as (ID, N); N is 0 when the variable is absent or malformed.
std::pair<std::string, int> fleet_from_env() {
  const char* v = std::getenv("BERTH_TEST_FLEET");
  const std::string_view text = v != nullptr ? v : "";
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return {{}, 0};
  }
  const int n = std::atoi(std::string(text.substr(colon + 1)).c_str());
  return {std::string(text.substr(0, colon)), n > 0 && n < 10 ? n : 0};
}

}  // namespace

const std::vector<std::string>& dockerd_sockets() {
  static const std::vector<std::string> sockets = [] {
    const auto [id, n] = fleet_from_env();
    std::vector<std::string> out;
    for (int h = 0; h < n; ++h) {
      out.push_back("/run/bf-" + id + "/h" + std::to_string(h) + ".sock");
    }
    if (out.empty()) {
      out.emplace_back(dockerd_socket);
    }
    return out;
  }();
  return sockets;
}

std::string fleet_policy_hosts() {
  if (fleet_from_env().second == 0) {
    return {};
  }
  // Three dockerds on this machine's cores, each counting them all, shared by two tests at
  // once (ctest -j2) whose tenants reserve a CPU per container by default: the capacity of
  // hosts the size of the suites, so placement never refuses what one host would have run.
  std::string yaml;
  int h = 0;
  for (const auto& socket : dockerd_sockets()) {
    yaml += "  - name: h" + std::to_string(h++) + "\n    url: \"unix://" + socket +
            "\"\n    capacity: {cpus: 256, memory: 1TiB}\n";
  }
  return yaml;
}

HttpReply dockerd_request(std::string_view method, std::string_view target,
                          std::string_view json_body, std::chrono::milliseconds timeout) {
  HttpReply reply;
  const auto& sockets = dockerd_sockets();
  std::size_t answered = 0;
  for (; answered < sockets.size(); ++answered) {
    reply = request_on(sockets[answered], method, target, json_body, timeout);
    if (reply.status != 404) {
      break;
    }
  }
  if (method != "GET" || reply.status != 200 || answered + 1 >= sockets.size()) {
    return reply;
  }
  // A list is the fleet's: every host's items, each once (a Swarm overlay shows on every
  // host that has containers on it), as berth merges them.
  auto merged = nlohmann::json::parse(reply.body, nullptr, false);
  if (!merged.is_array()) {
    return reply;
  }
  std::set<std::string> seen;
  for (const auto& item : merged) {
    seen.insert(item.is_object() ? item.value("Id", std::string()) : std::string());
  }
  for (std::size_t h = answered + 1; h < sockets.size(); ++h) {
    const auto more = request_on(sockets[h], method, target, json_body, timeout);
    const auto items = nlohmann::json::parse(more.body, nullptr, false);
    for (const auto& item : items.is_array() ? items : nlohmann::json::array()) {
      const std::string id = item.is_object() ? item.value("Id", std::string()) : std::string();
      if (id.empty() || seen.insert(id).second) {
        merged.push_back(item);
      }
    }
  }
  reply.body = merged.dump();
  return reply;
}

namespace {

/// GET `target` of every dockerd under test, the ids under `key` of each answer together.
std::vector<std::string> ids_everywhere(const std::string& target, const char* key,
                                        const char* list_key = nullptr) {
  std::vector<std::string> all;
  bool manager = true;
  for (const auto& socket : dockerd_sockets()) {
    auto reply = request_on(socket, "GET", target, {}, std::chrono::seconds(30));
    if (!std::exchange(manager, false)) {
      // A Swarm overlay is the manager's; another host's copy of it comes and goes with the
      // containers there, and goes a moment after the manager removed it.
      const auto list = nlohmann::json::parse(reply.body, nullptr, false);
      if (list.is_array()) {
        auto local = nlohmann::json::array();
        for (const auto& item : list) {
          if (!item.is_object() || item.value("Scope", std::string()) != "swarm") {
            local.push_back(item);
          }
        }
        reply.body = local.dump();
      }
    }
    auto ids = ids_from(reply, key, list_key);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  // dockerd lists networks (and volumes) in map order, which differs from call to call, and
  // a Swarm overlay shows on every host where it has containers.
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

/// DELETE `target` on every dockerd under test (a fleet's objects are on one host or many).
void delete_everywhere(const std::string& target) {
  for (const auto& socket : dockerd_sockets()) {
    (void)request_on(socket, "DELETE", target, {}, std::chrono::seconds(30));
  }
}

}  // namespace

HttpReply parse_http_response(std::string_view raw) {
  HttpReply reply;
  for (;;) {
    const auto end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/") || end == std::string_view::npos) {
      return reply;
    }
    const auto sp = raw.find(' ');
    const int status = std::atoi(std::string(raw.substr(sp + 1, 3)).c_str());
    if (status >= 100 && status < 200) {
      raw.remove_prefix(end + 4);
      continue;
    }
    reply.status = status;
    reply.headers = std::string(raw.substr(0, end + 2));
    reply.body = std::string(raw.substr(end + 4));
    return reply;
  }
}

bool dockerd_answers() {
  return dockerd_request("GET", "/_ping", {}, std::chrono::seconds(5)).status == 200;
}

std::string label_filter_query(std::string_view label) {
  const nlohmann::json filters = {{"label", nlohmann::json::array({std::string(label)})}};
  return "filters=" + url_encode(filters.dump());
}

std::string LabelledObjects::describe() const {
  std::ostringstream s;
  const auto list = [&s](const char* what, const std::vector<std::string>& v) {
    s << what << ": [";
    for (const auto& x : v) {
      s << ' ' << x;
    }
    s << " ] ";
  };
  list("containers", containers);
  list("images", images);
  list("networks", networks);
  list("volumes", volumes);
  return s.str();
}

LabelledObjects list_labelled(std::string_view label) {
  const std::string q = label_filter_query(label);
  LabelledObjects o;
  o.containers = ids_everywhere("/containers/json?all=1&" + q, "Id");
  o.images = ids_everywhere("/images/json?" + q, "Id");
  o.networks = ids_everywhere("/networks?" + q, "Id");
  o.volumes = ids_everywhere("/volumes?" + q, "Name", "Volumes");
  return o;
}

LabelledObjects remove_labelled(std::string_view label) noexcept {
  try {
    // Containers first on every host: an overlay is removed only once no host has one on it.
    const LabelledObjects found = list_labelled(label);
    for (const auto& id : found.containers) {
      delete_everywhere("/containers/" + id + "?force=1&v=1");
    }
    for (const auto& id : found.images) {
      delete_everywhere("/images/" + id + "?force=1");
    }
    for (const auto& id : found.networks) {
      delete_everywhere("/networks/" + id);
    }
    for (const auto& name : found.volumes) {
      delete_everywhere("/volumes/" + name + "?force=1");
    }
    // A removed Swarm overlay stays listed on the manager a moment (seconds at most).
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!found.networks.empty() && dockerd_sockets().size() > 1 &&
           !list_labelled(label).networks.empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return found.empty() ? found : list_labelled(label);
  } catch (...) {
    return {};
  }
}

std::size_t remove_tenant_image_tags(std::string_view tenant) noexcept {
  try {
    const std::string prefix = std::string(tenant) + ".berth.local/";
    const auto tags = [&](const std::string& socket) {
      std::vector<std::string> out;
      const auto list = nlohmann::json::parse(
          request_on(socket, "GET", "/images/json", {}, std::chrono::seconds(30)).body, nullptr,
          false);
      for (const auto& img : list.is_array() ? list : nlohmann::json::array()) {
        for (const auto& t : img.value("RepoTags", nlohmann::json::array())) {
          if (t.is_string() && t.get<std::string>().starts_with(prefix)) {
            out.push_back(t.get<std::string>());
          }
        }
      }
      return out;
    };
    std::size_t left = 0;
    for (const auto& socket : dockerd_sockets()) {
      for (const auto& tag : tags(socket)) {
        (void)request_on(socket, "DELETE", "/images/" + url_encode(tag), {},
                         std::chrono::seconds(30));
      }
      left += tags(socket).size();
    }
    return left;
  } catch (...) {
    return 0;
  }
}

bool remove_container(std::string_view name_or_id) noexcept {
  try {
    return dockerd_request("DELETE", "/containers/" + url_encode(name_or_id) + "?force=1&v=1")
               .status == 204;
  } catch (...) {
    return false;
  }
}

std::string container_state(std::string_view name_or_id) {
  const auto reply = dockerd_request("GET", "/containers/" + url_encode(name_or_id) + "/json");
  if (reply.status != 200) {
    return {};
  }
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (doc.is_discarded() || !doc.contains("State")) {
    return {};
  }
  return doc["State"].value("Status", "");
}

std::string dockerd_field(std::string_view path, std::string_view field) {
  const auto reply = dockerd_request("GET", path);
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.status != 200 || doc.is_discarded()) {
    return {};
  }
  const auto it = doc.find(std::string(field));
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace berth::test
