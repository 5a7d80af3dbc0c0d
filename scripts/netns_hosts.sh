# Several "hosts" on one machine: network namespaces with their own IPs on
# one bridge, for the tests and benchmarks that need a real network between
# nodes. Source this file, then:
#
#   netns_up TAG NET N       bridge br$TAG (NET.254) and hosts $TAG-n1..N,
#                            each with eth0 at NET.<i>/24 (NET like 10.77.5)
#   netns_down TAG N         removes them again (idempotent: use in a trap)
#   netns_shape TAG N RATE   tbf RATE on both ends of every link (the host's
#                            eth0 and its peer on the bridge); none: unshaped
#
# Needs root and iproute2 (and sch_tbf for netns_shape).

netns_up() {
  local tag=$1 net=$2 n=$3 i
  ip link add "br$tag" type bridge
  ip addr add "$net.254/24" dev "br$tag"
  ip link set "br$tag" up
  for i in $(seq 1 "$n"); do
    ip netns add "$tag-n$i"
    ip link add "$tag-h$i" type veth peer name eth0 netns "$tag-n$i"
    ip link set "$tag-h$i" master "br$tag" up
    ip -n "$tag-n$i" addr add "$net.$i/24" dev eth0
    ip -n "$tag-n$i" link set eth0 up
    ip -n "$tag-n$i" link set lo up
  done
}

netns_down() {
  local tag=$1 n=$2 i
  for i in $(seq 1 "$n"); do
    ip netns del "$tag-n$i" 2>/dev/null || true
    ip link del "$tag-h$i" 2>/dev/null || true
  done
  ip link del "br$tag" 2>/dev/null || true
}

netns_shape() {
  local tag=$1 n=$2 rate=$3 i
  for i in $(seq 1 "$n"); do
    ip netns exec "$tag-n$i" tc qdisc del dev eth0 root 2>/dev/null || true
    tc qdisc del dev "$tag-h$i" root 2>/dev/null || true
    if [ "$rate" != none ]; then
      ip netns exec "$tag-n$i" tc qdisc add dev eth0 root tbf rate "$rate" burst 1mb latency 50ms
      tc qdisc add dev "$tag-h$i" root tbf rate "$rate" burst 1mb latency 50ms
    fi
  done
}
