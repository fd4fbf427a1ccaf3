"""Command line: python -m benchmarks [options]

    --loops stdlib,uvloop,quickloop   loops to compare (unavailable ones are skipped)
    --bench NAME,...                  benchmarks to run (default: all; --list shows them)
    --reps N                          repetitions per loop (default 5, --summary 3)
    --summary                         smaller sizes, one-screen table (< ~1 min)
    --scale F                         multiply every size by F (e.g. 0.01 for a smoke run)
    --json PATH                       write raw timings, medians and ratios as JSON

Exit status: 0 if every available loop passed every benchmark's checks,
1 if any loop FAILED one, 2 for usage errors.
"""
import argparse
import json
import os
import shlex
import sys
import time

from .runner import BASELINE, FAILED, KNOWN_LOOPS, OK, SKIPPED, run_all
from .workloads import WORKLOADS

# Workload extras worth a line under the table: key -> (label, format).
NOTES = {
    "mean_lateness_ms": ("mean timer lateness, ms", "{:.1f}"),
    "peak_rss_mib": ("peak RSS growth, MiB", "{:.0f}"),
}


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="quickloop benchmark suite")
    p.add_argument("--loops", default=",".join(KNOWN_LOOPS),
                   help="comma-separated loops (default: %(default)s)")
    p.add_argument("--bench", default=None, help="comma-separated benchmarks (default: all)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per loop (default 5; 3 with --summary)")
    p.add_argument("--summary", action="store_true", help="smaller sizes and a one-screen table")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size by this factor")
    p.add_argument("--json", metavar="PATH", help="write raw timings and medians to PATH")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)

    args.loops = _csv(args.loops)
    bad = [n for n in args.loops if n not in KNOWN_LOOPS]
    if bad or not args.loops:
        p.error(f"unknown loop(s) {', '.join(bad) or '(none given)'}; known: {', '.join(KNOWN_LOOPS)}")
    args.bench = _csv(args.bench) if args.bench else list(WORKLOADS)
    bad = [n for n in args.bench if n not in WORKLOADS]
    if bad or not args.bench:
        p.error(f"unknown benchmark(s) {', '.join(bad) or '(none given)'}; known: {', '.join(WORKLOADS)}")
    if args.reps is None:
        args.reps = 3 if args.summary else 5
    if args.reps < 1:
        p.error("--reps must be at least 1")
    if args.scale <= 0:
        p.error("--scale must be positive")
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
    header = ["benchmark", "unit"] + ([base_hdr] if base_hdr else []) + [f"{n} x" for n in others]
    rows = [header]
    for name, b in report["benchmarks"].items():
        row = [name, b["unit"]]
        if base_hdr:
            base = b["loops"][BASELINE]
            row.append(_rate(base["median_ops_per_s"]) if base["status"] == OK else base["status"])
        row += [_cell(b["loops"][n]) for n in others]
        rows.append(row)
    lines = _table(rows)
    lines += _notes(report)
    lines += _problems(report)
    lines += _footer(report)
    return "\n".join(lines)


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
        for n, res in b["loops"].items():
            if res["status"] == FAILED:
                lines.append(f"{name} on {n}: FAILED: {res['error']}")
    return ([""] + lines) if lines else []


def _footer(report):
    m, c = report["machine"], report["config"]
    return [
        "",
        f"machine: {m['cpu']} ({m['cpus']} CPUs), {m['implementation']} {m['python']}, {m['platform']}",
        f"median of {c['reps']} interleaved reps per loop; ratio = loop median ops/s / stdlib median ops/s"
        + ("; summary sizes" if c["summary"] else "")
        + (f"; sizes x{c['scale']:g}" if c["scale"] != 1 else ""),
        f"command: {report['command']}",
    ]


# --------------------------------------------------------------------- main


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.list:
        print("benchmark          full size / summary  unit       what")
        for name, w in WORKLOADS.items():
            print(f"{name:18} {w.full:>9,} / {w.summary:>7,} {w.unit:9}  {w.title}")
        return 0

    def progress(bench, rep, reps, loop, res):
        if args.quiet:
            return
        if res["status"] == OK:
            what = f"{res['runs'][-1]['ops_per_s']:,.0f} ops/s"
        else:
            what = f"{res['status']}: {res['error']}"
        print(f"  {bench} rep {rep}/{reps} {loop}: {what}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    report = run_all(args.bench, args.loops, args.reps, summary=args.summary, scale=args.scale, progress=progress)
    report["command"] = command_line(argv)
    report["wall_seconds"] = time.perf_counter() - t0

    print(format_summary(report) if args.summary else format_full(report))
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, args.json)
    failed = any(res["status"] == FAILED for b in report["benchmarks"].values() for res in b["loops"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
