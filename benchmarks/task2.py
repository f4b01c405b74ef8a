"""Task 2 (targeted "open the door"): unsuccessful rate per defense. ``python benchmarks/task2.py
[--preset smoke|cpu|paper] [--set key=value ...]``; see docs/benchmarks.md."""

from evaluation import runner, task2

if __name__ == "__main__":
    runner.main("Task 2", task2.run, task2.TITLES, console=task2.console_tables)
