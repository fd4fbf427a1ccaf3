"""Profiling driver: one full collection after 100k sleeping tasks were
cancelled and gathered (the tasks still held), milliseconds (median of 7)
and the number of tracked objects.

Usage: python benchmarks/profiling/gc_full_after_cancel.py stdlib|uvloop|quickloop
"""
import asyncio
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks.runner import resolve_loop  # noqa: E402

N = 100_000


async def sleeper():
    await asyncio.sleep(3600)


async def main(name):
    tasks = [asyncio.create_task(sleeper()) for _ in range(N)]
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    gc.collect()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        gc.collect()
        times.append(1e3 * (time.perf_counter() - t0))
    print(f"{name:10s} full collection {statistics.median(times):6.1f} ms "
          f"({min(times):.1f}-{max(times):.1f}), {len(gc.get_objects()):,} tracked objects")


if __name__ == "__main__":
    factory, reason = resolve_loop(sys.argv[1])
    if factory is None:
        sys.exit(f"{sys.argv[1]}: {reason}")
    loop = factory()
    loop.run_until_complete(main(sys.argv[1]))
    loop.close()
