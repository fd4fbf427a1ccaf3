"""Tasks from loop.create_task(): stepping, cancellation, timeouts, GC, cross-type awaiting.

Mirrors csrc/task.c.  Every test body runs on the stdlib loop (the referee, where
create_task() gives asyncio's C Task) and on quickloop (quickloop.Task); the few
quickloop-only checks skip on the stdlib with the reason.  The cross-type matrix
runs every (loop, task type, awaited type) combination: ids naming a quickloop type
or the quickloop loop belong to the quickloop side.
"""
import asyncio
import contextvars
import gc
import inspect
import io
import random
import re
import sys
import types
import weakref

import pytest

try:
    import quickloop
except ImportError:  # conftest reports it
    quickloop = None

from conftest import make_loop

TIMEOUT = 10.0


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


def need_quickloop():
    if quickloop is None:
        pytest.fail("quickloop is not importable (build it: make dev; PYTHONPATH=python)")
    return quickloop


def run(loop, aw, timeout=TIMEOUT):
    """run_until_complete with a watchdog: a hang fails instead of blocking the suite."""
    fut = asyncio.ensure_future(aw, loop=loop)
    fired = []

    def watchdog():
        fired.append(True)
        fut.cancel("watchdog")

    handle = loop.call_later(timeout, watchdog)
    try:
        return loop.run_until_complete(fut)
    except asyncio.CancelledError:
        if fired:
            pytest.fail(f"watchdog: not done after {timeout} s")
        raise
    finally:
        handle.cancel()


def finish(loop, task):
    """Run until the task is done without retrieving its outcome (and
    without asyncio.wait(), whose result set keeps the task alive on 3.12)."""
    done = loop.create_future()
    task.add_done_callback(lambda _: done.done() or done.set_result(None))
    run(loop, done)
    assert task.done()


def collecting_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    return contexts


def messages(contexts):
    return [c["message"] for c in contexts]


def task_context(task):
    """The task's context, or None where it cannot be read.

    Task.get_context() only exists from CPython 3.12 and the 3.11 C task exposes no
    accessor at all, so on asyncio.Task only behaviour is checked; quickloop.Task
    must offer get_context()."""
    if type(task) is asyncio.Task:
        return None
    return task.get_context()


def expected_task_type(loop_kind):
    return asyncio.Task if loop_kind == "stdlib" else need_quickloop().Task


async def forever():
    await asyncio.sleep(3600)


var = contextvars.ContextVar("var", default="default")


# --------------------------------------------------------------------------
# creation, names, contexts
# --------------------------------------------------------------------------

def test_create_task_type(loop, loop_kind):
    async def coro():
        return 1

    task = loop.create_task(coro())
    assert type(task) is expected_task_type(loop_kind)
    assert isinstance(task, asyncio.Task)
    assert isinstance(task, asyncio.Future)
    assert asyncio.isfuture(task)
    assert task.get_loop() is loop
    assert run(loop, task) == 1


def test_quickloop_task_types():
    ql = need_quickloop()
    assert issubclass(ql.Task, asyncio.Task)
    assert issubclass(ql.Task, asyncio.Future)


def test_quickloop_task_get_context(loop, loop_kind):
    quickloop_only(loop_kind, "the 3.11 stdlib task has no get_context() (added in 3.12)")
    ctx = contextvars.Context()
    task = loop.create_task(asyncio.sleep(0), context=ctx)
    assert task.get_context() is ctx
    task2 = loop.create_task(asyncio.sleep(0))
    assert isinstance(task2.get_context(), contextvars.Context)
    assert task2.get_context() is not task.get_context()
    run(loop, asyncio.gather(task, task2))
    assert task.get_context() is ctx


def test_create_task_name(loop):
    async def coro():
        return asyncio.current_task().get_name()

    task = loop.create_task(coro(), name="my-task")
    assert task.get_name() == "my-task"
    assert run(loop, task) == "my-task"
    assert task.get_name() == "my-task"


def test_default_name(loop):
    t1 = loop.create_task(asyncio.sleep(0))
    t2 = loop.create_task(asyncio.sleep(0))
    m1 = re.fullmatch(r"Task-(\d+)", t1.get_name())
    m2 = re.fullmatch(r"Task-(\d+)", t2.get_name())
    assert m1 and m2
    assert int(m2.group(1)) > int(m1.group(1))
    run(loop, asyncio.gather(t1, t2))


def test_set_name(loop):
    task = loop.create_task(asyncio.sleep(0), name="a")
    task.set_name("b")
    assert task.get_name() == "b"
    task.set_name(42)  # converted with str()
    assert task.get_name() == "42"
    assert "name='42'" in repr(task)
    run(loop, task)
    task.set_name("after done")
    assert task.get_name() == "after done"


def test_non_string_name_converted(loop):
    task = loop.create_task(asyncio.sleep(0), name=123)
    assert task.get_name() == "123"
    run(loop, task)


def test_get_coro(loop):
    async def coro():
        return 5

    c = coro()
    task = loop.create_task(c)
    assert task.get_coro() is c
    run(loop, task)
    assert task.get_coro() is c


def test_create_task_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in ctx")

    async def coro():
        before = var.get()
        var.set("changed by task")
        await asyncio.sleep(0)
        return before, var.get()

    task = loop.create_task(coro(), context=ctx)
    assert task_context(task) in (ctx, None)
    assert run(loop, task) == ("in ctx", "changed by task")
    assert ctx[var] == "changed by task"
    assert var.get() == "default"


def test_create_task_copies_current_context(loop):
    def body():
        var.set("outer")

        async def coro():
            seen = var.get()
            var.set("inner")
            return seen

        task = loop.create_task(coro())
        var.set("outer changed after create_task")
        return task

    cur = contextvars.Context()
    task = cur.run(body)
    ctx = task_context(task)
    if ctx is not None:
        assert isinstance(ctx, contextvars.Context)
        assert ctx is not cur
    assert run(loop, task) == "outer"
    assert cur[var] == "outer changed after create_task"
    if ctx is not None:
        assert ctx[var] == "inner"


def test_task_constructed_directly(loop):
    async def coro():
        return asyncio.current_task()

    ttype = type(loop.create_task(asyncio.sleep(0)))
    ctx = contextvars.copy_context()
    task = ttype(coro(), loop=loop, name="direct", context=ctx)
    assert task.get_name() == "direct"
    assert task_context(task) in (ctx, None)
    assert task.get_loop() is loop
    assert run(loop, task) is task
    run(loop, asyncio.sleep(0))


@pytest.mark.parametrize("bad", [1, None, "coro", lambda: None])
def test_create_task_rejects_non_coroutine(loop, bad):
    with pytest.raises(TypeError, match="a coroutine was expected"):
        loop.create_task(bad)


def _stdlib_create_task_takes_kwargs():
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(asyncio.BaseEventLoop.create_task).parameters.values())


@pytest.mark.skipif(_stdlib_create_task_takes_kwargs(),
                    reason="this CPython's create_task passes other keywords on (3.13.3 and later)")
def test_create_task_rejects_unknown_keyword(loop):
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError, match="eager_start"):
        loop.create_task(coro, eager_start=True)
    coro.close()
    assert not asyncio.all_tasks(loop)


@pytest.fixture
def create_task_kwargs(loop_kind, monkeypatch):
    """create_task(**kwargs) as 3.13.4+ has it: the stdlib loop where its
    create_task takes them; quickloop's cold path on any version, with the
    version probe set."""
    if loop_kind == "stdlib":
        if not _stdlib_create_task_takes_kwargs():
            pytest.skip("this CPython's create_task takes no other keywords")
    else:
        from quickloop import _compat
        monkeypatch.setattr(_compat, "CREATE_TASK_PASSES_KWARGS", True)


def test_create_task_kwargs_eager_start(loop, create_task_kwargs):
    steps = []

    async def coro(tag):
        steps.append(tag)
        await asyncio.sleep(0)
        return tag

    async def main():
        eager = loop.create_task(coro("eager"), eager_start=True)
        assert steps == ["eager"]           # its first step ran inside create_task
        lazy = loop.create_task(coro("lazy"), eager_start=False, name="lazy one")
        assert steps == ["eager"]
        assert lazy.get_name() == "lazy one"
        return await asyncio.gather(eager, lazy)

    assert run(loop, main()) == ["eager", "lazy"]


def test_create_task_kwargs_unknown_to_task(loop, create_task_kwargs):
    coro = asyncio.sleep(0)
    with pytest.raises(TypeError, match="no_such_keyword"):
        loop.create_task(coro, no_such_keyword=1)
    coro.close()


def test_create_task_kwargs_go_to_the_factory(loop, create_task_kwargs):
    seen = []

    def factory(loop_, coro, **kwargs):
        seen.append(dict(kwargs))
        return asyncio.Task(coro, loop=loop_, context=kwargs.get("context"))

    loop.set_task_factory(factory)
    ctx = contextvars.copy_context()
    t1 = loop.create_task(asyncio.sleep(0), flavour="plain")
    t2 = loop.create_task(asyncio.sleep(0), flavour="named", name="given", context=ctx)
    assert seen == [{"flavour": "plain"}, {"flavour": "named", "context": ctx}]
    assert t2.get_name() == "given"
    run(loop, asyncio.gather(t1, t2))


