"""Task 1 (paper Fig. 3 and Table 2): untargeted robustness and detection.

Per backend and budget mode:
1. WER on clean audio, under the Gaussian control (AG) and under the preset's untargeted attacks (AE / AZ / AC, from
   cached campaigns over the source utterances; transcripts are the oracle's answers at attack time).
2. Detection on the test split's equally mixed AG / adversarial examples (AG benign, the attacks adversarial): AUC,
   TPR at 1 % and 5 % FPR (thresholds set on the validation split), FP % and FN % at the threshold calibrated on the
   validation split (at the target false-positive rate; also at Youden's J, columns "(J)"), the supervised BNN's
   ECE, and the WER of the inputs each detector lets through (at the first threshold) with its change against no
   filtering, for TD, transform consistency and the BNN in both modes. "FP % clean": the share of the same test
   sources' clean inputs (outside the paper's mixed set) flagged at the first threshold; "FP % babble / LS clean /
   DS clean": the same for harder benign inputs (``evaluation.negatives``).
3. Adaptive rows (``task1_adaptive``): for each BNN mode of ``task1_adaptive_detectors``, new untargeted campaigns
   on the test sources whose oracle also answers that detector's score (the attacker must change the transcript
   *and* stay under the calibrated threshold; expectation over the detector's Monte Carlo samples); the same
   detector, threshold and metrics on the test AG examples mixed with these, reported as "<detector> vs adaptive".
   The "attack success %" column: the share of the test split's adversarial examples that met their goal
   (adaptive: also evaded the detector).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from campaigns.campaign import GoalSpec
from campaigns.launcher import generate
from core import figures
from evaluation import listening, metrics, report, scoring
from evaluation.detector_suite import DETECTORS, build_detectors, cross_attack_names, detector_workdir
from evaluation.negatives import hard_negatives
from evaluation.preset import BenchmarkPreset
from evaluation.setting import BackendPool, adversarial_data, budget_of, generated, system_of

log = logging.getLogger(__name__)

TITLES = {"wer": "WER % under untargeted attacks (paper Fig. 3)",
          "detection": "Detection and filtering on mixed AG / adversarial inputs (paper Table 2)",
          "cross_attack": "Cross-attack detection: supervised BNNs trained on some attack families, tested on each"}


CONSOLE_DETECTION = ["backend", "budget", "detector", "n", "AUC %", "TPR % @5% FPR", "FP %", "FN %", "FP % clean",
                     "attack success %"]


def console_tables(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What the console shows: WER and success per attack, the detectors' main figures (values without intervals;
    every column is in results.md and report.html)."""
    wer_columns = list(dict.fromkeys(c for row in tables["wer"] for c in row if not c.endswith("SNR dB")))
    return {"wer": report.values_only(tables["wer"], wer_columns),
            "detection": report.values_only(tables["detection"], CONSOLE_DETECTION)}


def wer_row(backend: str, budget: str, campaigns: dict[str, list[dict]], resamples: int, seed: int) -> dict:
    """Clean / AG / AE / AZ WER with intervals, plus each attack's success rate and mean SNR."""
    control = next(iter(campaigns.values()))
    row: dict = {"backend": backend, "budget": budget, "n": len(control),
                 "clean": metrics.corpus_wer([r["reference"] for r in control],
                                             [r["transcript_clean"] for r in control], resamples, seed)}
    for kind, records in campaigns.items():
        row[kind] = metrics.corpus_wer([r["reference"] for r in records],
                                       [r["transcript_adversarial"] for r in records], resamples, seed)
    for kind, records in campaigns.items():
        if kind != "AG":
            row[f"{kind} success %"] = 100.0 * float(np.mean([r["success"] for r in records]))
    for kind, records in campaigns.items():
        finite = [r["snr_db"] for r in records if np.isfinite(r["snr_db"])]  # unchanged audio has no SNR
        row[f"{kind} SNR dB"] = float(np.mean(finite)) if finite else float("nan")
    return row


