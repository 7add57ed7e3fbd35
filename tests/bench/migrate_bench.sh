#!/usr/bin/env bash
# Live migration (issue #16), measured on this machine: a two-host test fleet, a berth-node on
# each host, berth-proxy in front; a tenant's small application (busybox httpd, a counter in
# memory and /dev/shm, a TCP tick server) on its overlay network, a client container asking it
# for a page every 50 ms and another holding one TCP connection to it; the operator moves the
# application back and forth BENCH_MIGRATIONS times with berthctl migrate. Prints the
# distribution of each phase as berth measured it, the longest gap the client saw between two
# answered requests, its failed requests, and whether the held connection lived through it all.
#
# usage: tests/bench/migrate_bench.sh BUILD_DIR
#   BUILD_DIR holds proxy/berth-proxy, node/berth-node and ctl/berthctl.
# Needs: root, dockerd with berth-test/busybox:latest, /opt/berth/bin/criu
#   (scripts/install-criu.sh), tests/support/test_fleet.sh's tools.
# Knobs: BENCH_MIGRATIONS (30); BENCH_MIB (0): the application also holds that many MiB of
#   anonymous memory (one dd's buffer, a known pattern whose md5 is checked at the end) and
#   rewrites about 20 MB/s of its heap (4 MiB of fresh random bytes every 0.2 s);
#   BENCH_ROLLBACKS (5): migrations made to fail after the dump (the target's node restarted
#   misconfigured), each rolled back: the time from the failure to the source running again;
#   BENCH_KEEP=1 keeps the work directory (logs of the client, nodes and proxy).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PROXY=$BUILD/proxy/berth-proxy
NODE=$BUILD/node/berth-node
CTL=$BUILD/ctl/berthctl
FLEET=$SRC/tests/support/test_fleet.sh
IMAGE=berth-test/busybox:latest
MIGRATIONS=${BENCH_MIGRATIONS:-30}
MIB=${BENCH_MIB:-0}
ROLLBACKS=${BENCH_ROLLBACKS:-5}
ID=mb$(($$ % 10000))
WORK=$(mktemp -d /tmp/berth-migrate-bench.XXXXXX)
PIDS=()

log() { printf '[migrate_bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash "$FLEET" down "$ID" >/dev/null 2>&1 || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

for bin in "$PROXY" "$NODE" "$CTL" /opt/berth/bin/criu; do
  [[ -x $bin ]] || die "$bin not there"
done

log "fleet $ID: two dockerds"
bash "$FLEET" up "$ID" 2 "$IMAGE" >"$WORK/fleet.log" 2>&1 || { cat "$WORK/fleet.log" >&2; die "no fleet"; }
"$CTL" ca init "$WORK/ca" --host 127.0.0.1 >/dev/null
"$CTL" cert issue --ca "$WORK/ca" --tenant benchco --user bench --out "$WORK/tenant" >/dev/null
"$CTL" cert issue --ca "$WORK/ca" --operator --user ops --out "$WORK/operator" >/dev/null

# start_node HOST DATA_ROOT: host HOST's berth-node; NODE_PID[HOST] is its pid.
ports=()
NODE_PID=()
start_node() {
  local h=$1
  "$NODE" --listen "127.0.0.1:${ports[$h]}" --cert "$WORK/ca/server-cert.pem" \
    --key "$WORK/ca/server-key.pem" --client-ca "$WORK/ca/ca.pem" \
    --docker "/run/bf-$ID/h$h.sock" --data-root "$2" \
    --exec-root "/run/bf-$ID/h$h" --state "$WORK/node-h$h" \
    --criu /opt/berth/bin/criu >>"$WORK/node-h$h.log" 2>&1 &
  NODE_PID[$h]=$!
  PIDS+=($!)
  for _ in $(seq 100); do
    grep -q "listening on" "$WORK/node-h$h.log" && return 0
    sleep 0.1
  done
  die "berth-node on h$h did not start"
}
stop_node() {
  kill -TERM "${NODE_PID[$1]}" 2>/dev/null || true
  wait "${NODE_PID[$1]}" 2>/dev/null || true
  mv "$WORK/node-h$1.log" "$WORK/node-h$1.$(date +%s%N).log"  # the next start's log is new
}
for h in 0 1; do
  ports+=($((20000 + RANDOM % 20000)))
  start_node "$h" "/var/lib/bf-$ID/h$h"
done
{
  echo 'listen: "127.0.0.1:0"'
  echo 'hosts:'
  for h in 0 1; do
    printf '  - name: h%d\n    url: "unix:///run/bf-%s/h%d.sock"\n' "$h" "$ID" "$h"
    printf '    capacity: {cpus: 64, memory: 64GiB}\n'
    printf '    node: {url: "tls://127.0.0.1:%s", ca: %s/ca/ca.pem, cert: %s/operator/cert.pem, key: %s/operator/key.pem}\n' \
      "${ports[$h]}" "$WORK" "$WORK" "$WORK"
  done
  printf 'tls:\n  cert: %s/ca/server-cert.pem\n  key: %s/ca/server-key.pem\n' "$WORK" "$WORK"
  printf '  client_ca: %s/ca/ca.pem\n' "$WORK"
  printf 'tenants:\n  benchco: {}\nidentities:\n  - organization: benchco\n    tenant: benchco\n'
  printf '  - organization: berth-operators\n    role: operator\n'
} >"$WORK/policy.yaml"
"$PROXY" --policy "$WORK/policy.yaml" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/^berth-proxy: ready on port \([0-9]*\)$/\1/p' "$WORK/proxy.log")
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n $PORT ]] || { cat "$WORK/proxy.log" >&2; die "berth-proxy did not start"; }

