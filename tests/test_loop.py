"""Loop core behaviour: running, stopping, closing, errors, tasks, debug mode.

Every test body runs on the stdlib loop (the referee) and on quickloop through the
``loop`` / ``loop_kind`` fixtures of conftest.py.  Expected values and messages are
the ones of CPython 3.11's asyncio/base_events.py.
"""
import asyncio
import sys
import concurrent.futures
import contextvars
import gc
import itertools
import logging
import socket
import threading

import pytest

from conftest import LOOP_KINDS, make_loop

TIMEOUT = 10.0  # generous bound for anything that waits on another thread

CLOSED = "Event loop is closed"
ALREADY_RUNNING = "This event loop is already running"
ANOTHER_RUNNING = "Cannot run the event loop while another loop is running"
NOT_THREADSAFE = ("Non-thread-safe operation invoked on an event loop other "
                  "than the current one")


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


def noop(*args):
    pass


async def run_in_thread(loop, fn):
    """Run fn() in a fresh thread while the loop runs; return its result or raise."""
    fut = loop.create_future()

    def deliver(ok, value):
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def target():
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the loop
            loop.call_soon_threadsafe(deliver, False, exc)
        else:
            loop.call_soon_threadsafe(deliver, True, value)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        return await asyncio.wait_for(fut, TIMEOUT)
    finally:
        thread.join(TIMEOUT)


# --------------------------------------------------------------------------
# run_until_complete / run_forever / stop
# --------------------------------------------------------------------------

