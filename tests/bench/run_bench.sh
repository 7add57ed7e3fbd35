#!/usr/bin/env bash
# berth-proxy vs dockerd's own socket vs a plain TLS-terminating nginx, in one run; through
# berth, a tenant's filtered view against the operator's pass-through of the same requests; and
# a second berth-proxy writing its audit log (target "audit") against the first, which writes
# none. The idle row reports each server's growth by RSS and by PSS (smaps_rollup).
#
# usage: tests/bench/run_bench.sh BUILD_DIR
#   BUILD_DIR holds tests/bench/berth-bench, proxy/berth-proxy and ctl/berthctl.
# Needs: dockerd on /var/run/docker.sock, /usr/sbin/nginx, root (nginx workers open the socket).
# Knobs (environment): BENCH_DURATION (5 s per measurement), BENCH_CONNECTIONS (32),
#   BENCH_IDLE (1000), BENCH_CONTAINERS (300), BENCH_EXEC_BYTES (314572800, with a TTY),
#   BENCH_EXEC_NOTTY_BYTES (1048576000, without),
#   BERTH_WORKERS (2; empty: do not pass --workers), BENCH_KEEP=1 keeps the temp dir,
#   BENCH_ONLY (all; or a comma list of ping,inspect,list,name,handshake,exec,idle: run only
#   those measurement groups, for quick investigation; published tables come from full runs),
#   BENCH_ROUNDS (3): every measurement but the idle one is taken this many times, in rounds
#   that each go through all targets in turn; the table shows each target's median run (by
#   rate) and the range. Single runs on a shared 2-core machine move by more than the
#   differences the ratios are about. BENCH_EXEC_ROUNDS (5): the same for the exec streams,
#   which move the most.
# The bench containers belong to tenant benchco (label berth.tenant=benchco, stored names
# benchco_c<i>-<run>); the operator sees them as well, so both views list the same containers.
# Everything it creates (containers labelled berth.bench=1 and berth.bench.run=<this run>,
# berth-proxy, nginx, the temp dir) is removed on exit.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
BENCH=$BUILD/tests/bench/berth-bench
PROXY=$BUILD/proxy/berth-proxy
CTL=$BUILD/ctl/berthctl
NGINX=/usr/sbin/nginx
DOCKER_SOCK=/var/run/docker.sock
IMAGE=berth-test/busybox:latest
DURATION=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNECTIONS:-32}
IDLE=${BENCH_IDLE:-1000}
NCONTAINERS=${BENCH_CONTAINERS:-300}
EXEC_BYTES=${BENCH_EXEC_BYTES:-314572800}
EXEC_NOTTY_BYTES=${BENCH_EXEC_NOTTY_BYTES:-1048576000}
BERTH_WORKERS=${BERTH_WORKERS-2}
ONLY=${BENCH_ONLY:-all}
ROUNDS=${BENCH_ROUNDS:-3}
EXEC_ROUNDS=${BENCH_EXEC_ROUNDS:-5}
API=v1.41
TENANT=benchco

log() { printf '[run_bench] %s\n' "$*" >&2; }
wanted() { [[ $ONLY == all || ,$ONLY, == *,$1,* ]]; }
die() { log "error: $*"; exit 1; }

[[ -x $BENCH ]] || die "$BENCH not built (cmake --build BUILD_DIR --target berth-bench)"
[[ -x $NGINX ]] || die "$NGINX missing"
[[ -S $DOCKER_SOCK ]] || die "dockerd socket $DOCKER_SOCK missing"
docker info >/dev/null 2>&1 || die "dockerd does not answer"

T=$(mktemp -d /tmp/berth-bench.XXXXXX)
RUN_ID=$(basename "$T" | tr -dc 'a-zA-Z0-9')
# Container names carry the run's suffix: a run killed before its cleanup cannot block the next.
NAME_SUFFIX=$(tr -dc 'a-zA-Z0-9' <<<"${T##*.}")
BERTH_PID=
AUDIT_PID=
AUDIT_PORT=
NGINX_PID=

