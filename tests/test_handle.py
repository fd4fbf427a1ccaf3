"""Handles returned by call_soon / call_later / call_at / call_soon_threadsafe.

Every test body runs on the stdlib loop (the referee) and on quickloop.  quickloop's
handles are not asyncio.Handle instances, so only behaviour is asserted, never types.
"""
import asyncio
import contextvars
import functools
import gc
import logging
import sys
import weakref

import pytest


def noop(*args):
    pass


async def coro_func():
    pass


# Every way of scheduling a plain callback: name -> (loop, callback, *args, **kw) -> handle
SCHEDULERS = {
    "call_soon": lambda loop, cb, *a, **kw: loop.call_soon(cb, *a, **kw),
    "call_soon_threadsafe": lambda loop, cb, *a, **kw: loop.call_soon_threadsafe(cb, *a, **kw),
    "call_later": lambda loop, cb, *a, **kw: loop.call_later(0, cb, *a, **kw),
    "call_at": lambda loop, cb, *a, **kw: loop.call_at(loop.time(), cb, *a, **kw),
}
SCHEDULER_NAMES = sorted(SCHEDULERS)


def run_briefly(loop):
    """Run the loop until everything due now (and timers armed with delay 0) ran."""
    done = loop.create_future()
    loop.call_later(0.001, done.set_result, None)
    loop.run_until_complete(done)
    loop.call_soon(loop.stop)
    loop.run_forever()


def handle_context(loop_kind, handle):
    # Handle.get_context() only exists from CPython 3.12; the 3.11 stdlib keeps the
    # context in the private _context slot.  quickloop must offer get_context().
    if loop_kind == "stdlib":
        return handle._context
    return handle.get_context()


# --------------------------------------------------------------------------
# cancel / cancelled / _run
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_handle_cancel_api(loop, how):
    handle = SCHEDULERS[how](loop, noop)
    assert handle.cancelled() is False
    assert handle.cancel() is None
    assert handle.cancelled() is True
    handle.cancel()  # cancelling twice is fine
    assert handle.cancelled() is True


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_cancelled_handle_never_runs(loop, how):
    calls = []
    keep = SCHEDULERS[how](loop, calls.append, "kept")
    gone = SCHEDULERS[how](loop, calls.append, "cancelled")
    gone.cancel()
    run_briefly(loop)
    assert calls == ["kept"]
    assert not keep.cancelled()


def test_cancel_from_earlier_callback_same_iteration(loop):
    calls = []
    victim = None

    def killer():
        calls.append("killer")
        victim.cancel()

    loop.call_soon(killer)
    victim = loop.call_soon(calls.append, "victim")
    loop.call_soon(calls.append, "bystander")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["killer", "bystander"]
    assert victim.cancelled()


def test_cancel_after_run_is_harmless(loop):
    calls = []
    handle = loop.call_soon(calls.append, 1)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]
    handle.cancel()
    assert handle.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]


def test_cancel_releases_callback_and_args(loop):
    """A cancelled pending handle no longer keeps its callback arguments alive."""
    class Arg:
        pass

    soon_arg, later_arg = Arg(), Arg()
    refs = [weakref.ref(soon_arg), weakref.ref(later_arg)]
    h1 = loop.call_soon(noop, soon_arg)
    h2 = loop.call_later(3600, noop, later_arg)
    del soon_arg, later_arg
    h1.cancel()
    h2.cancel()
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_handle_run_method(loop):
    calls = []
    handle = loop.call_soon(calls.append, "x")
    handle._run()
    assert calls == ["x"]
    handle.cancel()  # do not run it a second time through the loop
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == ["x"]


def test_handle_run_method_exception_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def boom():
        raise ZeroDivisionError("run")

    handle = loop.call_soon(boom)
    handle._run()  # does not raise
    handle.cancel()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert contexts[0]["handle"] is handle


def test_timer_handle_run_method(loop):
    calls = []
    handle = loop.call_later(3600, calls.append, "t")
    handle._run()
    assert calls == ["t"]
    handle.cancel()


