"""Fault and load tests: allocation failures, floods, misbehaving peers and callbacks.

Every body that makes sense on both loops runs on the stdlib loop (the referee)
and on quickloop through the ``loop`` / ``loop_kind`` fixtures of conftest.py;
the MemoryError injection uses quickloop's C fault hook
(``quickloop._core._set_fault_countdown``) and is quickloop-only.

Nothing sleeps for timing luck: waits are on futures, events and barriers,
bounded by generous safety nets (a safety net that fires fails the test), and
no assertion is about how long something took.
"""
import asyncio
import collections
import functools
import gc
import inspect
import os
import platform
import signal
import socket
import struct
import threading
import time
import traceback
import weakref

import pytest

from conftest import make_loop
import support

try:
    import quickloop
    from quickloop import _core
except ImportError:  # reported by the tests that need it
    quickloop = None
    _core = None

try:  # pytest-timeout (the test extra) enforces the per-test bounds; optional here
    import pytest_timeout  # noqa: F401
    bounded = pytest.mark.timeout
except ImportError:
    def bounded(seconds):
        return lambda fn: fn

TIMEOUT = 30.0  # generous bound for anything that waits on another thread or process
run_until = functools.partial(support.run_until, timeout=TIMEOUT)
HOST = "127.0.0.1"

# x86_64: epoll_wait, epoll_pwait, epoll_pwait2 ; aarch64: epoll_pwait, epoll_pwait2
_EPOLL_SYSCALLS = {
    "x86_64": {"232", "281", "441"},
    "aarch64": {"22", "441"},
}.get(platform.machine())


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


# --------------------------------------------------------------------------- helpers

def recording_handler(loop):
    """Install an exception handler that records every context; return the list."""
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    return contexts


def describe(contexts):
    return [(c.get("message"), repr(c.get("exception"))) for c in contexts]


def wait_until_blocked_in_epoll(native_tid, limit=5.0):
    """Best effort: wait until the thread sits in an epoll wait syscall.

    Reads /proc/self/task/<tid>/syscall.  A condition wait, not a timing
    assumption: no result depends on it, it only makes the interesting path
    (an event arriving while the loop is blocked in epoll) the likely one.
    """
    if _EPOLL_SYSCALLS is None:
        return False
    path = f"/proc/self/task/{native_tid}/syscall"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if f.read().split()[0] in _EPOLL_SYSCALLS:
                    return True
        except (OSError, IndexError):
            return False
        time.sleep(0.0005)
    return False


# =========================================================================== MemoryError injection

FAULT_EXPECTED = (1, [0, 10, 20, 30], "timeout", 50, "timeout", 7, "cancelled", "timer",
                  ["chain3", "chain2", "chain1", "chain0", "done_cb7"])


def set_unless_done(fut, value):
    """A scheduled set_result that a cancellation may have overtaken (the
    faulted runs are cancelled at any point)."""
    if not fut.done():
        fut.set_result(value)


async def fault_workload(loop):
    """A small mixed workload with a deterministic result (FAULT_EXPECTED):
    call_soon, call_later (one cancelled), create_future, create_task, a
    callback that schedules more, cancel, gather, wait_for (expiring and not),
    asyncio.timeout, a done callback.

    The timeouts that must expire wait on futures nobody sets; the one that
    must not is armed on a task that is already done; nothing depends on how
    fast the machine is.
    """
    log = []
    fut1 = loop.create_future()
    loop.call_soon(set_unless_done, fut1, 1)
    timer_fired = loop.create_future()
    loop.call_later(0.001, set_unless_done, timer_fired, "timer")
    loop.call_later(3600, log.append, "never").cancel()

    def chain(k):  # a callback that schedules more
        log.append(f"chain{k}")
        if k:
            loop.call_soon(chain, k - 1)

    loop.call_soon(chain, 3)

    async def child(i):
        await asyncio.sleep(0.001 * (i % 2))
        f = loop.create_future()
        loop.call_soon(set_unless_done, f, i * 10)
        return await f

    async def never():
        await loop.create_future()

    tasks = [loop.create_task(child(i)) for i in range(4)]
    victim = loop.create_task(never())
    await asyncio.sleep(0)
    victim.cancel()
    gathered = await asyncio.gather(*tasks)
    try:
        await asyncio.wait_for(loop.create_future(), 0.001)
        to1 = "no timeout"
    except asyncio.TimeoutError:
        to1 = "timeout"
    # wait_for on a task that is done: its done-callback is queued before the
    # timer can fire (due timers queue behind ready callbacks), so no timeout
    # whatever the machine's speed, and a stuck run holds only a short timer
    done_child = loop.create_task(child(5))
    await asyncio.wait({done_child})
    r2 = await asyncio.wait_for(done_child, 0.05)
    try:
        async with asyncio.timeout(0.001):
            await loop.create_future()
        to2 = "no timeout"
    except TimeoutError:
        to2 = "timeout"
    f2 = loop.create_future()
    f2.add_done_callback(lambda f: log.append(f"done_cb{f.result()}"))
    loop.call_soon(set_unless_done, f2, 7)
    r3 = await f2
    try:
        await victim
        vc = "not cancelled"
    except asyncio.CancelledError:
        vc = "cancelled"
    timer = await timer_fired
    await asyncio.sleep(0)
    return (await fut1, gathered, to1, r2, to2, r3, vc, timer, log)