def detection_row(name: str, calibrated, examples: list, hypotheses: list[str], clean: list, preset: BenchmarkPreset,
                  sample_rate: int, batch_size: int, negatives: dict[str, list] | None = None) -> tuple[dict, tuple]:
    """One detector on labelled ``examples`` (with the system's ``hypotheses`` for them): the table row's metrics
    and its ROC curve (values, labels, AUC). ``clean``: the same sources' clean inputs, outside the paper's mixed set;
    "FP % clean" is how many of them the threshold flags, "FP % <kind>" how many of each of the harder benign
    ``negatives`` (``evaluation.negatives``: babble, clean speech through LS / DS). "TPR % @f FPR": flagged adversarial inputs at the
    threshold set on validation data for a false-positive rate f; "ECE %": the calibration error of a detector whose
    score is a probability (the supervised BNN), "-" for the others."""
    torch.manual_seed(preset.seed)  # Monte Carlo detectors: the same samples on every run
    values = scoring.scores(calibrated.detector, examples, sample_rate, batch_size)
    clean_values = scoring.scores(calibrated.detector, clean, sample_rate, batch_size) if clean else []
    labels = scoring.labels(examples)
    references = [e.transcript for e in examples]
    found = metrics.detection(values, labels, calibrated.threshold, preset.bootstrap_resamples, preset.seed)
    filtered = metrics.filtered_wer(references, hypotheses, values >= calibrated.threshold,
                                    preset.bootstrap_resamples, preset.seed)
    at_youden = metrics.detection(values, labels, calibrated.threshold_youden, 0)
    at_rates = {f"TPR % @{100 * fpr:g}% FPR": metrics.true_positive_rate(values, labels, threshold)
                for fpr, threshold in sorted(calibrated.thresholds_at.items())}
    ece = (metrics.expected_calibration_error(values, labels, resamples=preset.bootstrap_resamples, seed=preset.seed)
           if calibrated.probability else metrics.Estimate(float("nan"), np.nan, np.nan))
    row = {"detector": name, "n": len(examples), "AUC %": found["auc"], **at_rates, "FP %": found["fp"],
           "FN %": found["fn"], "FP % (J)": at_youden["fp"].value, "FN % (J)": at_youden["fn"].value,
           "ECE %": ece,
           "FP % clean": metrics.flag_rate(clean_values, calibrated.threshold),
           **{f"FP % {kind}": metrics.flag_rate(scoring.scores(calibrated.detector, harder, sample_rate, batch_size),
                                                calibrated.threshold)
              for kind, harder in (negatives or {}).items()},
           "WER %": metrics.corpus_wer(references, hypotheses, preset.bootstrap_resamples, preset.seed),
           "WER filtered %": filtered["wer_filtered"], "WER change": filtered["wer_change"]}
    return row, (values, labels, found["auc"].value / 100.0)


def cross_attack_rows(detectors: dict, examples: list, adaptive: dict[str, list], preset: BenchmarkPreset,
                      sample_rate: int, batch_size: int) -> list[dict]:
    """Task 1's cross-attack matrix: one row per detector (the supervised BNNs trained on some attack families, the
    one trained on all, the unsupervised BNN that needs none), one column pair per attack family of the test split
    and per set of ``adaptive`` examples: AUC % and TPR % at 1 % FPR (threshold set on validation data) against the
    same benign test inputs (label 0 of ``examples``)."""
    benign = [e for e in examples if e.label == 0]
    families: dict[str, list] = {}
    for example in examples:
        if example.label == 1:
            families.setdefault(example.kind, []).append(example)
    families = {**dict(sorted(families.items())), **adaptive}
    rows = []
    for name, calibrated in detectors.items():
        torch.manual_seed(preset.seed)  # Monte Carlo detectors: the same samples on every run
        benign_values = scoring.scores(calibrated.detector, benign, sample_rate, batch_size)
        row: dict = {"detector": name, "n benign": len(benign)}
        for family, positives in families.items():
            values = np.concatenate([benign_values, scoring.scores(calibrated.detector, positives, sample_rate,
                                                                   batch_size)])
            labels = np.array([0] * len(benign) + [1] * len(positives))
            found = metrics.detection(values, labels, calibrated.threshold, preset.bootstrap_resamples, preset.seed)
            row[f"{family} AUC %"] = found["auc"]
            threshold = calibrated.thresholds_at.get(0.01, float("nan"))
            row[f"{family} TPR % @1% FPR"] = metrics.true_positive_rate(values, labels, threshold)
        rows.append(row)
    return rows


