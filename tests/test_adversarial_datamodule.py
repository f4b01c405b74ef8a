"""AdversarialDataModule on the tiny synthetic corpus with the toy recognizer (tests/toy_system.py)."""

from __future__ import annotations

import pytest

from attacks.gaussian import GaussianNoise
from attacks.zeroth_order import ZerothOrderAttack
from campaigns.campaign import GoalSpec
from campaigns.launcher import generate
from datamodules.adversarial import AdversarialDataModule, AttackSpec
from datamodules.adversarial.datamodule import CampaignsNotGeneratedError
from datamodules.librispeech import LibriSpeechDataModule


def _datamodule(tiny_corpus, tmp_path, **overrides) -> AdversarialDataModule:
    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["dev", "test"], seed=0)
    options = dict(
        source=source, system={"seed": 0}, system_factory="tests.toy_system.toy_system",
        attacks=[AttackSpec(GaussianNoise(10.0), adversarial=False),
                 AttackSpec(ZerothOrderAttack(directions=4, factor=1, envelope=False), only_successful=False)],
        goal=GoalSpec("untargeted", min_wer=0.3), query_budget=15, batch_size=4, cache_root=str(tmp_path / "adv"),
        split_fractions=(0.5, 0.25, 0.25), progress=False,
    )
    return AdversarialDataModule(**{**options, **overrides})


def _ready(datamodule: AdversarialDataModule) -> AdversarialDataModule:
    """Run the module's campaigns (the explicit step), then read them."""
    generate(datamodule)
    datamodule.setup("fit")
    return datamodule


def test_the_data_module_only_reads_and_names_how_to_generate_what_is_missing(tiny_corpus, tmp_path):
    datamodule = _datamodule(tiny_corpus, tmp_path, system_factory="no.such.factory")  # reading starts no oracle
    with pytest.raises(CampaignsNotGeneratedError, match=r"AG-untargeted.*: 12 of 12 sources not attacked.*"
                                                         r"campaigns.launcher.generate\(datamodule\)"):
        datamodule.setup("fit")
    generate(_datamodule(tiny_corpus, tmp_path, attacks=[AttackSpec(GaussianNoise(10.0), adversarial=False)]))
    with pytest.raises(CampaignsNotGeneratedError, match="AZ-untargeted") as error:  # AG is done now, AZ is not
        datamodule.setup("fit")
    assert "AG-untargeted" not in str(error.value)


def test_labels_kinds_and_source_disjoint_splits(tiny_corpus, tmp_path):
    datamodule = _datamodule(tiny_corpus, tmp_path)
    _ready(datamodule)
    sources = {stage: {e.source_id for e in datamodule.examples[stage]} for stage in ("train", "val", "test")}
    assert not (sources["train"] & sources["val"]) and not (sources["train"] & sources["test"])
    assert not (sources["val"] & sources["test"])
    everything = [e for stage in datamodule.examples.values() for e in stage]
    assert len(everything) == 12 * 3  # 12 sources x (clean, AG, AZ)
    assert {(e.kind, e.label) for e in everything} == {("clean", 0), ("AG", 0), ("AZ", 1)}
    assert datamodule.num_train_examples == len(datamodule.examples["train"]) > 0
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.waveforms.shape[0] == batch.labels.shape[0] == len(batch.kinds) <= 4
    assert batch.lengths.max() == batch.waveforms.shape[1]


def test_a_second_datamodule_reuses_the_cache(tiny_corpus, tmp_path):
    _ready(_datamodule(tiny_corpus, tmp_path))
    again = _datamodule(tiny_corpus, tmp_path, system_factory="no.such.factory")  # would fail if it attacked again
    _ready(again)
    assert sum(len(v) for v in again.examples.values()) == 36


def test_attack_command_writes_cache_and_summary(tiny_corpus, tmp_path, capsys):
    from attack import main

    summary = main(["--config", "configs/attacks/az.yaml", "--system_factory", "tests.toy_system.toy_system",
                    "--system", '{"seed": 0}', f"--data.init_args.synthetic_dir={tiny_corpus}",
                    "--data.init_args.test_subset=2", "--query_budget=20", f"--cache_root={tmp_path}",
                    "--attack.init_args.directions=4"])
    assert summary["examples"] == 2 and 0 <= summary["success_rate"] <= 1 and summary["max_linf"] <= 0.01 + 1e-6
    out = capsys.readouterr().out
    assert "| AZ untargeted linf0.01 | 2 |" in out
    assert list(tmp_path.glob("*/summary.md"))


def test_attack_splits_limit_the_campaign_to_those_sources(tiny_corpus, tmp_path):
    datamodule = _datamodule(tiny_corpus, tmp_path, attack_splits=("test",))
    _ready(datamodule)
    assert not datamodule.examples["train"] and not datamodule.examples["val"]
    attacked = {r["utterance_id"] for _, cache in datamodule.campaigns() for r in cache.records()}
    assert attacked and attacked == {e.source_id for e in datamodule.examples["test"]}


