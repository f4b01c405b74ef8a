"""Quiet output by default, everything with --verbose, decided in one place (core/logs.py) and carried to the spawned
oracle and attacker processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pytest

from core import logs


class Quietness:
    """What a spawned process sees of the parent's choice (a stand-in for a target system)."""

    def describe(self) -> dict:
        return {"verbose": os.environ.get(logs.VERBOSE_VARIABLE), "bars_off": os.environ.get(
            "HF_HUB_DISABLE_PROGRESS_BARS"), "lightning": logging.getLogger("lightning.pytorch").level}


@pytest.fixture
def restored(monkeypatch):
    """Undo what ``configure`` changes in this process: environment, logger levels, warning filters."""
    for name in (logs.VERBOSE_VARIABLE, logs.DEBUG_VARIABLE, "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    levels = {name: logging.getLogger(name).level for name in (*logs.QUIET_LOGGERS, "attacks.carrier")}
    with warnings.catch_warnings():
        yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_quiet_mode_hides_known_noise_and_verbose_shows_it(restored):
    logs.configure(verbose_output=False)  # e.g. an earlier run in this process
    logs.configure(verbose_output=True)
    assert logs.verbose() and logging.getLogger("lightning.pytorch").level != logging.WARNING
    with pytest.warns(FutureWarning):
        warnings.warn("You are using torch.load with weights_only=False", FutureWarning)
    logs.configure(verbose_output=False)
    assert not logs.verbose() and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert all(logging.getLogger(name).level == logging.WARNING for name in logs.QUIET_LOGGERS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("You are using torch.load with weights_only=False", FutureWarning)
        warnings.warn("something the project did not expect", UserWarning)
    assert [str(w.message) for w in caught] == ["something the project did not expect"]  # only the unknown


def test_the_spawned_oracle_process_follows_the_parents_choice(restored):
    from attacks.oracle import OracleServer

    logs.configure(verbose_output=False)
    with OracleServer(Quietness) as server:
        assert server.info == {"verbose": "0", "bars_off": "1", "lightning": logging.WARNING}


def test_a_logger_named_for_debugging_prints_from_the_spawned_attacker_process(restored, capfd):
    """``--debug attacks.carrier``: the carrier search's trace, which runs in the attacker's process, reaches the
    run's output; without it the attacker prints nothing."""
    import functools

    from attacks.attacker_process import AttackerProcess, AttackJob
    from attacks.constraints import PerturbationBudget
    from attacks.goals import Targeted
    from attacks.oracle import OracleServer
    from tests.test_attacks import speech_like
    from tests.test_carrier_attack import ToyCarrier, toy_target
    from tests.toy_system import toy_system

    clean = speech_like(1.5)
    attack = ToyCarrier(levels_db=[0.0], replace=False)
    printed = {}
    with OracleServer(functools.partial(toy_system, 0)) as server:
        job = AttackJob(attack, clean, Targeted(toy_target(server, clean, attack)),
                        PerturbationBudget(mode="snr", snr_db=10.0), seed=0, transcript_clean="")
        for debug in ([], ["attacks.carrier"]):
            logs.configure(debug=debug)
            capfd.readouterr()
            with AttackerProcess() as attacker:
                attacker.run(job, server.session(300).hand_over())
            printed[bool(debug)] = capfd.readouterr().err
    assert "attacks.carrier" not in printed[False]
    assert "DEBUG attacks.carrier: carrier:" in printed[True] and "size / budget" in printed[True]


def test_progress_bars_redraw_once_a_minute_in_a_log_file(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert logs.progress_options(True) == {"disable": False, "mininterval": 60.0}
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert logs.progress_options(True)["mininterval"] < 1 and logs.progress_options(False)["disable"]


def test_a_backend_trained_inside_a_quiet_run_prints_no_summary_and_no_bar_in_a_log_file(monkeypatch, tmp_path):
    from lightning.pytorch.callbacks import ModelSummary

    from lit_modules.backends import provisioning
    from lit_modules.backends.registry import CONFIG_DIR
    from lit_modules.cli import cli_main

    monkeypatch.setenv(logs.VERBOSE_VARIABLE, "0")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    flags = provisioning.quiet_trainer_flags()
    cli = cli_main(["--config", str(CONFIG_DIR / "conformer_ctc.yaml"), *flags,
                    f"--trainer.default_root_dir={tmp_path}"], run=False)  # the flags are the CLI's own
    assert cli.trainer.progress_bar_callback is None
    assert not any(isinstance(c, ModelSummary) for c in cli.trainer.callbacks)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert provisioning.quiet_trainer_flags() == ["--trainer.enable_model_summary=false"]  # a live bar on a terminal
    monkeypatch.setenv(logs.VERBOSE_VARIABLE, "1")
    assert provisioning.quiet_trainer_flags() == []


def test_provisioning_stays_quiet_although_lightning_sets_its_loggers_on_import():
    code = ("import logging; from lit_modules.backends import provisioning; provisioning.configure_logging(); "
            "from lit_modules.cli import cli_main; "  # what train_backend imports, after the levels were set
            "print(logging.getLogger('lightning.pytorch').level, logging.getLogger('lightning.fabric').level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, logs.VERBOSE_VARIABLE: "0"})
    assert out.stdout.split() == [str(logging.WARNING)] * 2
