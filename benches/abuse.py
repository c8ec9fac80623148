#!/usr/bin/env python3
"""Bounded abuse and load against a running Tally server, on loopback only.

    python3 benches/abuse.py --url http://127.0.0.1:PORT --token VIEWER_TOKEN --pid SERVER_PID [--duration 10]

(benches/abuse.sh starts a demo server and runs this.) Four attacks, one
after the other, each bounded in time and in count, each stopping by itself:

  a. long made-up HTTP methods (500 random capital letters) on /healthz and
     /api/v1/costs, over kept-alive connections;
  b. repeated group_by on GET /api/v1/costs (viewer token): a 64 KiB query
     (past the server's 64 KiB header buffer), a 48 KiB one (which reaches
     the application's 2 KiB query limit) and one at that 2 KiB limit;
  c. slow headers (slowloris): up to 300 connections that send part of a
     request and then one header byte every few seconds, never finishing;
  d. connection flood: up to 1,000 idle TCP connections held, then closed.

The attackers connect from 127.0.0.2 (--attack-ip), so the server's per-IP
limits apply to them and not to the prober, which sends GET /healthz from
127.0.0.1 every 20 ms throughout, on a new connection each time, and
records each answer's latency. The prober is a child process (this file
run with --probe-child): in a thread of this process its timings would
include waits for Python's global interpreter lock held by the attackers.

The server's resident memory (VmRSS of /proc/PID/status) is read before the
first attack, sampled every 250 ms for the peak, and read again --settle
seconds (10) after the last attack. GET /metrics (any token but a tenant's)
is fetched before and after, to show whether its size grew with the junk.

Exit status 1 (FAIL) when the prober's p99 over the attacks is 50 ms or
more, when memory after is more than 20% above memory before, or when the
server died; 2 for bad arguments. Every address used is on 127.0.0.0/8;
anything else is refused. Standard library only.
"""

import argparse
import collections
import errno
import http.client
import ipaddress
import os
import random
import resource
import select
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

# Connect from a fixed source address without reserving a local port at
# bind() time (Linux 4.2+): the port is picked at connect() by the whole
# 4-tuple, so thousands of short connections do not run out of ports.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

HEALTHZ_P99_LIMIT_MS = 50.0
MEMORY_GROWTH_LIMIT = 1.20
PROBE_INTERVAL = 0.020
PROBE_TIMEOUT = 2.0  # a probe unanswered by then counts as this slow
REQUEST_TIMEOUT = 5.0  # every attacker socket operation
MAX_REQUESTS_PER_ATTACK = 50_000
FD_RESERVE = 64  # descriptors left for the prober, /metrics and Python itself


# ---------------------------------------------------------------- helpers


def die(message):
    """A set-up problem: says so and exits with status 2 (1 is a FAIL)."""
    print(f"abuse.py: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def loopback(host, what):
    """The IPv4 loopback address `host` names; exits (2) for any other.
    Only literal addresses and "localhost": no name is looked up in DNS."""
    try:
        addr = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        die(f"{what} {host!r} is not an IPv4 address on 127.0.0.0/8 (nor localhost)")
    if addr.version != 4 or not addr.is_loopback:
        die(f"{what} {host!r} is {addr}, not on 127.0.0.0/8: this script only targets loopback")
    return str(addr)


def connect_from(source, host, port, timeout):
    """A TCP connection from `source` (an address on loopback) to host:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        s.close()
        raise
    return s


def classify(exc):
    """A short name for a connection's or request's failure."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed without answer"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.HTTPException):
        return "bad answer"
    if isinstance(exc, OSError) and exc.errno:
        return "error " + (os.strerror(exc.errno) or str(exc.errno))
    return "error " + type(exc).__name__


def by_server(exc):
    """classify() for a socket the server ended: its reset is the server's doing."""
    name = classify(exc)
    return "reset by server" if name == "reset" else name


