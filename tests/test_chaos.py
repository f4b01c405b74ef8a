"""The chaos benchmark (``benchmarks/chaos.py``), run as a user runs it: five kills of a campaign, including inside
its audio and manifest writes, then the malformed-input table (slow: about five minutes on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_five_kills_lose_and_duplicate_nothing_and_malformed_input_is_named(tiny_corpus, tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/chaos.py", "--kills", "5", "--utterances", "6", "--system", "{seed: 0}",
         "--workdir", str(tmp_path / "chaos"), "--attack-args", "--system_factory", "tests.toy_system.toy_system",
         f"--data.init_args.synthetic_dir={tiny_corpus}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = next(line for line in done.stdout.splitlines() if line.startswith("written: "))
    report = json.loads(Path(written.removeprefix("written: ")).read_text())
    kills = report["kills"]
    assert kills["kills"] == 5 and kills["examples"] == kills["recorded"] > 0
    assert kills["lost"] == kills["duplicated"] == kills["extra"] == 0
    assert kills["audio_differs"] == kills["record_differs"] == kills["leftover_temporary_files"] == 0
    kinds = [event["kill"] for event in kills["events"]]
    assert any("inside audio" in k for k in kinds) and any("inside manifest" in k for k in kinds)
    rows = {row["case"]: row for row in report["malformed"]}
    assert len(rows) == 12
    for case in ("empty file", "truncated", "corrupt header", "NaN / Inf samples", "missing transcript line",
                 "non-UTF-8 transcript", "transcript without audio"):
        assert rows[case]["data module (error)"].startswith("error naming the file"), rows[case]
        assert rows[case]["data module (skip, verify_audio)"] == "2 served, 1 skipped (logged)", rows[case]
        assert "names the file" in rows[case]["python attack.py"], rows[case]
    for case in ("stereo", "8 kHz", "22.05 kHz", "44.1 kHz", "out-of-range floats"):
        assert rows[case]["data module (error)"] in ("3 served, converted (logged)", "3 served, rescaled (logged)")
        assert rows[case]["python attack.py"] == "ran: 3 of 3 attacked", rows[case]
