"""Generating the synthetic corpus in LibriSpeech layout: resumable, idempotent, parallel.

``<out>/LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` (16-bit FLAC) with
``<speaker>-<chapter>.trans.txt`` per chapter, ``<out>/LibriSpeech/SPEAKERS.TXT``, and ``<out>/corpus.json``
(configuration and statistics), written last: its presence marks a finished corpus.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm.auto import tqdm

from core.audio_io import resample
from core.cache_dir import default_cache_dir
from datamodules.corpus_statistics import corpus_statistics
from datamodules.synthetic.corpus_config import SPLITS, SyntheticCorpusConfig
from core.espeak import EspeakEngine, VoiceSettings, fresh_process_context
from core.logs import progress_options
from datamodules.synthetic.grammar import SentenceGrammar
from datamodules.synthetic.speakers import SyntheticSpeaker, make_speakers

log = logging.getLogger(__name__)
MARKER = "corpus.json"
_SPEECH_RMS_RANGE = (0.07, 0.12)  # per-speaker recording level (real read speech sits near 0.09-0.10)
_EDGE_SILENCE_S = (0.05, 0.25)


@dataclass(frozen=True)
class ChapterJob:
    """One chapter to render: (utterance id, text) pairs of one speaker."""

    chapter_dir: Path
    speaker: SyntheticSpeaker
    items: tuple[tuple[str, str], ...]
    seed: int
    sample_rate: int
    noise_snr_db: float | None


def default_corpus_dir(config: SyntheticCorpusConfig) -> Path:
    """``<cache>/corpora/synthetic-<config fingerprint>``."""
    return default_cache_dir() / "corpora" / f"synthetic-{config.fingerprint()}"


def plan_corpus(config: SyntheticCorpusConfig, out_dir: Path) -> list[ChapterJob]:
    """Every chapter of the corpus, fully determined by ``config``."""
    total_speakers = sum(config.speakers_in(s) for s in SPLITS)
    speakers = make_speakers(total_speakers, seed=config.seed)
    grammar = SentenceGrammar(command_fraction=config.command_fraction)
    jobs: list[ChapterJob] = []
    start = 0
    for split in SPLITS:
        for speaker in speakers[start : start + config.speakers_in(split)]:
            texts = grammar.sentences(config.utterances_per_speaker(split), seed=config.seed * 100_003 + speaker.speaker_id)
            for chapter_index, first in enumerate(range(0, len(texts), config.utterances_per_chapter), start=1):
                chapter_dir = out_dir / "LibriSpeech" / split / str(speaker.speaker_id) / str(chapter_index)
                items = tuple(
                    (f"{speaker.speaker_id}-{chapter_index}-{number:04d}", text)
                    for number, text in enumerate(texts[first : first + config.utterances_per_chapter])
                )
                jobs.append(ChapterJob(chapter_dir, speaker, items, config.seed, config.sample_rate, config.noise_snr_db))
        start += config.speakers_in(split)
    return jobs


def render_utterance(text: str, voice: VoiceSettings, rng: np.random.Generator, sample_rate: int,
                     level_rms: float, noise_snr_db: float | None) -> np.ndarray:
    """Synthesize ``text``; returns float32 [T] at ``sample_rate`` with edge silence, level and optional noise."""
    engine = EspeakEngine.instance()
    pcm = engine.synthesize(text.lower(), voice, seed=int(rng.integers(2**31)))
    speech = resample(torch.from_numpy(pcm.astype(np.float32) / 32768.0), engine.sample_rate, sample_rate).numpy()
    speech = speech * (level_rms / max(float(np.sqrt(np.mean(speech**2))), 1e-8))
    lead, tail = (int(rng.uniform(*_EDGE_SILENCE_S) * sample_rate) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), speech.astype(np.float32), np.zeros(tail, np.float32)])
    if noise_snr_db is not None:
        snr_db = rng.uniform(noise_snr_db, noise_snr_db + 10.0)
        noise_rms = level_rms / (10.0 ** (snr_db / 20.0))
        audio = audio + rng.standard_normal(audio.shape[0]).astype(np.float32) * noise_rms
    peak = float(np.max(np.abs(audio)))
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    return audio.astype(np.float32)


def _write_atomically(path: Path, write) -> None:
    temporary = path.with_name(path.name + ".partial")
    write(temporary)
    os.replace(temporary, path)


def render_chapter(job: ChapterJob) -> tuple[int, int]:
    """Render one chapter; returns (utterances written, utterances already there).

    A finished chapter (its transcript file exists, written last) is reused as it is. An unfinished one is
    rendered again from its first utterance: espeak-ng keeps internal state from one utterance to the next,
    so the audio is reproducible only when a chapter is rendered whole, in order, by a fresh engine
    (``generate_corpus`` gives every chapter a fresh process).
    """
    speaker, chapter = job.chapter_dir.parent.name, job.chapter_dir.name
    transcript_path = job.chapter_dir / f"{speaker}-{chapter}.trans.txt"
    audio_paths = [job.chapter_dir / f"{utterance_id}.flac" for utterance_id, _ in job.items]
    if transcript_path.is_file() and all(path.is_file() for path in audio_paths):
        return 0, len(job.items)
    job.chapter_dir.mkdir(parents=True, exist_ok=True)
    level_rms = random.Random(job.seed * 7919 + job.speaker.speaker_id).uniform(*_SPEECH_RMS_RANGE)
    for number, ((utterance_id, text), audio_path) in enumerate(zip(job.items, audio_paths)):
        rng = np.random.default_rng([job.seed, job.speaker.speaker_id, int(chapter), number])
        audio = render_utterance(text, job.speaker.voice, rng, job.sample_rate, level_rms, job.noise_snr_db)
        _write_atomically(audio_path, lambda p: soundfile.write(str(p), audio, job.sample_rate, subtype="PCM_16", format="FLAC"))
    transcript = "".join(f"{utterance_id} {text}\n" for utterance_id, text in job.items)
    _write_atomically(transcript_path, lambda p: p.write_text(transcript, encoding="utf-8"))
    return len(job.items), 0


def _worker_init() -> None:
    torch.set_num_threads(1)


def _write_speakers_file(jobs: list[ChapterJob], out_dir: Path) -> None:
    rows, seen = [";ID  |SUBSET|VOICE"], set()
    for job in jobs:
        if job.speaker.speaker_id not in seen:
            seen.add(job.speaker.speaker_id)
            split = job.chapter_dir.parent.parent.name
            rows.append(f"{job.speaker.speaker_id} | {split} | {job.speaker.description}")
    (out_dir / "LibriSpeech" / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n", encoding="utf-8")


def generate_corpus(
    config: SyntheticCorpusConfig | None = None,
    out_dir: str | Path | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Generate (or finish, or reuse) the synthetic corpus and return its ``corpus.json`` content.

    Args:
        config: what to generate (default ``SyntheticCorpusConfig()``).
        out_dir: corpus root; default ``default_corpus_dir(config)`` in the cache.
        num_workers: processes (default: the CPU count).
        progress: show a progress bar.

    Returns:
        ``{"config": ..., "statistics": ..., "generation": {...}, "root": ...}``.

    Raises:
        ValueError: ``out_dir`` holds a finished corpus made with another configuration.
    """
    config = config or SyntheticCorpusConfig()
    out_dir = Path(out_dir) if out_dir is not None else default_corpus_dir(config)
    marker = out_dir / MARKER
    if marker.is_file():
        finished = json.loads(marker.read_text(encoding="utf-8"))
        if finished.get("config") != config.to_dict():
            raise ValueError(
                f"{out_dir} already holds a synthetic corpus made with another configuration "
                f"({finished.get('config')}); choose another folder or delete it"
            )
        log.info("synthetic corpus already complete at %s", out_dir)
        return finished
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_corpus(config, out_dir)
    workers = max(1, min(num_workers or os.cpu_count() or 1, len(jobs)))
    started = time.perf_counter()
    written = reused = 0
    bar = tqdm(total=config.total_utterances, desc="synthesizing corpus", unit="utt", **progress_options(progress))
    # A fresh process per chapter (forked from a server that never ran espeak-ng) keeps the audio reproducible.
    with fresh_process_context([__name__]).Pool(workers, initializer=_worker_init, maxtasksperchild=1) as pool:
        for new, old in pool.imap_unordered(render_chapter, jobs):
            written, reused = written + new, reused + old
            bar.update(new + old)
    bar.close()
    seconds = time.perf_counter() - started
    _write_speakers_file(jobs, out_dir)
    summary = {
        "root": str(out_dir),
        "config": config.to_dict(),
        "statistics": corpus_statistics(str(out_dir), list(SPLITS)),
        "generation": {"seconds": seconds, "written": written, "reused": reused, "workers": workers},
    }
    _write_atomically(marker, lambda p: p.write_text(json.dumps(summary, indent=2), encoding="utf-8"))
    return summary
