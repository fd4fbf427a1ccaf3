"""Run the conformance package by file path: ``python tests/conformance/_entry.py {runner|worker} ...``.

``tests`` is not a regular package (no tests/__init__.py), so ``-m tests.conformance``
depends on no other ``tests`` package being importable.  Workers, and the pytest
entry, start the package through this file instead: it loads the folder as the
private package ``quickloop_conformance`` and calls the runner's or the worker's
``main``.
"""
import importlib
import importlib.util
import os
import sys

PACKAGE = "quickloop_conformance"


def load_package():
    here = os.path.dirname(os.path.abspath(__file__))
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = module
        spec.loader.exec_module(module)
    return sys.modules[PACKAGE]


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    # A script's folder is sys.path[0]: do not let runner.py & co. shadow anything.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    if not argv or argv[0] not in ("runner", "worker"):
        sys.stderr.write("usage: _entry.py {runner|worker} [args...]\n")
        return 2
    load_package()
    module = importlib.import_module(f"{PACKAGE}.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
