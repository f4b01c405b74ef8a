"""Where generated corpora, adversarial caches, checkpoints and run outputs go by default."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV_VAR = "ASR_ROBUSTNESS_CACHE"


def default_cache_dir() -> Path:
    """``$ASR_ROBUSTNESS_CACHE`` if set; else ``.cache/`` at the repository root (git-ignored) for a source
    checkout; else ``~/.cache/asr-robustness``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    repo_root = Path(__file__).resolve().parent.parent
    if (repo_root / "pyproject.toml").is_file():
        return repo_root / ".cache"
    return Path.home() / ".cache" / "asr-robustness"
