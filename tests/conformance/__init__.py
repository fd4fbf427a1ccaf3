"""Conformance runner: CPython's own ``test.test_asyncio`` suite against quickloop.

    python -m tests.conformance                      # default modules, quickloop loop + types
    python -m tests.conformance --compare            # stdlib reference vs quickloop, per module
    python -m tests.conformance --modules test_events,test_streams --list-failures
    python -m tests.conformance --loop stdlib --types stdlib --json ref.json

Every module runs in its own worker subprocess (the CPython tests mutate global
state: policies, child watchers, signal handlers, threads), several modules at
a time (``-j``).  A worker that crashes (segfault in the C core) or hangs in a
test is restarted after that test, which is reported as an error; the rest of
the module still runs.

Two kinds of conformance:

* loop conformance (``--loop quickloop``): the suite's tests get quickloop
  loops -- through the event loop policy (``asyncio.new_event_loop()``,
  ``asyncio.run``, ``asyncio.Runner``, ``IsolatedAsyncioTestCase``), re-installed
  before every test, and through runner-made subclasses (``Conf_*``) of the
  suite's per-loop test classes whose ``create_event_loop``/``new_loop``
  returns a quickloop loop.  Tests on ``test_utils.TestLoop`` (the virtual-clock
  stdlib loop of ``new_test_loop()``) stay on it.
* type conformance (``--types quickloop``): ``Conf_*`` copies of the suite's
  C-Task/C-Future test classes with ``Task``/``Future`` replaced by
  ``quickloop.Task``/``quickloop.Future`` (``asyncio``'s C types as a
  labelled fallback until those exist).

Nothing is assumed: per test the worker records whether a quickloop loop really
iterated (``loop._iterations > 0``), whether a stdlib selector loop iterated,
and whether an instance of the target Task/Future types was created; the
tables report ``ran`` and ``on-loop``/``on-types`` separately.

The stdlib reference (``--loop stdlib --types stdlib``) runs the very same test
set, runner-made classes included, with the stdlib loop and asyncio's C types,
so test ids line up for ``--compare``.  Tests listed in
``tests/conformance_expected_failures.txt`` are expected to fail on quickloop.
"""
