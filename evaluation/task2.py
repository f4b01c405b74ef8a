"""Task 2 (paper Table 3): unsuccessful rate (UR %) of targeted "open the door" attacks, per defense.

Per backend and budget mode, AE and AZ attack the test split's source utterances (the detectors and the enhancer
learn from the other splits' speech) toward the target through the undefended system (cached campaigns). Then, for
each row:
- ``none``: UR = share of attacks that did not end with the target transcript;
- ``LS`` / ``DS`` / ``SE`` (non-adaptive): the attack's audio goes through the defended system; UR = share whose
  transcript is not the target;
- ``TD`` / ``BNN`` (non-adaptive): UR = share that failed or were flagged by the detector (calibrated on the
  untargeted Task 1 cell of the same backend and budget: the BNN never saw a targeted example);
- adaptive rows (``task2_adaptive``): new campaigns whose oracle serves the defended system (LS / DS / SE) or also
  answers the BNN detector's score (adaptive goal: target and evade); UR from their own records. TD has no
  adaptive row: it is not serializable into the oracle's process as a spec (it wraps a live backend).
The SE enhancer is trained (Lightning) on the untargeted cell's (perturbed, clean) pairs and reused on reruns.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from campaigns.campaign import GoalSpec
from campaigns.launcher import generate
from core import figures
from core.text import normalize_transcript
from datamodules.adversarial import AdversarialDataModule
from evaluation import listening, metrics, scoring
from evaluation.detector_suite import build_detectors, detector_workdir
from evaluation.preset import BenchmarkPreset
from evaluation.setting import BackendPool, adversarial_data, budget_of, generated, system_of, trainer_for
from datamodules.adversarial.datamodule import LabelledExample

log = logging.getLogger(__name__)

TITLES = {"unsuccessful_rate": 'UR % of targeted "open the door" attacks (paper Table 3; higher = more robust)',
          "unsuccessful_rate_long": "UR % per backend, with Wilson 95 % intervals"}
DETECTOR_ROWS = {"TD": "TD", "BNN": "BNN-supervised"}


def train_enhancer(preset: BenchmarkPreset, data: AdversarialDataModule, workdir: Path, progress: bool) -> Path:
    """The SE defense's enhancer on (perturbed, clean) pairs of ``data`` (reused when its checkpoint exists)."""
    from datamodules.adversarial.pairs import EnhancementPairsDataModule
    from lit_modules.defenses.enhancer_module import EnhancerModule

    checkpoint = workdir / "se.ckpt"
    if checkpoint.is_file():
        return checkpoint
    trainer = trainer_for(preset, workdir, "se", preset.se_epochs, progress)
    pairs = EnhancementPairsDataModule(data, batch_size=8, seed=preset.seed)
    trainer.fit(EnhancerModule(optimizer=functools.partial(torch.optim.Adam, lr=1e-3)), datamodule=pairs)
    trainer.save_checkpoint(str(checkpoint))
    return checkpoint


def defense_spec(name: str, se_checkpoint: Path | None) -> dict:
    if name == "LS":
        return {"class_path": "lit_modules.defenses.local_smoothing.LocalSmoothing"}
    if name == "DS":
        return {"class_path": "lit_modules.defenses.down_sampling.DownSampling"}
    if name == "SE":
        return {"class_path": "lit_modules.defenses.enhancer_module.SpeechEnhancement",
                "init_args": {"checkpoint": str(se_checkpoint)}}
    raise ValueError(f"{name} is not a preprocessing defense")


def build_defense(spec: dict) -> torch.nn.Module:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--defense", type=torch.nn.Module)
    return parser.instantiate(parser.parse_object({"defense": spec})).defense.eval()


def adversarial_examples(data: AdversarialDataModule) -> dict[str, tuple[list[LabelledExample], np.ndarray]]:
    """Per attack: its examples (of this cell's sources, all splits) and whether each reached the target."""
    out = {}
    for spec, cache in data.campaigns():
        records = data.attacked_records(cache)
        out[spec.attack.name] = (
            [LabelledExample(str(cache.directory / r["audio"]), 1, spec.attack.name, r["reference"], r["utterance_id"],
                             f"{r['utterance_id']}/{cache.directory.name}") for r in records],
            np.array([bool(r["success"]) for r in records]))
    return out


def defense_outcomes(defenses: list[str], examples: list[LabelledExample], success: np.ndarray, backend,
                     detectors: dict, transform_of, target: str, seed: int = 0) -> dict[str, tuple]:
    """What each defense makes of one attack's examples: ``{defense: (reached [N], flagged [N] or None)}``.

    ``none``: reached = the attack's own success; a detector row (``TD`` / ``BNN``): the same, and flagged = its
    score >= its calibrated threshold; a preprocessing defense (``transform_of(name)``): reached = the backend, hearing
    the audio through the defense, outputs ``target``."""
    out: dict[str, tuple] = {}
    for defense in defenses:
        if defense == "none":
            out[defense] = (success, None)
        elif defense in DETECTOR_ROWS:
            calibrated = detectors[DETECTOR_ROWS[defense]]
            torch.manual_seed(seed)  # Monte Carlo detectors: the same samples on every run
            values = scoring.scores(calibrated.detector, examples, backend.sample_rate)
            out[defense] = (success, values >= calibrated.threshold)
        else:
            heard = scoring.transcripts(backend, examples, defense=transform_of(defense))
            out[defense] = (np.array([normalize_transcript(t) == target for t in heard]), None)
    return out


