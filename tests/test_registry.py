"""csrc/registry.c + python/quickloop/registry.py: quickloop's tasks are on a
list threaded through them, and asyncio's task registry (the WeakSet
asyncio.all_tasks() reads) is replaced by a WeakSet that lists them too.
Everything asyncio and the WeakSet API see must be as with WeakSet.add: the
checks run on both loops (the stdlib loop's tasks go into the same registry,
in the storage it shares with asyncio's original set)."""
import asyncio
import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

import quickloop
from quickloop._compat import TASK_REGISTRY_NAME
from support import run_until

REGISTRY = getattr(asyncio.tasks, TASK_REGISTRY_NAME)


async def sleeper():
    await asyncio.sleep(3600)


async def spawn(n):
    """n tasks asleep."""
    tasks = [asyncio.get_running_loop().create_task(sleeper()) for _ in range(n)]
    await asyncio.sleep(0)
    return tasks


async def finish(tasks):
    for t in tasks:
        t.cancel()
    await asyncio.wait(tasks)


def test_the_registry_is_a_weakset_holding_asyncios_own_entries():
    assert isinstance(REGISTRY, quickloop.registry.TaskRegistry)
    assert isinstance(REGISTRY, weakref.WeakSet)
    # _asyncio's C _register_task keeps adding to the original set: its storage
    # is the registry's.
    assert REGISTRY.data is getattr(sys.modules["_asyncio"], TASK_REGISTRY_NAME).data


def test_pending_tasks_are_listed_and_dead_ones_leave(loop):
    async def main():
        before = len(REGISTRY)
        tasks = await spawn(5)
        listed = (len(asyncio.all_tasks()), len(REGISTRY) - before,
                  [t in REGISTRY for t in tasks], set(tasks) <= set(REGISTRY))
        await finish(tasks)
        refs = [weakref.ref(t) for t in tasks]
        del tasks
        return before, listed, refs

    before, (n_all, added, inside, subset), refs = run_until(loop, main())
    assert n_all == 6 and added == 5 and all(inside) and subset  # 5 sleepers + main()
    assert not any(r() for r in refs)  # freed by reference counting, no collection
    assert len(REGISTRY) == before - 1  # main() is gone too


def test_a_task_of_another_type_on_the_loop_is_listed(loop):
    """asyncio.Task itself (registered by asyncio, in the shared storage)."""
    async def main():
        t = asyncio.Task(sleeper(), loop=asyncio.get_running_loop())
        await asyncio.sleep(0)
        listed = t in asyncio.all_tasks() and t in REGISTRY
        await finish([t])
        return listed, t in asyncio.all_tasks()

    assert run_until(loop, main()) == (True, False)


def test_no_weakref_object_per_quickloop_task(loop, loop_kind):
    """The point of the list: a pending quickloop task costs the GC no
    registry object (asyncio's WeakSet.add makes a weakref per task)."""
    async def main():
        gc.collect()
        before = sum(1 for o in gc.get_objects() if type(o) is weakref.ref)
        tasks = await spawn(200)
        gc.collect()
        after = sum(1 for o in gc.get_objects() if type(o) is weakref.ref)
        await finish(tasks)
        return after - before

    grown = run_until(loop, main())
    assert grown < 200 if loop_kind == "quickloop" else grown >= 200


def test_tasks_dying_while_the_registry_is_iterated(loop):
    async def main():
        tasks = await spawn(4)
        it = iter(REGISTRY)
        first = next(it)    # an iterator is live while the tasks die
        await finish(tasks)
        refs = [weakref.ref(t) for t in tasks]
        del tasks
        gc.collect()
        rest = list(it)
        del first, it
        gc.collect()
        return refs, rest, list(REGISTRY)

    refs, rest, now = run_until(loop, main())
    dead = [r for r in refs if r() is None]
    assert len(dead) >= 3  # the iterator may hold one of them alive
    assert all(isinstance(t, asyncio.Future) for t in rest)
    assert not [t for t in now if any(t is r() for r in dead)]


def test_a_destroyed_pending_task_is_not_listed_while_it_is_reported(loop):
    """A pending task freed by the cyclic GC is reported ("Task was destroyed
    but it is pending!"); as with asyncio's weakref, which dies before the
    finalizers run, the registry no longer lists it by then."""
    seen = []

    def handler(lp, context):
        task = context.get("task")
        if task is not None:
            seen.append((context["message"], task in REGISTRY, task in list(REGISTRY)))

    async def waiter(fut):
        await fut

    async def main():
        lp = asyncio.get_running_loop()
        lp.set_exception_handler(handler)
        fut = lp.create_future()
        lp.create_task(waiter(fut))
        await asyncio.sleep(0)
        del fut     # task -> coroutine -> future -> task: a cycle, unreferenced
        gc.collect()
        gc.collect()
        return len(asyncio.all_tasks())

    assert run_until(loop, main()) == 1
    assert seen == [("Task was destroyed but it is pending!", False, False)]


