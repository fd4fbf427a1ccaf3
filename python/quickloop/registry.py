"""asyncio's task registry, listing quickloop's tasks too (csrc/registry.c).

asyncio.all_tasks() lists the tasks in a WeakSet of asyncio.tasks
(``_all_tasks``; ``_scheduled_tasks`` from 3.12), and asyncio adds every task
to it with WeakSet.add: a weakref object per task, one more object for the
cyclic GC to walk for each pending task.  quickloop's tasks are instead
linked into a list threaded through the tasks (no object, no reference), and
``install()`` puts in that global a TaskRegistry: a WeakSet that shares the
original set's storage, so whatever asyncio registers there (tasks of other
types, ``_register_task``) is still in it, and that lists the quickloop tasks
too.  Set operations that build a new set build a plain WeakSet of
everything listed.
"""
import asyncio.tasks
import weakref

from . import _core
from ._compat import TASK_REGISTRY_NAME


class TaskRegistry(weakref.WeakSet):
    """A WeakSet holding what ``base`` holds, plus quickloop's live tasks."""

    def __init__(self, base):  # pylint: disable=super-init-not-called
        # The same data, _remove, _pending_removals and _iterating as base:
        # asyncio's C _register_task keeps adding to base.
        self.__dict__ = base.__dict__

    def __iter__(self):
        yield from super().__iter__()
        # As WeakSet does, an iterator does not keep the tasks ahead of it
        # alive, and skips those gone since it started.
        for ref in [weakref.ref(task) for task in _core._registry_tasks()]:
            task = ref()
            if task is not None and _core._registry_has(task):
                yield task

    def __len__(self):
        return super().__len__() + _core._registry_len()

    def __contains__(self, item):
        return _core._registry_has(item) or super().__contains__(item)

    def add(self, item):
        if not _core._registry_link(item):
            super().add(item)

    def discard(self, item):
        if not _core._registry_unlink(item):
            super().discard(item)

    def remove(self, item):
        if not _core._registry_unlink(item):
            super().remove(item)

    def pop(self):
        try:
            return super().pop()
        except KeyError:
            for task in _core._registry_tasks():
                _core._registry_unlink(task)
                return task
            raise

    def clear(self):
        super().clear()
        for task in _core._registry_tasks():
            _core._registry_unlink(task)

    def difference_update(self, other):
        for item in other:
            self.discard(item)

    def __isub__(self, other):
        self.difference_update(other)
        return self

    def intersection_update(self, other):
        keep = weakref.WeakSet(other)
        for item in list(self):
            if item not in keep:
                self.discard(item)

    def __iand__(self, other):
        self.intersection_update(other)
        return self

    def symmetric_difference_update(self, other):
        for item in weakref.WeakSet(other):
            if item in self:
                self.discard(item)
            else:
                self.add(item)

    def __ixor__(self, other):
        self.symmetric_difference_update(other)
        return self

    def copy(self):
        return weakref.WeakSet(self)

    __copy__ = copy


def _on_a_copy(name):
    """WeakSet's method `name`, run on a plain WeakSet copy of the registry."""
    method = getattr(weakref.WeakSet, name)

    def on_copy(self, *args):
        return method(weakref.WeakSet(self), *args)

    on_copy.__name__ = on_copy.__qualname__ = name
    on_copy.__doc__ = method.__doc__
    return on_copy


# These read WeakSet's data directly or build their result with
# self.__class__: they run on a copy that holds everything listed.
for _name in ("__repr__", "__reduce__", "__eq__", "__le__", "__lt__", "__ge__", "__gt__",
              "issubset", "issuperset", "isdisjoint", "union", "__or__", "intersection",
              "__and__", "difference", "__sub__", "symmetric_difference", "__xor__"):
    if hasattr(weakref.WeakSet, _name):
        setattr(TaskRegistry, _name, _on_a_copy(_name))
del _name


_original = None


def install():
    """Put a TaskRegistry in asyncio.tasks and have new quickloop tasks use
    it.  If the registry there is not a plain WeakSet (replaced by someone
    else), leave it: quickloop's tasks then go through _register_task."""
    global _original  # pylint: disable=global-statement
    base = getattr(asyncio.tasks, TASK_REGISTRY_NAME)
    if type(base) is weakref.WeakSet:  # pylint: disable=unidiomatic-typecheck
        # Kept alive here too: its _remove callback holds it by weakref.
        _original = base
        setattr(asyncio.tasks, TASK_REGISTRY_NAME, TaskRegistry(base))
    if isinstance(getattr(asyncio.tasks, TASK_REGISTRY_NAME), TaskRegistry):
        _core._registry_install()
