"""Profiling driver: the best ratio to the stdlib loop that any loop could
reach on each network workload of a results JSON, from the kernel's share.

Usage: python benchmarks/profiling/net_bounds.py [benchmarks/results.json] [--loop quickloop]
       [--user-share [WORKLOAD=]F ...]

Every loop makes the same system calls per round trip on these workloads
(one recv and one send per message on each side, `strace -c` in RESULTS.md
entry 22), so the kernel time per operation is not the loop's to lower.  A
loop whose own code cost nothing would still spend, per operation, the
kernel time measured under LOOP plus the part of LOOP's user time that is
not the loop's (asyncio's streams, the protocols, the benchmark).  The
bound is the stdlib loop's time per operation over that:

    bound = stdlib us/op / (kernel us/op + (1 - F) * user us/op)

F (--user-share, default 1.0: all of LOOP's user time counted as the loop's,
the loosest bound) is the share of LOOP's user time that is the loop's own;
WORKLOAD=F sets it for one workload (from callgrind: RESULTS.md entry 22).
A bound under a workload's target means no loop meets that target here.
"""
import argparse
import json
import os
import sys


def kernel_us_per_op(extra):
    """Kernel microseconds per op from the suite's kernel_pct and user_us_per_op."""
    kp, user = extra["kernel_pct"], extra["user_us_per_op"]
    return user * kp / (100.0 - kp)


def bounds(results, loop, user_share):
    """Rows for each workload with a kernel share; user_share maps a workload
    name (or None, the default) to F."""
    rows = []
    for name, bench in results["benchmarks"].items():
        loops = bench.get("loops", {})
        std, mine = loops.get("stdlib"), loops.get(loop)
        if not std or not mine or std.get("status") != "ok" or mine.get("status") != "ok":
            continue
        extra = mine.get("extra", {})
        if "kernel_pct" not in extra:
            continue
        std_us = 1e6 / std["median_ops_per_s"]
        mine_us = 1e6 / mine["median_ops_per_s"]
        kernel = kernel_us_per_op(extra)
        share = user_share.get(name, user_share[None])
        floor = kernel + (1.0 - share) * extra["user_us_per_op"]
        rows.append((name, std_us, mine_us, kernel, extra["user_us_per_op"], share,
                     std_us / mine_us, std_us / floor))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("results", nargs="?", default=os.path.join(here, "results.json"))
    ap.add_argument("--loop", default="quickloop")
    ap.add_argument("--user-share", nargs="+", default=[], metavar="[WORKLOAD=]F")
    args = ap.parse_args()
    user_share = {None: 1.0}
    for item in args.user_share:
        name, _, value = item.rpartition("=")
        try:
            share = float(value)
        except ValueError:
            sys.exit(f"--user-share: {item!r} is not [WORKLOAD=]F")
        if not 0.0 <= share <= 1.0:
            sys.exit(f"--user-share: {item!r}: F must be within 0..1")
        user_share[name or None] = share
    with open(args.results) as f:
        results = json.load(f)
    print(f"| workload | stdlib us/op | {args.loop} us/op | of which kernel | user "
          f"| F | measured / stdlib | best any loop could reach |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, std_us, mine_us, kernel, user, share, measured, bound in bounds(
            results, args.loop, user_share):
        print(f"| `{name}` | {std_us:.2f} | {mine_us:.2f} | {kernel:.2f} | {user:.2f} "
              f"| {share:.3g} | {measured:.2f}x | {bound:.2f}x |")


if __name__ == "__main__":
    main()
