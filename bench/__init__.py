"""Benchmarks, run by hand (`python -m bench`), never by the test command."""
