"""Timers: call_later / call_at, deadlines, ordering, cancellation.

Every test body runs on the stdlib loop (the referee) and on quickloop; the few
quickloop-only checks skip on the stdlib with the reason.
"""
import asyncio
import gc
import math
import os
import random
import threading
import tracemalloc

import pytest
from support import alarm_watchdog

TIMEOUT = 10.0


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


def noop(*args):
    pass




def run_until_fired(loop, handles_or_count, fired, timeout=TIMEOUT):
    """Run the loop until len(fired) reaches the wanted count (with a watchdog)."""
    want = handles_or_count if isinstance(handles_or_count, int) else len(handles_or_count)
    done = loop.create_future()

    def check():
        if len(fired) >= want:
            if not done.done():
                done.set_result(None)
        else:
            loop.call_later(0.001, check)

    def watchdog():
        if not done.done():
            done.set_exception(AssertionError(f"only {len(fired)} of {want} timers fired"))

    loop.call_soon(check)
    wd = loop.call_later(timeout, watchdog)
    loop.run_until_complete(done)
    wd.cancel()


# --------------------------------------------------------------------------
# when()
# --------------------------------------------------------------------------

def test_call_later_when(loop):
    t0 = loop.time()
    handle = loop.call_later(5, noop)
    t1 = loop.time()
    assert t0 + 5 <= handle.when() <= t1 + 5
    handle.cancel()


def test_call_at_when(loop):
    deadline = loop.time() + 123.25
    handle = loop.call_at(deadline, noop)
    assert handle.when() == deadline
    handle.cancel()


def test_when_on_cancelled_timer(loop):
    deadline = loop.time() + 42.5
    handle = loop.call_at(deadline, noop)
    handle.cancel()
    assert handle.cancelled()
    assert handle.when() == deadline


def test_when_after_firing(loop):
    fired = []
    deadline = loop.time()
    handle = loop.call_at(deadline, fired.append, 1)
    run_until_fired(loop, 1, fired)
    assert handle.when() == deadline


def test_timer_handle_cancel_api(loop):
    handle = loop.call_later(3600, noop)
    assert handle.cancelled() is False
    handle.cancel()
    assert handle.cancelled() is True
    handle.cancel()
    assert handle.cancelled() is True


# --------------------------------------------------------------------------
# ordering
# --------------------------------------------------------------------------

def test_due_timers_fire_in_deadline_order(loop):
    """Deadlines already in the past, armed in shuffled order: one iteration, sorted."""
    fired = []
    base = loop.time() - 100
    keys = list(range(200))
    random.Random(1234).shuffle(keys)
    for k in keys:
        loop.call_at(base + k * 0.01, fired.append, k)
    run_until_fired(loop, 200, fired)
    assert fired == sorted(keys)


def test_future_timers_fire_in_deadline_order(loop):
    fired = []
    keys = list(range(1, 31))
    random.Random(99).shuffle(keys)
    now = loop.time()
    for k in keys:
        loop.call_at(now + k * 0.001, fired.append, k)
    run_until_fired(loop, 30, fired)
    assert fired == sorted(keys)


def test_call_later_delays_fire_in_order(loop):
    fired = []
    delays = [0.02, 0.0, 0.01, 0.005, 0.015, 0.001]
    for d in delays:
        loop.call_later(d, fired.append, d)
    run_until_fired(loop, len(delays), fired)
    assert fired == sorted(delays)


def test_many_due_timers_with_cancellations_fire_sorted(loop):
    rng = random.Random(7)
    base = loop.time() - 1000
    keys = rng.sample(range(1_000_000), 5000)
    handles = {k: loop.call_at(base + k * 1e-4, noop) for k in keys}
    fired = []
    for k, h in handles.items():
        h.cancel()
    # re-arm the survivors with a recording callback, cancel every third again
    survivors = []
    for i, k in enumerate(keys):
        h = loop.call_at(base + k * 1e-4, fired.append, k)
        if i % 3 == 0:
            h.cancel()
        else:
            survivors.append(k)
    run_until_fired(loop, len(survivors), fired)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert fired == sorted(survivors)


