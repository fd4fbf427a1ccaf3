"""The benchmark suite's own tests: every workload passes its checks at a
tiny size on the stdlib loop (and quickloop when importable), and a broken
loop or a failing check is reported as FAILED, never timed.  No timing
assertions."""
import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

try:
    import benchmarks  # noqa: F401
except ImportError:  # pytest run from elsewhere: the suite lives at the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import compare, curves, net, report, runner, targets, workloads  # noqa: E402
from benchmarks.httpserver import HttpProtocol, State  # noqa: E402
from benchmarks.workloads import WORKLOADS, CheckFailed, Measured, Workload  # noqa: E402

# Small enough to run in well under a second each; call_soon spans more
# than one 10k scheduling batch.
TINY = {
    "call_soon": 25_000,
    "call_later": 500,
    "timer_cancel": 2_000,
    "task_spawn_cancel": 300,
    "sleep0_pingpong": 300,
    "wait_for_fast": 100,
    "timeout_fast": 100,
    "shield": 100,
    "taskgroup_fail": 3,
    "queue": 500,
    "async_tree": 36,  # one tree, depth 2
    "async_tree_eager": 36,
    "async_tree_eager_asyncio": 36,
    "wait_for_fast_direct": 100,
    "timeout_fast_direct": 100,
    "shield_direct": 100,
    "tcp_echo_protocol_1k": 40,
    "tcp_echo_protocol_10k": 20,
    "tcp_echo_protocol_100k": 6,
    "tcp_echo_streams_1k": 40,
    "tcp_echo_streams_10k": 20,
    "tcp_echo_streams_100k": 6,
    "http_wrk": 1,  # seconds of wrk
}


def expected_ops(name, size):
    if name == "sleep0_pingpong":
        return size - size % 2
    if name.startswith("async_tree"):
        depth, trees = workloads.tree_shape(size)
        return trees * sum(workloads.TREE_BRANCHES**level for level in range(1, depth + 1))
    if name == "http_wrk":
        return None  # whatever wrk managed
    return size


def test_tiny_sizes_cover_every_workload():
    assert set(TINY) == set(WORKLOADS)


def _factory(kind):
    factory, reason = runner.resolve_loop(kind)
    if factory is None:
        pytest.skip(f"{kind}: {reason}")
    return factory


