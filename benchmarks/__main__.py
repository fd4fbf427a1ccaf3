"""Command line: python -m benchmarks [options]

    --loops stdlib,uvloop,quickloop   loops to compare (unavailable ones are skipped; default: those
                                      three plus rloop / rsloop when importable)
    --bench NAME,...                  benchmarks to run (default: all; --list shows them)
    --reps N                          repetitions per loop (default 5; 3 with --summary or --curves)
    --summary                         smaller sizes, one-screen table
    --scale F                         multiply every size by F (e.g. 0.01 for a smoke run)
    --json PATH                       write raw timings, medians and ratios as JSON
    --chart PATH                      draw each loop's ratio to stdlib per benchmark as a PNG (matplotlib)
    --results [PATH]                  rewrite benchmarks/RESULTS.md (or PATH) from this run, with the
                                      chart (benchmarks/ratios.png unless --chart says otherwise)
    --curves                          instead of the benchmarks: cost curves (time per op vs pending
                                      timers / tasks), to benchmarks/curves.json (or --json PATH) and
                                      benchmarks/curves.png (or --chart PATH); --summary: fewer ops
                                      per point
    --in-process                      run every repetition in this process (default: a new process
                                      per repetition, so no loop's leaks or heap reach another's)
    --curves-max N                    only counts up to N pending timers / tasks (quick runs)
    --compare PATH                    after the run, set each ratio beside the same ratio in an earlier
                                      run's JSON (e.g. benchmarks/results.json) and list those that moved
                                      beyond both runs' noise (benchmarks/compare.py)

Exit status: 0 if every available loop passed every benchmark's checks,
1 if any loop FAILED one, 2 for usage errors.
"""
import argparse
import json
import os
import shlex
import sys
import time

from . import compare as compare_mod
from . import report as report_mod
from . import targets
from .report import DEFAULT_RESULTS
from .runner import BASELINE, FAILED, KNOWN_LOOPS, OK, SKIPPED, default_loops, run_all
from .workloads import WORKLOADS

# Workload extras worth a line under the table: key -> (label, format).
NOTES = {
    "mean_lateness_ms": ("mean timer lateness, ms", "{:.1f}"),
    "peak_rss_mib": ("peak RSS growth, MiB", "{:.0f}"),
    "mb_per_s": ("MB/s", "{:,.0f}"),
    "left_alive": ("objects left alive per run (a leak; each run has a process of its own unless --in-process)",
                   "{:,.0f}"),
}


