"""Which test_asyncio modules the runner knows and how each is put on the target loop/types.

Everything here is applied identically for the stdlib reference and for
quickloop (only the loop factory and the Task/Future types differ), so test ids
are the same in both runs.

Mechanisms, per module:

* policy (every module): before each test the worker installs a fresh
  ``quickloop.EventLoopPolicy()`` (or ``asyncio.DefaultEventLoopPolicy()`` for
  the reference).  Many modules reset the policy in tearDown/tearDownModule;
  re-installing per test keeps ``asyncio.new_event_loop()``, ``asyncio.run``,
  ``asyncio.Runner`` and ``IsolatedAsyncioTestCase`` on the target loop.
* LOOP_TEMPLATES: a per-loop test class of the suite (e.g. ``EPollEventLoopTests``
  = ``UnixEventLoopTestsMixin + SubprocessTestsMixin + test_utils.TestCase`` with a
  ``create_event_loop``) is subclassed as ``Conf_<name>`` with its loop factory
  returning the target loop; the template and its sibling stdlib-selector
  variants (DROP_CLASSES) are not run (the reference's ``Conf_`` class is the
  stdlib epoll selector loop, i.e. exactly ``EPollEventLoopTests``).
* LOOP_PATCHES: in-place adapters for modules whose base class builds a mocked
  ``asyncio.BaseEventLoop`` (test_runners, test_pep492): the same class gets a
  real target loop instead.
* TYPE_TEMPLATES / ASYNC_TYPE_MODULES: ``Conf_`` copies of the C-Task/C-Future
  test classes with the target types (see worker.Context).
* loop_factory: an ``IsolatedAsyncioTestCase`` class that names its own
  ``loop_factory`` (3.13.4+'s test_taskgroups: ``asyncio.EventLoop``, and one
  that also installs ``asyncio.eager_task_factory``) bypasses the policy; its
  factory runs with ``asyncio.EventLoop`` standing for the target loop.

Tests that use ``test_utils.TestCase.new_test_loop()`` (a virtual-clock stdlib
``BaseEventLoop``) or build stdlib loops/mocks themselves are left alone; the
per-test verification reports them as not on quickloop.
"""
import asyncio
import unittest

from . import tracking

# Every module the runner knows, in the order tables are printed.
ALL_MODULES = (
    "test_runners", "test_locks", "test_queues", "test_pep492", "test_context",
    "test_timeouts", "test_waitfor", "test_taskgroups", "test_tasks",
    "test_futures", "test_futures2",
    "test_threads", "test_protocols", "test_transports",
    "test_events", "test_base_events", "test_selector_events", "test_unix_events",
    "test_streams", "test_server", "test_sock_lowlevel", "test_sendfile",
    "test_subprocess", "test_buffered_proto", "test_ssl", "test_sslproto",
)

# Need sockets/pipes/subprocesses/TLS from the loop.
NETWORKING_MODULES = (
    "test_events", "test_base_events", "test_selector_events", "test_unix_events",
    "test_streams", "test_server", "test_sock_lowlevel", "test_sendfile",
    "test_subprocess", "test_buffered_proto", "test_ssl", "test_sslproto",
)

# What CI runs: every module (quickloop implements the whole loop API).
DEFAULT_MODULES = ALL_MODULES

_SELECTOR_VARIANTS = ("SelectEventLoopTests", "PollEventLoopTests",
                      "KqueueEventLoopTests", "ProactorEventLoopTests")

# module -> {template class: name of its loop factory method}
LOOP_TEMPLATES = {
    "test_events": {"EPollEventLoopTests": "create_event_loop"},
    "test_sock_lowlevel": {"EPollEventLoopTests": "create_event_loop"},
    "test_sendfile": {"EPollEventLoopTests": "create_event_loop"},
    "test_server": {"SelectorStartServerTests": "new_loop"},
    "test_buffered_proto": {"BufferedProtocolSelectorTests": "new_loop"},
    "test_sslproto": {"SelectorStartTLSTests": "new_loop"},
}

# module -> classes not run at all (stdlib-selector duplicates of a template)
DROP_CLASSES = {
    "test_events": _SELECTOR_VARIANTS,
    "test_sock_lowlevel": _SELECTOR_VARIANTS,
    "test_sendfile": _SELECTOR_VARIANTS,
    "test_server": ("ProactorStartServerTests",),
    "test_buffered_proto": ("BufferedProtocolProactorTests",),
    "test_sslproto": ("ProactorStartTLSTests",),
}