# --------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_args_passed_positionally(loop, how):
    got = []

    def cb(*args, **kwargs):
        got.append((args, kwargs))

    marker = object()
    SCHEDULERS[how](loop, cb, 1, "two", None, marker)
    SCHEDULERS[how](loop, cb)
    run_briefly(loop)
    assert got == [((1, "two", None, marker), {}), ((), {})]


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_keyword_args_rejected(loop, how):
    with pytest.raises(TypeError):
        SCHEDULERS[how](loop, noop, bogus_keyword=1)


# --------------------------------------------------------------------------
# contexts
# --------------------------------------------------------------------------

VAR = contextvars.ContextVar("quickloop_test_var", default="default")


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_explicit_context(loop, loop_kind, how):
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, "in ctx")
    seen = []

    def cb():
        seen.append(VAR.get())
        VAR.set("set inside callback")

    handle = SCHEDULERS[how](loop, cb, context=ctx)
    assert handle_context(loop_kind, handle) is ctx
    run_briefly(loop)
    assert seen == ["in ctx"]
    assert ctx[VAR] == "set inside callback"  # ran *in* ctx, not a copy of it
    assert VAR.get() == "default"  # nothing leaked out


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_implicit_context_is_copied_at_schedule_time(loop, loop_kind, how):
    seen = []

    def reader(tag):
        seen.append((tag, VAR.get()))

    def writer():
        VAR.set("set inside callback")
        seen.append(("writer", VAR.get()))

    token = VAR.set("at schedule time")
    try:
        h = SCHEDULERS[how](loop, reader, "first")
        VAR.set("changed later")
        SCHEDULERS[how](loop, writer)
        SCHEDULERS[how](loop, reader, "second")
        ctx = handle_context(loop_kind, h)
        assert isinstance(ctx, contextvars.Context)
        assert ctx[VAR] == "at schedule time"
        run_briefly(loop)
        # the writer's change stays in its own copy: it leaks neither to the
        # caller nor to the next callback
        assert seen == [
            ("first", "at schedule time"),
            ("writer", "set inside callback"),
            ("second", "changed later"),
        ]
        assert VAR.get() == "changed later"
    finally:
        VAR.reset(token)


def test_context_var_set_in_callback_does_not_leak_to_loop_runner(loop):
    def writer():
        VAR.set("leak?")

    loop.call_soon(writer)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert VAR.get() == "default"


def test_shared_explicit_context_between_callbacks(loop):
    ctx = contextvars.copy_context()
    seen = []

    def first():
        VAR.set("from first")

    def second():
        seen.append(VAR.get())

    loop.call_soon(first, context=ctx)
    loop.call_soon(second, context=ctx)
    loop.call_soon(second)  # own copy: does not see it
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["from first", "default"]


def test_context_none_means_copy(loop, loop_kind):
    token = VAR.set("current")
    try:
        h = loop.call_soon(noop, context=None)
        ctx = handle_context(loop_kind, h)
        assert isinstance(ctx, contextvars.Context)
        assert ctx[VAR] == "current"
    finally:
        VAR.reset(token)
    h.cancel()


# --------------------------------------------------------------------------
# callback type checks (exactly the stdlib's: only in debug mode)
# --------------------------------------------------------------------------

def _expected_method_names(how):
    # The stdlib's call_later() delegates to call_at(), so its message names
    # call_at(); naming call_later() is accepted too.
    return ("call_later", "call_at") if how == "call_later" else (how,)


BAD_CALLBACKS = ["coroutine_function", "partial_coroutine_function", "coroutine_object",
                 "non_callable"]


