"""Entry-point fuzz driver: bytes -> a sequence of calls on quickloop objects.

``run_one(data)`` decodes ``data`` into up to MAX_STEPS operations on a fresh
set of quickloop objects (two quickloop loops, futures, tasks, handles,
timeouts, ...) and runs them, every call wrapped in ``try/except``: a Python
exception is an acceptable outcome, a crash (segfault, abort, an ASan report)
is a finding.  A ``SystemError`` (a C function returning NULL without an
exception, or a result with one set) is recorded as a finding too.

The decoding is deterministic: the same bytes give the same calls, so a
crashing input saved by atheris/libFuzzer (crash-<sha1>) replays with
``python -m tests.fuzz.run --replay FILE``.

Weird arguments: NaN, +-inf, huge ints, None, non-callables, bad keyword
arguments, objects whose __eq__/__hash__/__float__/__index__/__del__ raise
or re-enter the loop, uninitialised instances (Cls.__new__(Cls)),
re-initialised futures and tasks, futures of another loop, callbacks that
themselves run decoded operations (re-entrancy while the loop is iterating,
while a future runs its callbacks, while remove_done_callback compares ...).
"""
import asyncio
import contextvars
import functools
import gc
import io
import logging
import math
import os
import sys
import traceback
import types
import warnings

import quickloop
from quickloop import _core

MAX_STEPS = 64          # operations per input (top level)
MAX_DEPTH = 3           # nesting of callbacks that run operations
TRACE = bool(os.environ.get("QUICKLOOP_FUZZ_TRACE"))

# Known, reported bugs the driver steers around so that fuzzing can go on
# finding new ones (--include-known / QUICKLOOP_FUZZ_INCLUDE_KNOWN=1 turns the
# avoidance off).  Each has a regression test in tests/test_fuzz_differential.py.
KNOWN = {
    # call_at()/call_later() with a deadline <= -9.2e9 s (-inf, -1e10, ...):
    # run_once computes top->deadline - now with deadline = -INT64_MAX: signed
    # overflow, the loop then waits a day instead of running the timer.
    "far-past-deadline-hang",
    # quickloop.timeout(nan)/timeout_at(nan)/Timeout.reschedule(nan) (and
    # quickloop.wait_for(aw, nan)) arm a C timer with when=NaN: (int64_t)NaN in
    # ql_timer_deadline is undefined; the loop then waits a day.
    "nan-timeout-hang",
    # An uninitialised quickloop.Future/Task (Cls.__new__(Cls), or one whose
    # re-__init__() failed, e.g. loop=None without a current loop):
    # quickloop.shield() of one, Task.cancel() of one, and the queued step of a
    # task whose re-init failed dereference its NULL loop: segfault.  (The last
    # one crashes CPython 3.11's _asyncio.Task too.)  Also Task.cancel() run
    # from a destructor while Task.__init__() re-initialises (the old done
    # callbacks are dropped after the loop was cleared).
    "uninit-future-crash",
    # Future.__init__() again on a future whose exception was never retrieved:
    # ql_fut_init clears the exception but leaves log_tb set, and the finalizer
    # then passes exception=NULL to PyDict_SetItemString: segfault at dealloc.
    "reinit-log-tb-crash",
    # _add_reader/_add_writer(fd) grow the fd table to fd+1 entries before
    # asking the kernel: fd = 2**31-1 loops forever (int n *= 2 overflows in
    # fd_table_reserve), fd = 10**7 allocates ~400 MB for a bad fd.
    "huge-fd-hang",
    # The awaitable Timeout.__aenter__/__aexit__ return (quickloop.DoneAwaitable):
    # .send(None) on __aexit__'s, or a second .send() on __aenter__'s, returns
    # NULL without an exception: SystemError (asyncio: StopIteration, then
    # RuntimeError('cannot reuse already awaited coroutine')).
    "done-awaitable-send",
    # Same for quickloop.FutureIter: fut.__await__().send(None) on a future done
    # with result None returns NULL without an exception: SystemError (asyncio:
    # StopIteration(); a second send is a SystemError in CPython 3.11 too).
    "future-iter-send",
}
AVOID_KNOWN = not os.environ.get("QUICKLOOP_FUZZ_INCLUDE_KNOWN")
MAX_ACT_BYTES = 48      # bytes a re-entrant callback takes for its own operations


