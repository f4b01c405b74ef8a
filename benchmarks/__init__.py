"""Benchmark commands (``python benchmarks/<name>.py``): each prints the figures it measures."""
