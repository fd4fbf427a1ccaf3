"""Context copies owned by one handle or task (csrc/ctxcopy.h).

A Handle made without an explicit context, and a Task, run in a copy of the
current context that only they hold; quickloop keeps that copy off the
collector's lists and visits its references from the owner's traverse.  These
tests pin the rules that keep that exact: the copies are not listed, cycles
through them are still collected, and a copy handed out (get_context(),
_context) becomes an ordinary context that outlives its owner.  The behaviour
checks run on both loops; the "not listed" checks are quickloop's own.
"""
import asyncio
import contextvars
import gc
import weakref

import pytest

from conftest import make_loop

VAR = contextvars.ContextVar("ql_ctxcopy_test")


class Holder:
    """Something a context variable can hold and that can hold a handle."""


def tracked_contexts():
    gc.collect()
    return sum(type(o) is contextvars.Context for o in gc.get_objects())


def test_pending_timers_list_no_context(loop_kind):
    if loop_kind != "quickloop":
        pytest.skip("quickloop's own bookkeeping")
    loop = make_loop(loop_kind)
    try:
        before = tracked_contexts()
        handles = [loop.call_later(3600, print) for _ in range(500)]
        assert tracked_contexts() == before
        for h in handles:
            h.cancel()
        assert tracked_contexts() == before
        # Handing one out makes it an ordinary, listed context.
        ctx = handles[0].get_context()
        assert gc.is_tracked(ctx)
        assert tracked_contexts() == before + 1
        del handles, ctx
        assert tracked_contexts() == before
    finally:
        loop.close()


def test_pending_tasks_list_no_context(loop_kind):
    if loop_kind != "quickloop":
        pytest.skip("quickloop's own bookkeeping")
    loop = make_loop(loop_kind)
    try:
        async def sleeper():
            await asyncio.sleep(3600)

        async def main():
            before = tracked_contexts()
            tasks = [loop.create_task(sleeper()) for _ in range(200)]
            await asyncio.sleep(0)
            during = tracked_contexts()
            ctx = tasks[0].get_context()
            shared = tracked_contexts()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return during - before, shared - before, gc.is_tracked(ctx)

        assert loop.run_until_complete(main()) == (0, 1, True)
    finally:
        loop.close()


def test_cycle_through_cancelled_handle_context_is_collected(loop):
    """holder -> handle -> its context copy -> VAR's value holder: a cycle
    the collector can only see through the owned copy's references.  (The
    stdlib loop keeps a cancelled timer in its heap until it is due, so the
    loop is closed first.)"""
    def arm():
        holder = Holder()
        VAR.set(holder)
        holder.handle = loop.call_later(3600, print)
        holder.handle.cancel()
        return weakref.ref(holder)

    ref = contextvars.copy_context().run(arm)
    loop.close()
    gc.collect()
    assert ref() is None


def test_cycle_through_pending_handle_context_is_collected_with_loop(loop_kind):
    """An unclosed loop dropped with a pending timer whose context holds the
    loop: collected as on the stdlib loop (which warns that it was unclosed)."""
    def arm():
        lp = make_loop(loop_kind)
        VAR.set(lp)
        lp.call_later(3600, print)
        return weakref.ref(lp)

    with pytest.warns(ResourceWarning):
        ref = contextvars.copy_context().run(arm)
        gc.collect()
    assert ref() is None


def test_cycle_through_abandoned_task_context_is_collected(loop):
    """A task waiting forever on a future nobody else holds, its context
    holding the task: collected (with asyncio's "destroyed but pending")."""
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["message"]))

    async def waiter(fut):
        await fut

    def start():
        holder = Holder()
        VAR.set(holder)
        holder.task = loop.create_task(waiter(loop.create_future()))
        return weakref.ref(holder)

    async def main():
        ref = contextvars.copy_context().run(start)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return ref

    ref = loop.run_until_complete(main())
    gc.collect()
    assert ref() is None
    assert any("destroyed but it is pending" in m for m in errors)


def context_of(obj):
    """get_context() (3.12's API, quickloop's on 3.11 too), else _context."""
    get = getattr(obj, "get_context", None)
    if get is not None:
        return get()
    if not hasattr(obj, "_context"):
        pytest.skip(f"{type(obj).__name__} shows no context on this Python")
    return obj._context


def test_handed_out_context_outlives_its_handle(loop):
    VAR.set("outer")

    def inner():
        VAR.set("copied")
        return loop.call_later(3600, print)

    h = contextvars.copy_context().run(inner)
    ctx = context_of(h)
    assert ctx is context_of(h)
    h.cancel()
    del h
    gc.collect()
    assert ctx[VAR] == "copied"
    assert ctx.run(VAR.get) == "copied"
    assert VAR.get() == "outer"


def test_handed_out_context_outlives_its_task(loop):
    async def body():
        VAR.set("task")
        await asyncio.sleep(0)
        return VAR.get()

    task = loop.create_task(body())
    ctx = context_of(task)
    assert loop.run_until_complete(task) == "task"
    del task
    gc.collect()
    assert ctx[VAR] == "task"


def test_context_set_in_callback_stays_in_its_copy(loop):
    """Each handle runs in its own copy: a callback's VAR.set() is seen by
    neither the caller nor the next callback."""
    seen = []
    VAR.set("base")

    def first():
        seen.append(VAR.get())
        VAR.set("first")

    def second():
        seen.append(VAR.get())

    loop.call_soon(first)
    loop.call_later(0, second)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert seen == ["base", "base"]
    assert VAR.get() == "base"


def test_timer_handle_cancelled_while_running_keeps_context(loop):
    """A callback that cancels its own handle: the handle lets go of its
    fields while the callback still runs in the copy."""
    out = []
    box = {}

    def cb():
        box["h"].cancel()
        gc.collect()
        out.append(VAR.get("unset"))

    def arm():
        VAR.set("armed")
        box["h"] = loop.call_later(0, cb)

    contextvars.copy_context().run(arm)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert out == ["armed"]


def test_non_context_given_as_context_is_left_alone(loop):
    """asyncio accepts any object as context= and fails only when it runs;
    quickloop must neither track nor traverse it as a context (a float once
    reached PyObject_GC_Track: fatal error, found by tests/fuzz)."""
    async def body():
        return 1

    h = loop.call_later(3600, print, context=1e-9)
    coro = body()
    task = loop.create_task(coro, context=2.5)
    gc.collect()
    assert context_of(h) == 1e-9
    assert gc.get_referents(h) is not None and gc.get_referents(task) is not None
    h.cancel()
    loop.set_exception_handler(lambda lp, ctx: None)  # "destroyed but pending"
    coro.close()
    loop.close()
    del h, task, coro
    gc.collect()
