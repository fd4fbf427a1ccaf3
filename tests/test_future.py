"""Futures from loop.create_future(): states, results, callbacks, cancellation, logging.

Mirrors csrc/future.c.  Every test body runs on the stdlib loop (the referee, where
create_future() gives asyncio's C Future) and on quickloop (quickloop.Future); the
few quickloop-only checks skip on the stdlib with the reason.
"""
import asyncio
import contextvars
import functools
import gc
import sys
import types
import warnings
import weakref

import pytest

try:
    import quickloop
except ImportError:  # conftest reports it
    quickloop = None

TIMEOUT = 10.0


def quickloop_only(loop_kind, reason):
    if loop_kind == "stdlib":
        pytest.skip(f"quickloop-only: {reason}")


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


def run_once(loop):
    """Run exactly one loop iteration: everything queued now runs, nothing newer."""
    loop.call_soon(loop.stop)
    loop.run_forever()


def collecting_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    return contexts


def expected_future_type(loop_kind):
    return asyncio.Future if loop_kind == "stdlib" else quickloop.Future


# --------------------------------------------------------------------------
# type
# --------------------------------------------------------------------------

def test_create_future_type(loop, loop_kind):
    fut = loop.create_future()
    assert type(fut) is expected_future_type(loop_kind)
    assert isinstance(fut, asyncio.Future)
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop


def test_quickloop_future_is_subclass_of_asyncio_future():
    if quickloop is None:
        pytest.fail("quickloop is not importable")
    assert issubclass(quickloop.Future, asyncio.Future)
    assert issubclass(quickloop.Task, asyncio.Task)


def test_future_constructed_directly(loop):
    fut = type(loop.create_future())(loop=loop)
    assert fut.get_loop() is loop
    assert not fut.done()
    fut.set_result(5)
    assert fut.result() == 5


