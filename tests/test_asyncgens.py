"""Async generator hooks: firstiter/finalizer installed by run_forever(),
shutdown_asyncgens(), and restoring the previous hooks.

Every test body runs on the stdlib loop (the referee) and on quickloop.
"""
import asyncio
import gc
import sys
import warnings

import pytest
from support import run_until


@pytest.fixture(autouse=True)
def _restore_hooks():
    saved = sys.get_asyncgen_hooks()
    yield
    sys.set_asyncgen_hooks(*saved)


def make_agen(log, name="agen"):
    async def agen():
        try:
            log.append(f"{name}: start")
            yield 1
            yield 2
            log.append(f"{name}: exhausted")
        finally:
            # awaiting inside finally: only works if aclose() runs as a real task
            await asyncio.sleep(0)
            log.append(f"{name}: finally")

    return agen()


# --------------------------------------------------------------------------- shutdown_asyncgens

def test_shutdown_asyncgens_finalizes_suspended_generator(loop):
    log = []
    keep = []

    async def main():
        g = make_agen(log)
        keep.append(g)  # keep it alive: only shutdown_asyncgens may finalize it
        assert await g.__anext__() == 1

    run_until(loop, main())
    assert log == ["agen: start"]
    run_until(loop, loop.shutdown_asyncgens())
    assert log == ["agen: start", "agen: finally"]
    assert keep[0].ag_frame is None  # closed


def test_shutdown_asyncgens_finalizes_several(loop):
    log = []
    keep = []

    async def main():
        for i in range(5):
            g = make_agen(log, f"g{i}")
            keep.append(g)
            await g.__anext__()

    run_until(loop, main())
    run_until(loop, loop.shutdown_asyncgens())
    assert sorted(x for x in log if x.endswith("finally")) == [f"g{i}: finally" for i in range(5)]


def test_firstiter_hook_registers_only_generators_iterated_in_loop(loop):
    """A generator first iterated outside the loop (no hooks) is not tracked;
    one first iterated inside run_forever() is."""
    log = []
    outside = make_agen(log, "outside")
    # iterate it once with no loop running: drive the coroutine by hand
    step = outside.__anext__()
    try:
        step.send(None)
    except StopIteration as exc:
        assert exc.value == 1
    inside = []

    async def main():
        g = make_agen(log, "inside")
        inside.append(g)
        await g.__anext__()

    run_until(loop, main())
    run_until(loop, loop.shutdown_asyncgens())
    assert "inside: finally" in log
    assert "outside: finally" not in log
    # clean up the untracked one by hand
    closer = outside.aclose()
    try:
        while True:
            closer.send(None)
    except StopIteration:
        pass


def test_hooks_are_installed_while_running(loop):
    before = sys.get_asyncgen_hooks()
    seen = []

    async def main():
        seen.append(sys.get_asyncgen_hooks())

    run_until(loop, main())
    hooks = seen[0]
    assert hooks.firstiter is not None and callable(hooks.firstiter)
    assert hooks.finalizer is not None and callable(hooks.finalizer)
    assert hooks != before
    assert sys.get_asyncgen_hooks() == before


def test_exhausted_generator_not_closed_twice(loop):
    log = []

    async def main():
        g = make_agen(log)
        return [x async for x in g]

    assert run_until(loop, main()) == [1, 2]
    run_until(loop, loop.shutdown_asyncgens())
    assert log == ["agen: start", "agen: exhausted", "agen: finally"]


def test_shutdown_asyncgens_twice_is_harmless(loop):
    log = []
    keep = []

    async def main():
        g = make_agen(log)
        keep.append(g)
        await g.__anext__()

    run_until(loop, main())
    run_until(loop, loop.shutdown_asyncgens())
    run_until(loop, loop.shutdown_asyncgens())
    assert log.count("agen: finally") == 1


def test_firstiter_after_shutdown_warns(loop):
    run_until(loop, loop.shutdown_asyncgens())
    log = []
    keep = []

    async def main():
        g = make_agen(log)
        keep.append(g)
        await g.__anext__()

    with pytest.warns(ResourceWarning, match="shutdown_asyncgens"):
        run_until(loop, main())
    run_until(loop, keep[0].aclose())