def test_create_task_kwargs_on_a_closed_loop(loop_kind, create_task_kwargs):
    closed = make_loop(loop_kind)
    closed.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        closed.create_task(coro, eager_start=False)
    coro.close()


def test_create_task_kwargs_source_traceback(loop, create_task_kwargs):
    loop.set_debug(True)
    task = loop.create_task(asyncio.sleep(0), eager_start=False); line = sys._getframe().f_lineno
    frame = task._source_traceback[-1]
    assert (frame.filename, frame.lineno) == (__file__, line)
    run(loop, task)


@pytest.mark.parametrize("bad", [1, None])
def test_task_constructor_rejects_non_coroutine(loop, bad):
    ttype = type(loop.create_task(asyncio.sleep(0)))
    with pytest.raises(TypeError, match="a coroutine was expected"):
        ttype(bad, loop=loop)
    run(loop, asyncio.sleep(0))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_generator_based_coroutine_accepted(loop):
    @types.coroutine
    def gen():
        yield
        return "gen result"

    assert run(loop, loop.create_task(gen())) == "gen result"


def test_repr(loop):
    async def coro_with_name():
        await asyncio.sleep(0)
        return 7

    task = loop.create_task(coro_with_name(), name="shown")
    r = repr(task)
    assert r.startswith("<Task pending name='shown' coro=<")
    assert "coro_with_name" in r
    run(loop, task)
    r = repr(task)
    assert r.startswith("<Task finished name='shown'")
    assert r.endswith("result=7>")
    t2 = loop.create_task(forever(), name="c")
    t2.cancel()
    finish(loop, t2)
    assert repr(t2).startswith("<Task cancelled name='c'")


def test_set_result_and_set_exception_refused(loop):
    task = loop.create_task(asyncio.sleep(0))
    with pytest.raises(RuntimeError, match="Task does not support set_result operation"):
        task.set_result(1)
    with pytest.raises(RuntimeError, match="Task does not support set_exception operation"):
        task.set_exception(ValueError())
    assert not task.done()
    assert run(loop, task) is None


def test_get_stack_and_print_stack(loop):
    started = loop.create_future()

    async def stacked():
        started.set_result(None)
        await asyncio.sleep(3600)

    task = loop.create_task(stacked())
    run(loop, started)
    stack = task.get_stack()
    assert len(stack) == 1
    assert stack[0].f_code.co_name == "stacked"
    out = io.StringIO()
    task.print_stack(file=out)
    assert "Stack for" in out.getvalue()
    assert "stacked" in out.getvalue()
    task.cancel()
    finish(loop, task)


# --------------------------------------------------------------------------
# results and exceptions
# --------------------------------------------------------------------------

def test_result_of_coroutine(loop):
    async def coro():
        await asyncio.sleep(0)
        return {"answer": 42}

    task = loop.create_task(coro())
    assert not task.done()
    assert run(loop, task) == {"answer": 42}
    assert task.done() and not task.cancelled()
    assert task.result() == {"answer": 42}
    assert task.exception() is None
    assert task._state == "FINISHED"


def test_pending_task_state(loop):
    task = loop.create_task(asyncio.sleep(0))
    assert not task.done() and not task.cancelled()
    assert task._state == "PENDING"
    with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not set\.$"):
        task.result()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Exception is not set\.$"):
        task.exception()
    run(loop, task)


def test_coroutine_without_await(loop):
    async def coro():
        return "no await"

    assert run(loop, loop.create_task(coro())) == "no await"


def test_exception_propagation(loop):
    err = ValueError("from the task")

    async def inner():
        await asyncio.sleep(0)
        raise err

    async def outer():
        try:
            await loop.create_task(inner())
        except ValueError as exc:
            return exc

    assert run(loop, outer()) is err
    task = loop.create_task(inner())
    with pytest.raises(ValueError) as ei:
        run(loop, task)
    assert ei.value is err
    assert task.exception() is err
    assert not task.cancelled()


def test_stop_iteration_raised_in_coroutine(loop):
    async def coro():
        raise StopIteration("bad")

    task = loop.create_task(coro())
    with pytest.raises(RuntimeError, match="coroutine raised StopIteration"):
        run(loop, task)


def test_many_steps(loop):
    async def coro():
        n = 0
        for _ in range(1000):
            await asyncio.sleep(0)
            n += 1
        return n

    assert run(loop, loop.create_task(coro())) == 1000


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_propagates_out_of_run(loop, exc_type):
    err = exc_type()

    async def coro():
        await asyncio.sleep(0)
        raise err

    task = loop.create_task(coro())
    with pytest.raises(exc_type) as ei:
        loop.run_until_complete(task)
    assert ei.value is err
    assert task.done()
    assert not task.cancelled()
    assert task.exception() is err
    assert asyncio.current_task(loop) is None
    assert task not in asyncio.all_tasks(loop)
    # the loop is still usable
    assert run(loop, asyncio.sleep(0, "after")) == "after"


# --------------------------------------------------------------------------
# bad awaits
# --------------------------------------------------------------------------

def test_task_awaiting_itself(loop):
    async def coro():
        await asyncio.current_task()

    task = loop.create_task(coro())
    with pytest.raises(RuntimeError, match="Task cannot await on itself"):
        run(loop, task)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_bad_yield_of_bare_value(loop):
    seen = []

    @types.coroutine
    def bad():
        try:
            yield 42
        except RuntimeError as exc:
            seen.append(str(exc))
            raise

    task = loop.create_task(bad())
    with pytest.raises(RuntimeError, match="Task got bad yield: 42"):
        run(loop, task)
    assert len(seen) == 1 and seen[0].startswith("Task got bad yield: 42")


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_bad_yield_caught_by_coroutine(loop):
    @types.coroutine
    def bad():
        try:
            yield "bare"
        except RuntimeError as exc:
            return "recovered: " + str(exc)[:18]

    assert run(loop, loop.create_task(bad())) == "recovered: Task got bad yield"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_yield_of_generator(loop):
    def plain_gen():
        yield

    @types.coroutine
    def bad():
        yield plain_gen()

    with pytest.raises(RuntimeError, match="yield was used instead of yield from for generator"):
        run(loop, loop.create_task(bad()))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_yield_of_future_without_yield_from(loop):
    fut = loop.create_future()

    @types.coroutine
    def bad():
        yield fut  # _asyncio_future_blocking is False: not "yield from"

    with pytest.raises(RuntimeError, match="yield was used instead of yield from in task"):
        run(loop, loop.create_task(bad()))
    fut.cancel()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio 3.12 no longer runs generator-based coroutines")
def test_bare_yield_is_a_pass(loop):
    trace = []

    @types.coroutine
    def gen():
        trace.append(1)
        yield
        trace.append(2)
        yield None
        trace.append(3)
        return "ok"

    assert run(loop, loop.create_task(gen())) == "ok"
    assert trace == [1, 2, 3]


@pytest.mark.parametrize("other_kind", ["stdlib", "quickloop"])
def test_future_of_other_loop(loop, other_kind):
    other = make_loop(other_kind)
    try:
        fut = other.create_future()

        async def coro():
            await fut

        with pytest.raises(RuntimeError, match="attached to a different loop"):
            run(loop, loop.create_task(coro()))
    finally:
        other.close()


# --------------------------------------------------------------------------
# cancel()
# --------------------------------------------------------------------------

def test_cancel_before_first_step(loop):
    ran = []

    async def coro():
        ran.append(True)

    task = loop.create_task(coro())
    assert task.cancel() is True
    assert task.cancelling() == 1
    assert not task.done()  # cancellation is delivered by the step
    with pytest.raises(asyncio.CancelledError):
        run(loop, task)
    assert ran == []
    assert task.cancelled()
    assert task._state == "CANCELLED"
    assert task.cancel() is False


def test_cancel_before_first_step_with_message(loop):
    task = loop.create_task(forever())
    task.cancel("early")
    with pytest.raises(asyncio.CancelledError) as ei:
        run(loop, task)
    assert ei.value.args == ("early",)


def test_cancel_done_task(loop):
    task = loop.create_task(asyncio.sleep(0, "v"))
    run(loop, task)
    assert task.cancel() is False
    assert task.cancel("msg") is False
    assert task.cancelling() == 0
    assert not task.cancelled()
    assert task.result() == "v"