# ---- in-place adapters -----------------------------------------------------

def _patch_runners(mod, ctx):
    """test_runners.BaseTest.new_loop: a real target loop instead of a mocked BaseEventLoop.

    The original replaces shutdown_asyncgens by a coroutine setting
    ``loop.shutdown_ag_run`` (checked in tearDown); the adapter keeps that flag
    and also runs the loop's real shutdown_asyncgens.
    """
    def new_loop(self):
        loop = ctx.new_loop()
        loop.shutdown_ag_run = False
        real_shutdown_asyncgens = loop.shutdown_asyncgens

        async def shutdown_asyncgens():
            loop.shutdown_ag_run = True
            await real_shutdown_asyncgens()

        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    mod.BaseTest.new_loop = new_loop


def _patch_pep492(mod, ctx):
    """test_pep492.BaseTest.setUp: a real target loop instead of a mocked BaseEventLoop."""
    def setUp(self):
        mod.test_utils.TestCase.setUp(self)
        self.loop = ctx.new_loop()
        self.set_event_loop(self.loop)

    mod.BaseTest.setUp = setUp


LOOP_PATCHES = {
    "test_runners": _patch_runners,
    "test_pep492": _patch_pep492,
}


# ---- type conformance --------------------------------------------------------

class TypeTemplate:
    """``Conf_<template>``: the template class with its C Task/Future replaced.

    attrs(ctx, mod) gives the class attributes to override; ``subclass_tests``
    re-applies test_tasks.add_subclass_tests (Python subclasses of the types).
    The test classes' factories are NOT wrapped: a wrapper frame would show in
    the objects' _source_traceback (test_task_source_traceback checks it);
    instances are counted by tracking's frame-free hooks instead.
    """

    def __init__(self, template, attrs, subclass_tests=False):
        self.template = template
        self.attrs = attrs
        self.subclass_tests = subclass_tests


def _task_future(task, future):
    def attrs(ctx, mod):
        pick = {"T": ctx.task_type, "F": ctx.future_type,
                "PyT": mod.tasks._PyTask, "PyF": mod.futures._PyFuture}
        return {"Task": pick[task], "Future": pick[future]}
    return attrs


def _current_loop_attrs(ctx, mod):
    task_type = ctx.task_type

    def new_task(self, coro):
        return task_type(coro, loop=self.loop)
    return {"new_task": new_task}


def _future_cls(subclass):
    def attrs(ctx, mod):
        cls = ctx.future_type
        if subclass:
            cls = type("CSubFuture", (cls,), {"__module__": mod.__name__})
        return {"cls": cls}
    return attrs


def _done_callback_future(subclass):
    def attrs(ctx, mod):
        cls = ctx.future_type
        if subclass:
            cls = type("CSubFuture", (cls,), {"__module__": mod.__name__})

        def _new_future(self):
            return cls(loop=self.loop)
        return {"_new_future": _new_future}
    return attrs


def _inheritance_future(ctx, mod):
    cls = ctx.future_type

    def _get_future_cls(self):
        return cls
    return {"_get_future_cls": _get_future_cls}


def _futures2_task(ctx, mod):
    return {"cls": ctx.task_type}


TYPE_TEMPLATES = {
    "test_tasks": (
        TypeTemplate("CTask_CFuture_Tests", _task_future("T", "F")),
        TypeTemplate("CTask_CFuture_SubclassTests", _task_future("T", "F"),
                     subclass_tests=True),
        TypeTemplate("CTaskSubclass_PyFuture_Tests", _task_future("T", "PyF"),
                     subclass_tests=True),
        TypeTemplate("PyTask_CFutureSubclass_Tests", _task_future("PyT", "F"),
                     subclass_tests=True),
        TypeTemplate("CTask_PyFuture_Tests", _task_future("T", "PyF")),
        TypeTemplate("PyTask_CFuture_Tests", _task_future("PyT", "F")),
        TypeTemplate("CCurrentLoopTests", _current_loop_attrs),
    ),
    "test_futures": (
        TypeTemplate("CFutureTests", _future_cls(False)),
        TypeTemplate("CSubFutureTests", _future_cls(True)),
        TypeTemplate("CFutureDoneCallbackTests", _done_callback_future(False)),
        TypeTemplate("CSubFutureDoneCallbackTests", _done_callback_future(True)),
        TypeTemplate("CFutureInheritanceTests", _inheritance_future),
    ),
    "test_futures2": (
        TypeTemplate("CFutureTests", _futures2_task),
    ),
}