@pytest.mark.parametrize("kind", ["stdlib", "quickloop"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_checks_pass(name, kind):
    workload = WORKLOADS[name]
    factory = _factory(kind)
    why = workload.unavailable()
    if why:
        pytest.skip(why)
    run = runner.run_once(workload, factory, TINY[name], loop_name=kind)
    expected = expected_ops(name, TINY[name])
    assert run["ops"] == expected if expected is not None else run["ops"] > 0
    assert run["elapsed"] > 0


def test_workload_returns_ops_and_elapsed():
    loop = runner._stdlib_factory()
    try:
        result = WORKLOADS["call_soon"].func(loop, 100)
    finally:
        loop.close()
    ops, elapsed = result
    assert isinstance(result, Measured) and ops == 100 and elapsed > 0


def test_call_later_reports_lateness():
    run = runner.run_once(WORKLOADS["call_later"], runner._stdlib_factory, 200)
    assert run["extra"]["mean_lateness_ms"] >= 0


def test_timer_cancel_reports_memory():
    run = runner.run_once(WORKLOADS["timer_cancel"], runner._stdlib_factory, 1000)
    assert run["extra"]["peak_rss_mib"] >= 0


# ------------------------------------------------------------ broken loops


class _LyingTimer:
    """A timer handle that reports a deadline other than the real one."""

    def __init__(self, real, when):
        self._real, self._when = real, when

    def when(self):
        return self._when

    def cancel(self):
        self._real.cancel()

    def cancelled(self):
        return self._real.cancelled()


class EarlyTimersLoop(asyncio.SelectorEventLoop):
    """Fires short timers at a quarter of their delay, claims the full one."""

    def call_later(self, delay, callback, *args, context=None):
        if delay >= 1:
            return super().call_later(delay, callback, *args, context=context)
        real = super().call_later(delay / 4, callback, *args, context=context)
        return _LyingTimer(real, self.time() + delay)


class ReversedTimersLoop(asyncio.SelectorEventLoop):
    """Fires short timers late (never early) but in reverse deadline order."""

    def call_later(self, delay, callback, *args, context=None):
        if delay >= 0.015:
            return super().call_later(delay, callback, *args, context=context)
        # One clock read for both deadlines: with two, a preemption between
        # them (a loaded machine) could make a timer look early instead.
        now = self.time()
        real = self.call_at(now + 0.020 - delay, callback, *args, context=context)
        return _LyingTimer(real, now + delay)


class DuplicatingLoop(asyncio.SelectorEventLoop):
    """Runs every 1000th call_soon callback twice."""

    _n = 0

    def call_soon(self, callback, *args, context=None):
        self._n += 1
        if self._n % 1000 == 0:
            super().call_soon(callback, *args, context=context)
        return super().call_soon(callback, *args, context=context)


class _DeafHandle:
    def __init__(self, real):
        self._real, self._cancelled = real, False

    def when(self):
        return self._real.when()

    def cancel(self):
        self._cancelled = True  # but the real timer stays armed

    def cancelled(self):
        return self._cancelled


class IgnoresCancelLoop(asyncio.SelectorEventLoop):
    """cancel() on a timer handle only pretends."""

    def call_later(self, delay, callback, *args, context=None):
        return _DeafHandle(super().call_later(delay, callback, *args, context=context))


class SwallowsCancelLoop(asyncio.SelectorEventLoop):
    """A task factory that turns cancellation into a normal result."""

    def __init__(self):
        super().__init__()

        async def swallow(coro):
            try:
                return await coro
            except asyncio.CancelledError:
                return "swallowed"

        self.set_task_factory(lambda loop, coro, **kw: asyncio.Task(swallow(coro), loop=loop, **kw))


@pytest.mark.parametrize(
    "bench, broken, message",
    [
        ("call_later", EarlyTimersLoop, "before their when()"),
        ("call_later", ReversedTimersLoop, "out of deadline order"),
        ("call_soon", DuplicatingLoop, ""),
        ("timer_cancel", IgnoresCancelLoop, "cancelled 1 ms timers fired"),
        ("task_spawn_cancel", SwallowsCancelLoop, "not CancelledError"),
    ],
)
def test_broken_loop_is_reported_failed(bench, broken, message):
    workload = WORKLOADS[bench]
    factories = {"stdlib": runner._stdlib_factory, "broken": broken}
    result = runner.run_benchmark(workload, factories, reps=2, size=TINY[bench])
    good, bad = result["loops"]["stdlib"], result["loops"]["broken"]
    assert good["status"] == runner.OK and len(good["runs"]) == 2
    assert bad["status"] == runner.FAILED
    assert message in bad["error"]
    assert bad["runs"] == [] and bad["median_ops_per_s"] is None and bad["ratio_vs_stdlib"] is None


def test_broken_loop_check_raises_directly():
    loop = EarlyTimersLoop()
    try:
        with pytest.raises(CheckFailed):
            WORKLOADS["call_later"].func(loop, 300)
    finally:
        loop.close()


# ------------------------------------------------------------------ runner


def _fake_workload(func, name="fake"):
    return Workload(name, func, 10, 5, "ops", "", "fake")


def test_interleaving_fresh_loops_and_medians():
    order, made = [], []

    def make(tag):
        def factory():
            made.append(tag)
            lp = runner._stdlib_factory()
            lp.tag = tag
            return lp

        return factory

    times = {"stdlib": [2.0, 1.0, 4.0], "other": [1.0, 0.5, 8.0]}

    def work(loop, n):
        order.append(loop.tag)
        return Measured(n, times[loop.tag][sum(1 for t in order if t == loop.tag) - 1])

    result = runner.run_benchmark(_fake_workload(work), {"stdlib": make("stdlib"), "other": make("other")}, 3, 10)
    assert order == ["stdlib", "other"] * 3
    assert made == order  # a fresh loop for every repetition
    s, o = result["loops"]["stdlib"], result["loops"]["other"]
    assert s["median_ops_per_s"] == 5.0  # rates 5, 10, 2.5
    assert o["median_ops_per_s"] == 10.0  # rates 10, 20, 1.25
    assert o["ratio_vs_stdlib"] == 2.0 and s["ratio_vs_stdlib"] == 1.0
    assert [r["elapsed"] for r in o["runs"]] == times["other"]


def _tagged(tag):
    """A factory of stdlib loops that carry `tag`."""
    def factory():
        lp = runner._stdlib_factory()
        lp.tag = tag
        return lp

    return factory


_LEAKED = []


def test_a_loop_that_leaks_is_reported():
    """A loop leaving objects alive after each repetition is reported (its
    leak changes the GC's work for everything measured after it); a first
    repetition filling caches is not."""
    def work(loop, n):
        if loop.tag == "leaky":
            _LEAKED.append([[i] for i in range(5000)])  # 5,001 tracked lists a run
        elif loop.tag == "stdlib" and not _LEAKED:
            _LEAKED.append([[i] for i in range(5000)])  # once: a cache, not a leak
        return Measured(n, 0.5)

    try:
        result = runner.run_benchmark(_fake_workload(work), {"stdlib": _tagged("stdlib"), "leaky": _tagged("leaky")},
                                      3, 10)
    finally:
        _LEAKED.clear()
    leaky, stdlib = result["loops"]["leaky"], result["loops"]["stdlib"]
    assert [r["extra"]["left_alive"] for r in leaky["runs"]] == [5001] * 3
    assert leaky["extra"]["left_alive"] == 5001
    assert "left_alive" not in stdlib["extra"]
    assert stdlib["runs"][0]["extra"]["left_alive"] == 5001  # the first run's cache
    assert [abs(r["extra"]["left_alive"]) < 50 for r in stdlib["runs"][1:]] == [True, True]
    assert "left_alive" in report.EXTRAS and "left_alive" in cli.NOTES


def test_failed_check_discards_timings_and_stops_that_loop():
    calls = []

    def work(loop, n):
        calls.append(loop.tag)
        if loop.tag == "bad" and len([c for c in calls if c == "bad"]) == 2:
            raise CheckFailed("tampered result")
        return Measured(n, 0.5)

    result = runner.run_benchmark(_fake_workload(work), {"stdlib": _tagged("stdlib"), "bad": _tagged("bad")}, 4, 10)
    bad = result["loops"]["bad"]
    assert bad["status"] == runner.FAILED and "tampered result" in bad["error"]
    assert bad["runs"] == [] and bad["ratio_vs_stdlib"] is None
    assert calls.count("bad") == 2 and calls.count("stdlib") == 4


@pytest.mark.parametrize(
    "result",
    [RuntimeError("loop exploded"), Measured(0, 0.1), Measured(10, 0.0), Measured(10, -1.0)],
)
def test_errors_and_bogus_results_fail(result):
    def work(loop, n):
        if isinstance(result, Exception):
            raise result
        return result

    res = runner.run_benchmark(_fake_workload(work), {"stdlib": runner._stdlib_factory}, 2, 10)
    assert res["loops"]["stdlib"]["status"] == runner.FAILED


def test_missing_loop_is_skipped():
    work = _fake_workload(lambda loop, n: Measured(n, 0.1))
    res = runner.run_benchmark(work, {"stdlib": runner._stdlib_factory, "gone": None}, 2, 10, {"gone": "nope"})
    assert res["loops"]["gone"]["status"] == runner.SKIPPED
    assert res["loops"]["gone"]["error"] == "nope"
    assert res["loops"]["stdlib"]["status"] == runner.OK


def test_unknown_and_unbuilt_loops_resolve_to_reasons():
    assert runner.resolve_loop("nosuchloop")[0] is None
    factory, reason = runner.resolve_loop("quickloop")
    assert (factory is None) == (reason is not None)


# --------------------------------------------------------------------- CLI


def test_cli_json_and_table(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = cli.main(["--loops", "stdlib,quickloop", "--bench", "call_soon,queue", "--reps", "2",
                   "--scale", "0.001", "--json", str(out), "-q"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "call_soon" in text and "queue" in text and "command:" in text and "machine:" in text
    report = json.loads(out.read_text())
    assert list(report["benchmarks"]) == ["call_soon", "queue"]
    s = report["benchmarks"]["call_soon"]["loops"]["stdlib"]
    assert len(s["runs"]) == 2 and all(r["elapsed"] > 0 for r in s["runs"])
    assert s["median_ops_per_s"] > 0 and s["ratio_vs_stdlib"] == 1.0
    assert report["machine"]["python"].startswith("3.")
    assert report["loops"]["quickloop"]["available"] in (True, False)


def test_cli_runs_each_repetition_in_its_own_process(tmp_path):
    out = tmp_path / "r.json"
    assert cli.main(["--loops", "stdlib", "--bench", "call_soon", "--reps", "2", "--scale", "0.001",
                     "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["isolate"] is True
    pids = [r["pid"] for r in report["benchmarks"]["call_soon"]["loops"]["stdlib"]["runs"]]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert cli.main(["--loops", "stdlib", "--bench", "call_soon", "--reps", "1", "--scale", "0.001",
                     "--json", str(out), "--in-process", "-q"]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["isolate"] is False
    assert "pid" not in report["benchmarks"]["call_soon"]["loops"]["stdlib"]["runs"][0]


def test_isolated_run_reports_like_run_once():
    run = runner.run_isolated(WORKLOADS["task_spawn_cancel"], "stdlib", TINY["task_spawn_cancel"])
    assert run["ops"] == TINY["task_spawn_cancel"] and run["elapsed"] > 0
    assert run["pid"] != os.getpid() and "left_alive" in run["extra"]


def test_isolated_unknown_loop_is_skipped_and_unknown_workload_fails():
    with pytest.raises(workloads.SkipWorkload, match="unknown loop"):
        runner.run_isolated(WORKLOADS["call_soon"], "noloop", 10)
    ghost = Workload("no_such_workload", None, 10, 10, "ops", "")
    with pytest.raises(CheckFailed, match="unknown workload 'no_such_workload'"):
        runner.run_isolated(ghost, "stdlib", 10)


def test_isolated_worker_that_dies_fails_the_loop(tmp_path, monkeypatch):
    # A loop that kills its process (a segfault, say) leaves no outcome line.
    fake = tmp_path / "python"
    # SIGKILL, which no sanitizer runtime preloaded into the shell can catch.
    fake.write_text("#!/bin/sh\necho 'Fatal Python error: Segmentation fault' >&2\nkill -KILL $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(runner.sys, "executable", str(fake))
    with pytest.raises(CheckFailed, match="exited with -9 and no outcome.*Segmentation fault"):
        runner.run_isolated(WORKLOADS["call_soon"], "stdlib", 10)


def test_cli_summary_reports_failed_loop(monkeypatch, capsys):
    real = runner.resolve_loop

    def resolve(name):
        return (DuplicatingLoop, None) if name == "uvloop" else real(name)

    monkeypatch.setattr(runner, "resolve_loop", resolve)
    # --in-process: a worker process would not see the patched resolve_loop.
    rc = cli.main(["--loops", "stdlib,uvloop", "--bench", "call_soon", "--summary", "--reps", "1",
                   "--scale", "0.1", "--in-process", "-q"])
    text = capsys.readouterr().out
    assert rc == 1
    header = text.splitlines()[0]
    assert "stdlib ops/s" in header and "uvloop x" in header
    assert "FAILED" in text


def test_cli_rejects_unknown_names():
    with pytest.raises(SystemExit):
        cli.parse_args(["--bench", "nope"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--loops", "nope"])


# ------------------------------------------------- new workloads: broken cases


def _quickloop():
    why = runner.resolve_loop("quickloop")[1]
    if why:
        pytest.skip(f"quickloop: {why}")
    import quickloop

    return quickloop


def _both_fail(workload, size, message, kinds=("stdlib", "quickloop")):
    """The workload FAILS on every available loop with `message` in the error."""
    factories = {k: runner.resolve_loop(k)[0] for k in kinds}
    factories = {k: f for k, f in factories.items() if f is not None}
    result = runner.run_benchmark(workload, factories, reps=2, size=size)
    for kind, res in result["loops"].items():
        assert res["status"] == runner.FAILED, (kind, res)
        assert message in res["error"], (kind, res["error"])
        assert res["runs"] == [] and res["ratio_vs_stdlib"] is None


class CorruptingEchoProtocol(net.EchoServerProtocol):
    """An echo server that flips one byte of its third chunk."""

    chunks = 0

    def data_received(self, data):
        self.chunks += 1
        if self.chunks == 3:
            data = bytes([data[0] ^ 0x5A]) + data[1:]
        self.transport.write(data)


async def corrupting_stream_handler(reader, writer):
    chunks = 0
    while True:
        data = await reader.read(65536)
        if not data:
            break
        chunks += 1
        if chunks == 3:
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.mark.parametrize("size", [1_000, 100_000])
def test_echo_protocol_corrupting_server_fails(size):
    w = Workload("echo", functools.partial(net.tcp_echo_protocol, size=size, server_protocol=CorruptingEchoProtocol),
                 10, 5, "round trips", "")
    _both_fail(w, 12, "differ from what was sent")


@pytest.mark.parametrize("size", [1_000, 100_000])
def test_echo_streams_corrupting_server_fails(size):
    w = Workload("echo", functools.partial(net.tcp_echo_streams, size=size, handler=corrupting_stream_handler),
                 10, 5, "round trips", "")
    _both_fail(w, 12, "differ from what was sent")


class _FlippingProtocol(asyncio.Protocol):
    """Stands between a transport and its protocol; flips a byte of the
    seventh chunk its loop delivers (once per loop: flipping both an echo
    request and its echo would restore the byte)."""

    def __init__(self, inner, loop):
        self.inner, self.loop = inner, loop

    def connection_made(self, transport):
        self.inner.connection_made(transport)

    def connection_lost(self, exc):
        self.inner.connection_lost(exc)

    def pause_writing(self):
        self.inner.pause_writing()

    def resume_writing(self):
        self.inner.resume_writing()

    def eof_received(self):
        return self.inner.eof_received()

    def data_received(self, data):
        self.loop.chunks += 1
        if self.loop.chunks == 7:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.inner.data_received(data)


class CorruptingTransportLoop(asyncio.SelectorEventLoop):
    """Its socket transports corrupt one byte of what they receive."""

    chunks = 0

    def _make_socket_transport(self, sock, protocol, waiter=None, **kw):
        return super()._make_socket_transport(sock, _FlippingProtocol(protocol, self), waiter, **kw)


@pytest.mark.parametrize("name", ["tcp_echo_protocol_1k", "tcp_echo_streams_10k"])
def test_echo_on_corrupting_loop_fails(name):
    result = runner.run_benchmark(WORKLOADS[name], {"stdlib": runner._stdlib_factory,
                                                    "broken": CorruptingTransportLoop}, reps=2, size=20)
    assert result["loops"]["stdlib"]["status"] == runner.OK
    bad = result["loops"]["broken"]
    assert bad["status"] == runner.FAILED and "differ from what was sent" in bad["error"]


def test_cpu_extras():
    assert net.cpu_extras(0.3, 0.7, 1000) == pytest.approx({"kernel_pct": 70.0, "user_us_per_op": 300.0})
    assert net.cpu_extras(0.0, 0.0, 1000) == {}  # too short to tell: no figure, not a wrong one


def test_proc_cpu_reads_this_process():
    if not os.path.exists(f"/proc/{os.getpid()}/stat"):
        pytest.skip("no /proc")
    user0, system0 = net.proc_cpu(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn CPU so the counters move
        pass
    user1, system1 = net.proc_cpu(os.getpid())
    # The kernel splits the process's run time into user and system in
    # proportion to sampled ticks, so only their sum must grow with the burn.
    assert user1 >= 0 and system1 >= 0 and user1 + system1 > user0 + system0
    assert net.proc_cpu(2**22 + 12345) is None  # no such process


def test_cpu_plan_gives_two_cpus_of_ours():
    plan = net.cpu_plan()
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        assert plan is None
    else:
        server, client = plan
        assert server != client and {server, client} <= cpus


def test_echo_reports_throughput():
    run = runner.run_once(WORKLOADS["tcp_echo_protocol_10k"], runner._stdlib_factory, 20)
    assert run["extra"]["mb_per_s"] > 0 and run["extra"]["message_bytes"] == 10_000


def test_echo_reports_where_the_cpu_went():
    run = runner.run_once(WORKLOADS["tcp_echo_streams_10k"], runner._stdlib_factory, 2000)
    extra = run["extra"]  # 2000 round trips take well over one clock tick of CPU
    assert 0 <= extra["kernel_pct"] <= 100 and extra["user_us_per_op"] >= 0


def _lossy_factory(every=20):
    """A task factory making every `every`-th task return 0 instead of its result."""
    n = [0]

    async def lose(coro):
        await coro
        return 0

    def factory(loop, coro, **kw):
        n[0] += 1
        if n[0] % every == 0:
            coro = lose(coro)
        return asyncio.Task(coro, loop=loop, **kw)

    return factory


class LossyTaskLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        super().__init__()
        self.set_task_factory(_lossy_factory())


def test_async_tree_lossy_loop_fails():
    result = runner.run_benchmark(WORKLOADS["async_tree"], {"stdlib": runner._stdlib_factory,
                                                            "broken": LossyTaskLoop}, reps=2, size=216)
    assert result["loops"]["stdlib"]["status"] == runner.OK
    bad = result["loops"]["broken"]
    assert bad["status"] == runner.FAILED and "wrong leaf count" in bad["error"]


def test_async_tree_eager_broken_factory_fails(monkeypatch):
    ql = _quickloop()
    monkeypatch.setattr(ql, "eager_task_factory", _lossy_factory())
    _both_fail(WORKLOADS["async_tree_eager"], 216, "wrong leaf count")


def test_async_tree_eager_sets_quickloop_factory():
    ql = _quickloop()
    seen = []

    class Recording(asyncio.SelectorEventLoop):
        def set_task_factory(self, factory):
            seen.append(factory)
            super().set_task_factory(factory)

    runner.run_once(WORKLOADS["async_tree_eager"], Recording, 36)
    assert seen == [ql.eager_task_factory]


def test_async_tree_eager_asyncio_needs_python_3_12(monkeypatch):
    w = WORKLOADS["async_tree_eager_asyncio"]
    monkeypatch.delattr(asyncio, "eager_task_factory", raising=False)
    assert w.unavailable().startswith("asyncio.eager_task_factory is new in Python 3.12")
    result = runner.run_benchmark(w, {"stdlib": runner._stdlib_factory}, 1, 36)
    assert result["skipped"].startswith("asyncio.eager_task_factory is new in Python 3.12")
    assert result["loops"]["stdlib"]["status"] == runner.SKIPPED


def test_async_tree_eager_asyncio_sets_asyncios_factory(monkeypatch):
    """The workload installs asyncio.eager_task_factory (here, on 3.11, a
    stand-in: quickloop's, which has 3.12's semantics), and a factory that
    loses children fails its checks."""
    ql = _quickloop()
    monkeypatch.setattr(asyncio, "eager_task_factory", ql.eager_task_factory, raising=False)
    seen = []

    class Recording(asyncio.SelectorEventLoop):
        def set_task_factory(self, factory):
            seen.append(factory)
            super().set_task_factory(factory)

    w = WORKLOADS["async_tree_eager_asyncio"]
    assert w.unavailable() is None
    run = runner.run_once(w, Recording, 36)
    assert seen == [ql.eager_task_factory] and run["ops"] == expected_ops(w.name, 36)
    monkeypatch.setattr(asyncio, "eager_task_factory", _lossy_factory(), raising=False)
    _both_fail(w, 216, "wrong leaf count")


def test_direct_wait_for_wrong_result_fails(monkeypatch):
    ql = _quickloop()
    real = ql.wait_for

    async def off_by_one(aw, timeout):
        r = await real(aw, timeout)
        return r + 1 if r == 7 else r

    monkeypatch.setattr(ql, "wait_for", off_by_one)
    _both_fail(WORKLOADS["wait_for_fast_direct"], 20, "sum of results")
    assert WORKLOADS["wait_for_fast"].func(runner._stdlib_factory(), 20).ops == 20  # asyncio's is untouched


def test_direct_timeout_that_never_fires_fails(monkeypatch):
    ql = _quickloop()

    class Deaf:
        def __init__(self, delay):
            pass

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

    monkeypatch.setattr(ql, "timeout", Deaf)
    monkeypatch.setattr(workloads, "TIMEOUT_PROBE_GUARD", 0.2)
    _both_fail(WORKLOADS["timeout_fast_direct"], 20, "did not raise TimeoutError")


def test_direct_shield_that_does_not_shield_fails(monkeypatch):
    ql = _quickloop()
    monkeypatch.setattr(ql, "shield", lambda fut: fut)
    _both_fail(WORKLOADS["shield_direct"], 20, "cancelled its inner future")


def test_quickloop_helpers_missing_skips_direct_workloads(monkeypatch):
    monkeypatch.setitem(sys.modules, "quickloop", None)  # import quickloop raises ImportError
    result = runner.run_benchmark(WORKLOADS["shield_direct"], {"stdlib": runner._stdlib_factory}, 1, 10)
    assert result["skipped"].startswith("quickloop not importable")
    assert result["loops"]["stdlib"]["status"] == runner.SKIPPED
    assert runner.run_benchmark(WORKLOADS["shield"], {"stdlib": runner._stdlib_factory}, 1, 10)["skipped"] is None


# ------------------------------------------------------------------ http_wrk

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason=net.WRK_MISSING)

BROKEN_HTTP_SERVER = textwrap.dedent('''
    """A keep-alive HTTP server that answers 'Hellx' to every EVERY-th request."""
    import asyncio, socket, sys

    fd, every = int(sys.argv[1]), int(sys.argv[2])
    GOOD = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nHello"
    BAD = GOOD[:-1] + b"x"
    count = 0

    class P(asyncio.Protocol):
        def connection_made(self, t):
            self.t, self.buf = t, b""

        def data_received(self, data):
            global count
            self.buf += data
            while b"\\r\\n\\r\\n" in self.buf:
                head, self.buf = self.buf.split(b"\\r\\n\\r\\n", 1)
                if b"__benchmark_stop__" in head:
                    body = b"served %d" % count
                    self.t.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s"
                                 % (len(body), body))
                    self.t.close()
                    stop.set_result(None)
                    return
                count += 1
                self.t.write(BAD if count % every == 0 else GOOD)
                if b"connection: close" in head.lower():
                    self.t.close()
                    return

    async def main():
        global stop
        stop = asyncio.get_running_loop().create_future()
        server = await asyncio.get_running_loop().create_server(P, sock=socket.socket(fileno=fd))
        await stop
        server.close()

    asyncio.run(main())
''')


def _broken_http(tmp_path, every):
    script = tmp_path / "broken_server.py"
    script.write_text(BROKEN_HTTP_SERVER)
    argv = lambda name, fd: [sys.executable, str(script), str(fd), str(every)]  # noqa: E731
    func = functools.partial(net.http_wrk, server_argv=argv, connections=4, threads=1)
    return Workload("http_wrk", func, 1, 1, "requests", "", wants_loop_name=True, min_size=1)


@needs_wrk
@pytest.mark.parametrize("every, message", [(1, "plain GET before"), (50, "wrong status or body")])
def test_http_wrk_broken_server_fails(tmp_path, every, message):
    result = runner.run_benchmark(_broken_http(tmp_path, every), {"stdlib": runner._stdlib_factory}, reps=1, size=1)
    res = result["loops"]["stdlib"]
    assert res["status"] == runner.FAILED and message in res["error"], res


@needs_wrk
def test_http_wrk_reports_the_servers_cpu():
    run = runner.run_once(WORKLOADS["http_wrk"], runner._stdlib_factory, 1, loop_name="stdlib")
    extra = run["extra"]
    assert extra["pinned"] == (net.cpu_plan() is not None) and extra["wrk_threads"] == 1
    if os.path.exists("/proc/self/stat"):
        assert 0 < extra["server_busy_pct"] <= 150  # clock ticks are coarse
        assert 0 <= extra["kernel_pct"] <= 100 and extra["user_us_per_op"] > 0


@needs_wrk  # without wrk the workload is skipped before any loop is tried
def test_http_wrk_unknown_loop_fails():
    result = runner.run_benchmark(WORKLOADS["http_wrk"], {"noloop": runner._stdlib_factory}, reps=1, size=1)
    res = result["loops"]["noloop"]
    assert res["status"] == runner.FAILED and "plain GET before" in res["error"] and "unknown loop" in res["error"]


def test_http_wrk_skipped_without_wrk(monkeypatch, capsys):
    monkeypatch.setattr(net.shutil, "which", lambda name: None)
    result = runner.run_benchmark(WORKLOADS["http_wrk"], {"stdlib": runner._stdlib_factory}, reps=1, size=1)
    assert result["skipped"] == net.WRK_MISSING == "wrk not installed: apt-get install wrk"
    assert result["loops"]["stdlib"]["status"] == runner.SKIPPED
    rc = cli.main(["--loops", "stdlib", "--bench", "http_wrk", "--summary", "--reps", "1", "-q"])
    assert rc == 0
    assert "http_wrk: skipped: wrk not installed: apt-get install wrk" in capsys.readouterr().out


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:4242/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   825.33us  190.20us   3.94ms   83.64%
    Req/Sec    30.14k     1.69k   32.62k    75.00%
  60015 requests in 1.00s, 3.95MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:  59981.29
Transfer/sec:      3.95MB
BENCHMARK_CHECK good=60012 bad=3
"""


def test_parse_wrk():
    stats = net.parse_wrk(WRK_OUTPUT)
    assert stats["requests"] == 60015 and stats["rps"] == 59981.29
    assert abs(stats["latency_ms"] - 0.82533) < 1e-9
    assert stats["socket_errors"] == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert stats["non_2xx"] == 3 and stats["good"] == 60012 and stats["bad"] == 3


class _FakeTransport:
    def __init__(self):
        self.out, self.closed = [], False

    def write(self, data):
        self.out.append(data)

    def close(self):
        self.closed = True


def test_http_server_protocol_pipelining_and_close():
    loop = asyncio.new_event_loop()
    try:
        state = State(loop.create_future())
        p, t = HttpProtocol(state), _FakeTransport()
        p.connection_made(t)
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        p.data_received(req + req[:10])  # one and a bit
        p.data_received(req[10:] + req)
        assert b"".join(t.out) == net.HTTP_RESPONSE * 3 and not t.closed
        p.data_received(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
        assert b"".join(t.out) == net.HTTP_RESPONSE * 4 and t.closed and state.served == 4
        p2, t2 = HttpProtocol(state), _FakeTransport()
        p2.connection_made(t2)
        p2.data_received(b"POST / HTTP/1.1\r\n\r\n")
        assert t2.closed and b"400 Bad Request" in b"".join(t2.out)
        p3, t3 = HttpProtocol(state), _FakeTransport()
        p3.connection_made(t3)
        p3.data_received(b"GET " + net.HTTP_STOP_PATH.encode() + b" HTTP/1.1\r\n\r\n")
        assert b"served 4" in b"".join(t3.out) and t3.closed and state.stop.done()
    finally:
        loop.close()


def test_http_server_by_hand_on_quickloop():
    """The server module on its own, in a subprocess on quickloop: answers,
    then stops on the stop path and reports the count."""
    _quickloop()
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = subprocess.Popen(net.server_command("quickloop", listener.fileno()), pass_fds=[listener.fileno()],
                            stdout=subprocess.PIPE, env=net._child_env())
    listener.close()
    try:
        assert net.http_get(port, requests=3) == [net.HTTP_RESPONSE] * 3
        (stop,) = net.http_get(port, net.HTTP_STOP_PATH)
        assert stop.endswith(b"served 3")
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and b"served 3" in out


# --------------------------------------------------------------------- loops


def test_default_loops_core_plus_importable_optional():
    loops = runner.default_loops()
    assert loops[:3] == ["stdlib", "uvloop", "quickloop"]
    for name in runner.OPTIONAL_LOOPS:
        assert (name in loops) == (runner.resolve_loop(name)[0] is not None)
    assert cli.parse_args([]).loops == loops


def test_optional_loop_missing_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "rsloop", None)
    factory, reason = runner.resolve_loop("rsloop")
    assert factory is None and "not importable" in reason


# -------------------------------------------------------------------- curves


class ShortTimersLoop(asyncio.SelectorEventLoop):
    """Every timer fires within a millisecond, whatever its delay."""

    def call_later(self, delay, callback, *args, context=None):
        return super().call_later(min(delay, 0.001), callback, *args, context=context)


def _tiny_curves(monkeypatch):
    monkeypatch.setattr(curves, "OPS", {k: (300, 300) for k in curves.OPS})
    monkeypatch.setattr(curves, "BATCH", 100)


def test_curves_tiny_run(monkeypatch):
    _tiny_curves(monkeypatch)
    factories = {"stdlib": runner._stdlib_factory, "broken": ShortTimersLoop}
    if runner.resolve_loop("quickloop")[0]:
        factories["quickloop"] = runner.resolve_loop("quickloop")[0]
    rep = curves.run_curves(list(factories), reps=1, max_count=100, factories=factories)
    for kind in ("timers", "tasks"):
        assert rep[kind]["counts"] == [10, 100]
        for name in factories:
            res = rep[kind]["loops"][name]
            if name == "broken":
                assert res["status"] == "FAILED", res
                continue
            assert res["status"] == "ok", res
            for key in curves.METRICS[kind]:
                assert all(v > 0 for v in res[key + "_ns"])
    assert "fired" in rep["timers"]["loops"]["broken"]["error"]
    assert "finished early" in rep["tasks"]["loops"]["broken"]["error"]
    text = curves.format_curves(rep)
    assert "ns/op" in text and "broken: FAILED" in text


def test_cli_curves_writes_json_and_png(tmp_path, monkeypatch, capsys):
    _tiny_curves(monkeypatch)
    j, png = tmp_path / "c.json", tmp_path / "c.png"
    rc = cli.main(["--curves", "--loops", "stdlib", "--reps", "1", "--curves-max", "10", "--json", str(j),
                   "--chart", str(png), "-q"])
    assert rc == 0
    data = json.loads(j.read_text())
    assert data["timers"]["counts"] == [10] and data["tasks"]["counts"] == [10]
    assert data["timers"]["loops"]["stdlib"]["arm_cancel_ns"][0] > 0 and "command" in data
    _check_png(png, capsys)


def _check_png(path, capsys):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not path.exists()
        assert "matplotlib not installed" in capsys.readouterr().err
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------- chart and RESULTS.md


def _fake_uvloop(monkeypatch):
    real = runner.resolve_loop
    monkeypatch.setattr(runner, "resolve_loop", lambda name: (runner._stdlib_factory, None) if name == "uvloop"
                        else real(name))


def test_cli_chart_and_results(tmp_path, monkeypatch, capsys):
    _fake_uvloop(monkeypatch)
    _quickloop()
    results = tmp_path / "RESULTS.md"
    curves_json = tmp_path / "curves.json"
    monkeypatch.setattr(report, "DEFAULT_CURVES_JSON", str(curves_json))
    monkeypatch.setattr(report, "DEFAULT_CURVES_PNG", str(tmp_path / "curves.png"))
    rc = cli.main(["--loops", "stdlib,uvloop,quickloop", "--bench", "call_soon,shield_direct", "--reps", "1",
                   "--scale", "0.001", "--results", str(results), "-q"])
    assert rc == 0
    _check_png(tmp_path / "ratios.png", capsys)
    text = results.read_text()
    for needle in ("## Machine", "CPU:", "logical CPUs", "Kernel:", "Python:", "## Command",
                   "--results", "| `call_soon` |", "stdlib ops/s", "quickloop / stdlib", "quickloop / uvloop",
                   "## Charts"):
        assert needle in text, needle
    if (tmp_path / "ratios.png").exists():
        assert "](ratios.png)" in text
    assert "not drawn yet" in text  # no curves.png next to it


def test_results_include_extras_and_curves(tmp_path, monkeypatch):
    _tiny_curves(monkeypatch)
    rep = runner.run_all(["call_later", "timer_cancel"], ["stdlib"], 1, scale=0.001)
    rep["command"] = "python -m benchmarks --results"
    cj = tmp_path / "curves.json"
    cr = curves.run_curves(["stdlib"], reps=1, max_count=10)
    curves.write_json(cr, str(cj))
    (tmp_path / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    text = report.render_results(rep, str(tmp_path / "RESULTS.md"), None, str(cj), str(tmp_path / "curves.png"))
    assert "mean timer lateness, ms" in text and "peak RSS growth, MiB" in text
    assert "](curves.png)" in text and "arm + cancel one call_later(3600) (ns/op)" in text


def test_chart_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rep = runner.run_all(["call_soon"], ["stdlib"], 1, scale=0.001)
    assert report.draw_chart(rep, str(tmp_path / "x.png")) is None
    assert "matplotlib not installed" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_cli_rejects_results_with_curves():
    with pytest.raises(SystemExit):
        cli.parse_args(["--curves", "--results"])


def test_list_marks_unavailable(monkeypatch, capsys):
    monkeypatch.setattr(net.shutil, "which", lambda name: None)
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "http_wrk" in out and "skipped here: wrk not installed" in out and "tcp_echo_streams_100k" in out


def test_results_keeps_the_profiling_log(tmp_path, monkeypatch):
    """--results rewrites RESULTS.md above the marker and keeps the hand-kept log below it."""
    from benchmarks import report as rep
    path = tmp_path / "RESULTS.md"
    path.write_text("old table\n" + rep.KEEP_MARKER + "\n### 1. a measured change\n")
    monkeypatch.setattr(rep, "render_results", lambda *a, **k: "new table\n")
    rep.write_results({}, str(path))
    text = path.read_text()
    assert text.startswith("new table\n")
    assert "old table" not in text
    assert text.endswith(rep.KEEP_MARKER + "\n### 1. a measured change\n")


# ------------------------------------------------------------------ targets


def _fake_report(medians, rss=None):
    """A run report with the given {workload: {loop: median ops/s or None}}."""
    benchmarks = {}
    for name, per_loop in medians.items():
        loops = {}
        for loop, m in per_loop.items():
            res = {"status": runner.OK if m else runner.FAILED, "median_ops_per_s": m, "extra": {}}
            if rss and loop in rss and name == "timer_cancel":
                res["extra"]["peak_rss_mib"] = rss[loop]
            loops[loop] = res
        benchmarks[name] = {"loops": loops}
    return {"config": {"loops": ["stdlib", "uvloop", "quickloop"]}, "benchmarks": benchmarks}


def test_targets_follow_the_issue():
    rep = _fake_report({
        "task_spawn_cancel": {"stdlib": 100, "uvloop": 120, "quickloop": 230},  # 2.3x, 1.92x: uvloop missed
        "call_soon": {"stdlib": 100, "uvloop": 150, "quickloop": 200},  # 2.0x, 1.33x: both met
        "queue": {"stdlib": 100, "uvloop": 100, "quickloop": 199},  # 1.99x: missed, 1.99x: met
        "tcp_echo_streams_1k": {"stdlib": 100, "uvloop": 190, "quickloop": 190},  # uvloop's floor is 1.0x
        "http_wrk": {"stdlib": 100, "uvloop": 300, "quickloop": 250},  # no uvloop target
        "shield": {"stdlib": 100, "uvloop": 100, "quickloop": None},  # quickloop FAILED
        "timer_cancel": {"stdlib": 100, "uvloop": 100, "quickloop": 300},
    }, rss={"quickloop": 200, "uvloop": 150})
    got = {(r["workload"], r["target"]): r["status"] for r in targets.evaluate(rep)}
    assert got == {
        ("task_spawn_cancel", "quickloop / stdlib"): "met",
        ("task_spawn_cancel", "quickloop / uvloop"): "missed",
        ("call_soon", "quickloop / stdlib"): "met",
        ("call_soon", "quickloop / uvloop"): "met",
        ("queue", "quickloop / stdlib"): "missed",
        ("queue", "quickloop / uvloop"): "met",
        ("tcp_echo_streams_1k", "quickloop / stdlib"): "missed",
        ("tcp_echo_streams_1k", "quickloop / uvloop"): "met",
        ("http_wrk", "quickloop / stdlib"): "met",
        ("shield", "quickloop / stdlib"): "not measured",
        ("shield", "quickloop / uvloop"): "not measured",
        ("timer_cancel", "quickloop / stdlib"): "met",
        ("timer_cancel", "quickloop / uvloop"): "met",
        ("timer_cancel", "peak RSS growth: uvloop / quickloop"): "missed",  # 200 MiB against 150
    }
    lines = targets.targets_table(rep)
    assert lines[0].startswith("8 of 14 targets met, 4 missed, 2 not measured")
    assert "| `queue` | quickloop / stdlib | 1.99x | 2.0x | **missed** |" in lines
    text = "\n".join(cli._targets(rep))
    assert "targets: 8 of 14 met\n" in text + "\n"  # full sizes: no caveat
    rep["config"]["summary"] = True
    assert "targets: 8 of 14 met (at this run's smaller sizes" in "\n".join(cli._targets(rep))
    assert "missed: queue quickloop / stdlib 1.99x, needs 2.0x" in text
    assert "not measured: shield quickloop / uvloop not measured" in text


def test_targets_leave_out_what_could_not_run():
    rep = _fake_report({
        "call_soon": {"stdlib": 100, "uvloop": 150, "quickloop": 200},
        "async_tree_eager_asyncio": {"stdlib": None, "uvloop": None, "quickloop": None},
    })
    rep["benchmarks"]["async_tree_eager_asyncio"]["skipped"] = "asyncio.eager_task_factory is new in Python 3.12"
    assert {r["workload"] for r in targets.evaluate(rep)} == {"call_soon"}
    lines = targets.targets_table(rep)
    assert lines[0].startswith("2 of 2 targets met, 0 missed in this run")
    assert lines[-1] == ("Not run here, so not counted: `async_tree_eager_asyncio` "
                         "(asyncio.eager_task_factory is new in Python 3.12).")
    text = "\n".join(cli._targets(rep))
    assert "targets: 2 of 2 met" in text and "not run here, not counted: async_tree_eager_asyncio" in text


def test_results_md_has_the_targets(tmp_path):
    rep = runner.run_all(["call_soon"], ["stdlib", "quickloop"], 1, scale=0.001)
    text = report.render_results(rep, str(tmp_path / "RESULTS.md"))
    assert "## Targets" in text and "| `call_soon` | quickloop / stdlib |" in text
    assert "| `call_soon` | quickloop / uvloop | - | 1.3x | not measured |" in text  # uvloop not in this run


# ------------------------------------------------------------------ compare


def _run_report(per_rep, loops=("stdlib", "uvloop", "quickloop"), **config):
    """A run report from {workload: {loop: [ops/s of rep 1, rep 2, ...] or None}}."""
    benchmarks = {}
    for name, per_loop in per_rep.items():
        res = {}
        for loop, rates in per_loop.items():
            if rates is None:
                res[loop] = {"status": runner.FAILED, "median_ops_per_s": None, "runs": []}
                continue
            runs = [{"rep": i + 1, "ops_per_s": r} for i, r in enumerate(rates)]
            res[loop] = {"status": runner.OK, "median_ops_per_s": sorted(rates)[len(rates) // 2], "runs": runs}
        benchmarks[name] = {"loops": res}
    cfg = {"loops": list(loops), "reps": 3, "summary": False, "scale": 1.0}
    cfg.update(config)
    return {"config": cfg, "benchmarks": benchmarks, "date": "then",
            "machine": {"cpu": "X", "cpus": 2, "python": "3.11.7"}}


def test_ratio_band_pairs_repetitions():
    rep = _run_report({"w": {"stdlib": [100, 50, 200], "quickloop": [300, 100, 500]}})
    median, lo, hi = compare.ratio_band(rep["benchmarks"]["w"], "quickloop", "stdlib")
    # rep by rep: 3.0, 2.0, 2.5 (unpaired min/max would give 1.5..10)
    assert (median, lo, hi) == (300 / 100, 2.0, 3.0)
    assert compare.ratio_band(rep["benchmarks"]["w"], "uvloop", "stdlib") is None


def test_compare_flags_only_what_moved_beyond_noise():
    then = _run_report({
        "steady": {"stdlib": [100, 100, 100], "uvloop": [150, 150, 150], "quickloop": [300, 290, 310]},
        "moved": {"stdlib": [100, 100, 100], "uvloop": [150, 150, 150], "quickloop": [300, 290, 310]},
        "gone": {"stdlib": [1, 1, 1], "uvloop": [1, 1, 1], "quickloop": [1, 1, 1]},
    })
    now = _run_report({
        "steady": {"stdlib": [100, 95, 105], "uvloop": [150, 140, 160], "quickloop": [305, 280, 300]},
        "moved": {"stdlib": [100, 100, 100], "uvloop": [150, 150, 150], "quickloop": [200, 210, 190]},
        "new": {"stdlib": [1, 1, 1], "uvloop": [1, 1, 1], "quickloop": [1, 1, 1]},
    }, reps=5)
    rows, only = compare.compare(now, then)
    got = {(r["workload"], r["ratio"]): r["status"] for r in rows}
    assert got == {
        ("steady", "uvloop / stdlib"): compare.AGREE,
        ("steady", "quickloop / stdlib"): compare.AGREE,
        ("steady", "quickloop / uvloop"): compare.AGREE,
        ("moved", "uvloop / stdlib"): compare.AGREE,
        ("moved", "quickloop / stdlib"): compare.DIFFER,
        ("moved", "quickloop / uvloop"): compare.DIFFER,
    }
    assert sorted(only) == ["gone: not in this run", "new: not in the earlier run"]
    text = "\n".join(compare.format_compare(now, then, "old.json"))
    assert "compared with old.json (then): 4 of 6 ratios within noise" in text
    assert "differs: moved quickloop / stdlib 3.00x (2.90-3.10) then, 2.00x (1.90-2.10) now, -33%" in text
    assert "set-ups differ: reps 3 then, 5 now" in text


def test_compare_lists_a_ratio_only_one_run_measured():
    then = _run_report({"w": {"stdlib": [100], "uvloop": [100], "quickloop": [200], "rloop": [150]}},
                       loops=("stdlib", "uvloop", "quickloop", "rloop"), reps=1)
    now = _run_report({"w": {"stdlib": [100], "uvloop": [100], "quickloop": None}}, reps=1)
    rows, only = compare.compare(now, then)
    assert [r["ratio"] for r in rows] == ["uvloop / stdlib"] and rows[0]["status"] == compare.AGREE
    assert "w quickloop / stdlib: measured in the earlier run only" in only
    assert "loop rloop: not in this run" in only


def test_cli_compare_with_a_saved_run(tmp_path, capsys):
    saved = tmp_path / "then.json"
    args = ["--loops", "stdlib,quickloop", "--bench", "call_soon", "--reps", "2", "--scale", "0.001", "-q"]
    assert cli.main(args + ["--json", str(saved)]) == 0
    capsys.readouterr()
    assert cli.main(args + ["--compare", str(saved)]) == 0
    out = capsys.readouterr().out
    assert f"compared with {saved} (" in out and "of 1 ratios within noise" in out


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it"),
    ("{not json", "cannot read it"),
    ('{"curves": 1}', "not a benchmark run's JSON"),
])
def test_cli_compare_rejects_bad_reference(tmp_path, capsys, content, message):
    path = tmp_path / "ref.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as e:
        cli.main(["--bench", "call_soon", "--compare", str(path)])
    assert e.value.code == 2 and message in capsys.readouterr().err


def _load_net_bounds():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "profiling" / "net_bounds.py"
    spec = importlib.util.spec_from_file_location("net_bounds", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_net_bounds_from_the_kernel_share():
    nb = _load_net_bounds()
    results = {"benchmarks": {
        # stdlib 20 us/op; quickloop 10 us/op, 75% of it in the kernel: 6 us kernel, 2 us user
        "echo": {"loops": {
            "stdlib": {"status": "ok", "median_ops_per_s": 50_000, "extra": {}},
            "quickloop": {"status": "ok", "median_ops_per_s": 100_000,
                          "extra": {"kernel_pct": 75.0, "user_us_per_op": 2.0}}}},
        "no_kernel_figures": {"loops": {
            "stdlib": {"status": "ok", "median_ops_per_s": 1.0, "extra": {}},
            "quickloop": {"status": "ok", "median_ops_per_s": 2.0, "extra": {}}}},
        "quickloop_failed": {"loops": {
            "stdlib": {"status": "ok", "median_ops_per_s": 1.0, "extra": {}},
            "quickloop": {"status": "FAILED", "extra": {"kernel_pct": 50.0, "user_us_per_op": 1.0}}}},
    }}
    (row,) = nb.bounds(results, "quickloop", {None: 1.0})
    name, std_us, mine_us, kernel, user, share, measured, bound = row
    assert (name, share) == ("echo", 1.0)
    assert (std_us, mine_us, kernel, user) == pytest.approx((20.0, 10.0, 6.0, 2.0))
    assert measured == pytest.approx(2.0)
    assert bound == pytest.approx(20.0 / 6.0)     # all user time the loop's: kernel only
    (row,) = nb.bounds(results, "quickloop", {None: 1.0, "echo": 0.25})
    assert row[-1] == pytest.approx(20.0 / (6.0 + 0.75 * 2.0))
