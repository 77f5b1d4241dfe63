"""Benchmarks: ``python -m bench.<name>`` (see the helper brief)."""
