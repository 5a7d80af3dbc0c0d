#!/usr/bin/env bash
# deploy/ansible for real, against 3 "hosts": network namespaces with their
# own IPs on a bridge (scripts/netns_hosts.sh), each running its own sshd
# (own config, host keys and authorized key in a temp folder). Runs site.yml
# (ships the .deb, writes cluster.yaml and the shared admin token, starts the
# nodes), checks the cluster serves word_count, runs rolling_restart.yml and
# checks again, with a node's pid changed on every host.
#
# The hosts share this machine's root filesystem, so the inventory gives each
# its own folders and uses waverless_install=unpack (the .deb unpacked into
# the host's own prefix, no apt, nodes run as root). systemd is not PID 1
# here, so the playbook starts nodes with its start-stop-daemon fallback:
# started over ssh, a node runs in the network namespace of its host's sshd.
#
# usage: ansible_test.sh BUILD_DIR SOURCE_DIR      (root)
set -euo pipefail
BUILD=$(realpath "$1") SRC=$(realpath "$2")
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v ansible-playbook >/dev/null && [ -x /usr/sbin/sshd ] ||
  { echo "SKIP: needs ansible and openssh-server (scripts/install-deps.sh --deploy)"; exit 77; }
source "$SRC/scripts/netns_hosts.sh"
source "$SRC/tests/deploy/lib.sh"
TAG=wa$$
NET=10.78.$(($$ % 200))
WORK=$(mktemp -d /tmp/wl-ansible-XXXXXX)
cleanup() {
  set +e
  # Everything that runs in a host's namespace: its sshd, the sessions
  # ansible's ControlPersist keeps open, and the node. Killed before the
  # namespace goes, or the sessions linger with no network to close on.
  for i in 1 2 3; do
    ip netns pids "$TAG-n$i" 2>/dev/null | xargs -r kill -9
  done
  netns_down "$TAG" 3
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for i in 1 2 3; do echo "--- host $i"; tail -15 "$WORK/h$i/data/node.log" 2>/dev/null; done
  # A node that crashed left a core in its data folder (core_pattern
  # "core": the cwd); keep it for gdb with the unstripped build/waverless.
  local cores
  cores=$(ls "$WORK"/h*/data/core* 2>/dev/null)
  if [ -n "$cores" ]; then
    mkdir -p "$WL_DEPLOY_CACHE/cores"
    cp $cores "$WL_DEPLOY_CACHE/cores/" && echo "core files kept in $WL_DEPLOY_CACHE/cores"
  fi
  exit 1
}
step() { echo "== $(date +%T) $*"; }

step "3 netns hosts on $NET.0/24, each with its own sshd"
netns_up "$TAG" "$NET" 3
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id" -C wl-ansible-test
mkdir -p /run/sshd  # sshd's privilege separation folder
ulimit -c unlimited 2>/dev/null || true  # sshd, and so the nodes, may dump core
for i in 1 2 3; do
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/host$i"
  cat >"$WORK/sshd$i.conf" <<CONF
ListenAddress $NET.$i:22
HostKey $WORK/host$i
PidFile $WORK/sshd$i.pid
AuthorizedKeysFile $WORK/id.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
  ip netns exec "$TAG-n$i" /usr/sbin/sshd -f "$WORK/sshd$i.conf" -E "$WORK/sshd$i.log"
done

DEB=$(deploy_deb "$BUILD")
cat >"$WORK/inventory.ini" <<INI
[waverless]
h1 ansible_host=$NET.1 waverless_node_id=1 waverless_spec='["meta","master"]' waverless_args="--apps $WORK/h1/prefix/share/waverless/apps"
h2 ansible_host=$NET.2 waverless_node_id=2
h3 ansible_host=$NET.3 waverless_node_id=3

