"""Performance report: ``python benchmarks/perf.py [--backend conformer_ctc] [--utterances 8]``.

Prints, measured in one run: the oracle efficiency ratio (attack wall time / the backend's own time for the same
queries, against a separately timed reference and against the time the oracle's server spent on those queries;
``attack_strength.py`` on a few utterances), the detection overhead ratio (backend + BNN head with S = 32
samples / backend alone) and the activation-cache speed-up (``detector_costs.py``), and, from the benchmark
leaderboard, the wall time and peak memory of the latest run of each preset and task.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from core.cache_dir import default_cache_dir
from evaluation.preset import load_preset


def leaderboard_summary(path) -> list[str]:
    """Latest run per (task, preset): wall time and peak memory."""
    if not path.is_file():
        return [f"(no benchmark runs yet: {path} is missing; run benchmarks/task1.py)"]
    latest = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        latest[(record["task"], record["preset"]["name"])] = record
    rows = ["| task | preset | wall time s | peak memory MB | finished |", "|---|---|---:|---:|---|"]
    for (task, preset), r in sorted(latest.items()):
        rows.append(f"| {task} | {preset} | {r['wall_time_s']:.0f} | {r.get('peak_memory_mb', float('nan')):.0f} | "
                    f"{r['finished']} |")
    return rows


def run_script(name: str, arguments: list[str]) -> None:
    """Another benchmark script, in a process of its own (scripts never import each other); its output streams here."""
    subprocess.run([sys.executable, str(Path(__file__).with_name(name)), *arguments], check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="conformer_ctc")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--query-budget", type=int, default=200)
    parser.add_argument("--layer", default=None,
                        help="the layer the BNN head reads (default: the cpu preset's choice for the backend)")
    args = parser.parse_args(argv)
    layer = args.layer or load_preset("cpu").detectors.layer_for(args.backend)
    print("## Oracle efficiency (attack wall time / backend time for the same queries; 1.0 = no overhead; "
          "'vs served': the time the oracle's server spent on them)\n")
    run_script("attack_strength.py", ["--backends", args.backend, "--utterances", str(min(args.utterances, 3)),
                          "--query-budget", str(args.query_budget), "--early-budget", str(args.query_budget // 2),
                          "--goals", "untargeted", "--modes", "snr", "--basis", "bands"])
    print("\n## Detection overhead (S = 32) and activation-cache speed-up\n")
    run_script("detector_costs.py", ["--backends", args.backend, "--utterances", str(args.utterances)]
                        + (["--layer", layer] if layer else []))
    print("\n## Benchmark runs (latest per task and preset)\n")
    print("\n".join(leaderboard_summary(default_cache_dir() / "benchmarks" / "leaderboard.jsonl")))


if __name__ == "__main__":
    main()
