"""Source splits: hashing keeps each source's split whatever the others are; ranking holds the shares exactly, so a
preset with a handful of sources (the `real` preset's 8) never gets an empty split; a split that would be empty
stops the run before any attack."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from campaigns.campaign import GoalSpec
from core.hashing import seeded_fraction
from datamodules.adversarial.datamodule import rank_splits, split_of
from evaluation.preset import load_preset
from evaluation.setting import adversarial_data

# the 8 utterances of up to 10 s the `real` preset drew from a real-speech folder: hashing puts none in test
EIGHT = ["9001-1-0000", "9001-1-0002", "9001-1-0003", "9001-1-0004", "9002-1-0000", "9002-1-0001", "9002-1-0004",
         "9002-1-0005"]


def test_rank_splits_hold_the_shares_exactly_and_follow_the_seeded_order():
    assert [split_of(i, (0.5, 0.25, 0.25), 0) for i in EIGHT].count("test") == 0
    splits = rank_splits(EIGHT, (0.5, 0.25, 0.25), 0)
    assert sorted(splits.values()).count("train") == 4 and list(splits.values()).count("test") == 2
    by_value = sorted(EIGHT, key=lambda i: seeded_fraction(0, i))
    assert [splits[i] for i in by_value] == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    for n in range(3, 13):
        ids = [f"s-{k}" for k in range(n)]
        sizes = [list(rank_splits(ids, (0.6, 0.2, 0.2), 1).values()).count(s) for s in ("train", "val", "test")]
        assert sum(sizes) == n and min(sizes) >= 1, (n, sizes)
    assert rank_splits(EIGHT, (0.5, 0.25, 0.25), 0) == splits  # seeded: the same every time
    assert rank_splits(EIGHT, (0.5, 0.25, 0.25), 1) != splits


def write_folder(root) -> None:
    for speaker in ("9001", "9002"):
        chapter = root / "LibriSpeech" / "dev-clean" / speaker / "1"
        chapter.mkdir(parents=True)
        ids = [i for i in EIGHT if i.startswith(speaker)]
        for i in ids:
            soundfile.write(chapter / f"{i}.flac", np.zeros(8000, np.float32) + 0.01, 16000)
        (chapter / f"{speaker}-1.trans.txt").write_text("".join(f"{i} HELLO THERE\n" for i in ids))


def test_an_empty_split_stops_the_run_before_any_attack_and_ranking_fills_it(tmp_path):
    write_folder(tmp_path / "data")
    overrides = [f"source.root={tmp_path / 'data'}"]
    hashed = load_preset("real", overrides + ["split_method=hash"])
    with pytest.raises(ValueError, match=r"the test split would hold no source utterance .*split_method=rank"):
        adversarial_data(hashed, "whisper", GoalSpec("untargeted"), hashed.task1_budgets[0], tmp_path / "cache")
    ranked = load_preset("real", overrides)  # the preset's own: rank
    data = adversarial_data(ranked, "whisper", GoalSpec("targeted"), ranked.task2_budgets[0], tmp_path / "cache",
                            attack_splits=("test",))
    assert data.split_sizes() == {"train": 4, "val": 2, "test": 2}
    assert [s.utterance_id for s in data.sources()] == ["9001-1-0002", "9001-1-0003"]
    assert not (tmp_path / "cache").exists()  # nothing attacked yet
    with pytest.raises(Exception, match="split_method"):
        load_preset("real", overrides + ["split_method=random"])
