"""Benchmark presets (``configs/benchmarks/{smoke,cpu,paper}.yaml``): what Task 1 and Task 2 run, typed and checked.

A preset names the backends, the clean source data (``LibriSpeechDataModule`` arguments: no ``root`` = the
synthetic corpus), the attack settings, the detectors' training and the Lightning hardware settings. Unknown or
mistyped keys are errors that name the key (jsonargparse validates against these dataclasses).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "benchmarks"
DEFENSES = ("none", "LS", "DS", "SE", "TD", "BNN")
ADAPTIVE_DETECTORS = ("BNN-supervised", "BNN-unsupervised")  # Task 1 detectors an attacker can query
ATTACKS = ("AE", "AZ", "AC")  # the adversarial attack families a preset can run (AG, the benign control, always runs)
DICT_FIELDS = ("backend_options", "source", "evolutionary", "zeroth_order", "carrier", "detectors.bnn",
               "detectors.bnn_heads")  # free-form dicts: an override reaches one key inside
BNN_HEADS = {"supervised": {"class_path": "lit_modules.detectors.detector_heads.SupervisedFlipoutHead"},
             "unsupervised": {"class_path": "lit_modules.detectors.detector_heads.UnsupervisedProbeHead"}}


@dataclass
class DetectorSettings:
    """TD, the transform-consistency detector and the BNN (both modes): how they are built, trained and calibrated."""

    td_k: float = 0.5
    td_metric: str = "cer"
    consistency_transform: str = "local_smoothing"  # or down_sampling
    bnn_layer: str | dict[str, str] | None = None  # the backend layer feeding both BNN modes: one name for every
    # backend, or {backend: layer}; None / a backend not named = the backend's last layer (docs/detector.md: inner
    # layers detect far better on the small backends)
    bnn: dict[str, Any] = field(default_factory=lambda: {"kl_weight": 0.01, "kl_warmup_steps": 0})  # overrides of
    # configs/detectors/bnn.yaml's init_args (the module python train.py fit --config configs/bnn.yaml trains), e.g.
    # {mc_samples: 32, kl_weight: 0.01, optimizer: {init_args: {lr: 0.01}}}; a preset's block replaces this default
    # whole; backend, layer, head and folders are set per cell
    bnn_heads: dict[str, dict] = field(default_factory=lambda: dict(BNN_HEADS))  # the head of each BNN detector
    # (BNN-supervised, BNN-unsupervised): {class_path, init_args} of a DetectorHead
    bnn_epochs: int = 30
    bnn_batch_size: int = 16
    target_fpr: float = 0.05
    fpr_per_kind: bool = False  # hold target_fpr on each benign kind (clean, AG) instead of on both pooled
    calibration_sources: int = 0  # extra benign-only validation sources (clean + AG, from the unattacked rest of the
    # source stage) for the thresholds: 5 % of a few benign inputs is none of them (docs/detector.md)
    benign_train_sources: int = 0  # extra benign-only training sources (clean + AG) for the BNN (docs/detector.md)
    cross_attack: list[list[str]] = field(default_factory=list)  # Task 1's cross-attack matrix: one supervised BNN
    # per list, trained on those attack families only (e.g. [[AE], [AZ], [AE, AZ]]), each tested on every family


    def layer_for(self, backend: str) -> str | None:
        """The BNN's layer on ``backend`` (None: the backend's last)."""
        return self.bnn_layer.get(backend) if isinstance(self.bnn_layer, dict) else self.bnn_layer


@dataclass
class TransferSettings:
    """The attacker's transfer prior (``attacks.transfer_prior``): models of its own, never the attacked one.

    surrogates: ``"backend:seed[:corpus]"`` members of the ensemble, each the backend's recipe trained with that
        seed on the synthetic corpus of that seed (default 1, not the victim's 0; ``configs/asr/surrogate.yaml``;
        trained on first use); empty = no prior (the presets' default: docs/attacks.md measures why).
    goals: which campaigns get the prior (``untargeted``, ``targeted``).
    steps, candidates, learning_rate: the transfer start of AE and AZ (``ZerothOrderAttack.transfer_*``).
    """

    surrogates: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=lambda: ["targeted"])
    steps: int = 300
    candidates: int = 8
    learning_rate: float = 0.1

    def members(self, train_missing: bool = False) -> list[dict]:
        """``build_surrogate``'s ``members``: one ``{backend, seed}`` per surrogate (``train_missing``: train them)."""
        from lit_modules.surrogate import surrogate_members

        return surrogate_members(self.surrogates, train_missing)

    def attack_settings(self) -> dict:
        """The transfer start's arguments of ``ZerothOrderAttack`` / ``EvolutionaryAttack``."""
        return {"transfer_steps": self.steps, "transfer_candidates": self.candidates,
                "transfer_learning_rate": self.learning_rate}


@dataclass
class HardwareSettings:
    """Lightning settings for the trained parts (BNN, SE): ``accelerator``, ``devices``, ``strategy``, ``precision``."""

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    oracle_device: str = "cpu"  # where the attacked system runs (cuda for GPU runs)
    oracle_precision: str = "32"  # its forward passes: "32", or "bf16" / "16" under autocast (GPU runs)


@dataclass
class BenchmarkPreset:
    """Args:
        name: the preset's name (results folders and the leaderboard use it).
        backends: registry names (``conformer_ctc``, ``rnnt``, ``wav2vec2_ctc``, ``whisper``, ``pocketsphinx``).
        backend_options: per backend, options for ``load_backend`` (e.g. ``{whisper: {min_context_s: 10}}``).
        source: ``LibriSpeechDataModule`` arguments for the clean utterances; ``source_stage`` which stage to attack.
        split_fractions: train / val / test shares of the source utterances (detectors train / calibrate / test);
            split_method: "hash" (each source on its own; the shares hold on average) or "rank" (exact shares: for
            presets with a handful of sources, where hashing can leave a split empty).
        query_budget: queries per attacked utterance; gaussian_snr_db: the AG control's level.
        task1_budgets / task2_budgets: ``PerturbationBudget`` settings (``mode`` linf or snr) per task.
        attacks: which adversarial families run in both tasks: ``AE`` (evolutionary), ``AZ`` (zeroth-order), ``AC``
            (carrier, transcripts only); each is a column of Task 1 and a row family of Task 2.
        evolutionary / zeroth_order / carrier: ``EvolutionaryAttack`` / ``ZerothOrderAttack`` / ``CarrierAttack``
            arguments.
        transfer: the attacker's transfer prior and start (``TransferSettings``; off unless it names surrogates).
        task2_defenses: rows of Table 3 (``none``, ``LS``, ``DS``, ``SE``, ``TD``, ``BNN``); task2_adaptive: also run
            the adaptive rows (the attacker queries the defended system / the detector).
        task1_adaptive: also measure each BNN mode against untargeted attackers that query it (Task 1's
            "vs adaptive" rows); task1_adaptive_detectors: which detectors get those rows (default both BNN modes;
            each costs two attack campaigns on the test sources).
        se_epochs: training epochs of the SE enhancer.
        bootstrap_resamples: for the bootstrap 95 % intervals of WER, AUC and ECE (rates of counts carry Wilson
            intervals, ``evaluation.metrics``); seed: seeds everything.
    """

    name: str = "custom"
    backends: list[str] = field(default_factory=lambda: ["whisper"])
    backend_options: dict[str, dict] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    source_stage: str = "test"
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    split_method: str = "hash"
    query_budget: int = 2_000
    gaussian_snr_db: float = 10.0
    task1_budgets: list[dict] = field(default_factory=lambda: [{"mode": "snr", "snr_db": 10.0}])
    task2_budgets: list[dict] = field(default_factory=lambda: [{"mode": "snr", "snr_db": 10.0},
                                                               {"mode": "linf", "delta_max": 0.01}])
    attacks: list[str] = field(default_factory=lambda: ["AE", "AZ"])
    evolutionary: dict[str, Any] = field(default_factory=dict)
    zeroth_order: dict[str, Any] = field(default_factory=dict)
    carrier: dict[str, Any] = field(default_factory=dict)
    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    hardware: HardwareSettings = field(default_factory=HardwareSettings)
    task2_defenses: list[str] = field(default_factory=lambda: list(DEFENSES))
    task2_adaptive: bool = True
    task1_adaptive: bool = True
    task1_adaptive_detectors: list[str] = field(default_factory=lambda: list(ADAPTIVE_DETECTORS))
    se_epochs: int = 10
    bootstrap_resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("preset: name at least one backend")
        unknown = sorted(set(self.task2_defenses) - set(DEFENSES))
        if unknown:
            raise ValueError(f"preset: unknown task2_defenses {unknown}; choose from {DEFENSES}")
        for kinds in self.detectors.cross_attack:
            if not kinds or set(kinds) - set(self.attacks):
                raise ValueError(f"preset: detectors.cross_attack training set {kinds} must name attacks the preset "
                                 f"runs ({self.attacks})")
        unknown = sorted(set(self.attacks) - set(ATTACKS))
        if unknown or not self.attacks:
            raise ValueError(f"preset: attacks must name at least one of {ATTACKS}, got {self.attacks}")
        if self.query_budget < 1:
            raise ValueError(f"preset: query_budget must be >= 1, got {self.query_budget}")
        if self.split_method not in ("hash", "rank"):
            raise ValueError(f"preset: split_method must be hash or rank, got {self.split_method!r}")
        unknown = sorted(set(self.task1_adaptive_detectors) - set(ADAPTIVE_DETECTORS))
        if unknown:
            raise ValueError(f"preset: unknown task1_adaptive_detectors {unknown}; choose from {ADAPTIVE_DETECTORS}")
        self.transfer.members()  # checks the "backend:seed" names (trains nothing)
        unknown_goals = sorted(set(self.transfer.goals) - {"untargeted", "targeted"})
        if unknown_goals:
            raise ValueError(f"preset: transfer.goals must be among untargeted / targeted, got {unknown_goals}")
        for budget in self.task1_budgets + self.task2_budgets:
            if budget.get("mode") not in ("linf", "snr"):
                raise ValueError(f"preset: every budget needs mode linf or snr, got {budget}")

    def as_dict(self) -> dict:
        return asdict(self)


def load_preset(name_or_path: str, overrides: list[str] | None = None) -> BenchmarkPreset:
    """A preset by name (``smoke``, ``cpu``, ``paper``) or YAML path, with ``key=value`` overrides parsed by
    jsonargparse as ``--preset.key value`` (e.g. ``query_budget=500``, ``backends=[conformer_ctc]``,
    ``source.root=PATH``: one key inside a free-form dict; give deeper values as YAML, ``evolutionary={...}``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no preset {name_or_path!r} ({path}); known presets: {known}")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(BenchmarkPreset, "preset")
    args = ["--preset", str(path)]
    for override in overrides or []:
        key, separator, value = override.partition("=")
        if not separator:
            raise ValueError(f"override {override!r}: write key=value")
        inside = next((key[len(f) + 1:] for f in DICT_FIELDS if key.startswith(f + ".")), "")
        if "." in inside:
            raise ValueError(f"override {override!r}: reach one key into {key[: len(key) - len(inside) - 1]}, "
                             f"and give deeper values as YAML (e.g. {key.rsplit('.', 1)[0]}='{{...}}')")
        args += [f"--preset.{key}", value]
    return parser.instantiate(parser.parse_args(args)).preset
