"""Network workloads, all on 127.0.0.1: TCP echo (protocols and streams,
client and server in the loop under test) and an HTTP/1.1 keep-alive server
(in a subprocess running the loop under test) driven by wrk.

Each is bounded in count and time and checks every reply, so a loop (or
server) that corrupts, drops or duplicates data fails instead of scoring.
"""
import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from .base import CheckFailed, Measured, SkipWorkload, check, run_checked

HOST = "127.0.0.1"

# ------------------------------------------------------------------ echo

ECHO_CONNECTIONS = 4  # concurrent client connections
ECHO_VARIANTS = 8  # distinct messages per connection, sent in rotation
ECHO_DEADLINE = 120.0  # seconds; a stalled echo fails instead of hanging


class EchoServerProtocol(asyncio.Protocol):
    """The echo server: writes back whatever it receives."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_stream_handler(reader, writer):
    """The streams echo server: read what is there, write it back, drain."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def _messages(conn, size):
    """ECHO_VARIANTS different messages for one connection: random bytes,
    distinct per connection and per variant, so a stale, repeated or
    crossed reply does not match."""
    rng = random.Random(1000 * size + conn)
    return [rng.randbytes(size) for _ in range(ECHO_VARIANTS)]


def _split(n, k):
    """n round trips over k connections: as even as possible, none empty."""
    k = max(1, min(k, n))
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


class _EchoClient(asyncio.Protocol):
    """Sends a message, waits for all of it to come back, compares, sends
    the next; `done` gets (round trips, mismatches) at the end."""

    def __init__(self, messages, rounds, done):
        self.messages, self.rounds, self.done = messages, rounds, done
        self.size = len(messages[0])
        self.buf = bytearray()
        self.i = 0
        self.bad = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def start(self):
        self.transport.write(self.messages[0])

    def data_received(self, data):
        self.buf += data
        if len(self.buf) < self.size:
            return
        if len(self.buf) > self.size or self.buf != self.messages[self.i % ECHO_VARIANTS]:
            self.bad += 1
        self.buf.clear()
        self.i += 1
        if self.i == self.rounds:
            if not self.done.done():
                self.done.set_result((self.i, self.bad))
        else:
            self.transport.write(self.messages[self.i % ECHO_VARIANTS])

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result((self.i, self.bad + 1))


async def _within(aw, what, deadline):
    try:
        async with asyncio.timeout(deadline):
            return await aw
    except TimeoutError:
        raise CheckFailed(f"{what} stalled: no completion within {deadline:g} s") from None


def tcp_echo_protocol(loop, n, size, server_protocol=EchoServerProtocol, deadline=ECHO_DEADLINE):
    """n round trips of `size`-byte messages over ECHO_CONNECTIONS loopback
    connections at once (asyncio.Protocol client and server, both in the
    loop under test); each connection sends one message, waits for the
    whole echo, compares it byte for byte, sends the next.  Connection set-up
    and teardown are not timed."""
    plan = _split(n, ECHO_CONNECTIONS)

    async def body():
        server = await loop.create_server(server_protocol, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        clients = []
        for c, rounds in enumerate(plan):
            done = loop.create_future()
            _, proto = await loop.create_connection(lambda: _EchoClient(_messages(c, size), rounds, done), HOST, port)
            clients.append(proto)
        cpu0, t0 = os.times(), time.perf_counter()
        for proto in clients:
            proto.start()
        results = await _within(asyncio.gather(*(p.done for p in clients)), "echo", deadline)
        elapsed, cpu = time.perf_counter() - t0, _cpu_since(cpu0)
        for proto in clients:
            proto.transport.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0)  # let the server side see the closes
        return results, elapsed, cpu

    results, elapsed, cpu = run_checked(loop, body)
    return _echo_result(results, plan, size, elapsed, cpu)


