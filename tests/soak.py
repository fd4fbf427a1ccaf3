#!/usr/bin/env python3
"""Soak test: a mixed asyncio load for a while, checking memory stays flat.

    python tests/soak.py [--minutes 10] [--loop quickloop|stdlib] [--report PATH]

For the whole duration, at once, on one loop:

- timers: batches armed with call_later, most cancelled at once, the rest fire;
- tasks: spawned in batches under asyncio.timeout / wait_for (expiring and
  not), behind asyncio.shield, some cancelled by their spawner;
- TaskGroups whose failing child cancels its siblings (nested groups too);
- a TCP echo server on loopback with a few stream clients that connect, echo
  random-sized messages (each checked), disconnect and reconnect;
- two threads calling call_soon_threadsafe (bounded in flight, order checked).

Every second the sampler records RSS (/proc/self/statm) and the number of
live objects (len(gc.get_objects()) right after gc.collect()).  After the
warm-up (the first 20% of the run) both must stay flat: the median of the last
quarter of the run may exceed the median of everything after the warm-up by
at most max(10%, a fixed slack).  Exits 1 on growth or on any workload error
(wrong echo, out-of-order callback, unexpected exception), 0 otherwise.  The
summary goes to stdout, the samples and counters to --report as JSON.
"""
import argparse
import asyncio
import collections
import gc
import json
import os
import random
import statistics
import sys
import threading
import time

try:
    import quickloop
except ImportError:  # running from a checkout after `make dev`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    try:
        import quickloop
    except ImportError:
        quickloop = None

WARMUP_FRACTION = 0.20
LAST_FRACTION = 0.25
REL_TOLERANCE = 0.10
RSS_SLACK = 4 * 1024 * 1024  # bytes
OBJECTS_SLACK = 2000  # objects
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
ECHO_CLIENTS = 4
THREADSAFE_THREADS = 2
THREADSAFE_IN_FLIGHT = 500
THREADSAFE_BURST = 20  # calls between 1 ms pauses, per thread


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