def test_class_getitem(loop):
    ftype = type(loop.create_future())
    alias = ftype[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is ftype
    assert alias.__args__ == (int,)


def test_quickloop_future_class_getitem():
    if quickloop is None:
        pytest.fail("quickloop is not importable")
    alias = quickloop.Future[int]
    assert alias.__origin__ is quickloop.Future
    assert alias.__args__ == (int,)
    alias = quickloop.Task[str]
    assert alias.__origin__ is quickloop.Task


def test_future_supports_weakref(loop):
    fut = loop.create_future()
    ref = weakref.ref(fut)
    assert ref() is fut
    del fut
    gc.collect()
    assert ref() is None


# --------------------------------------------------------------------------
# states and their errors
# --------------------------------------------------------------------------

def test_pending_state(loop):
    fut = loop.create_future()
    assert fut.done() is False
    assert fut.cancelled() is False
    assert fut._state == "PENDING"
    with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not set\.$"):
        fut.result()
    with pytest.raises(asyncio.InvalidStateError, match=r"^Exception is not set\.$"):
        fut.exception()


def test_set_result(loop):
    fut = loop.create_future()
    obj = object()
    assert fut.set_result(obj) is None
    assert fut.done() is True
    assert fut.cancelled() is False
    assert fut._state == "FINISHED"
    assert fut.result() is obj
    assert fut.exception() is None


def test_set_result_none(loop):
    fut = loop.create_future()
    fut.set_result(None)
    assert fut.done()
    assert fut.result() is None


@pytest.mark.parametrize("second", ["set_result", "set_exception", "cancel"])
@pytest.mark.parametrize("first", ["set_result", "set_exception", "cancel"])
def test_done_future_refuses_to_change(loop, first, second):
    fut = loop.create_future()
    acts = {
        "set_result": lambda: fut.set_result(1),
        "set_exception": lambda: fut.set_exception(ValueError("first")),
        "cancel": lambda: fut.cancel(),
    }
    acts[first]()
    if first == "set_exception":
        fut.exception()  # retrieved: nothing logged whatever happens next
    state = fut._state
    if second == "cancel":
        assert fut.cancel() is False
    else:
        with pytest.raises(asyncio.InvalidStateError, match="^invalid state$"):
            acts[second]()
    assert fut._state == state
    if first == "set_result":
        assert fut.result() == 1
    elif first == "set_exception":
        assert str(fut.exception()) == "first"
    else:
        assert fut.cancelled()


def test_set_exception_instance(loop):
    fut = loop.create_future()
    exc = ValueError("boom")
    fut.set_exception(exc)
    assert fut.done() and not fut.cancelled()
    assert fut._state == "FINISHED"
    assert fut.exception() is exc
    with pytest.raises(ValueError, match="boom") as ei:
        fut.result()
    assert ei.value is exc


def test_set_exception_class_is_instantiated(loop):
    fut = loop.create_future()
    fut.set_exception(KeyError)
    exc = fut.exception()
    assert type(exc) is KeyError
    assert exc.args == ()
    with pytest.raises(KeyError):
        fut.result()


@pytest.mark.parametrize("stop", [StopIteration, StopIteration(), StopIteration(3)],
                         ids=["class", "instance", "instance-with-value"])
def test_set_exception_refuses_stop_iteration(loop, stop):
    fut = loop.create_future()
    if sys.version_info >= (3, 13):
        # 3.13: the future fails with a RuntimeError caused by the StopIteration.
        fut.set_exception(stop)
        exc = fut.exception()
        assert type(exc) is RuntimeError
        assert str(exc).startswith("StopIteration interacts badly with generators")
        assert isinstance(exc.__cause__, StopIteration)
        assert exc.__context__ is exc.__cause__
        return
    with pytest.raises(TypeError, match="StopIteration interacts badly with generators"):
        fut.set_exception(stop)
    assert not fut.done()
    fut.set_result(1)  # still usable
    assert fut.result() == 1


@pytest.mark.parametrize("bad", [1, "x", None, object(), int])
def test_set_exception_refuses_non_exceptions(loop, bad):
    fut = loop.create_future()
    with pytest.raises(TypeError):
        fut.set_exception(bad)
    assert not fut.done()


def test_set_exception_base_exception(loop):
    fut = loop.create_future()
    fut.set_exception(KeyboardInterrupt())
    assert isinstance(fut.exception(), KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        fut.result()


def test_result_raises_same_exception_each_time(loop):
    fut = loop.create_future()
    fut.set_exception(ValueError("again"))
    for _ in range(3):
        with pytest.raises(ValueError, match="again"):
            fut.result()


# --------------------------------------------------------------------------
# cancel
# --------------------------------------------------------------------------

def test_cancel(loop):
    fut = loop.create_future()
    assert fut.cancel() is True
    assert fut.cancelled() is True
    assert fut.done() is True
    assert fut._state == "CANCELLED"
    with pytest.raises(asyncio.CancelledError) as ei:
        fut.result()
    assert ei.value.args == ()
    with pytest.raises(asyncio.CancelledError):
        fut.exception()
    assert fut.cancel() is False
    assert fut.cancelled() is True


@pytest.mark.parametrize("how", ["keyword", "positional"])
def test_cancel_message(loop, how):
    fut = loop.create_future()
    if how == "keyword":
        assert fut.cancel(msg="the reason") is True
    else:
        assert fut.cancel("the reason") is True
    with pytest.raises(asyncio.CancelledError) as ei:
        fut.result()
    assert ei.value.args == ("the reason",)
    with pytest.raises(asyncio.CancelledError) as ei:
        fut.exception()
    assert ei.value.args == ("the reason",)
    # a second cancel does not replace the message
    assert fut.cancel("other") is False
    with pytest.raises(asyncio.CancelledError) as ei:
        fut.result()
    assert ei.value.args == ("the reason",)


def test_cancel_non_string_message(loop):
    fut = loop.create_future()
    msg = ("tuple", 1)
    fut.cancel(msg)
    with pytest.raises(asyncio.CancelledError) as ei:
        fut.result()
    assert ei.value.args == (msg,)


def test_cancel_message_reaches_await(loop):
    fut = loop.create_future()

    async def waiter():
        try:
            await fut
        except asyncio.CancelledError as exc:
            return ("cancelled", exc.args)
        return ("not cancelled",)

    async def main():
        task = loop.create_task(waiter())
        await asyncio.sleep(0)
        fut.cancel("stop waiting")
        return await task

    assert run(loop, main()) == ("cancelled", ("stop waiting",))


def test_cancel_message_on_run_until_complete(loop):
    fut = loop.create_future()
    loop.call_soon(fut.cancel, "from a callback")
    with pytest.raises(asyncio.CancelledError) as ei:
        loop.run_until_complete(fut)
    assert ei.value.args == ("from a callback",)


def test_cancel_schedules_callbacks(loop):
    fut = loop.create_future()
    seen = []
    fut.add_done_callback(lambda f: seen.append(f.cancelled()))
    fut.cancel()
    assert seen == []
    run_once(loop)
    assert seen == [True]


# --------------------------------------------------------------------------
# done callbacks
# --------------------------------------------------------------------------

def test_done_callbacks_run_in_order_not_synchronously(loop):
    fut = loop.create_future()
    calls = []
    for i in range(5):
        fut.add_done_callback(functools.partial(lambda i, f: calls.append((i, f)), i))
    fut.set_result("r")
    assert calls == []  # scheduled, not run by set_result
    run_once(loop)
    assert calls == [(i, fut) for i in range(5)]


def test_done_callbacks_on_set_exception(loop):
    fut = loop.create_future()
    calls = []
    fut.add_done_callback(lambda f: calls.append(type(f.exception())))
    fut.set_exception(ValueError())
    assert calls == []
    run_once(loop)
    assert calls == [ValueError]


def test_many_done_callbacks(loop):
    fut = loop.create_future()
    calls = []
    n = 1000
    for i in range(n):
        fut.add_done_callback(functools.partial(lambda i, f: calls.append(i), i))
    fut.set_result(None)
    run_once(loop)
    assert calls == list(range(n))


def test_callback_added_after_done_is_scheduled(loop):
    fut = loop.create_future()
    fut.set_result(7)
    calls = []
    fut.add_done_callback(lambda f: calls.append(f.result()))
    assert calls == []  # not run synchronously
    fut.add_done_callback(lambda f: calls.append("second"))
    run_once(loop)
    assert calls == [7, "second"]


def test_callback_added_after_cancel_is_scheduled(loop):
    fut = loop.create_future()
    fut.cancel()
    calls = []
    fut.add_done_callback(lambda f: calls.append(f.cancelled()))
    assert calls == []
    run_once(loop)
    assert calls == [True]


def test_callback_runs_once(loop):
    fut = loop.create_future()
    calls = []
    fut.add_done_callback(calls.append)
    fut.set_result(None)
    run_once(loop)
    run_once(loop)
    run(loop, asyncio.sleep(0))
    assert calls == [fut]


def test_callback_added_by_callback(loop):
    fut = loop.create_future()
    calls = []

    def first(f):
        calls.append("first")
        f.add_done_callback(lambda _: calls.append("added later"))

    fut.add_done_callback(first)
    fut.add_done_callback(lambda f: calls.append("second"))
    fut.set_result(None)
    run_once(loop)
    assert calls == ["first", "second"]
    run_once(loop)
    assert calls == ["first", "second", "added later"]


var = contextvars.ContextVar("var", default="default")


def test_callback_context_kwarg(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "in ctx")
    fut = loop.create_future()
    seen = []
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    fut.set_result(None)
    run_once(loop)
    assert seen == ["in ctx"]
    assert var.get() == "default"


def test_callback_context_kwarg_after_done(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "late ctx")
    fut = loop.create_future()
    fut.set_result(None)
    seen = []
    fut.add_done_callback(lambda f: seen.append(var.get()), context=ctx)
    run_once(loop)
    assert seen == ["late ctx"]


def test_callback_context_changes_are_kept_in_that_context(loop):
    ctx = contextvars.Context()
    fut = loop.create_future()
    fut.add_done_callback(lambda f: var.set("set by callback"), context=ctx)
    fut.set_result(None)
    run_once(loop)
    assert ctx[var] == "set by callback"
    assert var.get() == "default"


def test_callback_default_context_is_copied_at_add_time(loop):
    def body():
        fut = loop.create_future()
        seen = []
        var.set("at add time")
        fut.add_done_callback(lambda f: seen.append(var.get()))
        var.set("changed after add")
        fut.set_result(None)
        return seen

    seen = contextvars.Context().run(body)
    run_once(loop)
    assert seen == ["at add time"]


def test_callback_context_none_means_current(loop):
    def body():
        fut = loop.create_future()
        seen = []
        var.set("current")
        fut.add_done_callback(lambda f: seen.append(var.get()), context=None)
        fut.set_result(None)
        return seen

    seen = contextvars.Context().run(body)
    run_once(loop)
    assert seen == ["current"]


def test_add_done_callback_rejects_extra_positional(loop):
    fut = loop.create_future()
    with pytest.raises(TypeError):
        fut.add_done_callback(print, contextvars.copy_context())


def test_remove_done_callback_counts(loop):
    fut = loop.create_future()
    calls = []

    def a(f):
        calls.append("a")

    def b(f):
        calls.append("b")

    def c(f):
        calls.append("c")

    for cb in (a, b, a, c, a, b):
        fut.add_done_callback(cb)
    assert fut.remove_done_callback(a) == 3
    assert fut.remove_done_callback(a) == 0
    fut.set_result(None)
    run_once(loop)
    assert calls == ["b", "c", "b"]


def test_remove_done_callback_first_and_all(loop):
    fut = loop.create_future()
    calls = []

    def a(f):
        calls.append("a")

    def b(f):
        calls.append("b")

    fut.add_done_callback(a)
    fut.add_done_callback(b)
    fut.add_done_callback(a)
    assert fut.remove_done_callback(b) == 1
    assert fut.remove_done_callback(a) == 2
    assert fut.remove_done_callback(a) == 0
    fut.add_done_callback(b)
    fut.set_result(None)
    run_once(loop)
    assert calls == ["b"]


def test_remove_done_callback_uses_equality(loop):
    fut = loop.create_future()
    calls = []

    class Obj:
        def cb(self, f):
            calls.append("cb")

    obj = Obj()
    fut.add_done_callback(obj.cb)  # a new bound method each time: equal, not identical
    fut.add_done_callback(obj.cb)
    assert fut.remove_done_callback(obj.cb) == 2
    fut.set_result(None)
    run_once(loop)
    assert calls == []


def test_remove_done_callback_unknown_and_after_done(loop):
    fut = loop.create_future()
    assert fut.remove_done_callback(print) == 0
    calls = []
    fut.add_done_callback(calls.append)
    fut.set_result(None)
    # once done, callbacks are already scheduled: nothing left to remove
    assert fut.remove_done_callback(calls.append) == 0
    run_once(loop)
    assert calls == [fut]


def test_remove_then_add_keeps_order(loop):
    fut = loop.create_future()
    calls = []
    cbs = {name: (lambda name: lambda f: calls.append(name))(name) for name in "abcde"}
    for name in "abc":
        fut.add_done_callback(cbs[name])
    assert fut.remove_done_callback(cbs["a"]) == 1
    fut.add_done_callback(cbs["d"])
    assert fut.remove_done_callback(cbs["c"]) == 1
    fut.add_done_callback(cbs["e"])
    fut.set_result(None)
    run_once(loop)
    assert calls == ["b", "d", "e"]


def test_remove_every_callback_then_add(loop):
    fut = loop.create_future()
    calls = []

    def a(f):
        calls.append("a")

    def b(f):
        calls.append("b")

    for _ in range(10):
        fut.add_done_callback(a)
    assert fut.remove_done_callback(a) == 10
    fut.add_done_callback(b)
    fut.add_done_callback(a)
    fut.set_result(None)
    run_once(loop)
    assert calls == ["b", "a"]


def test_callbacks_attribute(loop):
    fut = loop.create_future()
    assert not fut._callbacks

    def cb(f):
        pass

    fut.add_done_callback(cb)
    callbacks = fut._callbacks
    assert len(callbacks) == 1
    assert callbacks[0][0] is cb


def test_callbacks_attribute_none_when_empty(loop):
    # As asyncio's C Future reads (CPython's test_callbacks_copy, gh-125789):
    # None when it holds no callbacks, a new list each time otherwise.
    fut = loop.create_future()
    assert fut._callbacks is None

    def f1(_):
        pass

    def f2(_):
        pass

    fut.add_done_callback(f1)
    fut.add_done_callback(f2)
    assert fut._callbacks is not fut._callbacks
    assert [cb for cb, _ in fut._callbacks] == [f1, f2]
    fut.remove_done_callback(f1)
    assert [cb for cb, _ in fut._callbacks] == [f2]
    fut.remove_done_callback(f2)
    assert fut._callbacks is None
    fut.add_done_callback(f1)
    fut.set_result(None)
    assert fut._callbacks is None       # scheduled: the future holds none now
    run_once(loop)


def test_done_callback_that_raises_goes_to_handler(loop):
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    calls = []
    err = ZeroDivisionError("in callback")

    def bad_cb(f):
        calls.append("bad")
        raise err

    fut.add_done_callback(bad_cb)
    fut.add_done_callback(lambda f: calls.append("after"))
    fut.set_result(1)
    run(loop, asyncio.sleep(0))
    assert calls == ["bad", "after"]
    assert len(contexts) == 1
    ctx = contexts[0]
    assert ctx["message"].startswith("Exception in callback")
    assert "bad_cb" in ctx["message"]
    assert ctx["exception"] is err
    assert "handle" in ctx
    # the loop still works afterwards
    assert run(loop, asyncio.sleep(0, "still running")) == "still running"


def test_done_callback_base_exception_propagates(loop):
    fut = loop.create_future()

    def cb(f):
        raise KeyboardInterrupt

    fut.add_done_callback(cb)
    fut.set_result(None)
    with pytest.raises(KeyboardInterrupt):
        run_once(loop)


# --------------------------------------------------------------------------
# attributes
# --------------------------------------------------------------------------

def test_get_loop(loop):
    fut = loop.create_future()
    assert fut.get_loop() is loop
    assert fut._loop is loop


def test_asyncio_future_blocking(loop):
    fut = loop.create_future()
    assert fut._asyncio_future_blocking is False
    fut._asyncio_future_blocking = True
    assert fut._asyncio_future_blocking is True
    fut._asyncio_future_blocking = False
    assert fut._asyncio_future_blocking is False
    with pytest.raises(AttributeError):
        del fut._asyncio_future_blocking


def test_log_traceback(loop):
    fut = loop.create_future()
    assert fut._log_traceback is False
    fut.set_exception(ValueError())
    assert fut._log_traceback is True
    with pytest.raises(ValueError, match="_log_traceback can only be set to False"):
        fut._log_traceback = True
    fut._log_traceback = False
    assert fut._log_traceback is False
    with pytest.raises(ValueError, match="_log_traceback can only be set to False"):
        fut._log_traceback = True
    assert fut._log_traceback is False


def test_log_traceback_cleared_by_exception_and_result(loop):
    fut = loop.create_future()
    fut.set_exception(ValueError())
    fut.exception()
    assert fut._log_traceback is False
    fut2 = loop.create_future()
    fut2.set_exception(ValueError())
    with pytest.raises(ValueError):
        fut2.result()
    assert fut2._log_traceback is False


def test_log_traceback_not_set_by_result_or_cancel(loop):
    fut = loop.create_future()
    fut.set_result(1)
    assert fut._log_traceback is False
    fut2 = loop.create_future()
    fut2.cancel()
    assert fut2._log_traceback is False


def test_private_result_and_exception_attributes(loop):
    fut = loop.create_future()
    assert fut._result is None
    assert fut._exception is None
    fut.set_result("value")
    assert fut._result == "value"
    fut2 = loop.create_future()
    exc = ValueError()
    fut2.set_exception(exc)
    assert fut2._exception is exc
    fut2.exception()


# --------------------------------------------------------------------------
# await / __iter__
# --------------------------------------------------------------------------

def test_await_result(loop):
    fut = loop.create_future()

    async def main():
        loop.call_soon(fut.set_result, "awaited")
        return await fut

    assert run(loop, main()) == "awaited"


def test_await_exception(loop):
    fut = loop.create_future()

    async def main():
        loop.call_soon(fut.set_exception, ValueError("awaited error"))
        await fut

    with pytest.raises(ValueError, match="awaited error"):
        run(loop, main())


def test_await_done_future_does_not_yield(loop):
    fut = loop.create_future()
    fut.set_result(3)
    it = fut.__await__()
    with pytest.raises(StopIteration) as ei:
        next(it)
    assert ei.value.value == 3


def test_await_iterator_protocol(loop):
    fut = loop.create_future()
    it = fut.__await__()
    assert iter(it) is it
    yielded = next(it)
    assert yielded is fut
    assert fut._asyncio_future_blocking is True
    fut.set_result("done")
    with pytest.raises(StopIteration) as ei:
        it.send(None)
    assert ei.value.value == "done"


def test_iter_is_await(loop):
    fut = loop.create_future()
    it = iter(fut)
    assert next(it) is fut
    fut.set_result(11)
    with pytest.raises(StopIteration) as ei:
        next(it)
    assert ei.value.value == 11


def test_await_iterator_raises_exception(loop):
    fut = loop.create_future()
    it = fut.__await__()
    next(it)
    fut.set_exception(ValueError("through iter"))
    with pytest.raises(ValueError, match="through iter"):
        next(it)


def test_await_iterator_resumed_while_pending(loop):
    fut = loop.create_future()
    it = fut.__await__()
    next(it)
    # resumed although the future is still pending: stdlib's C iterator raises
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        next(it)


def test_await_iterator_throw(loop):
    fut = loop.create_future()
    it = fut.__await__()
    next(it)
    with pytest.raises(KeyError):
        it.throw(KeyError("thrown"))
    fut._asyncio_future_blocking = False
    it2 = fut.__await__()
    assert next(it2) is fut
    it2.close()
    fut.set_result(None)


def test_await_iterator_throw_signatures(loop):
    """As CPython's test_future_iter_throw: from 3.12 the (type, exc, tb)
    form warns (DeprecationWarning), before it does not; bad forms raise
    TypeError and a class with a None value raises that class."""
    it = iter(loop.create_future())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(Exception, match="zebra"):
            it.throw(Exception, Exception("zebra"), None)
        with pytest.raises(KeyError):
            it.throw(KeyError("one argument"))
    deprecations = [str(w.message) for w in record if w.category is DeprecationWarning]
    if sys.version_info >= (3, 12):
        assert deprecations == ["the (type, exc, tb) signature of throw() is deprecated, "
                                "use the single-arg signature instead."]
    else:
        assert deprecations == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError):
            it.throw(Exception, Exception("elephant"), 32)
        with pytest.raises(TypeError):
            it.throw(Exception("elephant"), Exception("elephant"))
        with pytest.raises(ValueError):
            it.throw(ValueError, None, None)
    with pytest.raises(TypeError):
        it.throw(list)


def test_yield_from_future_in_generator(loop):
    fut = loop.create_future()

    @types.coroutine
    def gen():
        return (yield from fut)

    async def main():
        loop.call_soon(fut.set_result, "via yield from")
        return await gen()

    assert run(loop, main()) == "via yield from"


# --------------------------------------------------------------------------
# repr
# --------------------------------------------------------------------------

def test_repr_states(loop):
    fut = loop.create_future()
    assert repr(fut) == "<Future pending>"
    fut.set_result(42)
    assert repr(fut) == "<Future finished result=42>"
    fut2 = loop.create_future()
    fut2.set_exception(ValueError("x"))
    assert repr(fut2) == "<Future finished exception=ValueError('x')>"
    fut2.exception()
    fut3 = loop.create_future()
    fut3.cancel()
    assert repr(fut3) == "<Future cancelled>"


def test_repr_with_callbacks(loop):
    fut = loop.create_future()

    def my_callback(f):
        pass

    fut.add_done_callback(my_callback)
    r = repr(fut)
    assert r.startswith("<Future pending cb=[")
    assert "my_callback" in r


def test_repr_recursive_result(loop):
    fut = loop.create_future()
    fut.set_result(fut)
    r = repr(fut)
    assert "finished" in r
    assert "..." in r


# --------------------------------------------------------------------------
# "Future exception was never retrieved"
# --------------------------------------------------------------------------

def test_unretrieved_exception_logged_on_gc(loop):
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    ftype = type(fut)
    exc = ValueError("never retrieved")
    fut.set_exception(exc)
    del fut
    gc.collect()
    msgs = [c for c in contexts if c["message"] == "Future exception was never retrieved"]
    assert len(msgs) == 1, contexts
    assert msgs[0]["exception"] is exc
    assert type(msgs[0]["future"]) is ftype


def test_unretrieved_exception_in_cycle_logged_on_gc(loop):
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    exc = ValueError("cycle")
    exc.fut = fut  # future -> exception -> future
    fut.set_exception(exc)
    del fut, exc
    gc.collect()
    msgs = [c for c in contexts if c["message"] == "Future exception was never retrieved"]
    assert len(msgs) == 1, contexts


@pytest.mark.parametrize("retrieve", ["exception", "result", "clear_log_traceback"])
def test_retrieved_exception_not_logged(loop, retrieve):
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    fut.set_exception(ValueError("retrieved"))
    if retrieve == "exception":
        fut.exception()
    elif retrieve == "result":
        with pytest.raises(ValueError):
            fut.result()
    else:
        fut._log_traceback = False
    del fut
    gc.collect()
    assert contexts == []


def test_awaited_exception_not_logged(loop):
    contexts = collecting_handler(loop)
    fut = loop.create_future()

    async def main(f):
        loop.call_soon(f.set_exception, ValueError("awaited"))
        try:
            await f
        except ValueError:
            return "caught"

    assert run(loop, main(fut)) == "caught"
    del fut
    gc.collect()
    assert contexts == []


@pytest.mark.parametrize("outcome", ["pending", "result", "cancelled"])
def test_no_exception_nothing_logged(loop, outcome):
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    if outcome == "result":
        fut.set_result(1)
    elif outcome == "cancelled":
        fut.cancel()
    del fut
    gc.collect()
    assert contexts == []


def test_unretrieved_exception_with_pending_callbacks_collected(loop):
    """A future done with an exception, dropped with callbacks queued: logged once, no crash."""
    contexts = collecting_handler(loop)
    fut = loop.create_future()
    fut.add_done_callback(lambda f: None)
    fut.set_exception(ValueError("queued"))
    del fut
    gc.collect()
    assert contexts == []  # the queued callback still holds the future
    run_once(loop)
    gc.collect()
    msgs = [c for c in contexts if c["message"] == "Future exception was never retrieved"]
    assert len(msgs) == 1


def test_future_in_cycle_with_callback_is_collected(loop):
    fut = loop.create_future()
    ref = weakref.ref(fut)

    class Holder:
        def cb(self, f):
            pass

    h = Holder()
    h.fut = fut  # fut -> callbacks -> bound method -> h -> fut
    fut.add_done_callback(h.cb)
    del fut, h
    gc.collect()
    assert ref() is None


def test_future_result_cycle_is_collected(loop):
    fut = loop.create_future()
    ref = weakref.ref(fut)
    fut.set_result([fut])
    del fut
    gc.collect()
    assert ref() is None


# --------------------------------------------------------------------------
# references are released
# --------------------------------------------------------------------------

class Obj:
    pass


@pytest.mark.parametrize("outcome", ["result", "exception"])
def test_outcome_released_with_future(loop, outcome):
    fut = loop.create_future()
    if outcome == "result":
        obj = Obj()
        fut.set_result(obj)
    else:
        class Err(Exception):
            pass
        obj = Err()
        fut.set_exception(obj)
        fut.exception()
    ref = weakref.ref(obj)
    del obj
    assert ref() is not None
    del fut
    gc.collect()
    assert ref() is None


def test_callbacks_released_after_they_ran(loop):
    fut = loop.create_future()
    calls = []

    class Callback:
        def __call__(self, f):
            calls.append(f)

    cbs = [Callback() for _ in range(3)]
    refs = [weakref.ref(cb) for cb in cbs]
    ctx = contextvars.Context()
    ctx_ref = weakref.ref(ctx) if hasattr(ctx, "__weakref__") else None
    for cb in cbs:
        fut.add_done_callback(cb, context=ctx)
    del cbs, cb, ctx
    fut.set_result(None)
    run_once(loop)
    assert len(calls) == 3
    gc.collect()
    assert all(r() is None for r in refs)
    if ctx_ref is not None:
        assert ctx_ref() is None


def test_removed_callbacks_released(loop):
    fut = loop.create_future()

    class Callback:
        def __call__(self, f):
            pass

    cb = Callback()
    ref = weakref.ref(cb)
    fut.add_done_callback(cb)
    fut.add_done_callback(cb)
    assert fut.remove_done_callback(cb) == 2
    del cb
    gc.collect()
    assert ref() is None
    fut.cancel()


def test_wrap_future_from_thread(loop):
    import concurrent.futures
    import threading

    cf = concurrent.futures.Future()

    async def main():
        wrapped = asyncio.wrap_future(cf)
        assert type(wrapped) is type(loop.create_future())
        threading.Thread(target=cf.set_result, args=("from thread",)).start()
        return await wrapped

    assert run(loop, main()) == "from thread"