def _paused_countdown(fn, *args):
    """Call fn(*args) with the fault countdown paused (it consumes no point)."""
    left = _core._fault_countdown()
    _core._set_fault_countdown(0)
    try:
        return fn(*args)
    finally:
        _core._set_fault_countdown(left)


class StallWatchdog:
    """Stop the loop when the faulted workload cannot progress any more.

    A lost wake-up (a failed ready-queue push drops the callbacks of a
    future, as the stdlib's C futures do) leaves a task waiting forever.
    Every `period` seconds this checks loop._iterations: if only its own
    iteration ran since the last check, nothing else happened and the loop is
    stalled.  A false alarm on a starved machine only ends that run early
    ("stopped before Future completed"), which the test accepts as an
    outcome (the checks after every run still apply).  Re-arming runs with
    the countdown paused, so the watchdog never consumes a fault point.
    """

    def __init__(self, loop, period=0.05):
        self.loop = loop
        self.period = period
        self.stalled = False
        self.last = loop._iterations
        self.handle = loop.call_later(period, self._check)

    def _check(self):
        it = self.loop._iterations
        if it - self.last <= 1:
            self.stalled = True
            self.loop.stop()
            return
        self.last = it
        self.handle = _paused_countdown(self.loop.call_later, self.period, self._check)

    def cancel(self):
        self.handle.cancel()


def settle(loop, limit=15.0):
    """After a faulted run (countdown disarmed): let cancelled leftovers finish.

    Returns the tasks that are stuck: pending, with no timer armed and nothing
    changing for many iterations (nothing could ever wake them: no timers, no
    I/O, no other threads).  Fails if armed timers do not run out in `limit`.
    """
    async def _settle():
        me = asyncio.current_task()
        end = loop.time() + limit
        last, quiet = None, 0
        while True:
            await asyncio.sleep(0)
            pending = frozenset(t for t in asyncio.all_tasks(loop) if t is not me)
            if loop._timer_count == 0:
                if not pending:
                    return set()
                quiet = quiet + 1 if pending == last else 0
                if quiet >= 20:
                    return set(pending)
            else:
                quiet = 0
                await asyncio.sleep(0.005)  # the workload's timers are short: let them run out
            last = pending
            assert loop.time() < end, (
                f"leftovers did not settle: {loop._timer_count} timers, {len(pending)} tasks")

    task = loop.create_task(_settle())
    return loop.run_until_complete(task)


def _exc_chain(exc):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_memory_error(exc):
    return any(isinstance(e, MemoryError) for e in _exc_chain(exc))


def _loop_futures_alive(loop):
    """Futures and tasks of this loop that are still alive (after gc.collect())."""
    return [o for o in gc.get_objects()
            if isinstance(o, asyncio.Future) and o.get_loop() is loop]


def summarize_reports(contexts):
    """(message, exception repr, acceptable) for each exception-handler report.

    Acceptable: a MemoryError (or an error caused by one), or the report of a
    task destroyed while pending (one whose wake-up was lost, or whose
    creation failed half-way: the stdlib's C Task logs that too)."""
    out = []
    for ctx in contexts:
        exc = ctx.get("exception")
        msg = ctx.get("message", "")
        ok = (exc is not None and _is_memory_error(exc)) or (
            exc is None and msg == "Task was destroyed but it is pending!")
        detail = "".join(traceback.format_exception(exc)) if exc is not None and not ok else ""
        out.append((msg, repr(exc), ok, detail))
    return out


def cancel_all(loop):
    for task in asyncio.all_tasks(loop):
        task.cancel()


def faulted_run(loop, n):
    """Arm the countdown at n and run the workload, then clean up (disarmed).

    Returns plain data only: exceptions, contexts and tracebacks hold frames,
    hence futures, and are dropped here before the leftovers are collected.
    """
    contexts = recording_handler(loop)
    watchdog = StallWatchdog(loop)
    coro = fault_workload(loop)
    raised = None
    result = None
    _core._set_fault_countdown(n)
    try:
        result = loop.run_until_complete(coro)
    except MemoryError as exc:
        raised = exc
    except RuntimeError as exc:
        if not (watchdog.stalled and "stopped before Future completed" in str(exc)):
            raise
        raised = exc
    finally:
        left = _core._fault_countdown()
        _core._set_fault_countdown(0)
        watchdog.cancel()
    out = {
        "fired": left == 0,
        "raised": None if raised is None else repr(raised),
        "raised_memory_error": raised is not None and _is_memory_error(raised),
        "result": result,
        "stalled": watchdog.stalled,
    }
    raised = None
    cancel_all(loop)
    stuck = settle(loop)
    out["stuck"] = sorted(repr(t) for t in stuck)
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()  # no task ever took it (the fault hit create_task)
    del coro, stuck
    # The reports hold what they name (a handle, a task): summarise them and
    # let go, collect (stuck tasks are destroyed now, and reported), repeat.
    out["reports"] = []
    for _ in range(4):
        out["reports"] += summarize_reports(contexts)
        contexts.clear()
        gc.collect()
        if not contexts:
            break
    loop.set_exception_handler(None)
    return out