def test_cancellations_anywhere_in_a_deep_heap_keep_the_order(loop, loop_kind):
    """Timers cancelled at random places of a large heap (many equal deadlines,
    arming and cancelling interleaved): the rest fire in deadline order, and on
    quickloop equal deadlines in arming order."""
    rng = random.Random(2026)
    base = loop.time() - 1000   # every timer is already due
    fired, armed = [], []
    for seq in range(20000):
        k = rng.randrange(3000)
        armed.append((k, seq, loop.call_at(base + k * 1e-3, fired.append, (k, seq))))
        if rng.random() < 0.4:
            armed.pop(rng.randrange(len(armed)))[2].cancel()
    survivors = sorted((k, seq) for k, seq, _ in armed)
    run_until_fired(loop, len(survivors), fired)
    assert sorted(fired) == survivors
    assert [k for k, _ in fired] == [k for k, _ in survivors]
    if loop_kind != "stdlib":   # the stdlib's heapq is not stable
        assert fired == survivors


def test_equal_deadlines_all_fire_between_neighbours(loop):
    """Same deadline: each fires exactly once, after earlier and before later deadlines.

    (The relative order among equal deadlines is not defined by the stdlib: its heapq
    is not stable.  quickloop's FIFO guarantee is tested separately.)
    """
    fired = []
    deadline = loop.time() + 0.002
    loop.call_at(deadline - 0.001, fired.append, "earlier")
    for i in range(100):
        loop.call_at(deadline, fired.append, i)
    loop.call_at(deadline + 0.001, fired.append, "later")
    run_until_fired(loop, 102, fired)
    assert fired[0] == "earlier"
    assert fired[-1] == "later"
    assert sorted(fired[1:-1]) == list(range(100))


def test_equal_deadlines_fire_in_arming_order(loop, loop_kind):
    quickloop_only(loop_kind, "the stdlib's heapq is not stable, so timers with equal "
                              "deadlines fire in an undefined order there; quickloop "
                              "guarantees arming order")
    fired = []
    deadline = loop.time() + 0.002
    for i in range(1000):
        loop.call_at(deadline, fired.append, i)
    past = loop.time() - 5
    for i in range(1000, 1100):
        loop.call_at(past, fired.append, i)
    run_until_fired(loop, 1100, fired)
    assert fired == list(range(1000, 1100)) + list(range(1000))


# --------------------------------------------------------------------------
# never early
# --------------------------------------------------------------------------

def test_timers_never_fire_early(loop):
    records = []

    def cb(handle_box):
        records.append((loop.time(), handle_box[0].when()))

    delays = [0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02]
    for d in delays:
        box = []
        box.append(loop.call_later(d, cb, box))
        box2 = []
        box2.append(loop.call_at(loop.time() + d, cb, box2))
    run_until_fired(loop, 2 * len(delays), records)
    assert len(records) == 2 * len(delays)
    for now, when in records:
        assert now >= when, (now, when)


def test_timer_not_early_while_loop_spins(loop):
    """A loop kept busy by call_soon iterations still does not fire a timer early."""
    records = []
    state = {"spins": 0}

    def spin():
        state["spins"] += 1
        if not records:
            loop.call_soon(spin)

    box = []
    box.append(loop.call_later(0.02, lambda: records.append((loop.time(), box[0].when()))))
    loop.call_soon(spin)
    run_until_fired(loop, 1, records)
    now, when = records[0]
    assert now >= when
    assert state["spins"] > 1


# --------------------------------------------------------------------------
# odd delays
# --------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [-1, -0.5, -1e300, -math.inf])
def test_negative_delay_runs(loop, delay):
    fired = []
    loop.call_later(delay, fired.append, delay)
    run_until_fired(loop, 1, fired)
    assert fired == [delay]


@pytest.mark.parametrize("when", ["past", "zero", "-inf"])
def test_call_at_in_the_past_runs(loop, when):
    value = {"past": loop.time() - 1000, "zero": 0, "-inf": -math.inf}[when]
    fired = []
    loop.call_at(value, fired.append, when)
    run_until_fired(loop, 1, fired)
    assert fired == [when]


@pytest.mark.parametrize("delay", [math.inf, 1e300, 1e12])
def test_huge_delay_never_fires_and_loop_stops(loop, delay):
    fired = []
    h1 = loop.call_later(delay, fired.append, "later")
    h2 = loop.call_at(loop.time() + delay, fired.append, "at")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert fired == []
    assert not h1.cancelled() and not h2.cancelled()
    # a normal timer next to it still works
    loop.run_until_complete(asyncio.sleep(0.001))
    assert fired == []
    h1.cancel()
    h2.cancel()


