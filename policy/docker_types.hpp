#pragma once
// The Go types dockerd 20.10 (API 1.41) decodes request bodies into, as go_json schemas:
// container create and update, exec create, network create and connect, volume create.
// A field missing here is dropped from the forwarded document (fails closed), so the lists
// follow moby's api/types structs field by field.

#include "policy/go_json.hpp"

namespace berth::policy::docker_types {

/// configWrapper{*container.Config (embedded), HostConfig, NetworkingConfig}
const go::Type& container_create();
/// container.Config (a commit's body)
const go::Type& container_config();
/// container.UpdateConfig{Resources (embedded), RestartPolicy}
const go::Type& container_update();
/// types.ExecConfig
const go::Type& exec_create();
/// types.ExecStartCheck
const go::Type& exec_start();
/// types.NetworkCreateRequest{NetworkCreate (embedded), Name}
const go::Type& network_create();
/// types.NetworkConnect / types.NetworkDisconnect
const go::Type& network_connect();
/// volume.VolumeCreateBody
const go::Type& volume_create();
/// types.AuthConfig (POST /auth; its json tags are the keys)
const go::Type& auth_config();

}  // namespace berth::policy::docker_types
