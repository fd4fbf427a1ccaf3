"""Cancelling tasks blocked on Lock / Semaphore / Queue / Event / Condition / Barrier.

After each cancellation the primitive must still work and must not have been
consumed by the cancelled waiter.
"""
import asyncio


async def blocked(name, awaitable_factory, log):
    try:
        result = await awaitable_factory()
        log.append(f"{name}: got {result!r}")
        return result
    except asyncio.CancelledError:
        log.append(f"{name}: cancelled")
        raise


async def settle(n=3):
    for _ in range(n):
        await asyncio.sleep(0)


async def cancel_and_wait(task):
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    return f"not cancelled: {task.result()!r}"


async def lock_case():
    log = []
    lock = asyncio.Lock()
    await lock.acquire()
    w1 = asyncio.create_task(blocked("w1", lock.acquire, log))
    w2 = asyncio.create_task(blocked("w2", lock.acquire, log))
    await settle()
    print(f"lock: w1 -> {await cancel_and_wait(w1)}")
    lock.release()  # must go to w2, not be lost on the cancelled w1
    await settle()
    print(f"lock: locked={lock.locked()} log={log}")
    lock.release()  # w2's hold

    # Cancel a waiter in the same iteration the lock is handed to it.
    await lock.acquire()
    w3 = asyncio.create_task(blocked("w3", lock.acquire, log))
    w4 = asyncio.create_task(blocked("w4", lock.acquire, log))
    await settle()
    lock.release()  # wakes w3 ...
    w3.cancel()     # ... which is cancelled before it runs: w4 must get the lock
    await settle()
    print(f"lock race: w3 cancelled={w3.cancelled()} w4 done={w4.done()} "
          f"locked={lock.locked()} log={log[-2:]}")
    lock.release()
    print(f"lock: final locked={lock.locked()}")


async def semaphore_case():
    log = []
    sem = asyncio.Semaphore(1)
    await sem.acquire()
    w1 = asyncio.create_task(blocked("s1", sem.acquire, log))
    w2 = asyncio.create_task(blocked("s2", sem.acquire, log))
    await settle()
    sem.release()
    w1.cancel()
    await settle()
    print(f"semaphore: s1 cancelled={w1.cancelled()} s2 done={w2.done()} "
          f"locked={sem.locked()} log={log}")
    sem.release()
    print(f"semaphore: final locked={sem.locked()}")


async def queue_case():
    log = []
    q = asyncio.Queue(maxsize=1)
    g1 = asyncio.create_task(blocked("get1", q.get, log))
    g2 = asyncio.create_task(blocked("get2", q.get, log))
    await settle()
    print(f"queue: get1 -> {await cancel_and_wait(g1)}")
    await q.put("item-1")
    await settle()
    print(f"queue: after put log={log} qsize={q.qsize()}")

    # Cancel a getter after the item was handed to it (put wakes it, cancel
    # arrives before it runs): the item must stay in the queue.
    g3 = asyncio.create_task(blocked("get3", q.get, log))
    await settle()
    q.put_nowait("item-2")
    g3.cancel()
    await settle()
    print(f"queue: get3 cancelled={g3.cancelled()} qsize={q.qsize()} "
          f"next={q.get_nowait()!r}")

    # A blocked putter on a full queue.
    q.put_nowait("fill")
    p1 = asyncio.create_task(blocked("put1", lambda: q.put("never"), log))
    await settle()
    print(f"queue: put1 -> {await cancel_and_wait(p1)} qsize={q.qsize()} "
          f"items={[q.get_nowait() for _ in range(q.qsize())]}")

    # join() cancelled while items are unfinished.
    q.put_nowait("job")
    q.get_nowait()
    j = asyncio.create_task(blocked("join", q.join, log))
    await settle()
    print(f"queue: join -> {await cancel_and_wait(j)}")
    marked = 0
    while True:
        try:
            q.task_done()
        except ValueError:
            break
        marked += 1
    await q.join()
    print(f"queue: join ok after {marked} task_done() calls")


async def event_case():
    log = []
    ev = asyncio.Event()
    waiters = [asyncio.create_task(blocked(f"e{i}", ev.wait, log)) for i in range(3)]
    await settle()
    print(f"event: e1 -> {await cancel_and_wait(waiters[1])}")
    ev.set()
    waiters[2].cancel()  # cancelled after set(), before it ran
    await settle()
    states = ["cancelled" if w.cancelled() else repr(w.result()) for w in waiters]
    print(f"event: states={states} log={log}")


async def condition_case():
    log = []
    cond = asyncio.Condition()
    state = {"ready": False}

    async def wait_ready(name):
        async with cond:
            try:
                await cond.wait_for(lambda: state["ready"])
            except asyncio.CancelledError:
                log.append(f"{name}: cancelled, holds lock={cond.locked()}")
                raise
            log.append(f"{name}: woke, holds lock={cond.locked()}")

    c1 = asyncio.create_task(wait_ready("c1"))
    c2 = asyncio.create_task(wait_ready("c2"))
    await settle()
    print(f"condition: c1 -> {await cancel_and_wait(c1)} locked={cond.locked()}")
    async with cond:
        state["ready"] = True
        cond.notify_all()
    await settle(5)
    print(f"condition: log={log} locked={cond.locked()}")

    # notify(1), then cancel that waiter before it runs: it must end cancelled
    # and must not leave the condition's lock held.
    c3 = asyncio.create_task(blocked("c3", lambda: _cond_wait(cond), log))
    await settle()
    async with cond:
        cond.notify(1)
    c3.cancel()
    await settle(5)
    print(f"condition: c3 cancelled={c3.cancelled()} locked={cond.locked()} log={log[-1:]}")


async def _cond_wait(cond):
    async with cond:
        await cond.wait()
        return "notified"


async def barrier_case():
    log = []
    barrier = asyncio.Barrier(3)
    b1 = asyncio.create_task(blocked("b1", barrier.wait, log))
    b2 = asyncio.create_task(blocked("b2", barrier.wait, log))
    await settle()
    print(f"barrier: waiting={barrier.n_waiting} b1 -> {await cancel_and_wait(b1)}")
    await settle()
    print(f"barrier: waiting={barrier.n_waiting} broken={barrier.broken}")
    await barrier.abort()
    try:
        await b2
    except asyncio.BrokenBarrierError:
        print("barrier: b2 got BrokenBarrierError after abort")


async def main():
    for case in (lock_case, semaphore_case, queue_case, event_case, condition_case, barrier_case):
        print(f"== {case.__name__}")
        await case()
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print(f"left-over tasks: {len(left)}")


if __name__ == "__main__":
    asyncio.run(main())