def test_run_until_complete_returns_result(loop):
    async def coro(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_until_complete(coro(21)) == 42


def test_run_until_complete_with_future(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_raises_exception(loop):
    class Boom(Exception):
        pass

    async def coro():
        await asyncio.sleep(0)
        raise Boom("bad")

    with pytest.raises(Boom, match="bad"):
        loop.run_until_complete(coro())
    # the loop is still usable
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"
    assert not loop.is_running()


def test_run_until_complete_future_of_other_loop(loop, loop_kind):
    other = make_loop(loop_kind)
    try:
        fut = other.create_future()
        with pytest.raises(ValueError, match="different loop"):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_stopped_before_future_completed(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError) as info:
        loop.run_until_complete(fut)
    assert str(info.value) == "Event loop stopped before Future completed."
    assert not fut.done()
    # and it can be completed by a later run
    loop.call_soon(fut.set_result, 7)
    assert loop.run_until_complete(fut) == 7


def test_stop_before_run_forever_runs_one_iteration(loop):
    calls = []

    def first():
        calls.append("first")
        loop.call_soon(second)  # scheduled during the iteration: next iteration

    def second():
        calls.append("second")

    loop.call_soon(first)
    loop.call_later(-1, calls.append, "due-timer")  # already due: same iteration
    loop.stop()
    loop.run_forever()
    assert calls == ["first", "due-timer"]
    assert not loop.is_running()

    # The stop request was consumed: the next run_forever runs until stopped again,
    # over several iterations.
    chain = []

    def step(n):
        chain.append(n)
        if n < 3:
            loop.call_soon(step, n + 1)
        else:
            loop.stop()

    loop.call_soon(step, 0)
    loop.run_forever()
    assert calls == ["first", "due-timer", "second"]
    assert chain == [0, 1, 2, 3]


def test_stop_twice_before_run_forever(loop):
    calls = []
    loop.stop()
    loop.stop()
    loop.call_soon(lambda: (calls.append(1), loop.call_soon(calls.append, 2)))
    loop.run_forever()
    assert calls == [1]
    loop.stop()
    loop.run_forever()
    assert calls == [1, 2]


def test_stop_inside_callback(loop):
    calls = []

    def stopper():
        calls.append("stopper")
        loop.stop()
        loop.call_soon(calls.append, "scheduled-by-stopper")

    loop.call_soon(calls.append, "before")
    loop.call_soon(stopper)
    loop.call_soon(calls.append, "after")  # same iteration: still runs
    loop.run_forever()
    assert calls == ["before", "stopper", "after"]
    assert not loop.is_running()

    loop.stop()
    loop.run_forever()
    assert calls == ["before", "stopper", "after", "scheduled-by-stopper"]


def test_is_running(loop):
    seen = []
    assert not loop.is_running()

    def cb():
        seen.append(loop.is_running())
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert seen == [True]
    assert not loop.is_running()

    async def coro():
        return loop.is_running()

    assert loop.run_until_complete(coro()) is True
    assert not loop.is_running()


def test_get_running_loop_inside(loop):
    seen = {}

    def cb():
        seen["callback"] = asyncio.get_running_loop()

    async def coro():
        loop.call_soon(cb)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen["coroutine"] = asyncio.get_running_loop()
        seen["get_event_loop"] = asyncio.get_event_loop()

    assert asyncio._get_running_loop() is None
    loop.run_until_complete(coro())
    assert seen["callback"] is loop
    assert seen["coroutine"] is loop
    assert seen["get_event_loop"] is loop
    assert asyncio._get_running_loop() is None
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_time_is_float_and_nondecreasing(loop):
    samples = [loop.time() for _ in range(1000)]
    assert all(isinstance(t, float) for t in samples)
    assert samples == sorted(samples)


# --------------------------------------------------------------------------
# close
# --------------------------------------------------------------------------

def test_close(loop):
    assert not loop.is_closed()
    loop.close()
    assert loop.is_closed()
    loop.close()  # closing twice is fine
    assert loop.is_closed()


def test_close_running_loop_raises(loop):
    errors = []

    def cb():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert errors == ["Cannot close a running event loop"]
    assert not loop.is_closed()
    # still fully usable
    assert loop.run_until_complete(asyncio.sleep(0, 5)) == 5
    loop.close()
    assert loop.is_closed()


def _closed_create_task(loop):
    coro = asyncio.sleep(0)
    try:
        loop.create_task(coro)
    finally:
        coro.close()


def _closed_run_until_complete(loop):
    coro = asyncio.sleep(0)
    try:
        loop.run_until_complete(coro)
    finally:
        coro.close()


def _closed_add_reader(loop):
    a, b = socket.socketpair()
    try:
        loop.add_reader(a.fileno(), noop)
    finally:
        a.close()
        b.close()


def _closed_add_writer(loop):
    a, b = socket.socketpair()
    try:
        loop.add_writer(a.fileno(), noop)
    finally:
        a.close()
        b.close()


CLOSED_CALLS = {
    "call_soon": lambda loop: loop.call_soon(noop),
    "call_later": lambda loop: loop.call_later(0, noop),
    "call_at": lambda loop: loop.call_at(loop.time(), noop),
    "call_soon_threadsafe": lambda loop: loop.call_soon_threadsafe(noop),
    "run_forever": lambda loop: loop.run_forever(),
    "run_until_complete": _closed_run_until_complete,
    "create_task": _closed_create_task,
    "add_reader": _closed_add_reader,
    "add_writer": _closed_add_writer,
    "run_in_executor": lambda loop: loop.run_in_executor(None, noop),
}


@pytest.mark.parametrize("call", sorted(CLOSED_CALLS))
def test_closed_loop_rejects(loop, call):
    loop.close()
    with pytest.raises(RuntimeError) as info:
        CLOSED_CALLS[call](loop)
    assert str(info.value) == CLOSED
    assert loop.is_closed()
    assert not loop.is_running()


def test_close_drops_pending_callbacks(loop):
    """Callbacks still queued at close() are released, not run."""
    import weakref

    class Arg:
        pass

    a, b = Arg(), Arg()
    refs = [weakref.ref(a), weakref.ref(b)]
    loop.call_soon(noop, a)
    loop.call_later(3600, noop, b)
    del a, b
    loop.close()
    gc.collect()
    assert [r() for r in refs] == [None, None]


# --------------------------------------------------------------------------
# re-entrancy and several loops in one thread
# --------------------------------------------------------------------------

# 3.13's BaseEventLoop.run_forever runs its cleanup after a refused start too
# (_run_forever_setup raises inside its try): the running loop it clears is
# the one already running.  quickloop leaves it alone, as 3.11 and 3.12 do.
STDLIB_REFUSED_RUN_CLEARS_RUNNING_LOOP = sys.version_info[:2] == (3, 13)


def test_reentrant_run_until_complete(loop, loop_kind):
    if loop_kind == "stdlib" and STDLIB_REFUSED_RUN_CLEARS_RUNNING_LOOP:
        pytest.skip("3.13's stdlib loop clears the running loop after a refused run")
    errors = []

    async def coro():
        other_fut = loop.create_future()
        try:
            loop.run_until_complete(other_fut)
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        return asyncio.get_running_loop()

    assert loop.run_until_complete(coro()) is loop
    assert errors == [ALREADY_RUNNING, ALREADY_RUNNING]
    assert not loop.is_running()


def test_reentrant_run_from_plain_callback(loop):
    errors = []

    def cb():
        try:
            loop.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    assert errors == [ALREADY_RUNNING]


@pytest.mark.parametrize(
    "outer_kind,inner_kind",
    list(itertools.product(LOOP_KINDS, LOOP_KINDS)),
    ids=[f"outer_{o}-inner_{i}" for o, i in itertools.product(LOOP_KINDS, LOOP_KINDS)],
)
def test_second_loop_in_same_thread(outer_kind, inner_kind):
    """Run with -k 'not quickloop' for the stdlib-only combination."""
    if inner_kind == "stdlib" and STDLIB_REFUSED_RUN_CLEARS_RUNNING_LOOP:
        pytest.skip("3.13's stdlib loop clears the running loop after a refused run")
    outer = make_loop(outer_kind)
    inner = make_loop(inner_kind)
    errors = []

    async def main():
        fut = inner.create_future()
        try:
            inner.run_until_complete(fut)
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            inner.run_forever()
        except RuntimeError as exc:
            errors.append(str(exc))
        assert not inner.is_running()
        # the failed attempts did not disturb the running-loop bookkeeping
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    try:
        assert outer.run_until_complete(main()) is outer
        assert errors == [ANOTHER_RUNNING, ANOTHER_RUNNING]
        # once the outer loop is done, the inner one runs normally
        assert inner.run_until_complete(asyncio.sleep(0, "inner ok")) == "inner ok"
        assert asyncio._get_running_loop() is None
    finally:
        outer.close()
        inner.close()


# --------------------------------------------------------------------------
# exception handling
# --------------------------------------------------------------------------

class CallbackError(Exception):
    pass


def raiser():
    raise CallbackError("from callback")


def test_callback_exception_goes_to_custom_handler(loop):
    contexts = []
    calls = []

    def handler(lp, context):
        contexts.append((lp, context))

    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler

    handle = loop.call_soon(raiser)
    loop.call_soon(calls.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()

    assert calls == ["after"]
    assert len(contexts) == 1
    lp, context = contexts[0]
    assert lp is loop
    assert context["message"].startswith("Exception in callback ")
    assert "raiser" in context["message"]
    assert isinstance(context["exception"], CallbackError)
    assert str(context["exception"]) == "from callback"
    assert context["handle"] is handle

    # the loop keeps working afterwards
    assert loop.run_until_complete(asyncio.sleep(0, 1)) == 1

    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_timer_callback_exception_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    handle = loop.call_later(0, raiser)
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], CallbackError)
    assert contexts[0]["handle"] is handle


def test_call_exception_handler_direct(loop):
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append((lp, ctx)))
    ctx = {"message": "hello", "custom": 1}
    loop.call_exception_handler(ctx)
    assert got == [(loop, ctx)]