SUMMARY_WORKLOADS = (
    "call_soon", "call_later", "timer_cancel", "task_spawn_cancel", "sleep0_pingpong",
    "async_tree", "wait_for_fast", "timeout_fast", "shield", "taskgroup_fail",
    "tcp_echo_streams_10k",
)


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="quickloop benchmark suite")
    p.add_argument("--loops", default=None,
                   help=f"comma-separated loops out of {','.join(KNOWN_LOOPS)} (default: stdlib,uvloop,quickloop "
                        "and any of rloop, rsloop that is importable)")
    p.add_argument("--bench", default=None,
                   help="comma-separated benchmarks (default: all; with --summary a subset)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per loop (default 5; 3 with --summary or --curves)")
    p.add_argument("--summary", action="store_true", help="smaller sizes and a one-screen table")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size by this factor")
    p.add_argument("--json", metavar="PATH", help="write raw timings and medians to PATH")
    p.add_argument("--chart", metavar="PATH", help="draw the ratio-to-stdlib chart as a PNG (needs matplotlib)")
    p.add_argument("--results", metavar="PATH", nargs="?", const=DEFAULT_RESULTS, default=None,
                   help="rewrite RESULTS.md from this run (default path: %(const)s)")
    p.add_argument("--curves", action="store_true",
                   help="run the cost curves (time per op vs pending timers / tasks) instead of the benchmarks")
    p.add_argument("--curves-max", metavar="N", type=int, default=None,
                   help="with --curves: only pending counts up to N")
    p.add_argument("--in-process", action="store_true",
                   help="run every repetition in this process instead of a new process each (profiling)")
    p.add_argument("--compare", metavar="PATH", default=None,
                   help="compare this run's ratios with an earlier run's JSON (e.g. benchmarks/results.json)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)

    args.loops = _csv(args.loops) if args.loops is not None else default_loops()
    bad = [n for n in args.loops if n not in KNOWN_LOOPS]
    if bad or not args.loops:
        p.error(f"unknown loop(s) {', '.join(bad) or '(none given)'}; known: {', '.join(KNOWN_LOOPS)}")
    if args.bench:
        args.bench = _csv(args.bench)
    elif args.summary:
        # make run's one-screen summary: one workload per family, about a minute.
        args.bench = list(SUMMARY_WORKLOADS)
    else:
        args.bench = list(WORKLOADS)
    bad = [n for n in args.bench if n not in WORKLOADS]
    if bad or not args.bench:
        p.error(f"unknown benchmark(s) {', '.join(bad) or '(none given)'}; known: {', '.join(WORKLOADS)}")
    if args.reps is None:
        args.reps = 3 if (args.summary or args.curves) else 5
    if args.reps < 1:
        p.error("--reps must be at least 1")
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.curves and args.results:
        p.error("--results describes a benchmark run; run --curves separately (RESULTS.md picks up curves.json)")
    if args.curves_max is not None and args.curves_max < 1:
        p.error("--curves-max must be at least 1")
    if args.compare:
        if args.curves:
            p.error("--compare compares benchmark runs, not --curves")
        try:
            args.reference = compare_mod.load(args.compare)
        except (OSError, ValueError) as e:
            p.error(f"--compare {args.compare}: cannot read it: {e}")
        if not isinstance(args.reference, dict) or "benchmarks" not in args.reference:
            p.error(f"--compare {args.compare}: not a benchmark run's JSON (no 'benchmarks')")
    return args


def command_line(argv):
    env = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    exe = os.path.basename(sys.executable) or "python"
    return env + shlex.join([exe, "-m", "benchmarks", *argv])


# --------------------------------------------------------------- formatting


def _rate(v):
    return "-" if v is None else f"{v:,.0f}"


def _cell(res):
    """A loop's cell in the summary table: ratio to stdlib, or its status."""
    if res["status"] == SKIPPED:
        return "skipped"
    if res["status"] == FAILED:
        return "FAILED"
    r = res.get("ratio_vs_stdlib")
    return "-" if r is None else f"{r:.2f}x"


def _vs(a, b):
    x, y = a.get("median_ops_per_s"), b.get("median_ops_per_s")
    return f"{x / y:.2f}x" if x and y else "-"


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def format_summary(report):
    loops = report["config"]["loops"]
    others = [n for n in loops if n != BASELINE]
    base_hdr = f"{BASELINE} ops/s" if BASELINE in loops else None
    qv = "quickloop" in loops and "uvloop" in loops
    header = (["benchmark", "unit"] + ([base_hdr] if base_hdr else []) + [f"{n} x" for n in others]
              + (["quickloop/uvloop"] if qv else []))
    rows = [header]
    for name, b in report["benchmarks"].items():
        row = [name, b["unit"]]
        if base_hdr:
            base = b["loops"][BASELINE]
            row.append(_rate(base["median_ops_per_s"]) if base["status"] == OK else base["status"])
        row += [_cell(b["loops"][n]) for n in others]
        if qv:
            row.append(_vs(b["loops"]["quickloop"], b["loops"]["uvloop"]))
        rows.append(row)
    lines = _table(rows)
    lines += _notes(report)
    lines += _targets(report)
    lines += _problems(report)
    lines += _footer(report)
    return "\n".join(lines)


def _targets(report):
    """One line on quickloop's targets (benchmarks/targets.py), one per miss."""
    if "quickloop" not in report["config"]["loops"]:
        return []
    rows = targets.evaluate(report)
    met = sum(1 for r in rows if r["status"] == targets.MET)
    c = report["config"]
    sizes = "" if not c.get("summary") and c.get("scale", 1) == 1 else \
        " (at this run's smaller sizes: the targets are set for the full sizes, `make bench`)"
    lines = ["", f"targets: {met} of {len(rows)} met{sizes}"]
    for r in rows:
        if r["status"] != targets.MET:
            got = "not measured" if r["measured"] is None else f"{r['measured']:.2f}x"
            lines.append(f"  {r['status']}: {r['workload']} {r['target']} {got}, needs {r['required']:.1f}x")
    for name, _why in targets.not_run(report):
        lines.append(f"  not run here, not counted: {name}")
    return lines


def format_full(report):
    loops = report["config"]["loops"]
    rows = [["benchmark", "loop", "size", "median ops/s", "min ops/s", "max ops/s", "vs stdlib"]]
    for name, b in report["benchmarks"].items():
        for i, n in enumerate(loops):
            res = b["loops"][n]
            label = name if i == 0 else ""
            if res["status"] == OK:
                rows.append([label, n, f"{b['size']:,}", _rate(res["median_ops_per_s"]),
                             _rate(res["min_ops_per_s"]), _rate(res["max_ops_per_s"]), _cell(res)])
            else:
                rows.append([label, n, f"{b['size']:,}", res["status"], "", "", ""])
    lines = _table(rows)
    lines += _notes(report)
    lines += _targets(report)
    lines += _problems(report)
    lines += _footer(report)
    return "\n".join(lines)


def _notes(report):
    loops = report["config"]["loops"]
    lines = []
    for name, b in report["benchmarks"].items():
        for key, (label, fmt) in NOTES.items():
            vals = []
            for n in loops:
                res = b["loops"][n]
                v = res.get("extra", {}).get(key) if res["status"] == OK else None
                if v is not None:
                    vals.append(f"{n} {fmt.format(v)}")
            if vals:
                lines.append(f"{name} {label} (median): " + ", ".join(vals))
    return ([""] + lines) if lines else []


def _problems(report):
    lines = []
    for n, info in report["loops"].items():
        if not info["available"]:
            lines.append(f"{n}: skipped: {info['reason']}")
    for name, b in report["benchmarks"].items():
        if b.get("skipped"):
            lines.append(f"{name}: skipped: {b['skipped']}")
            continue
        for n, res in b["loops"].items():
            if res["status"] == FAILED:
                lines.append(f"{name} on {n}: FAILED: {res['error']}")
            elif res["status"] == SKIPPED and report["loops"].get(n, {}).get("available"):
                lines.append(f"{name} on {n}: skipped: {res['error']}")
    return ([""] + lines) if lines else []


def _footer(report):
    m, c = report["machine"], report["config"]
    return [
        "",
        f"machine: {m['cpu']} ({m['cpus']} CPUs), {m['implementation']} {m['python']}, {m['platform']}"
        + (f", load {m['loadavg_at_start'][0]:.2f} at start" if m.get("loadavg_at_start") else ""),
        f"median of {c['reps']} interleaved reps per loop; ratio = loop median ops/s / stdlib median ops/s"
        + ("; summary sizes" if c["summary"] else "")
        + (f"; sizes x{c['scale']:g}" if c["scale"] != 1 else ""),
        f"command: {report['command']}",
    ]


# --------------------------------------------------------------------- main


def _write_json(obj, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def list_workloads():
    w_name = max(len(n) for n in WORKLOADS)
    w_unit = max(len(w.unit) for w in WORKLOADS.values())
    lines = [f"{'benchmark':{w_name}}  {'full size':>9} / {'summary':>7}  {'unit':{w_unit}}  what"]
    for name, w in WORKLOADS.items():
        why = w.unavailable()
        lines.append(f"{name:{w_name}}  {w.full:>9,} / {w.summary:>7,}  {w.unit:{w_unit}}  {w.title}"
                     + (f"  [skipped here: {why}]" if why else ""))
    return "\n".join(lines)


def main_curves(args, argv):
    from . import curves

    def progress(kind, count, rep, reps, loop, r):
        if args.quiet:
            return
        what = ", ".join(f"{k} {v * 1e9:,.0f} ns" for k, v in r.items() if k != "setup")
        print(f"  {kind} {count:,} rep {rep}/{reps} {loop}: {what} (set-up {r['setup']:.2f} s)",
              file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    report = curves.run_curves(args.loops, reps=args.reps, summary=args.summary, max_count=args.curves_max,
                               progress=progress)
    report["command"] = command_line(argv)
    report["wall_seconds"] = time.perf_counter() - t0
    print(curves.format_curves(report))
    json_path = args.json or report_mod.DEFAULT_CURVES_JSON
    curves.write_json(report, json_path)
    print(f"\ncurves written to {json_path}")
    png = curves.plot_curves(report, args.chart or report_mod.DEFAULT_CURVES_PNG)
    if png:
        print(f"curves plotted to {png}")
    failed = any(res["status"] == "FAILED" for k in ("timers", "tasks") for res in report[k]["loops"].values())
    return 1 if failed else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.list:
        print(list_workloads())
        return 0
    if args.curves:
        return main_curves(args, argv)

    def progress(bench, rep, reps, loop, res):
        if args.quiet:
            return
        if res["status"] == OK:
            what = f"{res['runs'][-1]['ops_per_s']:,.0f} ops/s"
        else:
            what = f"{res['status']}: {res['error']}"
        print(f"  {bench} rep {rep}/{reps} {loop}: {what}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    date = time.strftime("%Y-%m-%d %H:%M:%S %z")
    report = run_all(args.bench, args.loops, args.reps, summary=args.summary, scale=args.scale, progress=progress,
                     isolate=not args.in_process)
    report["command"] = command_line(argv)
    report["date"] = date
    report["wall_seconds"] = time.perf_counter() - t0

    print(format_summary(report) if args.summary else format_full(report))
    if args.compare:
        print("\n".join(compare_mod.format_compare(report, args.reference, args.compare)))
    if args.json:
        _write_json(report, args.json)
    chart = args.chart
    if chart is None and args.results:
        chart = os.path.join(os.path.dirname(os.path.abspath(args.results)), report_mod.CHART_NAME)
    drawn = report_mod.draw_chart(report, chart) if chart else None
    if drawn:
        print(f"chart drawn to {drawn}")
    if args.results:
        path = report_mod.write_results(report, args.results, chart_path=drawn)
        print(f"results written to {path}")
    failed = any(res["status"] == FAILED for b in report["benchmarks"].values() for res in b["loops"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
