"""Outputs drawn from a run: the ratio chart (--chart) and RESULTS.md
(--results).  matplotlib is optional: without it the PNGs are skipped with a
message and everything else still works."""
import json
import os
import sys
import time

from .runner import BASELINE, FAILED, OK, SKIPPED
from .targets import targets_table

MATPLOTLIB_MISSING = "matplotlib not installed (pip install matplotlib, or the bench extra): {what} not drawn"
COLORS = {"stdlib": "#7f7f7f", "uvloop": "#1f77b4", "quickloop": "#d62728", "rloop": "#2ca02c",
          "rsloop": "#9467bd"}
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RESULTS = os.path.join(HERE, "RESULTS.md")
DEFAULT_CURVES_JSON = os.path.join(HERE, "curves.json")
DEFAULT_CURVES_PNG = os.path.join(HERE, "curves.png")
CHART_NAME = "ratios.png"  # next to RESULTS.md when --results is given without --chart

# Extra figures reported per workload: key -> (label, format).
EXTRAS = {
    "mean_lateness_ms": ("mean timer lateness, ms", "{:.2f}"),
    "max_lateness_ms": ("max timer lateness, ms", "{:.2f}"),
    "peak_rss_mib": ("peak RSS growth, MiB", "{:.0f}"),
    "mb_per_s": ("echo throughput, MB/s", "{:,.0f}"),
    "latency_avg_ms": ("wrk mean latency, ms", "{:.2f}"),
    "server_busy_pct": ("server CPU busy, %", "{:.0f}"),
    "kernel_pct": ("CPU time in the kernel, %", "{:.0f}"),
    "user_us_per_op": ("user-space CPU per op, us", "{:.2f}"),
    "left_alive": ("objects left alive per run (a leak, see runner.py)", "{:,.0f}"),
}