def test_default_exception_handler_logs(loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    calls = []
    loop.call_soon(raiser)
    loop.call_soon(calls.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["after"]

    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    rec = records[0]
    assert rec.levelno == logging.ERROR
    assert rec.getMessage().startswith("Exception in callback ")
    assert "raiser" in rec.getMessage()
    assert rec.exc_info is not None
    assert isinstance(rec.exc_info[1], CallbackError)


def test_default_exception_handler_called_directly(loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    exc = CallbackError("direct")
    loop.default_exception_handler({"message": "custom message", "exception": exc})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("custom message")
    assert records[0].exc_info[1] is exc


def test_custom_exception_handler_context(loop):
    """A custom handler's contextvars context (gh-96704): from 3.12 it runs in
    the context of the failing handle or task, so it sees what the callback
    set; before 3.12 in the caller's.  One check per kind of report: a
    callback that raises, a task whose exception nobody retrieved, and a
    plain call whose context names no handle or task."""
    var = contextvars.ContextVar("var", default="outside")
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append((ctx["message"][:9], var.get())))

    def callback():
        var.set("callback")
        1 / 0

    async def failing():
        var.set("task")
        1 / 0

    async def main():
        loop.call_soon(callback)
        task = loop.create_task(failing())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert task.done()

    loop.run_until_complete(main())
    gc.collect()   # the task's "exception was never retrieved" report
    loop.call_exception_handler({"message": "no handle"})
    inside = sys.version_info >= (3, 12)
    assert sorted(seen) == sorted([
        ("Exception", "callback" if inside else "outside"),
        ("Task exce", "task" if inside else "outside"),
        ("no handle", "outside"),
    ])


def test_exception_handler_that_raises(loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    calls = []

    class HandlerError(Exception):
        pass

    def bad_handler(lp, context):
        raise HandlerError("handler broke")

    loop.set_exception_handler(bad_handler)
    loop.call_soon(raiser)
    loop.call_soon(calls.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["after"]

    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert "Unhandled error in exception handler" in records[0].getMessage()
    assert isinstance(records[0].exc_info[1], HandlerError)
    # the loop keeps running normally
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"


@pytest.mark.parametrize("bad", [1, "handler", object()])
def test_set_exception_handler_not_callable(loop, bad):
    with pytest.raises(TypeError) as info:
        loop.set_exception_handler(bad)
    assert str(info.value) == f"A callable object or None is expected, got {bad!r}"
    assert loop.get_exception_handler() is None


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_propagates(loop, exc_type):
    calls = []
    handled = []
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))

    def bomb():
        raise exc_type("stop now")

    fut = loop.create_future()
    loop.call_soon(calls.append, "before")
    loop.call_soon(bomb)
    loop.call_soon(calls.append, "after")
    with pytest.raises(exc_type):
        loop.run_until_complete(fut)

    assert handled == []  # not routed to the exception handler
    assert calls == ["before"]
    assert not loop.is_running()
    assert not loop.is_closed()
    assert asyncio._get_running_loop() is None

    # still usable: the callback queued behind the bomb runs on the next run
    loop.call_soon(fut.set_result, "recovered")
    assert loop.run_until_complete(fut) == "recovered"
    assert calls == ["before", "after"]
    assert loop.run_until_complete(asyncio.sleep(0.001, "timers ok")) == "timers ok"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_from_coroutine(loop, exc_type):
    async def coro():
        await asyncio.sleep(0)
        raise exc_type()

    with pytest.raises(exc_type):
        loop.run_until_complete(coro())
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, 3)) == 3