def test_systems_with_a_defense_get_their_own_campaign_folder(tiny_corpus, tmp_path):
    plain = _datamodule(tiny_corpus, tmp_path)
    defended = _datamodule(tiny_corpus, tmp_path, system={"seed": 0, "defense": {"class_path": "x.LocalSmoothing"}})
    assert plain.system_label != defended.system_label
    assert plain.campaigns()[0][1].directory != defended.campaigns()[0][1].directory


def test_a_transfer_prior_reaches_only_the_attacks_that_use_it_and_keys_their_caches(tiny_corpus, tmp_path):
    """The toy surrogate (the victim's toy with perturbed weights) runs during generation; AZ's campaign is keyed on
    the prior spec, AG's is the same folder as without a prior; a rerun starts nothing (a bad factory would fail)."""
    attacks = [AttackSpec(GaussianNoise(10.0), adversarial=False),
               AttackSpec(ZerothOrderAttack(directions=4, factor=1, envelope=False, transfer_steps=3),
                          only_successful=False)]
    prior = {"seed": 0, "weight_noise": 0.3}
    guided = _datamodule(tiny_corpus, tmp_path, attacks=attacks, prior=prior,
                         prior_factory="tests.toy_system.toy_surrogate", attack_splits=("test",))
    _ready(guided)
    plain = _datamodule(tiny_corpus, tmp_path, attacks=attacks, attack_splits=("test",))
    (ag, ag_cache), (az, az_cache) = guided.campaigns()
    assert ag_cache.directory == plain.campaigns()[0][1].directory
    assert az_cache.directory != plain.campaigns()[1][1].directory and az_cache.config["prior"] == prior
    assert len(az_cache.records()) == len(guided.examples["test"]) // 3 > 0
    again = _datamodule(tiny_corpus, tmp_path, attacks=attacks, prior=prior, prior_factory="no.such.factory",
                        attack_splits=("test",))
    _ready(again)
    assert len(again.examples["test"]) == len(guided.examples["test"])


def test_benign_calibration_sources_join_only_the_val_split_as_benign(tiny_corpus, tmp_path):
    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["test"], val_splits=["dev"], seed=0)
    cheap = [AttackSpec(GaussianNoise(10.0), adversarial=False),  # a second, louder noise stands in for an attack
             AttackSpec(GaussianNoise(0.0), only_successful=False)]
    plain = _datamodule(tiny_corpus, tmp_path, source=source, attacks=cheap)
    _ready(plain)
    datamodule = _datamodule(tiny_corpus, tmp_path, source=source, attacks=cheap, calibration_sources=3,
                             calibration_stage="val")
    _ready(datamodule)
    calibration = {s.utterance_id for s in datamodule.benign_calibration_sources()}
    attacked = {s.utterance_id for s in datamodule.sources()}
    assert len(calibration) == 3 and not calibration & attacked
    added = [e for e in datamodule.examples["val"] if e.source_id in calibration]
    assert sorted(e.kind for e in added) == ["AG"] * 3 + ["clean"] * 3 and {e.label for e in added} == {0}
    for stage in ("train", "test"):  # the other splits, and the val split's attacked part, are unchanged
        assert datamodule.examples[stage] == plain.examples[stage]
    assert [e for e in datamodule.examples["val"] if e.source_id in attacked] == plain.examples["val"]
    # the AG campaign now also holds the calibration sources; statistics over the attacked sources leave them out
    benign_cache = datamodule.campaigns()[0][1]
    assert {r["utterance_id"] for r in benign_cache.records()} == attacked | calibration
    assert {r["utterance_id"] for r in datamodule.attacked_records(benign_cache)} == attacked
    adversarial_cache = datamodule.campaigns()[1][1]
    assert {r["utterance_id"] for r in adversarial_cache.records()} == attacked  # never attacked adversarially


def test_benign_training_sources_join_only_the_train_split_and_never_repeat_calibration_sources(tiny_corpus, tmp_path):
    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["test"], val_splits=["dev"], seed=0)
    cheap = [AttackSpec(GaussianNoise(10.0), adversarial=False), AttackSpec(GaussianNoise(0.0), only_successful=False)]
    calibrated = _datamodule(tiny_corpus, tmp_path, source=source, attacks=cheap, calibration_sources=3,
                             calibration_stage="val")
    _ready(calibrated)
    datamodule = _datamodule(tiny_corpus, tmp_path, source=source, attacks=cheap, calibration_sources=3,
                             calibration_stage="val", benign_train_sources=2)
    _ready(datamodule)
    training = {s.utterance_id for s in datamodule.benign_training_sources()}
    calibration = {s.utterance_id for s in datamodule.benign_calibration_sources()}
    attacked = {s.utterance_id for s in datamodule.sources()}
    assert len(training) == 2 and not training & (calibration | attacked)
    assert calibration == {s.utterance_id for s in calibrated.benign_calibration_sources()}  # the same draw as before
    added = [e for e in datamodule.examples["train"] if e.source_id in training]
    assert sorted(e.kind for e in added) == ["AG"] * 2 + ["clean"] * 2 and {e.label for e in added} == {0}
    assert [e for e in datamodule.examples["train"] if e.source_id not in training] == calibrated.examples["train"]
    assert datamodule.examples["val"] == calibrated.examples["val"] and datamodule.examples["test"] == calibrated.examples["test"]
    assert datamodule.num_train_examples == len(calibrated.examples["train"]) + 4  # the ELBO's N counts them
    assert {r["utterance_id"] for r in datamodule.campaigns()[1][1].records()} == attacked  # never attacked


