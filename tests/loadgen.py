#!/usr/bin/env python3
"""Load generator for a length-prefixed echo server, loopback only.

Wire protocol (both directions): a 4-byte big-endian payload length, then the
payload.  The server answers every complete message with the same frame.

Plain blocking sockets and threads; no asyncio, so this process is an
independent client whatever loop the server runs on.  Three phases, in order:

  echo       THREADS connections, one per thread, each doing REQUESTS
             request/response round trips with payload sizes cycling through
             SIZES; every reply is compared byte for byte with what was sent.
  reset      RESET_CLIENTS connections, each doing one small round trip (so the
             server has certainly accepted and served it), then sending a
             header plus half of the announced payload and closing with
             SO_LINGER {on, 0}: the kernel sends RST instead of FIN.
  halfclose  HALFCLOSE_CLIENTS connections, each sending HALFCLOSE_MESSAGES
             messages (sizes cycling through SIZES, from a sender thread) and
             then shutdown(SHUT_WR); the main side reads every reply and then
             requires a clean EOF from the server.

A JSON summary goes to stdout (the last line).  The exit status is 0 only if
every phase ran its exact expected counts with zero errors; 1 on any error or
mismatch; 2 on bad arguments.  The whole run is bounded: every socket has a
timeout and there is an overall --deadline; nothing retries or loops forever.
"""
import argparse
import ipaddress
import json
import socket
import struct
import sys
import threading
import time

HEADER = struct.Struct("!I")
MAX_ERROR_SAMPLES = 20


class Deadline(Exception):
    pass


class Mismatch(Exception):
    pass