def _blockers():
    """name -> async setup() returning (block coroutine function, after(state) check)."""

    async def sleep():
        return forever, None

    async def future():
        fut = asyncio.get_running_loop().create_future()

        async def block():
            await fut

        async def after():
            assert fut.cancelled()

        return block, after

    async def task():
        inner = asyncio.get_running_loop().create_task(forever())

        async def block():
            await inner

        async def after():
            assert inner.cancelled()

        return block, after

    async def lock():
        lk = asyncio.Lock()
        await lk.acquire()

        async def block():
            async with lk:
                pass

        async def after():
            lk.release()
            await asyncio.wait_for(lk.acquire(), TIMEOUT)  # the lock is not lost
            lk.release()
            assert not lk._waiters

        return block, after

    async def event():
        ev = asyncio.Event()

        async def block():
            await ev.wait()

        async def after():
            assert not ev._waiters
            ev.set()
            assert await asyncio.wait_for(ev.wait(), TIMEOUT) is True

        return block, after

    async def queue_get():
        q = asyncio.Queue()

        async def block():
            await q.get()

        async def after():
            q.put_nowait("item")
            assert await asyncio.wait_for(q.get(), TIMEOUT) == "item"

        return block, after

    async def queue_put():
        q = asyncio.Queue(1)
        q.put_nowait("first")

        async def block():
            await q.put("second")

        async def after():
            assert q.qsize() == 1
            assert q.get_nowait() == "first"
            assert q.empty()

        return block, after

    async def condition():
        cond = asyncio.Condition()

        async def block():
            async with cond:
                await cond.wait()

        async def after():
            assert not cond.locked()
            async with cond:
                cond.notify_all()

        return block, after

    async def semaphore():
        sem = asyncio.Semaphore(0)

        async def block():
            await sem.acquire()

        async def after():
            sem.release()
            await asyncio.wait_for(sem.acquire(), TIMEOUT)

        return block, after

    async def shield():
        inner = asyncio.get_running_loop().create_task(asyncio.sleep(0, "shielded result"))

        async def block():
            await asyncio.shield(inner)

        async def after():
            assert await inner == "shielded result"
            assert not inner.cancelled()

        return block, after

    async def taskgroup():
        children = []

        async def block():
            async with asyncio.TaskGroup() as tg:
                children.append(tg.create_task(forever()))
                children.append(tg.create_task(forever()))

        async def after():
            assert len(children) == 2
            assert all(c.cancelled() for c in children)

        return block, after

    async def nested_timeouts():
        async def block():
            async with asyncio.timeout(3600):
                async with asyncio.timeout(3600):
                    await forever()

        return block, None

    async def gather():
        kids = []

        async def block():
            kids.extend([asyncio.ensure_future(forever()), asyncio.ensure_future(forever())])
            await asyncio.gather(*kids)

        async def after():
            await asyncio.sleep(0)
            assert all(k.cancelled() for k in kids)

        return block, after

    async def wait_for():
        async def block():
            await asyncio.wait_for(forever(), 3600)

        return block, None

    async def self_cancel():
        async def block():
            asyncio.current_task().cancel("stop")
            await asyncio.sleep(0)

        return block, None

    return {name: fn for name, fn in locals().items()}


BLOCKERS = _blockers()


@pytest.mark.parametrize("blocker", sorted(BLOCKERS))
def test_cancel_while_blocked(loop, blocker):
    """cancel("stop") while the task waits on <blocker>: the coroutine sees CancelledError,
    its finally runs, the task ends cancelled, and what it waited on stays usable."""
    trace = []

    async def main():
        block, after = await BLOCKERS[blocker]()
        started = loop.create_future()

        async def victim():
            try:
                started.set_result(None)
                await block()
            except asyncio.CancelledError as exc:
                trace.append(("cancelled", exc.args))
                raise
            finally:
                trace.append("finally")
            trace.append("not reached")

        task = loop.create_task(victim())
        await started
        assert not task.done()
        if blocker != "self_cancel":
            assert task.cancel("stop") is True
        await asyncio.wait([task])
        assert task.cancelled()
        if after is not None:
            await after()
        return task

    task = run(loop, main())
    assert trace[-1] == "finally"
    assert len(trace) == 2 and trace[0][0] == "cancelled"
    with pytest.raises(asyncio.CancelledError):
        task.result()


@pytest.mark.parametrize("blocker", ["sleep", "future", "task", "lock", "event", "queue_get",
                                     "semaphore", "condition", "self_cancel"])
def test_cancel_message_reaches_coroutine(loop, blocker):
    seen = []

    async def main():
        block, _ = await BLOCKERS[blocker]()
        started = loop.create_future()

        async def victim():
            try:
                started.set_result(None)
                await block()
            except asyncio.CancelledError as exc:
                seen.append(exc.args)
                raise

        task = loop.create_task(victim())
        await started
        if blocker != "self_cancel":
            task.cancel("stop")
        await asyncio.wait([task])

    run(loop, main())
    assert seen == [("stop",)]


def test_cancel_message_reaches_awaiter(loop):
    started = loop.create_future()

    async def victim():
        started.set_result(None)
        await forever()

    async def awaiter(task):
        try:
            await task
        except asyncio.CancelledError as exc:
            return exc.args
        return "not cancelled"

    async def main():
        task = loop.create_task(victim())
        waiting = loop.create_task(awaiter(task))
        await started
        await asyncio.sleep(0)
        task.cancel("the message")
        return await waiting

    assert run(loop, main()) == ("the message",)


def test_cancel_message_from_run_until_complete(loop):
    started = loop.create_future()

    async def victim():
        started.set_result(None)
        await forever()

    task = loop.create_task(victim())
    run(loop, started)
    task.cancel("told to stop")
    with pytest.raises(asyncio.CancelledError) as ei:
        loop.run_until_complete(task)
    assert ei.value.args == ("told to stop",)


def test_cancel_twice_first_message_wins(loop):
    started = loop.create_future()
    seen = []

    async def victim():
        started.set_result(None)
        try:
            await forever()
        except asyncio.CancelledError as exc:
            seen.append((exc.args, asyncio.current_task().cancelling()))
            raise

    task = loop.create_task(victim())
    run(loop, started)
    assert task.cancel("first") is True
    assert task.cancel("second") is True
    assert task.cancelling() == 2
    finish(loop, task)
    assert seen == [(("first",), 2)]
    assert task.cancelled()


def test_coroutine_catching_cancel_returns_value(loop):
    started = loop.create_future()

    async def stubborn():
        started.set_result(None)
        try:
            await forever()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # may still await after catching
            return "caught it"

    task = loop.create_task(stubborn())
    run(loop, started)
    assert task.cancel() is True
    assert run(loop, task) == "caught it"
    assert not task.cancelled()
    assert task.result() == "caught it"
    assert task.cancelling() == 1


def test_coroutine_catching_cancel_then_raising(loop):
    started = loop.create_future()

    async def converter():
        started.set_result(None)
        try:
            await forever()
        except asyncio.CancelledError:
            raise KeyError("converted")

    task = loop.create_task(converter())
    run(loop, started)
    task.cancel()
    with pytest.raises(KeyError, match="converted"):
        run(loop, task)
    assert not task.cancelled()


def test_cancel_while_running_is_delivered_at_next_await(loop):
    trace = []

    async def coro():
        asyncio.current_task().cancel()
        trace.append("still running")
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            trace.append("cancelled at await")
            raise

    task = loop.create_task(coro())
    finish(loop, task)
    assert trace == ["still running", "cancelled at await"]
    assert task.cancelled()


def test_cancel_while_waiting_on_done_future_callback_pending(loop):
    """The awaited future completes, then the task is cancelled before it wakes up."""
    fut = loop.create_future()
    started = loop.create_future()
    seen = []

    async def victim():
        started.set_result(None)
        try:
            return await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = loop.create_task(victim())
    run(loop, started)
    fut.set_result("value")
    assert task.cancel() is True
    finish(loop, task)
    assert seen == ["cancelled"]
    assert task.cancelled()


def test_cancel_then_return_without_await_ends_cancelled(loop):
    """cancel() requested while the coroutine is running, and it returns: the task is
    cancelled all the same (the request wins over the value)."""
    async def coro():
        asyncio.current_task().cancel("late")
        return "value"

    task = loop.create_task(coro())
    finish(loop, task)
    assert task.cancelled()
    with pytest.raises(asyncio.CancelledError) as ei:
        task.result()
    assert ei.value.args == ("late",)


def test_cancel_then_raise_without_await_keeps_exception(loop):
    async def coro():
        asyncio.current_task().cancel()
        raise KeyError("wins")

    task = loop.create_task(coro())
    finish(loop, task)
    assert not task.cancelled()
    assert isinstance(task.exception(), KeyError)


def test_self_cancel_then_await_future_cancels_that_future(loop):
    seen = []

    async def coro():
        fut = asyncio.get_running_loop().create_future()
        seen.append(fut)
        asyncio.current_task().cancel("self")
        await fut

    task = loop.create_task(coro())
    finish(loop, task)
    assert task.cancelled()
    assert seen[0].cancelled()
    with pytest.raises(asyncio.CancelledError) as ei:
        seen[0].result()
    assert ei.value.args == ("self",)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_from_awaited_future(loop, exc_type):
    fut = loop.create_future()
    started = loop.create_future()

    async def coro():
        started.set_result(None)
        await fut

    task = loop.create_task(coro())
    run(loop, started)
    err = exc_type()
    fut.set_exception(err)
    with pytest.raises(exc_type):
        loop.run_until_complete(task)
    assert task.done()
    assert task.exception() is err


