"""Statistics of any LibriSpeech-layout corpus: utterances, speakers, hours and vocabulary per split."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from datamodules.librispeech_index import Utterance, available_splits, scan_split


@dataclass(frozen=True)
class SplitStatistics:
    split: str
    utterances: int
    speakers: int
    hours: float
    vocabulary: int
    mean_duration_s: float


def split_statistics(split: str, utterances: list[Utterance]) -> SplitStatistics:
    seconds = sum(u.duration for u in utterances)
    return SplitStatistics(
        split=split,
        utterances=len(utterances),
        speakers=len({u.speaker_id for u in utterances}),
        hours=seconds / 3600.0,
        vocabulary=len({w for u in utterances for w in u.transcript.split()}),
        mean_duration_s=seconds / max(1, len(utterances)),
    )


def corpus_statistics(root: str, splits: list[str] | None = None) -> dict:
    """Per-split statistics plus totals (the vocabulary total is the union over splits)."""
    splits = splits or available_splits(root)
    per_split, words, speakers = [], set(), set()
    for split in splits:
        utterances, _ = scan_split(root, split)
        per_split.append(split_statistics(split, utterances))
        words.update(w for u in utterances for w in u.transcript.split())
        speakers.update(u.speaker_id for u in utterances)
    return {
        "splits": [asdict(s) for s in per_split],
        "total": {
            "utterances": sum(s.utterances for s in per_split),
            "speakers": len(speakers),
            "hours": sum(s.hours for s in per_split),
            "vocabulary": len(words),
        },
    }


def format_statistics(stats: dict) -> str:
    """A Markdown table of ``corpus_statistics`` output."""
    lines = ["| split | utterances | speakers | hours | mean s | vocabulary |", "|---|---:|---:|---:|---:|---:|"]
    for s in stats["splits"]:
        lines.append(
            f"| {s['split']} | {s['utterances']} | {s['speakers']} | {s['hours']:.3f} | "
            f"{s['mean_duration_s']:.2f} | {s['vocabulary']} |"
        )
    t = stats["total"]
    lines.append(f"| **total** | {t['utterances']} | {t['speakers']} | {t['hours']:.3f} | | {t['vocabulary']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Statistics of a LibriSpeech-layout corpus.")
    parser.add_argument("root", help="folder holding LibriSpeech/<split>/... (or the LibriSpeech folder)")
    parser.add_argument("--splits", nargs="*", default=None, help="split names (default: all found)")
    args = parser.parse_args(argv)
    print(format_statistics(corpus_statistics(args.root, args.splits)))


if __name__ == "__main__":
    main()
