"""Provisioning: training the small backends and the attacker's surrogates, as an explicit step. Loading never trains
(``registry.load_backend`` raises naming this command when a checkpoint is missing).

    python -m lit_modules.backends.provisioning conformer_ctc [rnnt wav2vec2_ctc]   # each trained only when missing
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from core import logs
from lit_modules.backends.registry import CONFIG_DIR, TRAINED, checkpoint_path, surrogate_checkpoint_path

log = logging.getLogger(__name__)
SURROGATE_OVERLAY = CONFIG_DIR / "surrogate.yaml"


def train_backend(name: str, extra_args: list[str] | None = None, target: Path | None = None) -> Path:
    """Train ``name`` with ``train.py fit --config configs/asr/<name>.yaml [extra_args]`` and cache its best
    checkpoint (at ``target``, default ``checkpoint_path(name)``)."""
    from lit_modules.cli import cli_main

    config = CONFIG_DIR / f"{name}.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no training config for backend {name!r}")
    log.warning("no checkpoint for %s: training it now (python train.py fit --config %s)", name, config)
    cli = cli_main(["fit", "--config", str(config), *quiet_trainer_flags(), *(extra_args or [])])
    best = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    target = target or checkpoint_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, target)
    return target


def quiet_trainer_flags() -> list[str]:
    """Trainer flags for training inside a quiet run: no model summary, and no progress bar unless the output is a
    terminal (a bar in a log file is a line per redraw); none with ``--verbose``."""
    if logs.verbose():
        return []
    bar = [] if sys.stderr.isatty() else ["--trainer.enable_progress_bar=false"]
    return ["--trainer.enable_model_summary=false", *bar]


def train_surrogate(name: str, seed: int, corpus_seed: int = 1) -> Path:
    """The attacker's own ``name``, trained with ``seed`` on the synthetic corpus of ``corpus_seed`` (default 1:
    other voices and sentences than the victim's corpus 0; ``configs/asr/surrogate.yaml``):
    ``train.py fit --config configs/asr/<name>.yaml --config configs/asr/surrogate.yaml --seed_everything <seed>
    [--data.init_args.synthetic.seed <corpus_seed>]``. Returns the cached checkpoint (trained only when missing)."""
    target = surrogate_checkpoint_path(name, seed, corpus_seed)
    if not target.is_file():
        corpus = [] if corpus_seed == 1 else ["--data.init_args.synthetic.seed", str(corpus_seed)]
        train_backend(name, ["--config", str(SURROGATE_OVERLAY), "--seed_everything", str(seed), *corpus],
                      target=target)
    return target


def provision(name: str) -> Path | None:
    """The cached checkpoint of small backend ``name``, trained now when missing; None for other backends (pretrained
    ones only load)."""
    if name not in TRAINED:
        return None
    path = checkpoint_path(name)
    return path if path.is_file() else train_backend(name)


def configure_logging() -> None:
    """Lightning sets its loggers to INFO when it is imported: import it first, so quiet mode holds."""
    import lightning.pytorch  # noqa: F401

    logs.configure(logs.verbose())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backends", nargs="+", choices=TRAINED)
    args = parser.parse_args(argv)
    configure_logging()
    for name in args.backends:
        print(f"{name}: {provision(name)}")


if __name__ == "__main__":
    main()