def test_two_awaiters_of_one_task(loop):
    gate = loop.create_future()

    async def inner():
        await gate
        return "shared"

    async def awaiter(t):
        return await t

    async def main():
        t = loop.create_task(inner())
        a = loop.create_task(awaiter(t))
        b = loop.create_task(awaiter(t))
        await asyncio.sleep(0)
        gate.set_result(None)
        return await asyncio.gather(a, b)

    assert run(loop, main()) == ["shared", "shared"]


def test_task_subclass(loop):
    ttype = type(loop.create_task(asyncio.sleep(0)))

    class MyTask(ttype):
        pass

    async def coro():
        await asyncio.sleep(0)
        return type(asyncio.current_task()).__name__

    t = MyTask(coro(), loop=loop, name="sub")
    t.extra = "attribute"
    ref = weakref.ref(t)
    assert run(loop, t) == "MyTask"
    assert t.extra == "attribute"
    assert isinstance(t, asyncio.Task)
    del t
    run(loop, asyncio.sleep(0))
    gc.collect()
    assert ref() is None


def test_future_subclass_awaited_by_task(loop):
    ftype = type(loop.create_future())

    class MyFuture(ftype):
        pass

    fut = MyFuture(loop=loop)
    fut.extra = 1

    async def coro():
        return await fut

    loop.call_soon(fut.set_result, "sub result")
    assert run(loop, loop.create_task(coro())) == "sub result"


def test_run_coroutine_threadsafe(loop):
    import threading

    async def coro(x):
        await asyncio.sleep(0)
        return x * 2, asyncio.current_task() is not None

    results = []

    def thread_main():
        cf = asyncio.run_coroutine_threadsafe(coro(21), loop)
        results.append(cf.result(TIMEOUT))
        loop.call_soon_threadsafe(done.set_result, None)

    done = loop.create_future()
    th = threading.Thread(target=thread_main)
    th.start()
    run(loop, done)
    th.join(TIMEOUT)
    assert results == [(42, True)]


def test_private_attributes(loop):
    fut = loop.create_future()
    started = loop.create_future()

    async def coro():
        started.set_result(None)
        return await fut

    c = coro()
    task = loop.create_task(c)
    assert task._coro is c
    assert task._fut_waiter is None
    assert task._must_cancel is False
    assert task._log_destroy_pending is True
    run(loop, started)
    assert task._fut_waiter is fut
    fut.set_result(1)
    assert run(loop, task) == 1
    assert task._fut_waiter is None
    t2 = loop.create_task(forever())
    t2.cancel()
    assert t2._must_cancel is True
    finish(loop, t2)
    assert t2._must_cancel is False


def test_tasks_sharing_one_context(loop):
    ctx = contextvars.Context()
    trace = []

    async def writer(name):
        for i in range(3):
            var.set(f"{name}{i}")
            await asyncio.sleep(0)
            trace.append((name, var.get()))

    async def main():
        a = loop.create_task(writer("a"), context=ctx)
        b = loop.create_task(writer("b"), context=ctx)
        await asyncio.gather(a, b)

    run(loop, main())
    assert len(trace) == 6
    # one shared context: each task sees the other's latest write
    assert ("a", "b0") in trace and ctx[var] in ("a2", "b2")


def test_long_chain_of_tasks(loop):
    depth = 300

    async def chain(n):
        if n == 0:
            await asyncio.sleep(0)
            return 0
        return 1 + await loop.create_task(chain(n - 1))

    assert run(loop, chain(depth)) == depth


def test_long_chain_of_tasks_cancelled_at_the_bottom(loop):
    depth = 300
    bottom = []

    async def chain(n):
        if n == 0:
            bottom.append(asyncio.current_task())
            await forever()
        return await loop.create_task(chain(n - 1))

    async def main():
        top = loop.create_task(chain(depth))
        while not bottom:
            await asyncio.sleep(0)
        bottom[0].cancel("bottom")
        await asyncio.wait([top])
        return top.cancelled()

    assert run(loop, main()) is True


def test_coroutine_released_after_task_done(loop):
    async def coro():
        await asyncio.sleep(0)
        return Obj()

    c = coro()
    cref = weakref.ref(c)
    task = loop.create_task(c)
    del c
    result = run(loop, task)
    rref = weakref.ref(result)
    del result, task
    gc.collect()
    assert cref() is None
    assert rref() is None


class Obj:
    pass


def test_debug_source_traceback(loop):
    loop.set_debug(True)
    fut = loop.create_future()
    task = loop.create_task(asyncio.sleep(0))
    for obj in (fut, task):
        tb = obj._source_traceback
        assert tb, obj
        assert any(frame[0] == __file__ for frame in tb)
    run(loop, task)
    fut.cancel()
    loop.set_debug(False)
    assert loop.create_future()._source_traceback is None


def test_cancelling_and_uncancel_counts(loop):
    task = loop.create_task(forever())
    assert task.cancelling() == 0
    assert task.uncancel() == 0
    assert task.cancelling() == 0
    task.cancel()
    task.cancel()
    assert task.cancelling() == 2
    assert task.uncancel() == 1
    assert task.uncancel() == 0
    assert task.uncancel() == 0
    if sys.version_info >= (3, 13):
        # 3.13: uncancel() down to zero withdraws the pending cancel
        loop.run_until_complete(asyncio.sleep(0))
        assert not task.done() and task.cancelling() == 0
        task.cancel()
    finish(loop, task)
    assert task.cancelled()  # 3.11, 3.12: uncancel() does not withdraw a pending cancel


def test_shield_outer_cancelled_inner_continues(loop):
    async def main():
        gate = loop.create_future()

        async def inner():
            await gate
            return "inner done"

        inner_task = loop.create_task(inner())
        started = loop.create_future()

        async def outer():
            started.set_result(None)
            return await asyncio.shield(inner_task)

        outer_task = loop.create_task(outer())
        await started
        outer_task.cancel()
        await asyncio.wait([outer_task])
        assert outer_task.cancelled()
        assert not inner_task.done()
        gate.set_result(None)
        return await inner_task

    assert run(loop, main()) == "inner done"


def test_shield_inner_cancelled_cancels_outer(loop):
    async def main():
        inner_task = loop.create_task(forever())
        await asyncio.sleep(0)
        sh = asyncio.shield(inner_task)
        inner_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sh
        return sh.cancelled()

    assert run(loop, main()) is True


def test_shield_result(loop):
    async def main():
        return await asyncio.shield(asyncio.sleep(0, "through shield"))

    assert run(loop, main()) == "through shield"


# --------------------------------------------------------------------------
# nested asyncio.timeout: cancelling()/uncancel() bookkeeping
# --------------------------------------------------------------------------

def test_nested_timeout_inner_expires(loop):
    async def body():
        task = asyncio.current_task()
        trace = []
        async with asyncio.timeout(TIMEOUT) as outer:
            try:
                async with asyncio.timeout(0) as inner:
                    await forever()
            except TimeoutError:
                trace.append(("inner timeout", task.cancelling(), inner.expired(), outer.expired()))
            trace.append(("after inner", task.cancelling()))
            await asyncio.sleep(0)
        trace.append(("after outer", task.cancelling(), outer.expired()))
        return trace

    assert run(loop, body()) == [
        ("inner timeout", 0, True, False),
        ("after inner", 0),
        ("after outer", 0, False),
    ]


def test_nested_timeout_both_expire(loop):
    async def body():
        task = asyncio.current_task()
        trace = []
        try:
            async with asyncio.timeout(0) as outer:
                try:
                    async with asyncio.timeout(0) as inner:
                        await forever()
                except TimeoutError:
                    trace.append("inner TimeoutError (wrong: the outer expired too)")
                except asyncio.CancelledError:
                    trace.append(("inner passes CancelledError on", task.cancelling()))
                    raise
        except TimeoutError:
            trace.append(("outer timeout", task.cancelling(), inner.expired(), outer.expired()))
        return trace

    assert run(loop, body()) == [
        ("inner passes CancelledError on", 1),
        ("outer timeout", 0, True, True),
    ]


def test_nested_timeout_outer_cancel_from_outside(loop):
    started = loop.create_future()
    trace = []

    async def body():
        task = asyncio.current_task()
        try:
            async with asyncio.timeout(3600) as outer:
                try:
                    async with asyncio.timeout(3600) as inner:
                        started.set_result(None)
                        await forever()
                except asyncio.CancelledError:
                    trace.append(("inner", task.cancelling(), inner.expired()))
                    raise
        except asyncio.CancelledError:
            trace.append(("outer", task.cancelling(), outer.expired()))
            raise

    task = loop.create_task(body())
    run(loop, started)
    task.cancel()
    finish(loop, task)
    assert task.cancelled()
    assert task.cancelling() == 1
    assert trace == [("inner", 1, False), ("outer", 1, False)]