class Boom(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


class Finding(Exception):
    """A SystemError (or other sign of C-level misbehaviour) during an input."""


# --------------------------------------------------------------------------
# bytes -> choices
# --------------------------------------------------------------------------

class Src:
    """Reads choices from bytes; past the end every read is 0 (deterministic)."""

    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def exhausted(self):
        return self.pos >= len(self.data)

    def byte(self):
        if self.pos >= len(self.data):
            self.pos += 1
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def below(self, n):
        if n <= 1:
            return 0
        if n <= 256:
            return self.byte() % n
        return (self.byte() << 8 | self.byte()) % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def flag(self):
        return self.byte() & 1

    def take(self, n):
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


# --------------------------------------------------------------------------
# odd objects
# --------------------------------------------------------------------------

class EqRaises:
    def __eq__(self, other):
        raise ValueError("eq")

    __hash__ = object.__hash__


class HashRaises:
    def __hash__(self):
        raise ValueError("hash")


class FloatRaises:
    def __float__(self):
        raise ValueError("float")


class FloatWeird:
    def __init__(self, v):
        self.v = v

    def __float__(self):
        return self.v


class IndexObj:
    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class FilenoObj:
    def __init__(self, v):
        self.v = v

    def fileno(self):
        if isinstance(self.v, BaseException):
            raise self.v
        return self.v


class BadAwaitable:
    def __await__(self):
        return 42       # not an iterator


class Yielder:
    """An awaitable that yields a chosen object to the task running it."""

    def __init__(self, obj, times=1):
        self.obj = obj
        self.times = times

    def __await__(self):
        for _ in range(self.times):
            yield self.obj
        return "yielded"


class Act:
    """A callable (callback, __eq__, __del__ ...) that runs decoded operations."""

    def __init__(self, fz, chunk, depth):
        self.fz = fz
        self.chunk = chunk
        self.depth = depth
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls > 3:
            return None
        self.fz.run_ops(Src(self.chunk), self.depth + 1, limit=6)
        return None


class EqAct(Act):
    """__eq__ runs operations (e.g. removes/adds done callbacks meanwhile)."""

    def __call__(self, *args, **kwargs):
        return None

    def __eq__(self, other):
        self.calls += 1
        if self.calls <= 3:
            self.fz.run_ops(Src(self.chunk), self.depth + 1, limit=4)
        return bool(self.chunk[:1]) and self.chunk[0] & 1 == 1

    __hash__ = object.__hash__


class DelAct(Act):
    """__del__ runs operations: destructor re-entrancy (handle/future clearing)."""

    def __del__(self):
        try:
            if self.fz.alive:
                self.fz.run_ops(Src(self.chunk), self.depth + 1, limit=4)
        except BaseException:
            pass


class Raiser:
    def __init__(self, exc):
        self.exc = exc

    def __call__(self, *args, **kwargs):
        raise self.exc


async def _async_fn(*args):
    return None


def _short(obj):
    try:
        return repr(obj)[:120]
    except BaseException as e:  # noqa: B902 - repr of odd objects may raise anything
        return f"<repr failed: {type(e).__name__}>"


def _noop(*args, **kwargs):
    return None


FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-9, 1e-300, 5e-324, 1e308,
          -1e308, 9.2e9, -9.2e9, 9.3e18, 0.001, -0.001, 1.5, 1e16, 2.0 ** 63]
INTS = [0, 1, -1, 2, 255, 2 ** 31 - 1, 2 ** 31, -2 ** 31 - 1, 2 ** 63 - 1, 2 ** 63,
        -2 ** 63 - 1, 2 ** 64, 10 ** 30, -10 ** 400, 10 ** 400, True, False]


# --------------------------------------------------------------------------
# the fuzzing context: pools of objects and the operations
# --------------------------------------------------------------------------

