"""Examples to listen to: a few clean / adversarial pairs per benchmark cell, with what the recognizer heard, the
perturbation's size, the queries spent and the detector's verdict. The benchmark run writes them to
``examples.json`` in its results folder; ``evaluation.html_report`` and Weights & Biases show them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from datamodules.adversarial.datamodule import LabelledExample
from evaluation import scoring

EXAMPLES_FILE = "examples.json"


@dataclass
class ListeningExample:
    """One attacked utterance. Audio paths are absolute (the campaign cache and the source corpus); SNR in dB."""

    cell: str  # "backend / budget"
    attack: str  # AG (the benign control), AE, AZ, AC
    goal: str  # "untargeted" or "targeted"
    utterance_id: str
    clean_audio: str
    adversarial_audio: str
    reference: str
    transcript_clean: str
    transcript_adversarial: str
    success: bool
    snr_db: float
    mfcc_similarity: float
    queries: int
    target: str | None = None
    detector: str | None = None
    detector_score: float | None = None
    threshold: float | None = None

    @property
    def flagged(self) -> bool | None:
        """Whether the detector flags it (score >= its calibrated threshold); None when no detector judged it."""
        if self.detector_score is None or self.threshold is None:
            return None
        return self.detector_score >= self.threshold

    def verdict(self) -> str:
        """One line for the console: what happened and what the detector said."""
        heard = f"{self.transcript_clean!r} -> {self.transcript_adversarial!r}"
        outcome = "success" if self.success else "miss"
        line = (f"{self.cell}, {self.goal} {self.attack} {outcome}: {heard} (SNR {self.snr_db:.1f} dB, MFCC "
                f"{self.mfcc_similarity:.3f}, {self.queries} queries)")
        if self.flagged is not None:
            line += (f"; {self.detector}: {'flagged' if self.flagged else 'not flagged'} (score "
                     f"{self.detector_score:.3f}, threshold {self.threshold:.3f})")
        return line


def pick(cell: str, attack: str, records: list[dict], cache_dir: Path, utterance_ids: set[str],
         per_cell: int = 3, target: str | None = None) -> list[ListeningExample]:
    """Up to ``per_cell`` of a campaign's records among ``utterance_ids``: the successes with the highest SNR first,
    then (if any) the miss with the highest SNR, so the report shows what worked and what did not."""
    chosen = sorted((r for r in records if r["utterance_id"] in utterance_ids),
                    key=lambda r: (-float(r["snr_db"]), r["utterance_id"]))
    hits = [r for r in chosen if r["success"]]
    misses = [r for r in chosen if not r["success"]]
    picked = hits[:per_cell - 1 if misses and per_cell > 1 else per_cell]  # room for one miss ...
    picked += misses[:per_cell - len(picked)][:1]  # ... unless only one example is asked for and a hit exists
    if len(picked) < per_cell:
        picked += [r for r in misses + hits if r not in picked][:per_cell - len(picked)]
    return [ListeningExample(
        cell=cell, attack=attack, goal=r["goal"], utterance_id=r["utterance_id"],
        clean_audio=str(r["source_audio"]), adversarial_audio=str(Path(cache_dir) / r["audio"]),
        reference=r["reference"], transcript_clean=r["transcript_clean"],
        transcript_adversarial=r["transcript_adversarial"], success=bool(r["success"]), snr_db=float(r["snr_db"]),
        mfcc_similarity=float(r["mfcc_similarity"]), queries=int(r["queries"]),
        target=target if r["goal"] == "targeted" else None) for r in picked]


def judge(examples: list[ListeningExample], name: str, detector, threshold: float, sample_rate: int,
          seed: int = 0) -> None:
    """Score each example's adversarial audio with ``detector`` (in place); Monte Carlo detectors are seeded."""
    if not examples:
        return
    torch.manual_seed(seed)
    labelled = [LabelledExample(e.adversarial_audio, 1, e.attack, e.reference, e.utterance_id, e.utterance_id)
                for e in examples]
    for example, score in zip(examples, scoring.scores(detector, labelled, sample_rate)):
        example.detector, example.detector_score, example.threshold = name, float(score), float(threshold)


def collect(cell: str, data, utterance_ids: set[str], detectors: dict, seed: int = 0,
            target: str | None = None) -> list[ListeningExample]:
    """A few examples of each campaign of ``data`` (an ``AdversarialDataModule``; AG included) among
    ``utterance_ids``, judged by the supervised BNN (or the first of ``detectors``, name -> ``CalibratedDetector``)."""
    examples = [e for spec, cache in data.campaigns()
                for e in pick(cell, spec.attack.name, data.attacked_records(cache), cache.directory, utterance_ids,
                              target=target)]
    if detectors:
        name = "BNN-supervised" if "BNN-supervised" in detectors else next(iter(detectors))
        judge(examples, name, detectors[name].detector, detectors[name].threshold, data.source.sample_rate, seed)
    return examples


def write(examples: list[ListeningExample], out_dir: Path) -> Path:
    path = Path(out_dir) / EXAMPLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(e) for e in examples], indent=2))
    return path


def read(out_dir: Path) -> list[ListeningExample]:
    """The examples of a results folder (none if the run wrote none)."""
    path = Path(out_dir) / EXAMPLES_FILE
    if not path.exists():
        return []
    return [ListeningExample(**fields) for fields in json.loads(path.read_text())]


def highlights(examples: list[ListeningExample]) -> list[ListeningExample]:
    """For the console: the first successful example of each (goal, attack) among the adversarial attacks."""
    seen: set[tuple[str, str]] = set()
    out = []
    for example in examples:
        key = (example.goal, example.attack)
        if example.attack != "AG" and example.success and key not in seen:
            seen.add(key)
            out.append(example)
    return out

