"""The ready queue: FIFO order, iteration boundaries, volume, cross-thread wakeups.

Every test body runs on the stdlib loop (the referee) and on quickloop; the
quickloop-only checks skip on the stdlib with the reason.
"""
import threading

import pytest
from support import alarm_watchdog

TIMEOUT = 10.0


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")




def run_once(loop):
    """Run exactly what is queued now (stdlib semantics of stop() before run_forever)."""
    loop.stop()
    loop.run_forever()


# --------------------------------------------------------------------------
# order and iteration boundaries
# --------------------------------------------------------------------------

def test_fifo(loop):
    out = []
    for i in range(1000):
        loop.call_soon(out.append, i)
    run_once(loop)
    assert out == list(range(1000))


def test_fifo_across_call_soon_and_threadsafe(loop):
    out = []
    for i in range(300):
        if i % 3 == 0:
            loop.call_soon_threadsafe(out.append, i)
        else:
            loop.call_soon(out.append, i)
    run_once(loop)
    assert out == list(range(300))


def test_scheduled_during_iteration_runs_next_iteration(loop):
    out = []

    def a():
        out.append("a")
        loop.call_soon(out.append, "a-child")

    loop.call_soon(a)
    loop.call_soon(out.append, "b")
    run_once(loop)
    assert out == ["a", "b"]  # the child waits for the next iteration
    run_once(loop)
    assert out == ["a", "b", "a-child"]


def test_self_rescheduling_callbacks_interleave(loop):
    out = []
    n = 5

    def ping(i):
        out.append(("ping", i))
        if i + 1 < n:
            loop.call_soon(ping, i + 1)

    def pong(i):
        out.append(("pong", i))
        if i + 1 < n:
            loop.call_soon(pong, i + 1)
        else:
            loop.stop()

    loop.call_soon(ping, 0)
    loop.call_soon(pong, 0)
    loop.run_forever()
    expected = []
    for i in range(n):
        expected += [("ping", i), ("pong", i)]
    assert out == expected


def test_counter_shows_one_round_per_iteration(loop):
    """A callback rescheduling itself runs once per iteration, never twice in one."""
    seen = []
    state = {"iteration": 0}

    def tick():
        # runs first in every iteration: counts iterations
        state["iteration"] += 1
        if state["iteration"] < 10:
            loop.call_soon(tick)

    def worker(k):
        seen.append((state["iteration"], k))
        if k < 9:
            loop.call_soon(worker, k + 1)
        else:
            loop.stop()

    loop.call_soon(tick)
    loop.call_soon(worker, 0)
    loop.run_forever()
    assert seen == [(k + 1, k) for k in range(10)]


def test_due_timers_queue_behind_ready_callbacks(loop):
    """Stdlib order: callbacks already ready run before timers that became due."""
    out = []
    loop.call_at(loop.time() - 10, out.append, "timer")  # armed first, already due
    loop.call_soon(out.append, "soon-1")
    loop.call_soon(out.append, "soon-2")
    run_once(loop)
    assert out == ["soon-1", "soon-2", "timer"]


def test_many_callbacks_run_exactly_once(loop):
    n = 100_000
    counts = [0] * n

    def bump(i):
        counts[i] += 1

    for i in range(n):
        loop.call_soon(bump, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert counts == [1] * n
    # nothing left behind for a later iteration
    run_once(loop)
    assert counts == [1] * n


def test_many_callbacks_scheduled_from_callbacks(loop):
    n = 50_000
    counts = [0] * n

    def bump(i):
        counts[i] += 1

    def producer(start):
        for i in range(start, min(start + 1000, n)):
            loop.call_soon(bump, i)
        if start + 1000 < n:
            loop.call_soon(producer, start + 1000)
        else:
            loop.call_soon(loop.stop)

    loop.call_soon(producer, 0)
    loop.run_forever()
    assert counts == [1] * n


def test_stop_before_run_forever_is_one_iteration(loop, loop_kind):
    quickloop_only(loop_kind, "_iterations is quickloop introspection")
    out = []
    loop.call_soon(lambda: (out.append(1), loop.call_soon(out.append, 2)))
    before = loop._iterations
    run_once(loop)
    assert loop._iterations - before == 1
    assert out == [1]


def test_iterations_count_chain(loop, loop_kind):
    quickloop_only(loop_kind, "_iterations is quickloop introspection")
    n = 50

    def step(i):
        if i < n:
            loop.call_soon(step, i + 1)
        else:
            loop.stop()

    loop.call_soon(step, 0)
    before = loop._iterations
    loop.run_forever()
    # step(0) .. step(n): one iteration each, exactly as the stdlib's _run_once
    assert loop._iterations - before == n + 1


# --------------------------------------------------------------------------
# call_soon_threadsafe
# --------------------------------------------------------------------------

def test_threadsafe_from_thread_started_inside_loop_wakes_loop(loop):
    fut = loop.create_future()
    threads = []

    def start_thread():
        t = threading.Thread(
            target=lambda: loop.call_soon_threadsafe(fut.set_result, "from thread"),
            daemon=True)
        threads.append(t)
        t.start()

    loop.call_soon(start_thread)
    # no timer is pending: only the wakeup can end the wait
    with alarm_watchdog():
        assert loop.run_until_complete(fut) == "from thread"
    threads[0].join(TIMEOUT)


def test_threadsafe_ping_pong_wakes_sleeping_loop(loop):
    """Many round trips: most of them find the loop blocked in its poll."""
    rounds = 300
    go = threading.Event()
    state = {"fut": None, "stop": False}

    def deliver(i):
        state["fut"].set_result(i)

    def worker():
        for i in range(rounds):
            if not go.wait(TIMEOUT) or state["stop"]:
                return
            go.clear()
            loop.call_soon_threadsafe(deliver, i)

    async def main():
        got = []
        for i in range(rounds):
            state["fut"] = loop.create_future()
            go.set()
            got.append(await state["fut"])
        return got

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        with alarm_watchdog():
            assert loop.run_until_complete(main()) == list(range(rounds))
    finally:
        state["stop"] = True
        go.set()
        thread.join(TIMEOUT)


def test_threadsafe_many_producers(loop):
    n_threads, per_thread = 4, 2000
    total = n_threads * per_thread
    received = {t: [] for t in range(n_threads)}
    count = {"n": 0}
    done = loop.create_future()
    start = threading.Barrier(n_threads)

    def record(tid, i):
        received[tid].append(i)
        count["n"] += 1
        if count["n"] == total:
            done.set_result(None)

    def producer(tid):
        start.wait(TIMEOUT)
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, tid, i)

    threads = [threading.Thread(target=producer, args=(t,), daemon=True)
               for t in range(n_threads)]

    def start_all():
        for t in threads:
            t.start()

    loop.call_soon(start_all)
    try:
        with alarm_watchdog():
            loop.run_until_complete(done)
    finally:
        for t in threads:
            t.join(TIMEOUT)
    # exactly once each, and each producer's own order preserved
    assert received == {t: list(range(per_thread)) for t in range(n_threads)}
    run_once(loop)
    assert count["n"] == total


def test_threadsafe_while_not_running(loop):
    out = []
    t = threading.Thread(target=lambda: [loop.call_soon_threadsafe(out.append, i)
                                         for i in range(100)])
    t.start()
    t.join(TIMEOUT)
    assert out == []
    run_once(loop)
    assert out == list(range(100))


def test_threadsafe_handle_can_be_cancelled(loop):
    out = []
    h = loop.call_soon_threadsafe(out.append, "x")
    h.cancel()
    loop.call_soon_threadsafe(out.append, "y")
    run_once(loop)
    assert out == ["y"]

