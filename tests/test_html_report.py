"""The results folder's report.html: self-contained (plots and audio embedded, nothing fetched), the tables with their
intervals, the examples with their verdicts; rebuilt from a finished folder; and rendered in a real headless browser
(Debian's chromium through Selenium) where one is installed."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from core import figures
from evaluation import html_report, listening, report
from evaluation.metrics import Estimate

SAMPLE_RATE = 16000


def record(utterance_id: str, success: bool, snr_db: float, goal: str = "untargeted") -> dict:
    return {"utterance_id": utterance_id, "success": success, "snr_db": snr_db, "goal": goal,
            "audio": f"audio/{utterance_id}.wav", "source_audio": f"/corpus/{utterance_id}.flac",
            "reference": "OPEN THE WINDOW", "transcript_clean": "OPEN THE WINDOW", "transcript_adversarial": "OPEN",
            "mfcc_similarity": 0.97, "queries": 40}


def test_pick_shows_the_best_successes_then_the_best_miss_of_the_chosen_utterances(tmp_path):
    records = [record("a", True, 12.0), record("b", True, 15.0), record("c", False, 30.0), record("d", False, 20.0),
               record("e", True, 25.0), record("f", True, 40.0, "targeted")]
    picked = listening.pick("w / snr10", "AE", records, tmp_path, {"a", "b", "c", "d", "e"}, per_cell=3)
    assert [e.utterance_id for e in picked] == ["e", "b", "c"]  # f is not among the chosen utterances
    assert picked[0].adversarial_audio == str(tmp_path / "audio/e.wav") and picked[0].target is None
    one = listening.pick("w / snr10", "AE", records, tmp_path, {"a", "b", "c", "d", "e"}, per_cell=1)
    assert [e.utterance_id for e in one] == ["e"]  # a single example is the best success
    only_hits = listening.pick("w / snr10", "AE", records[:2], tmp_path, {"a", "b"}, per_cell=3)
    assert [e.utterance_id for e in only_hits] == ["b", "a"]
    targeted = listening.pick("w / snr10", "AZ", records, tmp_path, {"f"}, target="OPEN THE DOOR")
    assert targeted[0].target == "OPEN THE DOOR" and targeted[0].goal == "targeted"


def tone(path: Path, frequency: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    waveform = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    soundfile.write(path, waveform, SAMPLE_RATE, subtype="FLOAT" if path.suffix == ".wav" else "PCM_16")
    return waveform


@pytest.fixture
def results_folder(tmp_path) -> tuple[Path, np.ndarray]:
    """A finished run's folder: one table with an interval, one plot, two examples (one judged, one not)."""
    out = tmp_path / "task1-demo"
    clean = tone(tmp_path / "clean.flac", 220.0)
    adversarial = tone(tmp_path / "adv.wav", 440.0)
    plot = figures.success_curves({"AE": [[[5, 0.0, False], [10, 0.0, True]]]}, 20, out / "success.png", "curves")
    rows = [{"backend": "whisper", "AE": Estimate(12.5, 10.0, 15.0), "note": "<b>not markup</b>"}]
    long = [{"row": i} for i in range(html_report.LONG_TABLE + 1)]
    report.write_run(out, "Task 1", {"wer": rows, "long": long}, {"wer": "WER"}, {"name": "demo"}, 3.0,
                     {"images": [str(plot)]})
    common = dict(cell="whisper / snr10", goal="untargeted", reference="OPEN THE WINDOW",
                  transcript_clean="OPEN THE WINDOW", success=True, snr_db=14.2, mfcc_similarity=0.971, queries=17)
    examples = [
        listening.ListeningExample(attack="AE", utterance_id="u1", clean_audio=str(tmp_path / "clean.flac"),
                                   adversarial_audio=str(tmp_path / "adv.wav"),
                                   transcript_adversarial="OPEN <THE> DOOR",
                                   detector="BNN-supervised", detector_score=0.9, threshold=0.5, **common),
        listening.ListeningExample(attack="AZ", utterance_id="u2", clean_audio=str(tmp_path / "clean.flac"),
                                   adversarial_audio=str(tmp_path / "gone.wav"), transcript_adversarial="OPEN",
                                   **common),
        listening.ListeningExample(attack="AG", utterance_id="u3", clean_audio=str(tmp_path / "gone.flac"),
                                   adversarial_audio=str(tmp_path / "gone.wav"), transcript_adversarial="OPEN",
                                   **common)]
    listening.write(examples, out)
    return out, adversarial