def tcp_echo_streams(loop, n, size, handler=echo_stream_handler, deadline=ECHO_DEADLINE):
    """tcp_echo_protocol through asyncio streams: open_connection and
    start_server, the client doing write + drain + readexactly per round
    trip, the server read + write + drain."""
    plan = _split(n, ECHO_CONNECTIONS)
    handlers = []

    async def tracked(reader, writer):
        handlers.append(asyncio.current_task())
        await handler(reader, writer)

    async def client(c, rounds, reader, writer, start):
        msgs = _messages(c, size)
        bad = 0
        await start
        for i in range(rounds):
            msg = msgs[i % ECHO_VARIANTS]
            writer.write(msg)
            await writer.drain()
            try:
                reply = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return i, bad + 1
            if reply != msg:
                bad += 1
        return rounds, bad

    async def body():
        server = await asyncio.start_server(tracked, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        conns = [await asyncio.open_connection(HOST, port) for _ in plan]
        start = loop.create_future()
        tasks = [asyncio.ensure_future(client(c, r, rd, wr, start)) for c, (r, (rd, wr)) in enumerate(zip(plan, conns))]
        await asyncio.sleep(0)  # every client task is waiting for the start
        cpu0, t0 = os.times(), time.perf_counter()
        start.set_result(None)
        results = await _within(asyncio.gather(*tasks), "echo", deadline)
        elapsed, cpu = time.perf_counter() - t0, _cpu_since(cpu0)
        for _, wr in conns:
            wr.close()
        for _, wr in conns:
            try:
                await wr.wait_closed()
            except ConnectionError:
                pass
        server.close()
        await server.wait_closed()
        await _within(asyncio.gather(*handlers, return_exceptions=True), "echo server shutdown", 10)
        return results, elapsed, cpu

    results, elapsed, cpu = run_checked(loop, body)
    return _echo_result(results, plan, size, elapsed, cpu)


def _cpu_since(t0):
    """(user, system) CPU seconds this process used since os.times() t0."""
    t1 = os.times()
    return t1.user - t0.user, t1.system - t0.system


def cpu_extras(user, system, ops):
    """Where a network workload's CPU time went: the kernel's share, and the
    user-space CPU per op (the part a loop can make smaller)."""
    busy = user + system
    if busy <= 0 or ops <= 0:
        return {}
    return {"kernel_pct": 100.0 * system / busy, "user_us_per_op": 1e6 * user / ops}


def _echo_result(results, plan, size, elapsed, cpu):
    n = sum(plan)
    trips = sum(r for r, _ in results)
    bad = sum(b for _, b in results)
    check(bad == 0, f"{bad} of {n} echoed messages differ from what was sent")
    check(trips == n, f"{trips} round trips completed, expected {n}")
    return Measured(n, elapsed, {
        "mb_per_s": n * size / elapsed / 1e6,
        "message_bytes": size,
        "connections": len(plan),
        **cpu_extras(*cpu, n),
    })


def _echo_workload(kind, size):
    func = tcp_echo_protocol if kind == "protocol" else tcp_echo_streams

    def workload(loop, n):
        return func(loop, n, size)

    workload.__name__ = f"tcp_echo_{kind}_{size // 1000}k"
    workload.__doc__ = f"{func.__name__} with size = {size:,} bytes:\n\n{func.__doc__}"
    return workload


# ------------------------------------------------------------------ HTTP

HTTP_BODY = b"Hello"
HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(HTTP_BODY), HTTP_BODY))
HTTP_STOP_PATH = "/__benchmark_stop__"  # the server answers "served <count>" and exits
WRK_THREADS = 1  # on a CPU of its own (see cpu_plan), one thread keeps it busy
WRK_CONNECTIONS = 50
WRK_TIMEOUT = "10s"
WRK_MISSING = "wrk not installed: apt-get install wrk"

# Counts every response wrk receives as good (200 + exactly the body) or bad
# and prints the totals, so a server answering garbage fails the check even
# though wrk itself only counts responses.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  good = 0
  bad = 0
end
function response(status, headers, body)
  if status == 200 and body == "%s" then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
  end
  io.write(string.format("BENCHMARK_CHECK good=%%d bad=%%d\n", g, b))
end
""" % HTTP_BODY.decode()


def wrk_missing():
    return None if shutil.which("wrk") else WRK_MISSING


def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def server_command(loop_name, fd):
    """argv of the benchmark's HTTP server on the named loop, serving the
    listening socket inherited as fd."""
    return [sys.executable, "-m", "benchmarks.httpserver", "--loop", loop_name, "--fd", str(fd)]


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_repo_root(), env.get("PYTHONPATH")) if p)
    return env


def http_get(port, path="/", requests=1, timeout=30.0):
    """Plain blocking HTTP/1.1 client: `requests` keep-alive GETs on one
    connection; the raw bytes of each response (read by Content-Length)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        f = s.makefile("rb")
        out = []
        for i in range(requests):
            last = i == requests - 1
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                      f"{'Connection: close' if last else 'Connection: keep-alive'}\r\n\r\n".encode())
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = f.readline(65536)
                if not line:
                    raise CheckFailed(f"connection closed after {len(out)} response(s) and {head!r}")
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            out.append(head + f.read(length))
        return out


def _check_answers(port, when):
    try:
        replies = http_get(port, requests=2)
    except OSError as e:
        raise CheckFailed(f"plain GET {when} the wrk run failed: {e}") from None
    for r in replies:
        check(r == HTTP_RESPONSE, f"plain GET {when} the wrk run got {r[:200]!r}, expected {HTTP_RESPONSE!r}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text):
    """The figures of wrk's report (and of WRK_SCRIPT's check line)."""
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Latency\s+([\d.]+)(us|ms|s|m|h)\b", text)
    if m:
        out["latency_ms"] = float(m.group(1)) * _UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"BENCHMARK_CHECK good=(\d+) bad=(\d+)", text)
    if m:
        out["good"], out["bad"] = int(m.group(1)), int(m.group(2))
    return out


