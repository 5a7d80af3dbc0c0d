"""Shared pieces of the benchmark suite (bench/run): paths, servers pinned to
CPUs and stopped by their own pid, free ports, the load generator, wrk, and
readers for /proc and Prometheus /metrics. Standard library only."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
BUILD = Path(os.environ.get("BUILD_DIR", REPO / "build")).resolve()
BIN = BUILD / "bench"
WAVERLESS = BUILD / "waverless"
WORKERD = BENCH / ".deps/node_modules/@cloudflare/workerd-linux-64/bin/workerd"

# The server under test gets cpu0, the load generator cpu1: on a 2-core VM
# they would otherwise fight over the same core and the client's own delays
# would be charged to the server. Cases that are one request at a time (or
# that need both cores, like word count) say so where they unpin.
SERVER_CPUS = "0"
CLIENT_CPUS = "1"
ALL_CPUS = "0-%d" % (os.cpu_count() - 1)


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


@dataclass
class Ctx:
    quick: bool
    out: Path  # this run's scratch folder (bench/out/<stamp>)
    results: dict = field(default_factory=dict)

    def pick(self, quick, full):
        return quick if self.quick else full


def free_port(pair=False):
    """A free loopback port (and port+1 free too when pair: Waverless serves
    HTTP on --addr's port + 1)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def http(method, url, body=b"", timeout=120):
    """(status, body bytes); status 0 when nothing answered."""
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, b""


class Server:
    """A process under test, pinned with taskset (so pid is the server's
    own) and stopped by that pid."""

    # ready_path: GET it until 200 to know the server is up; None: wait for
    # the port to accept connections.
    def __init__(self, name, argv, log_path, cwd=None, cpus=SERVER_CPUS, ready_path="/hello"):
        self.name, self.argv, self.log_path, self.cwd = name, argv, Path(log_path), cwd
        self.cpus, self.ready_path = cpus, ready_path
        self.proc = None
        self.http_port = None

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def target(self):
        return "127.0.0.1:%d" % self.http_port

    def start(self, timeout=300):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        argv = (["taskset", "-c", self.cpus] if self.cpus else []) + [str(a) for a in self.argv]
        self.proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=self.cwd,
                                     start_new_session=True)
        LIVE_SERVERS.add(self.proc.pid)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (code %s); see %s" %
                                   (self.name, self.proc.returncode, self.log_path))
            if self.ready_path is None:  # not HTTP: ready once the port accepts
                try:
                    socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                    return self
                except OSError:
                    pass
            elif http("GET", self.url(self.ready_path), timeout=2)[0] == 200:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("%s not ready within %ds; see %s" % (self.name, timeout, self.log_path))

    def pin(self, cpus):
        """Re-pins every thread of the running server."""
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(self.pid)], check=True,
                       stdout=subprocess.DEVNULL)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                LIVE_SERVERS.discard(self.proc.pid)
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        LIVE_SERVERS.discard(self.proc.pid)

    def status(self):
        """Threads and memory from /proc/<pid>/status (kB)."""
        return proc_status(self.pid)


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Threads", "VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _busy_and_steal_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(v[:3]) + sum(v[5:7]), v[7]


