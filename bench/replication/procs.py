"""Clusters for the replication bench: a Waverless cluster (master + N workers, `waverless node`
processes) and a 3-member etcd cluster, both on loopback, pinned with taskset, data under one
scratch folder, every process killed by its own pid at exit (the pids are also written to
<scratch>/pids for run.sh's trap). Standard library only."""

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import lib  # bench/cases/lib.py

PIDS_FILE = None  # set by main: one pid per line, for run.sh's trap


def remember(pid):
    if PIDS_FILE is not None:
        with open(PIDS_FILE, "a") as f:
            f.write("%d\n" % pid)


def spawn(argv, log_path, cpus):
    full = (["taskset", "-c", cpus] if cpus else []) + [str(a) for a in argv]
    with open(log_path, "ab") as log:
        p = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    remember(p.pid)
    lib.LIVE_SERVERS.add(p.pid)
    return p


def kill9(p):
    if p is None or p.poll() is not None:
        return
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    lib.LIVE_SERVERS.discard(p.pid)


def free_ports(n, step):
    """n bases whose base..base+step-1 are all free on loopback, drawn below the kernel's
    ephemeral range: a port bound-and-released from that range can be taken by an outgoing
    connection (etcd's peers, a node's dials) before the process meant for it listens."""
    import random
    import socket
    lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    out = []
    while len(out) < n:
        base = rng.randrange(10000, lo - step)
        if any(abs(base - b) < step for b in out) or base in _TAKEN:
            continue
        ok = True
        for k in range(step):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + k))
                except OSError:
                    ok = False
                    break
        if ok:
            out.append(base)
            _TAKEN.update(range(base - step, base + step))
    return out


_TAKEN = set()  # bases handed out by this process: two clusters never share one


def rss_kb(pid):
    return lib.proc_status(pid).get("VmRSS", 0)


def cpu_s(pid):
    return lib.proc_counters(pid)["cpu_s"]


# --- Waverless ---------------------------------------------------------------


