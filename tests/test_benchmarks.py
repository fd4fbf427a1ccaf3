"""The benchmark suite's own tests: every workload passes its checks at a
tiny size on the stdlib loop (and quickloop when importable), and a broken
loop or a failing check is reported as FAILED, never timed.  No timing
assertions."""
import asyncio
import json
import sys
from pathlib import Path

import pytest

try:
    import benchmarks  # noqa: F401
except ImportError:  # pytest run from elsewhere: the suite lives at the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import runner  # noqa: E402
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
}


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
    run = runner.run_once(WORKLOADS[name], _factory(kind), TINY[name])
    expected = TINY[name] - TINY[name] % 2 if name == "sleep0_pingpong" else TINY[name]
    assert run["ops"] == expected
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
        real = super().call_later(0.020 - delay, callback, *args, context=context)
        return _LyingTimer(real, self.time() + delay)


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


def test_failed_check_discards_timings_and_stops_that_loop():
    calls = []

    def work(loop, n):
        calls.append(loop.tag)
        if loop.tag == "bad" and len([c for c in calls if c == "bad"]) == 2:
            raise CheckFailed("tampered result")
        return Measured(n, 0.5)

    def make(tag):
        def factory():
            lp = runner._stdlib_factory()
            lp.tag = tag
            return lp

        return factory

    result = runner.run_benchmark(_fake_workload(work), {"stdlib": make("stdlib"), "bad": make("bad")}, 4, 10)
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


def test_cli_summary_reports_failed_loop(monkeypatch, capsys):
    real = runner.resolve_loop

    def resolve(name):
        return (DuplicatingLoop, None) if name == "uvloop" else real(name)

    monkeypatch.setattr(runner, "resolve_loop", resolve)
    rc = cli.main(["--loops", "stdlib,uvloop", "--bench", "call_soon", "--summary", "--reps", "1",
                   "--scale", "0.1", "-q"])
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
