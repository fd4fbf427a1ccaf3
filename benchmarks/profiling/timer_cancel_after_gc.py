"""Profiling driver: timer_cancel's work, and the collections it leaves for later.

Usage: python benchmarks/profiling/timer_cancel_after_gc.py [stdlib|uvloop|quickloop] [N]

Arms N call_later(60) timers inside the running loop, cancels them all, then,
after the loop has returned, times gc.collect(0), gc.collect(1) and
gc.collect(2) in turn: the collections a workload's timed part may leave to
whoever allocates next.  RESULTS.md entry 17 compares the sums.
"""
import asyncio
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks.runner import resolve_loop  # noqa: E402


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "quickloop"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    factory, reason = resolve_loop(name)
    if factory is None:
        sys.exit(f"{name}: {reason}")
    loop = factory()

    def never():
        pass

    async def body():
        t0 = time.perf_counter()
        handles = [loop.call_later(60, never) for _ in range(n)]
        t1 = time.perf_counter()
        for h in handles:
            h.cancel()
        t2 = time.perf_counter()
        await asyncio.sleep(0)
        return handles, (t0, t1, t2)

    handles, (t0, t1, t2) = loop.run_until_complete(body())
    t3 = time.perf_counter()
    gc.collect(0)
    t4 = time.perf_counter()
    gc.collect(1)
    t5 = time.perf_counter()
    gc.collect(2)
    t6 = time.perf_counter()
    ms = lambda a, b: f"{1e3 * (b - a):.0f}"  # noqa: E731
    print(f"{name}: arm {ms(t0, t1)} ms, cancel {ms(t1, t2)} ms; afterwards gen0 {ms(t3, t4)} ms, "
          f"gen1 {ms(t4, t5)} ms, gen2 {ms(t5, t6)} ms; all {ms(t0, t6)} ms (with the loop's own "
          f"iteration) for {len(handles):,} timers")
    loop.close()


if __name__ == "__main__":
    main()
