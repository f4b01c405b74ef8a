"""What the project's output shows, decided in one place: by default one line per stage and progress bars only
where someone watches them; ``verbose`` shows every library's messages.

Quiet mode hides what is known and harmless: the model-loading progress bars of Hugging Face libraries, Lightning's
hardware summary and tips, and the deprecation warnings listed in ``KNOWN_WARNINGS``. The choice travels to the
spawned oracle and attacker processes through the environment (``VERBOSE_VARIABLE``), and ``configure_child``
applies it there, as it does the loggers named for debugging (``DEBUG_VARIABLE``, e.g. ``attacks.carrier``: the
carrier search's distance to the budget after each group). Progress bars (``progress_options``) redraw at most once
a minute when the output is not a terminal, so a log file gets a line a minute instead of a line per step.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Sequence

VERBOSE_VARIABLE = "ASR_ROBUSTNESS_VERBOSE"
DEBUG_VARIABLE = "ASR_ROBUSTNESS_DEBUG"  # comma-separated logger names shown at DEBUG, here and in spawned processes
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "speechbrain", "huggingface_hub")
KNOWN_WARNINGS = (  # (message regex, category): harmless, and out of this project's hands
    (r".*weights_only.*", Warning),
    (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*", Warning),
    (r".*does not have many workers which may be a bottleneck.*", Warning),
    (r".*The number of training batches .* is smaller than the logging interval.*", Warning),
    (r".*Checkpoint directory .* exists and is not empty.*", Warning),
    (r".*torchaudio\._backend\..*has been deprecated.*", Warning),
    (r".*In 2\.9, this function's implementation will be changed.*", Warning),
    (r".*`training_step` returned `None`.*", Warning),  # on purpose: a batch the unsupervised head cannot learn from
    (r".*LightningCLI's args parameter is intended to run from within Python.*", Warning),  # provisioning calls it
)


def verbose() -> bool:
    """Whether this process (or the one that spawned it) asked for every message."""
    return os.environ.get(VERBOSE_VARIABLE, "0") == "1"


def configure(verbose_output: bool = False, level: int = logging.INFO,
              debug: Sequence[str] | None = None) -> None:
    """Entry points call this once, before building models: logging format and level, quiet mode unless
    ``verbose_output``, and the loggers in ``debug`` (names, e.g. ``attacks.carrier``; None: those already in
    ``DEBUG_VARIABLE``) at DEBUG in this process and in the oracle and attacker processes it spawns."""
    os.environ[VERBOSE_VARIABLE] = "1" if verbose_output else "0"
    if debug is not None:
        os.environ[DEBUG_VARIABLE] = ",".join(debug)
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if verbose_output:  # undo an earlier quiet configuration in this process
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    configure_child()


def configure_child() -> None:
    """Apply the parent's choices (``VERBOSE_VARIABLE``, ``DEBUG_VARIABLE``) in this process: a spawned oracle or
    attacker calls it first."""
    debug = [name for name in os.environ.get(DEBUG_VARIABLE, "").split(",") if name]
    if debug:
        logging.basicConfig(format=LOG_FORMAT)  # a spawned process has no handler: DEBUG records would be dropped
    for name in debug:
        logging.getLogger(name).setLevel(logging.DEBUG)
    if verbose():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub / transformers load
    if "transformers" in sys.modules:  # already imported: switch its bars off directly
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def progress_options(progress: bool = True) -> dict:
    """``tqdm`` keyword arguments: off when ``progress`` is False; on a terminal a live bar, else one update a
    minute."""
    return {"disable": not progress, "mininterval": 0.1 if sys.stderr.isatty() else 60.0}