# --------------------------------------------------------------------------
# tasks, futures, task factory
# --------------------------------------------------------------------------

def test_create_future(loop):
    fut = loop.create_future()
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    assert not fut.done()
    loop.call_soon(fut.set_result, "value")
    assert loop.run_until_complete(fut) == "value"


def test_create_task_basic(loop):
    async def coro():
        await asyncio.sleep(0)
        return "task result"

    task = loop.create_task(coro())
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == "task result"


def test_create_task_with_name(loop):
    async def coro():
        return asyncio.current_task().get_name()

    task = loop.create_task(coro(), name="my-task-name")
    assert task.get_name() == "my-task-name"
    assert loop.run_until_complete(task) == "my-task-name"


def test_create_task_with_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")

    async def coro():
        seen = var.get()
        var.set("changed by task")
        await asyncio.sleep(0)
        return seen, var.get()

    task = loop.create_task(coro(), context=ctx)
    assert loop.run_until_complete(task) == ("in ctx", "changed by task")
    assert ctx[var] == "changed by task"
    assert var.get() == "default"  # nothing leaked into the caller's context


def test_create_task_copies_current_context(loop):
    var = contextvars.ContextVar("var2", default="default")

    async def coro():
        seen = var.get()
        var.set("set in task")
        return seen

    token = var.set("caller value")
    try:
        task = loop.create_task(coro())
        var.set("changed after create_task")
        assert loop.run_until_complete(task) == "caller value"
        assert var.get() == "changed after create_task"
    finally:
        var.reset(token)


@pytest.mark.parametrize("bad", [1, "factory", object()])
def test_set_task_factory_not_callable(loop, bad):
    with pytest.raises(TypeError) as info:
        loop.set_task_factory(bad)
    assert str(info.value) == "task factory must be a callable or None"
    assert loop.get_task_factory() is None


