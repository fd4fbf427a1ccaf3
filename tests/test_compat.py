"""csrc/compat.h: quickloop's Future and Task keep their state in the C fields
of _asyncio.Future and _asyncio.Task, whose layout compat.h spells out per
CPython version.  If that layout were wrong, the base type's own accessors
would read garbage; here they must read exactly what quickloop's read."""
import asyncio
import contextvars
import gc
import sys

import _asyncio
import pytest

import quickloop

from support import run_until

BaseFuture = _asyncio.Future
BaseTask = _asyncio.Task


def base_attr(cls, name, obj):
    """The base type's own descriptor for name, applied to obj."""
    return cls.__dict__[name].__get__(obj, cls)


@pytest.fixture
def qloop():
    loop = quickloop.new_event_loop()
    yield loop
    loop.close()


def test_objects_are_no_bigger_than_asyncios():
    # The GC's full collections read every tracked object's memory: quickloop
    # objects used to carry the unused base fields plus their own copy.
    assert quickloop.Future.__basicsize__ == BaseFuture.__basicsize__
    # A Task adds its context copy, wake-up callable, debug cancel origin, name
    # counter and its two registry links (in place of asyncio's weakref object).
    assert quickloop.Task.__basicsize__ <= BaseTask.__basicsize__ + 6 * 8


@pytest.mark.parametrize("debug", [False, True])
def test_future_fields_read_through_the_base_type(qloop, debug):
    qloop.set_debug(debug)
    fut = qloop.create_future()
    assert base_attr(BaseFuture, "_loop", fut) is qloop
    assert base_attr(BaseFuture, "_state", fut) == "PENDING"
    assert base_attr(BaseFuture, "_callbacks", fut) is None
    assert base_attr(BaseFuture, "_source_traceback", fut) == fut._source_traceback
    assert (fut._source_traceback is not None) == debug
    fut._asyncio_future_blocking = True
    assert base_attr(BaseFuture, "_asyncio_future_blocking", fut) is True
    fut._asyncio_future_blocking = False
    assert base_attr(BaseFuture, "_asyncio_future_blocking", fut) is False

    ctx = contextvars.copy_context()
    fut.add_done_callback(print, context=ctx)
    fut.add_done_callback(repr, context=ctx)
    fut.add_done_callback(len, context=ctx)
    assert base_attr(BaseFuture, "_callbacks", fut) == [(print, ctx), (repr, ctx), (len, ctx)]
    assert fut._callbacks == [(print, ctx), (repr, ctx), (len, ctx)]
    assert fut.remove_done_callback(repr) == 1
    assert base_attr(BaseFuture, "_callbacks", fut) == [(print, ctx), (len, ctx)]
    fut.remove_done_callback(print)
    fut.remove_done_callback(len)

    result = object()
    fut.set_result(result)
    assert base_attr(BaseFuture, "_state", fut) == "FINISHED"
    assert base_attr(BaseFuture, "_result", fut) is result
    assert BaseFuture.result(fut) is result

    failed = qloop.create_future()
    try:
        raise ValueError("boom")
    except ValueError as e:
        exc = e
    failed.set_exception(exc)
    assert base_attr(BaseFuture, "_exception", failed) is exc
    assert base_attr(BaseFuture, "_log_traceback", failed) is True
    assert failed.exception() is exc
    assert base_attr(BaseFuture, "_log_traceback", failed) is False

    cancelled = qloop.create_future()
    cancelled.cancel(msg="why")
    assert base_attr(BaseFuture, "_state", cancelled) == "CANCELLED"
    assert base_attr(BaseFuture, "_cancel_message", cancelled) == "why"


def test_task_fields_read_through_the_base_type(qloop):
    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        coro = sleeper()
        task = asyncio.get_running_loop().create_task(coro, name="t1")
        await asyncio.sleep(0)
        assert BaseTask.get_coro(task) is coro
        assert BaseTask.get_name(task) == "t1"
        waiter = base_attr(BaseTask, "_fut_waiter", task)
        assert waiter is task._fut_waiter and isinstance(waiter, quickloop.Future)
        # The waiting task is the waiter's callback, with None as its context
        # (quickloop's mark): the base type reads it without trouble.
        assert base_attr(BaseFuture, "_callbacks", waiter)[0][1] is None
        assert base_attr(BaseTask, "_log_destroy_pending", task) is True
        assert base_attr(BaseFuture, "_loop", task) is asyncio.get_running_loop()
        task.cancel()
        assert base_attr(BaseTask, "_must_cancel", task) is False  # passed on to the waiter
        assert base_attr(BaseFuture, "_state", waiter) == "CANCELLED"
        with pytest.raises(asyncio.CancelledError):
            await task
        assert base_attr(BaseFuture, "_state", task) == "CANCELLED"
        return task

    task = run_until(qloop, main())
    if sys.version_info >= (3, 12):
        # The task's own context is quickloop's; the base field holds None.
        assert BaseTask.get_context(task) is None
        assert task.get_context() is not None


def test_base_add_done_callback_on_a_quickloop_future(qloop):
    # A callback the base type's method appended is a (fn, context) tuple in
    # the same list quickloop uses, so quickloop runs it.
    async def main():
        fut = asyncio.get_running_loop().create_future()
        seen = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: None)
        BaseFuture.add_done_callback(fut, lambda f: seen.set_result(f.result()))
        fut.set_result(42)
        return await seen

    assert run_until(qloop, main()) == 42


def test_referents_never_include_an_owned_context(qloop):
    # The task's context copy is untracked while the task alone holds it; the
    # base traverse sees only None in its own context field.
    async def sleeper():
        await asyncio.sleep(3600)

    async def main():
        task = asyncio.get_running_loop().create_task(sleeper())
        await asyncio.sleep(0)
        refs = gc.get_referents(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return refs

    refs = run_until(qloop, main())
    assert not [r for r in refs if isinstance(r, contextvars.Context)]