stop_pid() {  # pid name: SIGTERM, bounded wait, then SIGKILL
  local pid=$1 name=$2 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "$name ($pid) ignored SIGTERM for 5 s, killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$BERTH_PID" berth-proxy
  stop_pid "$AUDIT_PID" "berth-proxy (audit)"
  stop_pid "$NGINX_PID" nginx
  local ids
  ids=$(docker ps -aq --filter "label=berth.bench.run=$RUN_ID" 2>/dev/null || true)
  if [[ -n $ids ]]; then
    log "removing $(wc -w <<<"$ids") bench containers"
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || log "some containers could not be removed (label berth.bench.run=$RUN_ID)"
  fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    log "kept $T"
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DOCKERD_PID=$(cat /var/run/docker.pid 2>/dev/null || pidof -s dockerd || true)
[[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null || die "cannot find dockerd's pid"

# ---- image -------------------------------------------------------------------------------------
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "importing $IMAGE from /bin/busybox"
  mkdir -p "$T/rootfs/bin"
  cp /bin/busybox "$T/rootfs/bin/"
  for a in sh sleep head cat ls echo; do ln -s busybox "$T/rootfs/bin/$a"; done
  tar -C "$T/rootfs" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$T/rootfs"
fi

# ---- certificates ------------------------------------------------------------------------------
if [[ -x $CTL ]]; then
  "$CTL" ca init "$T/ca" --host localhost --host 127.0.0.1 >"$T/berthctl.log" 2>&1 ||
    { cat "$T/berthctl.log" >&2; die "berthctl ca init failed"; }
  "$CTL" cert issue --ca "$T/ca" --operator --user bench --out "$T/op" >>"$T/berthctl.log" 2>&1 ||
    { cat "$T/berthctl.log" >&2; die "berthctl cert issue failed"; }
  "$CTL" cert issue --ca "$T/ca" --tenant "$TENANT" --user bench --out "$T/tenant" \
    >>"$T/berthctl.log" 2>&1 || { cat "$T/berthctl.log" >&2; die "berthctl cert issue --tenant failed"; }
else
  # berthctl not built yet: same shapes from the openssl CLI, so direct and nginx still run.
  log "no $CTL: making certificates with openssl (berth target will be skipped if absent too)"
  mkdir -p "$T/ca" "$T/op"
  (
    cd "$T/ca"
    openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
    openssl req -x509 -new -key ca-key.pem -subj "/O=berth/CN=berth bench CA" -days 2 -out ca.pem
    openssl ecparam -name prime256v1 -genkey -noout -out server-key.pem
    openssl req -new -key server-key.pem -subj "/CN=localhost" -out server.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile server.ext -out server-cert.pem
    for who in op:berth-operators "tenant:$TENANT"; do
      mkdir -p "$T/${who%%:*}"
      cd "$T/${who%%:*}"
      openssl ecparam -name prime256v1 -genkey -noout -out key.pem
      openssl req -new -key key.pem -subj "/O=${who#*:}/CN=bench" -out client.csr
      printf 'extendedKeyUsage=clientAuth\n' >client.ext
      openssl x509 -req -in client.csr -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca-key.pem" \
        -CAcreateserial -days 2 -extfile client.ext -out cert.pem
      cp "$T/ca/ca.pem" ca.pem
    done
  ) >"$T/openssl.log" 2>&1 || { cat "$T/openssl.log" >&2; die "openssl certificate setup failed"; }
fi
for f in ca/ca.pem ca/server-cert.pem ca/server-key.pem {op,tenant}/{ca,cert,key}.pem; do
  [[ -s $T/$f ]] || die "missing $T/$f"
done
TLS_ARGS=(--ca "$T/op/ca.pem" --cert "$T/op/cert.pem" --key "$T/op/key.pem")
TENANT_TLS_ARGS=(--ca "$T/tenant/ca.pem" --cert "$T/tenant/cert.pem" --key "$T/tenant/key.pem")

# ---- berth-proxy -------------------------------------------------------------------------------
BERTH_PORT=
if [[ -x $PROXY ]]; then
  cat >"$T/policy.yaml" <<EOF
listen: "127.0.0.1:0"
upstream: "unix://$DOCKER_SOCK"
tls: {cert: $T/ca/server-cert.pem, key: $T/ca/server-key.pem, client_ca: $T/ca/ca.pem}
tenants: {$TENANT: {}}
identities:
  - organization: berth-operators
    role: operator
  - organization: $TENANT
    tenant: $TENANT
EOF
  worker_args=()
  [[ -n $BERTH_WORKERS ]] && worker_args=(--workers "$BERTH_WORKERS")
  # One client certificate and one address hold all of the idle scenario's connections: the
  # caps (256 per certificate, 512 per address by default) are raised past them, as nginx has
  # none.
  worker_args+=(--max-connections-per-certificate $((IDLE + 64))
    --max-connections-per-address $((IDLE + 128)))
  # start_berth NAME ARGS...: one berth-proxy on the policy above; sets STARTED_PID and
  # STARTED_PORT (empty when it did not get ready).
  start_berth() {
    local name=$1 i
    shift
    STARTED_PORT=
    # Created first: the readiness loop may read it before the background job has opened it,
    # and a failing sed would end this script (set -e, pipefail).
    : >"$T/$name.out"
    "$PROXY" --policy "$T/policy.yaml" --listen 127.0.0.1:0 "${worker_args[@]}" "$@" \
      >>"$T/$name.out" 2>"$T/$name.err" &
    STARTED_PID=$!
    for ((i = 0; i < 150; i++)); do  # bounded: 15 s
      STARTED_PORT=$(sed -n 's/^berth-proxy: ready on port \([0-9][0-9]*\).*/\1/p' "$T/$name.out" | head -n1)
      [[ -n $STARTED_PORT ]] && break
      kill -0 "$STARTED_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [[ -z $STARTED_PORT ]]; then
      log "$name: berth-proxy did not get ready; its stderr:"
      tail -n 30 "$T/$name.err" >&2 || true
      stop_pid "$STARTED_PID" "$name"
      STARTED_PID=
    else
      log "$name: berth-proxy $STARTED_PID ready on port $STARTED_PORT"
    fi
  }
  start_berth berth
  BERTH_PID=$STARTED_PID BERTH_PORT=$STARTED_PORT
  # The same proxy writing its audit log (target "audit"), for what the log costs on /_ping
  # and inspect.
  if wanted ping || wanted inspect; then
    start_berth audit --audit-log "$T/audit.log"
    AUDIT_PID=$STARTED_PID AUDIT_PORT=$STARTED_PORT
  fi
else
  log "no $PROXY: berth target skipped"
fi

# ---- nginx -------------------------------------------------------------------------------------
NGINX_PORT=$(free_port) || die "no free port for nginx"
mkdir -p "$T/nginx/tmp"
crl_line=
[[ -s $T/ca/crl.pem ]] && crl_line="ssl_crl $T/ca/crl.pem;"
render_nginx_conf "$HERE/nginx.conf.in" "$T/nginx" "$NGINX_PORT" "$T/ca" "$DOCKER_SOCK" \
  "$crl_line" >"$T/nginx/nginx.conf"
"$NGINX" -t -q -p "$T/nginx/" -c "$T/nginx/nginx.conf" 2>"$T/nginx/test.err" ||
  { cat "$T/nginx/test.err" >&2; die "nginx rejects the generated config"; }
"$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" 2>>"$T/nginx/stderr.log" &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do  # bounded: 10 s
  ss -Hltn "sport = :$NGINX_PORT" | grep -q . && break
  kill -0 "$NGINX_PID" 2>/dev/null || break
  sleep 0.1
done
ss -Hltn "sport = :$NGINX_PORT" | grep -q . ||
  { cat "$T/nginx/error.log" "$T/nginx/stderr.log" >&2 2>/dev/null; die "nginx did not start"; }
log "nginx $NGINX_PID listening on port $NGINX_PORT"

# ---- containers --------------------------------------------------------------------------------
# Created on dockerd directly, as tenant $TENANT's: its label and its stored names. The tenant
# calls container i "c<i>-<suffix>", the operator "${TENANT}_c<i>-<suffix>".
log "creating $NCONTAINERS containers of tenant $TENANT (label berth.bench=1)"
TENANT_NAME=c0-$NAME_SUFFIX
STORED_NAME=${TENANT}_$TENANT_NAME
seq 0 $((NCONTAINERS - 1)) | xargs -P 8 -I{} docker create --label berth.bench=1 \
  --label "berth.bench.run=$RUN_ID" --label "berth.tenant=$TENANT" \
  --name "${TENANT}_c{}-$NAME_SUFFIX" "$IMAGE" sleep 1000 >"$T/created.ids" 2>"$T/create.err" ||
  { tail -n 5 "$T/create.err" >&2; die "docker create failed"; }
INSPECT_ID=$(docker inspect --format '{{.Id}}' "$STORED_NAME") || die "no container $STORED_NAME"
EXEC_ID=$(docker run -d --label berth.bench=1 --label "berth.bench.run=$RUN_ID" "$IMAGE" sleep 1000)
NALL=$(docker ps -aq | wc -l)
log "containers ready; $NALL containers on this dockerd in total"

# berth's ownership index learns the tenant's containers from dockerd's events: wait (bounded)
# until the tenant's list shows all of them, so no measurement races the index.
TENANT_SEES=-
tenant_count() {  # prints one number: the containers in the tenant's list through berth
  local body
  body=$(curl -sS --max-time 5 --cacert "$T/tenant/ca.pem" --cert "$T/tenant/cert.pem" \
    --key "$T/tenant/key.pem" "https://127.0.0.1:$BERTH_PORT/$API/containers/json?all=1" \
    2>>"$T/curl.err") || true
  grep -o '"Id":' <<<"$body" | wc -l || true  # grep finding nothing still prints 0, once
}
if [[ -n $BERTH_PORT ]] && command -v curl >/dev/null; then
  for ((i = 0; i < 75; i++)); do  # bounded: 15 s
    TENANT_SEES=$(tenant_count)
    ((TENANT_SEES >= NCONTAINERS)) && break
    sleep 0.2
  done
  if ((TENANT_SEES < NCONTAINERS)); then
    log "warning: tenant $TENANT sees $TENANT_SEES of its $NCONTAINERS containers through berth"
    tail -n 3 "$T/curl.err" >&2 2>/dev/null || true
  else
    log "berth shows tenant $TENANT its $TENANT_SEES containers"
  fi
elif [[ -n $BERTH_PORT ]]; then
  log "no curl: giving berth's ownership index 2 s to learn the tenant's containers"
  sleep 2
fi

# ---- measurements ------------------------------------------------------------------------------
RESULTS=$T/results.txt
: >"$RESULTS"

targets=(direct nginx)
[[ -n $BERTH_PORT ]] && targets+=(berth)

target_args() {  # name -> berth-bench arguments
  case $1 in
  direct) echo "--target unix:$DOCKER_SOCK --server-pid $DOCKERD_PID" ;;
  nginx) echo "--target https://127.0.0.1:$NGINX_PORT ${TLS_ARGS[*]} --server-pid $NGINX_PID --with-children --dockerd-pid $DOCKERD_PID" ;;
  berth) echo "--target https://127.0.0.1:$BERTH_PORT ${TLS_ARGS[*]} --server-pid $BERTH_PID --with-children --dockerd-pid $DOCKERD_PID" ;;
  audit) echo "--target https://127.0.0.1:$AUDIT_PORT ${TLS_ARGS[*]} --server-pid $AUDIT_PID --with-children --dockerd-pid $DOCKERD_PID" ;;
  tenant) echo "--target https://127.0.0.1:$BERTH_PORT ${TENANT_TLS_ARGS[*]} --server-pid $BERTH_PID --with-children --dockerd-pid $DOCKERD_PID" ;;
  esac
}