def test_task_factory(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, coro, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def coro(x):
        return x

    c1 = coro(1)
    t1 = loop.create_task(c1)
    assert calls[-1] == (loop, c1, {})  # legacy (loop, coro) call without context

    ctx = contextvars.copy_context()
    c2 = coro(2)
    t2 = loop.create_task(c2, context=ctx, name="named-by-loop")
    assert calls[-1] == (loop, c2, {"context": ctx})
    assert t2.get_name() == "named-by-loop"

    assert loop.run_until_complete(asyncio.gather(t1, t2)) == [1, 2]

    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    t3 = loop.create_task(coro(3))
    assert len(calls) == 2
    assert loop.run_until_complete(t3) == 3


# 3.13's BaseEventLoop.create_task calls set_name(name) on a factory's product
# even when no name was given (cpython gh-130033): there a product without
# set_name() fails, and a task is named "None".  quickloop names only when a
# name is given, as 3.11 and 3.12 do (README "Differences").
STDLIB_SETS_NAME_NONE = sys.version_info[:2] == (3, 13)


def skip_if_stdlib_sets_name_none(loop_kind):
    if loop_kind == "stdlib" and STDLIB_SETS_NAME_NONE:
        pytest.skip("3.13's stdlib create_task calls set_name(None) on a factory's product")


def test_task_factory_called_from_c_edge_cases(loop, loop_kind):
    """create_task() calls the factory itself (C) when no name is given:
    a context alone is passed as the keyword, what the factory returns is
    returned as it is, its exception propagates, and a factory that drops
    the last reference to itself while it runs is not freed under it."""
    skip_if_stdlib_sets_name_none(loop_kind)
    ctx = contextvars.copy_context()
    seen = []

    def with_context(lp, coro, **kwargs):
        seen.append(kwargs)
        coro.close()
        return "not a task"

    loop.set_task_factory(with_context)

    async def coro():
        return 1

    assert loop.create_task(coro(), context=ctx) == "not a task"
    assert seen == [{"context": ctx}]

    def failing(lp, c):
        c.close()
        raise LookupError("no task today")

    loop.set_task_factory(failing)
    with pytest.raises(LookupError, match="no task today"):
        loop.create_task(coro())

    class SelfDropping:
        alive = 0

        def __init__(self):
            SelfDropping.alive += 1

        def __del__(self):
            SelfDropping.alive -= 1

        def __call__(self, lp, c):
            lp.set_task_factory(None)           # the loop's reference goes
            assert SelfDropping.alive == 1      # ours keeps it
            return asyncio.Task(c, loop=lp)

    loop.set_task_factory(SelfDropping())
    task = loop.create_task(coro())
    assert loop.get_task_factory() is None and SelfDropping.alive == 0
    assert loop.run_until_complete(task) == 1


def test_task_factory_product_without_set_name(loop, loop_kind):
    """create_task(name=...) with a factory whose product has no set_name():
    before 3.13 a DeprecationWarning pointing at the create_task() call, as
    asyncio.tasks._set_task_name gives; from 3.13 the AttributeError of
    base_events' plain task.set_name(name).  Without a name nothing is asked."""
    skip_if_stdlib_sets_name_none(loop_kind)
    made = []

    def factory(lp, coro):
        coro.close()
        made.append(lp.create_future())
        return made[-1]

    loop.set_task_factory(factory)

    async def coro():
        pass

    assert loop.create_task(coro()) is made[-1]
    if sys.version_info >= (3, 13):
        with pytest.raises(AttributeError, match="set_name"):
            loop.create_task(coro(), name="n")
    else:
        with pytest.warns(DeprecationWarning, match="set_name") as record:
            assert loop.create_task(coro(), name="n") is made[-1]
        assert [w.filename for w in record] == [__file__]
    assert len(made) == 2
    loop.set_task_factory(None)   # the fixture's shutdown_asyncgens() makes a task


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"),
                    reason="asyncio.eager_task_factory is new in Python 3.12")
def test_asyncio_eager_task_factory(loop, loop_kind):
    """asyncio.eager_task_factory on a quickloop loop: create_task makes the
    eager task itself, a quickloop.Task (as without a factory), with the
    same eager behaviour as on the stdlib loop."""
    events = []

    async def quick():
        events.append(("quick", asyncio.current_task().get_name()))
        return 1

    async def slow():
        events.append("slow first")
        await asyncio.sleep(0)
        events.append("slow resumed")
        return 2

    async def main():
        q = loop.create_task(quick(), name="q")
        events.append(("after quick", q.done()))
        s = loop.create_task(slow())
        events.append(("after slow", s.done()))
        return q, s, await q, await s

    loop.set_task_factory(asyncio.eager_task_factory)
    q, s, rq, rs = loop.run_until_complete(main())
    assert (rq, rs) == (1, 2) and q.get_name() == "q"
    # 3.12's BaseEventLoop names a factory's task after its eager step
    # (gh-128308); quickloop names it first, as its own factory does.
    first_name = "q" if loop_kind == "quickloop" else events[0][1]
    assert events == [("quick", first_name), ("after quick", True), "slow first",
                      ("after slow", False), "slow resumed"]
    assert loop.get_task_factory() is asyncio.eager_task_factory
    if loop_kind == "quickloop":
        import quickloop
        expected = quickloop.Task
    else:
        expected = asyncio.Task
    assert type(q) is expected and type(s) is expected


