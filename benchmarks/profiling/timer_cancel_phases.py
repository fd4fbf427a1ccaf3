"""Profiling driver: 1M timers armed with call_later(60), then all cancelled
in arming order (the body of workloads.timer_cancel), three rounds per loop;
prints the arm and cancel phases in ms.  For perf:

    perf record -e cpu-clock -F 4000 python3.11 timer_cancel_phases.py quickloop

Usage: python timer_cancel_phases.py stdlib|uvloop|quickloop [...]
"""
import asyncio, quickloop, sys, time
N=1_000_000
def never(): pass
async def body(loop):
    t0=time.perf_counter()
    hs=[loop.call_later(60, never) for _ in range(N)]
    t1=time.perf_counter()
    for h in hs: h.cancel()
    t2=time.perf_counter()
    await asyncio.sleep(0)
    return round((t1-t0)*1e3), round((t2-t1)*1e3)
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
import uvloop; mk['uvloop']=uvloop.new_event_loop
for r in range(3):
  for k in sys.argv[1:]:
    loop=mk[k](); print(k, "arm ms, cancel ms", loop.run_until_complete(body(loop))); loop.close()