def pyplot(what="chart"):
    """matplotlib.pyplot on the Agg backend, or None with a message."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(MATPLOTLIB_MISSING.format(what=what), file=sys.stderr)
        return None
    return plt


def style(name):
    return {"color": COLORS[name]} if name in COLORS else {}


# ------------------------------------------------------------------ chart


def draw_chart(report, path):
    """Horizontal grouped bars: each loop's median ratio to the stdlib loop,
    per workload (log x axis, a line at 1 = stdlib).  Returns the path, or
    None without matplotlib."""
    plt = pyplot("ratio chart")
    if plt is None:
        return None
    loops = [n for n in report["config"]["loops"] if n != BASELINE]
    names = list(report["benchmarks"])
    group = max(1, len(loops))
    bar_h = 0.8 / group
    fig_h = max(3.0, 0.22 * len(names) * group + 1.6)
    fig, ax = plt.subplots(figsize=(10, fig_h))
    ratios = [res.get("ratio_vs_stdlib") for b in report["benchmarks"].values() for res in b["loops"].values()]
    ratios = [r for r in ratios if r]
    lo = min([0.5] + [r / 1.5 for r in ratios])
    hi = max([2.0] + [r * 1.6 for r in ratios])
    for j, loop in enumerate(loops):
        ys, xs = [], []
        for i, name in enumerate(names):
            y = i + (j - (group - 1) / 2) * bar_h
            res = report["benchmarks"][name]["loops"].get(loop, {})
            r = res.get("ratio_vs_stdlib")
            if r:
                ys.append(y)
                xs.append(r)
                ax.text(r * 1.02, y, f"{r:.2f}", va="center", fontsize=6)
            else:
                why = {FAILED: "FAILED", SKIPPED: "skipped"}.get(res.get("status"), "n/a")
                ax.text(lo * 1.05, y, f"{loop}: {why}", va="center", fontsize=6, color="#a00")
        ax.barh(ys, [x - lo for x in xs], left=lo, height=bar_h * 0.9, label=loop, **style(loop))
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"median ops/s relative to the {BASELINE} loop (log scale; 1 = {BASELINE}, right is faster)")
    m, c = report["machine"], report["config"]
    ax.set_title(f"{m['cpu']} ({m['cpus']} CPUs), Python {m['python']}; median of {c['reps']} reps"
                 + ("; summary sizes" if c.get("summary") else ""), fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- RESULTS


def _rate(v):
    return "-" if v is None else f"{v:,.0f}"


def _md_table(rows):
    out = ["| " + " | ".join(rows[0]) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(rows[0]))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows[1:]]
    return out


def _status_cell(res):
    if res["status"] == OK:
        return None
    return "FAILED" if res["status"] == FAILED else "skipped"


def results_table(report):
    """Markdown rows: median ops/s per loop, ratios to stdlib, quickloop/uvloop."""
    loops = report["config"]["loops"]
    others = [n for n in loops if n != BASELINE]
    qv = "quickloop" in loops and "uvloop" in loops
    head = ["benchmark", "unit", "size"] + [f"{n} ops/s" for n in loops]
    if BASELINE in loops:
        head += [f"{n} / {BASELINE}" for n in others]
    if qv:
        head.append("quickloop / uvloop")
    rows = [head]
    for name, b in report["benchmarks"].items():
        row = [f"`{name}`", b["unit"], f"{b['size']:,}"]
        for n in loops:
            res = b["loops"][n]
            row.append(_status_cell(res) or _rate(res["median_ops_per_s"]))
        if BASELINE in loops:
            for n in others:
                res = b["loops"][n]
                r = res.get("ratio_vs_stdlib")
                row.append(_status_cell(res) or ("-" if r is None else f"{r:.2f}x"))
        if qv:
            q, u = b["loops"]["quickloop"].get("median_ops_per_s"), b["loops"]["uvloop"].get("median_ops_per_s")
            row.append(f"**{q / u:.2f}x**" if q and u else "-")
        rows.append(row)
    return _md_table(rows)


def extras_table(report):
    loops = report["config"]["loops"]
    rows = [["benchmark", "metric"] + list(loops)]
    for name, b in report["benchmarks"].items():
        for key, (label, fmt) in EXTRAS.items():
            vals = []
            for n in loops:
                res = b["loops"][n]
                v = res.get("extra", {}).get(key) if res["status"] == OK else None
                vals.append("-" if v is None else fmt.format(v))
            if any(v != "-" for v in vals):
                rows.append([f"`{name}`", label] + vals)
    return _md_table(rows) if len(rows) > 1 else []


def _rel(target, start_file):
    return os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(start_file)))


def _load_curves(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def curves_tables(curves):
    lines = []
    for kind in ("timers", "tasks"):
        out = curves.get(kind)
        if not out:
            continue
        for key, label in curves["metrics"][kind].items():
            rows = [[f"{label} (ns/op) at N pending {kind}", ""] + [f"{c:,}" for c in out["counts"]]]
            for n, res in out["loops"].items():
                if res["status"] == "skipped":
                    continue
                rows.append([n, res["status"] if res["status"] != "ok" else ""]
                            + ["-" if v is None else f"{v:,.0f}" for v in res[key + "_ns"]])
            lines += _md_table(rows) + [""]
    return lines


def render_results(report, results_path, chart_path=None, curves_json=None, curves_png=None):
    """RESULTS.md's text; curves_json / curves_png default to
    benchmarks/curves.json and curves.png (--curves writes them)."""
    curves_json = curves_json or DEFAULT_CURVES_JSON
    curves_png = curves_png or DEFAULT_CURVES_PNG
    m, c = report["machine"], report["config"]
    date = report.get("date") or time.strftime("%Y-%m-%d %H:%M:%S %z")
    loops_line = []
    for n, info in report["loops"].items():
        if info["available"]:
            loops_line.append(f"{n} {info.get('version') or ''}".rstrip())
        else:
            loops_line.append(f"{n} (skipped: {info['reason']})")
    load = m.get("loadavg_at_start")
    lines = [
        "# quickloop benchmark results",
        "",
        f"Written by `python -m benchmarks --results` on {date}; re-run it to update this file "
        "(it is rewritten, not edited).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cpus']} logical CPUs ({m.get('usable_cpus', m['cpus'])} usable by the run)",
        f"- Python: {m['implementation']} {m['python']}",
        f"- Kernel: {m.get('kernel', m['platform'])} ({m['platform']})",
    ]
    if load:
        lines.append(f"- Load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
                     "(1 / 5 / 15 min)")
    lines += [
        f"- Loops: {', '.join(loops_line)}",
        "",
        "## Command",
        "",
        "```",
        report.get("command", "python -m benchmarks"),
        "```",
        "",
        f"Median of {c['reps']} repetitions per loop, the loops interleaved within each repetition, a fresh "
        + ("process and loop per repetition" if c.get("isolate") else "loop per repetition, all in one process")
        + f"; ratio = the loop's median ops/s / the {BASELINE} loop's (above 1 is faster). "
        + ("Summary sizes. " if c.get("summary") else "")
        + (f"Sizes scaled by {c['scale']:g}. " if c.get("scale", 1) != 1 else "")
        + (f"Wall time {report['wall_seconds']:.0f} s." if "wall_seconds" in report else ""),
        "",
        "## Results",
        "",
    ]
    lines += results_table(report)
    extras = extras_table(report)
    if extras:
        lines += ["", "## Extra metrics", "", "Medians over the repetitions.", ""] + extras
    if "quickloop" in report["config"]["loops"]:
        lines += ["", "## Targets", ""] + targets_table(report)
    problems = []
    for n, info in report["loops"].items():
        if not info["available"]:
            problems.append(f"- {n}: skipped: {info['reason']}")
    for name, b in report["benchmarks"].items():
        if b.get("skipped"):
            problems.append(f"- `{name}`: skipped: {b['skipped']}")
            continue
        for n, res in b["loops"].items():
            if res["status"] == FAILED:
                problems.append(f"- `{name}` on {n}: FAILED: {res['error']}")
            elif res["status"] == SKIPPED and report["loops"].get(n, {}).get("available"):
                problems.append(f"- `{name}` on {n}: skipped: {res['error']}")
    if problems:
        lines += ["", "## Failures and skips", ""] + problems
    lines += ["", "## Charts", ""]
    if chart_path and os.path.exists(chart_path):
        lines += [f"Median ratio to the {BASELINE} loop per workload (log scale):", "",
                  f"![ratio to stdlib per workload]({_rel(chart_path, results_path)})", ""]
    else:
        lines += ["Ratio chart: not drawn (needs matplotlib; `--chart PATH`).", ""]
    curves = _load_curves(curves_json)
    if os.path.exists(curves_png):
        lines += ["Cost curves (`python -m benchmarks --curves`): time per operation as pending timers and "
                  "tasks grow (log x and y)" + (f", run {curves['date']}" if curves else "") + ":", "",
                  f"![cost curves]({_rel(curves_png, results_path)})", ""]
    else:
        lines += ["Cost curves: not drawn yet (`python -m benchmarks --curves`; needs matplotlib).", ""]
    if curves:
        cm = curves["machine"]
        lines += [f"Cost curve figures (from `{_rel(curves_json, results_path)}`, {curves['date']}, "
                  f"{cm['cpu']}, Python {cm['python']}, median of {curves['config']['reps']} reps; "
                  f"command: `{curves.get('command', 'python -m benchmarks --curves')}`):", ""]
        lines += curves_tables(curves)
    return "\n".join(lines).rstrip() + "\n"


# RESULTS.md from this line on is the hand-kept profiling log: --results
# rewrites what is above it and keeps the rest.
KEEP_MARKER = "<!-- profiling log: kept by --results -->"


def write_results(report, path=None, chart_path=None, curves_json=None, curves_png=None):
    path = path or DEFAULT_RESULTS
    text = render_results(report, path, chart_path, curves_json, curves_png)
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if KEEP_MARKER in old:
        text += "\n" + old[old.index(KEEP_MARKER):]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
