"""Summaries of cached attack records: success rate, queries, SNR, l_inf, MFCC similarity (pure functions)."""

from __future__ import annotations

import math

import numpy as np


def summarize(records: list[dict]) -> dict:
    """Aggregate manifest records of one attack configuration."""
    if not records:
        return {"examples": 0}
    success = np.array([r["success"] for r in records], bool)
    finite_snr = [r["snr_db"] for r in records if math.isfinite(r["snr_db"])]
    successful_queries = [r["queries"] for r in records if r["success"]]
    return {
        "examples": len(records),
        "success_rate": float(success.mean()),
        "mean_queries": float(np.mean([r["queries"] for r in records])),
        "median_queries_successful": float(np.median(successful_queries)) if successful_queries else None,
        "mean_snr_db": float(np.mean(finite_snr)) if finite_snr else None,
        "max_linf": float(max(r["linf"] for r in records)),
        "min_mfcc_similarity": float(min(r["mfcc_similarity"] for r in records)),
        "mean_wall_time_s": float(np.mean([r["wall_time_s"] for r in records])),
    }


def summary_markdown(summaries: dict[str, dict]) -> str:
    """One Markdown row per configuration."""
    header = "| configuration | n | success % | mean queries | median queries (successes) | mean SNR dB | max l_inf | min MFCC sim | s / utt |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in summaries.items():
        if not s.get("examples"):
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        lines.append(
            f"| {name} | {s['examples']} | {100 * s['success_rate']:.1f} | {s['mean_queries']:.0f} | "
            f"{fmt(s['median_queries_successful'], '.0f')} | {fmt(s['mean_snr_db'], '.1f')} | {s['max_linf']:.4f} | "
            f"{s['min_mfcc_similarity']:.3f} | {s['mean_wall_time_s']:.1f} |"
        )
    return "\n".join(lines)
