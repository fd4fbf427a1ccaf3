"""Cost curves: time per operation as the number of pending timers or tasks
grows (python -m benchmarks --curves).

Timers: with N armed `call_later(3600, f)` timers held,
  - arm_cancel: `loop.call_later(3600, f).cancel()` of one more timer, in
    batches of 500 with one loop iteration (`await sleep(0)`) after each
    batch so a loop that purges cancelled timers lazily gets to do it;
  - fire0: a `call_later(0, f)` firing: a chain of callbacks, each arming
    the next with call_later(0), so each op is one arm plus one loop
    iteration that fires it.  (uvloop turns delays under 0.5 ms into
    call_soon, so its fire0 never touches its timer heap.)
Tasks: with N tasks asleep in `asyncio.sleep(3600)`,
  - create_cancel: create_task of one more sleeper, let it reach its sleep
    (one iteration), cancel it, let it finish (one iteration); in batches of
    500, so each op also arms and disarms one timer among the N;
  - pingpong: two tasks alternating on `await asyncio.sleep(0)`, per switch.

Every point runs on a fresh loop, loops interleaved per repetition (as in
the main suite), median of the repetitions, in ns per op.  Checks: no
background timer fires, every background task and every probe task is
cancelled, chains and switches complete; a loop that fails a check gets no
further points.  Points whose set-up alone takes longer than SETUP_LIMIT
seconds end that loop's curve (bounded time).
"""
import asyncio
import gc
import json
import os
import statistics
import time

from .base import CheckFailed, check, run_checked
from .report import pyplot, style

TIMER_COUNTS = (10, 100, 1_000, 10_000, 100_000, 1_000_000)
TASK_COUNTS = (10, 100, 1_000, 10_000, 100_000)
BATCH = 500
# ops per point: (full, summary)
OPS = {"arm_cancel": (20_000, 5_000), "fire0": (10_000, 2_000), "create_cancel": (5_000, 1_000),
       "pingpong": (20_000, 5_000)}
SETUP_LIMIT = 60.0  # seconds to arm the background timers or tasks of one point

METRICS = {
    "timers": {
        "arm_cancel": "arm + cancel one call_later(3600)",
        "fire0": "call_later(0) armed and fired",
    },
    "tasks": {
        "create_cancel": "create_task + cancel one more sleeper",
        "pingpong": "sleep(0) ping-pong switch",
    },
}


def _batched(ops):
    while ops > 0:
        k = min(BATCH, ops)
        yield k
        ops -= k


def timer_point(loop, pending, ops_arm, ops_fire):
    """{'arm_cancel': s/op, 'fire0': s/op, 'setup': s} with `pending` armed
    call_later(3600) timers held."""
    fired = [0]

    def never():
        fired[0] += 1

    async def body():
        t0 = time.perf_counter()
        held = [loop.call_later(3600, never) for _ in range(pending)]
        await asyncio.sleep(0)
        setup = time.perf_counter() - t0

        probes = []
        t0 = time.perf_counter()
        for k in _batched(ops_arm):
            for _ in range(k):
                h = loop.call_later(3600, never)
                h.cancel()
            probes.append(h)  # the last of each batch, checked below
            await asyncio.sleep(0)
        arm = (time.perf_counter() - t0) / ops_arm

        done = loop.create_future()
        count = [0]

        def tick():
            count[0] += 1
            if count[0] < ops_fire:
                loop.call_later(0, tick)
            else:
                done.set_result(None)

        t0 = time.perf_counter()
        loop.call_later(0, tick)
        await done
        fire = (time.perf_counter() - t0) / ops_fire
        return {"arm_cancel": arm, "fire0": fire, "setup": setup}, held, probes, count[0]

    result, held, probes, ticks = run_checked(loop, body)
    check(ticks == ops_fire, f"{ticks} call_later(0) callbacks ran, expected {ops_fire}")
    check(fired[0] == 0, f"{fired[0]} call_later(3600) timers fired")
    check(all(p.cancelled() for p in probes), "a cancelled probe timer does not report cancelled()")
    check(len(held) == pending and not any(h.cancelled() for h in held), "background timers were lost")
    return result


