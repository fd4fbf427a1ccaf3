"""Per-test evidence of what a test really ran on (worker side).

* quickloop loops: ``quickloop.Loop.__init__`` is wrapped to remember, for the
  test running at the time, every quickloop loop created; the loop's
  ``_iterations`` is read when the test ends (live loops) or from a wrapped
  ``__del__`` (loops collected during the test).  A test counts as "on the
  quickloop loop" when one of its quickloop loops ran at least one iteration.
  Nothing is added to the run path (no wrapper frames in tracebacks).
* stdlib loops: ``BaseSelectorEventLoop._process_events`` (called once per
  iteration of a selector loop) is wrapped to note that a real stdlib
  ``_UnixSelectorEventLoop`` iterated; ``test_utils.TestLoop`` and the mocked
  ``BaseEventLoop``s of the internals tests are not selector loops and never
  count.
* Task/Future types: a quickloop type (a mutable heap type) gets a Python
  ``__new__`` that notes the instance and has returned before ``__init__`` runs
  (so it never shows in a ``_source_traceback``); ``asyncio.tasks._all_tasks.add``
  (every C or Python Task registers itself there) is hooked on the instance,
  which also covers asyncio's immutable C Task for the reference run (its C
  Future cannot be seen there).  An object counts if it is an instance of the
  target Task or Future type.
"""
import threading
import weakref
from asyncio import selector_events, tasks, unix_events


class Record:
    """What one test did."""

    __slots__ = ("test_id", "ql_loops", "ql_created", "ql_max_iterations",
                 "stdlib_iterated", "types_seen")

    def __init__(self, test_id):
        self.test_id = test_id
        self.ql_loops = []           # weakrefs to quickloop loops made during the test
        self.ql_created = 0
        self.ql_max_iterations = None  # None: no loop, or no _iterations attribute
        self.stdlib_iterated = False
        self.types_seen = set()      # names of target types instantiated

    def note_ql_iterations(self, loop):
        n = getattr(loop, "_iterations", None)
        if n is None:
            return
        if self.ql_max_iterations is None or n > self.ql_max_iterations:
            self.ql_max_iterations = n

    def summary(self):
        return {
            "ql_loops": self.ql_created,
            "ql_iterations": self.ql_max_iterations,
            "on_ql_loop": bool(self.ql_max_iterations),
            "on_stdlib_loop": self.stdlib_iterated,
            "types": sorted(self.types_seen),
            "on_types": bool(self.types_seen),
        }


class Tracker:
    def __init__(self):
        self.current = None
        self._lock = threading.Lock()
        self._loop_owner = {}        # id(loop) -> Record, for loops made in a test
        self.iterations_supported = None
        self.target_types = ()

    # ---- test boundaries ------------------------------------------------

    def start(self, test_id):
        self.current = Record(test_id)
        return self.current

    def stop(self):
        rec, self.current = self.current, None
        if rec is None:
            return None
        for ref in rec.ql_loops:
            loop = ref()
            if loop is not None:
                rec.note_ql_iterations(loop)
                with self._lock:
                    if self._loop_owner.get(id(loop)) is rec:
                        del self._loop_owner[id(loop)]
        rec.ql_loops = []
        return rec

    # ---- instrumentation ------------------------------------------------

    def instrument_quickloop(self, quickloop):
        Loop = quickloop.Loop
        tracker = self
        orig_init = Loop.__init__
        orig_del = getattr(Loop, "__del__", None)

        def __init__(self, *args, **kwargs):
            orig_init(self, *args, **kwargs)
            rec = tracker.current
            if rec is not None:
                rec.ql_created += 1
                rec.ql_loops.append(weakref.ref(self))
                with tracker._lock:
                    tracker._loop_owner[id(self)] = rec

        def __del__(self):
            try:
                with tracker._lock:
                    rec = tracker._loop_owner.pop(id(self), None)
                if rec is not None:
                    rec.note_ql_iterations(self)
            except Exception:  # noqa: BLE001 - never disturb finalization
                pass
            if orig_del is not None:
                orig_del(self)

        __init__.__wrapped__ = orig_init
        Loop.__init__ = __init__
        Loop.__del__ = __del__
        probe = getattr(Loop, "_iterations", None)
        self.iterations_supported = probe is not None

    def instrument_stdlib_loops(self):
        tracker = self
        cls = selector_events.BaseSelectorEventLoop
        orig = cls._process_events
        real = unix_events._UnixSelectorEventLoop

        def _process_events(self, event_list):
            rec = tracker.current
            if rec is not None and not rec.stdlib_iterated and isinstance(self, real):
                rec.stdlib_iterated = True
            return orig(self, event_list)

        cls._process_events = _process_events

    def instrument_types(self, task_type, future_type):
        """Count instances of the target types (task_type/future_type may be None).

        Returns {type name: how its instances are seen}.
        """
        self.target_types = tuple(t for t in (task_type, future_type) if t is not None)
        how = {}
        for t in self.target_types:
            name = f"{t.__module__}.{t.__qualname__}"
            how[name] = "__new__ hook" if self._hook_new(t) else None
        # asyncio's task registry: _all_tasks on 3.11, _scheduled_tasks from 3.12.
        registry = getattr(tasks, "_scheduled_tasks", None)
        if registry is None:
            registry = tasks._all_tasks
        orig_add = registry.add   # bound method of the WeakSet the C module uses
        tracker = self

        def add(item):
            tracker.note_object(item)
            return orig_add(item)

        # Instance attribute: found before WeakSet.add by the C module's
        # PyObject_CallMethod(all_tasks, "add", task) and by Python code.
        registry.add = add
        for name, way in how.items():
            if way is None:
                how[name] = "asyncio's task registry registration (Tasks only)"
        return how

    def _hook_new(self, cls):
        """Replace a mutable (heap) type's __new__ with a Python one noting the instance.

        The Python __new__ has returned before the C __init__ runs, so it is not
        on the stack when a Future/Task captures its _source_traceback.
        Immutable types (asyncio's own C types) cannot be hooked this way.
        """
        if cls.__flags__ & (1 << 8):  # Py_TPFLAGS_IMMUTABLETYPE
            return False
        orig_new = cls.__new__
        tracker = self

        def __new__(klass, *args, **kwargs):
            obj = orig_new(klass, *args, **kwargs)
            tracker.note_object(obj)
            return obj

        try:
            cls.__new__ = staticmethod(__new__)
        except (TypeError, AttributeError):
            return False
        return True

    def note_object(self, obj):
        rec = self.current
        if rec is None or not self.target_types:
            return
        for t in self.target_types:  # Task first: a Task is a Future too
            if isinstance(obj, t):
                rec.types_seen.add(f"{t.__module__}.{t.__qualname__}")
                break


TRACKER = Tracker()


def note(obj):
    """Called by runner-made classes on what their Task/Future factories return."""
    TRACKER.note_object(obj)
    return obj


__all__ = ("TRACKER", "Tracker", "Record", "note")
