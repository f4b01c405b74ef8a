"""Imports flow one way (docs/design.md): core <- attacks <- campaigns <- datamodules <- lit_modules <- evaluation <-
entry points (train.py, attack.py, benchmarks/). Every import counts, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "attacks", "campaigns", "datamodules", "lit_modules", "evaluation"]
ENTRY_POINTS = {"train", "attack", "benchmarks"}  # the top: nothing of the project imports them


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import of ``root``'s packages and entry points that runs against the flow."""
    problems = []
    files = [p for package in [*LAYERS, "benchmarks"] for p in sorted((root / package).rglob("*.py"))]
    files += [root / f"{name}.py" for name in ("train", "attack") if (root / f"{name}.py").is_file()]
    for path in files:
        source = path.relative_to(root).parts[0].removesuffix(".py")
        for line, module in _imports(path):
            target = module.split(".")[0]
            if target not in LAYERS and target not in ENTRY_POINTS:
                continue  # the standard library and third-party packages
            where = f"{path.relative_to(root)}:{line} imports {module}"
            if target in ENTRY_POINTS:
                problems.append(f"{where}: an entry point (scripts never import scripts; shared code moves into "
                                "the library)")
            elif source in LAYERS and LAYERS.index(target) > LAYERS.index(source):
                problems.append(f"{where}: {source} sits below {target}")
    return problems


def test_imports_flow_one_way():
    assert violations(REPO_ROOT) == []


@pytest.mark.parametrize("offence, expected", [
    ("attacks/extra.py", "attacks sits below datamodules"),
    ("benchmarks/extra.py", "an entry point"),
])
def test_an_import_against_the_flow_is_caught(tmp_path, offence, expected):
    for package in LAYERS + ["benchmarks"]:
        (tmp_path / package).mkdir()
    (tmp_path / "core" / "ok.py").write_text("import numpy\nimport core.text\n")
    bad = "def f():\n    from datamodules.librispeech import LibriSpeechDataModule\n" if offence.startswith("attacks") \
        else "from benchmarks.attack_strength import main\n"
    (tmp_path / offence).write_text(bad)
    (problem,) = violations(tmp_path)
    assert expected in problem and offence in problem
