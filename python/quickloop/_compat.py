"""The one Python module for version-specific asyncio details (3.11 to 3.13)."""
import sys
import warnings

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
    """Name a task made by a custom task factory, as BaseEventLoop.create_task does."""
    if name is None:
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
