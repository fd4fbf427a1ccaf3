"""call_soon / call_later / call_at handles cancelled before they fire."""
import asyncio


async def main():
    loop = asyncio.get_running_loop()
    fired = []

    def cb(name, *args):
        fired.append((name,) + args)

    # 1. Cancel timers right after scheduling; keep one as a control.
    t0 = loop.time()
    h_later = loop.call_later(0.02, cb, "later")
    h_at = loop.call_at(t0 + 0.03, cb, "at")
    h_keep = loop.call_at(t0 + 0.04, cb, "keep", 1)
    h_soon = loop.call_soon(cb, "soon")
    print(f"1: cancelled before: {h_later.cancelled()} {h_at.cancelled()} {h_soon.cancelled()}")
    for h in (h_later, h_at, h_soon):
        h.cancel()
    print(f"1: cancelled after: {h_later.cancelled()} {h_at.cancelled()} {h_soon.cancelled()}")
    print(f"1: when() preserved: {h_at.when() == t0 + 0.03}")
    h_later.cancel()  # idempotent
    while not fired:
        await asyncio.sleep(0.005)
    print(f"1: fired={fired} keep.cancelled()={h_keep.cancelled()}")
    h_keep.cancel()  # cancelling after it ran: harmless
    print(f"1: keep.cancelled() after late cancel={h_keep.cancelled()}")

    # 2. A callback cancels a later callback scheduled for the same iteration.
    fired.clear()
    handles = {}

    def canceller():
        fired.append("canceller")
        handles["victim"].cancel()

    loop.call_soon(canceller)
    handles["victim"] = loop.call_soon(cb, "victim")
    loop.call_soon(cb, "after-victim")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    print(f"2: fired={fired}")

    # 3. A timer callback cancels another timer that is already due in the
    #    same iteration (deadlines in the past, distinct and ordered).
    fired.clear()
    now = loop.time()

    def timer_canceller():
        fired.append("timer-canceller")
        handles["t_victim"].cancel()

    loop.call_at(now - 0.3, timer_canceller)
    handles["t_victim"] = loop.call_at(now - 0.2, cb, "t_victim")
    loop.call_at(now - 0.1, cb, "t_after")
    await asyncio.sleep(0.01)
    print(f"3: fired={fired}")

    # 4. Many timers, cancel every other one; the rest fire in deadline order.
    fired.clear()
    base = loop.time()
    hs = [loop.call_at(base + 0.001 * (i + 1), cb, f"t{i}") for i in range(20)]
    for h in hs[::2]:
        h.cancel()
    done = loop.create_future()
    loop.call_at(base + 0.05, done.set_result, None)
    await done
    print(f"4: fired={[f[0] for f in fired]}")

    # 5. Cancel a timer from inside its own callback (no effect on this run).
    fired.clear()
    box = {}

    def self_cancel():
        box["h"].cancel()
        fired.append(("self", box["h"].cancelled()))

    box["h"] = loop.call_later(0, self_cancel)
    await asyncio.sleep(0.01)
    print(f"5: fired={fired}")

    # 6. Cancelled far-future timers must not keep the loop from finishing:
    #    schedule 1000 hour-long timers and cancel them all.
    far = [loop.call_later(3600 + i, cb, "far") for i in range(1000)]
    for h in far:
        h.cancel()
    print(f"6: all cancelled={all(h.cancelled() for h in far)}")

    # 7. Done-callbacks removed before a future is cancelled never run; the
    #    others run on a later iteration, in registration order.
    fired.clear()
    fut = loop.create_future()

    def keep_cb(f):
        fired.append(("keep-cb", f.cancelled()))

    def drop_cb(f):
        fired.append("drop-cb")

    fut.add_done_callback(drop_cb)
    fut.add_done_callback(keep_cb)
    fut.add_done_callback(drop_cb)
    removed = fut.remove_done_callback(drop_cb)
    fut.cancel()
    print(f"7: removed={removed} fired right after cancel={fired}")
    await asyncio.sleep(0)
    print(f"7: fired={fired}")

    # 8. An uncancelled timer scheduled after all others still fires.
    fut = loop.create_future()
    h = loop.call_later(0.01, fut.set_result, "last timer")
    print(f"8: {await fut} cancelled={h.cancelled()}")


if __name__ == "__main__":
    asyncio.run(main())
