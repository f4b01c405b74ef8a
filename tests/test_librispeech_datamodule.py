import torch

from datamodules import LibriSpeechDataModule, SpeechBatch
from datamodules.librispeech_index import scan_split
from datamodules.selection import filter_by_duration, seeded_subset
from tests.conftest import TINY_CORPUS


def _real_module(root, **kwargs):
    return LibriSpeechDataModule(root=str(root), train_splits=["dev-clean"], val_splits=["dev-clean"],
                                 test_splits=["dev-clean"], **kwargs)


def test_reads_real_librispeech_layout(real_speech_root):
    module = _real_module(real_speech_root, batch_size=4, bucket_by_length=False)
    module.setup("test")
    utterances = module.utterances["test"]
    assert len(utterances) == 12
    assert {u.speaker_id for u in utterances} == {"9001", "9002"}
    transcripts = dict(
        line.split(" ", 1) for line in (real_speech_root / "LibriSpeech/dev-clean/9001/1/9001-1.trans.txt")
        .read_text().splitlines()
    )
    first = utterances[0]
    assert first.utterance_id == "9001-1-0000"
    assert first.transcript == transcripts["9001-1-0000"].strip()
    assert all(1.5 < u.duration < 3.5 for u in utterances)

    batches = list(module.test_dataloader())
    assert [len(b.utterance_ids) for b in batches] == [4, 4, 4]
    batch = batches[0]
    assert isinstance(batch, SpeechBatch)
    assert batch.waveforms.dtype == torch.float32 and batch.waveforms.ndim == 2
    assert batch.lengths.tolist() == [u.num_frames for u in utterances[:4]]
    assert int(batch.lengths.max()) == batch.waveforms.shape[1]
    for row, length in enumerate(batch.lengths.tolist()):
        assert torch.all(batch.waveforms[row, length:] == 0)
        assert batch.waveforms[row, :length].abs().max() > 0.01
    assert batch.transcripts[0] == first.transcript


def test_synthetic_default_is_generated_on_first_use(tmp_path):
    module = LibriSpeechDataModule(synthetic=TINY_CORPUS, synthetic_dir=str(tmp_path / "corpus"), batch_size=5)
    module.prepare_data()
    module.setup("fit")
    assert (tmp_path / "corpus" / "corpus.json").is_file()
    assert module.num_train_utterances == TINY_CORPUS.train_speakers * TINY_CORPUS.train_utterances_per_speaker
    assert {u.split for u in module.utterances["val"]} == {"dev"}
    batch = next(iter(module.train_dataloader()))
    assert batch.waveforms.shape[0] == 5
    assert all(text for text in batch.transcripts)


def test_data_module_without_prepare_data_still_generates(tmp_path):
    module = LibriSpeechDataModule(synthetic=TINY_CORPUS, synthetic_dir=str(tmp_path / "c"))
    assert len(module.stage_utterances("test")) == TINY_CORPUS.test_speakers * TINY_CORPUS.eval_utterances_per_speaker


def test_seeded_subset_is_deterministic_and_seed_dependent(tiny_corpus):
    utterances, _ = scan_split(tiny_corpus, "train")
    first = seeded_subset(utterances, 7, seed=1)
    assert len(first) == 7
    assert seeded_subset(list(reversed(utterances)), 7, seed=1) == first  # independent of listing order
    assert seeded_subset(utterances, 7, seed=2) != first
    assert seeded_subset(utterances, None, seed=0) == sorted(utterances, key=lambda u: u.utterance_id)
    module = LibriSpeechDataModule(root=str(tiny_corpus), train_splits=["train"], train_subset=7, seed=1)
    assert module.stage_utterances("train") == first


def test_duration_filter(tiny_corpus):
    utterances, _ = scan_split(tiny_corpus, "train")
    durations = sorted(u.duration for u in utterances)
    middle = durations[len(durations) // 2]
    short = filter_by_duration(utterances, max_duration=middle)
    long = filter_by_duration(utterances, min_duration=middle)
    assert all(u.duration <= middle for u in short) and all(u.duration >= middle for u in long)
    assert len(short) + len(long) == len(utterances) + sum(d == middle for d in durations)
    module = LibriSpeechDataModule(root=str(tiny_corpus), test_splits=["test"], max_duration=0.01)
    try:
        module.setup("test")
    except ValueError as error:
        assert "no test utterance lies within" in str(error)
    else:
        raise AssertionError("an empty selection must be an error")


def test_bucketing_reduces_padding(tiny_corpus):
    def padding(module):
        total = 0
        for batch in module.train_dataloader():
            total += int(batch.lengths.max()) * len(batch.lengths) - int(batch.lengths.sum())
        return total

    kwargs = dict(root=str(tiny_corpus), train_splits=["train", "dev", "test"], batch_size=4, seed=0)
    bucketed = LibriSpeechDataModule(bucket_by_length=True, **kwargs)
    plain = LibriSpeechDataModule(bucket_by_length=False, **kwargs)
    assert padding(bucketed) < 0.5 * padding(plain)


def test_multiple_splits_per_stage(tiny_corpus):
    module = LibriSpeechDataModule(root=str(tiny_corpus / "LibriSpeech"), test_splits=["dev", "test"])
    assert {u.split for u in module.stage_utterances("test")} == {"dev", "test"}


def test_tests_write_into_a_temporary_cache_not_the_repository(session_cache):
    from core.cache_dir import default_cache_dir

    from tests.conftest import REPO_ROOT

    assert default_cache_dir() == session_cache and REPO_ROOT not in session_cache.parents