def ur_rows(budget: str, setting: str, attack: str, backend: str, outcomes: dict[str, tuple]) -> list[dict]:
    """Long-format rows, one per defense: UR % = share of attacks that did not reach the target unflagged."""
    return [{"budget": budget, "setting": setting, "attack": attack, "defense": defense, "backend": backend,
             "n": len(reached), "UR %": metrics.unsuccessful_rate(reached, flagged)}
            for defense, (reached, flagged) in outcomes.items()]


def run(preset: BenchmarkPreset, out_dir: Path, cache_root: Path, progress: bool = True,
        shard: tuple[int, int] | None = None) -> dict:
    """Run Task 2; returns {"tables": {...}, "images": [...], "examples": [...]} (``listening`` examples).
    ``shard`` (rank, world): only run that shard of the
    campaigns that need no trained model (untargeted reference cells, non-adaptive targeted) and return nothing."""
    pool = BackendPool(preset)
    target = normalize_transcript(GoalSpec("targeted").target)
    long_rows: list[dict] = []
    images: list[Path] = []
    listen_to: list[listening.ListeningExample] = []
    for backend_name in preset.backends:
        backend = None if shard is not None else pool.get(backend_name)
        for budget_settings in preset.task2_budgets:
            budget = budget_of(budget_settings).label
            log.info("Task 2: %s / %s", backend_name, budget)
            reference = adversarial_data(preset, backend_name, GoalSpec("untargeted"), budget_settings,
                                         cache_root / "adversarial", preset.detectors.bnn_batch_size, progress)
            if shard is not None:
                generate(reference, *shard)
                generate(adversarial_data(preset, backend_name, GoalSpec("targeted"), budget_settings,
                                          cache_root / "adversarial", preset.detectors.bnn_batch_size, progress,
                                          gaussian=False, attack_splits=("test",)), *shard)
                continue
            generated(reference)
            workdir = detector_workdir(cache_root, preset, reference, budget)
            wanted = tuple(DETECTOR_ROWS[d] for d in preset.task2_defenses if d in DETECTOR_ROWS)
            detectors = build_detectors(preset, backend_name, backend, reference, workdir, wanted, progress)
            se_checkpoint = (train_enhancer(preset, reference, workdir, progress)
                             if "SE" in preset.task2_defenses else None)

            targeted = adversarial_data(preset, backend_name, GoalSpec("targeted"), budget_settings,
                                        cache_root / "adversarial", preset.detectors.bnn_batch_size, progress,
                                        gaussian=False, attack_splits=("test",))
            generated(targeted)
            cell = f"{backend_name} / {budget}"
            listen_to += listening.collect(cell, targeted, {s.utterance_id for s in targeted.sources()}, detectors,
                                           preset.seed, target)
            histories = {spec.attack.name: [r["history"] for r in targeted.attacked_records(cache)]
                         for spec, cache in targeted.campaigns()}
            images.append(figures.success_curves(histories, preset.query_budget,
                                               out_dir / f"success_targeted_{backend_name}_{budget}.png",
                                               f"targeted \"{target}\", {cell}"))
            for attack, (examples, success) in adversarial_examples(targeted).items():
                outcomes = defense_outcomes(
                    preset.task2_defenses, examples, success, backend, detectors,
                    lambda name: build_defense(defense_spec(name, se_checkpoint)), target, preset.seed)
                long_rows += ur_rows(budget, "non-adaptive", attack, backend_name, outcomes)
            if preset.task2_adaptive:
                for defense in preset.task2_defenses:
                    if defense in ("none", "TD"):
                        continue
                    adaptive_goal = GoalSpec("targeted", adaptive=defense == "BNN")
                    system = (system_of(preset, backend_name, detector=detectors["BNN-supervised"].spec)
                              if defense == "BNN" else
                              system_of(preset, backend_name, defense=defense_spec(defense, se_checkpoint)))
                    defended = adversarial_data(preset, backend_name, adaptive_goal, budget_settings,
                                                cache_root / "adversarial", preset.detectors.bnn_batch_size,
                                                progress, gaussian=False, system=system, attack_splits=("test",))
                    generated(defended)
                    for attack, (examples, success) in adversarial_examples(defended).items():
                        long_rows += ur_rows(budget, "adaptive", attack, backend_name, {defense: (success, None)})
    return {"tables": {"unsuccessful_rate": wide(long_rows, preset.backends), "unsuccessful_rate_long": long_rows},
            "images": images, "examples": listen_to}


def console_tables(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What the console shows: UR % per (backend, budget, setting, attack) with one column per defense."""
    rows: dict[tuple, dict] = {}
    for r in tables["unsuccessful_rate_long"]:
        key = (r["backend"], r["budget"], r["setting"], r["attack"])
        row = rows.setdefault(key, {"backend": r["backend"], "budget": r["budget"], "setting": r["setting"],
                                    "attack": r["attack"], "n": r["n"]})
        row[r["defense"]] = r["UR %"].value
    return {"unsuccessful_rate": list(rows.values())}


def wide(long_rows: list[dict], backends: list[str]) -> list[dict]:
    """Table 3's layout: one row per (budget, setting, attack + defense), one column per backend, and the average."""
    rows: dict[tuple, dict] = {}
    for r in long_rows:
        name = r["attack"] if r["defense"] == "none" else f"{r['attack']} + {r['defense']}"
        key = (r["budget"], r["setting"], name)
        rows.setdefault(key, {"budget": r["budget"], "setting": r["setting"], "evaluation": name})[r["backend"]] = (
            r["UR %"])
    for row in rows.values():
        values = [row[b].value for b in backends if b in row and np.isfinite(row[b].value)]
        row["Avg."] = float(np.mean(values)) if values else float("nan")
    return list(rows.values())