def attack_success(data, sources: set[str]) -> float:
    """% of the adversarial campaigns' examples of ``sources`` that met their goal (for an adaptive goal: changed
    the transcript and stayed under the detector's threshold, as the oracle answered during the attack)."""
    reached = [r["success"] for spec, cache in data.campaigns() if spec.adversarial
               for r in cache.records() if r["utterance_id"] in sources]
    return 100.0 * float(np.mean(reached)) if reached else float("nan")


def adaptive_detector_names(preset: BenchmarkPreset, detectors: dict) -> list[str]:
    """The detectors that get "vs adaptive" rows: those of ``task1_adaptive_detectors`` this cell has."""
    if not preset.task1_adaptive:
        return []
    return [name for name in preset.task1_adaptive_detectors if name in detectors]


def adaptive_examples(preset: BenchmarkPreset, backend_name: str, budget_settings: dict, calibrated,
                      cache_root: Path, progress: bool) -> tuple[list, float]:
    """Untargeted AE / AZ examples of the test sources from campaigns that also evade ``calibrated`` (served by the
    oracle with its checkpoint and threshold), and their attack success %."""
    system = system_of(preset, backend_name, detector=calibrated.spec)
    data = adversarial_data(preset, backend_name, GoalSpec("untargeted", adaptive=True), budget_settings,
                            cache_root / "adversarial", preset.detectors.bnn_batch_size, progress, gaussian=False,
                            system=system, attack_splits=("test",))
    generated(data)
    examples = [e for e in data.examples["test"] if e.label == 1]
    return examples, attack_success(data, {e.source_id for e in examples})


def dispersion_view(detector, data, path: Path, cell: str) -> Path:
    """The paper's Fig. 2: densities of the per-utterance dispersion of the unsupervised BNN's sampled outputs for
    clean training speech (its reference) and each kind of test input."""
    test = data.examples["test"]
    dispersion = np.asarray(scoring.over_examples(
        lambda w, n: detector.details(w, n)["dispersion"].float().cpu().tolist(), test, data.source.sample_rate,
        data.batch_size))
    kinds = np.array([e.kind for e in test])
    groups = {"train clean (1,024 reference quantiles)": detector.module.head.reference_utterances.cpu().numpy()}
    groups.update({f"test {kind}": dispersion[kinds == kind] for kind in sorted(set(kinds))})
    return figures.plot_density(groups, path, "per-utterance std of sampled hidden outputs", f"Fig. 2 view, {cell}")