class Fz:
    def __init__(self):
        self.alive = True
        self.loops = []
        self.other_loops = []    # stdlib loops, made on demand
        self.futs = []
        self.tasks = []
        self.handles = []
        self.timeouts = []
        self.coros = []
        self.misc = []
        self.pipes = []
        self.findings = []
        self.steps = 0

    # -- pools ---------------------------------------------------------------
    def loop(self, src):
        if not self.loops or (src.byte() & 7) == 7 and len(self.loops) < 3:
            self.loops.append(quickloop.new_event_loop())
        return src.pick(self.loops)

    def any_loop(self, src):
        c = src.below(10)
        if c == 0:
            if not self.other_loops:
                self.other_loops.append(asyncio.DefaultEventLoopPolicy().new_event_loop())
            return self.other_loops[0]
        if c == 1:
            return src.pick([None, 1, object(), _core.LoopCore.__new__(_core.LoopCore)])
        return self.loop(src)

    def pick_from(self, src, pool):
        return src.pick(pool) if pool else None

    def fut(self, src):
        if not self.futs or src.below(4) == 0:
            return self.new_future(src)
        return src.pick(self.futs)

    def task(self, src):
        if not self.tasks or src.below(5) == 0:
            return self.new_task(src)
        return src.pick(self.tasks)

    def pipe_fds(self):
        if not self.pipes:
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            os.write(w, b"x")
            self.pipes.extend([r, w])
        return self.pipes

    def fd(self, src):
        v = self._fd(src)
        if AVOID_KNOWN and "huge-fd-hang" in KNOWN and type(v) is int and 65536 < v < 2 ** 31:
            v = 65536
        return v

    def _fd(self, src):
        c = src.below(12)
        if c < 4:
            return src.pick(self.pipe_fds())
        if c < 6:
            return src.below(64)
        if c == 6:
            return src.pick(INTS)
        if c == 7:
            return FilenoObj(src.pick([3, -1, 2 ** 40, "x", None, ValueError("fileno")]))
        if c == 8:
            return src.pick([None, "3", 3.0, object(), IndexObj(3)])
        if c == 9:
            import socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.close()  # a closed socket: fileno() == -1
            return s
        return src.pick(self.pipe_fds())

    def chunk(self, src):
        return src.take(src.below(MAX_ACT_BYTES) + 1)

    def callable_(self, src, depth):
        c = src.below(14)
        if c <= 3:
            return Act(self, self.chunk(src), depth)
        if c == 4:
            return _noop
        if c == 5:
            return Raiser(src.pick([ValueError("cb"), Boom("boom"), asyncio.CancelledError("c"),
                                    StopIteration(1), GeneratorExit(), RecursionError()]))
        if c == 6:
            loop = self.loop(src)
            return src.pick([loop.stop, loop.time, loop.is_running])
        if c == 7:
            f = self.fut(src)
            return src.pick([f.cancel, f.done, functools.partial(f.set_result, 1)])
        if c == 8:
            return _async_fn             # a coroutine function
        if c == 9:
            return src.pick([int, print.__class__, type, functools.partial(_noop, 1)])
        if c == 10:
            return src.pick([None, 1, "x", object()])   # not callable
        if c == 11:
            return EqAct(self, self.chunk(src), depth)
        if c == 12:
            h = self.pick_from(src, self.handles)
            return h.cancel if h is not None else _noop
        return DelAct(self, self.chunk(src), depth)

    def number(self, src):
        c = src.below(8)
        if c < 3:
            return src.pick(FLOATS)
        if c < 5:
            return src.pick(INTS)
        if c == 5:
            return src.pick([None, "1", b"1", FloatRaises(), FloatWeird(math.nan),
                             FloatWeird(1e300), IndexObj(5), [], 1j])
        if c == 6:
            return src.below(256) / 1000.0
        loop = self.loops[0] if self.loops else None
        base = loop.time() if loop is not None else 0.0
        return base + src.pick([-1.0, 0.0, 0.0005, 0.002, 1e9, math.inf])

    def value(self, src, depth=0):
        c = src.below(16)
        if c == 0:
            return None
        if c == 1:
            return src.pick(INTS)
        if c == 2:
            return src.pick(FLOATS)
        if c == 3:
            return src.pick(["", "msg", "x" * 100, b"b", "\udcff"])
        if c == 4:
            return self.fut(src)
        if c == 5:
            return self.task(src) if depth < 2 else None
        if c == 6:
            return self.pick_from(src, self.handles)
        if c == 7:
            return self.callable_(src, depth)
        if c == 8:
            return src.pick([ValueError("v"), asyncio.CancelledError("m"), Boom(),
                             StopIteration(), KeyError, asyncio.CancelledError,
                             asyncio.InvalidStateError, TypeError, SystemExit, int])
        if c == 9:
            return src.pick([EqRaises(), HashRaises(), FloatRaises(), object()])
        if c == 10:
            return contextvars.copy_context() if src.flag() else contextvars.Context()
        if c == 11:
            return self.loop(src)
        if c == 12:
            return self.coro(src, depth) if depth < 2 else None
        if c == 13:
            return DelAct(self, self.chunk(src), depth)
        if c == 14:
            return self.pick_from(src, self.timeouts)
        return src.pick([(), (1,), {}, [], {"context": None}, frozenset()])

    def context_arg(self, src):
        c = src.below(6)
        if c == 0:
            return contextvars.copy_context()
        if c == 1:
            return None
        return self.value(src, 2)

    # -- makers ----------------------------------------------------------------
    def new_future(self, src):
        c = src.below(8)
        if c < 4:
            f = self.loop(src).create_future()
        elif c == 4:
            f = quickloop.Future(loop=self.any_loop(src))
        elif c == 5 and not (AVOID_KNOWN and "uninit-future-crash" in KNOWN):
            f = quickloop.Future.__new__(quickloop.Future)   # never initialised
        elif c == 6:
            f = asyncio.Future(loop=self.loop(src))          # stdlib future, quickloop loop
        else:
            f = quickloop.Future(loop=self.any_loop(src))
        self.futs.append(f)
        return f

    def coro(self, src, depth=0):
        c = src.below(10)
        if c < 6:
            co = self._coro(self.chunk(src), depth)
        elif c == 6:
            co = asyncio.sleep(src.pick([0, 0.001, -1]))
        elif c == 7:
            @types.coroutine
            def gen_coro(obj=self.value(src, depth + 1)):
                yield obj
                return 1
            co = gen_coro()
        elif c == 8:
            co = self._coro(b"", depth)
            co.close()                      # an exhausted coroutine
        else:
            co = Yielder(self.value(src, depth + 1), src.below(3)).__await__()
        self.coros.append(co)
        return co

    async def _coro(self, chunk, depth):
        src = Src(chunk)
        for _ in range(8):
            if src.exhausted():
                break
            c = src.below(16)
            if TRACE:
                print(f"{'  ' * depth}coro step {c} @{src.pos}", file=sys.stderr, flush=True)
            try:
                if c == 0:
                    await asyncio.sleep(0)
                elif c == 1:
                    await self.fut(src)
                elif c == 2:
                    await Yielder(self.value(src, depth + 1), 1 + src.below(2))
                elif c == 3:
                    self.run_ops(src, depth + 1, limit=3)
                elif c == 4:
                    raise src.pick([ValueError("co"), Boom("co"), StopIteration(2),
                                    asyncio.CancelledError("co"), GeneratorExit()])
                elif c == 5:
                    return self.value(src, depth + 1)
                elif c == 6:
                    await asyncio.current_task()
                elif c == 7:
                    await quickloop.shield(self.fut(src))
                elif c == 8:
                    async with quickloop.timeout(_tnum(self, src)):
                        await asyncio.sleep(0)
                        await self.fut(src)
                elif c == 9:
                    await quickloop.wait_for(self.fut(src), _tnum(self, src))
                elif c == 10:
                    t = asyncio.current_task()
                    t.cancel(self.value(src, 2)) if src.flag() else t.uncancel()
                elif c == 11:
                    await BadAwaitable()
                elif c == 12:
                    await asyncio.sleep(0.0005)
                elif c == 13:
                    await self.task(src) if depth < 2 else None
                elif c == 14:
                    await asyncio.shield(self.fut(src))
                else:
                    async with asyncio.timeout(self.number(src)):
                        await self.fut(src)
            except asyncio.CancelledError:
                if src.flag():
                    raise
            except (Exception, Boom):
                if src.flag():
                    raise
        return "done"

    def new_task(self, src, depth=0):
        c = src.below(8)
        coro = self.coro(src, depth) if src.below(8) else self.value(src, 2)
        kw = {}
        if src.flag():
            kw["name"] = self.value(src, 2)
        if src.below(4) == 0:
            kw["context"] = self.context_arg(src)
        if c < 4:
            t = self.loop(src).create_task(coro, **kw)
        elif c == 4:
            t = quickloop.Task(coro, loop=self.any_loop(src), **kw)
        elif c == 5:
            t = quickloop.eager_task_factory(self.loop(src), coro, **kw)
        elif c == 6 and not (AVOID_KNOWN and "uninit-future-crash" in KNOWN):
            t = quickloop.Task.__new__(quickloop.Task)     # never initialised
        else:
            t = asyncio.Task(coro, loop=self.loop(src), **kw)
        self.tasks.append(t)
        return t

    # -- running ----------------------------------------------------------------
    def call(self, fn, *args, **kwargs):
        if TRACE and not isinstance(fn, types.FunctionType):
            print(f"   call {getattr(fn, '__qualname__', fn)!s:.60} {_short(args)} "
                  f"{_short(kwargs)}", file=sys.stderr, flush=True)
        try:
            return fn(*args, **kwargs)
        except SystemError as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = " <- ".join(f"{os.path.basename(fr.filename)}:{fr.lineno} {fr.line}"
                                for fr in reversed(tb[-3:]))
            self.findings.append(f"SystemError {e!r} at {where}")
            return None
        except KeyboardInterrupt:
            raise
        except BaseException:   # SystemExit too: a future may hold one
            return None

    def run_ops(self, src, depth, limit=MAX_STEPS):
        if depth > MAX_DEPTH:
            return
        for _ in range(limit):
            if src.exhausted() or self.steps > 4 * MAX_STEPS:
                return
            self.steps += 1
            op = OPS[src.below(len(OPS))]
            if TRACE:
                print(f"{'  ' * depth}{op.__name__} @{src.pos}", file=sys.stderr, flush=True)
            self.call(op, self, src, depth)

    def run_loop(self, loop, iterations):
        """Run a loop for a few iterations; never blocks for long."""
        for _ in range(iterations):
            if loop.is_closed() or loop.is_running():
                return
            stopper = loop.call_soon(loop.stop)
            self.call(loop.run_forever)
            stopper.cancel()

    def finish(self):
        self.alive = False
        for loop in self.loops + self.other_loops:
            if not loop.is_closed() and not loop.is_running():
                self.run_loop(loop, 2)
                self.call(loop.close)
        for fd in self.pipes:
            try:
                os.close(fd)
            except OSError:
                pass
        for co in self.coros:
            if hasattr(co, "close"):
                self.call(co.close)
        self.futs.clear()
        self.tasks.clear()
        self.handles.clear()
        self.timeouts.clear()
        self.coros.clear()


