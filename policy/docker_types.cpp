#include "policy/docker_types.hpp"

namespace berth::policy::docker_types {

namespace {

using namespace go;

TypePtr strings() { return array_of(string()); }
TypePtr string_map() { return map_of(string()); }
TypePtr empty_struct_map() { return map_of(struct_of({})); }

TypePtr health_config() {
  return struct_of({{"Test", strings()},
                    {"Interval", int64()},
                    {"Timeout", int64()},
                    {"StartPeriod", int64()},
                    {"Retries", int64()}});
}

// container.Config (api/types/container/config.go)
TypePtr config() {
  return struct_of({
      {"Hostname", string()},
      {"Domainname", string()},
      {"User", string()},
      {"AttachStdin", boolean()},
      {"AttachStdout", boolean()},
      {"AttachStderr", boolean()},
      {"ExposedPorts", empty_struct_map()},
      {"Tty", boolean()},
      {"OpenStdin", boolean()},
      {"StdinOnce", boolean()},
      {"Env", strings()},
      {"Cmd", str_slice()},
      {"Healthcheck", pointer(health_config())},
      {"ArgsEscaped", boolean()},
      {"Image", string()},
      {"Volumes", empty_struct_map()},
      {"WorkingDir", string()},
      {"Entrypoint", str_slice()},
      {"NetworkDisabled", boolean()},
      {"MacAddress", string()},
      {"OnBuild", strings()},
      {"Labels", string_map()},
      {"StopSignal", string()},
      {"StopTimeout", pointer(int64())},
      {"Shell", str_slice()},
  });
}

TypePtr weight_device() { return struct_of({{"Path", string()}, {"Weight", uint16()}}); }
TypePtr throttle_device() { return struct_of({{"Path", string()}, {"Rate", uint64()}}); }

// container.Resources (api/types/container/host_config.go)
TypePtr resources() {
  return struct_of({
      {"CpuShares", int64()},
      {"Memory", int64()},
      {"NanoCpus", int64()},
      {"CgroupParent", string()},
      {"BlkioWeight", uint16()},
      {"BlkioWeightDevice", array_of(pointer(weight_device()))},
      {"BlkioDeviceReadBps", array_of(pointer(throttle_device()))},
      {"BlkioDeviceWriteBps", array_of(pointer(throttle_device()))},
      {"BlkioDeviceReadIOps", array_of(pointer(throttle_device()))},
      {"BlkioDeviceWriteIOps", array_of(pointer(throttle_device()))},
      {"CpuPeriod", int64()},
      {"CpuQuota", int64()},
      {"CpuRealtimePeriod", int64()},
      {"CpuRealtimeRuntime", int64()},
      {"CpusetCpus", string()},
      {"CpusetMems", string()},
      {"Devices", array_of(struct_of({{"PathOnHost", string()},
                                      {"PathInContainer", string()},
                                      {"CgroupPermissions", string()}}))},
      {"DeviceCgroupRules", strings()},
      {"DeviceRequests", array_of(struct_of({{"Driver", string()},
                                             {"Count", int64()},
                                             {"DeviceIDs", strings()},
                                             {"Capabilities", array_of(strings())},
                                             {"Options", string_map()}}))},
      {"KernelMemory", int64()},
      {"KernelMemoryTCP", int64()},
      {"MemoryReservation", int64()},
      {"MemorySwap", int64()},
      {"MemorySwappiness", pointer(int64())},
      {"OomKillDisable", pointer(boolean())},
      {"PidsLimit", pointer(int64())},
      {"Ulimits", array_of(pointer(
                      struct_of({{"Name", string()}, {"Hard", int64()}, {"Soft", int64()}})))},
      {"CpuCount", int64()},
      {"CpuPercent", int64()},
      {"IOMaximumIOps", uint64()},
      {"IOMaximumBandwidth", uint64()},
  });
}

TypePtr restart_policy() {
  return struct_of({{"Name", string()}, {"MaximumRetryCount", int64()}});
}

// mount.Mount (api/types/mount/mount.go)
TypePtr mount() {
  return struct_of({
      {"Type", string()},
      {"Source", string()},
      {"Target", string()},
      {"ReadOnly", boolean()},
      {"Consistency", string()},
      {"BindOptions",
       pointer(struct_of({{"Propagation", string()}, {"NonRecursive", boolean()}}))},
      {"VolumeOptions",
       pointer(struct_of({{"NoCopy", boolean()},
                          {"Labels", string_map()},
                          {"DriverConfig", pointer(struct_of({{"Name", string()},
                                                              {"Options", string_map()}}))}}))},
      {"TmpfsOptions", pointer(struct_of({{"SizeBytes", int64()}, {"Mode", uint64()}}))},
  });
}

// container.HostConfig
TypePtr host_config() {
  return struct_with(
      {resources()},
      {
          {"Binds", strings()},
          {"ContainerIDFile", string()},
          {"LogConfig", struct_of({{"Type", string()}, {"Config", string_map()}})},
          {"NetworkMode", string()},
          {"PortBindings",
           map_of(array_of(struct_of({{"HostIp", string()}, {"HostPort", string()}})))},
          {"RestartPolicy", restart_policy()},
          {"AutoRemove", boolean()},
          {"VolumeDriver", string()},
          {"VolumesFrom", strings()},
          {"CapAdd", str_slice()},
          {"CapDrop", str_slice()},
          {"CgroupnsMode", string()},
          {"Dns", strings()},
          {"DnsOptions", strings()},
          {"DnsSearch", strings()},
          {"ExtraHosts", strings()},
          {"GroupAdd", strings()},
          {"IpcMode", string()},
          {"Cgroup", string()},
          {"Links", strings()},
          {"OomScoreAdj", int64()},
          {"PidMode", string()},
          {"Privileged", boolean()},
          {"PublishAllPorts", boolean()},
          {"ReadonlyRootfs", boolean()},
          {"SecurityOpt", strings()},
          {"StorageOpt", string_map()},
          {"Tmpfs", string_map()},
          {"UTSMode", string()},
          {"UsernsMode", string()},
          {"ShmSize", int64()},
          {"Sysctls", string_map()},
          {"Runtime", string()},
          {"ConsoleSize", array_of(uint64())},
          {"Isolation", string()},
          {"Mounts", array_of(mount())},
          {"MaskedPaths", strings()},
          {"ReadonlyPaths", strings()},
          {"Init", pointer(boolean())},
      });
}

TypePtr endpoint_settings() {
  return struct_of({
      {"IPAMConfig", pointer(struct_of({{"IPv4Address", string()},
                                        {"IPv6Address", string()},
                                        {"LinkLocalIPs", strings()}}))},
      {"Links", strings()},
      {"Aliases", strings()},
      {"NetworkID", string()},
      {"EndpointID", string()},
      {"Gateway", string()},
      {"IPAddress", string()},
      {"IPPrefixLen", int64()},
      {"IPv6Gateway", string()},
      {"GlobalIPv6Address", string()},
      {"GlobalIPv6PrefixLen", int64()},
      {"MacAddress", string()},
      {"DriverOpts", string_map()},
  });
}

}  // namespace

const go::Type& container_config() {
  static const TypePtr t = config();
  return *t;
}

const go::Type& container_create() {
  static const TypePtr t = struct_with(
      {config()},
      {{"HostConfig", pointer(host_config())},
       {"NetworkingConfig",
        pointer(struct_of({{"EndpointsConfig", map_of(pointer(endpoint_settings()))}}))}});
  return *t;
}

const go::Type& container_update() {
  static const TypePtr t = struct_with({resources()}, {{"RestartPolicy", restart_policy()}});
  return *t;
}

const go::Type& exec_create() {
  static const TypePtr t = struct_of({
      {"User", string()},
      {"Privileged", boolean()},
      {"Tty", boolean()},
      {"AttachStdin", boolean()},
      {"AttachStderr", boolean()},
      {"AttachStdout", boolean()},
      {"Detach", boolean()},
      {"DetachKeys", string()},
      {"Env", strings()},
      {"WorkingDir", string()},
      {"Cmd", strings()},
  });
  return *t;
}

const go::Type& auth_config() {
  static const TypePtr t = struct_of({{"username", string()},
                                      {"password", string()},
                                      {"auth", string()},
                                      {"email", string()},
                                      {"serveraddress", string()},
                                      {"identitytoken", string()},
                                      {"registrytoken", string()}});
  return *t;
}

const go::Type& exec_start() {
  static const TypePtr t = struct_of({{"Detach", boolean()}, {"Tty", boolean()}});
  return *t;
}

const go::Type& network_create() {
  static const TypePtr ipam_config = struct_of({{"Subnet", string()},
                                                {"IPRange", string()},
                                                {"Gateway", string()},
                                                {"AuxiliaryAddresses", string_map()}});
  static const TypePtr t = struct_of({
      {"Name", string()},
      {"CheckDuplicate", boolean()},
      {"Driver", string()},
      {"Scope", string()},
      {"EnableIPv6", boolean()},
      {"IPAM", pointer(struct_of({{"Driver", string()},
                                  {"Options", string_map()},
                                  {"Config", array_of(ipam_config)}}))},
      {"Internal", boolean()},
      {"Attachable", boolean()},
      {"Ingress", boolean()},
      {"ConfigOnly", boolean()},
      {"ConfigFrom", pointer(struct_of({{"Network", string()}}))},
      {"Options", string_map()},
      {"Labels", string_map()},
  });
  return *t;
}

const go::Type& network_connect() {
  static const TypePtr t = struct_of({{"Container", string()},
                                      {"EndpointConfig", pointer(endpoint_settings())},
                                      {"Force", boolean()}});
  return *t;
}

const go::Type& volume_create() {
  static const TypePtr t = struct_of({{"Name", string()},
                                      {"Driver", string()},
                                      {"DriverOpts", string_map()},
                                      {"Labels", string_map()}});
  return *t;
}

}  // namespace berth::policy::docker_types
