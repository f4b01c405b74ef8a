"""TD on spliced two-utterance inputs: ``python benchmarks/td_splicing.py [--backends ...] [--pairs 20]``.

The temporal-dependency detector asks whether the transcript of the first k of an input agrees with the start of
the whole input's transcript. A splice [A; B] of two test utterances is consistent when both parts have the same
level (the prefix holds A and a little of B, and so does the whole's transcript), but not when A is much quieter:
recognizers that normalize features over the whole utterance (the small backends' front-end) let B set the
statistics, so the whole input's transcript of A differs from what A's own prefix gives. For each backend and each
gain of A (0, -10, -20 dB): TD scores of the clean utterances vs the splices, and the AUC that separates them.
Results: a Markdown table and ``<cache>/results/td_splicing.json``.
"""

from __future__ import annotations

import argparse

import torch

from datamodules import LibriSpeechDataModule
from core.batch import pad_waveforms
from evaluation.metrics import detection
from evaluation.report import publish_rows
from lit_modules.backends.provisioning import provision
from lit_modules.backends.registry import TRAINED, load_backend
from lit_modules.detectors.temporal_dependency import TemporalDependencyDetector


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=["conformer_ctc"])
    parser.add_argument("--pairs", type=int, default=20, help="clean utterances and splices per cell")
    parser.add_argument("--gains-db", type=float, nargs="*", default=[0.0, -10.0, -20.0])
    parser.add_argument("--k", type=float, default=0.5)
    parser.add_argument("--metric", default="cer", choices=["cer", "wer", "lcp"])
    args = parser.parse_args(argv)
    data = LibriSpeechDataModule(test_subset=2 * args.pairs, batch_size=1, seed=0)
    waveforms = [batch.waveforms[0, : int(batch.lengths[0])] for batch in data.test_dataloader()]
    first, second = waveforms[: args.pairs], waveforms[args.pairs :]
    rows = []
    for name in args.backends:
        provision(name)  # a small backend without a checkpoint is trained first (the explicit step)
        backend = load_backend(name, **({"decoding": {"beam_size": 1}} if name in TRAINED else {}))
        detector = TemporalDependencyDetector(backend, k=args.k, metric=args.metric)
        clean = detector.score(*pad_waveforms(first))
        for gain_db in args.gains_db:
            gain = 10 ** (gain_db / 20)
            spliced = detector.score(*pad_waveforms([torch.cat([gain * a, b]) for a, b in zip(first, second)]))
            labels = [0] * len(clean) + [1] * len(spliced)
            rows.append({"backend": name, "gain of A (dB)": gain_db, "n": args.pairs,
                         "TD clean (mean)": float(clean.mean()), "TD spliced (mean)": float(spliced.mean()),
                         "AUC % [95 % CI]": detection(torch.cat([clean, spliced]), labels, 0.5)["auc"]})
    publish_rows(rows, "td_splicing", digits=3)
    return {"rows": rows}


if __name__ == "__main__":
    main()
