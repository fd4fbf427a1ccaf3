"""What a running loop keeps reachable stays off the cyclic GC's lists
(csrc/anchor.h): handles queued by call_soon, timeouts armed 1 s or more
ahead, a timeout's quickloop future and the tasks waiting on it.

Every test body runs on the stdlib loop (the referee) and on quickloop; the
checks of gc.is_tracked() are quickloop-only (the stdlib tracks everything).
What must hold on both: nothing reachable is freed early, outcomes are the
same, and cycles through these objects are collected once the loop stops.
"""
import asyncio
import gc
import sys
import warnings
import weakref

import pytest
from support import alarm_watchdog



def quickloop_only(loop_kind, reason="the stdlib loop's objects are always tracked"):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


def noop(*args):
    pass


def new_loop(loop_kind):
    if loop_kind == "stdlib":
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    import quickloop
    return quickloop.new_event_loop()


class _Cyclic:
    """An object whose handle's callback refers back to it: a reference cycle
    through the handle (call_soon's with delay None, else call_later's)."""

    def arm(self, loop, delay):
        if delay is None:
            self.handle = loop.call_soon(self.method)
        else:
            self.handle = loop.call_later(delay, self.method)

    def method(self):
        pass


def collect_unclosed():
    """gc.collect(), silencing the ResourceWarning of a loop dropped unclosed
    on purpose (an abandoned loop is what these tests collect)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def run_once(loop):
    """Run exactly what is queued now."""
    loop.stop()
    loop.run_forever()




# ---- handles queued by call_soon (ready.c) -------------------------------------

def test_handle_queued_in_running_loop_leaves_gc_lists_until_it_runs(loop, loop_kind):
    quickloop_only(loop_kind, "the stdlib's Handles are always tracked")
    seen = {}

    async def main():
        held = loop.call_soon(seen.setdefault, "ran", True)
        seen["queued"] = gc.is_tracked(held)
        gc.collect()  # a collection meanwhile leaves the queued handle alone
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen["ran, still held"] = gc.is_tracked(held)
        left = loop.call_soon(seen.setdefault, "never", True)
        loop.stop()  # stop() now: left stays queued while the loop is stopped
        return left

    fut = asyncio.ensure_future(main(), loop=loop)
    loop.run_forever()
    left = fut.result()
    seen["queued in a stopped loop"] = gc.is_tracked(left)
    queued_while_stopped = loop.call_soon(seen.setdefault, "later", True)
    seen["queued while stopped"] = gc.is_tracked(queued_while_stopped)
    assert seen == {"ran": True, "queued": False, "ran, still held": True,
                    "queued in a stopped loop": True, "queued while stopped": True}


def test_handle_reported_to_the_exception_handler_is_tracked(loop):
    """A callback that raises hands its handle to the exception handler, which
    may keep it: it must not stay off the GC's lists."""
    kept = []
    loop.set_exception_handler(lambda lp, context: kept.append(context))

    def boom():
        raise ValueError("boom")

    loop.call_soon(lambda: loop.call_soon(boom))  # queued while running
    run_once(loop)
    run_once(loop)
    assert len(kept) == 1 and isinstance(kept[0]["exception"], ValueError)
    assert gc.is_tracked(kept[0]["handle"])


# ---- timeouts (timer.c) -------------------------------------------------------


def test_timeout_armed_in_running_loop_leaves_gc_lists_until_it_leaves_the_heap(loop, loop_kind):
    quickloop_only(loop_kind, "the stdlib's TimerHandles are always tracked")
    seen = {}

    async def main():
        far = loop.call_later(3600, noop)
        seen["far armed"] = gc.is_tracked(far)
        seen["short armed"] = gc.is_tracked(loop.call_later(0.5, noop))  # fires soon: stays tracked
        cancelled = loop.call_later(3600, noop)
        cancelled.cancel()
        seen["cancelled"] = gc.is_tracked(cancelled)
        gc.collect()  # a collection meanwhile must leave the armed timer alone
        seen["far after collect"] = gc.is_tracked(far)
        return far

    far = loop.run_until_complete(main())
    seen["far after stop"] = gc.is_tracked(far)
    before_run = loop.call_later(3600, noop)
    seen["armed while stopped"] = gc.is_tracked(before_run)
    assert seen == {"far armed": False, "short armed": True, "cancelled": True,
                    "far after collect": False, "far after stop": True, "armed while stopped": True}