# --------------------------------------------------------------------------
# operations: fz, src, depth -> None (exceptions are caught by Fz.call)
# --------------------------------------------------------------------------

def _sched_args(fz, src, depth):
    args = tuple(fz.value(src, depth + 1) for _ in range(src.below(4)))
    kw = {}
    c = src.below(8)
    if c == 0:
        kw["context"] = fz.context_arg(src)
    elif c == 1:
        kw[src.pick(["ctx", "contex", "x", "context"])] = fz.value(src, 2)
    return args, kw


def op_call_soon(fz, src, depth):
    loop = fz.loop(src)
    cb = fz.callable_(src, depth)
    args, kw = _sched_args(fz, src, depth)
    meth = loop.call_soon_threadsafe if src.below(5) == 0 else loop.call_soon
    h = meth(cb, *args, **kw)
    fz.handles.append(h)


def _deadline(fz, src):
    v = fz.number(src)
    if AVOID_KNOWN and "far-past-deadline-hang" in KNOWN:
        try:
            if float(v) <= -9.0e9:
                v = -1.0
        except Exception:
            pass
    return v


def _tnum(fz, src):
    """A deadline/delay for the C helpers (timeout, reschedule, wait_for)."""
    v = fz.number(src)
    if AVOID_KNOWN and "nan-timeout-hang" in KNOWN:
        try:
            if math.isnan(float(v)):
                v = 0.0005
        except Exception:
            pass
    return v