def test_timeout_expiring_with_concurrent_cancel_is_not_swallowed(loop):
    """The inner timeout expires in the same iteration as a cancel(): CancelledError wins."""
    trace = []

    async def body():
        task = asyncio.current_task()
        try:
            async with asyncio.timeout(0) as cm:
                task.cancel()  # an extra cancel request besides the expiring timeout
                await forever()
        except TimeoutError:
            trace.append("TimeoutError (wrong)")
        except asyncio.CancelledError:
            trace.append(("cancelled", task.cancelling(), cm.expired()))
            raise

    task = loop.create_task(body())
    finish(loop, task)
    assert task.cancelled()
    assert trace == [("cancelled", 1, True)]


def test_timeout_inside_cancelled_then_uncancelled_task(loop):
    """A task that swallowed one cancel (uncancel()) can still use timeouts normally."""
    started = loop.create_future()

    async def body():
        task = asyncio.current_task()
        started.set_result(None)
        try:
            await forever()
        except asyncio.CancelledError:
            assert task.uncancel() == 0
        try:
            async with asyncio.timeout(0):
                await forever()
        except TimeoutError:
            return ("timeout", task.cancelling())

    task = loop.create_task(body())
    run(loop, started)
    task.cancel()
    assert run(loop, task) == ("timeout", 0)


def test_timeout_not_expired_keeps_result(loop):
    async def body():
        async with asyncio.timeout(3600) as cm:
            await asyncio.sleep(0)
        return cm.expired(), asyncio.current_task().cancelling()

    assert run(loop, body()) == (False, 0)


def test_timeout_at_and_reschedule(loop):
    async def body():
        async with asyncio.timeout_at(loop.time() + 3600) as cm:
            assert cm.when() > loop.time()
            cm.reschedule(loop.time())  # now due
            await forever()

    with pytest.raises(TimeoutError):
        run(loop, body())


# --------------------------------------------------------------------------
# cancelled sleeps drop their timer (quickloop introspection)
# --------------------------------------------------------------------------

def test_cancel_sleeping_task_removes_timer_quickloop(loop, loop_kind):
    quickloop_only(loop_kind, "loop._timer_count is quickloop introspection")
    started = loop.create_future()

    async def sleeper():
        started.set_result(None)
        await asyncio.sleep(3600)

    task = loop.create_task(sleeper())
    loop.run_until_complete(started)
    assert loop._timer_count == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(task)
    assert loop._timer_count == 0


def test_cancel_many_sleeping_tasks_removes_timers_quickloop(loop, loop_kind):
    quickloop_only(loop_kind, "loop._timer_count is quickloop introspection")
    n = 1000
    started = loop.create_future()
    count = [0]

    async def sleeper():
        count[0] += 1
        if count[0] == n:
            started.set_result(None)
        await asyncio.sleep(3600)

    tasks = [loop.create_task(sleeper()) for _ in range(n)]
    loop.run_until_complete(started)
    assert loop._timer_count == n
    for t in tasks[::2]:
        t.cancel()
    loop.run_until_complete(asyncio.wait(tasks[::2]))
    assert loop._timer_count == n // 2
    for t in tasks[1::2]:
        t.cancel()
    loop.run_until_complete(asyncio.wait(tasks))
    assert loop._timer_count == 0


def test_timeout_exit_removes_timer_quickloop(loop, loop_kind):
    quickloop_only(loop_kind, "loop._timer_count is quickloop introspection")

    async def body():
        async with asyncio.timeout(3600):
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.sleep(0), 3600)

    loop.run_until_complete(body())
    assert loop._timer_count == 0


# --------------------------------------------------------------------------
# TaskGroup, gather, wait, as_completed, wait_for
# --------------------------------------------------------------------------

def test_taskgroup_results(loop):
    async def child(i):
        await asyncio.sleep(0)
        return i * i

    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(child(i)) for i in range(10)]
        return [t.result() for t in tasks]

    assert run(loop, main()) == [i * i for i in range(10)]


def test_taskgroup_failure_cancels_siblings(loop):
    async def failing():
        await asyncio.sleep(0)
        raise ValueError("child failed")

    async def main():
        sibling = None
        try:
            async with asyncio.TaskGroup() as tg:
                sibling = tg.create_task(forever())
                tg.create_task(failing())
        except* ValueError as eg:
            errors = eg.exceptions
        return sibling.cancelled(), [str(e) for e in errors], asyncio.current_task().cancelling()

    # 3.11's and 3.12's TaskGroup leave the parent's cancel request counted when a
    # child fails while the parent waits in __aexit__ (the referee says 1 on 3.11.7
    # and 3.12.1); 3.13's uncancels it (0 on 3.13.0).
    expected_cancelling = 0 if sys.version_info >= (3, 13) else 1
    assert run(loop, main()) == (True, ["child failed"], expected_cancelling)


def test_taskgroup_body_failure(loop):
    async def main():
        children = []
        with pytest.raises(BaseExceptionGroup) as ei:
            async with asyncio.TaskGroup() as tg:
                children.append(tg.create_task(forever()))
                await asyncio.sleep(0)
                raise KeyError("body")
        return children[0].cancelled(), [type(e) for e in ei.value.exceptions]

    assert run(loop, main()) == (True, [KeyError])


def test_taskgroup_cancelled_from_outside(loop):
    started = loop.create_future()
    children = []

    async def main():
        async with asyncio.TaskGroup() as tg:
            children.append(tg.create_task(forever()))
            children.append(tg.create_task(forever()))
            started.set_result(None)
            await forever()

    task = loop.create_task(main())
    run(loop, started)
    task.cancel()
    finish(loop, task)
    assert task.cancelled()
    assert all(c.cancelled() for c in children)


def test_gather(loop):
    async def val(x):
        await asyncio.sleep(0)
        return x

    async def boom():
        raise ValueError("g")

    async def main():
        r1 = await asyncio.gather(val(1), val(2), loop.create_task(val(3)))
        r2 = await asyncio.gather(val(1), boom(), return_exceptions=True)
        with pytest.raises(ValueError):
            await asyncio.gather(boom(), val(1))
        return r1, r2[0], type(r2[1])

    assert run(loop, main()) == ([1, 2, 3], 1, ValueError)


def test_gather_cancel(loop):
    async def main():
        kids = [loop.create_task(forever()) for _ in range(3)]
        g = asyncio.gather(*kids)
        await asyncio.sleep(0)
        assert g.cancel("gather stop") is True
        with pytest.raises(asyncio.CancelledError):
            await g
        return [k.cancelled() for k in kids]

    assert run(loop, main()) == [True, True, True]


def test_wait(loop):
    async def main():
        gate = loop.create_future()
        fast = loop.create_task(asyncio.sleep(0, "fast"))

        async def slow():
            await gate
            return "slow"

        slow_task = loop.create_task(slow())
        done, pending = await asyncio.wait([fast, slow_task], return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow_task}
        gate.set_result(None)
        done, pending = await asyncio.wait([fast, slow_task])
        assert done == {fast, slow_task} and not pending
        done, pending = await asyncio.wait([loop.create_task(forever())], timeout=0)
        assert not done and len(pending) == 1
        pending.pop().cancel()
        return slow_task.result()

    assert run(loop, main()) == "slow"


def test_as_completed(loop):
    async def main():
        gates = [loop.create_future() for _ in range(3)]

        async def waiter(i):
            await gates[i]
            return i

        tasks = [loop.create_task(waiter(i)) for i in range(3)]
        order = []
        releases = [2, 0, 1]
        gates[releases[0]].set_result(None)
        k = 1
        for next_done in asyncio.as_completed(tasks, timeout=TIMEOUT):
            order.append(await next_done)
            if k < 3:
                gates[releases[k]].set_result(None)
                k += 1
        return order

    assert run(loop, main()) == [2, 0, 1]


def test_wait_for(loop):
    async def main():
        assert await asyncio.wait_for(asyncio.sleep(0, "in time"), TIMEOUT) == "in time"
        inner = loop.create_task(forever())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(inner, 0.001)
        assert inner.cancelled()
        inner2 = loop.create_task(forever())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(inner2, 0)
        assert inner2.cancelled()
        return asyncio.current_task().cancelling()

    assert run(loop, main()) == 0


def test_timeout_expires(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.001):
                await forever()
        return asyncio.current_task().cancelling()

    assert run(loop, main()) == 0


# --------------------------------------------------------------------------
# current_task / all_tasks
# --------------------------------------------------------------------------

def test_current_task_outside(loop):
    assert asyncio.current_task(loop) is None
    assert asyncio.all_tasks(loop) == set()
    with pytest.raises(RuntimeError):
        asyncio.current_task()  # no running loop