def _make_bad(kind):
    if kind == "coroutine_function":
        return coro_func
    if kind == "partial_coroutine_function":
        return functools.partial(coro_func)
    if kind == "coroutine_object":
        return coro_func()
    return 42


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
@pytest.mark.parametrize("bad_kind", BAD_CALLBACKS)
def test_bad_callback_debug_mode(loop, how, bad_kind):
    loop.set_debug(True)
    bad = _make_bad(bad_kind)
    try:
        with pytest.raises(TypeError) as info:
            SCHEDULERS[how](loop, bad)
    finally:
        if bad_kind == "coroutine_object":
            bad.close()
    msg = str(info.value)
    names = _expected_method_names(how)
    if bad_kind == "non_callable":
        assert msg in [f"a callable object was expected by {n}(), got {bad!r}" for n in names]
    else:
        assert msg in [f"coroutines cannot be used with {n}()" for n in names]


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
@pytest.mark.parametrize("bad_kind", BAD_CALLBACKS)
def test_bad_callback_without_debug(loop_kind, loop, how, bad_kind):
    """Documented difference (README): outside debug mode the stdlib accepts a
    bad callback and fails later; quickloop refuses it at once, as in debug mode."""
    loop.set_debug(False)
    bad = _make_bad(bad_kind)
    try:
        if loop_kind == "stdlib" or callable(bad):
            # Coroutine *functions* are callable: recognising them costs a
            # Python call, so quickloop checks them only in debug mode, as
            # the stdlib does.
            SCHEDULERS[how](loop, bad).cancel()
        else:
            with pytest.raises(TypeError) as info:
                SCHEDULERS[how](loop, bad)
            names = [how, "call_at"]
            if bad_kind == "non_callable":
                assert str(info.value) in [
                    f"a callable object was expected by {n}(), got {bad!r}" for n in names]
            else:
                assert str(info.value) in [
                    f"coroutines cannot be used with {n}()" for n in names]
    finally:
        if bad_kind == "coroutine_object":
            bad.close()


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_non_callable_fails_when_run_without_debug(loop_kind, loop, how, caplog):
    if loop_kind == "quickloop":
        pytest.skip("documented difference: quickloop refuses non-callables at schedule time")
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.set_debug(False)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    calls = []
    handle = SCHEDULERS[how](loop, 42)
    SCHEDULERS[how](loop, calls.append, "after")
    run_briefly(loop)
    assert calls == ["after"]
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], TypeError)
    assert contexts[0]["handle"] is handle


@pytest.mark.parametrize("bad_kind", BAD_CALLBACKS)
def test_bad_callback_run_in_executor_debug_mode(loop, bad_kind):
    loop.set_debug(True)
    bad = _make_bad(bad_kind)
    try:
        with pytest.raises(TypeError) as info:
            loop.run_in_executor(None, bad)
    finally:
        if bad_kind == "coroutine_object":
            bad.close()
    if bad_kind == "non_callable":
        assert str(info.value) == f"a callable object was expected by run_in_executor(), got {bad!r}"
    else:
        assert str(info.value) == "coroutines cannot be used with run_in_executor()"


# --------------------------------------------------------------------------
# repr
# --------------------------------------------------------------------------

def a_distinctively_named_callback():
    pass


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_repr_contains_callback_name(loop, how):
    handle = SCHEDULERS[how](loop, a_distinctively_named_callback)
    assert "a_distinctively_named_callback" in repr(handle)
    handle.cancel()
    assert "cancelled" in repr(handle)


def test_repr_of_bound_method_and_partial(loop):
    class Thing:
        def some_method_name(self):
            pass

    h1 = loop.call_soon(Thing().some_method_name)
    h2 = loop.call_soon(functools.partial(a_distinctively_named_callback))
    assert "some_method_name" in repr(h1)
    assert "a_distinctively_named_callback" in repr(h2)
    h1.cancel()
    h2.cancel()


