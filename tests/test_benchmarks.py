"""The smoke preset end to end at its smallest size (real Whisper tiny.en, tiny corpus): well-formed tables, a
leaderboard line per run, and a rerun that reuses every cached attack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import campaigns.campaign
from evaluation import listening, runner, task1, task2
from evaluation.preset import PRESET_DIR, load_preset


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory):
    """Both tasks share one cache, as in ``make demo``: Task 2 reuses Task 1's untargeted campaigns and detectors."""
    return tmp_path_factory.mktemp("smoke")


def smallest(tiny_corpus, tmp_path, task2_budgets: str = "[{mode: snr, snr_db: 10.0}]") -> list[str]:
    return ["--preset", "smoke", "--no-progress", "--no-wandb", "--cache-dir", str(tmp_path / "cache"),
            "--results-dir", str(tmp_path / "results"), "--set",
            f"source={{synthetic_dir: {tiny_corpus}, test_splits: [train, dev, test], test_subset: 10, seed: 0}}",
            "query_budget=4", "attacks=[AE, AZ]", "detectors.bnn_epochs=2", "bootstrap_resamples=20", "se_epochs=1",
            "backend_options={whisper: {min_context_s: 10.0}}",  # the trimmed window: plumbing, fast
            f"task2_budgets={task2_budgets}"]


