"""WER of every backend: ``python benchmarks/asr_wer.py [--backends ...] [--subset N]``.

For each backend: WER / CER on the synthetic (speaker-disjoint) test split, on the real recordings in
``../shared/data/real-speech-mini`` when present, and on the synthetic test split under white Gaussian noise at
``--snr`` dB (the paper's AG control, 10 dB), the real recordings too; seconds per utterance (``--real-only``: the
real recordings alone, clean and noisy). Whisper is also measured with a trimmed
encoder window (``--whisper-context``), with its speed-up. Small backends are trained first when no checkpoint
is cached (``--no-train`` to skip them instead), and measured with greedy decoding and with beam search plus the
character LM (the registry's default). Results: a Markdown table and ``<cache>/results/asr_wer.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jiwer
import torch
from tqdm.auto import tqdm

from attacks.perturbation import gaussian_noise_at_snr
from datamodules import LibriSpeechDataModule
from core.cache_dir import default_cache_dir
from lit_modules.backends.provisioning import provision
from lit_modules.backends.registry import (BACKEND_NAMES, DEFAULT_DECODING, TRAINED, default_language_model,
                                          load_backend)

REAL_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-speech-mini"


def evaluate(backend, loader, snr: float | None = None, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    references, hypotheses, seconds, count = [], [], 0.0, 0
    for batch in tqdm(loader, desc="  batches", leave=False):
        waveforms = batch.waveforms
        if snr is not None:
            waveforms = gaussian_noise_at_snr(waveforms, batch.lengths, snr, generator)
        started = time.perf_counter()
        hypotheses += backend.transcribe(waveforms, batch.lengths)
        seconds += time.perf_counter() - started
        references += batch.transcripts
        count += len(batch.transcripts)
    return {"wer": jiwer.wer(references, hypotheses), "cer": jiwer.cer(references, hypotheses),
            "seconds_per_utterance": seconds / max(1, count), "utterances": count,
            "examples": list(zip(references[:3], hypotheses[:3]))}


def decoding_variants(backends: list[str], whisper_context: float) -> list[tuple[str, str, dict]]:
    """(row label, backend name, ``load_backend`` options) for every row: the small trained backends greedy and with
    beam search + the character LM (passed explicitly: a backend's registry default may be either), Whisper with
    its full and its trimmed window."""
    variants = []
    for name in backends:
        if name in TRAINED:
            variants.append((f"{name} (greedy)", name, {"decoding": {"beam_size": 1}}))
            beam = {**DEFAULT_DECODING, "lm_path": str(default_language_model())}
            variants.append((f"{name} (beam {beam['beam_size']} + char LM)", name, {"decoding": beam}))
            continue
        variants.append((name, name, {}))
        if name == "whisper":
            variants.append((f"whisper (window >= {whisper_context:g} s)", name, {"min_context_s": whisper_context}))
    return variants


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=list(BACKEND_NAMES),
                        help=f"registry names ({', '.join(BACKEND_NAMES)}) or pretrained catalog names")
    parser.add_argument("--subset", type=int, default=None, help="synthetic test utterances (default: all)")
    parser.add_argument("--snr", type=float, default=10.0, help="Gaussian noise SNR in dB")
    parser.add_argument("--whisper-context", type=float, default=10.0, help="trimmed Whisper window, seconds")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-train", action="store_true", help="skip small backends without a checkpoint")
    parser.add_argument("--real-only", action="store_true", help="only the real recordings (clean and noisy)")
    args = parser.parse_args(argv)

    sets = {}
    if not args.real_only:
        synthetic = LibriSpeechDataModule(test_subset=args.subset, batch_size=args.batch_size, seed=0)
        synthetic.prepare_data()
        sets = {"synthetic test": (synthetic.test_dataloader, None),
                f"synthetic + noise {args.snr:g} dB": (synthetic.test_dataloader, args.snr)}
    if (REAL_SPEECH / "LibriSpeech" / "dev-clean").is_dir():
        real = LibriSpeechDataModule(root=str(REAL_SPEECH), test_splits=["dev-clean"], batch_size=args.batch_size)
        sets["real-speech-mini"] = (real.test_dataloader, None)
        sets[f"real-speech-mini + noise {args.snr:g} dB"] = (real.test_dataloader, args.snr)
    if not sets:
        parser.error(f"--real-only needs the real recordings at {REAL_SPEECH}")
    timed = next(iter(sets))

    results: dict[str, dict] = {}
    for label, name, options in decoding_variants(args.backends, args.whisper_context):
        print(f"{label}:", flush=True)
        try:
            if not args.no_train:
                provision(name)  # a small backend without a checkpoint is trained first (the explicit step)
            backend = load_backend(name, **options)
        except FileNotFoundError as error:
            print(f"  skipped: {error}")
            continue
        results[label] = {}
        for set_name, (loader, snr) in sets.items():
            results[label][set_name] = evaluate(backend, loader(), snr)
            r = results[label][set_name]
            print(f"  {set_name}: WER {100 * r['wer']:.1f} %  CER {100 * r['cer']:.1f} %  "
                  f"{r['seconds_per_utterance']:.3f} s/utt over {r['utterances']}", flush=True)

    header = "| backend | " + " | ".join(f"WER {s}" for s in sets) + f" | s / utt ({timed}) |"
    lines = [header, "|" + "---|" * (len(sets) + 2)]
    for label, by_set in results.items():
        cells = [f"{100 * by_set[s]['wer']:.1f} %" for s in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {by_set[timed]['seconds_per_utterance']:.3f} |")
    print("\n" + "\n".join(lines))
    full, trimmed = results.get("whisper"), next((v for k, v in results.items() if k.startswith("whisper (")), None)
    if full and trimmed:
        speedup = full[timed]["seconds_per_utterance"] / trimmed[timed]["seconds_per_utterance"]
        change = 100 * (trimmed[timed]["wer"] - full[timed]["wer"])
        print(f"\nWhisper window >= {args.whisper_context:g} s: {speedup:.2f}x faster than the 30 s window, "
              f"WER change {change:+.1f} points on {timed}")
    out = default_cache_dir() / "results" / "asr_wer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nresults: {out}")
    return results


if __name__ == "__main__":
    main()