def test_current_task_inside(loop):
    seen = {}

    async def coro():
        seen["current"] = asyncio.current_task()
        seen["current_loop"] = asyncio.current_task(loop)
        loop.call_soon(lambda: seen.__setitem__("in_callback", asyncio.current_task()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen["after_await"] = asyncio.current_task()

    task = loop.create_task(coro())
    run(loop, task)
    assert seen["current"] is task
    assert seen["current_loop"] is task
    assert seen["after_await"] is task
    assert seen["in_callback"] is None
    assert asyncio.current_task(loop) is None


def test_current_task_switches_between_tasks(loop):
    seen = []

    async def worker(name):
        for _ in range(3):
            seen.append((name, asyncio.current_task().get_name()))
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(loop.create_task(worker("a"), name="a"),
                             loop.create_task(worker("b"), name="b"))

    run(loop, main())
    assert len(seen) == 6
    assert all(name == current for name, current in seen)


def test_all_tasks(loop):
    async def main():
        me = asyncio.current_task()
        done_task = loop.create_task(asyncio.sleep(0))
        await done_task
        pending = loop.create_task(forever())
        all_now = asyncio.all_tasks()
        assert all_now == asyncio.all_tasks(loop)
        pending.cancel()
        await asyncio.wait([pending])
        return me, pending, done_task, all_now, asyncio.all_tasks()

    me, pending, done_task, all_now, all_after = run(loop, main())
    assert me in all_now and pending in all_now
    assert done_task not in all_now
    assert all_after == {me}
    assert asyncio.all_tasks(loop) == set()


def test_repr_of_future_awaited_by_task(loop):
    fut = loop.create_future()
    started = loop.create_future()

    async def waiter():
        started.set_result(None)
        await fut

    task = loop.create_task(waiter())
    run(loop, started)
    # the task's wake-up callback is shown like the stdlib's, not as "<... object at 0x...>"
    assert repr(fut) == "<Future pending cb=[Task.task_wakeup()]>"
    fut.set_result(None)
    run(loop, task)


AWAIT_CYCLE_SCRIPT = r"""
import asyncio, sys
sys.path.insert(0, {pypath!r})
kind = {kind!r}
if kind == "stdlib":
    loop = asyncio.new_event_loop()
    make = loop.create_task
else:
    import quickloop
    if kind == "quickloop":
        loop = quickloop.new_event_loop()
        make = loop.create_task
    else:  # quickloop.Task on the stdlib loop
        loop = asyncio.new_event_loop()
        make = lambda coro: quickloop.Task(coro, loop=loop)
loop.set_exception_handler(lambda lp, ctx: None)
tasks = []

async def waiter(i):
    await tasks[i]

async def main():
    tasks.append(make(waiter(1)))
    tasks.append(make(waiter(0)))
    await asyncio.sleep(0)
    try:
        tasks[0].cancel()
    except RecursionError:
        print("RecursionError")
    else:
        print("cancel returned")

loop.run_until_complete(main())
print("survived")
"""


@pytest.mark.parametrize("kind", ["stdlib", "quickloop", "quickloop.Task-on-stdlib-loop"])
def test_cancel_await_cycle_raises_recursion_error(kind):
    """Two tasks awaiting each other: cancel() recurses through the cycle.  The stdlib
    raises RecursionError; it must not crash the interpreter (run in a subprocess)."""
    import os
    import subprocess
    pypath = ""
    if kind != "stdlib":
        pypath = os.path.dirname(os.path.dirname(need_quickloop().__file__))
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                           AWAIT_CYCLE_SCRIPT.format(pypath=pypath, kind=kind)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["RecursionError", "survived"], proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# garbage collection and logging
# --------------------------------------------------------------------------

def test_pending_task_destroyed_is_reported(loop):
    contexts = collecting_handler(loop)
    started = loop.create_future()

    async def waiter():
        fut = asyncio.get_running_loop().create_future()
        started.set_result(None)
        await fut

    task = loop.create_task(waiter())
    ttype = type(task)
    run(loop, started)
    assert not task.done()
    del task
    gc.collect()
    found = [c for c in contexts if c["message"] == "Task was destroyed but it is pending!"]
    assert len(found) == 1, messages(contexts)
    assert type(found[0]["task"]) is ttype


def test_pending_task_never_started_destroyed_is_reported(loop):
    """Dropped before its first step: the loop's queue held it, then close() let it go."""
    contexts = collecting_handler(loop)

    async def coro():
        pass

    c = coro()
    task = loop.create_task(c)
    del task
    loop.close()
    gc.collect()
    found = [ctx for ctx in contexts if ctx["message"] == "Task was destroyed but it is pending!"]
    assert len(found) == 1, messages(contexts)
    c.close()


@pytest.mark.parametrize("outcome", ["result", "cancelled", "exception-retrieved"])
def test_done_task_destroyed_not_reported(loop, outcome):
    contexts = collecting_handler(loop)

    async def coro():
        await asyncio.sleep(0)
        if outcome == "exception-retrieved":
            raise ValueError()
        if outcome == "cancelled":
            await forever()
        return 1

    task = loop.create_task(coro())
    if outcome == "cancelled":
        loop.call_soon(task.cancel)
    finish(loop, task)
    if outcome == "exception-retrieved":
        assert isinstance(task.exception(), ValueError)
    del task
    gc.collect()
    assert contexts == []


def test_log_destroy_pending_false_not_reported(loop):
    contexts = collecting_handler(loop)
    started = loop.create_future()

    async def waiter():
        fut = asyncio.get_running_loop().create_future()
        started.set_result(None)
        await fut

    task = loop.create_task(waiter())
    task._log_destroy_pending = False
    run(loop, started)
    del task
    gc.collect()
    assert contexts == []


def test_task_exception_never_retrieved(loop):
    contexts = collecting_handler(loop)
    raised = []

    async def coro():
        await asyncio.sleep(0)
        # Made here and remembered by id only: from 3.12 a traceback's frames
        # keep their callers (and so this test's frame and the task) alive
        # for as long as the exception lives.
        err = ValueError("unretrieved")
        raised.append(id(err))
        raise err

    task = loop.create_task(coro())
    ttype = type(task)
    finish(loop, task)
    del task
    gc.collect()
    found = [c for c in contexts if c["message"] == "Task exception was never retrieved"]
    assert len(found) == 1, messages(contexts)
    assert id(found[0]["exception"]) == raised[0]
    assert type(found[0]["future"]) is ttype


@pytest.mark.parametrize("retrieve", ["exception", "result", "await"])
def test_task_exception_retrieved_not_logged(loop, retrieve):
    contexts = collecting_handler(loop)

    async def coro():
        await asyncio.sleep(0)
        raise ValueError("retrieved")

    task = loop.create_task(coro())
    finish(loop, task)
    if retrieve == "exception":
        task.exception()
    elif retrieve == "result":
        with pytest.raises(ValueError):
            task.result()
    else:
        async def awaiter(t):
            try:
                await t
            except ValueError:
                return "ok"

        assert run(loop, awaiter(task)) == "ok"
    del task
    gc.collect()
    assert contexts == []


def _self_referencing(kind):
    async def coro():
        me = asyncio.current_task()
        if kind == "local":
            await asyncio.sleep(0)
            return None
        if kind == "list-cycle":
            box = [me]
            box.append(box)
            await asyncio.sleep(0)
            return box
        if kind == "result-is-self":
            await asyncio.sleep(0)
            return me
        if kind == "exception-traceback":
            await asyncio.sleep(0)
            raise ValueError("traceback frames hold the task")
        if kind == "cancelled-traceback":
            await forever()
        if kind == "done-callback":
            me.add_done_callback(lambda t, me=me: None)
            await asyncio.sleep(0)
            return None
        if kind == "awaited-future-holds-task":
            fut = asyncio.get_running_loop().create_future()
            fut.task = me
            asyncio.get_running_loop().call_soon(fut.set_result, None)
            await fut
            return fut
        raise AssertionError(kind)

    return coro


@pytest.mark.parametrize("kind", ["local", "list-cycle", "result-is-self", "exception-traceback",
                                  "cancelled-traceback", "done-callback",
                                  "awaited-future-holds-task"])
def test_finished_self_referencing_task_is_collected(loop, kind):
    task = loop.create_task(_self_referencing(kind)())
    ref = weakref.ref(task)
    if kind == "cancelled-traceback":
        loop.call_soon(task.cancel)
    finish(loop, task)
    if kind == "exception-traceback":
        assert isinstance(task.exception(), ValueError)
    elif kind == "cancelled-traceback":
        assert task.cancelled()
    else:
        task.result()
    del task
    gc.collect()
    assert ref() is None


def test_many_tasks_are_collected(loop):
    refs = []

    async def child():
        me = asyncio.current_task()
        await asyncio.sleep(0)
        return [me]

    async def main():
        for _ in range(200):
            t = loop.create_task(child())
            refs.append(weakref.ref(t))
            await t

    run(loop, main())
    gc.collect()
    assert all(r() is None for r in refs)


# --------------------------------------------------------------------------
# debug mode: where cancel() was called (quickloop feature)
# --------------------------------------------------------------------------

def cancel_the_task(task):
    line = sys._getframe().f_lineno + 1
    task.cancel("why")
    return line


def _cancel_and_collect_notes(loop, canceller):
    started = loop.create_future()
    notes = []

    async def victim():
        started.set_result(None)
        try:
            await forever()
        except asyncio.CancelledError as exc:
            notes.extend(getattr(exc, "__notes__", []))
            raise

    task = loop.create_task(victim())
    run(loop, started)
    where = canceller(task)
    finish(loop, task)
    assert task.cancelled()
    return notes, where


def test_debug_cancel_note_quickloop(loop, loop_kind):
    quickloop_only(loop_kind, "the debug-mode cancel() origin note is a quickloop feature")
    loop.set_debug(True)
    notes, line = _cancel_and_collect_notes(loop, cancel_the_task)
    filename = cancel_the_task.__code__.co_filename
    matching = [n for n in notes
                if "cancel_the_task" in n and filename in n and str(line) in n and "why" in n]
    assert matching, notes


def test_debug_cancel_note_from_coroutine_quickloop(loop, loop_kind):
    quickloop_only(loop_kind, "the debug-mode cancel() origin note is a quickloop feature")
    loop.set_debug(True)

    async def canceller_coro(task):
        task.cancel("why from a task")

    def canceller(task):
        run(loop, canceller_coro(task))

    notes, _ = _cancel_and_collect_notes(loop, canceller)
    assert any("canceller_coro" in n and "why from a task" in n for n in notes), notes


def test_no_cancel_note_without_debug(loop):
    loop.set_debug(False)
    notes, _ = _cancel_and_collect_notes(loop, cancel_the_task)
    assert notes == []


# --------------------------------------------------------------------------
# cross-type awaiting: every (loop, task type, awaited type) combination
# --------------------------------------------------------------------------

class ForeignFuture:
    """A minimal future-like object that is not an asyncio.Future."""

    _asyncio_future_blocking = False

    def __init__(self, loop):
        self._loop = loop
        self._callbacks = []
        self._state = "PENDING"
        self._result = None
        self._exception = None
        self._cancel_msg = None
        self.cancel_calls = []

    def get_loop(self):
        return self._loop

    def add_done_callback(self, fn, *, context=None):
        if self._state != "PENDING":
            self._loop.call_soon(fn, self, context=context)
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn):
        before = len(self._callbacks)
        self._callbacks = [(f, c) for f, c in self._callbacks if f != fn]
        return before - len(self._callbacks)

    def _finish(self, state):
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        for fn, ctx in callbacks:
            self._loop.call_soon(fn, self, context=ctx)

    def set_result(self, value):
        self._result = value
        self._finish("FINISHED")

    def set_exception(self, exc):
        self._exception = exc
        self._finish("FINISHED")

    def cancel(self, msg=None):
        self.cancel_calls.append(msg)
        if self._state != "PENDING":
            return False
        self._cancel_msg = msg
        self._finish("CANCELLED")
        return True

    def cancelled(self):
        return self._state == "CANCELLED"

    def done(self):
        return self._state != "PENDING"

    def result(self):
        if self._state == "CANCELLED":
            raise asyncio.CancelledError(*(() if self._cancel_msg is None else (self._cancel_msg,)))
        if self._state == "PENDING":
            raise asyncio.InvalidStateError("not done")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self):
        return self._exception

    def __await__(self):
        if not self.done():
            self._asyncio_future_blocking = True
            yield self
        return self.result()

    __iter__ = __await__


