"""What an adversarial perturbation may be: its size budget (l_inf or SNR) and the MFCC-similarity floor."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from attacks.similarity import MFCCSimilarity


@dataclass(frozen=True)
class PerturbationBudget:
    """Size limits of ``delta = adversarial - clean`` for waveforms in [-1, 1].

    Attributes:
        mode: ``"linf"``: |delta|_inf <= ``delta_max``; ``"snr"``: the perturbation's energy is at most the clean
            signal's energy / 10^(``snr_db`` / 10), i.e. SNR >= ``snr_db`` (the Gaussian control's level).
        delta_max: l_inf radius (paper: 0.01; ~25 dB SNR on speech at RMS 0.1).
        snr_db: minimum SNR in dB (paper: 10).
        min_mfcc_similarity: every adversarial example keeps MFCC cosine similarity >= this (paper: 0.95).
    """

    mode: Literal["linf", "snr"] = "linf"
    delta_max: float = 0.01
    snr_db: float = 10.0
    min_mfcc_similarity: float = 0.95

    def __post_init__(self) -> None:
        if self.mode not in ("linf", "snr"):
            raise ValueError(f"budget mode must be 'linf' or 'snr', got {self.mode!r}")
        if not 0 < self.delta_max <= 2:
            raise ValueError(f"delta_max must be in (0, 2], got {self.delta_max}")
        if not -1 <= self.min_mfcc_similarity <= 1:
            raise ValueError(f"min_mfcc_similarity must be in [-1, 1], got {self.min_mfcc_similarity}")

    @property
    def label(self) -> str:
        """Short name for tables and cache keys, e.g. ``linf0.01`` or ``snr10``; an MFCC floor other than the paper's
        0.95 is named too (``snr0-mfcc0.8``)."""
        label = f"linf{self.delta_max:g}" if self.mode == "linf" else f"snr{self.snr_db:g}"
        return label if self.min_mfcc_similarity == 0.95 else f"{label}-mfcc{self.min_mfcc_similarity:g}"

    def l2_radius(self, clean: torch.Tensor) -> float:
        """Largest allowed ||delta||_2 in SNR mode for a clean waveform [T]."""
        return float(clean.double().pow(2).sum().sqrt() / 10 ** (self.snr_db / 20))

    def project(self, clean: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        """Project perturbations [P, T] into the budget and keep ``clean + delta`` inside [-1, 1]."""
        if self.mode == "linf":
            deltas = deltas.clamp(-self.delta_max, self.delta_max)
        else:
            norms = deltas.double().pow(2).sum(1).sqrt().clamp(min=1e-12)
            deltas = deltas * (self.l2_radius(clean) / norms).clamp(max=1.0)[:, None].to(deltas.dtype)
        return (clean[None] + deltas).clamp(-1.0, 1.0) - clean[None]

    def size_ok(self, clean: torch.Tensor, deltas: torch.Tensor, tolerance: float = 1e-5) -> torch.Tensor:
        """Whether each perturbation [P, T] is inside the size budget, [P] bool."""
        if self.mode == "linf":
            return deltas.abs().amax(1) <= self.delta_max * (1 + tolerance)
        return deltas.double().pow(2).sum(1).sqrt() <= self.l2_radius(clean) * (1 + tolerance)


@dataclass
class Constraints:
    """The budget plus the MFCC floor; ``repair`` makes any candidate feasible without spending queries."""

    budget: PerturbationBudget = field(default_factory=PerturbationBudget)
    sample_rate: int = 16_000
    similarity: MFCCSimilarity = field(init=False)

    def __post_init__(self) -> None:
        self.similarity = MFCCSimilarity(self.sample_rate)

    def mfcc_similarity(self, clean: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        return self.similarity(clean, clean[None] + deltas)

    def repair(self, clean: torch.Tensor, deltas: torch.Tensor, steps: int = 8, tolerance: float = 0.02) -> torch.Tensor:
        """Feasible perturbations [P, T]: see ``repair_measured``."""
        return self.repair_measured(clean, deltas, steps, tolerance)[0]

    @torch.no_grad()
    def repair_measured(self, clean: torch.Tensor, deltas: torch.Tensor, steps: int = 8, tolerance: float = 0.02
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project into the budget, then shrink each perturbation that breaks the MFCC floor by a factor a in (0, 1]
        that brings its similarity just above the floor (within ``tolerance`` x (1 - floor), i.e. 0.950-0.951 for
        the default floor). The factor is found by a secant search on log(1 - similarity) against log(a) (the
        dissimilarity is close to a power of a), kept inside a bisection bracket; measured: 2-4 MFCC passes where
        plain bisection needs 8. Only factors that passed are used, so the result is always feasible.
        Returns perturbations [P, T]."""
        deltas = self.budget.project(clean, deltas)
        room = 1.0 - self.budget.min_mfcc_similarity  # allowed dissimilarity
        similarity_at = self.similarity.along(clean, deltas)  # one STFT per candidate for the whole search
        everyone = torch.arange(len(deltas))
        dissimilarity = 1.0 - similarity_at(torch.ones(len(deltas)), everyone).double()
        bad = dissimilarity > room
        if not bool(bad.any()):
            return deltas, (1.0 - dissimilarity).float()
        subset = deltas[bad]
        aim = room * (1 - tolerance / 2)
        previous_a = torch.ones(len(subset), dtype=torch.float64)
        previous_d = dissimilarity[bad].clamp(min=1e-12)
        a = (aim / previous_d).clamp(1e-3, 1.0)  # first guess: dissimilarity linear in a
        low, high = torch.zeros_like(a), torch.ones_like(a)
        low_d = torch.zeros_like(a)  # the dissimilarity at ``low`` (none at a = 0)
        active = torch.arange(len(subset))
        rows = everyone[bad]
        for _ in range(steps):
            d = (1.0 - similarity_at(a[active], rows[active]).double())
            d = d.clamp(min=1e-12)
            ok = d <= room
            low[active] = torch.where(ok, a[active], low[active])
            low_d[active] = torch.where(ok, d, low_d[active])
            high[active] = torch.where(ok, high[active], a[active])
            keep = ~(ok & (d >= room * (1 - tolerance)))  # not yet just above the floor
            slope = (d.log() - previous_d[active].log()) / (a[active].log() - previous_a[active].log())
            slope = torch.nan_to_num(slope, nan=1.0, posinf=1.0, neginf=1.0).clamp(0.5, 4.0)
            guess = a[active] * (aim / d) ** (1.0 / slope)
            previous_a[active], previous_d[active] = a[active], d
            inside = (guess > low[active]) & (guess < high[active])
            a[active] = torch.where(inside, guess, (low[active] + high[active]) / 2)
            active = active[keep]
            if len(active) == 0:
                break
        deltas = deltas.clone()
        deltas[bad] = subset * low[:, None].to(deltas.dtype)
        dissimilarity[bad] = low_d
        return deltas, (1.0 - dissimilarity).float()

    @torch.no_grad()
    def measure(self, clean: torch.Tensor, adversarial: torch.Tensor) -> dict[str, float]:
        """What the tables report of one example, clean [T] and adversarial [T]: SNR (dB; inf when unchanged),
        l_inf of the perturbation and its MFCC similarity."""
        delta = adversarial - clean
        noise_power = float(delta.double().pow(2).mean())
        snr = math.inf if noise_power == 0 else 10 * math.log10(float(clean.double().pow(2).mean()) / noise_power)
        return {"snr_db": snr, "linf": float(delta.abs().max()),
                "mfcc_similarity": float(self.mfcc_similarity(clean, delta[None])[0])}

    def feasible(self, clean: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        """[P] bool: inside the budget, inside [-1, 1] and above the MFCC floor."""
        inside = ((clean[None] + deltas).abs() <= 1.0).all(1)
        similar = self.mfcc_similarity(clean, deltas) >= self.budget.min_mfcc_similarity - 1e-6
        return self.budget.size_ok(clean, deltas) & inside & similar