def raise_fd_limit():
    """Raises the soft limit on open files to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def open_fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 32


def fd_budget(soft_limit):
    """How many more sockets this process may open, keeping a reserve."""
    return max(0, soft_limit - open_fds() - FD_RESERVE)


def vm_rss_mib(pid):
    """The process's resident memory in MiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def percentile(values, q):
    """The q-th percentile (1..99) of values, interpolated between samples."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def fmt_counter(counter):
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))) or "none"


class Counts:
    """What one attack did; each thread fills its own and they are merged."""

    def __init__(self, unit="requests"):
        self.unit = unit  # what `requests` counts
        self.requests = 0
        self.answered = 0
        self.status = collections.Counter()
        self.conn = collections.Counter()
        self.by_variant = collections.defaultdict(collections.Counter)

    def merge(self, other):
        self.requests += other.requests
        self.answered += other.answered
        self.status.update(other.status)
        self.conn.update(other.conn)
        for k, v in other.by_variant.items():
            self.by_variant[k].update(v)


class SourceConnection(http.client.HTTPConnection):
    """http.client's connection, from a chosen source address, counting its connects."""

    def __init__(self, host, port, source, counts):
        super().__init__(host, port, timeout=REQUEST_TIMEOUT)
        self.source = source
        self.counts = counts

    def connect(self):
        try:
            self.sock = connect_from(self.source, self.host, self.port, self.timeout)
        except OSError as e:
            self.counts.conn[classify(e)] += 1
            e.during_connect = True
            raise
        self.counts.conn["accepted"] += 1


