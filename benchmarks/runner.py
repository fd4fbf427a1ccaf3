"""Running workloads on several loops: interleaving, timing, medians, checks.

For each benchmark the loops are interleaved within one run: repetition 1
runs stdlib, uvloop, quickloop in turn, then repetition 2, and so on, so slow
drifts of the machine (thermal, other tenants) hit every loop alike.  Each
repetition gets a fresh loop; creating and closing it is not timed (the
workloads start the clock inside the running loop).  ``gc.collect()`` runs
before every repetition; the garbage collector stays enabled while timing,
for every loop alike.

Each repetition runs in a process of its own (``run_isolated``, which
starts ``python -m benchmarks.worker``): in a shared process a loop that
leaks distorts what comes after it, since its objects stay on the
collector's lists and CPython runs a full collection only when the
long-lived objects grow by a quarter, so every later measurement runs on a
larger heap with fewer, costlier full collections.  Each repetition still
counts the objects the collector tracks before it and after its loop is
closed and collected (``left_alive`` in each run); a median over LEAK_MIN is
reported as a leak (rloop 0.5.0 leaves every cancelled timer alive, and
three objects per task).  ``isolate=False`` runs everything in this process
(profiling, and the tests that inject loops or workloads).

A loop whose workload check fails (or which raises) is FAILED for that
benchmark: its timings are discarded, it gets no median and no ratio, and it
is not run again for that benchmark.  A workload that cannot run here (wrk
not installed, quickloop missing for the *_direct helpers) is skipped on
every loop with the reason, and so is a loop that is not importable.
"""
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import traceback

from .base import CheckFailed, SkipWorkload
from .workloads import WORKLOADS

OK, FAILED, SKIPPED = "ok", "FAILED", "skipped"
LEAK_MIN = 1000  # objects left alive by one repetition that count as a leak
BASELINE = "stdlib"
CORE_LOOPS = ("stdlib", "uvloop", "quickloop")
OPTIONAL_LOOPS = ("rloop", "rsloop")  # compared too when importable
KNOWN_LOOPS = CORE_LOOPS + OPTIONAL_LOOPS


# ------------------------------------------------------------------ loops


def _stdlib_factory():
    return asyncio.DefaultEventLoopPolicy().new_event_loop()


def resolve_loop(name):
    """(factory, None) for an available loop, (None, reason) otherwise."""
    if name == "stdlib":
        return _stdlib_factory, None
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as e:
            return None, f"not importable ({e})"
        return uvloop.new_event_loop, None
    if name == "quickloop":
        try:
            import quickloop
        except ImportError as e:
            return None, f"not importable ({e})"
        factory = getattr(quickloop, "new_event_loop", None)
        if factory is None:
            return None, "quickloop has no new_event_loop (extension not built?)"
        return factory, None
    if name in OPTIONAL_LOOPS:  # rloop, rsloop: module.new_event_loop()
        try:
            mod = __import__(name)
        except ImportError as e:
            return None, f"not importable ({e})"
        factory = getattr(mod, "new_event_loop", None)
        if factory is None:
            return None, f"{name} has no new_event_loop"
        return factory, None
    return None, "unknown loop"


def default_loops():
    """The loops compared by default: the core three, plus each optional
    one that is importable."""
    return list(CORE_LOOPS) + [n for n in OPTIONAL_LOOPS if resolve_loop(n)[0] is not None]


def loop_version(name):
    """The loop's package version, or None."""
    if name not in KNOWN_LOOPS:
        return None
    if name == "stdlib":
        return "asyncio " + sys.version.split()[0]
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:
        pass
    try:
        return getattr(__import__(name), "__version__", None)
    except Exception:
        return None


def resolve_loops(names):
    """{name: factory or None}, {name: reason} for the unavailable ones."""
    factories, reasons = {}, {}
    for name in names:
        factory, reason = resolve_loop(name)
        factories[name] = factory
        if reason:
            reasons[name] = reason
    return factories, reasons


# ---------------------------------------------------------------- running


def _dispose(loop):
    """Close a loop after a repetition, cancelling whatever a failed
    workload left behind.  Never raises: a loop that cannot be closed
    cleanly must not take the runner down."""
    try:
        if not loop.is_closed():
            if not loop.is_running():
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    except Exception:
        pass
    asyncio.set_event_loop(None)


def run_once(workload, factory, size, loop_name=None):
    """One repetition on a fresh loop: {'ops', 'elapsed', 'extra'}.
    Raises whatever the workload raised (CheckFailed for a failed check,
    SkipWorkload if it cannot run here)."""
    gc.collect()
    tracked_before = len(gc.get_objects())
    loop = factory()
    try:
        if workload.wants_loop_name:
            measured = workload.func(loop, size, loop_name=loop_name)
        else:
            measured = workload.func(loop, size)
        ops, elapsed = measured
        extra = dict(getattr(measured, "extra", {}) or {})
    finally:
        _dispose(loop)
        del loop
    measured = None
    gc.collect()
    extra["left_alive"] = len(gc.get_objects()) - tracked_before
    if not (isinstance(ops, int) and ops > 0):
        raise CheckFailed(f"workload reported {ops!r} ops")
    if not (isinstance(elapsed, float) and elapsed > 0):
        raise CheckFailed(f"workload reported elapsed time {elapsed!r}")
    return {"ops": ops, "elapsed": elapsed, "extra": extra}


def outcome(repetition, *args, **kwargs):
    """repetition(*args, **kwargs), one repetition (run_once or
    run_isolated), as {'status': OK, 'run': ...} or {'status': SKIPPED or
    FAILED, 'error': why}: what the runner records, and what a worker
    prints."""
    try:
        return {"status": OK, "run": repetition(*args, **kwargs)}
    except SkipWorkload as e:
        return {"status": SKIPPED, "error": str(e)}
    except CheckFailed as e:
        return {"status": FAILED, "error": f"check failed: {e}"}
    except Exception as e:  # a broken loop may raise anything
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return {"status": FAILED, "error": f"raised {tb}"}


PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_TIMEOUT = 900  # seconds; the largest full-size repetition takes under a minute


def run_isolated(workload, loop_name, size):
    """One repetition, as ``run_once``, in a new process (see the module
    docstring).  The workload and loop are named, not passed: the worker
    imports them itself.  Raises SkipWorkload or CheckFailed as ``run_once``
    would, and CheckFailed for a worker that died or printed no outcome."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", workload.name, loop_name, str(size)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=PACKAGE_ROOT,
                              timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"worker process did not finish in {WORKER_TIMEOUT} s") from None
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        outcome = json.loads(lines[-1])
    except (IndexError, ValueError):
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CheckFailed(f"worker process exited with {proc.returncode} and no outcome"
                          + (f"; last stderr line: {err[-1]}" if err else "")) from None
    if outcome["status"] == SKIPPED:
        raise SkipWorkload(outcome["error"])
    if outcome["status"] != OK:
        raise CheckFailed(outcome["error"].removeprefix("check failed: "))
    return outcome["run"]


def _median_extras(runs):
    """Median of each numeric extra figure over the repetitions."""
    keys = {}
    for r in runs:
        for k, v in r["extra"].items():
            keys.setdefault(k, []).append(v)
    out = {}
    for k, vals in keys.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[k] = statistics.median(vals)
        else:
            out[k] = vals[0] if all(v == vals[0] for v in vals) else vals
    return out


def run_benchmark(workload, factories, reps, size, reasons=None, progress=None, isolate=False):
    """Run one workload ``reps`` times on every loop, interleaved.

    ``factories`` maps loop name -> zero-argument loop factory, or None for
    an unavailable loop (``reasons`` says why).  With ``isolate`` each
    repetition runs in a new process that makes the named loop itself
    (``run_isolated``); the factory then only says the loop is available.
    Returns a dict with the size, unit and, per loop: status, error, raw
    runs, median ops/s and the ratio of that median to the baseline
    (stdlib) loop's.
    """
    reasons = reasons or {}
    results = {}
    unavailable = workload.unavailable()
    for name, factory in factories.items():
        if unavailable:
            results[name] = {"status": SKIPPED, "error": unavailable, "runs": []}
        elif factory is None:
            results[name] = {"status": SKIPPED, "error": reasons.get(name, "not available"), "runs": []}
        else:
            results[name] = {"status": OK, "error": None, "runs": []}

    for rep in range(reps):
        for name, factory in factories.items():
            res = results[name]
            if res["status"] != OK:
                continue
            if isolate:
                out = outcome(run_isolated, workload, name, size)
            else:
                out = outcome(run_once, workload, factory, size, loop_name=name)
            if out["status"] != OK:
                res.update(status=out["status"], error=out["error"], runs=[])
            else:
                run = out["run"]
                run["rep"] = rep + 1
                run["ops_per_s"] = run["ops"] / run["elapsed"]
                res["runs"].append(run)
            if progress:
                progress(workload.name, rep + 1, reps, name, res)

    for name, res in results.items():
        if res["status"] == OK and res["runs"]:
            rates = [r["ops_per_s"] for r in res["runs"]]
            res["median_ops_per_s"] = statistics.median(rates)
            res["median_elapsed"] = statistics.median(r["elapsed"] for r in res["runs"])
            res["min_ops_per_s"] = min(rates)
            res["max_ops_per_s"] = max(rates)
            res["extra"] = _median_extras(res["runs"])
            if res["extra"].get("left_alive", 0) <= LEAK_MIN:
                res["extra"].pop("left_alive", None)  # a first run's caches, not a leak
        else:
            res["median_ops_per_s"] = None
    base = results.get(BASELINE, {}).get("median_ops_per_s")
    for res in results.values():
        m = res["median_ops_per_s"]
        res["ratio_vs_stdlib"] = (m / base) if (m is not None and base) else None

    return {"size": size, "unit": workload.unit, "reps": reps, "loops": results, "skipped": unavailable}


def run_all(bench_names, loop_names, reps, summary=False, scale=1.0, progress=None, workloads=None,
            factories=None, isolate=None):
    """Run the named benchmarks on the named loops; the whole report as a
    dict (ready for JSON).  ``workloads``/``factories`` override the
    registries (tests use them to inject broken loops or workloads), and
    then run in this process: a worker process knows only the registries.
    ``isolate`` (default: unless something is injected) gives each
    repetition a process of its own."""
    if isolate is None:
        isolate = workloads is None and factories is None
    workloads = workloads or WORKLOADS
    if factories is None:
        factories, reasons = resolve_loops(loop_names)
    else:
        factories = {n: factories[n] for n in loop_names}
        reasons = {n: "not available" for n, f in factories.items() if f is None}
    report = {
        "machine": machine_info(),
        "config": {"reps": reps, "summary": summary, "scale": scale, "isolate": isolate, "loops": list(loop_names),
                   "benchmarks": list(bench_names), "baseline": BASELINE},
        "loops": {n: {"available": factories[n] is not None, "reason": reasons.get(n),
                      "version": loop_version(n) if factories[n] is not None else None} for n in loop_names},
        "benchmarks": {},
    }
    for name in bench_names:
        w = workloads[name]
        size = w.size(summary=summary, scale=scale)
        report["benchmarks"][name] = run_benchmark(w, factories, reps, size, reasons, progress, isolate)
    return report


# --------------------------------------------------------------- machine


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info():
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "kernel": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "loadavg_at_start": load,
    }
