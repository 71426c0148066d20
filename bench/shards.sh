#!/usr/bin/env bash
# Media shards on one node: A-Confi with 1 and with 2 shards, two rooms at
# once (one load generator per room), each shard thread pinned to its own
# CPU (shard i -> CPU i). Aggregate forwarded packets per second, loss, and
# the server's CPU per forwarded packet.
#
#   bench/shards.sh                                  # ROUNDS=1, fan-out 1->80 per room
#   ROUNDS=2 SCENARIO=nxn PARTICIPANTS=8 KBPS=500 bench/shards.sh
#
# As bench/run.sh: the server in a network namespace over a veth pair, the
# generators on CPU 1. On a 2-CPU machine shard 1 shares CPU 1 with the
# generators: the figure then shows what sharding costs per packet, not
# how far it scales.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-1}
SCENARIO=${SCENARIO:-fanout}
PARTICIPANTS=${PARTICIPANTS:-80}
KBPS=${KBPS:-1500}
WINDOW=${WINDOW:-8}
SETTLE=${SETTLE:-2}
SHARDS=${SHARDS:-1 2}
NS=acshard
HOST_IP=10.78.0.1
NS_IP=10.78.0.2
target_dir=${CARGO_TARGET_DIR:-$root/target}
out="$root/bench/results/shards-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

cargo build --release --locked -p aconfi-server -p aconfi-load
aconfi="${ACONFI_BIN:-$target_dir/release/aconfi}"
load="$target_dir/release/aconfi-load"

# shellcheck source=bench/netns.sh
. "$root/bench/netns.sh"
netns_up "$NS" acs "$HOST_IP" "$NS_IP"

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  netns_down "$NS" acs
}
trap cleanup EXIT

# Starts A-Confi with $1 shards and pins shard thread i to CPU i.
start_server() {
  ip netns exec "$NS" "$aconfi" --listen "$NS_IP:8443" --media-bind "$NS_IP" --media-port 10000 \
    --shards "$1" --log warn > "$out/server-$1.log" 2>&1 &
  server_pid=$!
  until_pinned "$NS" "$server_pid" "$1" 0 "$NS_IP:8443" && return 0
  echo "server did not start" >&2; return 1
}

for round in $(seq "$ROUNDS"); do
  for shards in $SHARDS; do
    start_server "$shards"
    pids=()
    for room in a b; do
      name="shards$shards-$SCENARIO-$PARTICIPANTS-room$room-r$round"
      taskset -c 1 "$load" --target aconfi --url "wss://$NS_IP:8443/ws" --local-ip "$HOST_IP" \
        --scenario "$SCENARIO" --participants "$PARTICIPANTS" --video-kbps "$KBPS" --seconds "$WINDOW" \
        --settle "$SETTLE" --server-pid "$server_pid" --room "bench-shards-$round-$room" \
        --json "$out/$name.json" > "$out/$name.out" 2>&1 &
      pids+=($!)
    done
    ok=1
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    [ "$ok" = 1 ] && echo "ok   shards=$shards round $round" || echo "FAIL shards=$shards round $round"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  done
done

python3 - "$out" <<'EOF' | tee "$out/summary.md"
import json, sys, statistics
from collections import defaultdict
from pathlib import Path
runs = defaultdict(list)
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    shards, _, _, room, rnd = f.stem.split("-")
    runs[(shards, rnd)].append(json.loads(f.read_text()))
rows = defaultdict(list)
for (shards, _), rs in runs.items():
    if len(rs) != 2 or any(r.get("failed") for r in rs):
        continue
    fwd = sum(r["forwarded_packets"] / r["window_s"] for r in rs)
    # Each generator sampled the server's CPU over its own window (they
    # overlap almost entirely): their mean over both rooms' packets.
    cpu = statistics.mean(r["cpu_percent"] for r in rs)
    rows[shards].append((fwd, statistics.mean(r["loss_percent"] for r in rs), cpu, cpu * 1e4 / fwd,
                         max(r["latency_us"]["p99"] for r in rs) / 1000))
print("| shards | runs | fwd pkt/s (both rooms) | loss % | server CPU % | CPU µs/pkt | latency p99 ms (worse room) |")
print("|---|---|---|---|---|---|---|")
for shards in sorted(rows):
    r = rows[shards]
    med = lambda i: statistics.median(x[i] for x in r)
    print(f"| {shards.removeprefix('shards')} | {len(r)} | {med(0):.0f} | {med(1):.2f} | {med(2):.1f} | {med(3):.2f} | {med(4):.2f} |")
EOF
echo "results: $out"
