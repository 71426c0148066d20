# Sourced by the benchmark scripts: the network namespace the servers run
# in, joined to the host by a veth pair (host side <veth>0, namespace side
# <veth>1), so the load generator's traffic crosses a real interface.

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
