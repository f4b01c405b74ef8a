"""Checkpoints and caches are read as data: a file carrying a pickled callable is refused by every loader, and the
callable never runs (issue: integrity). Each loader passes ``weights_only=True`` / ``allow_pickle=False`` itself
rather than relying on a library default."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tests.test_oracle_integrity import CreatesFile


@pytest.fixture
def booby_trapped(tmp_path, monkeypatch):
    """A Lightning-shaped checkpoint whose hyper-parameters hold a callable that creates ``marker`` when unpickled.
    torch is told to default to unpickling (as older releases did): only a loader that says ``weights_only=True``
    itself is safe then."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "checkpoint-ran-code"
    path = tmp_path / "trap.ckpt"
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6.6", "hparams_name": "kwargs",
                "hyper_parameters": {"optimizer": CreatesFile(str(marker))}}, path)
    return path, marker


def test_the_trained_backends_loader_refuses_pickled_code(booby_trapped):
    from lit_modules.backends.trained import TrainedModelBackend

    path, marker = booby_trapped
    with pytest.raises(Exception, match="Weights only load failed"):
        TrainedModelBackend.from_checkpoint(path)
    assert not marker.exists()


def test_the_bnn_detectors_loader_refuses_pickled_code(booby_trapped):
    from lit_modules.detectors.bnn_detector import BNNDetector

    path, marker = booby_trapped
    with pytest.raises(Exception, match="Weights only load failed"):
        BNNDetector(str(path))
    assert not marker.exists()


def test_the_enhancers_loader_refuses_pickled_code(booby_trapped):
    from lit_modules.defenses.enhancer_module import SpeechEnhancement

    path, marker = booby_trapped
    with pytest.raises(Exception, match="Weights only load failed"):
        SpeechEnhancement(str(path))
    assert not marker.exists()


def test_the_training_cli_refuses_pickled_code_in_ckpt_path(booby_trapped, tmp_path):
    """Lightning's CLI reads ``--ckpt_path`` twice: for its hyper-parameters (``weights_only=True`` in Lightning) and
    to restore the run, where our CLI passes ``weights_only=True`` unless told otherwise."""
    from train import cli_main

    path, marker = booby_trapped
    boring = "lightning.pytorch.demos.boring_classes"
    args = ["test", f"--model={boring}.BoringModel", f"--data={boring}.BoringDataModule", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}"]
    with pytest.raises(Exception, match="Weights only load failed"):
        cli_main([*args, f"--ckpt_path={path}"])
    assert not marker.exists()
    assert cli_main(args)._prepare_subcommand_kwargs("test")["weights_only"] is True
    assert cli_main([*args, "--weights_only=false"])._prepare_subcommand_kwargs("test")["weights_only"] is False


def test_the_activation_cache_refuses_pickled_arrays(tmp_path):
    from lit_modules.detectors.activation_cache import ActivationCache

    cache = ActivationCache(tmp_path / "activations")
    path = cache.path("example")
    path.parent.mkdir(parents=True)
    np.save(path, np.array([CreatesFile(str(tmp_path / "cache-ran-code"))], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle|Python objects"):
        cache.get_batch(["example"], compute=lambda missing: pytest.fail("the cached file was not read"))
    assert not os.path.exists(tmp_path / "cache-ran-code")