class WaverlessCluster:
    """Node 1 is [meta, master]; nodes 2.. are workers, the first two also meta (the meta raft
    group needs three members). The apps folder is deployed through the master."""

    def __init__(self, root, apps_dir, workers, shards, replicas, cpus, max_body=0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.apps_dir, self.cpus, self.max_body = apps_dir, cpus, max_body
        self.shards, self.replicas = shards, replicas
        self.ids = list(range(1, workers + 2))
        self.ports = dict(zip(self.ids, free_ports(len(self.ids), 4)))
        self.procs = {}
        lines = ["shards: %d" % shards, "replicas: %d" % replicas, "nodes:"]
        for i in self.ids:
            spec = "[meta, master]" if i == 1 else "[meta, worker]" if i <= 3 else "[worker]"
            lines.append("  %d: {addr: 127.0.0.1:%d, spec: %s}" % (i, self.ports[i], spec))
        (self.root / "cluster.yaml").write_text("\n".join(lines) + "\n")
        self.token = os.urandom(16).hex()
        tok = self.root / "admin.token"
        tok.write_text(self.token + "\n")
        tok.chmod(0o600)

    @property
    def workers(self):
        return self.ids[1:]

    def http(self, node):
        return "127.0.0.1:%d" % (self.ports[node] + 1)

    def url(self, node, path):
        return "http://%s%s" % (self.http(node), path)

    def start_node(self, i):
        argv = [lib.WAVERLESS, "node", "--config", self.root / "cluster.yaml", "--id", i,
                "--data", self.root / ("d%d" % i), "--cache", lib.BUILD / "module-cache",
                "--token-file", self.root / "admin.token"]
        if i == 1:
            argv += ["--apps", self.apps_dir]
        if self.max_body:
            argv += ["--max-body", self.max_body]
        self.procs[i] = spawn(argv, self.root / ("n%d.log" % i), self.cpus)

    def start(self, timeout=180):
        for i in self.workers:
            self.start_node(i)
        self.start_node(1)
        deadline = time.time() + timeout
        for i in self.ids:
            self.wait_healthy(i, deadline)

    def wait_healthy(self, i, deadline):
        while time.time() < deadline:
            if self.procs[i].poll() is not None:
                log = self.root / ("n%d.log" % i)
                tail = log.read_text(errors="replace").splitlines()[-3:] if log.exists() else []
                raise RuntimeError("node %d exited (%s): %s" % (i, log, " | ".join(tail)))
            if lib.http("GET", self.url(i, "/healthz"), timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("node %d not healthy in time" % i)

    def admin_get(self, node, path, timeout=5):
        import urllib.request
        req = urllib.request.Request(self.url(node, path),
                                     headers={"Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except Exception:  # noqa: BLE001 (a node down or busy: the caller polls)
            return ""

    def wait_app(self, node, path, body, timeout=120):
        """Until node answers 200 to POST path (the app deployed there and its keys writable)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = lib.http("POST", self.url(node, path), body, timeout=10)
            if last[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError("%s on node %d never answered 200: %r" % (path, node, last))

    def leaders(self):
        """{group: node} from every worker's wl_shard_leader gauge."""
        out = {}
        for i in self.workers:
            if self.procs.get(i) is None or self.procs[i].poll() is not None:
                continue
            for line in self.admin_get(i, "/metrics").splitlines():
                if line.startswith("wl_shard_leader{"):
                    g = int(line.split('group="', 1)[1].split('"', 1)[0])
                    out[g] = i
        return out

    def pids(self):
        return {i: p.pid for i, p in self.procs.items() if p.poll() is None}

    def stop(self):
        for p in self.procs.values():
            kill9(p)
        self.procs = {}


# --- etcd ----------------------------------------------------------------------


class EtcdCluster:
    """Three members on loopback with etcd's defaults (fsync on, 100 ms heartbeat, 1 s election:
    the same as the placement groups' raft)."""

    def __init__(self, root, cpus, members=3):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cpus = cpus
        self.names = ["e%d" % i for i in range(members)]
        bases = free_ports(members, 2)
        self.client = {n: b for n, b in zip(self.names, bases)}
        self.peer = {n: b + 1 for n, b in zip(self.names, bases)}
        self.procs = {}

    def endpoint(self, name):
        return "127.0.0.1:%d" % self.client[name]

    def endpoints(self):
        return ",".join("http://" + self.endpoint(n) for n in self.names)

    def start_member(self, name, state="new"):
        initial = ",".join("%s=http://127.0.0.1:%d" % (n, self.peer[n]) for n in self.names)
        argv = ["etcd", "--name", name, "--data-dir", self.root / name,
                "--listen-client-urls", "http://" + self.endpoint(name),
                "--advertise-client-urls", "http://" + self.endpoint(name),
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer[name],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer[name],
                "--initial-cluster", initial, "--initial-cluster-state", state,
                "--initial-cluster-token", "wl-bench", "--log-level", "warn",
                "--logger", "zap"]
        self.procs[name] = spawn(argv, self.root / (name + ".log"), self.cpus)

    def start(self, timeout=60):
        for n in self.names:
            self.start_member(n)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.leader() is not None and all(self.put(n, "warm", "x") for n in self.names):
                return
            time.sleep(0.2)
        raise RuntimeError("etcd cluster did not come up (%s)" % self.root)

    def put(self, name, key, value, timeout=2):
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                           "value": base64.b64encode(value.encode()).decode()}).encode()
        st, out = lib.http("POST", "http://%s/v3/kv/put" % self.endpoint(name), body,
                           timeout=timeout)
        return st == 200 and b"header" in out

    def leader(self):
        """The name of the member that leads, by asking the live members."""
        live = [n for n in self.names if self.procs.get(n) and self.procs[n].poll() is None]
        ep = ",".join("http://" + self.endpoint(n) for n in live)
        p = subprocess.run(["etcdctl", "--endpoints", ep, "--command-timeout=2s", "endpoint",
                            "status", "-w", "json"], capture_output=True, text=True,
                           env=dict(os.environ, ETCDCTL_API="3"))
        try:
            status = json.loads(p.stdout)
        except ValueError:
            return None
        ids = {}
        leader = None
        for s in status:
            ep_name = next(n for n in live if s["Endpoint"].endswith(self.endpoint(n)))
            ids[s["Status"]["header"]["member_id"]] = ep_name
            leader = s["Status"]["leader"] or leader
        return ids.get(leader)

    def pids(self):
        return {n: p.pid for n, p in self.procs.items() if p.poll() is None}

    def stop(self):
        for p in self.procs.values():
            kill9(p)
        self.procs = {}