@pytest.mark.parametrize("nargs", [1, 3])
def test_debug_cancel_keeps_the_repr_while_arguments_die(loop, nargs):
    """In debug mode a cancelled handle keeps its repr; an argument whose
    __del__ runs during cancel() and looks at the handle sees a string repr
    and no arguments."""
    loop.set_debug(True)
    seen = []

    class Spy:
        def __del__(self):
            seen.append((repr(handle), handle._args))

    handle = loop.call_soon(a_distinctively_named_callback, *([Spy()] + [0] * (nargs - 1)))
    handle.cancel()
    assert len(seen) == 1
    shown, args = seen[0]
    assert isinstance(shown, str) and "cancelled" in shown and args is None
    assert "a_distinctively_named_callback" in repr(handle) and handle._args is None


def test_quickloop_handles_stay_small():
    """A pending timer is one TimerHandle, and the GC's full collections read
    all of them: 128 bytes with the GC header (asyncio's own: 112)."""
    import sys

    import quickloop

    lp = quickloop.new_event_loop()
    try:
        timer = lp.call_later(3600, a_distinctively_named_callback)
        soon = lp.call_soon(a_distinctively_named_callback)
        assert sys.getsizeof(timer) <= 128 and sys.getsizeof(soon) <= 96
        timer.cancel()
        soon.cancel()
    finally:
        lp.close()


# --------------------------------------------------------------------------
# garbage collection and debug-mode origin tracking
# --------------------------------------------------------------------------

def test_reference_cycle_through_handle_is_collected(loop):
    """Handles take part in cyclic GC: a cycle through a handle's args is freed."""
    class Box:
        pass

    ran = Box()
    ran.handle = loop.call_soon(noop, ran)
    timer = Box()
    timer.handle = loop.call_later(3600, noop, timer)
    refs = [weakref.ref(ran), weakref.ref(timer)]
    del ran, timer
    loop.call_soon(loop.stop)
    loop.run_forever()  # the first handle ran; the timer is still armed
    loop.close()  # drops the armed timer
    gc.collect()
    assert [r() for r in refs] == [None, None]


def _call_line(how, loop, cb):
    """Schedule cb with the named method; return (handle, line number of the call)."""
    import sys
    here = sys._getframe()
    if how == "call_soon":
        line, handle = here.f_lineno, loop.call_soon(cb)
    elif how == "call_soon_threadsafe":
        line, handle = here.f_lineno, loop.call_soon_threadsafe(cb)
    elif how == "call_later":
        line, handle = here.f_lineno, loop.call_later(0, cb)
    else:
        line, handle = here.f_lineno, loop.call_at(loop.time(), cb)
    return handle, line


@pytest.mark.parametrize("how", SCHEDULER_NAMES)
def test_debug_source_traceback_in_exception_context(loop, how):
    loop.set_debug(True)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def failing_callback():
        raise KeyError("debug")

    handle, line = _call_line(how, loop, failing_callback)
    assert f"created at {__file__}:{line}" in repr(handle)
    run_briefly(loop)
    assert len(contexts) == 1
    tb = contexts[0]["source_traceback"]
    last = tb[-1]
    assert (last[0], last[1]) == (__file__, line)
    assert contexts[0]["handle"] is handle


def test_no_source_traceback_without_debug(loop):
    loop.set_debug(False)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def failing_callback():
        raise KeyError("no debug")

    loop.call_soon(failing_callback)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert "source_traceback" not in contexts[0]


def test_sleep_timer_copies_no_context():
    """asyncio.sleep()'s timer (futures._set_result_unless_cancelled on a
    quickloop.Future) runs no user code, so its handle copies no context: its
    get_context() answers a fresh copy of the current context each time,
    where a handle that stores a context answers that one.  No Context is
    left on the collector's lists per sleeping task (the task's own copy is
    owned, see test_ctxcopy.py), and the sleep still wakes."""
    import asyncio.futures
    import quickloop

    loop = quickloop.new_event_loop()
    try:
        async def sleeper():
            await asyncio.sleep(3600)

        async def main():
            gc.collect()
            before = sum(type(o) is contextvars.Context for o in gc.get_objects())
            tasks = [asyncio.create_task(sleeper()) for _ in range(100)]
            await asyncio.sleep(0)
            gc.collect()
            after = sum(type(o) is contextvars.Context for o in gc.get_objects())
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            fut = loop.create_future()
            h = loop.call_later(0, asyncio.futures._set_result_unless_cancelled, fut, 7)
            assert isinstance(h.get_context(), contextvars.Context)
            assert h.get_context() is not h.get_context()
            other = loop.call_later(3600, print)
            assert other.get_context() is other.get_context()
            other.cancel()
            assert await fut == 7
            return after - before

        assert loop.run_until_complete(main()) == 0
    finally:
        loop.close()