tenant() {
  DOCKER_CONFIG=$WORK/docker-config docker --tlsverify --tlscacert "$WORK/tenant/ca.pem" \
    --tlscert "$WORK/tenant/cert.pem" --tlskey "$WORK/tenant/key.pem" \
    -H "tcp://127.0.0.1:$PORT" "$@"
}

tenant network create appnet >/dev/null
big=
if ((MIB > 0)); then
  big="B=\$(($MIB * 1048576))
   (yes 0123456789abcdef0123456789abcde | head -c \$B | dd bs=\$B count=1 iflag=fullblock 2>/dev/null |
      (while [ ! -e /tmp/verify ]; do sleep 1; done; md5sum > /tmp/md5.out)) &
   (while true; do w=\$(head -c 4194304 /dev/urandom | tr -d '\\000'); usleep 200000; done) &"
fi
tenant run -d --name app --network appnet "$IMAGE" sh -c \
  "$big
   mkdir -p /www && echo hello > /www/index.html && httpd -p 8080 -h /www &&
   (while true; do nc -l -p 7000 -e sh -c 'while true; do echo tick; sleep 0.2; done'; done) &
   (while true; do echo t; usleep 20000; done) &
   i=0; while true; do i=\$((i+1)); echo \$i > /dev/shm/count; sleep 0.1; done" >/dev/null
tenant run -d --name loop --network appnet "$IMAGE" sh -c \
  'sleep 1; while true; do
     if printf "GET / HTTP/1.0\r\n\r\n" | nc -w 10 app 8080 | grep -q hello; then r=ok; else r=fail; fi
     echo "$(cut -d" " -f1 /proc/uptime) $r"
     sleep 0.05
   done > /log' >/dev/null
tenant run -d --name held --network appnet "$IMAGE" sh -c 'sleep 1; nc app 7000 > /ticks' >/dev/null
sleep $((3 + MIB / 100))
stored=$(for h in 0 1; do docker -H "unix:///run/bf-$ID/h$h.sock" ps --filter name=_app$ --format '{{.Names}}'; done | head -1)
[[ -n $stored ]] || die "the application did not start"
home=$(for h in 0 1; do
  if docker -H "unix:///run/bf-$ID/h$h.sock" ps -q --filter name=_app$ | grep -q .; then echo "$h"; fi
done)
log "application $stored on h$home; $MIGRATIONS migrations"

failed_migrations=0
for ((i = 1; i <= MIGRATIONS; i++)); do
  to=$((1 - home))
  date +"%s.%N migration $i" >>"$WORK/timeline.txt"
  if DOCKER_HOST=tcp://127.0.0.1:$PORT DOCKER_CERT_PATH=$WORK/operator \
       "$CTL" migrate "$stored" --to "h$to" >"$WORK/m.json" 2>"$WORK/m.err"; then
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK/m.json" >>"$WORK/migrations.jsonl"
    home=$to
  else
    failed_migrations=$((failed_migrations + 1))
    log "migration $i failed: $(cat "$WORK/m.err")"
  fi
  sleep 1
done
# Injected target failures: the other host's node restarted with a data root its dockerd never
# reads, so each restore fails after the dump and the application is rolled back onto its
# host. berthctl's error says how long after the failure the source ran again.
rollback_from=$(date +%s.%N)
if ((ROLLBACKS > 0)); then
  to=$((1 - home))
  stop_node "$to"
  start_node "$to" "$WORK/not-the-data-root"
  for ((i = 1; i <= ROLLBACKS; i++)); do
    date +"%s.%N rollback $i" >>"$WORK/timeline.txt"
    if DOCKER_HOST=tcp://127.0.0.1:$PORT DOCKER_CERT_PATH=$WORK/operator \
         "$CTL" migrate "$stored" --to "h$to" >"$WORK/m.json" 2>"$WORK/m.err"; then
      die "a migration to a misconfigured node succeeded"
    fi
    sed -n 's/.*rolled back: it runs again on h[01].*, \([0-9]*\) ms after the failure.*/\1/p' \
      "$WORK/m.err" >>"$WORK/rollbacks.txt"
    grep -q "ms after the failure" "$WORK/m.err" || log "rollback $i: $(cat "$WORK/m.err")"
    sleep 1
  done
  stop_node "$to"
  start_node "$to" "/var/lib/bf-$ID/h$to"
