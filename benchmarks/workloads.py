"""The benchmark workloads: one function per workload.

Every workload has the signature ``workload(loop, n) -> Measured`` where
``loop`` is a fresh, not-running event loop (the runner creates and closes
it) and ``n`` is the size.  The workload runs its work on the loop, times
*only the work* with ``time.perf_counter`` (from inside the running loop, so
loop start-up and teardown are excluded), then verifies the result: counts,
ordering, exception types.  A failed verification raises ``CheckFailed`` and
the runner reports that loop as FAILED for the benchmark instead of timing it.

``Measured`` unpacks as ``(ops, elapsed)``; workload-specific extra figures
(timer lateness, peak memory, ...) travel in its ``extra`` dict.

Exceptions that reach the loop's exception handler during a workload
(a callback that raised, a task exception never retrieved, ...) also fail it.
"""
import asyncio
import gc
import random
import resource
import sys

from . import net
from .base import CheckFailed, Measured, SkipWorkload, Workload, check, quickloop_missing, run_timed

__all__ = ["CheckFailed", "Measured", "SkipWorkload", "WORKLOADS", "Workload"]

# -------------------------------------------------------------- workloads


def call_soon(loop, n):
    """n callbacks via loop.call_soon, scheduled in batches of 10k from
    inside the loop; every callback checks it runs in FIFO position."""
    batch = 10_000
    state = {"next": 0, "misordered": 0, "runs": 0}

    def cb(i):
        if i != state["next"]:
            state["misordered"] += 1
        state["next"] = i + 1
        state["runs"] += 1

    async def body():
        done = loop.create_future()

        def driver(start):
            end = min(start + batch, n)
            for i in range(start, end):
                loop.call_soon(cb, i)
            if end < n:
                loop.call_soon(driver, end)
            else:
                loop.call_soon(done.set_result, None)

        loop.call_soon(driver, 0)
        await done

    _, elapsed = run_timed(loop, body)
    check(state["runs"] == n, f"{state['runs']} callbacks ran, expected {n}")
    check(state["misordered"] == 0, f"{state['misordered']} callbacks ran out of FIFO order")
    return Measured(n, elapsed)


# Slack when comparing firing times and deadlines.  The stdlib loop fires a
# timer up to its clock resolution (1 ns for time.monotonic) early, and a
# loop keeping integer-nanosecond deadlines (quickloop) treats deadlines
# less than 1 ns apart as ties while when() reports the unrounded float.
# Deadlines within 1 us of each other count as ties; a loop that gets
# timers wrong misses by far more than that.
_CLOCK_SLACK = 1e-6


def call_later(loop, n):
    """n timers with random delays in [0, 10 ms), all armed from inside one
    callback.  Checks each fires exactly once, in deadline order (when()),
    and never before its when() by the loop's own clock (both up to a 1 us
    tie slack, see _CLOCK_SLACK).  Extra: mean and
    max lateness (loop.time() at firing minus when()), in ms.

    uvloop rounds delays to whole milliseconds and returns a plain Handle
    (no when()) for delays under 0.5 ms, running it like call_soon.  Such
    handles are accepted only for delays under 1 ms, get the arming time
    as their deadline and are left out of the order check; any other
    call_later result without when() fails the check.
    """
    rng = random.Random(12345)
    delays = [rng.uniform(0.0, 0.010) for _ in range(n)]
    fired = []  # (index, loop.time() at firing), in firing order

    async def body():
        done = loop.create_future()
        left = [n]
        time_ = loop.time

        def cb(i):
            fired.append((i, time_()))
            left[0] -= 1
            if left[0] == 0:
                done.set_result(None)

        handles = [loop.call_later(d, cb, i) for i, d in enumerate(delays)]
        armed_at = loop.time()
        await done
        return handles, armed_at

    (handles, armed_at), elapsed = run_timed(loop, body)
    check(len(fired) == n, f"{len(fired)} timer callbacks ran, expected {n}")
    check(len({i for i, _ in fired}) == n, "some timer callbacks ran twice")

    deadlines = []
    immediate = 0
    for h, d in zip(handles, delays):
        when = getattr(h, "when", None)
        if when is not None:
            deadlines.append(when())
        else:
            check(d < 0.001, f"call_later({d:.4f}) returned {type(h).__name__} without when()")
            deadlines.append(None)
            immediate += 1

    late = []
    early = 0
    latest = float("-inf")  # the latest deadline fired so far
    misordered = 0
    for i, t in fired:
        when = deadlines[i]
        if when is None:
            late.append(t - armed_at)
            continue
        if t < when - _CLOCK_SLACK:
            early += 1
        if when < latest - _CLOCK_SLACK:
            misordered += 1
        latest = max(latest, when)
        late.append(t - when)
    check(early == 0, f"{early} timers fired before their when()")
    check(misordered == 0, f"{misordered} timers fired out of deadline order")
    return Measured(
        n,
        elapsed,
        {
            "mean_lateness_ms": 1e3 * sum(late) / len(late),
            "max_lateness_ms": 1e3 * max(late),
            "immediate_handles": immediate,
        },
    )