def cpu_plan():
    """(server CPU, client CPU) when this process may run on two CPUs or
    more, else None.  The HTTP server and wrk then get a CPU each: left to
    the scheduler, three busy threads on two cores make the figure depend
    on who got which core more than on the server."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    return (cpus[-1], cpus[0]) if len(cpus) >= 2 else None


def _pinned_to(cpu):
    """A preexec_fn that keeps the child on one CPU (None: no pinning)."""
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def proc_cpu(pid):
    """(user, system) CPU seconds process pid has used, from /proc; None
    where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick  # utime, stime


def http_wrk(loop, n, loop_name, server_argv=None, threads=WRK_THREADS, connections=WRK_CONNECTIONS):
    """An HTTP/1.1 keep-alive server (asyncio.Protocol, minimal parsing,
    fixed 'Hello' body; benchmarks/httpserver.py) on the loop under test,
    in a subprocess of its own, driven by wrk for n seconds (1 thread, 50
    connections), the server and wrk each on a CPU of its own when there are
    two (cpu_plan).  Checks: plain GETs before and after answer exactly the
    expected response; a wrk script checks every response's status and
    body; no socket errors, no non-2xx; the server counted at least as many
    requests as wrk.  One op = one request; ops/s is wrk's Requests/sec.
    Also reported: how busy the server's CPU was, the kernel's share of it
    and its user-space CPU per request."""
    if wrk_missing():
        raise SkipWorkload(WRK_MISSING)
    if not loop_name:
        raise ValueError("http_wrk runs its server in a subprocess and needs loop_name (a --loops name)")
    listener = socket.create_server((HOST, 0), backlog=1024)
    port = listener.getsockname()[1]
    argv = (server_argv or server_command)(loop_name, listener.fileno())
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "check.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        err_path = os.path.join(tmp, "server.err")
        with open(err_path, "w+b") as err:
            pins = cpu_plan()
            proc = subprocess.Popen(argv, pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=err, env=_child_env(),
                                    preexec_fn=_pinned_to(pins and pins[0]))
            listener.close()  # the server holds it now
            try:
                stats, served = _drive(port, n, script, threads, connections, proc.pid, pins and pins[1])
            except BaseException as e:
                proc.kill()
                proc.wait()
                if isinstance(e, CheckFailed):
                    err.seek(0)
                    tail = err.read()[-500:].decode(errors="replace").strip()
                    if tail:
                        raise CheckFailed(f"{e}; server stderr: {tail}") from None
                raise
            try:
                out, _ = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise CheckFailed("the HTTP server did not exit after the stop request") from None
            check(proc.returncode == 0, f"the HTTP server exited with status {proc.returncode}")
    requests = stats["requests"]
    check(served >= requests, f"the server answered {served} requests, wrk counted {requests}")
    elapsed = requests / stats["rps"]
    extra = {
        "wrk_requests_per_s": stats["rps"],
        "latency_avg_ms": stats.get("latency_ms"),
        "wrk_seconds": n,
        "wrk_connections": connections,
        "wrk_threads": threads,
        "pinned": pins is not None,
    }
    cpu = stats.get("server_cpu")
    if cpu is not None:
        extra.update(cpu_extras(*cpu, requests))
        extra["server_busy_pct"] = 100.0 * (cpu[0] + cpu[1]) / stats["wrk_wall"]
    return Measured(requests, elapsed, extra)


def _drive(port, seconds, script, threads, connections, server_pid, client_cpu):
    _check_answers(port, "before")  # also waits for the server to start
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", WRK_TIMEOUT,
           "-s", script, f"http://{HOST}:{port}/"]
    cpu0, t0 = proc_cpu(server_pid), time.perf_counter()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                             preexec_fn=_pinned_to(client_cpu))
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"wrk did not finish within {seconds + 60} s") from None
    cpu1, wall = proc_cpu(server_pid), time.perf_counter() - t0
    check(run.returncode == 0, f"wrk exited with status {run.returncode}: {run.stderr.strip()[:300]}")
    stats = parse_wrk(run.stdout)
    if cpu0 is not None and cpu1 is not None:
        stats["server_cpu"] = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
        stats["wrk_wall"] = wall
    for key in ("requests", "rps", "good", "bad"):
        check(key in stats, f"no {key} in wrk's output: {run.stdout[-500:]!r}")
    check(stats["requests"] > 0 and stats["rps"] > 0, f"wrk completed no requests: {run.stdout[-500:]!r}")
    check(stats["bad"] == 0, f"{stats['bad']} of {stats['good'] + stats['bad']} responses had a wrong status or body")
    errors = {k: v for k, v in stats["socket_errors"].items() if v}
    check(not errors, f"wrk socket errors: {errors}")
    check(stats["non_2xx"] == 0, f"{stats['non_2xx']} non-2xx responses")
    check(stats["good"] >= stats["requests"], f"wrk's script saw {stats['good']} responses, wrk {stats['requests']}")
    _check_answers(port, "after")
    try:
        (stop,) = http_get(port, HTTP_STOP_PATH)
    except OSError as e:
        raise CheckFailed(f"the stop request failed: {e}") from None
    m = re.search(rb"served (\d+)", stop)
    check(m is not None, f"the stop request got {stop[:200]!r}")
    return stats, int(m.group(1))
