"""quickloop's entry points: new_event_loop(), EventLoopPolicy, install(),
run(), and ``python -m quickloop SCRIPT [ARGS...]``.

quickloop-only by nature: there is no stdlib twin for these.
"""
import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

try:
    import quickloop
except ImportError:
    quickloop = None


@pytest.fixture(autouse=True)
def _need_quickloop():
    if quickloop is None:
        pytest.fail("quickloop is not importable (build it: make dev; PYTHONPATH=python)")


def _env():
    env = dict(os.environ)
    paths = [os.path.dirname(os.path.dirname(os.path.abspath(quickloop.__file__)))]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_module(args, cwd):
    return subprocess.run([sys.executable, "-m", "quickloop", *args], capture_output=True,
                          text=True, timeout=60, env=_env(), cwd=str(cwd))


# --------------------------------------------------------------------------- new_event_loop / policy

def test_new_event_loop_returns_quickloop_loop():
    loop = quickloop.new_event_loop()
    try:
        assert isinstance(loop, quickloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert not loop.is_running()
        assert not loop.is_closed()
        assert loop.run_until_complete(asyncio.sleep(0, result="ok")) == "ok"
    finally:
        loop.close()
    assert loop.is_closed()


def test_new_event_loop_returns_distinct_loops():
    a = quickloop.new_event_loop()
    b = quickloop.new_event_loop()
    try:
        assert a is not b
    finally:
        a.close()
        b.close()


def test_loop_class_is_directly_constructible():
    loop = quickloop.Loop()
    try:
        assert loop.run_until_complete(asyncio.sleep(0, result=1)) == 1
    finally:
        loop.close()


def test_event_loop_policy_subclass():
    assert issubclass(quickloop.EventLoopPolicy, asyncio.DefaultEventLoopPolicy)
    policy = quickloop.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, quickloop.Loop)
    finally:
        loop.close()


def test_policy_get_event_loop_in_main_thread():
    policy = quickloop.EventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    loop = policy.new_event_loop()
    try:
        policy.set_event_loop(loop)  # asserts isinstance(loop, AbstractEventLoop)
        assert policy.get_event_loop() is loop
    finally:
        policy.set_event_loop(None)
        loop.close()


def test_introspection_attributes():
    loop = quickloop.new_event_loop()
    try:
        assert isinstance(loop._iterations, int)
        assert isinstance(loop._timer_count, int)
        before = loop._iterations
        loop.call_later(3600, lambda: None)
        assert loop._timer_count >= 1
        loop.run_until_complete(asyncio.sleep(0))
        assert loop._iterations > before
    finally:
        loop.close()


# --------------------------------------------------------------------------- install()

def test_install_sets_policy():
    assert quickloop.install() is None
    assert isinstance(asyncio.get_event_loop_policy(), quickloop.EventLoopPolicy)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, quickloop.Loop)
    finally:
        loop.close()


def test_install_makes_asyncio_run_use_quickloop():
    quickloop.install()
    seen = []

    async def main():
        seen.append(type(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return "result"

    assert asyncio.run(main()) == "result"
    assert seen == [quickloop.Loop]


def test_install_makes_asyncio_runner_use_quickloop():
    quickloop.install()

    async def main():
        return type(asyncio.get_running_loop())

    with asyncio.Runner() as runner:
        assert runner.run(main()) is quickloop.Loop
        assert isinstance(runner.get_loop(), quickloop.Loop)


def test_policy_reset_restores_default_policy():
    quickloop.install()
    asyncio.set_event_loop_policy(None)

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main()) is not quickloop.Loop


# --------------------------------------------------------------------------- run()

def test_run_returns_result_on_quickloop():
    async def main(x):
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()), x * 2

    assert quickloop.run(main(21)) == (quickloop.Loop, 42)


def test_run_does_not_change_the_policy():
    policy = asyncio.get_event_loop_policy()

    async def main():
        return None

    quickloop.run(main())
    assert asyncio.get_event_loop_policy() is policy


@pytest.mark.parametrize("debug", [True, False])
def test_run_debug_flag(debug):
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert quickloop.run(main(), debug=debug) is debug


def test_run_propagates_exception():
    class Boom(Exception):
        pass

    async def main():
        await asyncio.sleep(0)
        raise Boom("from main")

    with pytest.raises(Boom, match="from main"):
        quickloop.run(main())