def op_call_later(fz, src, depth):
    loop = fz.loop(src)
    delay = _deadline(fz, src)
    cb = fz.callable_(src, depth)
    args, kw = _sched_args(fz, src, depth)
    fz.handles.append(loop.call_later(delay, cb, *args, **kw))


def op_call_at(fz, src, depth):
    loop = fz.loop(src)
    when = _deadline(fz, src)
    cb = fz.callable_(src, depth)
    args, kw = _sched_args(fz, src, depth)
    fz.handles.append(loop.call_at(when, cb, *args, **kw))


def op_call_bad_arity(fz, src, depth):
    loop = fz.loop(src)
    meth = src.pick([loop.call_soon, loop.call_later, loop.call_at, loop.call_soon_threadsafe,
                     loop._add_reader, loop._add_writer, loop._make_handle])
    args = tuple(fz.value(src, depth + 1) for _ in range(src.below(3)))
    if args and AVOID_KNOWN and "huge-fd-hang" in KNOWN and type(args[0]) is int \
            and 65536 < args[0] < 2 ** 31:
        args = (65536,) + args[1:]
    kw = {src.pick(["context", "callback", "delay", ""]): fz.value(src, 2)} if src.flag() else {}
    meth(*args, **kw)


def op_add_io(fz, src, depth):
    loop = fz.loop(src)
    fd = fz.fd(src)
    cb = fz.callable_(src, depth)
    args = tuple(fz.value(src, depth + 1) for _ in range(src.below(3)))
    meth = src.pick([loop._add_reader, loop._add_writer, loop.add_reader, loop.add_writer])
    h = meth(fd, cb, *args)
    if h is not None:
        fz.handles.append(h)


def op_remove_io(fz, src, depth):
    loop = fz.loop(src)
    fd = fz.fd(src)
    meth = src.pick([loop._remove_reader, loop._remove_writer, loop.remove_reader,
                     loop.remove_writer, loop._fd_key])
    meth(fd)


def op_fd_list(fz, src, depth):
    loop = fz.loop(src)
    loop._fd_list()
    if loop._selector is not None:
        loop._selector.get_map()