def test_set_operations_see_every_listed_task(loop):
    async def main():
        a, b = await spawn(2)
        ops = {
            "copy": (type(REGISTRY.copy()) is weakref.WeakSet, {a, b} <= set(REGISTRY.copy())),
            "union": a in (REGISTRY | weakref.WeakSet()),
            "intersection": set(REGISTRY & {a}) == {a},
            "difference": (a not in REGISTRY - {a}, b in REGISTRY - {a}),
            "superset": (REGISTRY.issuperset({a, b}), REGISTRY >= weakref.WeakSet([a, b])),
            "disjoint": (REGISTRY.isdisjoint({a}), REGISTRY.isdisjoint(set())),
            "equal": REGISTRY == weakref.WeakSet(REGISTRY),
        }
        REGISTRY.discard(a)
        hidden = (a in REGISTRY, a in asyncio.all_tasks(), b in asyncio.all_tasks())
        REGISTRY.add(a)
        back = a in asyncio.all_tasks()
        REGISTRY.difference_update([a])
        removed = a not in REGISTRY
        reg = REGISTRY
        reg |= {a}
        again = a in REGISTRY and reg is REGISTRY
        await finish([a, b])
        return ops, hidden, back, removed, again

    ops, hidden, back, removed, again = run_until(loop, main())
    assert ops == {
        "copy": (True, True), "union": True, "intersection": True,
        "difference": (True, True), "superset": (True, True),
        "disjoint": (False, True), "equal": True,
    }
    assert hidden == (False, False, True) and back and removed and again


def test_a_registry_replaced_before_import_is_left_alone():
    """If asyncio's registry is not a plain WeakSet when quickloop is
    imported, quickloop leaves it and registers its tasks the asyncio way."""
    code = textwrap.dedent(f"""
        import asyncio, weakref
        class Mine(weakref.WeakSet):
            pass
        setattr(asyncio.tasks, {TASK_REGISTRY_NAME!r}, Mine())
        import quickloop
        reg = getattr(asyncio.tasks, {TASK_REGISTRY_NAME!r})
        async def main():
            await asyncio.sleep(0)
            return type(reg).__name__, asyncio.current_task() in asyncio.all_tasks()
        print(quickloop.run(main()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    # asyncio's C _register_task adds to its own set, not to the replacement,
    # so the replacement lists no task: as it would with asyncio's own tasks.
    assert out.stdout.strip() == "('Mine', False)"


@pytest.mark.parametrize("n", [1, 10])
def test_all_tasks_sees_only_live_pending_tasks(loop, n):
    async def main():
        tasks = await spawn(n)
        await finish(tasks)
        refs = [weakref.ref(t) for t in tasks]
        del tasks
        gc.collect()
        return refs, asyncio.all_tasks()

    refs, listed = run_until(loop, main())
    assert not any(r() for r in refs) and len(listed) == 1


def test_a_collection_while_the_snapshot_is_made_is_consistent():
    """The cyclic GC can run while the snapshot list of quickloop's tasks is
    allocated, and the finalizer of a pending task it frees takes that task
    off the list: the snapshot must still hold only live tasks, no holes.
    Run in a subprocess: a hole would be a NULL item, a crash."""
    code = textwrap.dedent("""
        import asyncio, gc, quickloop
        from quickloop import _core

        async def waiter(fut):
            await fut

        async def main():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda lp, ctx: None)
            keep = [loop.create_task(waiter(loop.create_future())) for _ in range(3)]
            gc.disable()
            fut = loop.create_future()
            loop.create_task(waiter(fut))
            await asyncio.sleep(0)
            del fut          # that task is now an unreachable cycle, not yet collected
            before = len(_core._registry_tasks())   # gc still off: 5 (main too)
            hold = [[] for _ in range(200)]   # empties the list free list: the
            gc.set_threshold(1)               # snapshot's list is a new GC object
            gc.enable()
            snap = _core._registry_tasks()          # its allocation collects the cycle
            gc.set_threshold(700)
            ok = all(isinstance(t, asyncio.Task) for t in snap)
            del hold
            for t in keep:
                t.cancel()
            await asyncio.wait(keep)
            return before, len(snap), ok

        print(quickloop.run(main()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    # From 3.12 the collector runs at the eval breaker, not inside an
    # allocation: the snapshot is made before the cycle is collected.
    assert out.stdout.strip() == ("(5, 4, True)" if sys.version_info < (3, 12) else "(5, 5, True)")