@bounded(120)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # "coroutine ... was never awaited"
@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_memory_error_injection_at_every_allocation_point(loop, loop_kind, debug):
    """For n = 1, 2, ...: the n-th C allocation point fails with MemoryError.

    Wherever the MemoryError surfaces (raised by a call inside the workload
    and out of run_until_complete, or delivered to the exception handler),
    the loop stays usable afterwards: the leftovers can be cancelled, the
    timers run out (loop._timer_count == 0), a fresh workload gives the exact
    expected result, and after gc.collect() no future or task of the loop is
    left alive.  Iterates until the countdown is no longer consumed by the
    workload, so every allocation point the workload reaches has failed once.
    A task left waiting forever by a lost wake-up (a failed ready-queue push
    drops a future's callbacks, as with the stdlib's C futures) is accepted:
    it must be reported as destroyed while pending, and collected.
    """
    quickloop_only(loop_kind, "quickloop._core._set_fault_countdown is quickloop's C fault hook")
    loop.set_debug(debug)
    if debug:
        loop.slow_callback_duration = 3600  # no slow-callback logs on a busy machine
    # reference run: how many allocation points the workload reaches
    _core._set_fault_countdown(10**9)
    try:
        assert run_until(loop, fault_workload(loop)) == FAULT_EXPECTED
    finally:
        points = 10**9 - _core._fault_countdown()
        _core._set_fault_countdown(0)
    assert points > 50, f"the workload reached only {points} allocation points"
    assert loop._timer_count == 0

    # Everything alive now is moved out of the collector's way (gc.freeze):
    # the many gc.collect() and gc.get_objects() below then only walk what
    # the runs create, and the leak check still sees every new future.
    gc.collect()
    gc.freeze()
    try:
        outcomes = run_fault_iterations(loop, points)
    finally:
        gc.unfreeze()
    assert outcomes["raised"] > 0 and outcomes["handler"] > 0, outcomes


def run_fault_iterations(loop, points):
    outcomes = collections.Counter()
    limit = 3 * points + 50  # the count varies a little with timing (timer firing order)
    n = 0
    false_alarms = 0
    while True:
        n += 1
        assert n <= limit, f"the armed countdown was still consumed at n={n}"
        run = faulted_run(loop, n)
        where = f"n={n} (of ~{points} points): {run}"
        bad = [r for r in run["reports"] if not r[2]]
        assert not bad, (where, bad)
        if not run["fired"] and run["stalled"]:
            # The watchdog stopped a run before its n-th point, and no fault
            # had fired: a run with no fault cannot lose a wake-up, so this
            # was a false alarm on a starved machine.  Run this n again.
            false_alarms += 1
            assert false_alarms <= 20, where
            n -= 1
            continue
        if not run["fired"]:
            # the workload reached fewer than n points: it ran clean
            assert run["raised"] is None and run["result"] == FAULT_EXPECTED, where
            assert not run["reports"], where
            break

        # the MemoryError surfaced somewhere
        in_handler = any(ok and exc != "None" for _, exc, ok, _ in run["reports"])
        if run["raised_memory_error"]:
            outcomes["raised"] += 1
        elif run["stalled"]:
            outcomes["stalled"] += 1  # a lost wake-up (or a watchdog false alarm)
        elif in_handler:
            outcomes["handler"] += 1
        else:
            # absorbed by the workload's own error handling: then it must
            # have completed, correctly
            outcomes["absorbed"] += 1
            assert run["result"] == FAULT_EXPECTED, where
        if run["raised"] is not None and not run["raised_memory_error"]:
            assert run["stalled"], where  # only the watchdog's stop is not a MemoryError
        if run["stuck"]:
            outcomes["stuck"] += 1
            destroyed = sum(r[0] == "Task was destroyed but it is pending!"
                            for r in run["reports"])
            # (run_until_complete's own task is exempt: _log_destroy_pending = False)
            others = [r for r in run["stuck"] if "coro=<fault_workload()" not in r]
            assert destroyed >= len(others), where

        # the loop is still usable and holds nothing back
        assert loop._timer_count == 0, where
        assert not loop.is_running() and not loop.is_closed(), where
        assert not asyncio.all_tasks(loop), where
        contexts = recording_handler(loop)
        assert run_until(loop, fault_workload(loop)) == FAULT_EXPECTED, where
        assert loop._timer_count == 0, where
        gc.collect()
        assert not contexts, (where, describe(contexts))
        alive = _loop_futures_alive(loop)
        assert not alive, (where, alive[:5])
        del alive
        loop.set_exception_handler(None)

    assert n > points // 2, (n, points)
    return outcomes


@bounded(60)
def test_fault_hook_countdown_semantics(loop, loop_kind):
    """The hook itself: the n-th point fails, once; 0 disarms; the loop goes on."""
    quickloop_only(loop_kind, "quickloop's C fault hook")
    try:
        _core._set_fault_countdown(3)
        assert _core._fault_countdown() == 3
        loop.call_soon(lambda: None)  # handle + ready push: 2 points
        assert _core._fault_countdown() == 1
        with pytest.raises(MemoryError):
            loop.create_future()
        assert _core._fault_countdown() == 0
        loop.create_future()  # disarmed after firing once
        _core._set_fault_countdown(1)
        with pytest.raises(MemoryError):
            loop.call_later(10, lambda: None)
        assert loop._timer_count == 0
        _core._set_fault_countdown(2)  # the timer handle is made, its heap push fails
        with pytest.raises(MemoryError):
            loop.call_later(10, lambda: None)
        assert loop._timer_count == 0
        _core._set_fault_countdown(5)
        _core._set_fault_countdown(0)
        assert _core._fault_countdown() == 0
        loop.call_soon(lambda: None)
    finally:
        _core._set_fault_countdown(0)
    assert run_until(loop, asyncio.sleep(0, "ok")) == "ok"


