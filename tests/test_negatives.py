"""Harder benign inputs (evaluation/negatives.py): babble at its SNR, clean speech through LS / DS, written once."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from datamodules.adversarial.datamodule import LabelledExample
from evaluation.negatives import babble, hard_negatives
from lit_modules.defenses import DownSampling, LocalSmoothing
from tests.test_attacks import speech_like


def test_babble_mixes_the_other_utterance_at_the_asked_snr():
    clean, other = torch.from_numpy(speech_like(1.0, seed=0)), torch.from_numpy(speech_like(0.3, seed=1))
    mixed = babble(clean, other, 15.0)
    added = mixed - clean
    assert 10 * torch.log10(clean.pow(2).mean() / added.pow(2).mean()) == pytest.approx(15.0, abs=1e-3)
    repeated = other.repeat(4)[: clean.numel()]  # shorter speech is repeated to the utterance's length
    assert torch.allclose(added / added.abs().max(), repeated / repeated.abs().max(), atol=1e-5)


def test_hard_negatives_are_benign_versions_of_the_clean_inputs(tmp_path):
    examples = []
    for index in range(3):
        path = tmp_path / f"clean{index}.wav"
        soundfile.write(str(path), speech_like(0.8, seed=index), 16_000, subtype="FLOAT")
        examples.append(LabelledExample(str(path), 0, "clean", "A B", f"s{index}", f"s{index}/clean"))
    negatives = hard_negatives(examples, tmp_path / "cache", seed=3)
    assert sorted(negatives) == ["DS clean", "LS clean", "babble"]
    for kind, made in negatives.items():
        assert [e.source_id for e in made] == ["s0", "s1", "s2"] and all(e.label == 0 and e.kind == kind for e in made)
    clean = torch.from_numpy(speech_like(0.8, seed=0))
    smoothed, _ = soundfile.read(negatives["LS clean"][0].path, dtype="float32")
    expected = LocalSmoothing()(clean[None], torch.tensor([clean.numel()]))[0][0]
    np.testing.assert_allclose(smoothed, expected.numpy(), atol=1e-6)
    down, _ = soundfile.read(negatives["DS clean"][0].path, dtype="float32")
    expected = DownSampling()(clean[None], torch.tensor([clean.numel()]))[0][0]
    np.testing.assert_allclose(down, expected.numpy(), atol=1e-6)
    mixed, _ = soundfile.read(negatives["babble"][0].path, dtype="float32")
    snr = 10 * np.log10(np.mean(clean.numpy() ** 2) / np.mean((mixed - clean.numpy()) ** 2))
    assert 10.0 <= snr <= 20.0
    again = hard_negatives(examples, tmp_path / "cache", seed=3)  # the same files, not rewritten
    assert again == negatives
    assert "babble" not in hard_negatives(examples[:1], tmp_path / "cache")  # one utterance cannot babble
