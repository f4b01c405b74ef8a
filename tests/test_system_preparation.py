"""A missing small backend is trained in the caller's process before an oracle starts, never inside the oracle's
(daemon) process, which can neither start data-loader workers nor wait out a training run."""

from __future__ import annotations

import pytest

from campaigns.campaign import GoalSpec
from attacks.gaussian import GaussianNoise
from datamodules.adversarial import AdversarialDataModule, AttackSpec
from datamodules.librispeech import LibriSpeechDataModule
from lit_modules.backends import provisioning, registry
from campaigns.launcher import DEFAULT_SYSTEM_FACTORY, generate
from lit_modules.target_system import build_system, prepare_system


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """Record train_backend calls instead of training; checkpoints live in a temporary cache."""
    monkeypatch.setenv("ASR_ROBUSTNESS_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_train(name, extra_args=None, target=None):
        calls.append(name)
        path = registry.checkpoint_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"checkpoint")
        return path

    monkeypatch.setattr(provisioning, "train_backend", fake_train)
    return calls


def test_prepare_trains_a_missing_small_backend_once_and_nothing_else(trained):
    prepare_system("rnnt", decoding={"beam_size": 1})
    prepare_system("rnnt")  # now cached
    prepare_system("whisper", min_context_s=10.0)  # pretrained
    prepare_system("conformer_ctc", checkpoint="user.ckpt")  # the user's own checkpoint: load_backend checks it
    assert trained == ["rnnt"]


def test_prepare_refuses_to_train_one_copy_per_rank(trained):
    with pytest.raises(FileNotFoundError, match="train.py fit --config configs/asr/wav2vec2_ctc.yaml"):
        prepare_system("wav2vec2_ctc", world_size=2)
    assert trained == []


def test_the_oracle_side_factory_names_the_training_command_instead_of_training(trained):
    with pytest.raises(FileNotFoundError, match="python -m lit_modules.backends.provisioning conformer_ctc"):
        build_system("conformer_ctc")
    assert trained == []


def test_loading_never_trains_and_provisioning_is_the_explicit_step(trained):
    """The registry loads only; ``provisioning`` (``python -m lit_modules.backends.provisioning rnnt``) trains a
    missing small backend once, and nothing for a pretrained one."""
    with pytest.raises(FileNotFoundError, match="no checkpoint for rnnt"):
        registry.load_backend("rnnt")
    assert trained == []
    provisioning.main(["rnnt"])
    provisioning.main(["rnnt"])  # cached now
    assert provisioning.provision("whisper") is None
    assert trained == ["rnnt"]


class Prepared(Exception):
    pass


def test_the_datamodule_prepares_the_default_system_before_its_first_campaign(tiny_corpus, tmp_path, monkeypatch):
    seen = []

    def record(**system):
        seen.append(system)
        raise Prepared  # stop before an oracle would start

    monkeypatch.setattr("lit_modules.target_system.prepare_system", record)
    source = LibriSpeechDataModule(synthetic_dir=str(tiny_corpus), test_splits=["dev", "test"], seed=0)
    datamodule = AdversarialDataModule(
        source=source, system={"backend": "rnnt", "decoding": {"beam_size": 1}}, system_factory=DEFAULT_SYSTEM_FACTORY,
        attacks=[AttackSpec(GaussianNoise(10.0), adversarial=False)], goal=GoalSpec("untargeted"), query_budget=5,
        cache_root=str(tmp_path / "adv"), progress=False)
    with pytest.raises(Prepared):
        generate(datamodule)
    assert seen == [{"backend": "rnnt", "decoding": {"beam_size": 1}, "world_size": 1}]


def _start_a_grandchild(path: str) -> None:
    """What training with data-loader workers needs: a process that starts processes of its own."""
    import multiprocessing

    grandchild = multiprocessing.get_context("spawn").Process(target=_write, args=(path,))
    grandchild.start()
    grandchild.join()
    if grandchild.exitcode != 0:
        raise SystemExit(grandchild.exitcode)


def _write(path: str) -> None:
    with open(path, "w") as handle:
        handle.write("done")


def _fail() -> None:
    raise ValueError("preparation went wrong")


def test_run_in_child_lets_the_child_start_processes_and_reports_failure(tmp_path):
    import functools

    from attacks.process_host import HostError, run_in_child

    marker = tmp_path / "marker"
    run_in_child(functools.partial(_start_a_grandchild, str(marker)), name="preparation")
    assert marker.read_text() == "done"
    with pytest.raises(HostError, match="preparation process failed"):
        run_in_child(_fail, name="preparation")


def test_the_attack_command_prepares_the_default_system_in_a_child_before_attacking(tiny_corpus, tmp_path,
                                                                                   monkeypatch):
    from attack import main
    from attacks.process_host import HostError

    monkeypatch.setenv("ASR_ROBUSTNESS_CACHE", str(tmp_path / "cache"))  # no checkpoint there
    with pytest.raises(HostError, match="backend-training process failed"):  # world_size 2: refuses to train
        main(["--config", "configs/attacks/az.yaml", "--system", '{"backend": "rnnt"}', "--world_size=2",
              f"--data.init_args.synthetic_dir={tiny_corpus}", "--data.init_args.test_subset=2",
              f"--cache_root={tmp_path / 'adv'}"])
    assert not list((tmp_path / "adv").glob("*/manifest*"))  # nothing was attacked
