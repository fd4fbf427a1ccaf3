"""Profiling driver: N timers armed with call_later(60), then all cancelled in
arming order (the body of workloads.timer_cancel, GC off).  Each cancel
removes the heap's earliest timer, a sift-down through every level.

Usage, only the heap's push and remove measured, with a simulated 8 MiB
last-level cache:

    valgrind --tool=callgrind --cache-sim=yes --LL=8388608,16,64 \
        --collect-atstart=no --toggle-collect=ql_timer_heap_remove \
        --toggle-collect=ql_timer_heap_push python3.11 timer_heap_n.py 300000
"""
import asyncio, quickloop, sys, gc
N=int(sys.argv[1])
def never(): pass
async def body(loop):
    hs=[loop.call_later(60, never) for _ in range(N)]
    for h in hs: h.cancel()
    await asyncio.sleep(0)
gc.disable()
loop=quickloop.new_event_loop(); loop.run_until_complete(body(loop)); loop.close()
