"""The suite's targets for quickloop, checked against a run's medians.

The targets (issue 6, item 3), all on median ratios from one run:
- every workload: quickloop at least 2x the stdlib loop;
- every scheduling, timer and task workload (all but the network ones):
  at least 1.3x uvloop, and at least 2x uvloop on ``timer_cancel`` and
  ``task_spawn_cancel``;
- TCP echo: at least uvloop's throughput (1.0x);
- ``timer_cancel``: peak RSS growth no higher than uvloop's.

A target whose loops did not both produce a median (skipped, FAILED, not
installed) is "not measured", never met.  A workload that could not run at
all in this run (its ``skipped`` reason: a Python version without the API
it measures, a missing tool) has no targets in it; ``not_run`` names it.
"""
from .runner import BASELINE

QUICKLOOP, UVLOOP = "quickloop", "uvloop"
VS_STDLIB = 2.0
VS_UVLOOP_SCHEDULING = 1.3
VS_UVLOOP_CANCELLATION = 2.0
CANCELLATION_WORKLOADS = ("timer_cancel", "task_spawn_cancel")
MET, MISSED, UNMEASURED = "met", "missed", "not measured"


def is_network(name):
    return name.startswith("tcp_echo_") or name == "http_wrk"


def uvloop_floor(name):
    """The least quickloop / uvloop ratio a workload must reach, or None."""
    if name in CANCELLATION_WORKLOADS:
        return VS_UVLOOP_CANCELLATION
    if name.startswith("tcp_echo_"):
        return 1.0
    if is_network(name):
        return None
    return VS_UVLOOP_SCHEDULING


def _median(bench, loop):
    res = bench["loops"].get(loop)
    return res.get("median_ops_per_s") if res else None


def _ratio(bench, num, den):
    a, b = _median(bench, num), _median(bench, den)
    return a / b if (a and b) else None


def _row(workload, what, measured, floor):
    if measured is None:
        status = UNMEASURED
    else:
        status = MET if measured >= floor else MISSED
    return {"workload": workload, "target": what, "measured": measured, "required": floor, "status": status}


def evaluate(report):
    """One row per target that applies to a workload of this run:
    {'workload', 'target', 'measured', 'required', 'status'}."""
    rows = []
    for name, bench in report["benchmarks"].items():
        if bench.get("skipped"):
            continue
        rows.append(_row(name, f"{QUICKLOOP} / {BASELINE}", _ratio(bench, QUICKLOOP, BASELINE), VS_STDLIB))
        floor = uvloop_floor(name)
        if floor is not None:
            rows.append(_row(name, f"{QUICKLOOP} / {UVLOOP}", _ratio(bench, QUICKLOOP, UVLOOP), floor))
    bench = report["benchmarks"].get("timer_cancel")
    if bench:
        rss = {}
        for loop in (QUICKLOOP, UVLOOP):
            res = bench["loops"].get(loop) or {}
            rss[loop] = (res.get("extra") or {}).get("peak_rss_mib") if res.get("median_ops_per_s") else None
        measured = None
        if rss[QUICKLOOP] is not None and rss[UVLOOP]:
            measured = rss[UVLOOP] / max(rss[QUICKLOOP], 1e-9)  # >= 1: quickloop's peak no higher
        row = _row("timer_cancel", f"peak RSS growth: {UVLOOP} / {QUICKLOOP}", measured, 1.0)
        row["detail"] = rss
        rows.append(row)
    return rows


def not_run(report):
    """[(workload, reason)] for the workloads this run could not run at all."""
    return [(name, b["skipped"]) for name, b in report["benchmarks"].items() if b.get("skipped")]


def targets_table(report):
    """Markdown lines: each target, its figure and whether it was met."""
    rows = evaluate(report)
    if not rows:
        return []
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in (MET, MISSED, UNMEASURED)}
    lines = [
        f"{counts[MET]} of {len(rows)} targets met, {counts[MISSED]} missed"
        + (f", {counts[UNMEASURED]} not measured" if counts[UNMEASURED] else "")
        + " in this run (medians; a ratio above 1 is quickloop ahead; the peak-RSS row is uvloop's "
        "peak over quickloop's).",
        "",
        "| workload | target | measured | required | |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        measured = "-" if r["measured"] is None else f"{r['measured']:.2f}x"
        mark = {MET: "met", MISSED: "**missed**", UNMEASURED: "not measured"}[r["status"]]
        lines.append(f"| `{r['workload']}` | {r['target']} | {measured} | {r['required']:.1f}x | {mark} |")
    skipped = not_run(report)
    if skipped:
        lines += ["", "Not run here, so not counted: "
                  + "; ".join(f"`{name}` ({why})" for name, why in skipped) + "."]
    return lines
