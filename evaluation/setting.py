"""What a preset means in objects: the clean source data, the attack mix, the system an oracle serves, the
adversarial data module of one (backend, goal, budget) cell, and the in-process backend the evaluators use."""

from __future__ import annotations

import sys
from pathlib import Path

from campaigns.campaign import GoalSpec
from campaigns.launcher import generate
from attacks.carrier import CarrierAttack
from attacks.constraints import PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.gaussian import GaussianNoise
from attacks.zeroth_order import ZerothOrderAttack
from datamodules.adversarial import AdversarialDataModule, AttackSpec
from datamodules.librispeech import LibriSpeechDataModule
from evaluation.preset import BenchmarkPreset


def attacks_of(preset: BenchmarkPreset, gaussian: bool = True, transfer: bool = False) -> list[AttackSpec]:
    """AG (benign control, label 0) and the preset's ``attacks`` (AE / AZ / AC, label 1, kept whether or not they
    met their goal, as in the paper's equally mixed detection set); ``transfer``: AE / AZ start from the preset's
    transfer start (the carrier attack has its own start)."""
    start = preset.transfer.attack_settings() if transfer else {}
    build = {"AE": lambda: EvolutionaryAttack(**preset.evolutionary, **start),
             "AZ": lambda: ZerothOrderAttack(**preset.zeroth_order, **start),
             "AC": lambda: CarrierAttack(**preset.carrier)}
    specs = [AttackSpec(GaussianNoise(preset.gaussian_snr_db), adversarial=False)] if gaussian else []
    return specs + [AttackSpec(build[name](), only_successful=False) for name in preset.attacks]


def transfer_prior_of(preset: BenchmarkPreset, goal: GoalSpec) -> dict | None:
    """``build_surrogate`` arguments of the attacker's transfer prior for campaigns of ``goal`` (None: no prior);
    trains the surrogates that are missing (here, in the main process, before any campaign starts)."""
    if not preset.transfer.surrogates or goal.kind not in preset.transfer.goals:
        return None
    return {"members": preset.transfer.members(train_missing=True)}


def backend_options(preset: BenchmarkPreset, backend: str, device: str | None = None) -> dict:
    """``load_backend`` options: the device, the preset's options for ``backend`` and, when not float32, the
    oracle's precision (left out at "32" so that campaigns cached before it existed keep their keys)."""
    precision = {} if preset.hardware.oracle_precision == "32" else {"precision": preset.hardware.oracle_precision}
    return {"device": device or preset.hardware.oracle_device, **precision, **preset.backend_options.get(backend, {})}


def system_of(preset: BenchmarkPreset, backend: str, defense: dict | None = None, detector: dict | None = None) -> dict:
    """Keyword arguments of ``lit_modules.target_system.build_system`` (built in the oracle's process)."""
    system = {"backend": backend, **backend_options(preset, backend)}
    if defense is not None:
        system["defense"] = defense
    if detector is not None:
        system["detector"] = detector
    return system


def budget_of(settings: dict) -> PerturbationBudget:
    return PerturbationBudget(**settings)


def adversarial_data(preset: BenchmarkPreset, backend: str, goal: GoalSpec, budget: dict, cache_root: Path,
                     batch_size: int = 8, progress: bool = True, gaussian: bool = True,
                     system: dict | None = None, attack_splits: tuple[str, ...] = ("train", "val", "test")
                     ) -> AdversarialDataModule:
    """The (backend, goal, budget) cell's examples (its campaigns run by ``generated``, or found in the cache).

    Raises ValueError before any attack when one of ``attack_splits`` would hold no source utterance (the val split
    may be empty when benign calibration sources stand in for it)."""
    prior = transfer_prior_of(preset, goal)
    calibration = preset.detectors.calibration_sources if gaussian and "val" in attack_splits else 0
    benign_train = preset.detectors.benign_train_sources if gaussian and "train" in attack_splits else 0
    data = AdversarialDataModule(
        source=LibriSpeechDataModule(**preset.source), source_stage=preset.source_stage,
        system=system or system_of(preset, backend), attacks=attacks_of(preset, gaussian, prior is not None),
        goal=goal, prior=prior,
        budget=budget_of(budget), query_budget=preset.query_budget, seed=preset.seed,
        split_fractions=preset.split_fractions, include_clean=True, batch_size=batch_size,
        cache_root=str(cache_root), progress=progress, attack_splits=attack_splits,
        calibration_sources=calibration, calibration_stage=preset.source_stage, benign_train_sources=benign_train,
        calibration_source=LibriSpeechDataModule(**{**preset.source, f"{preset.source_stage}_subset": None}),
        split_method=preset.split_method)
    sizes = data.split_sizes()
    empty = [stage for stage in attack_splits if not sizes[stage] and not (stage == "val" and calibration)]
    if empty:
        raise ValueError(f"the {' and '.join(empty)} split would hold no source utterance ({sizes} of "
                         f"{sum(sizes.values())} sources, split_fractions {list(preset.split_fractions)}, "
                         f"split_method {preset.split_method}): use more sources (source.test_subset), other "
                         f"split_fractions, or split_method=rank (exact shares)")
    return data



def generated(data: AdversarialDataModule) -> AdversarialDataModule:
    """``data`` after running (or finishing) its campaigns, set up for reading."""
    generate(data)
    data.setup("fit")
    return data


class BackendPool:
    """One in-process instance per backend (evaluators only; the attacked copy lives in the oracle's process)."""

    def __init__(self, preset: BenchmarkPreset) -> None:
        self.preset, self._backends = preset, {}

    def get(self, name: str):
        if name not in self._backends:
            from lit_modules.backends.registry import load_backend
            from lit_modules.target_system import prepare_system

            prepare_system(name, **backend_options(self.preset, name))  # checks / provisions before loading
            self._backends[name] = load_backend(name, **backend_options(self.preset, name))
        return self._backends[name]


def trainer_for(preset: BenchmarkPreset, workdir: Path, name: str, epochs: int, progress: bool = True,
                callbacks: list | None = None):
    """A seeded Lightning trainer for a benchmark's trained parts (BNN, SE) on the preset's hardware; CSV logs in
    ``workdir/name``; the caller saves the final checkpoint."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(preset.seed, workers=True, verbose=False)
    hardware = preset.hardware
    return L.Trainer(max_epochs=epochs, accelerator=hardware.accelerator, devices=hardware.devices,
                     strategy=hardware.strategy, precision=hardware.precision, default_root_dir=str(workdir),
                     logger=CSVLogger(str(workdir), name=name), enable_checkpointing=False,
                     enable_progress_bar=progress and sys.stderr.isatty(), enable_model_summary=False, log_every_n_steps=1,
                     callbacks=callbacks)
