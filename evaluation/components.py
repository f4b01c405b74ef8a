"""Components from the project's YAML configs (LightningCLI's ``class_path`` / ``init_args``) composed with overrides:
how the benchmarks build what ``python train.py`` builds, from the same files."""

from __future__ import annotations

import json
from pathlib import Path

from jsonargparse import ArgumentParser

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def instantiate_component(base_class: type, config: str | Path, *overrides: dict):
    """An instance of ``base_class`` (or a subclass) from the component file ``config`` (relative to configs/, or a
    path) with ``overrides`` merged into its ``init_args`` in order (nested components merge the same way; a dict
    value replaces the whole dict). Unknown or mistyped keys are errors that name the key."""
    path = Path(config) if Path(config).is_file() else CONFIG_DIR / config
    if not path.is_file():
        raise FileNotFoundError(f"no component config {config!r} (looked in {CONFIG_DIR})")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(base_class, "component")
    args = ["--component", str(path)]
    for override in overrides:
        args += ["--component", json.dumps({"init_args": override})]
    return parser.instantiate(parser.parse_args(args)).component