# IsolatedAsyncioTestCase modules run a second time as Conf_<Class>, every loop
# given a task factory making the target Task and a create_future making the
# target Future.
ASYNC_TYPE_MODULES = ("test_taskgroups", "test_timeouts", "test_waitfor")


def _make_class(mod, name, bases, attrs):
    ns = dict(attrs)
    ns["__module__"] = mod.__name__
    ns["__qualname__"] = name
    cls = type(name, bases, ns)
    setattr(mod, name, cls)
    return cls


def _install_types_on_loop(loop, ctx):
    task_type, future_type = ctx.task_type, ctx.future_type
    # A loop made eager by its test class's loop_factory stays eager.
    eager = (loop.get_task_factory() is not None
             and loop.get_task_factory() is getattr(asyncio, "eager_task_factory", None))

    def task_factory(loop, coro, **kwargs):
        if eager:
            kwargs.setdefault("eager_start", True)
        return tracking.note(task_type(coro, loop=loop, **kwargs))

    def create_future():
        return tracking.note(future_type(loop=loop))

    loop.set_task_factory(task_factory)
    loop.create_future = create_future


def _async_types_class(mod, base, ctx):
    def _setupAsyncioRunner(self):
        base._setupAsyncioRunner(self)
        runner = self._asyncioRunner
        lazy_init = runner._lazy_init

        def _lazy_init():
            fresh = runner._loop is None
            lazy_init()
            if fresh and runner._loop is not None:
                _install_types_on_loop(runner._loop, ctx)

        runner._lazy_init = _lazy_init

    return _make_class(mod, f"Conf_{base.__name__}", (base,),
                       {"_setupAsyncioRunner": _setupAsyncioRunner})


def _target_loop_factory(factory, ctx):
    """A test class's own loop_factory, building the target loop instead:
    asyncio.EventLoop stands for it while the factory runs."""
    def loop_factory():
        if factory is asyncio.EventLoop:
            return ctx.new_loop()
        saved = asyncio.EventLoop
        asyncio.EventLoop = ctx.new_loop
        try:
            return factory()
        finally:
            asyncio.EventLoop = saved
    return staticmethod(loop_factory)


def _patch_loop_factories(mod, ctx):
    for obj in list(vars(mod).values()):
        if (isinstance(obj, type) and issubclass(obj, unittest.IsolatedAsyncioTestCase)
                and obj.__module__ == mod.__name__
                and obj.__dict__.get("loop_factory") is not None):
            obj.loop_factory = _target_loop_factory(getattr(obj, "loop_factory"), ctx)


def prepare(mod, short_name, ctx):
    """Patch/extend the imported module; return the class names not to run."""
    drop = set(DROP_CLASSES.get(short_name, ()))
    _patch_loop_factories(mod, ctx)

    patch = LOOP_PATCHES.get(short_name)
    if patch is not None:
        patch(mod, ctx)

    for template_name, method in LOOP_TEMPLATES.get(short_name, {}).items():
        template = getattr(mod, template_name, None)
        if template is None:
            continue
        factory = ctx.new_loop

        def make_loop(self, _factory=factory):
            return _factory()

        _make_class(mod, f"Conf_{template_name}", (template,), {method: make_loop})
        drop.add(template_name)

    if ctx.task_type is not None:
        for spec in TYPE_TEMPLATES.get(short_name, ()):
            template = getattr(mod, spec.template, None)
            if template is None:
                continue
            cls = _make_class(mod, f"Conf_{spec.template}", (template,), spec.attrs(ctx, mod))
            if spec.subclass_tests:
                cls = mod.add_subclass_tests(cls)
        if short_name in ASYNC_TYPE_MODULES:
            for name, obj in list(vars(mod).items()):
                if (isinstance(obj, type) and issubclass(obj, unittest.IsolatedAsyncioTestCase)
                        and obj.__module__ == mod.__name__
                        and not name.startswith("Conf_")):
                    _async_types_class(mod, obj, ctx)
    return drop