[waverless:vars]
ansible_user=root
ansible_ssh_private_key_file=$WORK/id
ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'
ansible_python_interpreter=/usr/bin/python3
waverless_deb=$DEB
waverless_install=unpack
waverless_user=root
waverless_prefix=$WORK/{{ inventory_hostname }}/prefix
waverless_config_dir=$WORK/{{ inventory_hostname }}/etc
waverless_data_dir=$WORK/{{ inventory_hostname }}/data
waverless_cache_dir=$WORK/{{ inventory_hostname }}/cache
INI
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False
export ANSIBLE_PIPELINING=True  # one ssh round trip per task, not three
export ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/cp  # this run's ssh multiplexers only
export ANSIBLE_LOCAL_TEMP=$WORK/ansible-local ANSIBLE_REMOTE_TEMP=$WORK/ansible-remote
play() {
  ansible-playbook -i "$WORK/inventory.ini" "$SRC/deploy/ansible/$1" >"$WORK/$1.log" 2>&1 ||
    { tail -40 "$WORK/$1.log"; fail "$1"; }
  grep -A4 'PLAY RECAP' "$WORK/$1.log"
}

step "site.yml"
[ -e /etc/waverless/cluster.yaml ] && ETC_BEFORE=1 || ETC_BEFORE=0
play site.yml
# The inventory's folders win over the role's defaults (/etc/waverless,
# /var/lib/waverless): on hosts sharing this machine's root, anything else
# would write to the machine itself.
[ -f "$WORK/h1/etc/cluster.yaml" ] || fail "cluster.yaml is not in the inventory's folder"
[ "$ETC_BEFORE" = 0 ] && [ -e /etc/waverless/cluster.yaml ] && fail "site.yml wrote /etc/waverless"
[ -s "$WORK/admin.token" ] || fail "site.yml made no admin token next to the inventory"
for i in 1 2 3; do
  cmp -s "$WORK/admin.token" "$WORK/h$i/data/admin.token" || fail "host $i has another token"
  # The node must run inside its host's namespace, not the controller's.
  [ "$(ip netns identify "$(cat "$WORK/h$i/data/node.pid")")" = "$TAG-n$i" ] ||
    fail "node $i is not in netns $TAG-n$i"
done
AUTH="Authorization: Bearer $(cat "$WORK/admin.token")"
M=http://$NET.1:2501
alive() { curl -s -H "$AUTH" "$M/api/nodes" | grep -o "\"id\":$1,[^}]*" | grep -q '"alive":true'; }
for _ in $(seq 1 150); do alive 2 && alive 3 && break; sleep 0.2; done
alive 2 && alive 3 || fail "workers did not join"
TEXT='the cat and the dog and the bird'
serves() {  # retried while the placement groups elect leaders
  local out=""
  for _ in $(seq 1 100); do
    out=$(curl -s --data-binary "$TEXT" "http://$NET.$1:2501/word_count") &&
      grep -q '"the":3' <<<"$out" && grep -q '"and":2' <<<"$out" && return 0
    sleep 0.2
  done
  fail "word_count on host $1 answered: $out"
}
serves 1; serves 2; serves 3

step "site.yml again (idempotent: nothing changed, nothing restarted)"
PIDS_BEFORE=$(cat "$WORK"/h{1,2,3}/data/node.pid)
play site.yml
grep -A4 'PLAY RECAP' "$WORK/site.yml.log" | grep -q 'changed=[1-9]' && fail "a second site.yml changed something"
[ "$(cat "$WORK"/h{1,2,3}/data/node.pid)" = "$PIDS_BEFORE" ] || fail "a second site.yml restarted nodes"

step "rolling_restart.yml"
play rolling_restart.yml
for i in 1 2 3; do
  new=$(cat "$WORK/h$i/data/node.pid")
  grep -qx "$new" <<<"$PIDS_BEFORE" && fail "node $i was not restarted"
  kill -0 "$new" || fail "node $i is not running after the restart"
done
alive 2 && alive 3 || fail "workers not alive after the rolling restart"
serves 1; serves 2; serves 3
echo "PASS: ansible_test"
