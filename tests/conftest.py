"""Shared fixtures: every behaviour test body runs on the stdlib loop and on quickloop."""
import asyncio
import gc

import pytest

try:
    import quickloop
except ImportError:  # reported by the tests that need it, not at collection
    quickloop = None

LOOP_KINDS = ("stdlib", "quickloop")


def make_loop(kind):
    """A new, not-running loop of the given kind."""
    if kind == "stdlib":
        return asyncio.DefaultEventLoopPolicy().new_event_loop()
    if quickloop is None:
        pytest.fail("quickloop is not importable (build it: make dev; PYTHONPATH=python)")
    return quickloop.new_event_loop()


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    return request.param


@pytest.fixture
def loop(loop_kind):
    """A fresh loop of each kind, closed (with its async generators) after the test."""
    lp = make_loop(loop_kind)
    yield lp
    if not lp.is_closed():
        if not lp.is_running():
            lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()
    gc.collect()


@pytest.fixture(autouse=True)
def _reset_policy():
    yield
    asyncio.set_event_loop_policy(None)
    asyncio.set_event_loop(None)