@pytest.mark.parametrize("path", sorted(PRESET_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_file_loads(path):
    preset = load_preset(str(path))
    assert preset.name == path.stem and preset.backends and preset.query_budget >= 1


def test_shard_argument_is_checked():
    assert runner.parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            runner.parse_shard(bad)


def test_smoke_preset_is_valid_and_overrides_are_checked():
    preset = load_preset("smoke", ["query_budget=7", "source.test_subset=3", "zeroth_order.directions=2"])
    assert preset.query_budget == 7 and preset.backends == ["whisper"]
    assert preset.source["test_subset"] == 3 and preset.zeroth_order["directions"] == 2  # typed, not strings
    assert preset.source["max_duration"] == 3.0  # one key changed, the preset's others kept
    bnn = load_preset("smoke", ["detectors.bnn.kl_weight=0.5"]).detectors.bnn
    assert bnn["kl_weight"] == 0.5 and bnn["optimizer"] == {"init_args": {"lr": 0.01}}
    with pytest.raises(ValueError, match="deeper values as YAML"):  # jsonargparse would make a key "init_args.lr"
        load_preset("smoke", ["detectors.bnn.optimizer.init_args.lr=0.1"])
    with pytest.raises(Exception, match="not_a_key"):
        load_preset("smoke", ["not_a_key=1"])
    with pytest.raises(FileNotFoundError, match="known presets"):
        load_preset("no-such-preset")


def test_a_preset_chooses_its_attack_families():
    from attacks.carrier import CarrierAttack
    from evaluation.setting import attacks_of

    assert [spec.attack.name for spec in attacks_of(load_preset("smoke"))] == ["AG", "AE", "AZ", "AC"]
    preset = load_preset("smoke", ["attacks=[AZ, AC]", "carrier.population=6"])
    specs = attacks_of(preset)
    assert [spec.attack.name for spec in specs] == ["AG", "AZ", "AC"]
    assert isinstance(specs[2].attack, CarrierAttack) and specs[2].attack.population == 6
    assert specs[2].adversarial and not specs[2].only_successful
    for bad in ("attacks=[AE, XY]", "attacks=[]"):
        with pytest.raises(Exception, match="attacks must name"):
            load_preset("smoke", [bad])


def test_transfer_settings_name_the_attackers_surrogates_and_reach_only_their_goals():
    from campaigns.campaign import GoalSpec
    from evaluation.setting import attacks_of, transfer_prior_of

    preset = load_preset("smoke", ["transfer.surrogates=[conformer_ctc:1, conformer_ctc:2:0]", "transfer.steps=5"])
    assert preset.transfer.members() == [{"backend": "conformer_ctc", "seed": 1, "corpus_seed": 1},
                                         {"backend": "conformer_ctc", "seed": 2, "corpus_seed": 0}]
    assert transfer_prior_of(preset, GoalSpec("untargeted")) is None  # goals: [targeted] by default
    _, ae, az, _ = (spec.attack for spec in attacks_of(preset, transfer=True))  # AG: no search; AC: its own start
    assert ae.gradient_settings["transfer_steps"] == az.transfer_steps == 5
    _, ae, az, _ = (spec.attack for spec in attacks_of(preset))
    assert ae.gradient_settings["transfer_steps"] == az.transfer_steps == 0
    for bad in ("conformer_ctc", "conformer_ctc:x", "whisper:1", "conformer_ctc:1:2:3"):
        with pytest.raises(Exception, match="backend:seed"):
            load_preset("smoke", [f"transfer.surrogates=[{bad}]"])


def test_detector_folders_are_keyed_by_sources_and_calibration_sources(tiny_corpus, tmp_path):
    from pathlib import Path

    from campaigns.campaign import GoalSpec
    from evaluation.detector_suite import detector_workdir
    from evaluation.setting import adversarial_data

    source = f"source={{synthetic_dir: {tiny_corpus}, test_splits: [train, dev, test], test_subset: 10, seed: 0}}"
    budget = {"mode": "snr", "snr_db": 10.0}
    folders = {}
    for n in (0, 4):
        preset = load_preset("smoke", [source, f"detectors.calibration_sources={n}"])
        grown = load_preset("smoke", [source.replace("test_subset: 10", "test_subset: 12"),
                                      f"detectors.calibration_sources={n}"])
        bigger = adversarial_data(grown, "whisper", GoalSpec("untargeted"), budget, tmp_path, progress=False)
        data = adversarial_data(preset, "whisper", GoalSpec("untargeted"), budget, tmp_path, progress=False)
        calibration = {s.utterance_id for s in data.benign_calibration_sources()}
        assert len(calibration) == n and not calibration & {s.utterance_id for s in data.sources()}
        folders[n] = detector_workdir(Path(tmp_path), preset, data, "snr10")
        assert detector_workdir(Path(tmp_path), grown, bigger, "snr10") != folders[n]  # same campaigns, more sources
        evaluation_only = adversarial_data(preset, "whisper", GoalSpec("untargeted"), budget, tmp_path,
                                           progress=False, attack_splits=("test",))
        assert not evaluation_only.benign_calibration_sources()  # no thresholds are calibrated on those
    assert folders[0] != folders[4]  # thresholds set on other data never reuse a checkpoint
    per_kind = load_preset("smoke", [source, "detectors.calibration_sources=4", "detectors.fpr_per_kind=true"])
    assert detector_workdir(Path(tmp_path), per_kind, data, "snr10") != folders[4]  # thresholds set another way
    layered = load_preset("smoke", [source, "detectors.calibration_sources=4", "detectors.bnn_layer=encoder.layer_2"])
    assert layered.detectors.bnn_layer == "encoder.layer_2"
    assert detector_workdir(Path(tmp_path), layered, data, "snr10") != folders[4]  # another layer, another detector
    per_backend = load_preset("smoke", [source, "detectors.calibration_sources=4",
                                        "detectors.bnn_layer={whisper: encoder.layer_2, rnnt: subsampling}"])
    assert per_backend.detectors.layer_for("rnnt") == "subsampling" and per_backend.detectors.layer_for("x") is None
    # only the cell's own backend's entry keys its detectors
    assert detector_workdir(Path(tmp_path), per_backend, data, "snr10") == detector_workdir(Path(tmp_path), layered,
                                                                                            data, "snr10")


def test_the_bnn_is_built_from_its_component_config_on_the_layer_the_preset_names(monkeypatch, tmp_path):
    from evaluation import detector_suite

    built = {}

    class Built(Exception):
        pass

    def capture(base_class, config, *overrides):
        built.update(config=config)
        for override in overrides:
            built.update(override)
        raise Built  # stop before any training

    monkeypatch.setattr(detector_suite, "instantiate_component", capture)
    for layers, expected in (("{whisper: encoder.layer_1, rnnt: subsampling}", "encoder.layer_1"),
                             ("{rnnt: subsampling}", None)):
        preset = load_preset("smoke", [f"detectors.bnn_layer={layers}"])
        with pytest.raises(Built):
            detector_suite.train_bnn(preset, "whisper", None, "unsupervised", tmp_path / "cell", progress=False)
        assert built["backend"] == "whisper" and built["layer"] == expected
        assert built["config"] == "detectors/bnn.yaml"  # the file python train.py fit --config configs/bnn.yaml uses
        assert built["head"] == preset.detectors.bnn_heads["unsupervised"]
        assert built["optimizer"] == {"init_args": {"lr": 0.01}}  # the smoke preset's override of that file


def test_the_presets_bnn_overrides_build_the_module_they_name():
    from evaluation.components import instantiate_component
    from lit_modules.detectors.bnn_module import BNNDetectorModule

    preset = load_preset("smoke")
    module = instantiate_component(BNNDetectorModule, "detectors/bnn.yaml", preset.detectors.bnn, {
        "backend": None, "backend_factory": "tests.toy_system.toy_backend", "backend_options": {"seed": 0},
        "head": preset.detectors.bnn_heads["supervised"]})
    assert module.hparams.kl_weight == 0.01 and module.hparams.kl_warmup_steps == 0  # overridden
    assert module.head.frame_layer.mu_weight.shape[0] == 16  # the preset's head
    assert module.configure_optimizers().param_groups[0]["lr"] == 0.01
    assert module.hparams.mc_samples == 32
    with pytest.raises(Exception, match="kl_wieght"):
        instantiate_component(BNNDetectorModule, "detectors/bnn.yaml", {"kl_wieght": 0.1})


def test_task1_adaptive_rows_go_only_to_the_detectors_the_preset_names():
    cell = {"TD": object(), "consistency": object(), "BNN-supervised": object(), "BNN-unsupervised": object()}
    both = load_preset("smoke", ["task1_adaptive_detectors=[BNN-supervised, BNN-unsupervised]"])
    assert task1.adaptive_detector_names(both, cell) == ["BNN-supervised", "BNN-unsupervised"]
    chosen = load_preset("smoke")  # the smoke preset saves the unsupervised mode's adaptive campaigns
    assert task1.adaptive_detector_names(chosen, cell) == ["BNN-supervised"]
    assert task1.adaptive_detector_names(chosen, {"TD": object()}) == []  # a cell without that detector
    assert task1.adaptive_detector_names(load_preset("smoke", ["task1_adaptive=false"]), cell) == []
    with pytest.raises(Exception, match="task1_adaptive_detectors"):
        load_preset("smoke", ["task1_adaptive_detectors=[TD]"])  # TD wraps a live backend: no oracle can serve it


@pytest.mark.timeout(900)
def test_task1_smoke_end_to_end_and_rerun_reuses_attacks(tiny_corpus, shared_dir, monkeypatch):
    tmp_path = shared_dir
    for shard in ("0/2", "1/2"):  # two attack-only shards (as on two nodes) fill the shared cache ...
        runner.main("Task 1", task1.run, task1.TITLES, smallest(tiny_corpus, tmp_path) + ["--shard", shard])

    def no_attacks(*args, **kwargs):
        raise AssertionError("the evaluation run must reuse the cached campaigns")
    monkeypatch.setattr(campaigns.campaign, "OracleServer", no_attacks)  # ... and the evaluation attacks nothing
    out = runner.main("Task 1", task1.run, task1.TITLES, smallest(tiny_corpus, tmp_path) + ["task1_adaptive=false"])
    record = json.loads((out / "results.json").read_text())
    wer = record["tables"]["wer"]
    assert len(wer) == 1 and {"clean", "AG", "AE", "AZ", "AE success %"} <= set(wer[0])
    assert 0 <= wer[0]["clean"] <= 100 * 10 and wer[0]["clean_ci_low"] <= wer[0]["clean"] <= wer[0]["clean_ci_high"]
    detection = record["tables"]["detection"]
    assert [r["detector"] for r in detection] == ["TD", "consistency", "BNN-supervised", "BNN-unsupervised"]
    for row in detection:
        assert 0 <= row["AUC %"] <= 100 and 0 <= row["FP %"] <= 100 and 0 <= row["FN %"] <= 100
        assert 0 <= row["FP % (J)"] <= 100 and 0 <= row["FN % (J)"] <= 100 and 0 <= row["FP % clean"] <= 100
        for column in ("TPR % @1% FPR", "TPR % @5% FPR", "FP % babble", "FP % LS clean", "FP % DS clean"):
            assert 0 <= row[column] <= 100, column
        assert np.isnan(row["ECE %"]) == (row["detector"] != "BNN-supervised")  # only a probability has one
    assert "cross_attack" not in record["tables"]  # no training sets named: no matrix
    text = (out / "results.md").read_text()
    assert "| backend | budget | n | clean |" in text and "BNN-unsupervised" in text
    assert (out / "wer.csv").is_file() and (out / "detection.csv").is_file() and (out / "wer.png").is_file()
    assert (out / "dispersion_whisper_snr10.png").is_file() and (out / "roc_whisper_snr10.png").is_file()
    examples = listening.read(out)  # examples to listen to: test-split sources, each judged by the supervised BNN
    assert {e.attack for e in examples} == {"AG", "AE", "AZ"}
    assert all(e.detector == "BNN-supervised" and e.flagged is not None and Path(e.adversarial_audio).is_file()
               for e in examples)
    page = (out / "report.html").read_text()
    assert page.count("<audio") == 2 * len(examples) and page.count("data:image/png") == len(record["images"])

    from benchmarks import unsupervised_statistics  # the cell's campaigns and unsupervised BNN, reused (no attacks)
    args = smallest(tiny_corpus, tmp_path)
    for flag in ("--no-progress", "--no-wandb", "--results-dir", str(tmp_path / "results")):
        args.remove(flag)
    monkeypatch.setenv("ASR_ROBUSTNESS_CACHE", str(tmp_path / "cache"))  # its results file goes there too
    rows = unsupervised_statistics.main(args)
    assert [r["statistic"] for r in rows] == ["wasserstein", "dispersion", "mutual_information", "epistemic_fraction"]
    assert all(0 <= r["AUC % vs AG"].value <= 100 and 0 <= r["AUC % vs clean"].value <= 100 for r in rows)
    assert all(r["mean clean"] >= 0 and r["mean AG"] >= 0 for r in rows)
    assert (tmp_path / "cache" / "results" / "unsupervised_statistics.json").is_file()

    monkeypatch.undo()  # the rerun adds the adaptive rows: new campaigns against each trained BNN
    again = runner.main("Task 1", task1.run, task1.TITLES,
                        smallest(tiny_corpus, tmp_path) + ["detectors.cross_attack=[[AE]]"])
    rerun = json.loads((again / "results.json").read_text())["tables"]
    matrix = rerun["cross_attack"]
    assert [r["detector"] for r in matrix] == ["BNN-supervised trained on AE", "BNN-supervised", "BNN-unsupervised"]
    assert len(list((tmp_path / "cache" / "detectors").rglob("bnn-supervised-AE.ckpt"))) == 1  # its own training
    for family in ("AE", "AZ", "AE adaptive", "AZ adaptive"):
        assert all(0 <= r[f"{family} AUC %"] <= 100 and 0 <= r[f"{family} TPR % @1% FPR"] <= 100 for r in matrix)
    assert rerun["wer"][0]["AE"] == wer[0]["AE"]  # the untargeted campaigns were reused
    assert [r["detector"] for r in rerun["detection"]][4:] == ["BNN-supervised vs adaptive"]
    assert all(0 <= r["AUC %"] <= 100 and 0 <= r["attack success %"] <= 100 for r in rerun["detection"])
    lines = (tmp_path / "results" / "leaderboard.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["versions"]["torch"] != "absent"


@pytest.mark.timeout(900)
def test_task2_smoke_end_to_end(tiny_corpus, shared_dir):
    tmp_path = shared_dir
    out = runner.main("Task 2", task2.run, task2.TITLES, smallest(tiny_corpus, tmp_path))
    table = json.loads((out / "results.json").read_text())["tables"]["unsuccessful_rate"]
    assert [r["evaluation"] for r in table] == ["AE", "AE + LS", "AE + DS", "AE + SE", "AE + TD", "AE + BNN",
                                                "AZ", "AZ + LS", "AZ + DS", "AZ + SE", "AZ + TD", "AZ + BNN"]
    carrier = runner.main("Task 2", task2.run, task2.TITLES, smallest(tiny_corpus, tmp_path) + [
        "attacks=[AZ, AC]", "task2_defenses=[none, DS, BNN]", "task2_adaptive=true"])  # a row family of its own
    rows = json.loads((carrier / "results.json").read_text())["tables"]["unsuccessful_rate"]
    assert [(r["setting"], r["evaluation"]) for r in rows if r["evaluation"].startswith("AC")] == [
        ("non-adaptive", "AC"), ("non-adaptive", "AC + DS"), ("non-adaptive", "AC + BNN"),
        ("adaptive", "AC + DS"), ("adaptive", "AC + BNN")]
    for row in table:
        assert 0 <= row["whisper"] <= 100 and row["Avg."] == row["whisper"]
    # a defense or a detector can only make attacks fail more often
    by_name = {r["evaluation"]: r["whisper"] for r in table}
    examples = listening.read(out)
    assert {e.attack for e in examples} == {"AE", "AZ"} and all(e.target == "OPEN THE DOOR" for e in examples)
    assert (out / "success_targeted_whisper_snr10.png").is_file() and (out / "report.html").is_file()
    assert by_name["AE + TD"] >= by_name["AE"] and by_name["AZ + BNN"] >= by_name["AZ"]
