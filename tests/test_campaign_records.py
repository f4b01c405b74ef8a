"""Each attacked utterance is recorded exactly once, by the rank that owns it, inside its budget (issue: integrity).

The manifest survives torn appends; ranks attack disjoint shards that together cover every source; and the saved
audio is judged by ``tests/independent_measures.py`` (NumPy / SciPy, not the code under test).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from campaigns.store import AdversarialCache, ManifestError
from campaigns.campaign import GoalSpec, SourceUtterance, run_campaign
from campaigns.launcher import CampaignJob, CampaignLauncher, launch_side_by_side
from attacks.constraints import PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.gaussian import GaussianNoise
from attacks.oracle import OracleServer
from attacks.zeroth_order import ZerothOrderAttack
from tests import independent_measures as independent
from tests.special_attacks import EdgeOfBudget
from tests.test_attacks import speech_like
from tests.toy_system import toy_system


@pytest.fixture(scope="module")
def server():
    with OracleServer(functools.partial(toy_system, 0)) as server:
        yield server


def sources_in(folder: Path, count: int) -> list[SourceUtterance]:
    sources = []
    for i in range(count):
        path = folder / f"src-{i}.flac"
        soundfile.write(str(path), speech_like(0.8, seed=i), 16_000)
        sources.append(SourceUtterance(f"utt-{i}", str(path), "TURN ON THE LIGHT"))
    return sources


def manifest_ids(path: Path) -> list[str]:
    return [json.loads(line)["utterance_id"] for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------ the manifest
def _store(tmp_path: Path) -> AdversarialCache:
    return AdversarialCache(tmp_path, {"campaign": "torn"})


def _write(cache: AdversarialCache, utterance_id: str, rank: int = 0) -> None:
    cache.write(utterance_id, np.zeros(160, np.float32), 16_000, {"success": True}, rank=rank)


def test_an_append_after_a_torn_line_starts_on_a_fresh_line_and_loses_nothing(tmp_path):
    cache = _store(tmp_path)
    _write(cache, "a")
    manifest = cache.manifest_path(0)
    with manifest.open("ab") as handle:  # a run killed inside the append of "b"
        handle.write(b'{"audio": "audio/b.wav", "succ')
    assert [r["utterance_id"] for r in cache.records()] == ["a"]  # the torn line is not a record ...
    _write(cache, "b")  # ... and "b", attacked again, is appended on a line of its own
    _write(cache, "c")
    assert [r["utterance_id"] for r in cache.records()] == ["a", "b", "c"]
    assert manifest_ids(manifest) == ["a", "b", "c"]


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path):
    cache = _store(tmp_path)
    _write(cache, "a")
    manifest = cache.manifest_path(0)
    manifest.write_bytes(manifest.read_bytes().rstrip(b"\n"))  # killed between the record and its newline
    _write(cache, "b")
    assert manifest_ids(manifest) == ["a", "b"]


def test_an_undecodable_line_inside_a_manifest_is_an_error_naming_file_and_line(tmp_path):
    cache = _store(tmp_path)
    _write(cache, "a")
    manifest = cache.manifest_path(0)
    manifest.write_bytes(manifest.read_bytes() + b"\x00garbage\n")
    _write(cache, "b")
    with pytest.raises(ManifestError, match=r"manifest-rank0\.jsonl:2: cannot decode"):
        cache.records()


def test_an_existing_folder_is_read_without_being_written(tmp_path):
    cache = _store(tmp_path)
    _write(cache, "a")
    before = sorted(p.name for p in cache.directory.rglob("*"))
    reader = AdversarialCache.existing(cache.directory)
    assert [r["utterance_id"] for r in reader.records()] == ["a"] and reader.config == {"campaign": "torn"}
    assert sorted(p.name for p in cache.directory.rglob("*")) == before
    with pytest.raises(FileNotFoundError, match="not a campaign folder"):
        AdversarialCache.existing(tmp_path / "nowhere")


def test_an_utterance_recorded_twice_is_an_error(tmp_path):
    cache = _store(tmp_path)
    _write(cache, "a", rank=0)
    _write(cache, "a", rank=1)
    with pytest.raises(ManifestError, match=r"a is recorded twice \(manifest-rank0\.jsonl:1 and manifest-rank1"):
        cache.records()


def test_a_killed_runs_temporary_audio_is_removed_when_the_example_is_written_again(tmp_path):
    cache = _store(tmp_path)
    stale = cache.audio_dir / "a.12345.part.wav"
    stale.write_bytes(b"RIFF half a file")
    _write(cache, "a")
    assert sorted(p.name for p in cache.audio_dir.iterdir()) == ["a.wav"]


# ------------------------------------------------------------------------------------------ resume
def test_campaign_resumes_after_a_kill_with_the_same_records(tmp_path, server, attacker, monkeypatch):
    sources = sources_in(tmp_path, 3)
    run = functools.partial(run_campaign, sources, None, "toy", ZerothOrderAttack(directions=4), GoalSpec("untargeted"),
                            PerturbationBudget(), query_budget=30, seed=7, progress=False, server=server,
                            attacker=attacker)
    reference = run(cache_root=tmp_path / "uninterrupted")
    calls = {"n": 0}
    original_write = AdversarialCache.write

    def dying_write(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return original_write(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialCache, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run(cache_root=tmp_path / "killed")
    monkeypatch.setattr(AdversarialCache, "write", original_write)
    resumed = run(cache_root=tmp_path / "killed")
    stable = lambda records: [{k: v for k, v in r.items() if k not in ("wall_time_s", "system_time_s")}  # noqa: E731
                              for r in records]
    assert len(resumed.records()) == 3 and stable(resumed.records()) == stable(reference.records())
    assert len(manifest_ids(resumed.manifest_path(0))) == 3  # nothing duplicated


def test_targeted_campaign_excludes_sources_that_already_say_the_target(tmp_path, server, attacker):
    sources = sources_in(tmp_path, 2)
    sources[0] = SourceUtterance("utt-0", sources[0].audio_path, "PLEASE OPEN THE DOOR NOW")
    cache = run_campaign(sources, None, "toy", GaussianNoise(), GoalSpec("targeted"), PerturbationBudget(),
                         tmp_path / "cache", query_budget=5, progress=False, server=server, attacker=attacker)
    assert [r["utterance_id"] for r in cache.records()] == ["utt-1"]


# ------------------------------------------------------------------------------------------ shards
def test_each_rank_attacks_exactly_its_shard_and_writes_only_its_own_manifest(tmp_path, server, attacker):
    """Ranks run one after the other here, so only the per-rank manifests tell whether a rank stayed in its shard
    (a rank that took every source would leave nothing for the next, and the union would still look complete)."""
    sources = sources_in(tmp_path, 5)
    expected = [[s.utterance_id for s in sources][rank::2] for rank in (0, 1)]
    for rank in (0, 1):
        cache = run_campaign(sources[::-1], None, "toy", GaussianNoise(), GoalSpec("untargeted"), PerturbationBudget(),
                             tmp_path / "cache", query_budget=2, rank=rank, world_size=2, progress=False, server=server,
                             attacker=attacker)
        assert manifest_ids(cache.manifest_path(rank)) == expected[rank]
    assert manifest_ids(cache.manifest_path(0)) == expected[0]  # rank 1 wrote nothing into rank 0's manifest
    assert [r["utterance_id"] for r in cache.records()] == [s.utterance_id for s in sources]
    with pytest.raises(ValueError, match="rank must be in"):
        run_campaign(sources, None, "toy", GaussianNoise(), GoalSpec("untargeted"), PerturbationBudget(),
                     tmp_path / "cache", rank=2, world_size=2, progress=False, server=server)


def test_shards_run_side_by_side_in_one_call_and_together_attack_every_source_once(tmp_path):
    """``launch_side_by_side`` (attack_strength's ``--processes``): one call, each shard with its own oracle, writes
    exactly its shard's manifest, and the store reads the union."""
    sources = sources_in(tmp_path, 5)
    ids = [s.utterance_id for s in sources]
    launcher = CampaignLauncher({"seed": 0}, tmp_path / "cache", query_budget=2,
                                system_factory="tests.toy_system.toy_system", progress=False)
    job = CampaignJob(GaussianNoise(), sources, GoalSpec("untargeted"), PerturbationBudget())
    (store,) = launch_side_by_side(launcher, [job], processes=2, threads=1)
    assert [manifest_ids(store.manifest_path(rank)) for rank in (0, 1)] == [ids[0::2], ids[1::2]]
    assert [r["utterance_id"] for r in store.records()] == ids
    (again,) = launch_side_by_side(launcher, [job], processes=2, threads=1)  # nothing left: no oracle starts
    assert [r["utterance_id"] for r in again.records()] == ids


# ------------------------------------------------------------------------------------------ the budget, measured
@pytest.mark.parametrize("budget, binds", [
    (PerturbationBudget("snr", snr_db=30.0), "snr"),
    (PerturbationBudget("linf", delta_max=0.002), "linf"),
    (PerturbationBudget("snr", snr_db=10.0), "mfcc"),
], ids=["snr30", "linf0.002", "snr10-mfcc-floor"])
def test_saved_audio_sits_inside_its_budget_by_an_independent_measure(tmp_path, server, attacker, budget, binds):
    """The loudest perturbation the constraints allow is saved on the edge of the limit that binds: inside it (so
    the budget holds) and within a hair of it (so a looser check, e.g. twice the energy, would show here)."""
    sources = sources_in(tmp_path, 2)
    cache = run_campaign(sources, None, "toy", EdgeOfBudget(), GoalSpec("untargeted"), budget, tmp_path / "cache",
                         query_budget=3, progress=False, server=server, attacker=attacker)
    measured = []
    for record, source in zip(cache.records(), sources):
        adversarial, rate = soundfile.read(str(cache.directory / record["audio"]), dtype="float32")
        clean, _ = soundfile.read(source.audio_path, dtype="float32")
        assert rate == 16_000 and adversarial.shape == clean.shape and np.abs(adversarial).max() <= 1.0
        found = {"snr": independent.snr_db(clean, adversarial), "linf": independent.linf(clean, adversarial),
                 "mfcc": independent.mfcc_similarity(clean, adversarial)}
        measured.append(found)
        assert found["mfcc"] >= budget.min_mfcc_similarity - 1e-5, found
        if budget.mode == "snr":
            assert found["snr"] >= budget.snr_db - 1e-3, found
        else:
            assert found["linf"] <= budget.delta_max + 1e-6, found
        assert record["snr_db"] == pytest.approx(found["snr"], abs=1e-3)  # the record reports what was saved
        assert record["mfcc_similarity"] == pytest.approx(found["mfcc"], abs=1e-5)
    edge = {"snr": lambda m: m["snr"] <= budget.snr_db + 0.05, "linf": lambda m: m["linf"] >= 0.999 * budget.delta_max,
            "mfcc": lambda m: m["mfcc"] <= budget.min_mfcc_similarity + 0.002}[binds]
    assert all(edge(m) for m in measured), measured


def test_real_attacks_stay_inside_the_box_by_an_independent_measure(tmp_path, server, attacker):
    sources = sources_in(tmp_path, 2)
    cache = run_campaign(sources, None, "toy", EvolutionaryAttack(population=8), GoalSpec("untargeted", min_wer=10.0),
                         PerturbationBudget("linf", delta_max=0.01), tmp_path / "cache", query_budget=40,
                         progress=False, server=server, attacker=attacker)
    for record, source in zip(cache.records(), sources):
        adversarial, _ = soundfile.read(str(cache.directory / record["audio"]), dtype="float32")
        clean, _ = soundfile.read(source.audio_path, dtype="float32")
        assert 0.005 < independent.linf(clean, adversarial) <= 0.01 + 1e-6  # it spent the box, and no more
        assert independent.mfcc_similarity(clean, adversarial) >= 0.95 - 1e-5
        assert record["queries"] == 40 and len(record["history"]) >= 2
    assert json.loads((cache.directory / "config.json").read_text())["query_budget"] == 40


def test_the_same_samples_give_the_same_file_bytes_whenever_written(tmp_path):
    """libsndfile stamps the second of writing into float WAVs; a rerun's files must still compare equal."""
    import time

    from campaigns.store import wav_bytes

    audio = np.linspace(-0.5, 0.5, 1_000, dtype=np.float32)
    first = wav_bytes(audio, 16_000)
    time.sleep(1.1)
    assert wav_bytes(audio, 16_000) == first
    (tmp_path / "a.wav").write_bytes(first)
    assert np.array_equal(soundfile.read(str(tmp_path / "a.wav"), dtype="float32")[0], audio)


def test_a_campaign_bar_in_a_log_file_draws_once_at_the_start_and_once_at_the_end(tmp_path, server, attacker,
                                                                                 capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)  # a log file: one redraw a minute at most
    run_campaign(sources_in(tmp_path, 4), None, "toy", GaussianNoise(), GoalSpec("untargeted"), PerturbationBudget(),
                 tmp_path / "cache", query_budget=2, progress=True, server=server, attacker=attacker)
    drawn = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "AG untargeted" in line]
    assert 1 <= len(drawn) <= 3, drawn  # start, end (and close); not one per utterance
