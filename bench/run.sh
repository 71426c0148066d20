#!/usr/bin/env bash
# Side-by-side benchmark: A-Confi and Janus (VideoRoom) on this machine,
# same load from the same generator, run alternately, several rounds.
#
#   bench/run.sh            # full run (about 10 minutes), writes bench/results/
#   ROUNDS=1 QUICK=1 bench/run.sh   # a short sanity run
#   TARGETS=aconfi bench/run.sh     # A-Confi alone (say, before and after a change)
#   SIMULCAST=1 bench/run.sh        # publishers send three simulcast layers (q/h/f)
#   NXN="12" FANOUT="" bench/run.sh # only these sizes
#   ACONFI_BIN=/tmp/aconfi-old bench/run.sh  # another A-Confi build
#   SETTLE=8 bench/run.sh           # measure from 8 s after everyone receives
#                                   # everything (default 1: a meeting's start)
#   SHARDS=2 bench/run.sh           # A-Confi's --shards (default 1, as the figures
#                                   # before media shards; bench/shards.sh compares)
#   SRVLOG=debug bench/run.sh       # A-Confi's log level (default warn); each
#                                   # run's server log is kept next to its JSON
#
# Both servers run in a network namespace ("acbench", veth 10.77.0.1 <->
# 10.77.0.2) made by this script: Janus (libnice) gathers no candidates on
# the loopback interface, so both get the same veth path instead. The
# server is pinned to CPU 0 and the generator to CPU 1 (taskset).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-2}
TARGETS=${TARGETS:-aconfi janus}
WINDOW=${WINDOW:-8}
SETTLE=${SETTLE:-1}
NS=acbench
HOST_IP=10.77.0.1
NS_IP=10.77.0.2
out="$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

need=()
case " $TARGETS " in *" janus "*) command -v janus >/dev/null || need+=(janus) ;; esac
command -v taskset >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --locked -p aconfi-server -p aconfi-load
aconfi="${ACONFI_BIN:-$root/target/release/aconfi}"
load="$root/target/release/aconfi-load"

# The test namespace, made fresh and removed at exit.
# shellcheck source=bench/netns.sh
. "$root/bench/netns.sh"
netns_up "$NS" acb "$HOST_IP" "$NS_IP"

janus_cfg=$(mktemp -d)
for f in "$root"/bench/janus/*.jcfg; do
  sed -e "s#@CONFIGS@#$janus_cfg#" -e "s#@IP@#$NS_IP#" "$f" > "$janus_cfg/$(basename "$f")"
done

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  netns_down "$NS" acb
  rm -rf "$janus_cfg"
}
trap cleanup EXIT

wait_port() { # port
  for _ in $(seq 100); do
    ip netns exec "$NS" ss -ltn | grep -q "$NS_IP:$1 " && return 0
    sleep 0.1
  done
  echo "server did not listen on $1" >&2; return 1
}

start_server() { # target
  if [ "$1" = aconfi ]; then
    ip netns exec "$NS" taskset -c 0 "$aconfi" --listen "$NS_IP:8443" --media-bind "$NS_IP" --media-port 10000 --shards "${SHARDS:-1}" \
      --log "${SRVLOG:-warn}" > "$out/server-aconfi.log" 2>&1 &
    server_pid=$!
    wait_port 8443
  else
    ip netns exec "$NS" taskset -c 0 janus -C "$janus_cfg/janus.jcfg" -F "$janus_cfg" > "$out/server-janus.log" 2>&1 &
    server_pid=$!
    wait_port 8188
  fi
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

run() { # target scenario participants kbps
  local url
  if [ "$1" = aconfi ]; then url="wss://$NS_IP:8443/ws"; else url="ws://$NS_IP:8188"; fi
  local name="$1-$2-$3-$4k-r$round"
  start_server "$1"
  if taskset -c 1 "$load" --target "$1" --url "$url" --local-ip "$HOST_IP" --scenario "$2" --participants "$3" \
      --video-kbps "$4" --seconds "$WINDOW" --settle "$SETTLE" --server-pid "$server_pid" --room "bench-$round-$2-$3" \
      ${SIMULCAST:+--simulcast} --json "$out/$name.json" > "$out/$name.out" 2>&1; then
    echo "ok   $name"
  else
    # The error, not the last line of a backtrace after it.
    echo "FAIL $name: $(grep -m1 '^Error' "$out/$name.out" || tail -1 "$out/$name.out")"
    echo "{\"target\":\"$1\",\"scenario\":\"$2\",\"participants\":$3,\"failed\":true}" > "$out/$name.json"
  fi
  stop_server
  mv "$out/server-$1.log" "$out/$name.server.log"
}

if [ -n "${QUICK:-}" ]; then
  nxn_sizes=(4); fanout_sizes=(10)
else
  # A-Confi rooms hold 200 participants: 199 viewers + 1 publisher.
  nxn_sizes=(4 8 12); fanout_sizes=(25 50 100 150 199)
fi
# NXN="12" FANOUT="" bench/run.sh: only these sizes.
if [ -n "${NXN+x}" ]; then read -ra nxn_sizes <<< "$NXN"; fi
if [ -n "${FANOUT+x}" ]; then read -ra fanout_sizes <<< "$FANOUT"; fi
for round in $(seq "$ROUNDS"); do
  order=($TARGETS)
  # Alternate which server goes first in each round.
  [ $((round % 2)) -eq 0 ] && order=($(printf '%s\n' "${order[@]}" | tac))
  for t in "${order[@]}"; do
    for n in "${nxn_sizes[@]}"; do run "$t" nxn "$n" 500; done
    for n in "${fanout_sizes[@]}"; do run "$t" fanout "$n" 1500; done
  done
done

python3 "$root/bench/summarize.py" "$out" | tee "$out/summary.md"
echo "results: $out"