TASK_KINDS = ["asyncio.Task", "quickloop.Task"]
AWAITED_KINDS = ["asyncio.Future", "quickloop.Future", "foreign", "asyncio.Task", "quickloop.Task"]


def task_class(kind):
    return asyncio.Task if kind == "asyncio.Task" else need_quickloop().Task


def future_class(kind):
    return asyncio.Future if kind == "asyncio.Future" else need_quickloop().Future


def make_awaited(kind, loop):
    """-> (awaitable, complete(outcome), was_cancelled())"""
    if kind in ("asyncio.Future", "quickloop.Future", "foreign"):
        fut = ForeignFuture(loop) if kind == "foreign" else future_class(kind)(loop=loop)

        def complete(outcome):
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

        return fut, complete, fut.cancelled
    gate = loop.create_future()

    async def inner():
        return await gate

    task = task_class(kind)(inner(), loop=loop)

    def complete(outcome):
        if isinstance(outcome, BaseException):
            gate.set_exception(outcome)
        else:
            gate.set_result(outcome)

    return task, complete, task.cancelled


def start_awaiter(loop, task_kind, awaited):
    started = loop.create_future()
    seen = {}

    async def awaiter():
        seen["current"] = asyncio.current_task()
        started.set_result(None)
        try:
            return await awaited
        except asyncio.CancelledError as exc:
            seen["cancel_args"] = exc.args
            raise

    task = task_class(task_kind)(awaiter(), loop=loop)
    run(loop, started)
    assert not task.done()
    return task, seen


@pytest.mark.parametrize("awaited_kind", AWAITED_KINDS)
@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_await_result(loop, task_kind, awaited_kind):
    awaited, complete, _ = make_awaited(awaited_kind, loop)
    task, seen = start_awaiter(loop, task_kind, awaited)
    assert type(task) is task_class(task_kind)
    assert seen["current"] is task
    assert task in asyncio.all_tasks(loop)
    complete("the value")
    assert run(loop, task) == "the value"
    assert task.done() and not task.cancelled()
    assert asyncio.current_task(loop) is None


@pytest.mark.parametrize("awaited_kind", AWAITED_KINDS)
@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_await_exception(loop, task_kind, awaited_kind):
    awaited, complete, _ = make_awaited(awaited_kind, loop)
    task, _ = start_awaiter(loop, task_kind, awaited)
    err = LookupError("cross")
    complete(err)
    with pytest.raises(LookupError) as ei:
        run(loop, task)
    assert ei.value is err
    assert task.exception() is err


@pytest.mark.parametrize("awaited_kind", AWAITED_KINDS)
@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_await_cancel(loop, task_kind, awaited_kind):
    awaited, _, was_cancelled = make_awaited(awaited_kind, loop)
    task, seen = start_awaiter(loop, task_kind, awaited)
    assert task.cancel("cross cancel") is True
    finish(loop, task)
    assert task.cancelled()
    assert was_cancelled()
    assert seen["cancel_args"] == ("cross cancel",)
    if awaited_kind == "foreign":
        assert awaited.cancel_calls == ["cross cancel"]
    with pytest.raises(asyncio.CancelledError):
        task.result()


@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_task_cancel_before_first_step(loop, task_kind):
    ran = []

    async def coro():
        ran.append(True)

    task = task_class(task_kind)(coro(), loop=loop)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        run(loop, task)
    assert ran == [] and task.cancelled()


@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_task_with_timeout_and_gather(loop, task_kind):
    """asyncio's helpers driving a task of each type on each loop."""
    async def child(i):
        await asyncio.sleep(0)
        return i

    async def main():
        kids = [task_class(task_kind)(child(i), loop=loop) for i in range(3)]
        res = await asyncio.gather(*kids)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await forever()
        return res, asyncio.current_task().cancelling()

    task = task_class(task_kind)(main(), loop=loop)
    assert run(loop, task) == ([0, 1, 2], 0)


@pytest.mark.parametrize("future_kind", ["asyncio.Future", "quickloop.Future"])
def test_cross_type_run_until_complete_future(loop, future_kind):
    fut = future_class(future_kind)(loop=loop)
    loop.call_soon(fut.set_result, "direct")
    assert loop.run_until_complete(fut) == "direct"


@pytest.mark.parametrize("future_kind", ["asyncio.Future", "quickloop.Future"])
def test_cross_type_done_callback_context(loop, future_kind):
    fut = future_class(future_kind)(loop=loop)
    ctx = contextvars.Context()
    ctx.run(var.set, "cross ctx")
    seen = []
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    fut.set_result(None)
    run(loop, asyncio.sleep(0))
    assert seen == ["cross ctx"]


@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_pending_task_destroyed_reported(loop, task_kind):
    contexts = collecting_handler(loop)
    started = loop.create_future()

    async def waiter():
        fut = asyncio.get_running_loop().create_future()
        started.set_result(None)
        await fut

    task = task_class(task_kind)(waiter(), loop=loop)
    run(loop, started)
    del task
    gc.collect()
    assert "Task was destroyed but it is pending!" in messages(contexts)


@pytest.mark.parametrize("task_kind", TASK_KINDS)
def test_cross_type_finished_task_collected(loop, task_kind):
    async def coro():
        me = asyncio.current_task()
        await asyncio.sleep(0)
        return [me]

    task = task_class(task_kind)(coro(), loop=loop)
    ref = weakref.ref(task)
    finish(loop, task)
    task.result()
    del task
    gc.collect()
    assert ref() is None


