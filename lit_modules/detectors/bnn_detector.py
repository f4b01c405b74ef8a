"""The trained BNN detector as a ``Detector`` (for target systems, adaptive attacks and benchmarks)."""

from __future__ import annotations

from pathlib import Path

import torch

from lit_modules.detectors.base import Detector
from lit_modules.detectors.bnn_module import BNNDetectorModule


class BNNDetector(Detector):
    """Scores waveforms with a ``BNNDetectorModule`` checkpoint: backend activations -> S Monte Carlo samples of the
    head -> score; the threshold is the one calibrated at training. Stochastic: repeated queries differ."""

    stochastic = True

    def __init__(self, checkpoint: str, samples: int | None = None, device: str = "cpu") -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no detector checkpoint (train one: python train.py fit --config "
                                    "configs/bnn.yaml)")
        module = BNNDetectorModule.load_from_checkpoint(path, map_location=device, weights_only=True)
        if torch.isnan(module.threshold):
            raise ValueError(f"{path}: the detector was never calibrated (fit it with validation data and the "
                             "evaluation.detector_callbacks.ThresholdCalibration callback)")
        super().__init__(float(module.threshold))
        self.module = module.eval()
        self.samples = samples or module.hparams.mc_samples

    @torch.no_grad()
    def details(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every score output [B]: ``score`` and, by mode, ``predictive_std`` / ``entropy`` or ``dispersion`` /
        ``wasserstein`` / ``mutual_information`` / ``epistemic_fraction``."""
        hidden, frame_lengths = self.module.backend.hidden(waveforms, lengths, self.module.layer)
        return self.module.score_features(hidden, frame_lengths, self.samples)

    def score(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.details(waveforms, lengths)["score"]
