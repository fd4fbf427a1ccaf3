"""quickloop's benchmark suite: python -m benchmarks --help.

Layout: __main__.py (command line and tables), runner.py (interleaving,
timing, medians, failure handling), workloads.py (one verified workload per
function).
"""
