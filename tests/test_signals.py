"""Unix signals: add_signal_handler/remove_signal_handler and Ctrl-C (SIGINT).

In-process tests use SIGUSR1/SIGUSR2 and run on both loops via the ``loop``
fixture.  Ctrl-C is exercised in a subprocess (so pytest is undisturbed), once
per loop kind.  Signal dispositions and the wakeup fd are restored after each test.
"""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import make_loop
from support import run_until

try:
    import quickloop
except ImportError:
    quickloop = None


@pytest.fixture(autouse=True)
def _restore_signals():
    sigs = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM)
    saved = {s: signal.getsignal(s) for s in sigs}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(wakeup)


def spin(loop, iterations=5):
    done = loop.create_future()

    def step(k):
        if k == 0:
            done.set_result(None)
        else:
            loop.call_soon(step, k - 1)

    loop.call_soon(step, iterations)
    run_until(loop, done)


# --------------------------------------------------------------------------- delivery

def test_signal_handler_runs_in_loop_with_args(loop):
    got = loop.create_future()
    where = []

    def handler(a, b):
        where.append((threading.get_ident(), asyncio.get_running_loop()))
        if not got.done():
            got.set_result((a, b))

    assert loop.add_signal_handler(signal.SIGUSR1, handler, "arg", 2) is None
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    assert run_until(loop, got) == ("arg", 2)
    assert where[0] == (threading.get_ident(), loop)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True


def test_signal_wakes_blocked_loop_from_other_thread(loop):
    """The signal is sent by another thread while the loop waits in its poller."""
    got = loop.create_future()
    started = threading.Event()
    main_ident = threading.get_ident()

    def handler():
        if not got.done():
            got.set_result("signalled")

    def worker():
        started.wait(10)
        signal.pthread_kill(main_ident, signal.SIGUSR1)

    loop.add_signal_handler(signal.SIGUSR1, handler)
    t = threading.Thread(target=worker)
    t.start()
    try:
        loop.call_soon(started.set)
        assert run_until(loop, got) == "signalled"
    finally:
        t.join(10)
    loop.remove_signal_handler(signal.SIGUSR1)


def test_signal_received_before_run_is_handled_when_loop_runs(loop):
    calls = []
    loop.add_signal_handler(signal.SIGUSR2, calls.append, "usr2")
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)
    assert calls == []  # never synchronously inside the C signal handler
    fut = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, fut.set_result, None)
    signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
    run_until(loop, fut)
    assert calls == ["usr2"]


def test_signal_handler_can_be_replaced(loop):
    old, new = [], []
    got = loop.create_future()

    def new_handler():
        new.append(1)
        if not got.done():
            got.set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, old.append, 1)
    loop.add_signal_handler(signal.SIGUSR1, new_handler)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_until(loop, got)
    assert old == []
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_two_signals_two_handlers(loop):
    got = {}
    done = loop.create_future()

    def handler(name):
        got[name] = got.get(name, 0) + 1
        if len(got) == 2 and not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, handler, "usr1")
    loop.add_signal_handler(signal.SIGUSR2, handler, "usr2")
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR2)
    run_until(loop, done)
    assert set(got) == {"usr1", "usr2"}


def test_raising_signal_handler_goes_to_exception_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = loop.create_future()

    def handler():
        loop.call_soon(fut.set_result, "after")
        raise ZeroDivisionError("in signal handler")

    loop.add_signal_handler(signal.SIGUSR1, handler)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    assert run_until(loop, fut) == "after"
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)


# --------------------------------------------------------------------------- removal

def test_remove_signal_handler_true_then_false_and_restores_default(loop):
    cb = lambda: None  # noqa: E731
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    loop.add_signal_handler(signal.SIGUSR1, cb)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_sigint_handler_restores_default_int_handler(loop):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    assert loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_removed_handler_is_not_called(loop):
    calls = []
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, calls.append, "usr1")
    loop.add_signal_handler(signal.SIGUSR2, got.set_result, "usr2")
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    # SIGUSR1 is back to SIG_DFL (would kill us): give it a no-op Python
    # handler, so the signal still trips CPython's signal machinery (and the
    # wakeup fd) but must not reach the removed loop handler
    signal.signal(signal.SIGUSR1, lambda *args: None)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    loop.call_soon(os.kill, os.getpid(), signal.SIGUSR2)
    assert run_until(loop, got) == "usr2"
    spin(loop)
    assert calls == []


def test_close_removes_signal_handlers(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    loop.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("sig", [0, -1, 1000, signal.NSIG + 1])
def test_invalid_signal_number_is_value_error(loop, sig):
    with pytest.raises(ValueError):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(ValueError):
        loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", ["SIGUSR1", 10.0, None])
def test_non_int_signal_is_type_error(loop, sig):
    with pytest.raises(TypeError):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(TypeError):
        loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal_is_runtime_error(loop, sig):
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(sig, lambda: None)
    # nothing was left registered
    assert loop.remove_signal_handler(sig) is False


def test_non_callable_handler(loop_kind, loop):
    """The 3.11 stdlib does not validate the callback (events.Handle does not
    check callable): add_signal_handler(SIGUSR1, 42) is accepted and fails
    only when the signal arrives.  Documented difference (README): quickloop
    refuses a non-callable at once with TypeError and installs nothing."""
    try:
        if loop_kind == "stdlib":
            loop.add_signal_handler(signal.SIGUSR1, 42)
        else:
            with pytest.raises(TypeError, match="callable"):
                loop.add_signal_handler(signal.SIGUSR1, 42)
            assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_coroutine_function_is_type_error(loop):
    async def handler():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, handler)
    coro = handler()
    try:
        with pytest.raises(TypeError):
            loop.add_signal_handler(signal.SIGUSR1, coro)
    finally:
        coro.close()
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_on_closed_loop_is_runtime_error(loop):
    loop.close()
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_from_non_main_thread_is_runtime_error(loop):
    errors = []

    def worker():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        else:
            errors.append(None)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert len(errors) == 1
    assert type(errors[0]) is RuntimeError, errors
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False