run_one() {  # name berth-bench-args...
  local name=$1 out
  shift
  # shellcheck disable=SC2046
  out=$("$BENCH" --label "$name" $(target_args "$name") "$@" 2> >(sed 's/^/    /' >&2)) || true
  grep -v '^result ' <<<"$out" | sed 's/^/  /' >&2 || true
  grep '^result ' <<<"$out" >>"$RESULTS" || log "no result line from berth-bench ($name $*)"
}

keepalive() {  # name path
  run_one "$1" --scenario keepalive --path "$2" --connections "$CONNS" --duration "$DURATION"
}
# An exec whose stream was cut (nginx after a half-close) keeps `head` running and burning CPU
# in the container, shim and dockerd: stop it before the next measurement.
stop_leftover_exec() {
  local i procs
  for ((i = 0; i < 50; i++)); do
    # dockerd refuses `-o comm` alone ("Couldn't find PID field in ps output"): a check that
    # only looked at that output never saw the head left running, which then competed with the
    # next measurement (berth's half-close run) for the CPU and for dockerd.
    procs=$(docker top "$EXEC_ID" -o pid,comm 2>&1) ||
      { log "warning: docker top $EXEC_ID failed: $procs"; return 0; }
    awk 'NR > 1 && $2 == "head" { found = 1 } END { exit !found }' <<<"$procs" || return 0
    docker exec "$EXEC_ID" /bin/busybox killall head >/dev/null 2>&1 || true
    sleep 0.1
  done
  log "warning: an exec of head is still running in $EXEC_ID"
}
log "load average before measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS"
  # The tenant runs right after berth's (the operator's) run of the same request, so the pair
  # sees the same machine state: the tenant-isolation requirement is tenant within 10% of it.
  for group in ping:/_ping "inspect:/$API/containers/$INSPECT_ID/json" \
    "list:/$API/containers/json?all=1"; do
    path=${group#*:}
    wanted "${group%%:*}" || continue
    log "keepalive GET $path, $CONNS connections, ${DURATION}s"
    for t in "${targets[@]}"; do
      keepalive "$t" "$path"
    done
    if [[ -n $AUDIT_PORT && $path != *containers/json* ]]; then
      keepalive audit "$path"
    fi
    if [[ -n $BERTH_PORT && $path != /_ping ]]; then
      keepalive tenant "$path"
    fi
  done
  if [[ -n $BERTH_PORT ]] && wanted name; then
    log "keepalive inspect by name: operator $STORED_NAME, tenant $TENANT_NAME"
    keepalive berth "/$API/containers/$STORED_NAME/json"
    keepalive tenant "/$API/containers/$TENANT_NAME/json"
  fi
  log "new TLS connection per request (full handshake + /_ping + close), $CONNS workers"
  for t in "${targets[@]}"; do
    [[ $t == direct ]] || ! wanted handshake && continue
    run_one "$t" --scenario handshake --connections "$CONNS" --duration "$DURATION"
  done
done
# Exec streams move the most from run to run (a chain of five processes on two cores: how
# their wakeups fall decides the rate), so they get rounds of their own.
for ((round = 1; round <= EXEC_ROUNDS; round++)); do
  wanted exec || break
  log "exec round $round of $EXEC_ROUNDS"
  # With a TTY the terminal hands over at most 4 KiB per read, so every hop of the chain wakes
  # for each 4 KiB (interactive use); without one dockerd relays up to 32 KiB per frame (what
  # `docker exec c cat big > out` moves).
  for mode in tty:half-close tty:no-half-close notty:half-close notty:no-half-close; do
    extra=(--bytes "$EXEC_BYTES")
    if [[ ${mode%%:*} == notty ]]; then
      extra=(--bytes "$EXEC_NOTTY_BYTES" --no-tty)
    fi
    [[ ${mode#*:} == no-half-close ]] && extra+=(--no-half-close)
    log "exec stream: head -c ${extra[1]} /dev/zero, ${mode%%:*}, ${mode#*:}"
    for t in "${targets[@]}"; do
      run_one "$t" --scenario exec --container "$EXEC_ID" --timeout 60 "${extra[@]}"
      stop_leftover_exec
    done
  done
done
log "idle mTLS connections: $IDLE"
for t in "${targets[@]}"; do
  [[ $t == direct ]] || ! wanted idle && continue
  run_one "$t" --scenario idle --idle "$IDLE" --connections "$CONNS" --timeout 60
done
log "load average after measuring: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table -------------------------------------------------------------------------------------
# field(line, key): the value of key=value in a result line, "-" when absent.
AWK_FIELD='
function field(line, key,   n, i, kv, parts) {
  n = split(line, parts, " ")
  for (i = 2; i <= n; i++) {
    split(parts[i], kv, "=")
    if (kv[1] == key) return substr(parts[i], length(key) + 2)
  }
  return "-"
}
'
# One row per scenario, path and target: its median run by rate (the lower middle one for an
# even count), with the number of runs and the range of their rates.
awk "$AWK_FIELD"'
{
  key = field($0, "scenario") "|" field($0, "path") "|" field($0, "target")
  if (!(key in runs)) order[++keys] = key
  runs[key]++
  row[key, runs[key]] = $0
  rate[key, runs[key]] = field($0, "rate") + 0
}
END {
  for (k = 1; k <= keys; k++) {
    key = order[k]; n = runs[key]
    for (i = 1; i <= n; i++) idx[i] = i
    for (i = 2; i <= n; i++)  # insertion sort of run numbers by rate
      for (j = i; j > 1 && rate[key, idx[j - 1]] > rate[key, idx[j]]; j--) {
        t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t
      }
    m = idx[int((n + 1) / 2)]
    printf "%s runs=%d rate_min=%s rate_max=%s\n", row[key, m], n, rate[key, idx[1]], rate[key, idx[n]]
  }
}' "$RESULTS" >"$T/medians.txt"

awk -v inspect_id="$INSPECT_ID" -v stored_name="$STORED_NAME" -v tenant_name="$TENANT_NAME" "$AWK_FIELD"'
function num(v) { return v != "-" && v != "" }
function replace(s, what, with,   i) {
  i = index(s, what)
  return i ? substr(s, 1, i - 1) with substr(s, i + length(what)) : s
}
function ratio(a, b) { return (num(a) && num(b) && b + 0 > 0) ? sprintf("%.2fx", a / b) : "-" }
function pair(what, b, d, n,   rd, rn) {
  rd = ratio(b, d); rn = ratio(b, n)
  if (rd == "-" && rn == "-") return ""
  return sprintf("  %s %s/direct %s/nginx;", what, rd, rn)
}
function total_cpu(t, s,   d) {
  s = cpu[t]; d = dcpu[t]
  if (t == "direct") return s
  if (num(s) && num(d)) return sprintf("%.1f", s + d)
  return s
}
function flush_group(   t, i, note) {
  if (group == "") return
  for (i = 1; i <= ntargets; i++) {
    t = order[i]
    printf "%-34s %-7s %10s %-8s %8s %8s %9s %11s %9s  %s\n", group, t, rate[t], unit[t], \
      p50[t], p99[t], (t == "direct" ? "-" : cpu[t]), (t == "direct" ? cpu[t] : dcpu[t]), \
      total_cpu(t), notes[t]
  }
  if ("berth" in rate) {
    line = pair(unit["berth"], rate["berth"], rate["direct"], rate["nginx"]) \
      pair("p50", p50["berth"], p50["direct"], p50["nginx"]) \
      pair("total CPU", total_cpu("berth"), total_cpu("direct"), total_cpu("nginx"))
    if (line != "") printf "%-34s %-7s%s\n", "", "berth", line
  }
  if (("audit" in rate) && ("berth" in rate)) {
    # What the audit log costs: the same berth with --audit-log against without.
    printf "%-34s %-7s  with/without --audit-log: %s %s; p50 %s; proxy CPU %s%s\n", "", "audit", \
      unit["audit"], ratio(rate["audit"], rate["berth"]), ratio(p50["audit"], p50["berth"]), \
      ratio(cpu["audit"], cpu["berth"]), (bad["audit"] ? " (errors or non-2xx)" : "")
  }
  if (("tenant" in rate) && ("berth" in rate)) {
    # The requirement: tenant-filtered requests within 10% of the operator pass-through.
    rr = ratio(rate["tenant"], rate["berth"]); rl = ratio(p50["tenant"], p50["berth"])
    if (bad["tenant"] || bad["berth"]) verdict = "no verdict: errors or non-2xx"
    else if (rr == "-" || rl == "-") verdict = "no verdict"
    else verdict = (rr + 0 >= 0.90 && rl + 0 <= 1.10) ? "within 10%" : "NOT within 10%"
    printf "%-34s %-7s  tenant/operator: %s %s; p50 %s; proxy CPU %s; total CPU %s; body %s  => %s\n", \
      "", "tenant", unit["tenant"], rr, rl, ratio(cpu["tenant"], cpu["berth"]), \
      ratio(total_cpu("tenant"), total_cpu("berth")), ratio(bytes["tenant"], bytes["berth"]), verdict
  }
  delete rate; delete bytes; delete bad; delete unit; delete p50; delete p99; delete cpu; delete dcpu; delete notes
  ntargets = 0
}
{
  s = field($0, "scenario"); p = field($0, "path")
  if (s == "keepalive") {
    label = p
    if (inspect_id != "") label = replace(label, "/" inspect_id "/", "/{id}/")
    if (stored_name != "") label = replace(label, "/" stored_name "/", "/{name}/")
    if (tenant_name != "") label = replace(label, "/" tenant_name "/", "/{name}/")
    sub(/^\/v[0-9.]+/, "", label)
    label = "GET " label
  } else if (s == "handshake") label = "new TLS conn + /_ping"
  else if (s == "exec-halfclose") label = "exec stream, TTY, half-close"
  else if (s == "exec") label = "exec stream, TTY, no half-close"
  else if (s == "exec-halfclose-notty") label = "exec stream, no TTY, half-close"
  else if (s == "exec-notty") label = "exec stream, no TTY, no half-close"
  else if (s == "idle") label = "idle mTLS conn memory"
  else label = s
  if (label != group) { flush_group(); group = label }
  t = field($0, "target")
  order[++ntargets] = t
  rate[t] = field($0, "rate"); unit[t] = field($0, "unit")
  p50[t] = field($0, "p50_ms"); p99[t] = field($0, "p99_ms")
  cpu[t] = field($0, "server_cpu_us"); dcpu[t] = field($0, "dockerd_cpu_us")
  bytes[t] = field($0, "body_bytes")
  bad[t] = field($0, "errors") + 0 > 0 || field($0, "non2xx") + 0 > 0
  n = ""
  if (s == "keepalive" && num(bytes[t])) n = n sprintf("body %d B ", bytes[t])
  if (field($0, "errors") != "-" && field($0, "errors") + 0 > 0) n = n "errors=" field($0, "errors") " "
  if (field($0, "non2xx") != "-" && field($0, "non2xx") + 0 > 0) n = n "non-2xx=" field($0, "non2xx") " "
  if (s ~ /^exec/) {
    if (field($0, "complete") != "1") n = n "INCOMPLETE " field($0, "bytes") "/" field($0, "expected") " bytes "
    n = n "101 in " field($0, "time_to_101_ms") "ms exit=" field($0, "exit_code") " "
  }
  if (s == "idle") {
    dcpu[t] = "-"
    n = n field($0, "opened") " opened, " field($0, "alive") " alive, PSS " field($0, "pss_kib_per_conn") " KiB/conn, dockerd " field($0, "dockerd_kib_per_conn") " KiB/conn "
  }
  if (field($0, "client_cpu_us") != "-") n = n "client CPU " field($0, "client_cpu_us") " "
  if (field($0, "runs") + 0 > 1) {
    n = n "median of " field($0, "runs") " (" field($0, "rate_min") ".." field($0, "rate_max") ") "
  }
  if (field($0, "first_error") != "-") n = n "first error: " field($0, "first_error")
  notes[t] = n
}
END {
  flush_group()
}' "$T/medians.txt" >"$T/table.txt"

echo
echo "berth bench: $(nproc) cores shared by client and servers; ${DURATION}s per keep-alive/handshake run, $CONNS connections;"
echo "each row is a target's median of $ROUNDS runs by rate ($EXEC_ROUNDS for exec streams; the idle row: one run), its range in the notes."
echo "CPU columns: server CPU time (utime+stime) per request, in us (exec: per MB). proxy = berth-proxy or nginx"
echo "(master+workers); dockerd = dockerd's own share; direct = dockerd alone. Idle row: rate is server RSS KiB per connection."
if [[ -n $BERTH_PORT ]]; then
  if [[ -n $AUDIT_PORT ]]; then
    echo "audit = a second berth-proxy like berth's, writing --audit-log ($(wc -l <"$T/audit.log") lines written in this run)."
  fi
  echo "berth = the operator's pass-through; tenant = tenant $TENANT's filtered view, through the same berth-proxy."
  echo "Tenant $TENANT owns $NCONTAINERS containers (berth showed it $TENANT_SEES); the operator sees all $NALL on dockerd."
  echo "{name}: the tenant says $TENANT_NAME, the operator the stored name $STORED_NAME."
fi
printf '%-34s %-7s %10s %-8s %8s %8s %9s %11s %9s  %s\n' scenario target rate unit "p50 ms" "p99 ms" \
  "proxy CPU" "dockerd CPU" "total CPU" notes
cat "$T/table.txt"
[[ -z $BERTH_PORT ]] && echo "(berth-proxy was not runnable in this run: berth rows and ratios are missing)"
exit 0