def test_task_factory_used_by_run_until_complete(loop):
    seen = []

    def factory(lp, coro, **kwargs):
        seen.append(coro)
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)

    async def coro():
        return 9

    c = coro()
    assert loop.run_until_complete(c) == 9
    assert seen == [c]


def test_create_task_gather_pattern(loop):
    async def worker(i):
        await asyncio.sleep(0)
        await asyncio.sleep(0.001 * (i % 3))
        return i * i

    async def main():
        tasks = [loop.create_task(worker(i)) for i in range(20)]
        return await asyncio.gather(*tasks)

    assert loop.run_until_complete(main()) == [i * i for i in range(20)]


def test_asyncio_runner_with_loop_factory(loop_kind):
    """asyncio.Runner (3.11) drives the loop through its whole life cycle."""
    created = []

    def factory():
        lp = make_loop(loop_kind)
        created.append(lp)
        return lp

    async def main():
        results = await asyncio.gather(*(asyncio.sleep(0, i) for i in range(5)))
        in_executor = await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2, 3])
        return results, in_executor

    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.get_loop() is created[0]
        assert runner.run(main()) == ([0, 1, 2, 3, 4], 6)
    assert created[0].is_closed()


def test_run_in_executor(loop):
    async def main():
        return await loop.run_in_executor(None, threading.get_ident)

    assert loop.run_until_complete(main()) != threading.get_ident()


def test_set_default_executor(loop):
    with pytest.raises(TypeError):
        loop.set_default_executor(object())
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ql-test")
    loop.set_default_executor(executor)

    async def main():
        return await loop.run_in_executor(None, lambda: threading.current_thread().name)

    try:
        assert loop.run_until_complete(main()).startswith("ql-test")
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        executor.shutdown(wait=True)


# --------------------------------------------------------------------------
# debug mode
# --------------------------------------------------------------------------

def test_get_set_debug(loop):
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_slow_callback_duration_attribute(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.5
    assert loop.slow_callback_duration == 0.5


def test_slow_callback_warning(loop, caplog):
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.set_debug(True)
    loop.slow_callback_duration = 0

    def busy_little_callback():
        sum(range(1000))

    loop.call_soon(busy_little_callback)
    loop.call_soon(loop.stop)
    loop.run_forever()

    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno == logging.WARNING]
    assert any(m.startswith("Executing ") and " took " in m and "busy_little_callback" in m
               for m in msgs), msgs


def test_no_slow_callback_warning_without_debug(loop, caplog):
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.set_debug(False)
    loop.slow_callback_duration = 0
    loop.call_soon(sum, range(1000))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [r for r in caplog.records if r.name == "asyncio"] == []


def test_debug_non_threadsafe_calls_from_other_thread(loop):
    loop.set_debug(True)

    def from_thread():
        results = {}
        calls = {
            "call_soon": lambda: loop.call_soon(noop),
            "call_later": lambda: loop.call_later(3600, noop),
            "call_at": lambda: loop.call_at(loop.time() + 3600, noop),
        }
        for name, call in calls.items():
            try:
                handle = call()
            except RuntimeError as exc:
                results[name] = str(exc)
            else:
                handle.cancel()
                results[name] = "no error"
        # call_soon_threadsafe is the allowed way in
        loop.call_soon_threadsafe(noop)
        return results

    async def main():
        return await run_in_thread(loop, from_thread)

    results = loop.run_until_complete(main())
    assert results == {
        "call_soon": NOT_THREADSAFE,
        "call_later": NOT_THREADSAFE,
        "call_at": NOT_THREADSAFE,
    }


def test_debug_calls_from_other_thread_when_not_running(loop):
    """_check_thread only applies while the loop runs (stdlib semantics)."""
    loop.set_debug(True)
    got = []
    ex = concurrent.futures.ThreadPoolExecutor(1)
    try:
        handle = ex.submit(loop.call_soon, got.append, "from thread").result(TIMEOUT)
    finally:
        ex.shutdown(wait=True)
    assert not handle.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["from thread"]


@pytest.mark.parametrize("bad", [1, "not awaitable", None])
def test_run_until_complete_rejects_non_awaitable(loop, bad):
    with pytest.raises(TypeError):
        loop.run_until_complete(bad)
    assert not loop.is_running()
    assert loop.run_until_complete(asyncio.sleep(0, "fine")) == "fine"
