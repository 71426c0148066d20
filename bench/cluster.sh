#!/usr/bin/env bash
# One node or two: the same two rooms (one load generator per room) against
# one A-Confi node with two shards, and against two nodes of a cluster (one
# shard each, a real Redis between them), each room at its own node. The
# shard threads are pinned one per CPU (in both set-ups, the first to CPU 0,
# the second to CPU 1). Aggregate forwarded packets per second, loss, and the
# servers' CPU per forwarded packet.
#
#   bench/cluster.sh                         # ROUNDS=1, fan-out 1->60 per room
#   ROUNDS=2 PARTICIPANTS=80 bench/cluster.sh
#
# As bench/shards.sh: the servers (and Redis) in a network namespace over a
# veth pair, the generators on CPU 1. Needs root and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-1}
SCENARIO=${SCENARIO:-fanout}
PARTICIPANTS=${PARTICIPANTS:-60}
KBPS=${KBPS:-1500}
WINDOW=${WINDOW:-8}
SETTLE=${SETTLE:-2}
NS=accluster
HOST_IP=10.79.0.1
NS_IP=10.79.0.2
target_dir=${CARGO_TARGET_DIR:-$root/target}
out="$root/bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is missing (Debian: redis-server)" >&2; exit 1; }

cargo build --release --locked -p aconfi-server -p aconfi-load
aconfi="${ACONFI_BIN:-$target_dir/release/aconfi}"
load="$target_dir/release/aconfi-load"

# shellcheck source=bench/netns.sh
. "$root/bench/netns.sh"
netns_up "$NS" acc "$HOST_IP" "$NS_IP"

pids_to_stop=()
cleanup() {
  for p in "${pids_to_stop[@]}"; do kill "$p" 2>/dev/null || true; done
  netns_down "$NS" acc
}
trap cleanup EXIT

ip netns exec "$NS" redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir /tmp \
  > "$out/redis.log" 2>&1 &
pids_to_stop+=($!)
for _ in $(seq 100); do ip netns exec "$NS" ss -ltn | grep -q "127.0.0.1:6379 " && break; sleep 0.1; done

# start_node PORT MEDIA_PORT SHARDS FIRST_CPU [cluster args...]: starts a
# node, pins its shard thread i to CPU FIRST_CPU + i, prints its pid (run in
# $(...): the caller adds it to pids_to_stop).
start_node() {
  local port=$1 media=$2 shards=$3 cpu=$4
  shift 4
  ip netns exec "$NS" "$aconfi" --listen "$NS_IP:$port" --media-bind "$NS_IP" --media-port "$media" \
    --shards "$shards" --log warn "$@" > "$out/server-$port.log" 2>&1 &
  local pid=$!
  until_pinned "$NS" "$pid" "$shards" "$cpu" "$NS_IP:$port" && { echo "$pid"; return 0; }
  echo "node on $port did not start" >&2; return 1
}

cluster_args() {
  echo --redis-url redis://127.0.0.1:6379/ --public-url "https://$NS_IP:$1" --cluster-secret bench-cluster-secret-0123456789
}

for round in $(seq "$ROUNDS"); do
  for setup in one two; do
    if [ "$setup" = one ]; then
      a=$(start_node 8443 10000 2 0)
      pids_to_stop+=("$a")
      urls=("wss://$NS_IP:8443/ws" "wss://$NS_IP:8443/ws")
      pids=("$a" "$a")
    else
      # shellcheck disable=SC2046
      a=$(start_node 8443 10000 1 0 $(cluster_args 8443))
      # shellcheck disable=SC2046
      b=$(start_node 8444 10100 1 1 $(cluster_args 8444))
      pids_to_stop+=("$a" "$b")
      # Until each node has read the other's announcement (every second).
      sleep 2
      urls=("wss://$NS_IP:8443/ws" "wss://$NS_IP:8444/ws")
      pids=("$a" "$b")
    fi
    gens=()
    for i in 0 1; do
      name="$setup-$SCENARIO-$PARTICIPANTS-room$i-r$round"
      taskset -c 1 "$load" --target aconfi --url "${urls[$i]}" --local-ip "$HOST_IP" \
        --scenario "$SCENARIO" --participants "$PARTICIPANTS" --video-kbps "$KBPS" --seconds "$WINDOW" \
        --settle "$SETTLE" --server-pid "${pids[$i]}" --room "bench-cluster-$round-$i" \
        --json "$out/$name.json" > "$out/$name.out" 2>&1 &
      gens+=($!)
    done
    ok=1
    for p in "${gens[@]}"; do wait "$p" || ok=0; done
    [ "$ok" = 1 ] && echo "ok   $setup node(s), round $round" || echo "FAIL $setup node(s), round $round"
    for p in $(printf '%s\n' "${pids[@]}" | sort -u); do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  done
done

python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, sys, statistics
from collections import defaultdict
from pathlib import Path
runs = defaultdict(list)
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    setup, _, _, room, rnd = f.stem.split("-")
    runs[(setup, rnd)].append(json.loads(f.read_text()))
rows = defaultdict(list)
for (setup, _), rs in runs.items():
    if len(rs) != 2 or any(r.get("failed") for r in rs):
        continue
    fwd = sum(r["forwarded_packets"] / r["window_s"] for r in rs)
    # One node: both generators sampled the same process (their mean);
    # two nodes: each its own node (their sum).
    cpus = [r["cpu_percent"] for r in rs]
    cpu = statistics.mean(cpus) if setup == "one" else sum(cpus)
    rows[setup].append((fwd, statistics.mean(r["loss_percent"] for r in rs), cpu, cpu * 1e4 / fwd,
                        max(r["latency_us"]["p99"] for r in rs) / 1000))
print("| set-up | runs | fwd pkt/s (both rooms) | loss % | server CPU % (all nodes) | CPU µs/pkt | latency p99 ms (worse room) |")
print("|---|---|---|---|---|---|---|")
for setup in ["one", "two"]:
    r = rows.get(setup)
    if not r:
        continue
    med = lambda i: statistics.median(x[i] for x in r)
    label = "one node, 2 shards" if setup == "one" else "two nodes, 1 shard each"
    print(f"| {label} | {len(r)} | {med(0):.0f} | {med(1):.2f} | {med(2):.1f} | {med(3):.2f} | {med(4):.2f} |")
PY
echo "results: $out"