def audio_sources(page: str) -> list[str]:
    return re.findall(r'<audio[^>]*src="([^"]+)"', page)


def test_the_report_embeds_tables_plots_and_playable_audio(results_folder, capsys):
    out, adversarial = results_folder
    path = html_report.main([str(out)])  # rebuilt from the finished folder, as `python -m evaluation.html_report`
    assert path == out / "report.html" and f"report: {path}" in capsys.readouterr().out
    page = path.read_text()
    assert "<td>12.5 [10.0, 15.0]</td>" in page  # the interval columns of results.json joined back
    assert "<h2>WER</h2>" in page and "<h2>long</h2><details><summary>21 rows</summary>" in page  # long tables fold
    assert page.count('class="success"') == 2 and "transcript changed" in page  # AG is a control, not a success
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page and "OPEN &lt;THE&gt; DOOR" in page  # text is escaped
    assert page.count('src="data:image/png;base64,') == 1
    sources = audio_sources(page)
    assert len(sources) == 3 and all(s.startswith("data:audio/wav;base64,") for s in sources)  # 2 clean, 1 adversarial
    assert "audio not found" in page and "gone.wav" in page  # a cleared cache is said, not hidden
    decoded, rate = soundfile.read(io.BytesIO(base64.b64decode(sources[1].split(",", 1)[1])), dtype="float32")
    assert rate == SAMPLE_RATE and np.abs(decoded - adversarial).max() < 1e-4  # the adversarial audio itself
    assert "flagged" in page and "score 0.900, threshold 0.500" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched: opens from disk, no network


def test_a_folder_without_results_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json"):
        html_report.build(tmp_path)


def test_the_console_highlights_one_success_per_attack_with_its_verdict(results_folder):
    examples = listening.read(results_folder[0])
    lines = [e.verdict() for e in listening.highlights(examples)]
    assert len(lines) == 2 and lines[0].startswith("whisper / snr10, untargeted AE success")
    assert "BNN-supervised: flagged (score 0.900, threshold 0.500)" in lines[0] and "flagged" not in lines[1]


def test_weights_and_biases_gets_the_examples_as_audio(results_folder):
    wandb = pytest.importorskip("wandb")
    table = report.examples_table(wandb, listening.read(results_folder[0]))
    assert table.columns[-2:] == ["clean audio", "adversarial audio"]
    first, second, third = table.data
    assert isinstance(first[-1], wandb.Audio) and isinstance(first[-2], wandb.Audio)
    assert second[-1] is None and third[-2] is None and first[table.columns.index("detector_score")] == 0.9


def browser():
    """A headless Chromium driven by Selenium, or the reason there is none."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        return None, ("Debian's chromium and chromium-driver are not installed "
                      "(apt-get install chromium chromium-driver; .ci/run does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[dev]')"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(options=options, service=Service(driver_path)), None
    except Exception as error:  # noqa: BLE001 - any start failure is a reason to skip, printed
        return None, f"headless chromium did not start: {error}"


def test_the_report_renders_in_a_headless_browser(results_folder):
    from selenium.webdriver.support.ui import WebDriverWait

    driver, reason = browser()
    if driver is None:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    try:
        driver.get((html_report.build(results_folder[0])).as_uri())
        assert driver.title == "Task 1 (demo preset)"
        cells = driver.execute_script("return [...document.querySelectorAll('td')].map(c => c.innerText)")
        assert "12.5 [10.0, 15.0]" in cells
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return [...document.images].every(i => i.complete)"))
        assert driver.execute_script("return [...document.images].map(i => i.naturalWidth)")[0] > 100
        script = "return [...document.querySelectorAll('audio')].map(a => [a.readyState, a.duration, a.error])"
        WebDriverWait(driver, 30).until(lambda d: all(state >= 1 for state, _, _ in d.execute_script(script)))
        states = driver.execute_script(script)
        assert len(states) == 3 and all(error is None and abs(duration - 0.5) < 0.01 for _, duration, error in states)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
