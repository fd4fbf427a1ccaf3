"""Fuzzers for quickloop's C entry points (see README.md in this folder)."""
