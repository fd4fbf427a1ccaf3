"""csrc/registry.c: quickloop tasks go into asyncio's task registry (the
WeakSet asyncio.all_tasks() reads) from C, with a C callback doing what the
WeakSet's own _remove does.  Everything asyncio and the WeakSet API see must
be as if WeakSet.add had run: these checks run on both loops."""
import asyncio
import gc
import sys
import weakref

from support import run_until

REGISTRY = asyncio.tasks._scheduled_tasks if sys.version_info >= (3, 12) else asyncio.tasks._all_tasks


async def sleeper():
    await asyncio.sleep(3600)


async def spawn_and_finish(n):
    """n tasks, cancelled and awaited; weakrefs to them."""
    tasks = [asyncio.get_running_loop().create_task(sleeper()) for _ in range(n)]
    await asyncio.sleep(0)
    refs = [weakref.ref(t) for t in tasks]
    for t in tasks:
        t.cancel()
    await asyncio.wait(tasks)
    return refs


def entries_of(tasks):
    """The registry's own weakref objects for these live tasks."""
    ids = {id(t) for t in tasks}
    return [r for r in list(REGISTRY.data) if id(r()) in ids]


def test_pending_tasks_are_registered_and_dead_ones_leave(loop):
    async def main():
        tasks = [asyncio.get_running_loop().create_task(sleeper()) for _ in range(5)]
        await asyncio.sleep(0)
        listed = len(asyncio.all_tasks())
        registered = [t in REGISTRY for t in tasks]
        entries = entries_of(tasks)
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
        del t, tasks
        gc.collect()
        return listed, registered, entries

    listed, registered, entries = run_until(loop, main())
    assert listed == 6 and all(registered)  # the 5 sleepers and main()
    assert len(entries) == 5 and all(e() is None for e in entries)
    assert not [e for e in entries if e in REGISTRY.data]  # dropped by the callback


def test_tasks_dying_while_the_registry_is_iterated(loop):
    """WeakSet defers removals while an iterator is live, then commits them."""
    async def main():
        tasks = [asyncio.get_running_loop().create_task(sleeper()) for _ in range(4)]
        await asyncio.sleep(0)
        entries = entries_of(tasks)
        it = iter(REGISTRY)
        held = next(it)  # the iterator now guards the set
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
        del t, tasks
        gc.collect()
        dead = [e for e in entries if e() is None]
        queued = [e for e in dead if any(e is p for p in REGISTRY._pending_removals)]
        still_in = [e for e in dead if e in REGISTRY.data]
        del it, held
        gc.collect()
        return dead, queued, still_in, [e for e in dead if e in REGISTRY.data]

    dead, queued, still_in, left = run_until(loop, main())
    assert len(dead) >= 3  # the iterator may hold one of them alive
    assert len(queued) == len(dead) and len(still_in) == len(dead) and left == []


def test_a_new_task_commits_pending_removals(loop):
    """With removals queued, registering goes through WeakSet.add, which
    commits them first, as it would on the stdlib loop."""
    async def main():
        it = iter(REGISTRY)
        held = next(it)
        refs = await spawn_and_finish(3)
        gc.collect()
        queued = len(REGISTRY._pending_removals)
        del it, held
        gc.collect()
        return queued, refs

    queued, refs = run_until(loop, main())
    assert queued >= 2 and not any(r() for r in refs)
    assert len(REGISTRY._pending_removals) == 0


def test_all_tasks_sees_only_live_pending_tasks(loop):
    async def main():
        refs = await spawn_and_finish(10)
        gc.collect()
        return refs, asyncio.all_tasks()

    refs, listed = run_until(loop, main())
    assert not any(r() for r in refs) and len(listed) == 1
