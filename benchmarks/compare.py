"""This run against an earlier one: does it reproduce the table within noise?

``python -m benchmarks --compare benchmarks/results.json`` (``make
bench-compare``) runs the suite as usual, then sets every ratio of this run
beside the same ratio in the earlier run's JSON.

A ratio's noise band is the range of its per-repetition ratios: the loops
run interleaved, so repetition i of a loop is paired with repetition i of
the loop it is compared with, and the band is the least and the greatest of
those pairs.  Two runs agree on a ratio when their bands overlap; a ratio
that moved further than either run's own scatter is reported as a
difference.  A run with one repetition has a band of one point, so only an
equal ratio agrees: use several.

The ratios compared are each loop's to the stdlib loop and quickloop's to
uvloop (the ones the targets are set on).  Workloads or loops only one of
the two runs has are listed, never compared.
"""
import json

from .runner import BASELINE, OK

AGREE, DIFFER = "within noise", "differs"


def load(path):
    with open(path) as f:
        return json.load(f)


def _runs_by_rep(res):
    return {r.get("rep", i + 1): r["ops_per_s"] for i, r in enumerate(res.get("runs") or [])
            if r.get("ops_per_s")}


def ratio_band(bench, num, den):
    """(median ratio, least per-repetition ratio, greatest) of loop num to
    loop den in one benchmark's results, or None if either has no median."""
    a, b = bench["loops"].get(num), bench["loops"].get(den)
    if not a or not b or a.get("status") != OK or b.get("status") != OK:
        return None
    if not a.get("median_ops_per_s") or not b.get("median_ops_per_s"):
        return None
    median = a["median_ops_per_s"] / b["median_ops_per_s"]
    ra, rb = _runs_by_rep(a), _runs_by_rep(b)
    pairs = [ra[k] / rb[k] for k in ra if k in rb]
    if not pairs:
        return median, median, median
    return median, min(pairs), max(pairs)


def _pairs(loops):
    pairs = [(n, BASELINE) for n in loops if n != BASELINE]
    if "quickloop" in loops and "uvloop" in loops:
        pairs.append(("quickloop", "uvloop"))
    return pairs


def compare(report, reference):
    """One row per ratio both runs measured: {'workload', 'ratio', 'then',
    'now', 'change' (now / then - 1), 'then_band', 'now_band', 'status'};
    and the names of what only one of the runs has."""
    rows, only = [], []
    now_loops, then_loops = report["config"]["loops"], reference["config"]["loops"]
    loops = [n for n in now_loops if n in then_loops]
    only += [f"loop {n}: not in the earlier run" for n in now_loops if n not in then_loops]
    only += [f"loop {n}: not in this run" for n in then_loops if n not in now_loops]
    for name, bench in report["benchmarks"].items():
        ref = reference["benchmarks"].get(name)
        if ref is None:
            only.append(f"{name}: not in the earlier run")
            continue
        for num, den in _pairs(loops):
            now, then = ratio_band(bench, num, den), ratio_band(ref, num, den)
            if now is None or then is None:
                if now is not None or then is not None:
                    only.append(f"{name} {num} / {den}: measured in {'this' if now else 'the earlier'} run only")
                continue
            overlap = now[1] <= then[2] and then[1] <= now[2]
            rows.append({"workload": name, "ratio": f"{num} / {den}", "then": then[0], "now": now[0],
                         "change": now[0] / then[0] - 1, "then_band": then[1:], "now_band": now[1:],
                         "status": AGREE if overlap else DIFFER})
    for name in reference["benchmarks"]:
        if name not in report["benchmarks"]:
            only.append(f"{name}: not in this run")
    return rows, only


def _setup_differences(report, reference):
    """What differs between the two runs' set-ups, one phrase each."""
    out = []
    m, r = report.get("machine", {}), reference.get("machine", {})
    for key, label in (("cpu", "CPU"), ("cpus", "CPUs"), ("python", "Python")):
        if m.get(key) != r.get(key):
            out.append(f"{label} {r.get(key)} then, {m.get(key)} now")
    c, rc = report["config"], reference["config"]
    for key in ("summary", "scale", "reps"):
        if c.get(key) != rc.get(key):
            out.append(f"{key} {rc.get(key)} then, {c.get(key)} now")
    return out


def format_compare(report, reference, path):
    rows, only = compare(report, reference)
    agree = sum(1 for r in rows if r["status"] == AGREE)
    lines = ["", f"compared with {path} ({reference.get('date', 'undated')}): "
                 f"{agree} of {len(rows)} ratios within noise"]
    setup = _setup_differences(report, reference)
    if setup:
        lines.append("  set-ups differ: " + "; ".join(setup))
    for r in rows:
        if r["status"] == DIFFER:
            (tl, th), (nl, nh) = r["then_band"], r["now_band"]
            lines.append(f"  differs: {r['workload']} {r['ratio']} {r['then']:.2f}x ({tl:.2f}-{th:.2f}) then, "
                         f"{r['now']:.2f}x ({nl:.2f}-{nh:.2f}) now, {r['change']:+.0%}")
    lines += [f"  {o}" for o in only]
    return lines
