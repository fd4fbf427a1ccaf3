"""The one Python module for version-specific asyncio details (3.11 to 3.13)."""
import inspect
import sys
import warnings
from asyncio import base_events, format_helpers

PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)

# The WeakSet of tasks asyncio.all_tasks() reads, in asyncio.tasks: 3.12
# renamed it when it added a separate set for eager tasks.
TASK_REGISTRY_NAME = "_scheduled_tasks" if PY312 else "_all_tasks"


def server_attach(server, transport):
    """Count a new connection on its asyncio.Server: from 3.13 the server
    keeps its transports (for close_clients()), before it only counted."""
    if PY313:
        server._attach(transport)
    else:
        server._attach()


def set_task_name(task, name):
    """Name a task made by a custom task factory, as BaseEventLoop.create_task
    does: before 3.13 a product without set_name() only warns
    (asyncio.tasks._set_task_name); from 3.13 set_name() is mandatory."""
    if name is None:
        return
    if PY313:
        task.set_name(name)
        return
    try:
        set_name = task.set_name
    except AttributeError:
        warnings.warn(
            "Task.set_name() was added in Python 3.8, "
            "the method support will be mandatory for third-party "
            "task implementations since 3.13.",
            DeprecationWarning,
            stacklevel=3,
        )
    else:
        set_name(name)


# From 3.13.4 (and in 3.14) BaseEventLoop.create_task(coro, *, name=None,
# context=None, **kwargs) passes other keywords (3.14's eager_start=) on to
# the task factory or Task (cpython gh-128308, gh-133745).  3.13.3, the one
# release before, also passed name and context to the factory.
CREATE_TASK_PASSES_KWARGS = any(
    p.kind is inspect.Parameter.VAR_KEYWORD
    for p in inspect.signature(base_events.BaseEventLoop.create_task).parameters.values())


def create_task_kwargs(loop, coro, name, context, kwargs):
    """loop.create_task() with keywords other than name and context: refused
    where this CPython's create_task refuses them; otherwise passed on to the
    task factory (context too, when given) or to quickloop.Task, as 3.13.4's
    create_task does.  A factory's product is named as by create_task."""
    if not CREATE_TASK_PASSES_KWARGS:
        raise TypeError(f"create_task() got an unexpected keyword argument {next(iter(kwargs))!r}")
    if loop.is_closed():
        raise RuntimeError("Event loop is closed")
    factory = loop.get_task_factory()
    if factory is None:
        from ._core import Task
        task = Task(coro, loop=loop, name=name, context=context, **kwargs)
        if task._source_traceback:
            # End at create_task()'s caller, as create_task()'s own tasks do:
            # drop this frame and Loop._create_task_kwargs'.
            del task._source_traceback[-2:]
        return task
    if context is not None:
        kwargs["context"] = context
    task = factory(loop, coro, **kwargs)
    set_task_name(task, name)
    return task


def run_exception_handler(handler, loop, context):
    """Call a custom exception handler as BaseEventLoop.call_exception_handler
    does: from 3.12 (gh-96704) inside the contextvars context of the task,
    future or handle the report is about, so the handler sees the values
    the failing code set; before 3.12 in the caller's context."""
    if PY312:
        thing = context.get("task")
        if thing is None:
            thing = context.get("future")   # a Task is sometimes here
        if thing is None:
            thing = context.get("handle")
        ctx = None
        if thing is not None and hasattr(thing, "get_context"):
            ctx = thing.get_context()
        if ctx is not None and hasattr(ctx, "run"):
            ctx.run(handler, loop, context)
            return
    handler(loop, context)


# "Exception in callback ..." and a handle's repr describe the callback with
# asyncio's _format_callback_source; from 3.13 it takes debug= and shows the
# callback's arguments in debug mode only (they may hold secrets).  Probed,
# not version-tested, so a release that gains the keyword is followed too.
if "debug" in (getattr(format_helpers._format_callback_source, "__kwdefaults__", None) or {}):
    format_callback_source = format_helpers._format_callback_source
else:
    def format_callback_source(func, args, *, debug=False):
        """Before 3.13 the arguments are always shown."""
        return format_helpers._format_callback_source(func, args)