def op_run(fz, src, depth):
    loop = fz.loop(src)
    fz.run_loop(loop, 1 + src.below(4))


def op_run_timed(fz, src, depth):
    loop = fz.loop(src)
    if loop.is_closed() or loop.is_running():
        return
    stopper = loop.call_later(src.below(4) / 1000.0, loop.stop)
    fz.call(loop.run_forever)
    stopper.cancel()


def op_run_until_complete(fz, src, depth):
    loop = fz.loop(src)
    if loop.is_closed() or loop.is_running():
        loop.run_until_complete(None)   # the error path
        return
    c = src.below(6)
    if c == 0:
        arg = fz.fut(src)
    elif c == 1:
        arg = fz.coro(src, depth + 1)
    elif c == 2:
        arg = fz.task(src)
    else:
        arg = fz.value(src, depth + 1)
    stopper = loop.call_soon(loop.stop)
    try:
        loop.run_until_complete(arg)
    finally:
        stopper.cancel()


def op_stop_close(fz, src, depth):
    loop = fz.loop(src)
    c = src.below(6)
    if c == 0:
        loop.stop()
    elif c == 1:
        loop.close()
    elif c == 2:
        loop._close()
    elif c == 3:
        loop._write_to_self()
    elif c == 4:
        loop.run_forever() if loop.is_running() else None    # nested: RuntimeError
    else:
        loop._run() if loop.is_running() else None


def op_loop_misc(fz, src, depth):
    loop = fz.loop(src)
    c = src.below(12)
    if c == 0:
        loop.set_debug(bool(src.flag()))
    elif c == 1:
        loop.slow_callback_duration = fz.number(src)
    elif c == 2:
        loop.set_task_factory(src.pick([None, quickloop.eager_task_factory, _noop, 1,
                                        lambda l, c, **kw: quickloop.Task(c, loop=l, **kw)]))
    elif c == 3:
        loop.set_exception_handler(src.pick([None, _noop, Raiser(ValueError("h")), 1,
                                             Act(fz, fz.chunk(src), depth)]))
    elif c == 4:
        loop.call_exception_handler(src.pick([{}, {"message": "m"}, {"exception": ValueError()},
                                              {"message": 1, "handle": 1}, None, 1]))
    elif c == 5:
        loop.time(), loop._timer_count, loop._iterations, loop._stopping, loop._closed
        loop._current_handle, loop._thread_id, loop.get_debug(), repr(loop)
    elif c == 6:
        loop._add_callback(src.pick(fz.handles) if fz.handles and src.flag()
                           else fz.value(src, depth + 1))
    elif c == 7:
        h = loop._make_handle(fz.callable_(src, depth), *(fz.value(src, 2)
                                                          for _ in range(src.below(3))))
        fz.handles.append(h)
        if src.flag():
            loop._add_callback(h)
    elif c == 8:
        loop._task_factory = fz.value(src, 2)
    elif c == 9:
        loop._debug = fz.value(src, 2)
    elif c == 10:
        fz.run_loop(loop, 1) if not loop.is_running() else None
        loop.run_until_complete(loop.shutdown_asyncgens()) if not loop.is_running() else None
    else:
        loop._after_fork() if src.below(4) == 0 else None


def op_handle(fz, src, depth):
    if not fz.handles:
        return op_call_soon(fz, src, depth)
    h = src.pick(fz.handles)
    c = src.below(10)
    if c < 3:
        h.cancel()
        if src.flag():
            h.cancel()
    elif c == 3:
        h._run()
    elif c == 4:
        repr(h), h.cancelled(), h._callback, h._args, h._repr, h._cancelled
        h._source_traceback, h._loop
    elif c == 5:
        h.get_context(), h._context
    elif c == 6:
        h.when(), h._when, h._scheduled
    elif c == 7:
        other = src.pick(fz.handles) if src.flag() else fz.value(src, depth + 1)
        h == other, h != other, h < other, h <= other, h > other, h >= other
    elif c == 8:
        hash(h)
    else:
        type(h)(*(fz.value(src, 2) for _ in range(src.below(5))))