class Stats:
    """Per-phase counters, updated under one lock."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0          # messages sent whose reply was verified
        self.bytes_sent = 0
        self.bytes_received = 0
        self.mismatches = 0
        self.resets_sent = 0
        self.clean_eofs = 0
        self.errors = []           # samples: "where: repr(exc)"
        self.error_count = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, where, exc):
        with self.lock:
            self.error_count += 1
            if isinstance(exc, Mismatch):
                self.mismatches += 1
            if len(self.errors) < MAX_ERROR_SAMPLES:
                self.errors.append(f"{where}: {exc!r}")

    def summary(self, expected):
        d = {
            "connections": self.connections,
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "mismatches": self.mismatches,
            "errors": self.error_count,
            "error_samples": self.errors,
            "expected": expected,
        }
        if self.name == "reset":
            d["resets_sent"] = self.resets_sent
        if self.name == "halfclose":
            d["clean_eofs"] = self.clean_eofs
        return d


class Payloads:
    """Deterministic, distinct payloads without generating fresh bytes each time.

    A fixed pseudo-random block is rotated per (client, index) and stamped with
    the client and message numbers, so a reply delivered to the wrong
    connection or out of order does not compare equal.
    """

    def __init__(self, max_size):
        x = 0x9E3779B9
        out = bytearray()
        n = max(max_size, 16) * 2
        while len(out) < n:
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
            out += x.to_bytes(4, "little")
        self.block = bytes(out[:n])
        self.half = n // 2

    def make(self, client, index, size):
        start = (client * 7919 + index * 104729) % self.half
        data = bytearray(self.block[start:start + size])
        stamp = struct.pack("!II", client, index)
        data[:min(size, 8)] = stamp[:min(size, 8)]
        return bytes(data)


def frame(payload):
    return HEADER.pack(len(payload)) + payload


def recv_exact(sock, n, deadline):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if time.monotonic() > deadline:
            raise Deadline("overall deadline exceeded")
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError(f"unexpected EOF after {got} of {n} bytes")
        got += r
    return bytes(buf)


def read_reply(sock, deadline):
    (length,) = HEADER.unpack(recv_exact(sock, HEADER.size, deadline))
    return recv_exact(sock, length, deadline) if length else b""


def connect(args, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise Deadline("overall deadline exceeded before connect")
    sock = socket.create_connection((args.host, args.port),
                                    timeout=min(args.timeout, remaining))
    sock.settimeout(min(args.timeout, remaining))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip(sock, payload, deadline, stats, where):
    sock.sendall(frame(payload))
    stats.add(bytes_sent=HEADER.size + len(payload))
    reply = read_reply(sock, deadline)
    stats.add(bytes_received=HEADER.size + len(reply))
    if reply != payload:
        raise Mismatch(f"{where}: sent {len(payload)} bytes, got {len(reply)} "
                       f"bytes back, first difference at "
                       f"{next((i for i, (a, b) in enumerate(zip(reply, payload)) if a != b), min(len(reply), len(payload)))}")
    stats.add(requests=1)


# -- phases ------------------------------------------------------------------

def echo_worker(args, tid, payloads, stats, deadline):
    where = f"echo[{tid}]"
    try:
        with connect(args, deadline) as sock:
            stats.add(connections=1)
            for i in range(args.requests):
                size = args.sizes[i % len(args.sizes)]
                round_trip(sock, payloads.make(tid, i, size), deadline, stats,
                           f"{where} request {i}")
    except Exception as exc:  # noqa: BLE001 - everything is an error to report
        stats.error(where, exc)


def reset_worker(args, cid, payloads, stats, deadline):
    where = f"reset[{cid}]"
    try:
        sock = connect(args, deadline)
        try:
            stats.add(connections=1)
            # One complete round trip: the server has accepted and served us.
            round_trip(sock, payloads.make(10_000 + cid, 0, 64), deadline, stats, where)
            size = args.sizes[cid % len(args.sizes)]
            size = max(size, 2)
            payload = payloads.make(10_000 + cid, 1, size)
            # Announce `size` bytes, send only half of them.
            sock.sendall(HEADER.pack(size) + payload[:size // 2])
            stats.add(bytes_sent=HEADER.size + size // 2)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        finally:
            sock.close()   # with linger {1, 0}: RST
        stats.add(resets_sent=1)
    except Exception as exc:  # noqa: BLE001
        stats.error(where, exc)


def halfclose_worker(args, cid, payloads, stats, deadline):
    where = f"halfclose[{cid}]"
    msgs = [payloads.make(20_000 + cid, i, args.sizes[(cid + i) % len(args.sizes)])
            for i in range(args.halfclose_messages)]
    send_error = []

    def sender(sock):
        try:
            for m in msgs:
                sock.sendall(frame(m))
                stats.add(bytes_sent=HEADER.size + len(m))
            sock.shutdown(socket.SHUT_WR)
        except Exception as exc:  # noqa: BLE001
            send_error.append(exc)

    try:
        with connect(args, deadline) as sock:
            stats.add(connections=1)
            t = threading.Thread(target=sender, args=(sock,), daemon=True)
            t.start()
            try:
                for i, m in enumerate(msgs):
                    reply = read_reply(sock, deadline)
                    stats.add(bytes_received=HEADER.size + len(reply))
                    if reply != m:
                        raise Mismatch(f"{where} message {i}: sent {len(m)} bytes, "
                                       f"got {len(reply)} bytes back")
                    stats.add(requests=1)
                # The server must now close its side: a clean EOF, nothing more.
                rest = sock.recv(1)
                if rest != b"":
                    raise Mismatch(f"{where}: expected EOF after the last reply, "
                                   f"got more data {rest!r}")
                stats.add(clean_eofs=1)
            finally:
                t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                raise Deadline(f"{where}: sender thread did not finish")
            if send_error:
                raise send_error[0]
    except Exception as exc:  # noqa: BLE001
        stats.error(where, exc)


def run_threads(target, count, concurrency, args, payloads, stats, deadline):
    """Run target(args, i, ...) for i in range(count), at most `concurrency` at once."""
    sem = threading.BoundedSemaphore(max(1, concurrency))
    threads = []

    def wrapped(i):
        try:
            target(args, i, payloads, stats, deadline)
        finally:
            sem.release()

    for i in range(count):
        if not sem.acquire(timeout=max(0.0, deadline - time.monotonic())):
            stats.error("scheduler", Deadline(f"could not start client {i}"))
            break
        t = threading.Thread(target=wrapped, args=(i,), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            stats.error("scheduler", Deadline("a client thread did not finish in time"))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--requests", type=int, default=500,
                   help="round trips per echo thread")
    p.add_argument("--sizes", default="1,1024,10240,102400",
                   help="comma-separated payload sizes, cycled")
    p.add_argument("--reset-clients", type=int, default=16)
    p.add_argument("--halfclose-clients", type=int, default=16)
    p.add_argument("--halfclose-messages", type=int, default=4)
    p.add_argument("--timeout", type=float, default=20.0,
                   help="per socket operation, seconds")
    p.add_argument("--deadline", type=float, default=45.0,
                   help="for the whole run, seconds")
    p.add_argument("--phases", default="echo,reset,halfclose")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        p.error("--sizes must be integers")
    if not args.sizes or any(s < 0 or s > 64 << 20 for s in args.sizes):
        p.error("--sizes must be non-empty, each in 0..64 MiB")
    args.phases = [s for s in args.phases.split(",") if s]
    if any(ph not in ("echo", "reset", "halfclose") for ph in args.phases):
        p.error("--phases: echo, reset, halfclose")
    for name in ("threads", "requests", "reset_clients", "halfclose_clients",
                 "halfclose_messages"):
        v = getattr(args, name)
        if v < 0 or v > 100_000:
            p.error(f"--{name.replace('_', '-')} out of range")
    # Loopback only: an IP literal or "localhost" (no DNS for anything else),
    # and everything it resolves to must be a loopback address.
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            p.error(f"--host must be a loopback IP literal or 'localhost', not {args.host!r}")
    try:
        infos = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        p.error(f"cannot resolve {args.host!r}: {exc}")
    if not infos or not all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
        p.error(f"{args.host!r} is not a loopback address; refusing")
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.monotonic()
    deadline = start + args.deadline
    payloads = Payloads(max(args.sizes + [64]))

    expected = {
        "echo": {"connections": args.threads,
                 "requests": args.threads * args.requests},
        "reset": {"connections": args.reset_clients,
                  "requests": args.reset_clients,
                  "resets_sent": args.reset_clients},
        "halfclose": {"connections": args.halfclose_clients,
                      "requests": args.halfclose_clients * args.halfclose_messages,
                      "clean_eofs": args.halfclose_clients},
    }
    phases = {}
    for name in args.phases:
        stats = Stats(name)
        if name == "echo":
            run_threads(echo_worker, args.threads, args.threads, args, payloads,
                        stats, deadline)
        elif name == "reset":
            run_threads(reset_worker, args.reset_clients, args.threads, args,
                        payloads, stats, deadline)
        else:
            run_threads(halfclose_worker, args.halfclose_clients, args.threads,
                        args, payloads, stats, deadline)
        phases[name] = stats.summary(expected[name])

    ok = True
    for name, s in phases.items():
        s["ok"] = (s["errors"] == 0 and s["mismatches"] == 0
                   and all(s.get(k) == v for k, v in s["expected"].items()))
        ok = ok and s["ok"]
    summary = {
        "ok": ok,
        "host": args.host,
        "port": args.port,
        "phases": phases,
        "connections": sum(s["connections"] for s in phases.values()),
        "requests": sum(s["requests"] for s in phases.values()),
        "errors": sum(s["errors"] for s in phases.values()),
        "mismatches": sum(s["mismatches"] for s in phases.values()),
        "bytes_sent": sum(s["bytes_sent"] for s in phases.values()),
        "bytes_received": sum(s["bytes_received"] for s in phases.values()),
        "elapsed": round(time.monotonic() - start, 3),
    }
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
