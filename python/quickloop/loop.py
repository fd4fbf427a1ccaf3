"""quickloop.Loop: the C core (quickloop._core.LoopCore) plus the cold paths.

Scheduling, timers, the ready queue, I/O readiness, futures, tasks and the
iteration itself are C.  What is here runs once per run_forever() or per rare
event: the set-up around the C iteration, exception handling, executors,
async generator finalization, signals and fork.  Semantics follow the
stdlib's BaseEventLoop and _UnixSelectorEventLoop of the running Python.

Networking, pipes and subprocesses are asyncio's own: Loop inherits them from
asyncio's unix SelectorEventLoop, whose transports register their fds through
the C core's _add_reader/_add_writer.  The exception: plain TCP and Unix stream
connections get quickloop's C transport (quickloop.transport), which the C
core dispatches without handles.  Every method that the C core or this
class defines wins over the inherited one (the MRO puts LoopCore first), and
the inherited __init__ never runs: no selector and no self-pipe exist.  The
C core is the only thing that waits and dispatches.
"""
import asyncio
import concurrent.futures
import errno
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
import warnings
import weakref
from asyncio import constants, coroutines, events, futures, tasks, unix_events
from asyncio.log import logger

from . import _compat
from ._core import LoopCore
from .transport import SocketTransport

_STREAM_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)

# Every live loop, so a forked child can give each its own epoll and eventfd.
_live_loops = weakref.WeakSet()


def _after_fork_in_child():
    for loop in list(_live_loops):
        loop._reinit_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _run_until_complete_cb(fut):
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # Let run_until_complete() see the exception without stopping.
            return
    futures._get_loop(fut).stop()


def _sighandler_noop(signum, frame):
    """Dummy Python-level handler: the C-level one writes to the wakeup fd."""


class _SelectorView:
    """loop._selector: a read-only view of the C core's fd table.

    asyncio's transports (their repr) and some tools ask the stdlib loop's
    selector whether an fd is polled; this answers from the epoll table.  It
    registers nothing: the C core does that.
    """

    def __init__(self, loop):
        self._loop = weakref.ref(loop)

    def get_key(self, fileobj):
        loop = self._loop()
        key = None if loop is None or loop.is_closed() else loop._fd_key(fileobj)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        events, reader, writer = key
        fd = selectors._fileobj_to_fd(fileobj)
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))

    def get_map(self):
        loop = self._loop()
        if loop is None or loop.is_closed():
            return {}
        return {fd: self.get_key(fd) for fd in loop._fd_list()}


def _format_handle(handle):
    cb = handle._callback
    if isinstance(getattr(cb, "__self__", None), tasks.Task):
        return repr(cb.__self__)
    return str(handle)


