"""Profiling driver: the objects the collector tracks before each repetition,
when every loop runs a workload in one process as the benchmark runner does
(two repetitions, stdlib, uvloop, quickloop, rloop interleaved).  A loop that
leaks shows as growth after its run.

Usage: python leak_check.py timer_cancel:200000 task_spawn_cancel:100000
"""
import sys, gc, asyncio, time
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..'))
import quickloop, uvloop, rloop
from benchmarks import workloads, runner
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop, 'uvloop': uvloop.new_event_loop, 'rloop': rloop.new_event_loop}
for wl in sys.argv[1:]:
  size = int(wl.split(':')[1]); wl = wl.split(':')[0]
  for rep in range(2):
    for name in ('stdlib','uvloop','quickloop','rloop'):
        gc.collect()
        n0 = len(gc.get_objects())
        r = runner.run_once(workloads.WORKLOADS[wl], mk[name], size)
        print(wl, name, rep, "objects before", n0, "ops/s", round(r['ops']/r['elapsed']))
