"""The ``paper`` preset end to end on replicas of its pretrained recognizers at its smallest size (issue: real
recognizers): Task 1 and Task 2 run from the preset as a user runs them, with the models where the real ones go."""

from __future__ import annotations

import json

import pytest

from lit_modules.backends import replicas


@pytest.fixture
def paper_models(tmp_path, monkeypatch):
    """The replicas in a Hugging Face cache and a torch home, named by environment (as a user's machine would) so
    that the oracle's own process finds them too."""
    import huggingface_hub.constants

    hf_cache, torch_home = tmp_path / "hf-cache", tmp_path / "torch-home"
    replicas.install_paper_replicas(hf_cache, torch_home)
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))


@pytest.fixture
def tiny_librispeech(tiny_corpus, tmp_path):
    """A LibriSpeech-layout folder whose dev-clean is the tiny synthetic corpus' test split."""
    root = tmp_path / "librispeech"
    (root / "LibriSpeech").mkdir(parents=True)
    (root / "LibriSpeech" / "dev-clean").symlink_to(next(tiny_corpus.rglob("test")), target_is_directory=True)
    return root


@pytest.mark.slow
@pytest.mark.timeout(5400)  # about 50 min on 2 shared cores (docs/backends.md)
def test_the_paper_preset_runs_task1_and_task2_on_its_pretrained_recognizers(paper_models, tiny_librispeech, tmp_path):
    from evaluation import runner, task1, task2

    smallest = ["--preset", "paper", "--set", f"source.root={tiny_librispeech}", "source.test_subset=4",
                "query_budget=20", "hardware.accelerator=cpu", "hardware.precision=32-true", "hardware.oracle_device=cpu",
                "hardware.oracle_precision=32",
                "detectors.bnn_epochs=2", "se_epochs=1", "bootstrap_resamples=50",
                # the random-weight RNN-T would emit up to 100 symbols per frame: bounded, as gpu_check does
                "backend_options.emformer_rnnt_librispeech={step_max_tokens: 2}",
                "--cache-dir", str(tmp_path / "cache"), "--no-wandb"]
    names = ["emformer_rnnt_librispeech", "speechbrain_conformer_librispeech", "wav2vec2_base_960h", "whisper"]
    for task, module in (("Task 1", task1), ("Task 2", task2)):
        folder = runner.main(task, module.run, module.TITLES, smallest)
        tables = json.loads((folder / "results.json").read_text())
        text = json.dumps(tables)
        assert all(name in text for name in names), (task, sorted(tables))
        if task == "Task 1":  # the carrier attack is a column, and the cross-attack matrix tests it unseen
            assert all("AC" in row for row in tables["tables"]["wer"])
            assert {r["detector"] for r in tables["tables"]["cross_attack"]} >= {"BNN-supervised trained on AE+AZ"}
            assert all("AC AUC %" in r for r in tables["tables"]["cross_attack"])
        else:  # a third row family
            assert any(r["evaluation"].startswith("AC") for r in tables["tables"]["unsuccessful_rate"])
