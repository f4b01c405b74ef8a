"""``report.html`` of a benchmark results folder: its tables, its plots and, per cell, examples to listen to (clean
and adversarial side by side, with transcripts, SNR, MFCC similarity, queries and the detector's verdict).

One self-contained file: the plots (PNG) and the audio (16-bit WAV) are embedded as data URIs, so it opens from disk
with no server and no network, and can be sent on its own. The benchmark run writes it; to rebuild it from a
finished folder::

    python -m evaluation.html_report <results folder>
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import soundfile

from core.audio_io import load_audio
from evaluation import listening
from evaluation.metrics import Estimate
from evaluation.report import format_cell

REPORT_FILE = "report.html"
LONG_TABLE = 20  # rows: longer tables are folded
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(28em, 1fr)); gap: 1em; }
.example { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 1em; margin: 0.6em 0; }
.players { display: flex; gap: 2em; flex-wrap: wrap; }
.players figure { margin: 0; }
.success { color: #1a7f37; font-weight: bold; } .miss { color: #888; font-weight: bold; }
.flagged { color: #b42318; font-weight: bold; } .passed { color: #9a6700; font-weight: bold; }
.missing { color: #b42318; }
"""


def estimates(row: dict) -> dict:
    """A flat row of ``results.json`` (``x``, ``x_ci_low``, ``x_ci_high``) back to ``{x: Estimate}``."""
    out = {}
    for key, value in row.items():
        if key.endswith(("_ci_low", "_ci_high")) and key.rsplit("_ci_", 1)[0] in row:
            continue
        if f"{key}_ci_low" in row:
            out[key] = Estimate(*(float("nan") if v is None else v
                                  for v in (value, row[f"{key}_ci_low"], row[f"{key}_ci_high"])))
        else:
            out[key] = value
    return out


def table_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    rows = [estimates(r) for r in rows]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def wav_uri(path: str | Path) -> str:
    """The file's audio at 16 kHz as a 16-bit PCM WAV data URI (float WAV does not play everywhere)."""
    waveform = np.clip(load_audio(path).numpy(), -1.0, 1.0)
    encoded = io.BytesIO()
    soundfile.write(encoded, waveform, 16000, subtype="PCM_16", format="WAV")
    return data_uri(encoded.getvalue(), "audio/wav")


def player(label: str, path: str) -> str:
    if not Path(path).exists():
        return (f'<figure><figcaption>{label}</figcaption><p class="missing">audio not found: '
                f'{html.escape(path)}</p></figure>')
    return (f'<figure><figcaption>{label}</figcaption><audio controls preload="metadata" '
            f'src="{wav_uri(path)}"></audio></figure>')


def example_html(example: listening.ListeningExample) -> str:
    if example.attack == "AG":  # the benign control: noise, not an attack; "success" = the transcript changed
        outcome = "transcript changed" if example.success else "transcript kept"
    else:
        outcome = '<span class="success">success</span>' if example.success else '<span class="miss">miss</span>'
    lines = [f"<b>{html.escape(example.utterance_id)}</b> {outcome} &middot; SNR {example.snr_db:.1f} dB &middot; "
             f"MFCC similarity {example.mfcc_similarity:.3f} &middot; {example.queries} queries"]
    if example.flagged is not None:
        verdict = ('<span class="flagged">flagged</span>' if example.flagged
                   else '<span class="passed">not flagged</span>')
        lines.append(f"{html.escape(str(example.detector))}: {verdict} (score {example.detector_score:.3f}, "
                     f"threshold {example.threshold:.3f})")
    lines.append(f"reference: {html.escape(example.reference)}")
    if example.target:
        lines.append(f"target: {html.escape(example.target)}")
    lines.append(f"heard clean: {html.escape(example.transcript_clean)}")
    lines.append(f"heard adversarial: {html.escape(example.transcript_adversarial)}")
    players = player("clean", example.clean_audio) + player(f"{html.escape(example.attack)}", example.adversarial_audio)
    return f'<div class="example"><div class="players">{players}</div><p>{"<br>".join(lines)}</p></div>'


def images_of(record: dict, out_dir: Path) -> list[Path]:
    """The run's plots, found in the folder itself when it was moved since the run."""
    found = []
    for name in record.get("images", []):
        path = Path(name)
        path = path if path.exists() else out_dir / path.name
        if path.exists():
            found.append(path)
    return found


def render(out_dir: Path) -> str:
    record = json.loads((out_dir / "results.json").read_text())
    title = f"{record['task']} ({record['preset']['name']} preset)"
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>Finished {html.escape(str(record.get('finished', '?')))}; wall time "
             f"{record.get('wall_time_s', math.nan):.0f} s. Intervals: "
             + html.escape(record.get("intervals", "bootstrap 95 % over utterances")) + ". Versions: "
             + html.escape(", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items())) + "</p>"]
    titles = record.get("titles", {})
    for name, rows in record["tables"].items():
        parts.append(f"<h2>{html.escape(titles.get(name, name.replace('_', ' ')))}</h2>")
        if len(rows) > LONG_TABLE:  # folded: a click away, without pushing the plots and examples off the page
            parts.append(f"<details><summary>{len(rows)} rows</summary>{table_html(rows)}</details>")
        else:
            parts.append(table_html(rows))
    images = images_of(record, out_dir)
    if images:
        parts.append("<h2>Plots</h2><div class=\"figures\">" + "".join(
            f'<img alt="{html.escape(p.stem)}" src="{data_uri(p.read_bytes(), "image/png")}">' for p in images)
            + "</div>")
    examples = listening.read(out_dir)
    if examples:
        parts.append("<h2>Examples to listen to</h2><p>Per cell and attack: the successes with the highest SNR and "
                     "the best miss. Audio re-encoded as 16-bit WAV for the browser.</p>")
        groups: dict[tuple, list] = {}
        for example in examples:
            groups.setdefault((example.cell, example.goal, example.attack), []).append(example)
        for (cell, goal, attack), group in groups.items():
            parts.append(f"<h3>{html.escape(f'{cell}: {goal} {attack}')}</h3>")
            parts += [example_html(e) for e in group]
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def build(out_dir: str | Path) -> Path:
    """Write ``<out_dir>/report.html`` from the folder's ``results.json``, plots and ``examples.json``."""
    out_dir = Path(out_dir)
    if not (out_dir / "results.json").exists():
        raise FileNotFoundError(f"{out_dir} has no results.json: give a folder a finished task1 / task2 run wrote")
    path = out_dir / REPORT_FILE
    path.write_text(render(out_dir))
    return path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Write report.html for a benchmark results folder")
    parser.add_argument("folder", type=Path, help="a results folder (holds results.json)")
    path = build(parser.parse_args(argv).folder)
    print(f"report: {path}")
    return path


if __name__ == "__main__":
    main()
