"""``python -m tests.conformance``: see tests/conformance/__init__.py."""
import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
