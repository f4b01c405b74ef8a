"""``python -m datamodules.synthetic``: generate (or reuse) the synthetic corpus and print its statistics."""

from __future__ import annotations

import argparse
import dataclasses

from core import logs
from datamodules.corpus_statistics import format_statistics
from datamodules.synthetic.corpus_config import SyntheticCorpusConfig
from datamodules.synthetic.generate import default_corpus_dir, generate_corpus


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="corpus folder (default: the cache, named by the config)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--brief", action="store_true", help="one line instead of the statistics table")
    for field in dataclasses.fields(SyntheticCorpusConfig):
        kind = float if field.name in ("command_fraction", "noise_snr_db") else int
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=field.default)
    return parser


def main(argv: list[str] | None = None) -> dict:
    logs.configure(logs.verbose())
    args = build_parser().parse_args(argv)
    config = SyntheticCorpusConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticCorpusConfig)})
    out = args.out or default_corpus_dir(config)
    summary = generate_corpus(config, out, num_workers=args.workers)
    generation = summary["generation"]
    if args.brief:
        total = summary["statistics"]["total"]
        print(f"synthetic corpus: {total['utterances']:,} utterances, {total['speakers']} speakers, "
              f"{total['hours']:.2f} h at {summary['root']}")
        return summary
    print(f"\nSynthetic corpus (LibriSpeech layout) at {summary['root']}")
    print(format_statistics(summary["statistics"]))
    rate = (generation["written"] / generation["seconds"]) if generation["seconds"] > 0 else float("nan")
    print(
        f"\nGenerated {generation['written']} new utterances ({generation['reused']} reused) in "
        f"{generation['seconds']:.1f} s with {generation['workers']} workers ({rate:.0f} utt/s) "
        "[figures from the run that built the corpus]"
    )
    return summary


if __name__ == "__main__":
    main()