def test_run_closes_loop_and_finalizes():
    loops = []
    log = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append("agen finally")

    async def main():
        loops.append(asyncio.get_running_loop())
        g = agen()
        log.append(g)  # keep it alive past main(): shutdown_asyncgens must close it
        await g.__anext__()

    quickloop.run(main())
    assert loops[0].is_closed()
    assert "agen finally" in log


def test_run_cancels_leftover_tasks():
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    quickloop.run(main())
    assert cancelled == [True]


def test_run_rejects_non_coroutine():
    with pytest.raises(ValueError):
        quickloop.run(42)


def test_run_inside_running_loop_is_runtime_error():
    async def inner():
        return 1

    async def main():
        coro = inner()
        try:
            quickloop.run(coro)
        finally:
            coro.close()

    # As with asyncio.run(): the inner Runner's close() cannot run its
    # shutdown_asyncgens() coroutine (a loop is running), which leaves an
    # un-awaited coroutine behind; keep its RuntimeWarning out of other tests.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        raised = None
        try:
            quickloop.run(main())
        except RuntimeError as exc:
            raised = str(exc)
        gc.collect()
    assert raised is not None, "quickloop.run() inside a running loop did not raise"


# --------------------------------------------------------------------------- python -m quickloop

SCRIPT = """
import asyncio, sys

async def main():
    loop = asyncio.get_running_loop()
    print(type(loop).__module__, type(loop).__name__)
    print(repr(sys.argv))
    print(__name__)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_module_runs_script_on_quickloop(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = run_module([str(script), "a", "b"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    module, name = lines[0].split()
    assert module.split(".")[0] == "quickloop" and name == "Loop", lines[0]
    assert lines[1] == repr([str(script), "a", "b"])
    assert lines[2] == "__main__"


def test_module_relative_script_path(tmp_path):
    (tmp_path / "rel.py").write_text(SCRIPT)
    proc = run_module(["rel.py", "--flag", "x y"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1] == repr(["rel.py", "--flag", "x y"])


def test_module_script_can_import_sibling_module(tmp_path):
    """As with ``python script.py``: the script's directory is importable."""
    d = tmp_path / "app"
    d.mkdir()
    (d / "helper.py").write_text("VALUE = 'sibling'\n")
    (d / "main.py").write_text(textwrap.dedent("""
        import asyncio, helper
        async def main():
            print(helper.VALUE, type(asyncio.get_running_loop()).__name__)
        asyncio.run(main())
    """))
    proc = run_module([str(d / "main.py")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["sibling", "Loop"]


def test_module_new_event_loop_in_script(tmp_path):
    (tmp_path / "s.py").write_text(textwrap.dedent("""
        import asyncio
        loop = asyncio.new_event_loop()
        print(type(loop).__name__, loop.run_until_complete(asyncio.sleep(0, result=5)))
        loop.close()
    """))
    proc = run_module(["s.py"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Loop", "5"]


@pytest.mark.parametrize("code", [0, 3, 42])
def test_module_exit_code_propagated(tmp_path, code):
    (tmp_path / "exit.py").write_text(textwrap.dedent(f"""
        import asyncio
        async def main():
            raise SystemExit({code})
        asyncio.run(main())
    """))
    proc = run_module(["exit.py"], cwd=tmp_path)
    assert proc.returncode == code, proc.stderr


def test_module_sys_exit_with_message(tmp_path):
    (tmp_path / "exit.py").write_text("import sys\nsys.exit('fatal: bad config')\n")
    proc = run_module(["exit.py"], cwd=tmp_path)
    assert proc.returncode == 1
    assert "fatal: bad config" in proc.stderr


def test_module_uncaught_exception_exit_1_with_traceback(tmp_path):
    (tmp_path / "boom.py").write_text(textwrap.dedent("""
        import asyncio
        async def main():
            raise ValueError("boom from script")
        asyncio.run(main())
    """))
    proc = run_module(["boom.py"], cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "ValueError: boom from script" in proc.stderr


def test_module_missing_script(tmp_path):
    proc = run_module(["does_not_exist.py", "arg"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "does_not_exist.py" in proc.stderr
    assert "Traceback" not in proc.stderr