def op_future(fz, src, depth):
    f = fz.fut(src)
    c = src.below(20)
    if c < 3:
        f.set_result(fz.value(src, depth + 1))
    elif c < 5:
        f.set_exception(fz.value(src, depth + 1))
    elif c < 7:
        f.cancel(*(() if src.flag() else (fz.value(src, depth + 1),)))
    elif c == 7:
        f.cancel(msg=fz.value(src, 2))
    elif c == 8:
        f.result()
    elif c == 9:
        f.exception()
    elif c < 12:
        kw = {"context": fz.context_arg(src)} if src.flag() else {}
        f.add_done_callback(fz.callable_(src, depth), **kw)
    elif c == 12:
        f.remove_done_callback(src.pick(f._callbacks)[0] if f._callbacks and src.flag()
                               else fz.callable_(src, depth))
    elif c == 13:
        f.remove_done_callback(src.pick([EqRaises(), EqAct(fz, fz.chunk(src), depth),
                                         HashRaises(), None]))
    elif c == 14:
        it = f.__await__()
        for _ in range(src.below(3)):
            _send(it)
        if src.flag():
            it.throw(src.pick([ValueError, ValueError("t"), Boom(), 1, None,
                               asyncio.CancelledError()]))
        else:
            it.close()
    elif c == 15:
        f._asyncio_future_blocking = fz.value(src, 2)
    elif c == 16:
        f._log_traceback = fz.value(src, 2)
    elif c == 17:
        f._cancel_message = fz.value(src, 2)
    elif c == 18:
        repr(f), f._state, f._callbacks, f._result, f._exception, f._loop, f.done()
        f.cancelled(), f.get_loop(), f._source_traceback, f._make_cancelled_error()
    else:
        if AVOID_KNOWN and "reinit-log-tb-crash" in KNOWN:
            f._log_traceback = False
        if AVOID_KNOWN and "uninit-future-crash" in KNOWN:
            return      # a failing or re-entered re-init leaves it uninitialised
        else:
            f.__init__(**({"loop": fz.any_loop(src)} if src.flag() else {}))


def op_task(fz, src, depth):
    t = fz.task(src)
    c = src.below(16)
    if c < 4:
        t.cancel(*(() if src.flag() else (fz.value(src, depth + 1),)))
    elif c == 4:
        t.uncancel()
    elif c == 5:
        t.cancelling(), t._must_cancel, t._num_cancels_requested, t._fut_waiter
    elif c == 6:
        t.get_stack(limit=src.pick([None, 0, 1, -1, 2 ** 70, "x"]))
    elif c == 7:
        t.print_stack(limit=src.pick([None, 1, -1]), file=io.StringIO())
    elif c == 8:
        t.set_name(fz.value(src, 2))
        t.get_name()
    elif c == 9:
        t.get_coro(), t.get_context(), t._coro, t._context, repr(t), t._name
    elif c == 10:
        t.set_result(1) if src.flag() else t.set_exception(ValueError())
    elif c == 11:
        if AVOID_KNOWN and "reinit-log-tb-crash" in KNOWN:
            t._log_traceback = False
        coro = fz.coro(src, depth + 1) if src.flag() else fz.value(src, 2)
        if AVOID_KNOWN and "uninit-future-crash" in KNOWN:
            return      # a failing or re-entered re-init leaves it uninitialised
        else:
            t.__init__(coro, loop=fz.any_loop(src))
    elif c == 12:
        t._log_destroy_pending = fz.value(src, 2)
    elif c == 13:
        t.add_done_callback(fz.callable_(src, depth))
    elif c == 14:
        t.result() if src.flag() else t.exception()
    else:
        asyncio.current_task(fz.loop(src)), asyncio.all_tasks(fz.loop(src))


def op_new(fz, src, depth):
    c = src.below(3)
    if c == 0:
        fz.new_future(src)
    elif c == 1:
        fz.new_task(src, depth + 1)
    else:
        fz.coro(src, depth + 1)


def op_timeout(fz, src, depth):
    c = src.below(12)
    if c < 3 or not fz.timeouts:
        kind = src.below(4)
        if kind == 0:
            to = quickloop.Timeout(_tnum(fz, src))
        elif kind == 1:
            to = quickloop.timeout_at(_tnum(fz, src))
        elif kind == 2:
            to = quickloop.timeout(_tnum(fz, src))      # needs a running loop
        else:
            to = quickloop.Timeout.__new__(quickloop.Timeout, _tnum(fz, src))
        fz.timeouts.append(to)
        return
    to = src.pick(fz.timeouts)
    if c < 5:
        to.reschedule(_tnum(fz, src) if src.below(4) else None)
    elif c == 5:
        to.expired(), to.when(), repr(to)
    elif c == 6:
        aw = to.__aenter__()
        if src.flag():
            _send(aw)
    elif c == 7:
        args = [fz.value(src, 2) for _ in range(src.pick([3, 3, 0, 1, 4]))]
        if src.flag() and len(args) == 3:
            args[0] = asyncio.CancelledError
            args[1] = asyncio.CancelledError()
        aw = to.__aexit__(*args)
        _send(aw)
        if src.flag():
            _send(aw)
    elif c == 8:
        to._on_timeout()
    elif c == 9:
        # a task that enters the timeout and waits on a future
        async def use(to=to, f=fz.fut(src)):
            async with to:
                await f
        loop = fz.loop(src)
        fz.tasks.append(loop.create_task(use()))
    elif c == 10:
        aw = to.__aenter__()
        it = aw.__await__() if hasattr(aw, "__await__") else aw
        it.throw(src.pick([ValueError(), Boom(), asyncio.CancelledError()]))
    else:
        to.__init__(_tnum(fz, src))