def test_fired_timeout_is_tracked_again(loop, loop_kind):
    quickloop_only(loop_kind, "the stdlib's TimerHandles are always tracked")
    fired = []

    async def main():
        h = loop.call_at(loop.time() + 1.05, fired.append, "fired")  # just past the 1 s horizon
        armed = gc.is_tracked(h)
        with alarm_watchdog():
            while not fired:
                await asyncio.sleep(0.05)
        return h, armed

    h, armed = loop.run_until_complete(main())
    assert (armed, gc.is_tracked(h), fired) == (False, True, ["fired"])


@pytest.mark.parametrize("close", [False, True])
@pytest.mark.parametrize("delay", [None, 3600], ids=["queued handle", "armed timeout"])
def test_cycle_through_a_handle_is_collected_once_the_loop_stops(loop_kind, delay, close):
    """Kept off the GC's lists while the loop runs, a queued handle or an
    armed timeout must still be collectable, as asyncio's are, once its loop
    stops (closed or not)."""
    lp = new_loop(loop_kind)
    obj = _Cyclic()
    probe = weakref.ref(obj)

    def arm_and_stop():
        obj.arm(lp, delay)  # armed while running, never run: the loop stops first
        lp.stop()

    lp.call_soon(arm_and_stop)
    lp.run_forever()
    del obj
    if close:
        lp.close()
    # Unclosed, the loop is abandoned: the cycle runs loop -> ring or heap ->
    # handle -> obj and back through obj -> handle: only the GC can free it.
    del lp
    collect_unclosed()
    assert probe() is None


class _Payload:
    pass


def test_collections_while_timeouts_are_armed_keep_everything_they_reach(loop):
    """Objects reachable only through armed timeouts (plain payloads, and
    tasks waiting on futures that only a timer's arguments hold) survive
    full collections while the loop runs; cancelling a timer releases what
    it held.  make asan runs this under AddressSanitizer."""

    async def waiter(fut):
        return await fut

    async def main():
        lp = asyncio.get_running_loop()
        payloads = [_Payload() for _ in range(2000)]
        futs = [lp.create_future() for _ in range(500)]
        tasks = [lp.create_task(waiter(f)) for f in futs]
        await asyncio.sleep(0)  # every task waits on its future
        payload_refs = [weakref.ref(p) for p in payloads]
        task_refs = [weakref.ref(t) for t in tasks]
        handles = [lp.call_later(3600, noop, p) for p in payloads]
        resolvers = [lp.call_later(3600, f.set_result, None) for f in futs]
        del payloads, futs, tasks
        gc.collect()
        armed = (sum(r() is not None for r in payload_refs), sum(r() is not None for r in task_refs))
        for h in handles:
            h.cancel()
        gc.collect()
        cancelled = sum(r() is not None for r in payload_refs)
        tasks = [r() for r in task_refs]
        for h in resolvers:
            h.cancel()
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return armed, cancelled, results

    with alarm_watchdog():
        armed, cancelled, results = loop.run_until_complete(main())
    assert armed == (2000, 500) and cancelled == 0
    assert len(results) == 500 and all(isinstance(r, asyncio.CancelledError) for r in results)


# ---- a timeout's future and the tasks waiting on it (anchor.c) ---------------


async def _sleeper(started=None):
    if started is not None:
        started.append(asyncio.current_task())
    await asyncio.sleep(3600)


def test_sleeping_task_and_its_future_leave_gc_lists_until_woken(loop, loop_kind):
    quickloop_only(loop_kind)
    seen = {}

    async def main():
        task = loop.create_task(_sleeper())
        await asyncio.sleep(0)
        fut = task._fut_waiter
        seen["asleep"] = (gc.is_tracked(task), gc.is_tracked(fut))
        gc.collect()
        seen["after a collection"] = (gc.is_tracked(task), gc.is_tracked(fut), task.done())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen["cancelled"] = (gc.is_tracked(task), gc.is_tracked(fut))
        short = loop.create_task(asyncio.sleep(0.5))  # under the 1 s horizon: tracked
        await asyncio.sleep(0)
        seen["short sleep"] = gc.is_tracked(short)
        short.cancel()

    loop.run_until_complete(main())
    assert seen == {"asleep": (False, False), "after a collection": (False, False, False),
                    "cancelled": (True, True), "short sleep": True}