def task_point(loop, pending, ops_task, ops_ping):
    """{'create_cancel': s/op, 'pingpong': s/op, 'setup': s} with `pending`
    tasks asleep in sleep(3600)."""
    started = [0]

    async def sleeper():
        started[0] += 1
        await asyncio.sleep(3600)
        return "woke"

    async def body():
        t0 = time.perf_counter()
        held = [loop.create_task(sleeper()) for _ in range(pending)]
        await asyncio.sleep(0)
        setup = time.perf_counter() - t0
        asleep = started[0]

        probes = []
        t0 = time.perf_counter()
        for k in _batched(ops_task):
            batch = [loop.create_task(sleeper()) for _ in range(k)]
            await asyncio.sleep(0)  # each reaches its sleep(3600)
            for t in batch:
                t.cancel()
            await asyncio.sleep(0)  # each finishes, cancelled
            if not all(t.done() for t in batch):  # a loop needing more iterations pays for them
                await asyncio.wait(batch)
            probes.append(batch)
        create = (time.perf_counter() - t0) / ops_task

        half = ops_ping // 2
        state = {"last": None, "repeats": 0}

        async def player(me):
            for _ in range(half):
                if state["last"] == me:
                    state["repeats"] += 1
                state["last"] = me
                await asyncio.sleep(0)

        t0 = time.perf_counter()
        await asyncio.gather(player("a"), player("b"))
        ping = (time.perf_counter() - t0) / (2 * half)

        # untimed: the background tasks must still be asleep, then cancel them
        still = sum(1 for t in held if not t.done())
        for t in held:
            t.cancel()
        results = await asyncio.gather(*held, return_exceptions=True)
        return ({"create_cancel": create, "pingpong": ping, "setup": setup},
                asleep, still, results, probes, state["repeats"])

    result, asleep, still, results, probes, repeats = run_checked(loop, body)
    check(asleep == pending, f"{asleep} of {pending} background tasks reached their sleep")
    check(still == pending, f"{pending - still} background tasks finished early")
    check(all(isinstance(r, asyncio.CancelledError) for r in results), "a background task was not cancelled")
    n_probe = sum(len(b) for b in probes)
    check(n_probe == ops_task and all(t.cancelled() for b in probes for t in b), "a probe task was not cancelled")
    check(started[0] == pending + ops_task, f"{started[0]} sleepers started, expected {pending + ops_task}")
    check(repeats == 0, f"the ping-pong tasks failed to alternate {repeats} times")
    return result


def _dispose(loop):
    from .runner import _dispose as dispose

    dispose(loop)