def test_shutdown_asyncgens_reports_aclose_errors(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    keep = []

    async def bad():
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in finally")

    async def main():
        g = bad()
        keep.append(g)
        await g.__anext__()

    run_until(loop, main())
    run_until(loop, loop.shutdown_asyncgens())
    assert len(contexts) == 1
    ctx = contexts[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["asyncgen"] is keep[0]
    assert "asynchronous generator" in ctx["message"]


# --------------------------------------------------------------------------- finalizer hook

def test_garbage_collected_generator_is_acloseed_via_finalizer(loop):
    log = []

    async def main():
        finalized = loop.create_future()

        async def agen():
            try:
                yield 1
                yield 2
            finally:
                # runs inside a task scheduled by the finalizer hook
                log.append(("finally", asyncio.current_task() is not None))
                await asyncio.sleep(0)
                finalized.set_result(None)

        g = agen()
        assert await g.__anext__() == 1
        del g  # refcount drops to zero -> finalizer hook -> aclose() scheduled
        gc.collect()
        assert log == []  # not synchronously: aclose() is scheduled on the loop
        await finalized

    run_until(loop, main())
    assert log == [("finally", True)]
    # the finalized generator is no longer tracked: shutdown_asyncgens does nothing
    run_until(loop, loop.shutdown_asyncgens())
    assert log == [("finally", True)]


def test_finalizer_for_generator_in_reference_cycle(loop):
    log = []

    async def main():
        finalized = loop.create_future()

        async def agen(box):
            try:
                yield 1
                yield 2
            finally:
                log.append("finally")
                finalized.set_result(None)

        box = []
        g = agen(box)
        box.append(g)  # cycle: the frame references box, box references g
        await g.__anext__()
        del g, box
        gc.collect()
        await finalized

    run_until(loop, main())
    assert log == ["finally"]


# --------------------------------------------------------------------------- hooks restored

def _sentinel_hooks():
    calls = []

    def firstiter(agen):
        calls.append(("firstiter", agen))

    def finalizer(agen):
        calls.append(("finalizer", agen))

    return firstiter, finalizer, calls


def test_hooks_restored_after_run_forever(loop):
    firstiter, finalizer, calls = _sentinel_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    inside = []

    def cb():
        inside.append(sys.get_asyncgen_hooks())
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert inside[0].firstiter is not firstiter
    assert inside[0].finalizer is not finalizer
    hooks = sys.get_asyncgen_hooks()
    assert hooks.firstiter is firstiter
    assert hooks.finalizer is finalizer
    assert calls == []


def test_hooks_restored_after_run_until_complete_raises(loop):
    firstiter, finalizer, _ = _sentinel_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)

    async def main():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        run_until(loop, main())
    hooks = sys.get_asyncgen_hooks()
    assert hooks.firstiter is firstiter
    assert hooks.finalizer is finalizer


def test_hooks_restored_after_base_exception_from_callback(loop):
    firstiter, finalizer, _ = _sentinel_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)

    def cb():
        raise SystemExit(5)

    loop.call_soon(cb)
    with pytest.raises(SystemExit):
        loop.run_forever()
    hooks = sys.get_asyncgen_hooks()
    assert hooks.firstiter is firstiter
    assert hooks.finalizer is finalizer
    assert not loop.is_running()


def test_hooks_restored_to_none(loop):
    sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
    run_until(loop, asyncio.sleep(0))
    hooks = sys.get_asyncgen_hooks()
    assert hooks.firstiter is None
    assert hooks.finalizer is None


def test_generator_started_outside_loop_uses_outer_hooks(loop):
    """A generator first iterated outside any loop gets the hooks in effect then."""
    firstiter, finalizer, calls = _sentinel_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    log = []
    g = make_agen(log)
    step = g.__anext__()
    try:
        step.send(None)
    except StopIteration:
        pass
    assert calls == [("firstiter", g)]
    run_until(loop, asyncio.sleep(0))
    assert calls == [("firstiter", g)]
    sys.set_asyncgen_hooks(firstiter=None, finalizer=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        closer = g.aclose()
        try:
            while True:
                closer.send(None)
        except (StopIteration, RuntimeError):
            pass
