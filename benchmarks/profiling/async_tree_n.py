"""Profiling driver: workloads.async_tree on quickloop with GC disabled; for
callgrind, run at sizes 7776 and 15552 and take the difference per task.

Usage: python async_tree_n.py SIZE   (from the repository root)
"""
import sys, gc, asyncio
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..'))
import quickloop
from benchmarks import workloads
loop = quickloop.new_event_loop()
gc.disable()
workloads.async_tree(loop, int(sys.argv[1]))
loop.close()
