"""Synthetic corpus generation speed: ``python benchmarks/corpus_generation.py [--utterances 4000]``.

Generates a fresh corpus in a temporary folder and prints utterances per second, hours of audio per
second, and the ratio against the reference measured on this project's 2-core machine (4,000 utterances
in 28 s, ~143 utt/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from datamodules.synthetic.corpus_config import SyntheticCorpusConfig
from datamodules.synthetic.generate import generate_corpus

REFERENCE_UTTERANCES_PER_SECOND = 4000 / 28.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=4000, help="training utterances to generate")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    speakers = max(1, args.utterances // 50)
    config = SyntheticCorpusConfig(
        train_speakers=speakers, train_utterances_per_speaker=max(1, args.utterances // speakers),
        dev_speakers=1, test_speakers=1, eval_utterances_per_speaker=1,
    )
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        summary = generate_corpus(config, folder, num_workers=args.workers, progress=False)
        wall = time.perf_counter() - started
    total = summary["statistics"]["total"]
    rate = total["utterances"] / wall
    result = {
        "utterances": total["utterances"],
        "hours": total["hours"],
        "wall_seconds": wall,
        "utterances_per_second": rate,
        "audio_seconds_per_wall_second": total["hours"] * 3600 / wall,
        "speed_vs_reference": rate / REFERENCE_UTTERANCES_PER_SECOND,
        "workers": summary["generation"]["workers"],
        "cpus": os.cpu_count(),
    }
    print(
        f"generated {result['utterances']} utterances ({result['hours']:.2f} h of audio) in {wall:.1f} s "
        f"with {result['workers']} workers on {result['cpus']} CPUs: {rate:.0f} utt/s, "
        f"{result['audio_seconds_per_wall_second']:.0f}x real time, "
        f"{result['speed_vs_reference']:.2f}x the 143 utt/s reference (incl. indexing and statistics)"
    )
    return result


if __name__ == "__main__":
    main()