def run_curves(loop_names, reps=3, summary=False, max_count=None, progress=None, factories=None):
    """Both curves on every available loop; the report as a dict."""
    from .runner import machine_info, resolve_loop, loop_version

    col = 1 if summary else 0
    if factories is None:
        factories, reasons = {}, {}
        for name in loop_names:
            factories[name], reasons[name] = resolve_loop(name)
    else:
        reasons = {n: (None if f else "not available") for n, f in factories.items()}
    report = {
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "config": {"reps": reps, "summary": summary, "max_count": max_count, "loops": list(loop_names),
                   "batch": BATCH, "ops": {k: v[col] for k, v in OPS.items()}},
        "loops": {n: {"available": factories[n] is not None, "reason": reasons.get(n),
                      "version": loop_version(n) if factories[n] else None} for n in loop_names},
        "metrics": METRICS,
    }
    specs = [
        ("timers", TIMER_COUNTS, timer_point, (OPS["arm_cancel"][col], OPS["fire0"][col])),
        ("tasks", TASK_COUNTS, task_point, (OPS["create_cancel"][col], OPS["pingpong"][col])),
    ]
    for kind, counts, point, ops in specs:
        if max_count:
            counts = tuple(c for c in counts if c <= max_count)
        keys = list(METRICS[kind])
        out = {"counts": list(counts), "loops": {}}
        for n in loop_names:
            out["loops"][n] = {"status": "ok" if factories[n] else "skipped", "error": reasons.get(n),
                               **{k + "_ns": [None] * len(counts) for k in keys}, "setup_s": [None] * len(counts)}
        for i, count in enumerate(counts):
            samples = {n: {k: [] for k in keys + ["setup"]} for n in loop_names}
            for rep in range(reps):
                for n in loop_names:
                    res = out["loops"][n]
                    if res["status"] != "ok":
                        continue
                    gc.collect()
                    loop = factories[n]()
                    try:
                        r = point(loop, count, *ops)
                    except CheckFailed as e:
                        res.update(status="FAILED", error=f"{kind} at {count:,}: check failed: {e}")
                        continue
                    except Exception as e:  # a broken loop may raise anything
                        res.update(status="FAILED", error=f"{kind} at {count:,}: raised {type(e).__name__}: {e}")
                        continue
                    finally:
                        _dispose(loop)
                    for k, v in r.items():
                        samples[n][k].append(v)
                    if progress:
                        progress(kind, count, rep + 1, reps, n, r)
            for n in loop_names:
                res = out["loops"][n]
                if res["status"] != "ok":
                    continue
                for k in keys:
                    res[k + "_ns"][i] = 1e9 * statistics.median(samples[n][k])
                res["setup_s"][i] = statistics.median(samples[n]["setup"])
                if res["setup_s"][i] > SETUP_LIMIT:
                    res.update(status="stopped", error=f"setting up {count:,} {kind} took "
                                                       f"{res['setup_s'][i]:.0f} s; larger counts not run")
        report[kind] = out
    return report


def format_curves(report):
    lines = []
    for kind in ("timers", "tasks"):
        out = report[kind]
        for key, label in report["metrics"][kind].items():
            lines.append(f"{label}, ns/op, by pending {kind}:")
            head = ["loop"] + [f"{c:,}" for c in out["counts"]]
            rows = [head]
            for n, res in out["loops"].items():
                vals = res[key + "_ns"]
                if res["status"] == "skipped":
                    rows.append([n] + ["skipped"] + [""] * (len(vals) - 1))
                    continue
                rows.append([n] + ["-" if v is None else f"{v:,.0f}" for v in vals])
            widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
            for r in rows:
                lines.append("  " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                              for j, (c, w) in enumerate(zip(r, widths))))
            lines.append("")
    for kind in ("timers", "tasks"):
        for n, res in report[kind]["loops"].items():
            if res["status"] != "ok":
                lines.append(f"{kind} on {n}: {res['status']}: {res['error']}")
    return "\n".join(lines).rstrip()


def write_json(report, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def plot_curves(report, path):
    """Four panels, log x (pending count) and log y (ns/op), one line per
    loop; returns the path, or None (with a message) without matplotlib."""
    plt = pyplot("curves plot")
    if plt is None:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    panels = [(kind, key, label) for kind in ("timers", "tasks") for key, label in report["metrics"][kind].items()]
    for ax, (kind, key, label) in zip(axes.flat, panels):
        out = report[kind]
        for n, res in out["loops"].items():
            pts = [(c, v) for c, v in zip(out["counts"], res[key + "_ns"]) if v is not None]
            if pts:
                ax.plot([c for c, _ in pts], [v for _, v in pts], marker="o", label=n, **style(n))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=11)
        ax.set_xlabel(f"pending {kind} (log)")
        ax.set_ylabel("ns per op (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = report["machine"]
    fig.suptitle(f"quickloop cost curves: time per op vs pending timers / tasks\n"
                 f"{m['cpu']} ({m['cpus']} CPUs), Python {m['python']}, {report['date']}", fontsize=10)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