def run(preset: BenchmarkPreset, out_dir: Path, cache_root: Path, progress: bool = True,
        shard: tuple[int, int] | None = None) -> dict:
    """Run Task 1; returns {"tables": {...}, "images": [...], "examples": [...]} (``listening`` examples).
    ``shard`` (rank, world): only run that shard of the
    attack campaigns (sources[rank::world]) and return nothing."""
    pool = BackendPool(preset)
    tables: dict[str, list[dict]] = {"wer": [], "detection": [], "cross_attack": []}
    images: list[Path] = []
    examples: list[listening.ListeningExample] = []
    wer_groups: dict[str, dict] = {}
    for backend_name in preset.backends:
        for budget_settings in preset.task1_budgets:
            budget = budget_of(budget_settings).label
            cell = f"{backend_name} / {budget}"
            log.info("Task 1: %s", cell)
            data = adversarial_data(preset, backend_name, GoalSpec("untargeted"), budget_settings,
                                    cache_root / "adversarial", preset.detectors.bnn_batch_size, progress)
            if shard is not None:
                generate(data, *shard)
                continue
            generated(data)
            campaigns = {spec.attack.name: data.attacked_records(cache) for spec, cache in data.campaigns()}
            row = wer_row(backend_name, budget, campaigns, preset.bootstrap_resamples, preset.seed)
            tables["wer"].append(row)
            wer_groups[cell] = {k: row[k] for k in ("clean", *campaigns)}
            histories = {kind: [r["history"] for r in records] for kind, records in campaigns.items() if kind != "AG"}
            images.append(figures.success_curves(histories, preset.query_budget,
                                               out_dir / f"success_{backend_name}_{budget}.png",
                                               f"untargeted, {cell}"))

            backend = pool.get(backend_name)
            test = [e for e in data.examples["test"] if e.kind != "clean"]
            clean = [e for e in data.examples["test"] if e.kind == "clean"]
            if not test or scoring.labels(test).min() == scoring.labels(test).max():
                raise RuntimeError(f"Task 1 {cell}: the test split needs AG and AE / AZ examples; attack more "
                                   f"source utterances (source.test_subset) or change split_fractions")
            hypotheses = scoring.transcripts(backend, test, data.batch_size)
            negatives = hard_negatives(clean, cache_root, data.source.sample_rate, preset.seed)
            workdir = detector_workdir(cache_root, preset, data, budget)
            detectors = build_detectors(preset, backend_name, backend, data, workdir, DETECTORS, progress)
            curves = {}
            reached = attack_success(data, {e.source_id for e in test})
            for name, calibrated in detectors.items():
                row, curves[name] = detection_row(name, calibrated, test, hypotheses, clean, preset,
                                                  data.source.sample_rate, data.batch_size, negatives)
                tables["detection"].append({"backend": backend_name, "budget": budget, **row,
                                            "attack success %": reached})
            benign = [e for e in test if e.label == 0]
            adaptive: dict[str, list] = {}  # the examples adaptive to the supervised BNN, per attack family
            for name in adaptive_detector_names(preset, detectors):
                evading, reached = adaptive_examples(preset, backend_name, budget_settings, detectors[name],
                                                     cache_root, progress)
                if name == "BNN-supervised":
                    for example in evading:
                        adaptive.setdefault(f"{example.kind} adaptive", []).append(example)
                mixed = benign + evading
                label = f"{name} vs adaptive"
                row, curves[label] = detection_row(
                    label, detectors[name], mixed, scoring.transcripts(backend, mixed, data.batch_size), clean,
                    preset, data.source.sample_rate, data.batch_size, negatives)
                tables["detection"].append({"backend": backend_name, "budget": budget, **row,
                                            "attack success %": reached})
            examples += listening.collect(cell, data, {e.source_id for e in test}, detectors, preset.seed)
            images.append(figures.plot_roc(curves, out_dir / f"roc_{backend_name}_{budget}.png",
                                           f"Task 1 detection, {cell}"))
            if preset.detectors.cross_attack:
                matrix = build_detectors(preset, backend_name, backend, data, workdir, cross_attack_names(preset),
                                         progress)
                matrix.update({name: detectors[name] for name in ("BNN-supervised", "BNN-unsupervised")
                               if name in detectors})
                tables["cross_attack"] += [{"backend": backend_name, "budget": budget, **row} for row in
                                           cross_attack_rows(matrix, test, adaptive, preset, data.source.sample_rate,
                                                             data.batch_size)]
            if "BNN-unsupervised" in detectors:
                images.append(dispersion_view(detectors["BNN-unsupervised"].detector, data, out_dir / (
                    f"dispersion_{backend_name}_{budget}.png"), cell))
    images.append(figures.bars(wer_groups, out_dir / "wer.png", "WER %", "Task 1: WER under attack"))
    if not tables["cross_attack"]:
        del tables["cross_attack"]
    return {"tables": tables, "images": images, "examples": examples}