def _send(aw):
    if AVOID_KNOWN and "done-awaitable-send" in KNOWN and type(aw).__name__ == "DoneAwaitable":
        return next(aw)
    if AVOID_KNOWN and "future-iter-send" in KNOWN and type(aw).__name__ == "FutureIter":
        return next(aw)
    return aw.send(None)


def op_shield(fz, src, depth):
    c = src.below(6)
    if c == 0:
        arg = fz.fut(src)
    elif c == 1:
        arg = fz.task(src)
    elif c == 2:
        arg = fz.coro(src, depth + 1)
    else:
        arg = fz.value(src, depth + 1)
    out = quickloop.shield(arg)
    if isinstance(out, asyncio.Future):
        fz.futs.append(out)
        if src.flag():
            out.cancel()


def op_wait_for(fz, src, depth):
    loop = fz.loop(src)
    co = quickloop.wait_for(fz.fut(src) if src.flag() else fz.coro(src, depth + 1),
                            _tnum(fz, src))
    fz.tasks.append(loop.create_task(co))


def op_eager(fz, src, depth):
    loop = fz.loop(src)
    args = [loop if src.below(4) else fz.value(src, 2),
            fz.coro(src, depth + 1) if src.below(4) else fz.value(src, 2)]
    kw = {}
    if src.flag():
        kw["name"] = fz.value(src, 2)
    if src.flag():
        kw["context"] = fz.context_arg(src)
    t = quickloop.eager_task_factory(*args, **kw)
    fz.tasks.append(t)


def op_gc(fz, src, depth):
    c = src.below(4)
    if c == 0:
        gc.collect()
    elif c == 1:
        # drop references so destructors run now (possibly mid-iteration)
        pool = src.pick([fz.futs, fz.tasks, fz.handles, fz.timeouts, fz.coros])
        if pool:
            del pool[src.below(len(pool))]
    elif c == 2:
        fz.misc.clear()
    else:
        fz.misc.append(fz.value(src, depth + 1))


def op_core(fz, src, depth):
    """The bare C core, without the Python Loop glue around it."""
    core = _core.LoopCore() if src.flag() else _core.LoopCore.__new__(_core.LoopCore)
    fz.misc.append(core)
    c = src.below(6)
    if c == 0:
        core.call_soon(fz.callable_(src, depth))
    elif c == 1:
        core.call_later(_deadline(fz, src), fz.callable_(src, depth))
    elif c == 2:
        core.create_future().set_result(1)
    elif c == 3:
        core.call_soon(Raiser(ValueError("core")))
        core.call_soon(core.stop)
        core._run()
    elif c == 4:
        core.create_task(fz.coro(src, depth + 1))
        core.call_soon(core.stop)
        core._run()
    else:
        core._close()
        core.call_soon(_noop)


OPS = [
    op_call_soon, op_call_soon, op_call_later, op_call_at, op_call_bad_arity,
    op_add_io, op_remove_io, op_fd_list,
    op_run, op_run, op_run, op_run_timed, op_run_until_complete, op_stop_close,
    op_loop_misc, op_handle, op_handle, op_future, op_future, op_future,
    op_task, op_task, op_new, op_timeout, op_timeout, op_shield, op_wait_for, op_eager,
    op_gc, op_core,
]


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------

_configured = False


def configure():
    """Quiet the expected noise: asyncio's logger, warnings, unraisable hooks."""
    global _configured
    if _configured:
        return
    _configured = True
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    warnings.simplefilter("ignore")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))

    def unraisable(info):
        if isinstance(info.exc_value, SystemError):
            _unraisable_findings.append(f"unraisable SystemError: {info.exc_value!r} "
                                        f"in {info.object!r}")
    sys.unraisablehook = unraisable


_unraisable_findings = []


def run_one(data):
    """Run one input; returns the list of findings (SystemErrors); crashes crash."""
    configure()
    asyncio.set_event_loop(None)
    fz = Fz()
    try:
        fz.run_ops(Src(data), 0)
    finally:
        fz.finish()
        asyncio.set_event_loop(None)
    findings = fz.findings + _unraisable_findings
    _unraisable_findings.clear()
    return findings
