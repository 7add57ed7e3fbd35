#!/bin/bash
# A fleet of Docker hosts on this machine, for tests (issue #15):
#
#   test_fleet.sh up ID N IMAGE   N dockerds, each in a network namespace of its own, wired to
#                                 one switch namespace (a bridge), joined in a Swarm (host 0
#                                 manages), each holding IMAGE (copied from the main dockerd)
#   test_fleet.sh down ID         everything of fleet ID removed, whatever state it is in
#   test_fleet.sh stop ID H       host H's dockerd stopped (a host that is down)
#   test_fleet.sh start ID H      host H's dockerd started again (it rejoins the Swarm)
#
# Host i is reached at unix:///run/bf-ID/hI.sock; its underlay address is 192.168.250.(I+1);
# its data root is /var/lib/bf-ID/hI.
# Facts from ../shared/lab-multihost: an extra dockerd in the host's namespace deletes the
# host's docker0, so every one gets a namespace; `nsenter --net` (not `ip netns exec`, which
# remounts /sys and hides the cgroup mounts) keeps cgroups visible; iptables stays on, inside
# the namespace. Nothing here touches the main dockerd, docker0 or the host's iptables.
set -uo pipefail

cmd=${1:?up or down}
id=${2:?fleet id}
run=/run/bf-$id
data=/var/lib/bf-$id
ns() { echo "bf-$id-$1"; }
sock() { echo "unix://$run/h$1.sock"; }
dk() { local h=$1; shift; docker -H "$(sock "$h")" "$@"; }
log() { echo "[test_fleet $id $(date +%T.%N | cut -c1-12)] $*" >&2; }

# --experimental: dockerd's checkpoints, which berth-node's live migrations use (issue #16);
# runc finds the criu that works on this kernel (scripts/install-criu.sh) through PATH.
start_dockerd() {
  local h=$1
  PATH="/opt/berth/bin:$PATH" nsenter --net="/run/netns/$(ns h$h)" unshare --uts \
    sh -c "hostname bf-$id-h$h && exec dockerd \"\$@\"" dockerd \
      --data-root "$data/h$h" --exec-root "$run/h$h" --pidfile "$run/h$h.pid" \
      -H "$(sock $h)" --cgroup-parent "/bf-$id-h$h" --experimental \
      >>"$run/h$h.log" 2>&1 </dev/null &
}

wait_dockerd() {
  local h=$1
  for _ in $(seq 120); do dk $h version >/dev/null 2>&1 && break; sleep 0.25; done
  dk $h version --format "h$h: dockerd {{.Server.Version}}" >&2
}

# Host H's own dockerd, by its pid file, only if its command line names our state.
stop_dockerd() {
  local p="$run/h$1.pid" pid
  [ -f "$p" ] || return 0
  pid=$(cat "$p")
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$run/"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null
  fi
  # What a killed dockerd leaves (its containerd, the shims) would keep the next one from
  # starting: they name this host's exec root.
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$run/h$1/" && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  rm -f "$run/h$1.pid"
  return 0
}

up() {
  local n=${1:?hosts} image=${2:?image}
  set -e
  mkdir -p "$run" "$data"
  ip netns add "$(ns sw)"
  ip -n "$(ns sw)" link set lo up
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  for ((h = 0; h < n; h++)); do
    ip netns add "$(ns h$h)"
    # Created in the switch's namespace, so no name is ever taken in the host's.
    ip -n "$(ns sw)" link add "h$h" type veth peer name eth0 netns "$(ns h$h)"
    ip -n "$(ns sw)" link set "h$h" master br0 up
    ip -n "$(ns h$h)" link set lo up
    ip -n "$(ns h$h)" addr add "192.168.250.$((h + 1))/24" dev eth0
    ip -n "$(ns h$h)" link set eth0 up
    mkdir -p "$run/h$h" "$data/h$h"
    start_dockerd "$h"
  done
  for ((h = 0; h < n; h++)); do
    wait_dockerd "$h"
  done
  # One save, loaded into every host at once.
  docker save "$image" >"$run/image.tar"
  local loads=()
  for ((h = 0; h < n; h++)); do
    dk $h load -q -i "$run/image.tar" >/dev/null &
    loads+=($!)
  done
  for p in "${loads[@]}"; do wait "$p"; done
  rm -f "$run/image.tar"
  dk 0 swarm init --advertise-addr 192.168.250.1 --listen-addr 192.168.250.1:2377 >/dev/null
  local token
  token=$(dk 0 swarm join-token -q worker)
  for ((h = 1; h < n; h++)); do
    dk $h swarm join --token "$token" --advertise-addr "192.168.250.$((h + 1))" \
      --listen-addr "192.168.250.$((h + 1)):2377" 192.168.250.1:2377 >/dev/null
  done
  for _ in $(seq 120); do
    [ "$(dk 0 node ls --format '{{.Status}}' | grep -c Ready)" = "$n" ] && break
    sleep 0.25
  done
  [ "$(dk 0 node ls --format '{{.Status}}' | grep -c Ready)" = "$n" ]
  log "up: $n hosts"
}

down() {
  local h pid
  for s in "$run"/h*.sock; do
    [ -S "$s" ] || continue
    h=${s##*/h}; h=${h%.sock}
    ids=$(dk "$h" ps -aq 2>/dev/null)
    [ -n "$ids" ] && dk "$h" rm -f $ids >/dev/null 2>&1
    dk "$h" swarm leave --force >/dev/null 2>&1
  done
  for p in "$run"/h*.pid; do
    [ -f "$p" ] || continue
    h=${p##*/h}; h=${h%.pid}
    stop_dockerd "$h"
  done
  # containerd and shims left behind name our exec root.
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$run/h[0-9]*/containerd" && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  sleep 0.3
  for d in "$run" "$data"; do
    awk -v d="$d" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null
    done
  done
  rm -rf "$run" "$data"
  for n in $(ip netns list | awk '{print $1}' | grep -- "^bf-$id-"); do
    ip netns del "$n"
  done
  for c in /sys/fs/cgroup/bf-"$id"-h* /sys/fs/cgroup/*/bf-"$id"-h*; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  log "down"
  return 0
}

case $cmd in
  up) up "${3:-3}" "${4:?image}" ;;
  down) down ;;
  stop) stop_dockerd "${3:?host}" ;;
  start) start_dockerd "${3:?host}"; wait_dockerd "$3" ;;
  *) echo "usage: $0 up ID N IMAGE | down ID | stop ID H | start ID H" >&2; exit 2 ;;
esac