def _process_jiffies(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


# Servers started and not yet reaped, for CpuMeter.
LIVE_SERVERS = set()


class CpuMeter:
    """How much CPU anything other than this suite (its servers, its
    clients, itself) used while a measurement ran, in cores on average,
    plus the hypervisor's steal time. The VM is shared: other sessions build
    and test on it. Not a correction, a flag: a point taken while others
    used a core is noisier.

    Ours = this process + reaped children (os.times) + live servers: a
    server stopped meanwhile moves from the last term to the second."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self):
        self.t0 = time.time()
        self.busy0, self.steal0 = _busy_and_steal_jiffies()
        self.own0 = self._own()

    @staticmethod
    def _own():
        t = os.times()
        reaped = (t.user + t.system + t.children_user + t.children_system) * CpuMeter.HZ
        return reaped + sum(_process_jiffies(pid) for pid in list(LIVE_SERVERS))

    def read(self):
        seconds = max(1e-3, time.time() - self.t0)
        busy, steal = _busy_and_steal_jiffies()
        foreign = (busy - self.busy0) - (self._own() - self.own0)
        return {"other_cores": round(max(0.0, foreign) / self.HZ / seconds, 3),
                "steal_cores": round((steal - self.steal0) / self.HZ / seconds, 3)}


def proc_counters(pid):
    """CPU seconds and context switches (all threads) of a process so far."""
    switches = 0
    for status in Path("/proc/%d/task" % pid).glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if "ctxt_switches:" in line:  # voluntary_ and nonvoluntary_
                    switches += int(line.split()[1])
        except OSError:
            pass
    return {"cpu_s": _process_jiffies(pid) / CpuMeter.HZ, "switches": switches}


def proc_cpu_ns(pid):
    """CPU time (ns) the live threads of a process have run so far, from
    the scheduler's own clock (/proc/<pid>/task/*/schedstat): exact where
    utime/stime are sampled in 10 ms ticks, which is the whole of a short
    request."""
    total = 0
    for stat in Path("/proc/%d/task" % pid).glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended meanwhile
    return total


def _cpu_busy_jiffies():
    """Busy jiffies per CPU (user+nice+system+irq+softirq) from /proc/stat."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                out.append(sum(v[:3]) + sum(v[5:7]))
    return out


class Sampler(threading.Thread):
    """Polls /proc/<pid>/status (and optionally a metrics gauge) while a
    load runs, keeping the time series and the peaks. Each sample also
    keeps the server's CPU time and every CPU's busy time, so a stall can
    be told apart afterwards: server busy, server blocked, or its CPU taken
    by others."""

    def __init__(self, pid, interval=0.02, gauge_url=None, gauge=None):
        super().__init__(daemon=True)
        self.pid, self.interval, self.gauge_url, self.gauge = pid, interval, gauge_url, gauge
        self.series = []  # (t, threads, rss_kb, gauge)
        self.cpu_series = []  # (t, server jiffies, [busy jiffies per CPU])
        self._stop_event = threading.Event()

    def run(self):
        t0 = time.time()
        while not self._stop_event.is_set():
            s = proc_status(self.pid)
            g = None
            if self.gauge_url:
                status, body = http("GET", self.gauge_url, timeout=2)
                g = metric_sum(body.decode(), self.gauge) if status == 200 else None
            self.series.append((time.time() - t0, s.get("Threads", 0), s.get("VmRSS", 0), g))
            self.cpu_series.append((time.time() - t0, _process_jiffies(self.pid),
                                    _cpu_busy_jiffies()))
            self._stop_event.wait(self.interval)

    def finish(self):
        self._stop_event.set()
        self.join()
        gauges = [g for *_, g in self.series if g is not None]
        return {
            "peak_threads": max((t for _, t, _, _ in self.series), default=0),
            "peak_rss_kb": max((r for _, _, r, _ in self.series), default=0),
            "peak_gauge": max(gauges, default=None),
            "samples": len(self.series),
        }


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metric_sum(text, name, label_filter=None):
    """Sum of all samples of a metric (optionally only those whose label
    text contains label_filter)."""
    total = 0.0
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m and m.group(1) == name and (label_filter is None or label_filter in (m.group(2) or "")):
            total += float(m.group(3))
    return total


def metrics_text(server):
    status, body = http("GET", server.url("/metrics"))
    return body.decode() if status == 200 else ""


def run_json(argv, cpus=CLIENT_CPUS, timeout=3600):
    """Runs a client tool (pinned) that prints one JSON object last."""
    full = (["taskset", "-c", cpus] if cpus else []) + [str(a) for a in argv]
    p = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (argv[0], p.returncode, p.stderr[-2000:]))
    if p.stderr.strip():
        log("  %s: %s" % (Path(str(argv[0])).name, p.stderr.strip()[-500:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def loadgen(target, *args, cpus=CLIENT_CPUS):
    return run_json([BIN / "loadgen", "--target", target, *args], cpus=cpus)


def script(target, lines, path, cpus=CLIENT_CPUS, token=None):
    """Runs loadgen's script mode; returns its per-tag summary (and writes
    per-request samples beside the script). token: sent as the Bearer
    credential of every request (a node's admin token, for /api/* lines)."""
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    samples = path.with_suffix(".samples")
    extra = ["--header", "Authorization: Bearer " + token] if token else []
    r = loadgen(target, "--script", path, "--samples", samples, *extra, cpus=cpus)
    return r["tags"], samples


def wrk(url, seconds, conns=64, cpus=CLIENT_CPUS):
    """Closed-loop saturation with wrk (one thread on the client CPU)."""
    argv = ["taskset", "-c", cpus, "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency",
            url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    res = {"conns": conns, "seconds": seconds}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        if m:
            res["p%s_us" % pct] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", out)
    res["socket_errors"] = m.group(0) if m else ""
    return res


# --- Waverless ----------------------------------------------------------

APP_SOURCES = {
    # app name -> (folder with app.yaml [and files/], built app.wasm)
    "hello": (REPO / "apps/hello", BUILD / "apps/hello/app.wasm"),
    "word_count": (REPO / "apps/word_count", BUILD / "apps/word_count/app.wasm"),
    "longchain": (REPO / "apps/longchain", BUILD / "apps/longchain/app.wasm"),
    "kernel": (BENCH / "apps/kernel", BIN / "apps/kernel/app.wasm"),
    "sleep": (BENCH / "apps/sleep", BIN / "apps/sleep/app.wasm"),
}


def stage_app(name, dest, files=None):
    """app.yaml, files/ and the prebuilt app.wasm, without sources (so the
    node deploys what the build made instead of rebuilding). files: extra
    {path under files/: source file}, hard-linked when possible."""
    src, wasm = APP_SOURCES[name]
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "app.yaml", dest / "app.yaml")
    if (src / "files").is_dir():
        shutil.copytree(src / "files", dest / "files", dirs_exist_ok=True)
    for rel, source in (files or {}).items():
        target = dest / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy(source, target)
    shutil.copy(wasm, dest / "app.wasm")
    return dest


def app_tar(name, path):
    """The deploy package (tar of app.yaml + app.wasm) of a staged app."""
    src, wasm = APP_SOURCES[name]
    with tarfile.open(path, "w") as t:
        t.add(src / "app.yaml", arcname="app.yaml")
        t.add(wasm, arcname="app.wasm")
    return path


class WaverlessNode(Server):
    """`waverless dev` with the given apps deployed at start, in its own
    data folder. Compiled modules go to a cache shared by all runs."""

    # apps: names from APP_SOURCES, or (deployed name, source name, files)
    # tuples for a variant with extra data files (see stage_app).
    def __init__(self, ctx, tag, apps, extra=(), cpus=SERVER_CPUS):
        root = ctx.out / tag
        apps_dir = root / "apps"
        for a in apps:
            name, source, files = (a, a, None) if isinstance(a, str) else a
            stage_app(source, apps_dir / name, files)
        port = free_port(pair=True)
        argv = [WAVERLESS, "dev", "--addr", "127.0.0.1:%d" % port, "--data", root / "data",
                "--apps", apps_dir, "--cache", BENCH / "out/module-cache", *extra]
        super().__init__("waverless-" + tag, argv, root / "node.log", cpus=cpus,
                         ready_path="/healthz")
        self.http_port = port + 1
        self.token_file = root / "data" / "admin.token"

    def token(self):
        """The admin token the node made at its first start (for /api/*)."""
        return self.token_file.read_text().strip()


def workerd_server(ctx, cpus=SERVER_CPUS):
    """workerd serving bench/workerd/worker.js with the same wasm files."""
    d = ctx.out / "workerd"
    d.mkdir(parents=True, exist_ok=True)
    for f in ("config.capnp", "worker.js"):
        shutil.copy(BENCH / "workerd" / f, d / f)
    shutil.copy(BUILD / "apps/hello/app.wasm", d / "hello.wasm")
    shutil.copy(BIN / "workerd/kernel.wasm", d / "kernel.wasm")
    port = free_port()
    s = Server("workerd", [WORKERD, "serve", "config.capnp", "--socket-addr",
                           "http=127.0.0.1:%d" % port], d / "workerd.log", cwd=d, cpus=cpus)
    s.http_port = port
    return s


def native_server(ctx, threads=1, cpus=SERVER_CPUS):
    port = free_port()
    s = Server("native", [BIN / "native_server", port, threads], ctx.out / "native/native.log",
               cpus=cpus)
    s.http_port = port
    return s


def percentile(values, q):
    v = sorted(values)
    if not v:
        return 0.0
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))
    return v[k]


def median(values):
    v = sorted(values)
    if not v:
        return 0.0
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
