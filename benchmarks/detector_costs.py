"""Costs of the BNN detector: ``python benchmarks/detector_costs.py [--backends ...] [--utterances N]``.

- Detection overhead per utterance: (transcript + the detector layer's activations from the same forward pass +
  the Flipout head with S Monte Carlo samples) / (transcript alone), one utterance at a time as a deployed system
  runs. Target <= 1.10: only the head is sampled, never the backbone.
- Activation-cache speed-up: one training epoch of the head (forward + backward) computing the backbone's
  activations every time, versus reading them from the memory-mapped cache.
The head's cost does not depend on its trained weights, so a freshly initialized head is timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

import torch

from datamodules import LibriSpeechDataModule
from core.cache_dir import default_cache_dir
from evaluation.timing import timed
from lit_modules.detectors.activation_cache import ActivationCache
from lit_modules.backends.registry import TRAINED
from lit_modules.detectors.bnn_module import BNNDetectorModule


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=["conformer_ctc"])
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--layer", default=None, help="the backend layer feeding the head (default: the backend's last)")
    parser.add_argument("--greedy", action="store_true",
                        help="greedy decoding for the small trained backends (default: their beam search + LM)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    data = LibriSpeechDataModule(test_subset=args.utterances, batch_size=8, seed=0)
    batches = list(data.test_dataloader())
    rows = []
    for name in args.backends:
        options = {"decoding": {"beam_size": 1}} if args.greedy and name in TRAINED else None
        module = BNNDetectorModule(backend=name, backend_options=options, layer=args.layer,
                                   mc_samples=args.samples).eval()
        backend, layer = module.backend, module.layer
        ratios = []
        for batch in batches:
            for i in range(len(batch.lengths)):
                x, n = batch.waveforms[i : i + 1, : int(batch.lengths[i])], batch.lengths[i : i + 1]
                alone = timed(lambda: backend.transcribe(x, n))

                def detect():
                    _, hidden, frames = backend.transcribe_with_hidden(x, n, layer)
                    module.score_features(hidden, frames, args.samples)

                ratios.append(timed(detect) / alone)
        # cache speed-up: one head epoch over the batches, backbone recomputed vs cached
        optimizer = torch.optim.Adam(module.head.parameters(), lr=1e-3)

        def head_step(hidden, frames):
            logits, kl = module.head(hidden, frames)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) + kl * 1e-6
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def epoch_recomputing():
            for batch in batches:
                hidden, frames = backend.hidden(batch.waveforms, batch.lengths, layer)
                head_step(hidden, frames)

        with tempfile.TemporaryDirectory() as folder:
            cache = ActivationCache(folder)
            ids = [[f"{b}-{u}" for u in batch.utterance_ids] for b, batch in enumerate(batches)]
            for batch, keys in zip(batches, ids):  # fill the cache once
                cache.get_batch(keys, lambda idx, b=batch: backend.hidden(b.waveforms[idx], b.lengths[idx], layer))

            def epoch_cached():
                for keys in ids:
                    head_step(*cache.get_batch(keys, lambda idx: (_ for _ in ()).throw(RuntimeError("cache miss"))))

            recompute, cached = timed(epoch_recomputing, 1), timed(epoch_cached, 1)
        rows.append({"backend": name + (" (greedy)" if options else ""), "layer": layer, "samples": args.samples, "utterances": len(ratios),
                     "overhead_median": statistics.median(ratios), "overhead_mean": statistics.mean(ratios),
                     "epoch_recomputing_s": recompute, "epoch_cached_s": cached, "cache_speedup": recompute / cached})
    lines = ["| backend | layer | S | n | overhead (median) | overhead (mean) | head epoch, recomputing s | cached s | speed-up |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['layer']} | {r['samples']} | {r['utterances']} | {r['overhead_median']:.3f} | "
                     f"{r['overhead_mean']:.3f} | {r['epoch_recomputing_s']:.2f} | {r['epoch_cached_s']:.3f} | "
                     f"{r['cache_speedup']:.1f}x |")
    print("\n".join(lines))
    out = default_cache_dir() / "results" / "detector_costs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    return {"rows": rows}


if __name__ == "__main__":
    main()
