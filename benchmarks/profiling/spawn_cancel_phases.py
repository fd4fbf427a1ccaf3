"""Profiling driver: task_spawn_cancel's phases, timed one by one.

Usage: python benchmarks/profiling/spawn_cancel_phases.py stdlib|uvloop|quickloop [nogc]

100k tasks: create_task (create), one sleep(0) so each runs to its
asyncio.sleep(3600) (start), cancel() on each (cancel), asyncio.gather() over
them (gather()), and awaiting that gather (finish); milliseconds per phase and
the number of full collections.  "nogc" disables the collector, which shows
how much of each phase is the GC's.
"""
import asyncio
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks.runner import resolve_loop  # noqa: E402

N = 100_000


async def sleeper():
    await asyncio.sleep(3600)


async def main(name):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(sleeper()) for _ in range(N)]
    t1 = time.perf_counter()
    await asyncio.sleep(0)
    t2 = time.perf_counter()
    for t in tasks:
        t.cancel()
    t3 = time.perf_counter()
    g = asyncio.gather(*tasks, return_exceptions=True)
    t4 = time.perf_counter()
    await g
    t5 = time.perf_counter()
    ms = lambda a, b: f"{1e3 * (b - a):6.0f}"  # noqa: E731
    print(f"{name:10s} create {ms(t0, t1)} start {ms(t1, t2)} cancel {ms(t2, t3)} gather() {ms(t3, t4)} "
          f"finish {ms(t4, t5)} total {ms(t0, t5)} ms  full collections {gc.get_stats()[2]['collections']}")


if __name__ == "__main__":
    name = sys.argv[1]
    if "nogc" in sys.argv:
        gc.disable()
    factory, reason = resolve_loop(name)
    if factory is None:
        sys.exit(f"{name}: {reason}")
    loop = factory()
    loop.run_until_complete(main(name))
    loop.close()