fi
rollback_to=$(date +%s.%N)
touch "$WORK/rollbacks.txt"
sleep 1
tenant exec loop cat /log >"$WORK/loop.log"
# The client stamps its lines with the host's /proc/uptime: this pair turns them into times.
clock_pair="$(date +%s.%N) $(cut -d' ' -f1 /proc/uptime)"
held=$(tenant inspect -f '{{.State.Running}}' held)
ticks=$(tenant exec held sh -c 'wc -l < /ticks' || echo 0)
count=$(tenant exec app cat /dev/shm/count)
tenant logs -t app 2>/dev/null | cut -d' ' -f1 >"$WORK/ticks.log"
memory="not checked"
if ((MIB > 0)); then
  rss=$(tenant exec app sh -c 'cat /proc/[0-9]*/status 2>/dev/null; true' |
    awk '/^VmRSS/ {s += $2} END {print int(s / 1024)}')
  tenant exec app touch /tmp/verify
  for _ in $(seq 60); do
    tenant exec app test -s /tmp/md5.out && break
    sleep 1
  done
  want=$( { yes 0123456789abcdef0123456789abcde || true; } | head -c $((MIB * 1048576)) | md5sum |
    cut -d' ' -f1)
  got=$(tenant exec app cat /tmp/md5.out | cut -d' ' -f1)
  memory="$MIB MiB held, $rss MiB resident at the end: $([[ $got == "$want" ]] && echo "the same bytes" || echo "CHANGED ($got, not $want)")"
fi

python3 - "$WORK/migrations.jsonl" "$WORK/loop.log" "$MIGRATIONS" "$failed_migrations" "$held" "$ticks" "$count" "$memory" "$WORK/ticks.log" "$WORK/rollbacks.txt" "$ROLLBACKS" "$rollback_from" "$rollback_to" "$clock_pair" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])] if open(sys.argv[1]).read().strip() else []
def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print(f"\n{len(rows)} of {sys.argv[3]} migrations done ({sys.argv[4]} failed)\n")
print("| ms (bytes) | min | p50 | p95 | max |\n|---|---|---|---|---|")
for key in ("downtime_ms", "drain_ms", "dump_ms", "transfer_ms", "restore_ms", "criu_restore_ms",
            "network_hook_ms", "restore_attempts", "archive_bytes"):
    vals = [r[key] for r in rows if key in r]
    if vals:
        print(f"| {key} | {min(vals)} | {q(vals, .5)} | {q(vals, .95)} | {max(vals)} |")
# The application's own view: it prints a line every 20 ms, and dockerd stamps each as it
# copies it; the widest gaps between two stamps, one per migration, are its pauses.
from datetime import datetime
def stamp(t):
    day, frac = t.rstrip("Z").split(".")
    return datetime.fromisoformat(day).timestamp() + float("0." + frac)
ticks = [stamp(l.strip()) for l in open(sys.argv[9]) if l.strip()]
rb_from, rb_to = float(sys.argv[12]), float(sys.argv[13])
pairs = list(zip(ticks, ticks[1:]))
gaps = sorted(((b - a) * 1000 for a, b in pairs if not rb_from <= a <= rb_to),
              reverse=True)[:len(rows)]
if gaps:
    print(f"| pause seen by the application (its 20 ms ticker) | {min(gaps):.0f} | {q(gaps, .5):.0f} | {q(gaps, .95):.0f} | {max(gaps):.0f} |")
rollbacks = [int(l) for l in open(sys.argv[10]) if l.strip()]
if rollbacks:
    paused = sorted(((b - a) * 1000 for a, b in pairs if rb_from <= a <= rb_to),
                    reverse=True)[:len(rollbacks)]
    print(f"\n{len(rollbacks)} of {sys.argv[11]} injected target failures rolled back\n")
    print("| ms | min | p50 | p95 | max |\n|---|---|---|---|---|")
    print(f"| from the failure to the source running again | {min(rollbacks)} | {q(rollbacks, .5)} | {q(rollbacks, .95)} | {max(rollbacks)} |")
    if paused:
        print(f"| pause seen by the application (dump, failed restore, rollback) | {min(paused):.0f} | {q(paused, .5):.0f} | {q(paused, .95):.0f} | {max(paused):.0f} |")
lines = [l.split() for l in open(sys.argv[2]) if l.strip()]
ok = [float(t) for t, s in lines if s == "ok"]
epoch_now, uptime_now = map(float, sys.argv[14].split())
failed_at = [epoch_now - (uptime_now - float(t)) for t, s in lines if s == "fail"]
fail = len(failed_at)
fail_rb = sum(1 for t in failed_at if rb_from <= t <= rb_to)
gap = max((b - a for a, b in zip(ok, ok[1:])), default=0) * 1000  # /proc/uptime: 10 ms steps
print(f"\nclient: {len(ok)} requests answered, {fail} failed ({fail_rb} of them while failures were injected), longest gap between answers {gap:.0f} ms")
print(f"held TCP connection: {'alive' if sys.argv[5] == 'true' else 'BROKEN'} ({sys.argv[6]} ticks)")
print(f"application's in-memory counter at the end: {sys.argv[7]} (one boot: it never restarted)")
print(f"application's big memory: {sys.argv[8]}")
PY