# --------------------------------------------------------------------------
# differential: random cancellation programs traced on the stdlib and on quickloop
# --------------------------------------------------------------------------
# Each seed makes a program of a few tasks and futures doing sleeps, awaits of futures
# and (acyclic) tasks, cancels with and without messages, nested asyncio.timeout(0)
# blocks, shields, uncancel(), swallowed cancellations.  It only uses call_soon-level
# scheduling (no real timers), so its trace is deterministic; quickloop must produce
# exactly the stdlib's trace.  Variants: the quickloop loop (and in debug mode),
# quickloop types on the stdlib loop, asyncio types on the quickloop loop.


def _gen_ops(rng, n_tasks, n_futs, depth=0, length=None, me=0):
    ops = []
    for _ in range(length or rng.randint(1, 6)):
        r = rng.random()
        if r < 0.15:
            ops.append(("yield",))
        elif r < 0.30:
            ops.append(("await_fut", rng.randrange(n_futs)))
        elif r < 0.40:
            ops.append(("set_fut", rng.randrange(n_futs), rng.randint(0, 99)))
        elif r < 0.45:
            ops.append(("exc_fut", rng.randrange(n_futs)))
        elif r < 0.50:
            ops.append(("cancel_fut", rng.randrange(n_futs), rng.choice([None, "fm"])))
        elif r < 0.62:
            ops.append(("cancel_task", rng.randrange(n_tasks), rng.choice([None, "tm"])))
        elif r < 0.72:
            ops.append(("await_task", rng.randrange(me, n_tasks)))
        elif r < 0.80 and depth < 2:
            ops.append(("timeout0" if rng.random() < 0.6 else "timeout_long",
                        _gen_ops(rng, n_tasks, n_futs, depth + 1, me=me)))
        elif r < 0.85:
            ops.append(("shield_task", rng.randrange(me + 1, n_tasks) if me + 1 < n_tasks else me))
        elif r < 0.90:
            ops.append(("uncancel",))
        elif r < 0.95 and depth < 2:
            ops.append(("swallow", _gen_ops(rng, n_tasks, n_futs, depth + 1, me=me)))
        else:
            ops.append(("cancelling",))
    return ops


def _gen_program(seed):
    rng = random.Random(seed)
    n_tasks = rng.randint(2, 6)
    n_futs = rng.randint(1, 4)
    return n_tasks, n_futs, [_gen_ops(rng, n_tasks, n_futs, length=rng.randint(2, 8), me=i)
                             for i in range(n_tasks)]


def _describe(exc):
    if isinstance(exc, RuntimeError):
        return (type(exc).__name__, str(exc).split(":")[0])
    return (type(exc).__name__, exc.args if not isinstance(exc, BaseExceptionGroup) else ())


def _run_program(loop, program, task_factory=None, future_factory=None):
    task_factory = task_factory or (lambda coro, name: loop.create_task(coro, name=name))
    future_factory = future_factory or loop.create_future
    n_tasks, n_futs, bodies = program
    trace = []
    futs = []
    tasks = []

    async def run_ops(i, ops):
        for op in ops:
            kind = op[0]
            me = asyncio.current_task()
            if kind == "yield":
                await asyncio.sleep(0)
            elif kind == "await_fut":
                try:
                    trace.append((i, "fut result", op[1], await futs[op[1]]))
                except (asyncio.CancelledError, ValueError) as exc:
                    trace.append((i, "fut raised", op[1], _describe(exc)))
                    if isinstance(exc, asyncio.CancelledError):
                        raise
            elif kind == "set_fut":
                if not futs[op[1]].done():
                    futs[op[1]].set_result(op[2])
            elif kind == "exc_fut":
                if not futs[op[1]].done():
                    futs[op[1]].set_exception(ValueError(op[1]))
            elif kind == "cancel_fut":
                trace.append((i, "cancel fut", op[1], futs[op[1]].cancel(op[2])))
            elif kind == "cancel_task":
                trace.append((i, "cancel task", op[1], tasks[op[1]].cancel(op[2]),
                              tasks[op[1]].cancelling()))
            elif kind == "await_task":
                try:
                    trace.append((i, "task result", op[1], await tasks[op[1]]))
                except asyncio.CancelledError as exc:
                    trace.append((i, "task cancelled", op[1], _describe(exc), me.cancelling()))
                    raise
                except Exception as exc:
                    trace.append((i, "task raised", op[1], _describe(exc)))
            elif kind in ("timeout0", "timeout_long"):
                try:
                    async with asyncio.timeout(0 if kind == "timeout0" else 3600) as cm:
                        await run_ops(i, op[1])
                    trace.append((i, "timeout exit", cm.expired(), me.cancelling()))
                except TimeoutError:
                    trace.append((i, "TimeoutError", me.cancelling()))
            elif kind == "shield_task":
                try:
                    trace.append((i, "shield result", op[1], await asyncio.shield(tasks[op[1]])))
                except asyncio.CancelledError as exc:
                    trace.append((i, "shield cancelled", _describe(exc), me.cancelling()))
                    raise
                except Exception as exc:
                    trace.append((i, "shield raised", _describe(exc)))
            elif kind == "uncancel":
                trace.append((i, "uncancel", me.uncancel()))
            elif kind == "cancelling":
                trace.append((i, "cancelling", me.cancelling()))
            elif kind == "swallow":
                try:
                    await run_ops(i, op[1])
                except asyncio.CancelledError as exc:
                    trace.append((i, "swallowed", _describe(exc), me.cancelling()))

    async def body(i):
        trace.append((i, "start"))
        try:
            await run_ops(i, bodies[i])
        except BaseException as exc:
            trace.append((i, "end by", _describe(exc)))
            raise
        trace.append((i, "end"))
        return i * 1000

    async def main():
        futs.extend(future_factory() for _ in range(n_futs))
        tasks.extend(task_factory(body(i), f"T{i}") for i in range(n_tasks))
        for _ in range(30):
            await asyncio.sleep(0)
        for rnd in range(50):
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            trace.append(("main", "cleanup round", rnd, [tasks.index(t) for t in pending]))
            for f in futs:
                f.cancel("cleanup")
            for t in pending:
                t.cancel("cleanup")
            for _ in range(5):
                await asyncio.sleep(0)
        for t in tasks:
            if not t.done():
                trace.append(("main", "still pending", tasks.index(t)))
            elif t.cancelled():
                trace.append(("main", "final", tasks.index(t), "cancelled", t.cancelling()))
            elif t.exception() is not None:
                trace.append(("main", "final", tasks.index(t), _describe(t.exception())))
            else:
                trace.append(("main", "final", tasks.index(t), t.result(), t.cancelling()))
        for f in futs:
            if f.done() and not f.cancelled():
                f.exception()

    loop.run_until_complete(main())
    return trace


def _variant_setup(variant, side):
    """-> (loop, task_factory or None, future_factory or None) for one side of a comparison."""
    if side == "referee":
        return make_loop("stdlib"), None, None
    ql = need_quickloop()
    if variant in ("quickloop-loop", "quickloop-loop-debug"):
        return make_loop("quickloop"), None, None
    if variant == "quickloop-types-on-stdlib-loop":
        loop = make_loop("stdlib")
        return (loop, lambda coro, name: ql.Task(coro, loop=loop, name=name),
                lambda: ql.Future(loop=loop))
    loop = make_loop("quickloop")  # asyncio-types-on-quickloop-loop
    return (loop, lambda coro, name: asyncio.Task(coro, loop=loop, name=name),
            lambda: asyncio.Future(loop=loop))


DIFF_VARIANTS = ["quickloop-loop", "quickloop-loop-debug", "quickloop-types-on-stdlib-loop",
                 "asyncio-types-on-quickloop-loop"]
DIFF_CHUNK = 50


@pytest.mark.parametrize("chunk", range(8))
@pytest.mark.parametrize("variant", DIFF_VARIANTS)
def test_differential_random_cancellation_quickloop(variant, chunk):
    mismatches = []
    for seed in range(chunk * DIFF_CHUNK, (chunk + 1) * DIFF_CHUNK):
        traces = []
        for side in ("referee", "candidate"):
            loop, task_factory, future_factory = _variant_setup(variant, side)
            loop.set_exception_handler(lambda lp, ctx: None)
            if variant == "quickloop-loop-debug":
                loop.set_debug(True)
            try:
                traces.append(_run_program(loop, _gen_program(seed), task_factory, future_factory))
            except Exception as exc:
                if side == "referee":
                    raise  # the program itself is broken
                traces.append([("raised", repr(exc))])
            finally:
                loop.close()
        if traces[0] != traces[1]:
            ref, got = traces
            first = next((k for k, (a, b) in enumerate(zip(ref, got)) if a != b),
                         min(len(ref), len(got)))
            mismatches.append(f"seed {seed} event {first}: stdlib "
                              f"{ref[first] if first < len(ref) else '<end>'!r} vs "
                              f"{got[first] if first < len(got) else '<end>'!r}")
    assert not mismatches, "\n".join(mismatches[:5])