def test_cancelled_sleep_timer_holds_nothing_and_leaves_the_gc():
    """A cancelled handle with no context and no debug record (asyncio.sleep()'s
    timer) lets go of its loop too and is untracked for good: it refers to
    nothing, so it can be in no cycle.  A finished sleep's frame keeps its
    handle (the local `h`) as long as the task's CancelledError keeps the
    frame, and without this every full collection walked one per task."""
    import asyncio.futures
    import quickloop

    loop = quickloop.new_event_loop()
    try:
        fut = loop.create_future()
        h = loop.call_later(3600, asyncio.futures._set_result_unless_cancelled, fut, 1)
        assert h._loop is loop and gc.is_tracked(h)
        h.cancel()
        assert h.cancelled() and h._loop is None and not gc.is_tracked(h)
        assert "cancelled" in repr(h) and h.when() > 0
        h.cancel()                  # again: nothing to do
        h._run()                    # a cancelled handle does not run
        assert not fut.done()

        # A handle that stores a context keeps it and its loop, and is tracked.
        other = loop.call_later(3600, noop)
        other.cancel()
        assert other._loop is loop and gc.is_tracked(other)

        async def sleeper():
            await asyncio.sleep(3600)

        async def main():
            tasks = [asyncio.create_task(sleeper()) for _ in range(100)]
            await asyncio.sleep(0)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            gc.collect()
            # The tasks (alive here) keep each sleep's frame, and so its handle.
            frames = [f for f in gc.get_objects()
                      if type(f).__name__ == "frame" and f.f_code is asyncio.sleep.__code__]
            handles = [f.f_locals["h"] for f in frames]
            return handles

        handles = loop.run_until_complete(main())
        assert len(handles) == 100 and all(x.cancelled() and x._loop is None for x in handles)
        assert not any(gc.is_tracked(x) for x in handles)
    finally:
        loop.close()


def test_cancelled_sleep_timer_in_debug_mode_keeps_its_record():
    """In debug mode the cancelled handle keeps its repr and creation stack
    (a list, so the handle stays on the GC's lists), and its loop."""
    import asyncio.futures
    import quickloop

    loop = quickloop.new_event_loop()
    loop.set_debug(True)
    try:
        fut = loop.create_future()
        h = loop.call_later(3600, asyncio.futures._set_result_unless_cancelled, fut, 1)
        h.cancel()
        assert h._loop is loop and gc.is_tracked(h) and h._source_traceback
        assert "_set_result_unless_cancelled" in repr(h)
    finally:
        loop.close()


@pytest.mark.parametrize("debug", [False, True], ids=["release", "debug"])
def test_callback_arguments_shown_as_asyncio_shows_them(loop, debug):
    """How a callback is described (a handle's repr, "Exception in callback
    ..."): from 3.13 asyncio shows its arguments in debug mode only (they
    may hold secrets), before 3.13 always.  Both loops, both modes."""
    loop.set_debug(debug)
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["message"]))

    def boom(secret, *, also):
        raise KeyError("raised")

    h = loop.call_soon(functools.partial(boom, "s3cr3t", also="p4ss"))
    text = repr(h)
    loop.run_until_complete(asyncio.sleep(0))
    shown = debug or sys.version_info < (3, 13)
    assert "boom" in text and ("s3cr3t" in text) == shown and ("p4ss" in text) == shown
    assert len(seen) == 1 and seen[0].startswith("Exception in callback ")
    assert "boom" in seen[0] and ("s3cr3t" in seen[0]) == shown
