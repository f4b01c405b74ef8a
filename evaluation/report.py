"""A benchmark run's outputs: tables as Markdown (also printed), CSV and JSON; a leaderboard that accumulates runs
with their preset, seed and package versions; the same figures logged to Weights & Biases (offline unless
``WANDB_MODE`` says otherwise).

A table is a list of rows; a row maps column names to plain values or ``metrics.Estimate`` (a figure with its
95 % interval, written as ``value [low, high]`` in Markdown and as three columns in CSV / JSON).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from evaluation.metrics import INTERVALS, Estimate

log = logging.getLogger(__name__)

PACKAGES = ("torch", "torchaudio", "lightning", "transformers", "bayesian-torch", "pymoo", "jiwer", "torchmetrics")


def format_cell(value, digits: int = 1) -> str:
    if isinstance(value, Estimate):
        return value.format(digits)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], digits: int = 1) -> str:
    if not rows:
        return "(no rows)"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(format_cell(row.get(c), digits) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def values_only(rows: list[dict], columns: list[str]) -> list[dict]:
    """``rows`` cut to ``columns`` (those present), estimates without their intervals: a table for the console."""
    return [{c: (row[c].value if isinstance(row[c], Estimate) else row[c]) for c in columns if c in row}
            for row in rows]


def flat(row: dict) -> dict:
    """Estimates become ``name``, ``name_ci_low``, ``name_ci_high``."""
    out = {}
    for key, value in row.items():
        if isinstance(value, Estimate):
            out[key], out[f"{key}_ci_low"], out[f"{key}_ci_high"] = value.value, value.low, value.high
        else:
            out[key] = value
    return out


def publish_rows(rows: list[dict], name: str, digits: int = 2) -> Path:
    """A benchmark's result: print its rows as a Markdown table and write them to ``<cache>/results/<name>.json``."""
    from core.cache_dir import default_cache_dir

    print(markdown_table(rows, digits=digits))
    out = default_cache_dir() / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([flat(r) for r in rows], indent=2))
    return out


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def write_run(out_dir: Path, task: str, tables: dict[str, list[dict]], titles: dict[str, str], preset: dict,
              wall_time_s: float, extra: dict | None = None) -> str:
    """Write ``<table>.csv``, ``results.json`` and ``results.md`` into ``out_dir``; returns the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# {task} ({preset['name']} preset)", ""]
    for name, rows in tables.items():
        sections += [f"## {titles.get(name, name)}", "", markdown_table(rows), ""]
        flat_rows = [flat(r) for r in rows]
        if flat_rows:
            columns = list(dict.fromkeys(k for r in flat_rows for k in r))
            with (out_dir / f"{name}.csv").open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(flat_rows)
    sections.append(f"Wall time: {wall_time_s:.0f} s. Intervals: {INTERVALS}.")
    text = "\n".join(sections)
    (out_dir / "results.md").write_text(text + "\n")
    record = {"task": task, "preset": preset, "titles": titles, "wall_time_s": wall_time_s, "intervals": INTERVALS,
              "versions": package_versions(),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "output": str(out_dir),
              "tables": {name: [flat(r) for r in rows] for name, rows in tables.items()}, **(extra or {})}
    (out_dir / "results.json").write_text(json.dumps(record, indent=2, default=str))
    return text


def append_leaderboard(path: Path, record_file: Path) -> None:
    """One JSON line per finished run (its tables, preset, seed and package versions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(json.loads(record_file.read_text()), default=str) + "\n")


def log_wandb(task: str, preset: dict, tables: dict[str, list[dict]], images: list[Path], out_dir: Path,
              examples: list | None = None, mode: str | None = None) -> None:
    """Log the tables, the plots and the examples to listen to (``listening.ListeningExample``: a table with clean
    and adversarial ``wandb.Audio``) to Weights & Biases (offline by default, online with ``WANDB_MODE=online``;
    skipped with a warning if wandb is not installed). ``mode``: "offline" / "online" (default: ``$WANDB_MODE``, else
    offline)."""
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed: results are not logged to Weights & Biases")
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project="asr-adversarial-robustness", name=f"{task}-{preset['name']}", config=preset,
                     mode=mode or os.environ.get("WANDB_MODE", "offline"),
                     dir=str(out_dir), reinit=True)
    try:
        for name, rows in tables.items():
            flat_rows = [flat(r) for r in rows]
            if flat_rows:
                columns = list(dict.fromkeys(k for r in flat_rows for k in r))
                run.log({name: wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in flat_rows])})
        for image in images:
            run.log({image.stem: wandb.Image(str(image))})
        if examples:
            run.log({"examples": examples_table(wandb, examples)})
    finally:
        run.finish()


EXAMPLE_COLUMNS = ("cell", "goal", "attack", "utterance_id", "success", "snr_db", "mfcc_similarity", "queries",
                   "reference", "target", "transcript_clean", "transcript_adversarial", "detector", "detector_score",
                   "threshold")


def examples_table(wandb, examples: list):
    """A ``wandb.Table``: one row per example, the clean and adversarial audio as ``wandb.Audio`` (16 kHz)."""
    from core.audio_io import load_audio

    def audio(path: str):
        return wandb.Audio(load_audio(path).numpy(), sample_rate=16000) if Path(path).exists() else None

    return wandb.Table(columns=[*EXAMPLE_COLUMNS, "clean audio", "adversarial audio"],
                       data=[[getattr(e, c) for c in EXAMPLE_COLUMNS]
                             + [audio(e.clean_audio), audio(e.adversarial_audio)] for e in examples])