def test_calibration_sources_must_exist(tiny_corpus, tmp_path):
    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["test"], val_splits=["dev"], seed=0)
    with pytest.raises(ValueError, match="calibration_sources=1000"):
        _datamodule(tiny_corpus, tmp_path, source=source, calibration_sources=1000).setup("fit")
    with pytest.raises(ValueError, match="calibration_stage"):
        _datamodule(tiny_corpus, tmp_path, calibration_stage="dev")
    with pytest.raises(ValueError, match="benign_train_sources=1000"):
        _datamodule(tiny_corpus, tmp_path, source=source, benign_train_sources=1000).setup("fit")
    with pytest.raises(ValueError, match="benign_train_sources must be >= 0"):
        _datamodule(tiny_corpus, tmp_path, benign_train_sources=-1)


def test_enhancement_pairs_keep_the_splits_and_add_identity_pairs_only_when_asked(tiny_corpus, tmp_path):
    from datamodules.adversarial.pairs import EnhancementPairsDataModule

    adversarial = _datamodule(tiny_corpus, tmp_path)
    generate(adversarial)
    perturbed_only = EnhancementPairsDataModule(adversarial, batch_size=2)
    perturbed_only.setup("fit")
    with_identity = EnhancementPairsDataModule(_datamodule(tiny_corpus, tmp_path), batch_size=2, identity_pairs=True)
    with_identity.setup("fit")
    sources = {s.utterance_id: s.audio_path for s in adversarial.sources()}
    for split, examples in adversarial.examples.items():
        perturbed = perturbed_only.pairs[split]
        assert len(perturbed) == sum(e.kind != "clean" for e in examples) > 0
        assert all(noisy != clean and clean in sources.values() for noisy, clean in perturbed)
        identity = [pair for pair in with_identity.pairs[split] if pair not in perturbed]
        assert sorted(identity) == sorted((sources[e.source_id],) * 2 for e in examples if e.kind == "clean")
    perturbed, clean, lengths = next(iter(with_identity.train_dataloader()))
    assert perturbed.shape == clean.shape and perturbed.shape[0] == lengths.shape[0] <= 2


def test_enhancement_pairs_pair_the_benign_only_sources_with_their_own_recordings(tiny_corpus, tmp_path):
    """Benign calibration and training sources are no attacked sources, yet their noisy examples sit in the splits
    (a Task 2 run with ``detectors.calibration_sources`` once stopped here on their ids)."""
    from datamodules.adversarial.pairs import EnhancementPairsDataModule

    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["test"], val_splits=["dev"], seed=0)
    cheap = [AttackSpec(GaussianNoise(10.0), adversarial=False), AttackSpec(GaussianNoise(0.0), only_successful=False)]
    adversarial = _datamodule(tiny_corpus, tmp_path, source=source, attacks=cheap, calibration_sources=3,
                              calibration_stage="val", benign_train_sources=2)
    generate(adversarial)
    pairs = EnhancementPairsDataModule(adversarial, batch_size=2)
    pairs.setup("fit")
    clean_of = {s.utterance_id: s.audio_path for s in adversarial.benign_sources()}
    paired = {noisy: clean for split in pairs.pairs.values() for noisy, clean in split}
    benign_noisy = [e for split in adversarial.examples.values() for e in split
                    if e.source_id in clean_of and e.kind != "clean"]
    assert len(clean_of) == len(benign_noisy) == 5
    assert all(paired[e.path] == clean_of[e.source_id] for e in benign_noisy)


def test_the_training_cli_generates_the_campaigns_an_enhancement_pairs_module_reads(tiny_corpus, tmp_path):
    """``python train.py fit --config configs/se.yaml``: the pairs module wraps the adversarial one; the CLI runs its
    campaigns before fitting (the data module itself would only raise)."""
    from train import cli_main

    adversarial = "--data.init_args.adversarial.init_args"
    cli = cli_main(["--config", "configs/se.yaml", "--config", "configs/se_gaussian.yaml",
                    f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
                    f"{adversarial}.source.init_args.synthetic_dir={tiny_corpus}",
                    f"{adversarial}.source.init_args.test_subset=4", f"{adversarial}.cache_root={tmp_path}/adv",
                    f"{adversarial}.system_factory=tests.toy_system.toy_system", f"{adversarial}.system={{seed: 0}}",
                    f"{adversarial}.query_budget=2", f"{adversarial}.progress=false"], run=False)
    plan = cli.datamodule.campaign_plans()[0]
    with pytest.raises(CampaignsNotGeneratedError):
        plan.check_generated()
    cli.before_fit()
    plan.check_generated()
    assert sum(len(cache.records()) for _, cache in plan.campaigns()) == 4