@pytest.mark.parametrize("delay", [math.inf, 1e300])
def test_huge_delay_loop_blocked_is_woken_by_thread(loop, delay):
    """With only a far-away timer pending the loop sleeps; a thread can still wake it."""
    fired = []
    loop.call_later(delay, fired.append, "never")
    fut = loop.create_future()

    def start_thread():
        threading.Thread(
            target=lambda: loop.call_soon_threadsafe(fut.set_result, "woken"),
            daemon=True,
        ).start()

    loop.call_soon(start_thread)
    with alarm_watchdog():
        assert loop.run_until_complete(fut) == "woken"
    assert fired == []


def test_delay_none_raises(loop):
    with pytest.raises(TypeError) as info:
        loop.call_later(None, noop)
    assert str(info.value) == "delay must not be None"


def test_when_none_raises(loop):
    with pytest.raises(TypeError) as info:
        loop.call_at(None, noop)
    assert str(info.value) == "when cannot be None"


@pytest.mark.parametrize("bad", ["1", b"1", [1], object()])
def test_non_number_delay_raises(loop, bad):
    with pytest.raises(TypeError):
        loop.call_later(bad, noop)


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_nan_raises_value_error(loop, loop_kind, method):
    quickloop_only(loop_kind, "the stdlib silently accepts a NaN delay/when (and corrupts "
                              "its heap order); quickloop documents ValueError")
    before = loop._timer_count
    with pytest.raises(ValueError):
        getattr(loop, method)(math.nan, noop)
    assert loop._timer_count == before


# --------------------------------------------------------------------------
# cancellation
# --------------------------------------------------------------------------

def test_cancel_prevents_firing(loop):
    fired = []
    h = loop.call_later(0.001, fired.append, "cancelled")
    loop.call_later(0.002, fired.append, "kept")
    h.cancel()
    run_until_fired(loop, 1, fired)
    loop.run_until_complete(asyncio.sleep(0.005))
    assert fired == ["kept"]


def test_cancel_timer_inside_callback_same_iteration(loop):
    """Both timers are due in the same iteration; the first cancels the second."""
    fired = []
    base = loop.time() - 10
    victim = None

    def killer():
        fired.append("killer")
        victim.cancel()

    loop.call_at(base, killer)
    victim = loop.call_at(base + 1, fired.append, "victim")
    loop.call_at(base + 2, fired.append, "bystander")
    run_until_fired(loop, 2, fired)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert fired == ["killer", "bystander"]
    assert victim.cancelled()


def test_cancel_pending_timer_from_callback(loop):
    fired = []
    later = loop.call_later(0.005, fired.append, "later")
    loop.call_soon(later.cancel)
    loop.call_later(0.01, fired.append, "sentinel")
    run_until_fired(loop, 1, fired)
    assert fired == ["sentinel"]


def test_cancel_call_soon_handle_from_timer(loop):
    fired = []
    box = []

    def killer():
        fired.append("killer")
        box[0].cancel()

    loop.call_at(loop.time() - 1, killer)
    loop.call_soon(lambda: box.append(loop.call_soon(fired.append, "victim")))
    loop.call_later(0.005, fired.append, "sentinel")
    run_until_fired(loop, 2, fired)
    assert "victim" not in fired


def test_cancel_after_firing_is_harmless(loop):
    fired = []
    h = loop.call_later(0, fired.append, "once")
    run_until_fired(loop, 1, fired)
    h.cancel()
    assert h.cancelled()
    h.cancel()
    # the loop keeps working and nothing fires twice
    loop.call_later(0.001, fired.append, "next")
    run_until_fired(loop, 2, fired)
    assert fired == ["once", "next"]


def test_timer_rearming_itself(loop):
    fired = []

    def tick(n):
        fired.append(n)
        if n < 20:
            loop.call_later(0, tick, n + 1)

    loop.call_later(0, tick, 0)
    run_until_fired(loop, 21, fired)
    assert fired == list(range(21))


def test_timers_and_sleep_in_tasks(loop):
    async def sleeper(delay, tag, out):
        await asyncio.sleep(delay)
        out.append(tag)

    async def main():
        out = []
        await asyncio.gather(
            sleeper(0.006, "c", out), sleeper(0.002, "a", out), sleeper(0.004, "b", out))
        return out

    assert loop.run_until_complete(main()) == ["a", "b", "c"]


def test_wait_for_timeout_cancels_timer(loop):
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), 0.001)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


# --------------------------------------------------------------------------
# quickloop-only: timer bookkeeping and memory
# --------------------------------------------------------------------------

