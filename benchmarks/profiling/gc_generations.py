"""Profiling driver: how much of one workload's time the cyclic GC takes, by generation.

Usage: python benchmarks/profiling/gc_generations.py LOOP WORKLOAD [SIZE]

One repetition of the suite's WORKLOAD on a fresh LOOP in this process (run
it once per loop, so that each has a process of its own, as the suite does),
with gc.callbacks timing every collection the collector starts by itself
(the workload's own gc.collect() calls, outside its timed part, are left
out).  Prints the workload's time and, per generation, the number of
collections and the milliseconds they took.
"""
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks import runner, workloads  # noqa: E402


def main():
    loop_name, name = sys.argv[1], sys.argv[2]
    workload = workloads.WORKLOADS[name]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else workload.full
    factory, reason = runner.resolve_loop(loop_name)
    if factory is None:
        sys.exit(f"{loop_name}: {reason}")
    spent = {g: [0, 0.0] for g in range(3)}
    started = [0.0]

    explicit = [False]
    real_collect = gc.collect

    def collect(*args, **kwargs):
        explicit[0] = True
        try:
            return real_collect(*args, **kwargs)
        finally:
            explicit[0] = False

    def timer(phase, info):
        if explicit[0]:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            s = spent[info["generation"]]
            s[0] += 1
            s[1] += time.perf_counter() - started[0]

    loop = factory()
    gc.collect()
    gc.callbacks.append(timer)
    gc.collect = collect
    try:
        ops, elapsed = workload.func(loop, size)
    finally:
        gc.collect = real_collect
        gc.callbacks.remove(timer)
        loop.close()
    in_gc = sum(s[1] for s in spent.values())
    print(f"{loop_name:10s} {name} n={size}: {elapsed * 1e3:.0f} ms, of which GC {in_gc * 1e3:.0f} ms "
          f"({100 * in_gc / elapsed:.0f}%): "
          + ", ".join(f"gen{g} {c}x {t * 1e3:.0f} ms" for g, (c, t) in spent.items())
          + f"; without GC {(elapsed - in_gc) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