def request_loop(target, counts, deadline, budget, make_request, variant=None):
    """Sends make_request() -> (method, path, headers) until the deadline or
    the shared request budget is spent, reusing the connection while the
    server keeps it open."""
    host, port, source = target
    conn = SourceConnection(host, port, source, counts)
    try:
        while time.monotonic() < deadline and budget.take():
            method, path, headers = make_request()
            counts.requests += 1
            try:
                conn.request(method, path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                counts.answered += 1
                counts.status[resp.status] += 1
                if variant:
                    counts.by_variant[variant][resp.status] += 1
                if resp.will_close:
                    counts.conn["closed after answer"] += 1
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                if not getattr(e, "during_connect", False):
                    counts.conn[classify(e)] += 1
                    if variant:
                        counts.by_variant[variant][classify(e)] += 1
                conn.close()
                if getattr(e, "during_connect", False):
                    time.sleep(0.05)  # refused, or no local port left: do not spin
    finally:
        conn.close()


class Budget:
    """A request count shared by an attack's threads."""

    def __init__(self, n):
        self.left = n
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def run_threads(n, fn, deadline):
    """Runs fn(counts) in n threads; returns the merged Counts. Joins with a bound."""
    results = [Counts() for _ in range(n)]
    threads = [threading.Thread(target=fn, args=(results[i], i), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT * 3)
    total = Counts()
    for r in results:
        total.merge(r)
    stuck = sum(1 for t in threads if t.is_alive())
    if stuck:
        total.conn["threads still busy at the end"] = stuck
    return total


# ---------------------------------------------------------------- the attacks


def random_method(n=500):
    return "".join(random.choices(string.ascii_uppercase, k=n))


def attack_methods(cfg):
    """a. Long made-up methods, many requests, 4 threads."""
    deadline = time.monotonic() + cfg.duration
    budget = Budget(MAX_REQUESTS_PER_ATTACK)
    auth = {"Authorization": f"Bearer {cfg.token}", "Host": cfg.host_header}

    def worker(counts, i):
        paths = ["/healthz", "/api/v1/costs"]
        k = [i]

        def make():
            k[0] += 1
            return random_method(), paths[k[0] % 2], auth

        request_loop(cfg.attack_target, counts, deadline, budget, make)

    return run_threads(4, worker, deadline), []


def group_by_path(query_bytes):
    """/api/v1/costs?group_by=day,day,... with a query of at most query_bytes."""
    items = max(1, (query_bytes - len("group_by=") + 1) // len("day,"))
    return "/api/v1/costs?group_by=" + ",".join(["day"] * items)


def attack_group_by(cfg):
    """b. Repeated group_by: 64 KiB, 48 KiB and at the 2 KiB limit, 6 threads."""
    deadline = time.monotonic() + cfg.duration
    budget = Budget(MAX_REQUESTS_PER_ATTACK)
    headers = {"Authorization": f"Bearer {cfg.token}", "Host": cfg.host_header}
    variants = [
        ("64 KiB query", group_by_path(64 * 1024)),
        ("48 KiB query", group_by_path(48 * 1024)),
        ("2 KiB query (the limit)", group_by_path(2048)),
    ]
    notes = ["query lengths: " + ", ".join(f"{name} = {len(path.split('?', 1)[1])} bytes" for name, path in variants)]

    def worker(counts, i):
        name, path = variants[i % len(variants)]
        request_loop(cfg.attack_target, counts, deadline, budget, lambda: ("GET", path, headers), variant=name)

    counts = run_threads(6, worker, deadline)
    for name, _ in variants:
        notes.append(f"{name}: {fmt_counter(counts.by_variant.get(name, {}))}")
    return counts, notes


class HeldSockets:
    """Open, non-blocking attacker sockets, watched for the server closing them."""

    def __init__(self, counts):
        self.counts = counts
        self.poller = select.poll()
        self.socks = {}  # fd -> [socket, opened at]
        self.closed_ages = []  # seconds each lived before the server closed it

    def add(self, s):
        s.setblocking(False)
        self.socks[s.fileno()] = [s, time.monotonic()]
        self.poller.register(s.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)

    def drop(self, fd, outcome):
        s, opened = self.socks.pop(fd)
        self.poller.unregister(fd)
        self.closed_ages.append(time.monotonic() - opened)
        self.counts.conn[outcome] += 1
        s.close()

    def watch(self, timeout_s):
        """Handles what the server did within timeout_s."""
        for fd, _ in self.poller.poll(int(timeout_s * 1000)):
            if fd not in self.socks:
                continue
            s = self.socks[fd][0]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                self.drop(fd, by_server(e))
                continue
            if not data:
                self.drop(fd, "closed by server")
            else:
                # The server answered the half-sent request (e.g. 408 or 400): note it, keep watching.
                line = data.split(b"\r\n", 1)[0].split()
                status = line[1].decode(errors="replace") if len(line) > 1 and line[0].startswith(b"HTTP/") else "data"
                self.counts.status[status] += 1
                self.counts.answered += 1

    def send_each(self, data):
        """Sends `data` on every open socket; returns how many took it."""
        sent = 0
        for fd in list(self.socks):
            try:
                sent += 1 if self.socks[fd][0].send(data) else 0
            except BlockingIOError:
                pass
            except OSError as e:
                self.drop(fd, by_server(e))
        return sent

    def close_all(self):
        ages = [time.monotonic() - opened for _, opened in self.socks.values()]
        for fd in list(self.socks):
            s, _ = self.socks.pop(fd)
            self.poller.unregister(fd)
            s.close()
        return ages


def open_held(cfg, counts, held, n, deadline, first_bytes=b""):
    """Opens up to n connections from the attacker address before the
    deadline; stops early once the server stops accepting (10 connects in a
    row time out: its listen queue is full) or this machine runs out of
    ports or descriptors. Returns how many were attempted."""
    host, port, source = cfg.attack_target
    attempted = timeouts_in_a_row = 0
    for _ in range(n):
        if time.monotonic() >= deadline or timeouts_in_a_row >= 10:
            break
        attempted += 1
        counts.requests += 1
        try:
            s = connect_from(source, host, port, 1.0)
        except OSError as e:
            counts.conn[classify(e)] += 1
            timeouts_in_a_row = timeouts_in_a_row + 1 if isinstance(e, socket.timeout) else 0
            if e.errno in (errno.EADDRNOTAVAIL, errno.EMFILE, errno.ENFILE):  # no local port or descriptor left
                break
            continue
        timeouts_in_a_row = 0
        counts.conn["accepted"] += 1
        if first_bytes:
            try:
                s.sendall(first_bytes)
            except OSError as e:
                counts.conn[by_server(e)] += 1
                s.close()
                continue
        held.add(s)
        held.watch(0)
    return attempted


def describe_closes(held, notes, at_once=1.0):
    quick = [a for a in held.closed_ages if a < at_once]
    late = [a for a in held.closed_ages if a >= at_once]
    notes.append(f"closed by the server within {at_once:.0f} s of connecting: {len(quick)}")
    if late:
        notes.append(f"closed later: {len(late)}, after {min(late):.1f} to {max(late):.1f} s")


def attack_slowloris(cfg):
    """c. Slow headers: up to 300 half-sent requests, one more byte every few seconds."""
    counts = Counts("half-sent requests (connections)")
    held = HeldSockets(counts)
    n = min(300, fd_budget(cfg.fd_limit))
    # Long enough to see the server's header timeout close the ones it held.
    length = max(cfg.duration, cfg.header_timeout + 3)
    started = time.monotonic()
    deadline = started + length
    head = f"GET /api/v1/costs?group_by=tenant HTTP/1.1\r\nHost: {cfg.host_header}\r\nUser-Agent: abuse.py\r\nX-Slow: ".encode()
    # Connecting may take at most half the attack; the rest is trickling.
    attempted = open_held(cfg, counts, held, n, started + length / 2, head)
    opened = len(held.socks)
    trickled = 0
    next_byte = time.monotonic() + cfg.trickle
    while time.monotonic() < deadline:  # the whole attack, even once the server closed them all
        held.watch(min(0.25, max(0.0, deadline - time.monotonic())))
        if time.monotonic() >= next_byte:
            trickled += held.send_each(b"a")
            next_byte += cfg.trickle
    still_open = held.close_all()
    notes = [f"ran {time.monotonic() - started:.1f} s (at least the header timeout, {cfg.header_timeout} s, plus 3); "
             f"{attempted} of {n} connections attempted, {opened} open after connecting, "
             f"{trickled} header bytes trickled, one per connection every {cfg.trickle:g} s"]
    describe_closes(held, notes)
    notes.append(f"still open at the end (closed by us): {len(still_open)}"
                 + (f", the oldest {max(still_open):.1f} s old" if still_open else ""))
    return counts, notes


def attack_flood(cfg):
    """d. Connection flood: up to 1,000 idle connections held, then closed."""
    counts = Counts("connections")
    held = HeldSockets(counts)
    n = min(1000, fd_budget(cfg.fd_limit))
    started = time.monotonic()
    deadline = started + cfg.duration
    # Connecting may take at most half the attack; the rest is holding.
    attempted = open_held(cfg, counts, held, n, started + cfg.duration / 2)
    connected_in = time.monotonic() - started
    peak_open = len(held.socks)
    while time.monotonic() < deadline:  # the whole attack, even once the server closed them all
        held.watch(min(0.25, max(0.0, deadline - time.monotonic())))
        peak_open = max(peak_open, len(held.socks))
    still_open = held.close_all()
    notes = [f"{attempted} of {n} connections attempted in {connected_in:.1f} s; "
             f"most held open at once: {peak_open}"]
    describe_closes(held, notes)
    notes.append(f"held until the end and closed by us: {len(still_open)}")
    return counts, notes


# ---------------------------------------------------------------- the prober


def probe_child(host, port, max_seconds):
    """The prober process: GET /healthz every PROBE_INTERVAL from 127.0.0.1 on
    a new connection, one line per probe on stdout: "start latency ok".
    Stops when stdin closes or after max_seconds."""
    stop = threading.Event()

    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: abuse.py prober\r\nConnection: close\r\n\r\n".encode()
    end = time.monotonic() + max_seconds
    next_at = time.monotonic()
    out = sys.stdout
    while not stop.is_set() and time.monotonic() < end:
        started = time.monotonic()
        ok = 0
        try:
            s = connect_from("127.0.0.1", host, port, PROBE_TIMEOUT)
            try:
                s.settimeout(max(0.001, PROBE_TIMEOUT - (time.monotonic() - started)))
                s.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                while len(body) < length:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    body += chunk
                ok = 1 if head.startswith(b"HTTP/1.1 200") and len(body) >= length else 0
            finally:
                s.close()
        except (OSError, ValueError):
            ok = 0
        latency = time.monotonic() - started
        try:
            out.write(f"{started:.6f} {latency:.6f} {ok}\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            return
        next_at += PROBE_INTERVAL
        now = time.monotonic()
        if next_at < now:
            next_at = now  # a slow probe: skip the missed slots rather than burst
        stop.wait(next_at - now)


class Prober:
    """Runs the prober child and collects its samples: (start, seconds, ok)."""

    def __init__(self, host, port, max_seconds):
        self.samples = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--probe-child", host, str(port), str(int(max_seconds))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                t, lat, ok = line.split()
                with self.lock:
                    self.samples.append((float(t), float(lat), ok == "1"))
            except ValueError:
                continue

    def wait_first(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.samples:
                    return True
            time.sleep(0.05)
        return False

    def between(self, start, end):
        """Latencies (ms) of probes started in [start, end]; failures count as PROBE_TIMEOUT."""
        with self.lock:
            chosen = [s for s in self.samples if start <= s[0] <= end]
        latencies = [(lat if ok else max(lat, PROBE_TIMEOUT)) * 1000.0 for _, lat, ok in chosen]
        failed = sum(1 for s in chosen if not s[2])
        return latencies, failed

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=PROBE_TIMEOUT + 3)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its handle
            self.proc.wait(timeout=5)
        self.reader.join(timeout=5)


def latency_line(latencies, failed):
    if not latencies:
        return "no probes"
    return (f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
            f"max {max(latencies):.1f} ms ({len(latencies)} probes, {failed} failed)")


class MemorySampler:
    """VmRSS of the server every 250 ms: the peak, and whether it vanished."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self.gone = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            rss = vm_rss_mib(self.pid)
            if rss is None:
                self.gone = True
                return
            self.peak = max(self.peak, rss)
            self.stopping.wait(0.25)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=2)


# ---------------------------------------------------------------- main


def get_metrics(cfg):
    """GET /metrics from 127.0.0.1 with the token: (status, body bytes)."""
    conn = http.client.HTTPConnection(cfg.host, cfg.port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {cfg.token}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException) as e:
        return classify(e), b""
    finally:
        conn.close()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--probe-child":
        probe_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return 0

    ap = argparse.ArgumentParser(description="Bounded abuse and load against a Tally server on loopback.")
    ap.add_argument("--url", required=True, help="the server, http://127.0.0.1:PORT (loopback only)")
    ap.add_argument("--token", required=True, help="a viewer token (reads /api/v1/costs and /metrics)")
    ap.add_argument("--pid", required=True, type=int, help="the server's process id, for its VmRSS")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per attack (10)")
    ap.add_argument("--attack-ip", default="127.0.0.2", help="source address of the attackers (127.0.0.2)")
    ap.add_argument("--header-timeout", type=float,
                    default=float(os.environ.get("TALLY_SERVER__HEADER_TIMEOUT_SECONDS", "10")),
                    help="the server's header timeout, seconds: the slowloris attack lasts at least this plus 3 "
                         "(default: $TALLY_SERVER__HEADER_TIMEOUT_SECONDS, else 10)")
    ap.add_argument("--trickle", type=float, default=3.0, help="seconds between a slowloris connection's header bytes (3)")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after the last attack before memory is read again (10)")
    cfg = ap.parse_args()
    if not 0 < cfg.duration <= 600 or not 0 < cfg.trickle <= 60 or not 0 <= cfg.settle <= 600 or not 0 < cfg.header_timeout <= 600:
        ap.error("--duration, --header-timeout and --settle must be within (0, 600] s, --trickle within (0, 60] s")

    url = urlsplit(cfg.url)
    if url.scheme != "http" or not url.hostname:
        ap.error("--url must be http://127.0.0.1:PORT")
    cfg.host = loopback(url.hostname, "--url host")
    cfg.port = url.port or 80
    cfg.host_header = f"{url.hostname}:{cfg.port}"
    cfg.attack_target = (cfg.host, cfg.port, loopback(cfg.attack_ip, "--attack-ip"))
    if vm_rss_mib(cfg.pid) is None:
        die(f"no process {cfg.pid} (or no VmRSS in /proc/{cfg.pid}/status)")
    cfg.fd_limit = raise_fd_limit()

    metrics_before_status, metrics_before = get_metrics(cfg)
    if metrics_before_status in (401, 403):
        die(f"GET /metrics answered {metrics_before_status}: pass a viewer (or admin, finance) token")
    print(f"abuse: target {cfg.host}:{cfg.port}, attackers from {cfg.attack_ip}, prober from 127.0.0.1; "
          f"server pid {cfg.pid}; {cfg.duration:g} s per attack; open-file limit {cfg.fd_limit}", flush=True)

    attacks = [
        ("a. long made-up methods (500 bytes) on /healthz and /api/v1/costs", attack_methods),
        ("b. repeated group_by on /api/v1/costs (64 KiB, 48 KiB, 2 KiB)", attack_group_by),
        ("c. slow headers (slowloris), up to 300 connections", attack_slowloris),
        ("d. connection flood, up to 1,000 idle connections", attack_flood),
    ]
    pause = 2.0
    expected = 2 + 4 * (cfg.duration + pause) + cfg.header_timeout + 3 + cfg.settle + 60
    prober = Prober(cfg.host, cfg.port, expected + 120)
    memory = MemorySampler(cfg.pid)
    results = []
    try:
        if not prober.wait_first(10):
            print("abuse: the prober took no sample in 10 s", flush=True)
        time.sleep(2)  # a quiet baseline
        baseline = prober.between(0, time.monotonic())
        mem_before = vm_rss_mib(cfg.pid)
        if mem_before is None:
            die(f"the server (pid {cfg.pid}) is gone before the first attack")
        print(f"   baseline /healthz: {latency_line(*baseline)}; VmRSS {mem_before:.1f} MiB", flush=True)
        first_start = time.monotonic()
        for title, attack in attacks:
            if vm_rss_mib(cfg.pid) is None:
                print(f"== {title}: skipped, the server is gone", flush=True)
                continue
            print(f"== {title}", flush=True)
            start = time.monotonic()
            counts, notes = attack(cfg)
            end = time.monotonic()
            lat, failed = prober.between(start, end)
            results.append((title, start, end))
            print(f"   {end - start:.1f} s: {counts.unit} sent {counts.requests}, answered {counts.answered}", flush=True)
            print(f"   status counts: {fmt_counter(counts.status)}")
            print(f"   connections: {fmt_counter(counts.conn)}")
            for note in notes:
                print(f"   {note}")
            print(f"   /healthz meanwhile: {latency_line(lat, failed)}", flush=True)
            time.sleep(pause)  # let the server drop what the attack left
        last_end = results[-1][2] if results else time.monotonic()
        print(f"== settling {cfg.settle:g} s", flush=True)
        time.sleep(cfg.settle)
        mem_after = vm_rss_mib(cfg.pid)
        metrics_after_status, metrics_after = get_metrics(cfg)
    finally:
        memory.stop()
        prober.stop()

    all_lat, all_failed = prober.between(first_start, last_end)
    p99 = percentile(all_lat, 99) if all_lat else float("inf")
    worst = max(all_lat) if all_lat else float("inf")
    died = mem_after is None or memory.gone
    peak = max(memory.peak, mem_before or 0.0, mem_after or 0.0)
    growth_ok = not died and mem_after <= mem_before * MEMORY_GROWTH_LIMIT
    latency_ok = p99 < HEALTHZ_P99_LIMIT_MS

    print("== results")
    print(f"   /healthz over all attacks: {latency_line(all_lat, all_failed)} (limit: p99 < {HEALTHZ_P99_LIMIT_MS:g} ms)")
    if died:
        print(f"   the server (pid {cfg.pid}) is gone")
    else:
        print(f"   VmRSS before {mem_before:.1f} MiB, peak {peak:.1f} MiB, after {mem_after:.1f} MiB: "
              f"{'within' if growth_ok else 'NOT within'} 20% of before ({(mem_after / mem_before - 1) * 100:+.1f}%)")
    print(f"   GET /metrics: before {len(metrics_before)} bytes (status {metrics_before_status}), "
          f"after {len(metrics_after)} bytes (status {metrics_after_status})")
    verdict = "PASS" if latency_ok and growth_ok and not died else "FAIL"
    after_text = "gone" if mem_after is None else f"{mem_after:.1f} MiB"
    print(f"abuse: healthz p99 {p99:.1f} ms (max {worst:.1f} ms), memory before {mem_before:.1f} MiB, "
          f"peak {peak:.1f} MiB, after {after_text}: {verdict}", flush=True)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
