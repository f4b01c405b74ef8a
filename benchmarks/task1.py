"""Task 1 (untargeted): WER under AG / AE / AZ and detection with filtering. ``python benchmarks/task1.py
[--preset smoke|cpu|paper] [--set key=value ...]``; see docs/benchmarks.md."""

from evaluation import runner, task1

if __name__ == "__main__":
    runner.main("Task 1", task1.run, task1.TITLES, console=task1.console_tables)
