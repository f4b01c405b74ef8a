"""The public pretrained recognizers load by name from their real file layouts (replicas with random weights,
``tests/replicas.py``), and a missing one stops at once with the command that fetches it (issue: real recognizers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_modules.backends.base import Capability
from lit_modules.backends.catalog import ModelNotAvailableError, require_available
from lit_modules.backends.registry import load_backend
from tests import replicas


def test_wav2vec2_base_960h_loads_at_full_size_with_the_published_parameter_count(tmp_path):
    folder = replicas.wav2vec2_base_960h(tmp_path / "wav2vec2-base-960h")
    backend = load_backend("wav2vec2_base_960h", source=str(folder))
    assert sum(p.numel() for p in backend.parameters()) == replicas.WAV2VEC2_BASE_960H_PARAMETERS
    assert backend.capabilities == {Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE}
    assert backend.hidden_layers == ["feature_projection"] + [f"encoder.layer_{i}" for i in range(12)]
    model = backend.model
    assert not model.uses_attention_mask and model.normalize  # the base model's feature-extractor settings
    assert model.vocabulary.decode(model.vocabulary.encode_batch(["OPEN THE DOOR"])[0][0].tolist()) == "OPEN THE DOOR"


def test_a_missing_pretrained_model_stops_at_once_with_its_fetch_command(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    message = "facebook/wav2vec2-base-960h is not on this machine.*`hf download facebook/wav2vec2-base-960h`"
    with pytest.raises(ModelNotAvailableError, match=message):
        require_available("wav2vec2_base_960h")
    with pytest.raises(ModelNotAvailableError, match=message):
        load_backend("wav2vec2_base_960h")
    with pytest.raises(ModelNotAvailableError, match="no-such-folder"):
        load_backend("hf_ctc", source=str(tmp_path / "no-such-folder"))
    with pytest.raises(ValueError, match="needs a source"):
        load_backend("hf_ctc")


def test_a_hub_id_resolves_to_its_snapshot_in_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """The layout ``hf download`` leaves: models--<org>--<name>/snapshots/<revision>/ and refs/main."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--facebook--wav2vec2-base-960h" / "snapshots" / "0123abcd"
    replicas.wav2vec2_base_960h(snapshot, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=32,
                                conv_dim=16)
    (cache / "models--facebook--wav2vec2-base-960h" / "refs").mkdir()
    (cache / "models--facebook--wav2vec2-base-960h" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    backend = load_backend("wav2vec2_base_960h")
    waveforms = torch.randn(2, 16_000) * 0.1
    assert len(backend.transcribe(waveforms, torch.tensor([16_000, 12_000]))) == 2


def test_a_benchmark_naming_a_missing_model_stops_before_any_work(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from evaluation import runner, task1

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelNotAvailableError, match="`hf download facebook/wav2vec2-base-960h`"):
        runner.main("Task 1", task1.run, task1.TITLES, ["--preset", "smoke", "--set", "backends=[wav2vec2_base_960h]",
                                                        "--cache-dir", str(tmp_path / "cache"), "--no-wandb"])
    assert not (tmp_path / "cache").exists()  # no campaign, no corpus, no results folder


def test_the_attack_side_checks_a_pretrained_model_before_the_oracle_starts(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from lit_modules.target_system import prepare_system

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelNotAvailableError, match="hf download facebook/hubert-large-ls960-ft"):
        prepare_system("hubert_large_ls960_ft", device="cpu")


@pytest.mark.parametrize("family", ["hf_ctc", "torchaudio_rnnt"])
def test_each_pretrained_family_is_attacked_with_scores_through_the_oracle(family, tmp_path, attacker, torch_home,
                                                                        monkeypatch):
    """The oracle's process loads the model by name (the replica: its files where the real ones go) and answers the
    score-based AZ with scores, for every family."""
    import functools

    import soundfile

    from attacks.campaign import GoalSpec, SourceUtterance, build_by_name, run_campaign
    from attacks.constraints import PerturbationBudget
    from attacks.oracle import OracleServer
    from attacks.zeroth_order import ZerothOrderAttack
    from tests.test_attacks import speech_like

    if family == "hf_ctc":
        folder = replicas.wav2vec2_base_960h(tmp_path / "replica", hidden_size=32, num_layers=1, num_heads=2,
                                             intermediate_size=32, conv_dim=16)
        system = {"backend": "wav2vec2_base_960h", "source": str(folder)}
    else:
        monkeypatch.setenv("TORCH_HOME", str(torch_home))  # (the oracle's process inherits it)
        system = {"backend": "emformer_rnnt_librispeech"}
    soundfile.write(str(tmp_path / "clean.flac"), speech_like(0.8), 16_000)
    factory = functools.partial(build_by_name, "lit_modules.target_system.build_system", **system)
    with OracleServer(factory) as server:
        assert server.info["can_score"]
        scores = server.session(2).score(np.stack([speech_like(0.8)] * 2), ["OPEN THE DOOR", "TURN ON THE LIGHT"])
        assert scores.shape == (2,) and np.isfinite(scores).all() and scores[0] != scores[1]
        cache = run_campaign([SourceUtterance("utt-0", str(tmp_path / "clean.flac"), "TURN ON THE LIGHT")], factory,
                             family, ZerothOrderAttack(directions=4), GoalSpec("untargeted", min_wer=10.0),
                             PerturbationBudget("snr"), tmp_path / "cache", query_budget=12, progress=False,
                             server=server, attacker=attacker)
    (record,) = cache.records()
    assert 6 <= record["queries"] <= 12 and len(record["history"]) >= 2


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A torch home whose hub folder holds a replica of the Emformer RNN-T bundle's files."""
    home = tmp_path_factory.mktemp("torch-home")
    replicas.emformer_rnnt_librispeech(home / "hub")
    return home


def test_emformer_rnnt_loads_at_full_size_from_torch_hubs_folder(torch_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    backend = load_backend("emformer_rnnt_librispeech")
    assert sum(p.numel() for p in backend.parameters()) == replicas.EMFORMER_RNNT_PARAMETERS
    assert backend.capabilities == {Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE}
    waveforms, lengths = torch.randn(2, 24_000) * 0.1, torch.tensor([24_000, 20_000])
    texts = backend.transcribe(waveforms, lengths)
    scores = backend.score(waveforms, lengths, ["OPEN THE DOOR", texts[1]])
    assert len(texts) == 2 and scores.shape == (2,) and torch.isfinite(scores).all()
    states, frames = backend.hidden(waveforms, lengths, "encoder.output")
    assert states.shape == (2, int(frames.max()), 1024) and frames.tolist() == [37, 31]  # 40 ms frames


def test_a_missing_torchaudio_bundle_stops_with_its_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    with pytest.raises(ModelNotAvailableError, match=r"EMFORMER_RNNT_BASE_LIBRISPEECH bundle is not on this machine.*"
                                                     r"b = torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH; "
                                                     r"b.get_decoder\(\)"):
        load_backend("emformer_rnnt_librispeech")
    with pytest.raises(ValueError, match="needs a bundle option"):
        load_backend("torchaudio_rnnt")
