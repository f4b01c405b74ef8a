"""What the preprocessing defenses cost benign users: ``python benchmarks/defense_costs.py [--backends ...]``.

For each backend and each defense (LS local smoothing, DS down-sampling, SE the self-attention U-Net enhancer):
the corpus WER on clean synthetic test speech with and without the defense, and the per-utterance latency of
defense + backend relative to the backend alone (median over utterances, one utterance at a time). SE needs an
enhancer checkpoint: ``--se-checkpoint``, else the newest ``se.ckpt`` the benchmarks trained under
``<cache>/detectors``; without one, SE is skipped with a message. Results: a Markdown table and
``<cache>/results/defense_costs.json``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from evaluation.timing import timed
from datamodules import LibriSpeechDataModule
from core.cache_dir import default_cache_dir
from evaluation.metrics import corpus_wer
from evaluation.report import publish_rows
from lit_modules.backends.provisioning import provision
from lit_modules.backends.registry import TRAINED, load_backend
from lit_modules.defenses.down_sampling import DownSampling
from lit_modules.defenses.enhancer_module import SpeechEnhancement
from lit_modules.defenses.local_smoothing import LocalSmoothing


def newest_enhancer(cache: Path) -> Path | None:
    found = sorted((cache / "detectors").glob("*/se.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=["conformer_ctc"])
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--se-checkpoint", type=Path, default=None)
    args = parser.parse_args(argv)
    data = LibriSpeechDataModule(test_subset=args.utterances, batch_size=1, seed=0)
    utterances = list(data.test_dataloader())
    defenses = {"none": None, "LS": LocalSmoothing(), "DS": DownSampling()}
    enhancer = args.se_checkpoint or newest_enhancer(default_cache_dir())
    if enhancer is not None and enhancer.is_file():
        defenses["SE"] = SpeechEnhancement(str(enhancer))
    else:
        print("SE skipped: no enhancer checkpoint (run benchmarks/task2.py, or pass --se-checkpoint)")
    rows = []
    for name in args.backends:
        provision(name)  # a small backend without a checkpoint is trained first (the explicit step)
        backend = load_backend(name, **({"decoding": {"beam_size": 1}} if name in TRAINED else {}))
        alone = [timed(lambda b=b: backend.transcribe(b.waveforms, b.lengths), 1) for b in utterances]
        references = [b.transcripts[0] for b in utterances]
        for defense_name, defense in defenses.items():
            def run(batch, defense=defense):
                waveforms, lengths = (batch.waveforms, batch.lengths) if defense is None else defense(
                    batch.waveforms, batch.lengths)
                return backend.transcribe(waveforms, lengths)[0]
            hypotheses = [run(b) for b in utterances]
            ratios = [timed(lambda b=b: run(b), 1) / a for b, a in zip(utterances, alone)]
            rows.append({"backend": name, "defense": defense_name, "n": len(utterances),
                         "clean WER % [95 % CI]": corpus_wer(references, hypotheses),
                         "latency / backend alone (median)": statistics.median(ratios)})
    publish_rows(rows, "defense_costs", digits=2)
    return {"rows": rows}


if __name__ == "__main__":
    main()