def test_wait_for_waiter_is_anchored_until_the_result_comes(loop, loop_kind):
    quickloop_only(loop_kind)
    seen = {}

    async def waiting(fut):
        return await asyncio.wait_for(fut, 3600)

    async def main():
        fut = loop.create_future()
        task = loop.create_task(waiting(fut))
        await asyncio.sleep(0)
        seen["waiting"] = gc.is_tracked(task)
        fut.set_result(42)
        seen["result"] = await task
        seen["done"] = gc.is_tracked(task)

    loop.run_until_complete(main())
    # 3.11's wait_for awaits a future its timer holds; 3.12's runs under
    # asyncio.timeout, whose timer holds a bound method: nothing to anchor.
    assert seen == {"waiting": sys.version_info >= (3, 12), "result": 42, "done": True}


def test_remove_done_callback_releases_the_waiting_task(loop, loop_kind):
    """A task taken off its future's callbacks is no longer anchored: it must
    be tracked again (then put back and cancelled, to end cleanly)."""
    seen = {}

    async def main():
        task = loop.create_task(_sleeper())
        await asyncio.sleep(0)
        fut = task._fut_waiter
        [(wakeup, ctx)] = fut._callbacks
        seen["removed"] = fut.remove_done_callback(wakeup)
        seen["tracked"] = gc.is_tracked(task)
        fut.add_done_callback(wakeup, context=ctx)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())
    assert seen == {"removed": 1, "tracked": True}


def test_loop_stop_tracks_sleeping_tasks_again(loop, loop_kind):
    started = []
    loop.create_task(_sleeper(started))
    loop.run_until_complete(asyncio.sleep(0))
    [task] = started
    fut = task._fut_waiter
    assert gc.is_tracked(task) and gc.is_tracked(fut)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)


@pytest.mark.parametrize("close", [False, True])
def test_abandoned_sleeping_task_cycle_is_collected_once_the_loop_stops(loop_kind, close):
    """A task that refers to itself (through its coroutine's frame) and
    sleeps, abandoned: while the loop runs its timer keeps it; once the loop
    stops and is dropped, the collector frees it, reporting it as asyncio
    does ("Task was destroyed but it is pending!")."""
    lp = new_loop(loop_kind)
    reports = []
    lp.set_exception_handler(lambda _lp, context: reports.append(context.get("message")))
    started = []
    lp.create_task(_sleeper(started))
    lp.run_until_complete(asyncio.sleep(0))
    probe = weakref.ref(started.pop())
    gc.collect()
    assert probe() is not None  # its timer is armed: reachable
    if close:
        lp.close()
    del lp
    collect_unclosed()
    assert probe() is None
    assert reports == ["Task was destroyed but it is pending!"]


def test_collections_while_tasks_sleep_anchored_keep_their_outcomes(loop):
    """Tasks asleep anchored, with full collections between, half of those
    waiting on their own timers' futures woken early by resolving those
    futures, the rest cancelled: every outcome is right (make asan runs this
    under AddressSanitizer)."""
    waiting = {}

    async def sleeper(i):
        await asyncio.sleep(3600)
        return i

    async def resolver_sleeper(i):
        lp = asyncio.get_running_loop()
        fut = lp.create_future()
        handle = lp.call_later(3600, fut.set_result, -1)
        waiting[i] = fut
        try:
            return await fut
        finally:
            handle.cancel()

    async def main():
        lp = asyncio.get_running_loop()
        sleepers = [lp.create_task(sleeper(i)) for i in range(300)]
        resolvers = [lp.create_task(resolver_sleeper(i)) for i in range(300)]
        while len(waiting) < 300:
            await asyncio.sleep(0)
        gc.collect()
        for i, fut in waiting.items():
            fut.set_result(i)
        for t in sleepers[::2]:
            t.cancel()
        gc.collect()
        await asyncio.sleep(0)
        gc.collect()
        for t in sleepers[1::2]:
            t.cancel()
        return (await asyncio.gather(*sleepers, return_exceptions=True),
                await asyncio.gather(*resolvers))

    with alarm_watchdog():
        slept, resolved = loop.run_until_complete(main())
    assert len(slept) == 300 and all(isinstance(r, asyncio.CancelledError) for r in slept)
    assert resolved == list(range(300))
