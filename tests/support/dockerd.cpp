#include "tests/support/dockerd.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

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

}  // namespace

HttpReply dockerd_request(std::string_view method, std::string_view target,
                          std::string_view json_body, std::chrono::milliseconds timeout) {
  HttpReply reply;
  const auto deadline = Clock::now() + timeout;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return reply;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, dockerd_socket.data(), dockerd_socket.size());
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
  o.containers = ids_from(dockerd_request("GET", "/containers/json?all=1&" + q), "Id");
  o.images = ids_from(dockerd_request("GET", "/images/json?" + q), "Id");
  o.networks = ids_from(dockerd_request("GET", "/networks?" + q), "Id");
  o.volumes = ids_from(dockerd_request("GET", "/volumes?" + q), "Name", "Volumes");
  // dockerd lists networks (and volumes) in map order, which differs from call to call.
  for (auto* list : {&o.containers, &o.images, &o.networks, &o.volumes}) {
    std::sort(list->begin(), list->end());
  }
  return o;
}

LabelledObjects remove_labelled(std::string_view label) noexcept {
  try {
    const LabelledObjects found = list_labelled(label);
    for (const auto& id : found.containers) {
      (void)dockerd_request("DELETE", "/containers/" + id + "?force=1&v=1");
    }
    for (const auto& id : found.images) {
      (void)dockerd_request("DELETE", "/images/" + id + "?force=1");
    }
    for (const auto& id : found.networks) {
      (void)dockerd_request("DELETE", "/networks/" + id);
    }
    for (const auto& name : found.volumes) {
      (void)dockerd_request("DELETE", "/volumes/" + name + "?force=1");
    }
    return found.empty() ? found : list_labelled(label);
  } catch (...) {
    return {};
  }
}

std::size_t remove_tenant_image_tags(std::string_view tenant) noexcept {
  try {
    const std::string prefix = std::string(tenant) + ".berth.local/";
    const auto tags = [&] {
      std::vector<std::string> out;
      const auto list = nlohmann::json::parse(dockerd_request("GET", "/images/json").body,
                                              nullptr, false);
      for (const auto& img : list.is_array() ? list : nlohmann::json::array()) {
        for (const auto& t : img.value("RepoTags", nlohmann::json::array())) {
          if (t.is_string() && t.get<std::string>().starts_with(prefix)) {
            out.push_back(t.get<std::string>());
          }
        }
      }
      return out;
    };
    for (const auto& tag : tags()) {
      (void)dockerd_request("DELETE", "/images/" + url_encode(tag));
    }
    return tags().size();
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
