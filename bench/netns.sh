# Sourced by the benchmark scripts: the network namespace the servers run
# in, joined to the host by a veth pair (host side <veth>0, namespace side
# <veth>1), so the load generator's traffic crosses a real interface; and
# until_pinned, which pins a started server's shard threads to CPUs.

# netns_up NS VETH HOST_IP NS_IP: makes it fresh (an old one of the same
# name, left by an interrupted run, is removed first).
netns_up() {
  local ns=$1 veth=$2 host_ip=$3 ns_ip=$4
  netns_down "$ns" "$veth"
  ip netns add "$ns"
  ip link add "${veth}0" type veth peer name "${veth}1"
  ip link set "${veth}1" netns "$ns"
  ip addr add "$host_ip/24" dev "${veth}0"
  ip link set "${veth}0" up
  ip netns exec "$ns" ip addr add "$ns_ip/24" dev "${veth}1"
  ip netns exec "$ns" ip link set "${veth}1" up
  ip netns exec "$ns" ip link set lo up
}

# netns_down NS VETH: removes it, if it is there.
netns_down() {
  ip netns del "$1" 2>/dev/null || true
  ip link del "${2}0" 2>/dev/null || true
}

# until_pinned NS PID SHARDS FIRST_CPU LISTEN: waits (up to 20 s) until the
# A-Confi process PID runs SHARDS shard threads, pins shard i to CPU
# FIRST_CPU + i, and returns once LISTEN (address:port) accepts connections
# in namespace NS; fails otherwise.
until_pinned() {
  local ns=$1 pid=$2 shards=$3 cpu=$4 listen=$5
  for _ in $(seq 200); do
    local pinned=0 t c
    for t in /proc/"$pid"/task/*; do
      c=$(cat "$t/comm" 2>/dev/null) || continue
      case "$c" in
        aconfi-shard-*) taskset -p -c "$((cpu + ${c#aconfi-shard-}))" "${t##*/}" >/dev/null; pinned=$((pinned + 1)) ;;
      esac
    done
    if [ "$pinned" -eq "$shards" ] && ip netns exec "$ns" ss -ltn | grep -q "$listen "; then return 0; fi
    sleep 0.1
  done
  return 1
}