def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timer_cancel(loop, n):
    """n loop.call_later(60, f) armed, then all cancelled, then one loop
    iteration; none may fire and all must report cancelled() (plus an
    untimed probe: 100 cancelled 1 ms timers must not fire).  Extra: peak
    RSS growth during the timed work in MiB (VmHWM after, reset just before,
    minus VmRSS before; falls back to ru_maxrss growth, which only sees new
    process-wide peaks)."""
    fired = [0]

    def never():
        fired[0] += 1

    async def body():
        handles = [loop.call_later(60, never) for _ in range(n)]
        for h in handles:
            h.cancel()
        await asyncio.sleep(0)
        return handles

    gc.collect()
    exact = _reset_peak_rss()
    if exact:
        before = _rss_kb("VmRSS")
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    handles, elapsed = run_timed(loop, body)
    after = _rss_kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    check(len(handles) == n, f"{len(handles)} handles, expected {n}")
    not_cancelled = sum(1 for h in handles if not h.cancelled())
    check(not_cancelled == 0, f"{not_cancelled} handles do not report cancelled()")
    check(fired[0] == 0, f"{fired[0]} cancelled timers fired")

    # Untimed: the 60 s timers above can never show whether cancel() really
    # disarms a timer, so also cancel some 1 ms timers and outwait them.
    async def probe():
        hs = [loop.call_later(0.001, never) for _ in range(100)]
        for h in hs:
            h.cancel()
        await asyncio.sleep(0.02)

    loop.run_until_complete(probe())
    check(fired[0] == 0, f"{fired[0]} cancelled 1 ms timers fired")
    return Measured(
        n,
        elapsed,
        {"peak_rss_mib": max(0, after - before) / 1024, "rss_method": "VmHWM" if exact else "ru_maxrss"},
    )


def task_spawn_cancel(loop, n):
    """n tasks each sleeping 3600 s; once all are asleep, all are cancelled
    and gathered with return_exceptions=True.  Checks every task started,
    every result is a CancelledError and every task reports cancelled()."""
    started = [0]

    async def sleeper():
        started[0] += 1
        await asyncio.sleep(3600)
        return "woke"

    async def body():
        tasks = [loop.create_task(sleeper()) for _ in range(n)]
        await asyncio.sleep(0)  # FIFO: every task has run to its sleep
        asleep = started[0]
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return tasks, results, asleep

    (tasks, results, asleep), elapsed = run_timed(loop, body)
    check(asleep == n, f"{asleep} of {n} tasks had started before the cancel")
    check(len(results) == n, f"gather returned {len(results)} results, expected {n}")
    bad = sum(1 for r in results if not isinstance(r, asyncio.CancelledError))
    check(bad == 0, f"{bad} results are not CancelledError")
    check(all(t.cancelled() for t in tasks), "some tasks do not report cancelled()")
    return Measured(n, elapsed)


