"""One repetition of one workload on one loop, in a process of its own.

    python -m benchmarks.worker WORKLOAD LOOP SIZE

prints one JSON line on stdout: ``{"status": "ok", "run": {...}}`` with the
run as ``runner.run_once`` returns it, or ``{"status": "skipped" | "FAILED",
"error": "..."}``.  The runner starts one of these per repetition and loop
(``runner.run_isolated``), so no loop's heap, leaks or collector state
reaches another loop's measurement: rloop 0.5.0 leaks every cancelled timer,
and in a shared process that made every later loop's full collections
fewer and costlier (RESULTS.md, profiling log entry 15).
"""
import json
import os
import sys

from .runner import FAILED, OK, SKIPPED, outcome, resolve_loop, run_once
from .workloads import WORKLOADS


def run(workload_name, loop_name, size):
    """The JSON-ready outcome of one repetition."""
    workload = WORKLOADS.get(workload_name)
    if workload is None:
        return {"status": FAILED, "error": f"unknown workload {workload_name!r}"}
    factory, reason = resolve_loop(loop_name)
    if factory is None:
        return {"status": SKIPPED, "error": reason}
    out = outcome(run_once, workload, factory, size, loop_name=loop_name)
    if out["status"] == OK:
        out["run"]["pid"] = os.getpid()
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, loop_name, size = argv
    outcome = run(name, loop_name, int(size))
    # The workloads print nothing on stdout; the last line is the outcome.
    sys.stdout.write("\n" + json.dumps(outcome) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
