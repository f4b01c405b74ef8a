"""The command line shared by ``benchmarks/task1.py`` and ``benchmarks/task2.py``: choose a preset, run the task,
write the results folder, append the leaderboard, log to Weights & Biases and print the tables."""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Callable

from core import logs
from core.cache_dir import default_cache_dir
from evaluation import html_report, listening, report
from evaluation.preset import load_preset
from lit_modules.backends.catalog import require_available


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N."""
    try:
        rank, world = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: write I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= rank < world:
        raise ValueError(f"--shard: need 0 <= I < N, got {text!r}")
    return rank, world


def main(task: str, run: Callable, titles: dict[str, str], argv: list[str] | None = None,
         console: Callable[[dict], dict] | None = None) -> Path:
    """``console(tables) -> tables``: the compact view printed at the end (default: every table in full)."""
    parser = argparse.ArgumentParser(description=f"{task}: see docs/benchmarks.md")
    parser.add_argument("--preset", default="smoke", help="smoke | cpu | paper | a YAML path (default: smoke)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="preset overrides, e.g. query_budget=500 'backends=[conformer_ctc]'")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where run folders and the leaderboard go (default: <cache>/benchmarks)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="attack campaigns, detector checkpoints, activations (default: the project cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true",
                        help="every library's messages (default: one line per stage, known harmless noise hidden)")
    parser.add_argument("--debug", nargs="+", default=None, metavar="LOGGER",
                        help="these loggers at DEBUG, in the attacker and oracle processes too, e.g. attacks.carrier "
                             "(the carrier search's distance to the budget after each group); default: "
                             "$ASR_ROBUSTNESS_DEBUG")
    parser.add_argument("--no-wandb", action="store_true", help="do not log to Weights & Biases")
    parser.add_argument("--wandb-mode", choices=("offline", "online"), default=None,
                        help="Weights & Biases mode (default: $WANDB_MODE, else offline; online needs `wandb login`)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="attack-only mode for multi-process / multi-node runs on a shared cache: run shard I of N "
                             "of every cell's attack campaigns and exit; a final run without --shard evaluates")
    args = parser.parse_args(argv)
    logs.configure(args.verbose, debug=args.debug)
    preset = load_preset(args.preset, args.set)
    for backend in preset.backends:  # a missing pretrained model stops the run before any work, naming its fetch
        require_available(backend, preset.backend_options.get(backend, {}))
    cache_root = args.cache_dir or default_cache_dir()
    results_root = args.results_dir or cache_root / "benchmarks"
    out_dir = results_root / f"{task.replace(' ', '').lower()}-{preset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.perf_counter()
    if args.shard:
        rank, world = parse_shard(args.shard)
        run(preset, out_dir, cache_root, progress=not args.no_progress, shard=(rank, world))
        print(f"shard {rank}/{world}: campaigns done in {time.perf_counter() - started:.0f} s (cache: {cache_root})")
        return out_dir
    outcome = run(preset, out_dir, cache_root, progress=not args.no_progress)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    examples = outcome.get("examples", [])
    listening.write(examples, out_dir)
    text = report.write_run(out_dir, task, outcome["tables"], titles, preset.as_dict(), wall,
                            {"peak_memory_mb": peak_mb, "images": [str(p) for p in outcome["images"]]})
    report.append_leaderboard(results_root / "leaderboard.jsonl", out_dir / "results.json")
    page = html_report.build(out_dir)
    if not args.no_wandb:
        report.log_wandb(task, preset.as_dict(), outcome["tables"], outcome["images"], out_dir, examples,
                         mode=args.wandb_mode)
    if console is None:
        print(text)
    else:
        for name, rows in console(outcome["tables"]).items():
            print(f"\n{titles.get(name, name)}\n\n{report.markdown_table(rows)}")
        print(f"\nWall time {wall:.0f} s; every column, interval and table: results.md, report.html")
    highlights = listening.highlights(examples)
    if highlights:
        print("\nExamples (listen in the report):")
        for example in highlights:
            print(f"- {example.verdict()}")
    print(f"\nresults: {out_dir}  (peak memory {peak_mb:.0f} MB)")
    print(f"report: {page}")
    return out_dir
