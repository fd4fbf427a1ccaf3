"""Profiling driver: one repetition of a suite workload on one loop, nothing else.

Usage: python benchmarks/profiling/workload_once.py WORKLOAD SIZE [LOOP]

For instruction counts: run it under `valgrind --tool=callgrind` at two sizes
and divide the difference by the difference of the sizes (imports and set-up
cancel out).  LOOP defaults to quickloop.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks import runner, workloads  # noqa: E402


def main():
    name, size = sys.argv[1], int(sys.argv[2])
    factory, reason = runner.resolve_loop(sys.argv[3] if len(sys.argv) > 3 else "quickloop")
    if factory is None:
        sys.exit(reason)
    loop = factory()
    try:
        workloads.WORKLOADS[name].func(loop, size)
    finally:
        loop.close()


if __name__ == "__main__":
    main()