def sleep0_pingpong(loop, n):
    """Two tasks alternating via `await asyncio.sleep(0)`, n switches in
    total; checks strict alternation and the switch count."""
    half = n // 2
    state = {"last": None, "repeats": 0, "steps": 0}

    async def player(me):
        for _ in range(half):
            if state["last"] == me:
                state["repeats"] += 1
            state["last"] = me
            state["steps"] += 1
            await asyncio.sleep(0)

    async def body():
        await asyncio.gather(player("a"), player("b"))

    _, elapsed = run_timed(loop, body)
    check(state["steps"] == 2 * half, f"{state['steps']} steps, expected {2 * half}")
    check(state["repeats"] == 0, f"the tasks failed to alternate {state['repeats']} times")
    return Measured(2 * half, elapsed)


async def _fast(i):
    await asyncio.sleep(0)
    return i


# The three C helpers are measured twice: through the unchanged asyncio API
# (asyncio.wait_for / timeout / shield, whatever the loop makes of them) and
# called directly from quickloop (the *_direct workloads).  quickloop's
# helpers are generic, so the direct variants run on every loop and the
# ratio table shows each helper's cost against asyncio's on that loop.


def _helper(api, name):
    """asyncio.<name> for api "asyncio", quickloop.<name> for "quickloop".
    Looked up at call time (tests swap in broken helpers)."""
    if api == "asyncio":
        return getattr(asyncio, name)
    import quickloop

    return getattr(quickloop, name)


