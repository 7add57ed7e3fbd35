#!/bin/bash
# CTest fixture `integration_env` (FIXTURES_SETUP docker_env): makes sure dockerd answers on
# /var/run/docker.sock and that the test image berth-test/busybox:latest exists. Nothing can be
# pulled here (loopback only), so the image is built from the host's static busybox and
# imported.
#
# Exit status: 0 ready; 77 dockerd unreachable (skip), unless BERTH_REQUIRE_DOCKER=1, then 1.
set -euo pipefail

image=berth-test/busybox:latest
docker=/usr/bin/docker
busybox=/bin/busybox

log() { printf 'setup_env: %s\n' "$*" >&2; }

# Never touch the caller's ~/.docker, and never follow a DOCKER_HOST or context elsewhere.
export DOCKER_HOST=unix:///var/run/docker.sock
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-setup-env.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG"

unreachable() {
  if [[ ${BERTH_REQUIRE_DOCKER:-0} == 1 ]]; then
    log "dockerd does not answer and BERTH_REQUIRE_DOCKER=1: failing"
    exit 1
  fi
  log "dockerd does not answer: skipping integration tests"
  exit 77
}

docker_answers() { "$docker" info >/dev/null 2>&1; }

if ! docker_answers; then
  if command -v dockerd >/dev/null 2>&1 && ! pgrep -x dockerd >/dev/null 2>&1 \
     && [[ $(id -u) -eq 0 ]]; then
    log "starting dockerd (log: /var/log/berth-dockerd.log)"
    nohup dockerd >/var/log/berth-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 120); do
    docker_answers && break
    sleep 0.5
  done
  docker_answers || unreachable
fi

if "$docker" image inspect "$image" >/dev/null 2>&1; then
  log "$image present"
  exit 0
fi

if [[ ! -x $busybox ]]; then
  log "$busybox missing: install busybox-static (scripts/install-deps.sh)"
  exit 1
fi

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,dev,proc,sys}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"
# Every applet as a relative symlink, so the image has sh, echo, cat, sleep, head, ls, ping, wc,
# true, false, id, hostname, env, tr, yes, test, timeout, seq, md5sum, ... whatever tests use.
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] && continue
  ln -sf busybox "$rootfs/bin/$applet"
done
ln -sf ../../bin/env "$rootfs/usr/bin/env"
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP

log "importing $image"
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . \
  | "$docker" import \
      -c 'CMD ["sh"]' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$image" >/dev/null
"$docker" image inspect "$image" >/dev/null
log "$image imported"