class Soak:
    def __init__(self, loop, seconds, seed):
        self.loop = loop
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.count = collections.Counter()
        self.errors = []
        self.samples = []
        self.stopping = False

    def error(self, what):
        if len(self.errors) < 100:
            self.errors.append(what)
        self.count["errors"] += 1

    def exception_handler(self, loop, context):
        exc = context.get("exception")
        self.error(f"exception handler: {context.get('message')!r} {exc!r}")

    # ---- timers ------------------------------------------------------------

    async def timers(self):
        loop = self.loop

        def fired():
            self.count["timers fired"] += 1

        while not self.stopping:
            handles = [loop.call_later(self.rng.uniform(0, 0.05), fired) for _ in range(200)]
            for h in handles[:150]:
                h.cancel()
            self.count["timers armed"] += len(handles)
            self.count["timers cancelled"] += 150
            await asyncio.sleep(0.01)

    # ---- tasks: timeouts, wait_for, shield, cancellation ------------------------

    async def job(self, kind):
        if kind == "timeout-expires":
            try:
                async with asyncio.timeout(0.002):
                    await asyncio.sleep(10)
            except TimeoutError:
                return kind
        elif kind == "timeout-ok":
            async with asyncio.timeout(30):
                await asyncio.sleep(0.001)
            return kind
        elif kind == "wait_for-expires":
            try:
                await asyncio.wait_for(asyncio.sleep(10), 0.002)
            except asyncio.TimeoutError:
                return kind
        elif kind == "wait_for-ok":
            return await asyncio.wait_for(asyncio.sleep(0, kind), 30)
        elif kind == "shield":
            inner = asyncio.ensure_future(asyncio.sleep(0.003, kind))
            try:
                await asyncio.wait_for(asyncio.shield(inner), 0.001)
            except asyncio.TimeoutError:
                pass  # the shield kept inner running
            return await inner
        elif kind == "victim":
            await asyncio.sleep(10)
        return f"unexpected end of {kind}"

    async def tasks(self):
        kinds = ["timeout-expires", "timeout-ok", "wait_for-expires", "wait_for-ok",
                 "shield", "victim"]
        while not self.stopping:
            batch = [(k, asyncio.ensure_future(self.job(k)))
                     for k in (self.rng.choice(kinds) for _ in range(100))]
            await asyncio.sleep(0)
            for kind, task in batch:
                if kind == "victim":
                    task.cancel()
            results = await asyncio.gather(*(t for _, t in batch), return_exceptions=True)
            for (kind, _), res in zip(batch, results):
                if kind == "victim":
                    if not isinstance(res, asyncio.CancelledError):
                        self.error(f"victim task ended with {res!r}")
                    self.count["tasks cancelled"] += 1
                elif res != kind:
                    self.error(f"{kind} task ended with {res!r}")
                else:
                    self.count[f"tasks {kind}"] += 1
            self.count["tasks spawned"] += len(batch)

    # ---- TaskGroups with failing children --------------------------------------

    async def taskgroups(self):
        siblings_cancelled = [0]

        async def sibling():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                siblings_cancelled[0] += 1
                raise

        async def failing(delay):
            await asyncio.sleep(delay)
            raise ValueError("child failed")

        async def nested():
            async with asyncio.TaskGroup() as inner:
                inner.create_task(sibling())
                inner.create_task(failing(0.002))

        while not self.stopping:
            siblings_cancelled[0] = 0
            try:
                async with asyncio.TaskGroup() as tg:
                    for _ in range(5):
                        tg.create_task(sibling())
                    tg.create_task(failing(0.001))
                    tg.create_task(nested())
            except* ValueError as eg:
                self.count["taskgroup failures"] += len(eg.exceptions)
            else:
                self.error("TaskGroup with a failing child did not raise")
            if siblings_cancelled[0] < 5:
                self.error(f"only {siblings_cancelled[0]} siblings cancelled")
            self.count["taskgroups"] += 1
            self.count["taskgroup siblings cancelled"] += siblings_cancelled[0]

    # ---- TCP echo ------------------------------------------------------------

    async def echo_handler(self, reader, writer):
        try:
            while True:
                header = await reader.readexactly(4)
                size = int.from_bytes(header, "big")
                writer.write(header + await reader.readexactly(size))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass  # the client closed
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def echo_client(self, port, ident):
        rng = random.Random(ident)
        while not self.stopping:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for _ in range(rng.randint(5, 50)):
                    payload = rng.randbytes(rng.randint(1, 8192))
                    writer.write(len(payload).to_bytes(4, "big") + payload)
                    await writer.drain()
                    header = await reader.readexactly(4)
                    back = await reader.readexactly(int.from_bytes(header, "big"))
                    if back != payload:
                        self.error(f"echo client {ident}: wrong echo")
                    self.count["echo round trips"] += 1
                    self.count["echo bytes"] += len(payload)
            finally:
                writer.close()
                await writer.wait_closed()
            self.count["echo connections"] += 1

    async def echo(self):
        server = await asyncio.start_server(self.echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.gather(*(self.echo_client(port, i) for i in range(ECHO_CLIENTS)))
        finally:
            server.close()
            await server.wait_closed()

    # ---- call_soon_threadsafe from threads ----------------------------------------

    async def threadsafe(self):
        loop = self.loop
        in_flight = threading.BoundedSemaphore(THREADSAFE_IN_FLIGHT)
        next_seq = [0] * THREADSAFE_THREADS
        stop = threading.Event()

        def callback(tid, seq):
            if seq != next_seq[tid]:
                self.error(f"thread {tid}: callback {seq} ran, expected {next_seq[tid]}")
            next_seq[tid] = seq + 1
            self.count["threadsafe callbacks"] += 1
            in_flight.release()

        def worker(tid):
            seq = 0
            while not stop.is_set():
                if in_flight.acquire(timeout=0.1):
                    loop.call_soon_threadsafe(callback, tid, seq)
                    seq += 1
                    if seq % THREADSAFE_BURST == 0:
                        time.sleep(0.001)  # pacing: a steady load, not a CPU hog
            return seq

        threads = [loop.run_in_executor(None, worker, tid) for tid in range(THREADSAFE_THREADS)]
        try:
            while not self.stopping:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            sent = await asyncio.gather(*threads)
        # let the last callbacks in flight run
        deadline = loop.time() + 30
        while next_seq != sent and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if next_seq != sent:
            self.error(f"threadsafe: sent {sent}, ran {next_seq}")

    # ---- sampling and the run ------------------------------------------------------

    def sample(self, t0):
        gc.collect()
        s = {
            "t": round(time.monotonic() - t0, 3),
            "rss": rss_bytes(),
            "objects": len(gc.get_objects()),
            "tasks": len(asyncio.all_tasks(self.loop)),
        }
        timer_count = getattr(self.loop, "_timer_count", None)
        if timer_count is not None:
            s["timers"] = timer_count
        self.samples.append(s)
        return s

    async def sampler(self, t0):
        end = t0 + self.seconds
        next_progress = 0.1
        while time.monotonic() < end:
            await asyncio.sleep(1)
            s = self.sample(t0)
            if s["t"] >= next_progress * self.seconds:
                print(f"  {s['t']:7.1f}s  rss {s['rss'] / 2**20:7.1f} MiB"
                      f"  objects {s['objects']:8d}  tasks {s['tasks']:5d}"
                      f"  round trips {self.count['echo round trips']}", flush=True)
                next_progress += 0.1
        self.stopping = True

    async def main(self):
        t0 = time.monotonic()
        self.loop.set_exception_handler(self.exception_handler)
        self.sample(t0)
        workers = [asyncio.ensure_future(w) for w in (
            self.timers(), self.tasks(), self.taskgroups(), self.echo(), self.threadsafe())]
        try:
            await self.sampler(t0)
            # the workers finish their current round and return
            done, pending = await asyncio.wait(workers, timeout=60)
            for w in pending:
                self.error(f"worker did not stop: {w!r}")
                w.cancel()
            for w in done:
                if w.exception() is not None:
                    self.error(f"worker failed: {w.exception()!r}")
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


def median_of(samples, key):
    return statistics.median(s[key] for s in samples)


def flatness(samples, key, slack):
    """Compare the last quarter's median with the post-warm-up median."""
    n = len(samples)
    post = samples[int(n * WARMUP_FRACTION):]
    last = samples[n - max(1, int(n * LAST_FRACTION)):]
    base = median_of(post, key)
    end = median_of(last, key)
    allowed = max(REL_TOLERANCE * base, slack)
    # least-squares slope over the post-warm-up samples, per minute (information)
    ts = [s["t"] for s in post]
    vs = [s[key] for s in post]
    slope = 0.0
    if len(post) >= 2 and max(ts) > min(ts):
        mt, mv = statistics.fmean(ts), statistics.fmean(vs)
        slope = sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / sum((t - mt) ** 2 for t in ts)
    return {
        "start": samples[0][key],
        "post_warmup_median": base,
        "last_quarter_median": end,
        "max": max(s[key] for s in samples),
        "growth": end - base,
        "allowed_growth": allowed,
        "slope_per_minute": slope * 60,
        "flat": end - base <= allowed,
    }


def make_loop(kind):
    if kind == "stdlib":
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    if quickloop is None:
        sys.exit("quickloop is not importable (build it: make dev; PYTHONPATH=python)")
    return quickloop.new_event_loop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--loop", choices=("quickloop", "stdlib"), default="quickloop")
    parser.add_argument("--report", default=None, help="write the samples and counters as JSON")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    if seconds < 10:
        parser.error("--minutes: run for at least 10 seconds")

    loop = make_loop(args.loop)
    asyncio.set_event_loop(loop)
    soak = Soak(loop, seconds, args.seed)
    print(f"soak: {args.loop} loop ({type(loop).__module__}.{type(loop).__qualname__}), "
          f"{args.minutes:g} min, python {sys.version.split()[0]}", flush=True)
    started = time.monotonic()
    try:
        loop.run_until_complete(soak.main())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    elapsed = time.monotonic() - started

    samples = soak.samples
    rss = flatness(samples, "rss", RSS_SLACK)
    objects = flatness(samples, "objects", OBJECTS_SLACK)
    ok = rss["flat"] and objects["flat"] and not soak.count["errors"]

    print(f"\nsoak summary ({args.loop}, {elapsed:.0f}s, {len(samples)} samples, "
          f"warm-up {WARMUP_FRACTION:.0%}):")
    for name in ("timers armed", "timers cancelled", "timers fired", "tasks spawned",
                 "tasks cancelled", "taskgroups", "taskgroup siblings cancelled",
                 "echo connections", "echo round trips", "echo bytes",
                 "threadsafe callbacks", "errors"):
        print(f"  {name:30s} {soak.count[name]:>12,d}")
    mib = 2**20
    print(f"  {'RSS (MiB)':30s} start {rss['start'] / mib:.1f}, post-warm-up median "
          f"{rss['post_warmup_median'] / mib:.1f}, last-quarter median "
          f"{rss['last_quarter_median'] / mib:.1f}, max {rss['max'] / mib:.1f}, "
          f"growth {rss['growth'] / mib:+.2f} (allowed {rss['allowed_growth'] / mib:.2f}), "
          f"slope {rss['slope_per_minute'] / mib:+.3f}/min -> {'flat' if rss['flat'] else 'GROWS'}")
    print(f"  {'live objects':30s} start {objects['start']}, post-warm-up median "
          f"{objects['post_warmup_median']:.0f}, last-quarter median "
          f"{objects['last_quarter_median']:.0f}, max {objects['max']}, "
          f"growth {objects['growth']:+.0f} (allowed {objects['allowed_growth']:.0f}), "
          f"slope {objects['slope_per_minute']:+.1f}/min -> "
          f"{'flat' if objects['flat'] else 'GROWS'}")
    for err in soak.errors[:20]:
        print(f"  error: {err}")
    print("PASS" if ok else "FAIL")

    if args.report:
        with open(args.report, "w") as f:
            json.dump({
                "loop": args.loop,
                "minutes": args.minutes,
                "elapsed": elapsed,
                "python": sys.version,
                "warmup_fraction": WARMUP_FRACTION,
                "counters": dict(soak.count),
                "errors": soak.errors,
                "rss": rss,
                "objects": objects,
                "ok": ok,
                "samples": samples,
            }, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