def _wait_for_fast(loop, n, api):
    wait_for = _helper(api, "wait_for")

    async def body():
        total = 0
        for i in range(n):
            total += await wait_for(_fast(i), 10)
        return total

    total, elapsed = run_timed(loop, body)
    check(total == n * (n - 1) // 2, f"sum of results {total}, expected {n * (n - 1) // 2}")
    _check_times_out(loop, lambda: wait_for(asyncio.sleep(10), 0.001))
    return Measured(n, elapsed)


def wait_for_fast(loop, n):
    """n sequential `await asyncio.wait_for(fast(i), 10)`, fast() yielding
    once; checks every result.  Untimed sanity check afterwards: a real
    timeout still raises TimeoutError."""
    return _wait_for_fast(loop, n, "asyncio")


def wait_for_fast_direct(loop, n):
    """wait_for_fast through quickloop.wait_for (3.12 semantics: no extra
    task) instead of asyncio.wait_for, on whatever loop is under test."""
    return _wait_for_fast(loop, n, "quickloop")


def _timeout_fast(loop, n, api):
    timeout = _helper(api, "timeout")

    async def body():
        total = 0
        for i in range(n):
            async with timeout(10):
                total += await _fast(i)
        return total

    total, elapsed = run_timed(loop, body)
    check(total == n * (n - 1) // 2, f"sum of results {total}, expected {n * (n - 1) // 2}")

    async def slow():
        async with timeout(0.001):
            await asyncio.sleep(10)

    _check_times_out(loop, slow)
    return Measured(n, elapsed)


def timeout_fast(loop, n):
    """n sequential `async with asyncio.timeout(10): await fast(i)`; checks
    every result.  Untimed sanity check afterwards: a real timeout still
    raises TimeoutError."""
    return _timeout_fast(loop, n, "asyncio")


def timeout_fast_direct(loop, n):
    """timeout_fast through quickloop.timeout instead of asyncio.timeout,
    on whatever loop is under test."""
    return _timeout_fast(loop, n, "quickloop")


TIMEOUT_PROBE_GUARD = 5.0  # seconds before a 1 ms timeout that never fires counts as broken


def _check_times_out(loop, make_coro):
    """Untimed: a 1 ms timeout around a long sleep raises TimeoutError (and
    soon: a guard cancels the probe after TIMEOUT_PROBE_GUARD seconds)."""

    async def probe():
        t0 = loop.time()
        task = asyncio.ensure_future(make_coro())
        guard = loop.call_later(TIMEOUT_PROBE_GUARD, task.cancel)
        try:
            await task
        except TimeoutError:
            return loop.time() - t0
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            return None  # the guard fired: the timeout never did
        finally:
            guard.cancel()
        return None

    took = loop.run_until_complete(probe())
    check(took is not None, "a 1 ms timeout around sleep(10) did not raise TimeoutError")


def _shield(loop, n, api):
    shield_ = _helper(api, "shield")

    async def body():
        total = 0
        for i in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, i)
            total += await shield_(fut)
        return total

    total, elapsed = run_timed(loop, body)
    check(total == n * (n - 1) // 2, f"sum of results {total}, expected {n * (n - 1) // 2}")

    async def probe():
        inner = loop.create_future()
        outer = asyncio.ensure_future(shield_(inner))
        await asyncio.sleep(0)
        outer.cancel()
        try:
            await outer
        except asyncio.CancelledError:
            pass
        ok = not inner.cancelled() and not inner.done()
        if not inner.done():
            inner.set_result(None)
        return ok

    check(loop.run_until_complete(probe()), "cancelling a shield() cancelled its inner future")
    return Measured(n, elapsed)


def shield(loop, n):
    """n sequential `await asyncio.shield(fut)` where fut is resolved by a
    call_soon callback; checks every result.  Untimed sanity check: a
    cancelled shield leaves its inner future alone."""
    return _shield(loop, n, "asyncio")


def shield_direct(loop, n):
    """shield through quickloop.shield instead of asyncio.shield, on
    whatever loop is under test."""
    return _shield(loop, n, "quickloop")


TASKGROUP_CHILDREN = 100


class _Boom(Exception):
    pass


def taskgroup_fail(loop, n, k=TASKGROUP_CHILDREN):
    """n rounds of: TaskGroup with k children sleeping 3600 s plus one child
    that fails after one yield.  Checks each round raises an ExceptionGroup
    holding exactly that failure and every sleeping child was cancelled.
    One op = one task group (k + 1 tasks)."""
    state = {"cancelled": 0, "caught": 0}

    async def sleeper():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise

    async def failing(i):
        await asyncio.sleep(0)
        raise _Boom(i)

    async def body():
        for i in range(n):
            try:
                async with asyncio.TaskGroup() as tg:
                    for _ in range(k):
                        tg.create_task(sleeper())
                    tg.create_task(failing(i))
            except* _Boom as eg:
                if len(eg.exceptions) == 1 and eg.exceptions[0].args == (i,):
                    state["caught"] += 1

    _, elapsed = run_timed(loop, body)
    check(state["caught"] == n, f"{state['caught']} of {n} rounds raised the expected ExceptionGroup")
    check(state["cancelled"] == n * k, f"{state['cancelled']} children cancelled, expected {n * k}")
    return Measured(n, elapsed, {"children_per_group": k})


QUEUE_MAXSIZE = 64


def queue(loop, n):
    """A producer task puts n items through asyncio.Queue(maxsize=64) to a
    consumer task; checks the consumer got all of them, in order."""
    got = {"count": 0, "misordered": 0}

    async def producer(q):
        for i in range(n):
            await q.put(i)
        await q.put(None)

    async def consumer(q):
        expect = 0
        while True:
            item = await q.get()
            if item is None:
                return
            if item != expect:
                got["misordered"] += 1
            expect = item + 1
            got["count"] += 1

    async def body():
        q = asyncio.Queue(maxsize=QUEUE_MAXSIZE)
        await asyncio.gather(producer(q), consumer(q))

    _, elapsed = run_timed(loop, body)
    check(got["count"] == n, f"consumer got {got['count']} items, expected {n}")
    check(got["misordered"] == 0, f"{got['misordered']} items arrived out of order")
    return Measured(n, elapsed)


TREE_BRANCHES = 6
TREE_DEPTH = 5  # 6**5 = 7,776 leaves, 9,330 tasks per tree


def tree_shape(n, depth=TREE_DEPTH, branches=TREE_BRANCHES):
    """(depth, trees) for a size of n leaves: full trees of the given depth,
    as many as fit in n (at least one); a shallower tree if n is smaller
    than one tree (tiny test sizes)."""
    while depth > 1 and branches**depth > n:
        depth -= 1
    return depth, max(1, n // branches**depth)


def _async_tree(loop, n, eager, depth=TREE_DEPTH, branches=TREE_BRANCHES):
    """eager: None (lazy tasks), "quickloop" or "asyncio": whose
    eager_task_factory the loop gets."""
    depth, trees = tree_shape(n, depth, branches)
    factory = None
    if eager == "quickloop":
        import quickloop

        factory = quickloop.eager_task_factory
    elif eager == "asyncio":
        factory = asyncio.eager_task_factory
    if factory is not None:
        loop.set_task_factory(factory)
    leaves = [0]

    async def leaf():
        await asyncio.sleep(0)
        leaves[0] += 1
        return 1

    async def recurse(level):
        if level == 0:
            return await leaf()
        results = await asyncio.gather(*[recurse(level - 1) for _ in range(branches)])
        if len(results) != branches:
            return -1  # poisons the sum: a gather that lost or invented results
        return sum(results)

    async def body():
        return [await recurse(depth) for _ in range(trees)]

    totals, elapsed = run_timed(loop, body)
    per_tree = branches**depth
    check(len(totals) == trees, f"{len(totals)} trees completed, expected {trees}")
    bad = sum(1 for t in totals if t != per_tree)
    check(bad == 0, f"{bad} of {trees} trees summed to the wrong leaf count (expected {per_tree} each)")
    check(leaves[0] == trees * per_tree, f"{leaves[0]} leaves ran, expected {trees * per_tree}")
    if factory is not None:
        check(loop.get_task_factory() is factory, "the loop dropped the eager task factory")
    tasks_per_tree = sum(branches**level for level in range(1, depth + 1))  # gather wraps every child
    return Measured(trees * tasks_per_tree, elapsed, {"depth": depth, "branches": branches, "trees": trees})


def async_tree(loop, n):
    """pyperformance's async_tree shape: a tree of coroutines (branching
    6, depth 5 unless n is smaller), every level gathering its children,
    every leaf doing `await asyncio.sleep(0)` and returning 1; n leaves in
    total, as whole trees run one after another.  Checks every tree sums to
    its leaf count and every leaf ran.  One op = one task (gather wraps each
    child coroutine in a task)."""
    return _async_tree(loop, n, eager=None)


def async_tree_eager(loop, n):
    """async_tree with loop.set_task_factory(quickloop.eager_task_factory)
    (3.12's eager tasks; asyncio.eager_task_factory does not exist on 3.11,
    and quickloop's works on any loop, so every loop runs it): each child
    runs synchronously up to its first real suspension.  Same checks."""
    return _async_tree(loop, n, eager="quickloop")


def async_tree_eager_asyncio(loop, n):
    """async_tree with loop.set_task_factory(asyncio.eager_task_factory),
    Python 3.12 and later: the unchanged asyncio API's eager tasks
    (asyncio.Task objects started eagerly) on whatever loop is under test.
    Same checks."""
    return _async_tree(loop, n, eager="asyncio")


def asyncio_eager_missing():
    """requires= for the workload using asyncio's own eager task factory."""
    if not hasattr(asyncio, "eager_task_factory"):
        return f"asyncio.eager_task_factory is new in Python 3.12 (this is {sys.version.split()[0]})"
    return None


_QL = {"requires": quickloop_missing}
_WRK = {"requires": net.wrk_missing, "wants_loop_name": True, "min_size": 1}

# name, function, full size, --summary size, unit, one-line title[, options].
# The summary sizes keep each --summary workload at a fraction of a second
# per repetition on the stdlib loop.
_REGISTRY = [
    ("call_soon", call_soon, 1_000_000, 200_000, "callbacks", "call_soon callbacks, FIFO-checked"),
    ("call_later", call_later, 100_000, 20_000, "timers", "timers with 0-10 ms delays, deadline order checked"),
    ("timer_cancel", timer_cancel, 1_000_000, 200_000, "timers", "call_later(60) armed then cancelled; peak RSS"),
    ("task_spawn_cancel", task_spawn_cancel, 100_000, 20_000, "tasks", "tasks asleep 3600 s, cancelled and gathered"),
    ("sleep0_pingpong", sleep0_pingpong, 200_000, 50_000, "switches", "two tasks alternating on sleep(0)"),
    ("async_tree", async_tree, 10 * 6**5, 2 * 6**5, "tasks", "pyperformance async_tree: gather tree, sleep(0) leaves"),
    ("async_tree_eager", async_tree_eager, 10 * 6**5, 2 * 6**5, "tasks",
     "async_tree with quickloop.eager_task_factory on the loop", _QL),
    ("async_tree_eager_asyncio", async_tree_eager_asyncio, 10 * 6**5, 2 * 6**5, "tasks",
     "async_tree with asyncio.eager_task_factory on the loop (3.12+)", {"requires": asyncio_eager_missing}),
    ("wait_for_fast", wait_for_fast, 50_000, 10_000, "calls", "asyncio.wait_for(fast(), 10), never times out"),
    ("wait_for_fast_direct", wait_for_fast_direct, 50_000, 10_000, "calls",
     "quickloop.wait_for(fast(), 10), never times out", _QL),
    ("timeout_fast", timeout_fast, 100_000, 20_000, "calls", "async with asyncio.timeout(10): await fast()"),
    ("timeout_fast_direct", timeout_fast_direct, 100_000, 20_000, "calls",
     "async with quickloop.timeout(10): await fast()", _QL),
    ("shield", shield, 100_000, 20_000, "calls", "await asyncio.shield(fut), fut resolved by call_soon"),
    ("shield_direct", shield_direct, 100_000, 20_000, "calls", "await quickloop.shield(fut), same", _QL),
    ("taskgroup_fail", taskgroup_fail, 2_000, 400, "groups", "TaskGroup: 100 sleepers + 1 failing child"),
    ("queue", queue, 500_000, 100_000, "items", "producer/consumer through Queue(maxsize=64)"),
    ("tcp_echo_protocol_1k", net._echo_workload("protocol", 1_000), 100_000, 20_000, "round trips",
     "loopback echo, Protocol, 1 kB messages, 4 connections"),
    ("tcp_echo_protocol_10k", net._echo_workload("protocol", 10_000), 50_000, 10_000, "round trips",
     "loopback echo, Protocol, 10 kB messages, 4 connections"),
    ("tcp_echo_protocol_100k", net._echo_workload("protocol", 100_000), 10_000, 2_000, "round trips",
     "loopback echo, Protocol, 100 kB messages, 4 connections"),
    ("tcp_echo_streams_1k", net._echo_workload("streams", 1_000), 100_000, 20_000, "round trips",
     "loopback echo, streams, 1 kB messages, 4 connections"),
    ("tcp_echo_streams_10k", net._echo_workload("streams", 10_000), 50_000, 10_000, "round trips",
     "loopback echo, streams, 10 kB messages, 4 connections"),
    ("tcp_echo_streams_100k", net._echo_workload("streams", 100_000), 10_000, 2_000, "round trips",
     "loopback echo, streams, 100 kB messages, 4 connections"),
    ("http_wrk", net.http_wrk, 5, 1, "requests", "HTTP/1.1 keep-alive server in a subprocess, wrk -c 50 -t 1 "
     "for SIZE seconds", _WRK),
]

WORKLOADS = {
    name: Workload(name, func, full, summary, unit, func.__doc__, title, **(opts[0] if opts else {}))
    for name, func, full, summary, unit, title, *opts in _REGISTRY
}