def test_timer_count(loop, loop_kind):
    quickloop_only(loop_kind, "_timer_count is quickloop introspection")
    assert loop._timer_count == 0
    handles = [loop.call_later(0.001 * (i + 1), noop) for i in range(10)]
    assert loop._timer_count == 10
    for h in handles[:3]:
        h.cancel()
    assert loop._timer_count == 7
    handles[0].cancel()  # cancelling again changes nothing
    assert loop._timer_count == 7
    loop.call_soon(noop)  # not a timer
    assert loop._timer_count == 7
    loop.run_until_complete(asyncio.sleep(0.05))
    assert loop._timer_count == 0
    for h in handles:  # cancel after firing: harmless, count stays 0
        h.cancel()
    assert loop._timer_count == 0


def test_timer_count_after_cancel_after_firing(loop, loop_kind):
    quickloop_only(loop_kind, "_timer_count is quickloop introspection")
    fired = []
    h = loop.call_later(0, fired.append, 1)
    run_until_fired(loop, 1, fired)
    assert loop._timer_count == 0
    h.cancel()
    assert loop._timer_count == 0
    h2 = loop.call_later(3600, noop)
    assert loop._timer_count == 1
    h2.cancel()
    assert loop._timer_count == 0


def test_timer_count_after_close(loop, loop_kind):
    quickloop_only(loop_kind, "_timer_count is quickloop introspection")
    for _ in range(5):
        loop.call_later(3600, noop)
    assert loop._timer_count == 5
    loop.close()
    assert loop._timer_count == 0


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_million_cancelled_timers_are_released(loop, loop_kind):
    quickloop_only(loop_kind, "the stdlib keeps cancelled timers in its heap until a "
                              "later iteration; quickloop releases them on cancel()")
    f = noop
    # warm up allocator free lists
    for _ in range(20_000):
        loop.call_later(60, f).cancel()
    gc.collect()
    assert loop._timer_count == 0

    # 1M arm+cancel, RSS must stay flat (a leak of 1M handles is >= ~50 MiB)
    rss0 = _rss_bytes()
    for _ in range(1_000_000):
        loop.call_later(60, f).cancel()
    assert loop._timer_count == 0
    gc.collect()
    rss_growth = _rss_bytes() - rss0
    assert rss_growth < 16 * 1024 * 1024, f"RSS grew by {rss_growth} bytes"

    # Python-level allocations, traced precisely over a smaller run
    tracemalloc.start()
    try:
        traced0 = tracemalloc.get_traced_memory()[0]
        for _ in range(200_000):
            loop.call_later(60, f).cancel()
        assert loop._timer_count == 0
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - traced0
    finally:
        tracemalloc.stop()
    assert traced_growth < 1024 * 1024, f"traced memory grew by {traced_growth} bytes"

    # the loop is still fine afterwards
    fired = []
    loop.call_later(0, fired.append, "alive")
    run_until_fired(loop, 1, fired)
    assert fired == ["alive"]
    assert loop._timer_count == 0


@pytest.mark.parametrize("delay", [None, math.inf, 1e300, 1e12, 3600.0])
def test_idle_loop_with_far_timer_sleeps(loop, loop_kind, delay):
    """With only a far-away timer (or none) pending, the loop blocks instead of spinning.

    The helper thread idles ~0.1 s before waking the loop; a correct loop runs a
    handful of iterations in that time, a busy-polling one thousands.
    """
    quickloop_only(loop_kind, "_iterations is quickloop introspection")
    if delay is not None:
        loop.call_later(delay, noop)
    fut = loop.create_future()
    idle = threading.Event()
    counts = {}

    def helper():
        idle.wait(0.1)  # times out on purpose: the loop must sleep meanwhile
        loop.call_soon_threadsafe(fut.set_result, None)

    def start():
        counts["start"] = loop._iterations
        threading.Thread(target=helper, daemon=True).start()

    loop.call_soon(start)
    with alarm_watchdog():
        loop.run_until_complete(fut)
    spent = loop._iterations - counts["start"]
    assert spent < 20, f"{spent} iterations while idle: the loop is busy-polling"


def test_sub_nanosecond_deadlines_fire_in_when_order(loop):
    """Deadlines one float step apart share a nanosecond tick; they must still
    fire in when() order, not arming order (found by the benchmark suite)."""
    base = loop.time()
    later = math.nextafter(math.nextafter(base, math.inf), math.inf)
    earlier = math.nextafter(base, math.inf)
    order = []
    loop.call_at(later, order.append, "later")
    loop.call_at(earlier, order.append, "earlier")
    loop.call_at(later, loop.stop)
    loop.run_forever()
    assert order == ["earlier", "later"]