# =========================================================================== load

@bounded(120)
def test_100k_tasks_with_timeouts_half_expire(loop, loop_kind):
    """100,000 concurrent tasks, each a sleep inside asyncio.timeout (half) or
    asyncio.wait_for (half); half of each kind time out.  The ones that must
    time out sleep for an hour under a short timeout; the ones that must not
    sleep(0) under an hour's timeout: no outcome depends on speed."""
    n = 100_000
    outcome = collections.Counter()
    started = [0]
    all_started = loop.create_future()

    def mark_started():
        started[0] += 1
        if started[0] == n and not all_started.done():
            all_started.set_result(None)

    async def with_timeout(expire):
        mark_started()
        try:
            async with asyncio.timeout(0.05 if expire else 3600):
                await asyncio.sleep(3600 if expire else 0)
        except TimeoutError:
            outcome["timeout/expired"] += 1
            return "expired"
        outcome["timeout/ok"] += 1
        return "ok"

    async def with_wait_for(expire):
        mark_started()
        try:
            await asyncio.wait_for(asyncio.sleep(3600 if expire else 0), 0.05 if expire else 3600)
        except asyncio.TimeoutError:
            outcome["wait_for/expired"] += 1
            return "expired"
        outcome["wait_for/ok"] += 1
        return "ok"

    async def main():
        tasks = []
        for i in range(n):
            fn = with_timeout if i % 2 == 0 else with_wait_for
            tasks.append(loop.create_task(fn(i % 4 < 2)))
        await all_started
        results = await asyncio.gather(*tasks)
        assert all(t.done() and not t.cancelled() for t in tasks)
        return collections.Counter(results)

    results = run_until(loop, main(), timeout=100)
    assert results == {"ok": n // 2, "expired": n // 2}
    assert outcome == {"timeout/ok": n // 4, "timeout/expired": n // 4,
                       "wait_for/ok": n // 4, "wait_for/expired": n // 4}
    assert not asyncio.all_tasks(loop)
    if loop_kind == "quickloop":
        assert loop._timer_count == 0


@bounded(120)
def test_call_soon_threadsafe_flood_from_8_threads_with_timers(loop):
    """8 threads x 20,000 call_soon_threadsafe at full speed while the loop
    also runs a timer chain: every callback runs exactly once, in order per
    thread."""
    n_threads, per_thread = 8, 20_000
    total = n_threads * per_thread
    next_seq = [0] * n_threads
    errors = []
    seen = [0]
    done = loop.create_future()
    barrier = threading.Barrier(n_threads + 1)
    ticks = [0]
    stop_ticking = False

    def cb(t, seq):
        if seq != next_seq[t]:
            errors.append((t, seq, next_seq[t]))
        next_seq[t] = seq + 1
        seen[0] += 1
        if seen[0] == total and not done.done():
            done.set_result(None)

    def tick():
        ticks[0] += 1
        if not stop_ticking:
            loop.call_later(0.0005, tick)

    def worker(t):
        barrier.wait(TIMEOUT)
        for seq in range(per_thread):
            loop.call_soon_threadsafe(cb, t, seq)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()

    async def main():
        nonlocal stop_ticking
        loop.call_later(0.0005, tick)
        await loop.run_in_executor(None, barrier.wait, TIMEOUT)
        await done
        for th in threads:
            await loop.run_in_executor(None, th.join, TIMEOUT)
        # anything still queued (a duplicate would be) gets some iterations to
        # run, and the timer chain is still going
        t0 = ticks[0]
        while ticks[0] < t0 + 3:
            await asyncio.sleep(0.001)
        stop_ticking = True

    try:
        run_until(loop, main(), timeout=100)
    finally:
        barrier.abort()  # releases workers still waiting if main() failed early
        for th in threads:
            th.join(TIMEOUT)
    assert not errors, f"out of order or duplicated: {errors[:10]}"
    assert seen[0] == total
    assert next_seq == [per_thread] * n_threads


# =========================================================================== signals

@pytest.fixture
def restore_signals():
    sigs = (signal.SIGUSR1, signal.SIGUSR2)
    saved = {s: signal.getsignal(s) for s in sigs}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(wakeup)


@bounded(60)
def test_signal_storm_while_loop_waits(loop, restore_signals):
    """A thread sends SIGUSR1 to the main thread repeatedly while the loop
    waits in epoll (and runs a timer chain).  Coalescing is allowed, so the
    storm must be seen at least once; after a barrier one final signal must
    be seen too, and the loop keeps working."""
    main_ident = threading.main_thread().ident
    assert threading.get_ident() == main_ident
    count = [0]
    waiters = []  # (threshold, future)

    def on_signal():
        count[0] += 1
        for threshold, fut in list(waiters):
            if count[0] >= threshold and not fut.done():
                fut.set_result(count[0])

    def wait_count(threshold):
        fut = loop.create_future()
        waiters.append((threshold, fut))
        if count[0] >= threshold:
            fut.set_result(count[0])
        return fut

    loop.add_signal_handler(signal.SIGUSR1, on_signal)
    storm_done = loop.create_future()
    go_final = threading.Event()
    loop_tid = threading.get_native_id()
    sent = [0]
    ticks = [0]

    def sender():
        try:
            for i in range(3000):
                signal.pthread_kill(main_ident, signal.SIGUSR1)
                sent[0] += 1
                if i % 50 == 0:
                    time.sleep(0)  # let the loop get back into epoll now and then
            loop.call_soon_threadsafe(storm_done.set_result, sent[0])
            if not go_final.wait(TIMEOUT):
                return
            wait_until_blocked_in_epoll(loop_tid)
            signal.pthread_kill(main_ident, signal.SIGUSR1)
        except BaseException as exc:  # noqa: BLE001
            loop.call_soon_threadsafe(
                lambda exc=exc: storm_done.done() or storm_done.set_exception(exc))

    def tick():
        ticks[0] += 1
        loop.call_later(0.001, tick)

    async def main():
        loop.call_soon(tick)
        thread = threading.Thread(target=sender)
        thread.start()
        try:
            assert await storm_done == 3000
            first = await wait_count(1)  # the storm was seen (coalesced or not)
            for _ in range(5):
                await asyncio.sleep(0)
            # barrier: the storm is fully handled; now one more signal
            before = count[0]
            go_final.set()
            after = await wait_count(before + 1)
            # the loop keeps working: timers and call_soon
            t0 = ticks[0]
            while ticks[0] < t0 + 3:
                await asyncio.sleep(0.001)
            return first, before, after
        finally:
            go_final.set()
            await loop.run_in_executor(None, thread.join, TIMEOUT)

    first, before, after = run_until(loop, main())
    assert 1 <= first <= before < after <= 3001
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


# =========================================================================== raising callbacks

@bounded(60)
def test_callback_raising_every_time_10k(loop):
    """A callback raising on every call, scheduled 10,000 times (half as a
    batch, half re-scheduling itself): the exception handler gets each error
    with its handle, in order, and the loop keeps going."""
    n = 10_000
    contexts = recording_handler(loop)
    calls = [0]

    class Boom(Exception):
        pass

    def raiser(i):
        calls[0] += 1
        raise Boom(i)

    def raiser_chain(i):
        calls[0] += 1
        if i + 1 < n // 2:
            loop.call_soon(raiser_chain, i + 1)
        raise Boom(n // 2 + i)

    async def main():
        for i in range(n // 2):
            loop.call_soon(raiser, i)
        loop.call_soon(raiser_chain, 0)
        while calls[0] < n:
            await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)
        # still working afterwards
        return await asyncio.wait_for(asyncio.sleep(0.001, "alive"), TIMEOUT)

    assert run_until(loop, main()) == "alive"
    assert calls[0] == n
    assert len(contexts) == n
    batch = [c for c in contexts if c["exception"].args[0] < n // 2]
    chain = [c for c in contexts if c["exception"].args[0] >= n // 2]
    assert [c["exception"].args[0] for c in batch] == list(range(n // 2))
    assert [c["exception"].args[0] for c in chain] == list(range(n // 2, n))
    for c in contexts:
        assert type(c["exception"]) is Boom
        assert c["message"].startswith("Exception in callback ")
        assert "raiser" in c["message"]
        assert c["handle"] is not None
    loop.set_exception_handler(None)


# =========================================================================== protocols and peers

class RaisingProtocol(asyncio.Protocol):
    """data_received raises on a b"boom" message, echoes anything else."""

    def __init__(self, loop, lost_log):
        self.lost = loop.create_future()
        self.lost_log = lost_log
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if b"boom" in data:
            raise ZeroDivisionError("data_received failed")
        self.transport.write(data)

    def connection_lost(self, exc):
        self.lost_log.append(exc)
        self.lost.set_result(exc)


async def _recv_until_eof(loop, sock):
    chunks = []
    while True:
        try:
            data = await loop.sock_recv(sock, 65536)
        except ConnectionResetError:
            chunks.append(b"<reset>")
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def data_received_raises_summary(loop):
    """What a server whose protocol raises in data_received does, summarised."""
    contexts = recording_handler(loop)
    lost_log = []
    protos = []

    def factory():
        p = RaisingProtocol(loop, lost_log)
        protos.append(p)
        return p

    async def client(msg):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, addr)
            await loop.sock_sendall(sock, msg)
            if msg == b"boom":
                return await _recv_until_eof(loop, sock)
            got = b""
            while len(got) < len(msg):
                data = await loop.sock_recv(sock, 65536)
                assert data, "closed early"
                got += data
            sock.shutdown(socket.SHUT_WR)
            return got + b"|" + await _recv_until_eof(loop, sock)
        finally:
            sock.close()

    async def main():
        nonlocal addr
        server = await loop.create_server(factory, HOST, 0)
        addr = server.sockets[0].getsockname()
        try:
            bad = await client(b"boom")
            # the server keeps serving: several more clients, one after another
            # and concurrently, with another failing one among them
            good1 = await client(b"hello")
            results = await asyncio.gather(client(b"a" * 1000), client(b"boom"), client(b"xyz"))
            await asyncio.gather(*(p.lost for p in protos))
            return bad, good1, results
        finally:
            server.close()
            await server.wait_closed()

    addr = None
    bad, good1, results = run_until(loop, main())
    loop.set_exception_handler(None)
    reports = []
    for c in contexts:
        reports.append((c.get("message"), type(c.get("exception")).__name__,
                        str(c.get("exception")),
                        c.get("protocol") is not None, c.get("transport") is not None,
                        c.get("transport").is_closing() if c.get("transport") else None))
    return {
        "bad_client_got": bad,
        "good": [good1] + results,
        "reports": sorted(reports),
        "lost": sorted(type(e).__name__ for e in lost_log),
        "transports_closing": [p.transport.is_closing() for p in protos],
    }


@bounded(60)
def test_data_received_raises_closes_transport_and_server_keeps_serving(loop, loop_kind):
    summary = data_received_raises_summary(loop)
    assert summary["bad_client_got"] == b""  # closed, nothing written
    assert summary["good"] == [b"hello|", b"a" * 1000 + b"|", b"", b"xyz|"]
    report = ("Fatal error: protocol.data_received() call failed.", "ZeroDivisionError",
              "data_received failed", True, True, True)
    assert summary["reports"] == [report, report]
    assert summary["lost"] == ["NoneType", "NoneType", "NoneType", "ZeroDivisionError",
                               "ZeroDivisionError"]
    assert all(summary["transports_closing"])
    if loop_kind == "quickloop":
        stdlib_loop = make_loop("stdlib")
        try:
            assert summary == data_received_raises_summary(stdlib_loop)
        finally:
            stdlib_loop.close()
            asyncio.set_event_loop(None)


class StreamingServerProtocol(asyncio.Protocol):
    """Writes `total` bytes in chunks to every peer, honouring pause_writing;
    after EOF from the peer and the whole stream, it answers with a summary
    (b"|got:<bytes received>") and closes."""

    CHUNK = 16 * 1024
    HIGH = 64 * 1024

    def __init__(self, loop, on_made, total):
        self.loop = loop
        self.on_made = on_made  # called with the protocol once connected
        self.total = total
        self.sent = 0
        self.eof = False
        self.paused = False
        self.events = []
        self.max_buffer = 0
        self.received = bytearray()
        self.lost = loop.create_future()
        self.first_pause = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        # a small kernel send buffer, so a peer that never reads stops the
        # stream soon (the kernel would otherwise absorb megabytes first)
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        transport.set_write_buffer_limits(high=self.HIGH)
        self.events.append("made")
        self.loop.call_soon(self.pump)
        self.on_made(self)

    def pump(self):
        tr = self.transport
        while not self.paused and self.sent < self.total and not tr.is_closing():
            n = min(self.CHUNK, self.total - self.sent)
            tr.write(b"d" * n)
            self.sent += n
            self.max_buffer = max(self.max_buffer, tr.get_write_buffer_size())
        if self.eof and self.sent == self.total and not tr.is_closing():
            tr.write(b"|got:%d" % len(self.received))
            tr.close()

    def pause_writing(self):
        self.paused = True
        self.events.append("pause")
        if not self.first_pause.done():
            self.first_pause.set_result(self.transport.get_write_buffer_size())

    def resume_writing(self):
        self.paused = False
        self.events.append("resume")
        self.loop.call_soon(self.pump)

    def data_received(self, data):
        self.received += data

    def eof_received(self):
        self.events.append("eof")
        self.eof = True
        self.pump()  # answers once the whole stream is written
        return True

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


@bounded(90)
def test_misbehaving_peers_reset_half_close_never_read(loop):
    """One server, misbehaving peers: one never reads (connected throughout),
    and at the same time one resets the connection (SO_LINGER 0) after
    reading a little, one half-closes and reads everything, one behaves.
    The never-reading peer makes the server pause (pause_writing) with the
    write buffer bounded near the high-water mark, not growing; the others
    are served; every connection is accounted for."""
    contexts = recording_handler(loop)
    accepted = {}  # peer address -> future of its server protocol
    total = 4 * 1024 * 1024

    def proto_for(sock):
        """The server protocol of this client socket, once connected."""
        return accepted.setdefault(sock.getsockname(), loop.create_future())

    def on_made(proto):
        accepted.setdefault(proto.peer, loop.create_future()).set_result(proto)

    async def connect(rcvbuf=None):
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, addr)
        return sock

    async def read_exactly(sock, n):
        got = 0
        while got < n:
            data = await loop.sock_recv(sock, min(65536, n - got))
            assert data, "server closed early"
            got += len(data)
        return got

    async def resetting_peer():
        sock = await connect()
        proto = await proto_for(sock)
        await read_exactly(sock, 100_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        return await proto.lost

    async def half_closing_peer():
        sock = await connect()
        proto = await proto_for(sock)
        await loop.sock_sendall(sock, b"request")
        sock.shutdown(socket.SHUT_WR)
        try:
            got = await _recv_until_eof(loop, sock)
        finally:
            sock.close()
        assert await proto.lost is None
        return got

    async def good_peer():
        sock = await connect()
        proto = await proto_for(sock)
        try:
            n = await read_exactly(sock, total)
            sock.shutdown(socket.SHUT_WR)
            tail = await _recv_until_eof(loop, sock)
        finally:
            sock.close()
        assert await proto.lost is None
        return n, tail

    async def main():
        nonlocal addr
        server = await loop.create_server(
            lambda: StreamingServerProtocol(loop, on_made, total), HOST, 0)
        addr = server.sockets[0].getsockname()
        try:
            # never reads: small receive buffer, never touched until the end
            idle = await connect(rcvbuf=4096)
            idle_proto = await proto_for(idle)
            paused_at = await idle_proto.first_pause
            reset_exc, half_got, (good_len, good_tail) = await asyncio.gather(
                resetting_peer(), half_closing_peer(), good_peer())
            # the never-reading peer is still paused, its buffer still bounded
            assert not idle_proto.lost.done()
            assert idle_proto.paused
            idle_buffer = idle_proto.transport.get_write_buffer_size()
            sent_while_idle = idle_proto.sent
            idle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            idle.close()
            idle_exc = await idle_proto.lost
            return (paused_at, idle_buffer, sent_while_idle, idle_proto, reset_exc, half_got,
                    good_len, good_tail, idle_exc)
        finally:
            server.close()
            await server.wait_closed()

    addr = None
    (paused_at, idle_buffer, sent_while_idle, idle_proto, reset_exc, half_got, good_len,
     good_tail, idle_exc) = run_until(loop, main(), timeout=80)
    high, chunk = StreamingServerProtocol.HIGH, StreamingServerProtocol.CHUNK
    # the never-reading peer: paused, the buffer bounded near the high-water mark
    assert high < paused_at <= high + chunk
    assert idle_proto.max_buffer <= high + chunk
    assert high // 4 < idle_buffer <= high + chunk  # still above the low-water mark
    assert sent_while_idle < total // 4  # it stopped writing: far from the whole stream
    assert idle_proto.events[:2] == ["made", "pause"]
    assert "resume" not in idle_proto.events[:3]
    assert idle_exc is None or isinstance(idle_exc, (ConnectionResetError, BrokenPipeError))
    # the resetting peer: the connection is lost with a reset (or found closed)
    assert reset_exc is None or isinstance(reset_exc, (ConnectionResetError, BrokenPipeError))
    # the half-closing peer: got the whole stream, then the server's answer, then EOF
    assert half_got == b"d" * total + b"|got:7"
    assert good_len == total and good_tail == b"|got:0"
    # reset-type errors are not "unexpected": the selector transport only logs them in debug
    assert not contexts, describe(contexts)
    loop.set_exception_handler(None)


# =========================================================================== fork

@bounded(60)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_inside_callback_both_loops_keep_running(loop, loop_kind):
    """os.fork() from inside a callback of a running loop with timers and
    tasks in flight.  The child goes on in its (still running) loop: a timer
    chain, call_soon_threadsafe from a new thread, a task; it exits 0 from a
    callback.  The parent's loop keeps running concurrently (its own timers
    and tasks) and collects the child's report without blocking."""
    parent_pid = os.getpid()
    report_r, report_w = os.pipe()
    forked = loop.create_future()
    parent_ticks = [0]

    def child_exit(ok, msg=""):
        try:
            os.write(report_w, (b"OK" if ok else b"FAIL\n") + msg.encode())
        finally:
            os._exit(0 if ok else 1)

    def child_main():
        # In the child, inside the forker callback of the running loop.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(40)  # a stuck child dies; the parent sees the signal
        os.close(report_r)
        loop.set_exception_handler(
            lambda lp, ctx: child_exit(False, f"exception handler: {ctx!r}"))
        loop.call_later(30, child_exit, False, "child safety net expired")
        got = []
        timer_done = loop.create_future()
        thread_done = loop.create_future()

        def child_tick(k):
            got.append(f"tick{k}")
            if k < 5:
                loop.call_later(0.001, child_tick, k + 1)
            else:
                timer_done.set_result(None)

        def worker():
            for i in range(1000):
                loop.call_soon_threadsafe(got.append, i)
            loop.call_soon_threadsafe(thread_done.set_result, None)

        async def child_task():
            await timer_done
            await thread_done
            t.join(TIMEOUT)
            nums = [x for x in got if isinstance(x, int)]
            assert nums == list(range(1000)), nums[:20]
            assert [x for x in got if isinstance(x, str)] == [f"tick{k}" for k in range(6)]
            # (loop APIs only: in 3.11 the running-loop record carries the pid
            # that set it, so get_running_loop() and asyncio.sleep() fail here)
            later = loop.create_future()
            loop.call_later(0.001, later.set_result, "child ok")
            return await later

        def on_done(task):
            if task.cancelled() or task.exception() is not None:
                child_exit(False, "".join(traceback.format_exception(task.exception()))
                           if not task.cancelled() else "cancelled")
            elif task.result() != "child ok":
                child_exit(False, repr(task.result()))
            else:
                child_exit(True)

        if loop_kind == "stdlib":
            # the stdlib loop shares its self-pipe and epoll with the parent,
            # so a wake-up byte can be drained by the parent: keep a ticker
            def keepalive():
                loop.call_later(0.01, keepalive)
            keepalive()
        loop.call_later(0.001, child_tick, 0)
        t = threading.Thread(target=worker)
        t.start()
        loop.create_task(child_task()).add_done_callback(on_done)

    def forker():
        pid = os.fork()
        if pid == 0:
            try:
                child_main()
            except BaseException:  # noqa: BLE001
                child_exit(False, traceback.format_exc())
            return  # back into the running loop, in the child
        forked.set_result(pid)

    def parent_tick():
        parent_ticks[0] += 1
        loop.call_later(0.001, parent_tick)

    def collect_child(pid):
        # runs in a thread of the parent
        chunks = []
        while True:
            data = os.read(report_r, 65536)
            if not data:
                break
            chunks.append(data)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")

    async def busy(i):
        for _ in range(20):
            await asyncio.sleep(0.001)
        return i

    async def main():
        parent_tick()
        busy_tasks = [loop.create_task(busy(i)) for i in range(10)]
        loop.call_soon(forker)
        pid = await forked
        os.close(report_w)
        collector = loop.run_in_executor(None, collect_child, pid)
        more = [loop.create_task(busy(i)) for i in range(10, 20)]
        code, report = await collector
        results = await asyncio.gather(*busy_tasks, *more)
        t0 = parent_ticks[0]
        while parent_ticks[0] < t0 + 3:
            await asyncio.sleep(0.001)
        return code, report, results

    try:
        code, report, results = run_until(loop, main(), timeout=50)
    finally:
        if os.getpid() != parent_pid:  # the child escaped its loop: never run pytest here
            child_exit(False, "child left run_until_complete()")
    assert code == 0 and report == "OK", f"child exit code {code}, report:\n{report}"
    assert results == list(range(20))


# ======================================================================= close with pending work

def close_with_pending_summary(kind):
    """Close a loop with pending tasks (started and not) and pending callbacks;
    count what the exception handler reports once everything is collected."""
    loop = make_loop(kind)
    contexts = recording_handler(loop)
    ran = []

    class Callback:
        def __call__(self):
            ran.append(True)

    async def waiter(fut):
        await fut

    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        started = [loop.create_task(waiter(loop.create_future())) for _ in range(5)]
        started += [loop.create_task(sleeper()) for _ in range(3)]
        await asyncio.sleep(0)  # let them start and block
        assert not any(t.done() for t in started)
        return len(started)

    cb = Callback()
    cb_ref = weakref.ref(cb)
    n_started = run_until(loop, main())
    # with the loop stopped: tasks that never start, callbacks that never run
    for _ in range(4):
        loop.create_task(waiter(loop.create_future()))
    for _ in range(6):
        loop.call_soon(cb)
    loop.call_later(3600, cb)
    del cb
    loop.close()
    gc.collect()
    gc.collect()
    messages = collections.Counter(c.get("message") for c in contexts)
    summary = {
        "started": n_started,
        "messages": dict(messages),
        "task_in_every_report": all(isinstance(c.get("task"), asyncio.Task) for c in contexts
                                    if c.get("message") == "Task was destroyed but it is pending!"),
        "callbacks_ran": len(ran),
        "callback_dropped": cb_ref() is None,
        "closed": loop.is_closed(),
    }
    contexts.clear()
    return summary


@bounded(60)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_close_with_pending_tasks_and_callbacks_reports_as_stdlib(loop_kind):
    summary = close_with_pending_summary(loop_kind)
    assert summary == {
        "started": 8,
        "messages": {"Task was destroyed but it is pending!": 12},
        "task_in_every_report": True,
        "callbacks_ran": 0,
        "callback_dropped": True,
        "closed": True,
    }
    if loop_kind == "quickloop":
        assert summary == close_with_pending_summary("stdlib")
    asyncio.set_event_loop(None)


def test_due_timer_survives_a_failed_move_to_the_ready_queue():
    """A due timer leaves the heap only when the ready queue has room for it:
    a MemoryError while moving it must not lose it (found by the fault test)."""
    if quickloop is None:
        pytest.skip("quickloop not importable")
    core = quickloop._core
    loop = quickloop.new_event_loop()
    fired = []

    def fill_then_arm():
        # The timer is due next iteration; the ring is then exactly full
        # (its first capacity is 64), so moving the timer needs to grow it,
        # and that growth is the one allocation made to fail.
        loop.call_later(0, fired.append, "timer")
        for _ in range(64):
            loop.call_soon(lambda: None)
        core._set_fault_countdown(1)

    try:
        loop.call_soon(fill_then_arm)
        try:
            with pytest.raises(MemoryError):
                loop.run_forever()
        finally:
            core._set_fault_countdown(0)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert fired == ["timer"]
        assert loop._timer_count == 0
    finally:
        loop.close()


@pytest.mark.parametrize("how", ["set_result", "set_exception", "cancel"])
def test_memory_error_while_scheduling_callbacks_loses_none(how):
    """A future with more done callbacks than the ready ring has room for: when
    growing the ring fails, the future stays pending with every callback, and
    completing it again runs them all (before the fix it was left done with
    all but the first 64 callbacks lost, and a task awaiting it never woke)."""
    if quickloop is None:
        pytest.skip("quickloop not importable")
    core = quickloop._core
    loop = quickloop.new_event_loop()
    ran = []
    try:
        fut = loop.create_future()
        for i in range(200):
            fut.add_done_callback(lambda f, i=i: ran.append(i))
        complete = {"set_result": lambda: fut.set_result(1),
                    "set_exception": lambda: fut.set_exception(ValueError("x")),
                    "cancel": lambda: fut.cancel()}[how]
        core._set_fault_countdown(1)
        try:
            with pytest.raises(MemoryError):
                complete()
        finally:
            core._set_fault_countdown(0)
        assert not fut.done()
        complete()
        loop.run_until_complete(asyncio.sleep(0))
        assert ran == list(range(200))
        if how == "set_exception":
            fut.exception()
    finally:
        loop.close()
