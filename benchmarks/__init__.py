"""quickloop's benchmark suite: python -m benchmarks --help.

Layout: __main__.py (command line and tables), runner.py (interleaving,
timing, medians, failure handling), base.py (result type, registry entry,
checks), workloads.py (one verified workload per function, and the
registry), net.py (TCP echo and the wrk-driven HTTP server, whose server
side is httpserver.py), curves.py (--curves: cost vs pending timers / tasks),
report.py (--chart and --results: the ratio chart and RESULTS.md).
"""