# --------------------------------------------------------------------------- Ctrl-C in a subprocess

_PRELUDE = r'''
import asyncio, platform, signal, sys, threading, time

KIND = sys.argv[1]
_EPOLL = {"x86_64": {"232", "281", "441"}, "aarch64": {"22", "441"}}.get(platform.machine())

def new_loop():
    if KIND == "stdlib":
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    import quickloop
    return quickloop.new_event_loop()

def wait_blocked(native_tid, limit=5.0):
    # best effort: wait until the main thread sits in epoll_wait
    if _EPOLL is None:
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/self/task/{native_tid}/syscall") as f:
                if f.read().split()[0] in _EPOLL:
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.001)

# Python's own SIGINT handler, whatever the parent left: a process started
# from a background job of a non-interactive shell inherits SIGINT ignored,
# and Python then installs no KeyboardInterrupt handler.
signal.signal(signal.SIGINT, signal.default_int_handler)

started = threading.Event()
MAIN_IDENT = threading.get_ident()
MAIN_TID = threading.get_native_id()

def interrupter():
    if not started.wait(30):
        return
    wait_blocked(MAIN_TID)
    signal.pthread_kill(MAIN_IDENT, signal.SIGINT)

threading.Thread(target=interrupter, daemon=True).start()
'''

_RUN_UNTIL_COMPLETE = _PRELUDE + r'''
loop = new_loop()
fut = loop.create_future()
safety = loop.call_later(20, fut.set_result, "safety net")
loop.call_soon(started.set)
try:
    res = loop.run_until_complete(fut)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
else:
    print("no KeyboardInterrupt:", res)
    sys.exit(1)
assert not loop.is_running()
assert not loop.is_closed()
assert not fut.done()
# the loop is still usable
loop.run_until_complete(asyncio.sleep(0))
assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
async def still_works():
    await asyncio.sleep(0.001)
    return asyncio.get_running_loop()
assert loop.run_until_complete(still_works()) is loop
safety.cancel()
loop.close()
print("OK")
'''

_RUNNER = _PRELUDE + r'''
cancelled = []

async def main():
    asyncio.get_running_loop().call_soon(started.set)
    try:
        await asyncio.sleep(20)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise
    return "slept"

MODE = sys.argv[2]
try:
    if MODE == "asyncio.run":
        asyncio.run(main())
    elif MODE == "runner-factory":
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(main())
    elif MODE == "quickloop.run":
        import quickloop
        quickloop.run(main())
    elif MODE == "install+asyncio.run":
        import quickloop
        quickloop.install()
        asyncio.run(main())
    else:
        raise SystemExit("bad mode " + MODE)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
else:
    print("no KeyboardInterrupt")
    sys.exit(1)
assert cancelled == [True], "main task was not cancelled"
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
print("OK")
'''

_LOOP_SIGINT_HANDLER = _PRELUDE + r'''
loop = new_loop()
fut = loop.create_future()
safety = loop.call_later(20, fut.set_result, "safety net")
loop.add_signal_handler(signal.SIGINT, fut.set_result, "handled by loop")
loop.call_soon(started.set)
try:
    res = loop.run_until_complete(fut)
except KeyboardInterrupt:
    print("KeyboardInterrupt despite loop handler")
    sys.exit(1)
print(res.replace(" ", "_"))
assert loop.remove_signal_handler(signal.SIGINT) is True
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
safety.cancel()
loop.close()
print("OK")
'''


def _env():
    env = dict(os.environ)
    paths = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")]
    if quickloop is not None:
        paths.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(quickloop.__file__))))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _run_script(tmp_path, source, *args):
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(source))
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=60, env=_env(), cwd=str(tmp_path))
    return proc


def test_ctrl_c_interrupts_run_until_complete(loop_kind, tmp_path):
    proc = _run_script(tmp_path, _RUN_UNTIL_COMPLETE, loop_kind)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stdout.split() == ["KeyboardInterrupt", "OK"], proc.stdout + proc.stderr


@pytest.mark.parametrize("kind,mode", [
    ("stdlib", "asyncio.run"),                  # the referee
    ("quickloop", "runner-factory"),            # asyncio.Runner(loop_factory=quickloop.new_event_loop)
    ("quickloop", "quickloop.run"),
    ("quickloop", "install+asyncio.run"),
])
def test_ctrl_c_under_runner_cancels_main_task(kind, mode, tmp_path):
    """As the stdlib Runner does: the first SIGINT cancels the main task, and
    run() raises KeyboardInterrupt once the task has finished cancelling."""
    proc = _run_script(tmp_path, _RUNNER, kind, mode)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stdout.split() == ["KeyboardInterrupt", "OK"], proc.stdout + proc.stderr


def test_sigint_with_loop_handler_does_not_raise(loop_kind, tmp_path):
    proc = _run_script(tmp_path, _LOOP_SIGINT_HANDLER, loop_kind)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stdout.split() == ["handled_by_loop", "OK"], proc.stdout + proc.stderr
