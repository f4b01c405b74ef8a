"""How well a transfer prior points: ``python benchmarks/prior_alignment.py --surrogates conformer_ctc:1 [options]``.

A measurement, not an attack: it takes the *attacked* model's true gradient (white-box, in this process) to grade
the attacker's surrogate. For each source utterance and goal (the NLL of "open the door", the NLL of the clean
transcript) it maps both models' waveform gradients into the attack's latent (``basis.adjoint``) and reports their
cosine, next to what plain zeroth-order estimation reaches with q random directions in d dimensions (sqrt(q / d)).
P-RGF (``attacks.zeroth_order``) gains when the prior's cosine is well above that. Results: a Markdown table and
``<cache>/results/prior_alignment.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics

import torch

from attacks.goals import TARGET_PHRASE
from attacks.subspace import make_basis
from datamodules import LibriSpeechDataModule
from core.cache_dir import default_cache_dir
from core.text import normalize_transcript
from evaluation.report import markdown_table
from lit_modules.backends.provisioning import provision
from lit_modules.backends.registry import TRAINED, load_backend
from lit_modules.surrogate import build_surrogate, prior_members


def latent_gradient(model, clean: torch.Tensor, text: str, basis, weights) -> torch.Tensor:
    """A backend's (or a surrogate ensemble's) d NLL(text) / d latent at the clean point, [d]."""
    gradient = (model.gradients if hasattr(model, "gradients") else model.score_gradient)(
        clean[None], torch.tensor([clean.numel()]), [text])
    return basis.adjoint(gradient, weights)[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="conformer_ctc", help="the attacked model")
    parser.add_argument("--prior-checkpoint", nargs="+", default=None, help="the attacker's surrogate checkpoint(s)")
    parser.add_argument("--prior-backend", default="conformer_ctc")
    parser.add_argument("--surrogates", nargs="+", default=None, metavar="BACKEND:SEED",
                        help="the attacker's own models (an ensemble when several), e.g. conformer_ctc:1 conformer_ctc:2")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--max-duration", type=float, default=4.0)
    parser.add_argument("--basis", default="bands", choices=["lowrate", "bands"])
    parser.add_argument("--directions", type=int, default=16, help="q of the plain estimate compared against")
    args = parser.parse_args(argv)
    provision(args.backend)  # a small backend without a checkpoint is trained first (the explicit step)
    victim = load_backend(args.backend, **({"decoding": {"beam_size": 1}} if args.backend in TRAINED else {}))
    members = prior_members(args.prior_backend, args.prior_checkpoint, args.surrogates)
    if not members:
        raise SystemExit("name the surrogate: --prior-checkpoint PATH ... or --surrogates BACKEND:SEED ...")
    surrogate = build_surrogate(members=members)
    if victim.fingerprint() in surrogate.describe()["fingerprints"]:
        raise SystemExit("the surrogate is the attacked model itself: nothing to measure")
    basis = make_basis(args.basis)
    data = LibriSpeechDataModule(test_subset=args.utterances, max_duration=args.max_duration, seed=0, batch_size=1)
    cosines: dict[str, list[float]] = {"targeted": [], "untargeted": []}
    dimensions = []
    for batch in data.test_dataloader():
        clean = batch.waveforms[0, : int(batch.lengths[0])]
        weights = basis.shape(clean)
        dimensions.append(basis.dimension(clean.numel()))
        transcript = normalize_transcript(victim.transcribe(clean[None], batch.lengths[:1])[0]) or "A"
        for goal, text in (("targeted", TARGET_PHRASE), ("untargeted", transcript)):
            a = latent_gradient(victim, clean, text, basis, weights)
            b = latent_gradient(surrogate, clean, text, basis, weights)
            cosines[goal].append(float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
    baseline = math.sqrt(args.directions / statistics.mean(dimensions))
    rows = [{"goal": goal, "n": len(values), "cosine (mean)": statistics.mean(values), "min": min(values),
             "max": max(values), f"plain AZ, q = {args.directions} (sqrt(q / d))": baseline}
            for goal, values in cosines.items()]
    print(markdown_table(rows, digits=3))
    out = default_cache_dir() / "results" / "prior_alignment.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "cosines": cosines, "args": vars(args)}, indent=2))
    return {"rows": rows}


if __name__ == "__main__":
    main()