class Loop(LoopCore, unix_events.SelectorEventLoop):
    """A quickloop event loop: asyncio.AbstractEventLoop with a C core."""

    __module__ = "quickloop"

    def __init__(self):
        self._transports = weakref.WeakValueDictionary()  # fd -> transport
        self._selector = _SelectorView(self)
        self._timer_cancelled_count = 0  # read by inherited code only
        self._default_executor = None
        self._executor_shutdown_called = False
        self._exception_handler = None
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._signal_handlers = {}
        self._signal_socks = None  # (rsock, wsock) once a handler is added
        self._unix_server_sockets = {}  # read by inherited code from 3.13 on
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self.set_debug(coroutines._is_debug_mode())
        _live_loops.add(self)

    def __repr__(self):
        return (
            f"<{self.__class__.__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    def __del__(self, _warn=warnings.warn):
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # ---- running -----------------------------------------------------------

    def _check_closed(self):
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    def _check_running(self):
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if events._get_running_loop() is not None:
            raise RuntimeError(
                "Cannot run the event loop while another loop is running"
            )

    def run_forever(self):
        """Run until stop() is called."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook,
                finalizer=self._asyncgen_finalizer_hook,
            )
            events._set_running_loop(self)
            self._run()
        finally:
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future):
        """Run until the future (or coroutine, wrapped in a task) is done."""
        self._check_closed()
        self._check_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # An exception raised by the loop stopping early is reported by
            # run_until_complete itself, not by the task's destructor.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                # The exception is re-raised: mark it retrieved.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self):
        """Close the loop: drop pending callbacks, timers and I/O handlers."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._close()
        self._selector = None  # as the selector loop: transports' repr reads it
        self._close_signal_handling()
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    def set_debug(self, enabled):
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = (
                sys.get_coroutine_origin_tracking_depth()
            )
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(
                self._coroutine_origin_tracking_saved_depth
            )
        self._coroutine_origin_tracking_enabled = enabled

    def _log_slow_callback(self, handle, seconds):
        """Called by the C core in debug mode for a callback that ran long."""
        logger.warning("Executing %s took %.3f seconds", _format_handle(handle), seconds)

    def _reinit_after_fork(self):
        """In a forked child: epoll, eventfd and signal socket of our own."""
        self._after_fork()
        if self._signal_socks is not None:
            old_rsock, old_wsock = self._signal_socks
            self._remove_reader(old_rsock.fileno())
            old_rsock.close()
            old_wsock.close()
            self._signal_socks = None
            if self._signal_handlers:
                self._open_signal_socks()

    # ---- transports --------------------------------------------------------

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        # Debug mode keeps asyncio's transport: its callbacks then run as
        # handles, which the slow-callback check and debug logging cover.
        if (
            not self._debug
            and isinstance(sock, socket.socket)
            and sock.type == socket.SOCK_STREAM
            and sock.family in _STREAM_FAMILIES
        ):
            return SocketTransport(self, sock, protocol, waiter, extra, server)
        return super()._make_socket_transport(
            sock, protocol, waiter, extra=extra, server=server
        )

    # ---- futures and tasks -------------------------------------------------
    # create_future() and create_task() are C, custom task factories
    # included; naming a factory's task (version-specific) is the cold path
    # handled here.

    def _name_factory_task(self, task, name):
        _compat.set_task_name(task, name)

    def _create_task_kwargs(self, coro, *, name=None, context=None, **kwargs):
        # create_task() with keywords other than name and context.
        return _compat.create_task_kwargs(self, coro, name, context, kwargs)

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # ---- exception handling ------------------------------------------------

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context):
        """Log the error message and the context, as the stdlib loop does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        current = self._current_handle
        if (
            "source_traceback" not in context
            and current is not None
            and current._source_traceback
        ):
            context["handle_traceback"] = current._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n" + tb.rstrip()
            elif key == "handle_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n" + tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f"{key}: {value}")
        logger.error("\n".join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            _compat.run_exception_handler(self._exception_handler, self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler "
                    "while handling an unexpected error "
                    "in custom exception handler",
                    exc_info=True,
                )

    # ---- executors ---------------------------------------------------------

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if coroutines.iscoroutine(func) or (
            self._debug and coroutines.iscoroutinefunction(func)
        ):
            raise TypeError("coroutines cannot be used with run_in_executor()")
        if not callable(func):
            raise TypeError(
                f"a callable object was expected by run_in_executor(), got {func!r}"
            )
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="asyncio"
                )
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None):
        """Wait for the default executor's threads (3.12's timeout too)."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(future,))
        thread.start()
        try:
            await future
        finally:
            thread.join(timeout)
        if thread.is_alive():
            warnings.warn(
                "The executor did not finishing joining "
                f"its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._default_executor.shutdown(wait=False)

    def _do_shutdown(self, future):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(future.set_result, None)
        except Exception as ex:
            if not self.is_closed():
                self.call_soon_threadsafe(future.set_exception, ex)

    # ---- async generators --------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Shutdown all active asynchronous generators."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True
        )
        for result, agen in zip(results, closing_agens):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # ---- signals -----------------------------------------------------------
    # As in the stdlib's unix loop: the C-level signal handler writes the
    # signal number to a socket (signal.set_wakeup_fd) that the loop reads.

    def _open_signal_socks(self):
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self._signal_socks = (rsock, wsock)
        self._add_reader(rsock.fileno(), self._read_signals)
        signal.set_wakeup_fd(wsock.fileno())

    def _read_signals(self):
        rsock = self._signal_socks[0]
        while True:
            try:
                data = rsock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self, sig):
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return
        if handle.cancelled():
            self.remove_signal_handler(sig)
        else:
            self._add_callback(handle)

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def add_signal_handler(self, sig, callback, *args):
        """Run callback(*args) in the loop when signal sig arrives."""
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        if not callable(callback):
            raise TypeError(
                f"a callable object was expected by add_signal_handler(), "
                f"got {callback!r}"
            )
        self._check_signal(sig)
        self._check_closed()
        try:
            if self._signal_socks is None:
                self._open_signal_socks()
            else:
                signal.set_wakeup_fd(self._signal_socks[1].fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        self._signal_handlers[sig] = self._make_handle(callback, *args)
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._reset_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise

    def remove_signal_handler(self, sig):
        """Remove the handler for sig; True if there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught")
            raise
        if not self._signal_handlers:
            self._reset_wakeup_fd()
        return True

    def _reset_wakeup_fd(self):
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _close_signal_handling(self):
        if sys.is_finalizing():
            if self._signal_handlers:
                warnings.warn(
                    f"Closing the loop {self!r} on interpreter shutdown "
                    f"stage, skipping signal handlers removal",
                    ResourceWarning,
                    source=self,
                )
                self._signal_handlers.clear()
        else:
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        if self._signal_socks is not None:
            for sock in self._signal_socks:
                sock.close()
            self._signal_socks = None
