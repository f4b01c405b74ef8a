"""Kill a campaign again and again, resume it, and check that nothing was lost or duplicated; then feed the data
module and ``python attack.py`` every kind of malformed audio.

    python benchmarks/chaos.py                    # 5 kills, 10 utterances, Whisper tiny.en (the embedded default)
    python benchmarks/chaos.py --kills 3 --skip-malformed

Part 1 runs ``python attack.py`` once uninterrupted, then again into another cache folder, killing its whole process
group (the campaign, its oracle server and its attacker) ``--kills`` times: alternately *inside* an audio write and
*inside* a manifest append of the attack cache (the process dies with half of that write on disk, as SIGKILL leaves
it), and with SIGKILL at random moments; after each kill the same command resumes. It then compares the two caches:
the same utterance ids, the same audio bytes, the same records (timings aside), no manifest line twice.

Part 2 writes a small LibriSpeech-layout corpus per kind of malformed input (two good utterances around the bad one)
and reports what the data module (``on_bad_input`` error and skip) and ``python attack.py`` make of it: an error that
names the file, a counted skip, or a logged conversion, and how many examples the attack command kept.

Prints both tables and writes them to ``<cache>/results/chaos-<time>/chaos.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMINGS = ("wall_time_s", "system_time_s")  # the only fields a rerun may change


# ------------------------------------------------------------------------------------------------ the child
def die_inside_write(kind: str, nth: int) -> None:
    """Make this process group die inside this process's ``nth`` attack-cache write of ``kind`` (``audio``: the
    temporary WAV; ``manifest``: the appended line) with half of that write's bytes on disk, as SIGKILL would leave
    them. Hooks ``os.fsync``, which the cache calls right after each of those writes."""
    real_fsync, count = os.fsync, [0]

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        name = os.path.basename(path)
        if (kind == "audio" and name.endswith(".part.wav")) or (kind == "manifest" and name.startswith("manifest-rank")):
            count[0] += 1
            if count[0] == nth:
                data = Path(path).read_bytes()
                start = data.rfind(b"\n", 0, len(data) - 1) + 1 if kind == "manifest" else 0
                os.ftruncate(fd, start + (len(data) - start) // 2)
                os.killpg(os.getpgid(0), signal.SIGKILL)
        real_fsync(fd)

    os.fsync = fsync


def child(fault: str | None, attack_args: list[str]) -> None:
    """``python attack.py <attack_args>`` in this process, with the fault (``audio:N`` / ``manifest:N``) installed."""
    import runpy

    if fault:
        kind, nth = fault.split(":")
        die_inside_write(kind, int(nth))
    script = str(REPO_ROOT / "attack.py")
    sys.argv = [script, *attack_args]
    runpy.run_path(script, run_name="__main__")


# ------------------------------------------------------------------------------------------------ the parent
def run_attacks(attack_args: list[str], fault: str | None = None, kill_after_s: float | None = None,
                log_file: Path | None = None) -> dict:
    """One ``python attack.py`` run in its own process group; returns how it ended."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *(["--fault", fault] if fault else []), "--",
               *attack_args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with open(log_file or os.devnull, "ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=kill_after_s)
            killed_by_us = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code, killed_by_us = process.wait(), True
    try:  # the campaign's children are in its group: make sure none outlives it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return {"code": code, "killed": killed_by_us or code == -signal.SIGKILL, "seconds": time.perf_counter() - started}


def campaign_folder(cache_root: Path) -> Path | None:
    folders = [p for p in cache_root.iterdir() if p.is_dir()] if cache_root.is_dir() else []
    if len(folders) > 1:
        raise RuntimeError(f"{cache_root}: expected one campaign folder, found {[p.name for p in folders]}")
    return folders[0] if folders else None


def manifest_lines(folder: Path | None) -> list[dict]:
    """Every decodable manifest line, torn ones left out (what is on disk, not what the reader makes of it)."""
    lines = []
    for path in sorted(folder.glob("manifest-rank*.jsonl")) if folder else []:
        for line in path.read_bytes().split(b"\n"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def compare(reference: Path, resumed: Path) -> dict:
    """Lost / duplicated / differing examples of ``resumed`` against ``reference`` (two campaign folders)."""
    from campaigns.store import AdversarialCache

    def read(folder: Path) -> dict[str, dict]:
        return {r["utterance_id"]: r for r in AdversarialCache.existing(folder).records()}

    expected, found = read(reference), read(resumed)
    lines = manifest_lines(resumed)
    digest = lambda folder, record: hashlib.sha256((folder / record["audio"]).read_bytes()).hexdigest()  # noqa: E731
    common = sorted(set(expected) & set(found))
    return {
        "examples": len(expected), "recorded": len(found), "lost": len(set(expected) - set(found)),
        "extra": len(set(found) - set(expected)), "duplicated": len(lines) - len({r["utterance_id"] for r in lines}),
        "audio_differs": sum(digest(reference, expected[i]) != digest(resumed, found[i]) for i in common),
        "record_differs": sum({k: v for k, v in expected[i].items() if k not in TIMINGS}
                              != {k: v for k, v in found[i].items() if k not in TIMINGS} for i in common),
        "leftover_temporary_files": len(list((resumed / "audio").glob("*.part.wav"))),
    }


def chaos(attack_args: list[str], kills: int, seed: int, workdir: Path) -> dict:
    """Part 1: the uninterrupted reference, then ``kills`` kills with resumes, then the comparison."""
    reference_root, chaos_root = workdir / "reference", workdir / "chaos"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print("reference run (uninterrupted) ...", flush=True)
    reference = run_attacks([*attack_args, "--cache_root", str(reference_root)], log_file=logs / "reference.log")
    if reference["code"] != 0:
        raise RuntimeError(f"the reference run failed (exit {reference['code']}); see {logs / 'reference.log'}")
    total = reference["seconds"]
    generator = random.Random(seed)
    plan = ["audio", "manifest"] + ["random"] * kills  # one kill inside each kind of write, the rest at random
    events, delivered, attempt = [], 0, 0
    while delivered < kills:
        attempt += 1
        kind = plan[delivered]
        before = len(manifest_lines(campaign_folder(chaos_root)))
        if kind == "random":
            after_s = generator.uniform(0.1, 0.5) * total
            ended = run_attacks([*attack_args, "--cache_root", str(chaos_root)], kill_after_s=after_s,
                                log_file=logs / f"attempt{attempt}.log")
            point = f"SIGKILL after {after_s:.1f} s"
        else:
            nth = generator.randint(1, 2)
            ended = run_attacks([*attack_args, "--cache_root", str(chaos_root)], fault=f"{kind}:{nth}",
                                log_file=logs / f"attempt{attempt}.log")
            point = f"inside {kind} write #{nth}"
        recorded = len(manifest_lines(campaign_folder(chaos_root)))
        events.append({"attempt": attempt, "kill": point, "killed": ended["killed"], "exit": ended["code"],
                       "records before": before, "records after": recorded})
        how = "killed" if ended["killed"] else f"exit {ended['code']}"
        print(f"  attempt {attempt}: {point}: {how}, records {before} -> {recorded}", flush=True)
        if ended["killed"]:
            delivered += 1
        elif ended["code"] == 0:
            print("  the campaign finished before the kill: the remaining kills have nothing left to hit", flush=True)
            break
        else:
            raise RuntimeError(f"attempt {attempt} failed on its own (exit {ended['code']}); see its log in {logs}")
    final = run_attacks([*attack_args, "--cache_root", str(chaos_root)], log_file=logs / "final.log")
    if final["code"] != 0:
        raise RuntimeError(f"the final resume failed (exit {final['code']}); see {logs / 'final.log'}")
    result = compare(campaign_folder(reference_root), campaign_folder(chaos_root))
    return {"kills": delivered, "events": events, "reference_seconds": total, **result}


# ------------------------------------------------------------------------------------------------ malformed input
def _good_speech(count: int) -> list:
    """``count`` short utterances of the embedded default corpus (generated on first use), as float32 arrays."""
    import soundfile

    from datamodules import LibriSpeechDataModule

    utterances = LibriSpeechDataModule(test_subset=count, max_duration=3.0, seed=1).stage_utterances("test")
    return [soundfile.read(str(u.audio_path), dtype="float32")[0] for u in utterances]


def malformed_corpora(root: Path) -> dict[str, Path]:
    """One LibriSpeech-layout corpus per case: utterances 11-22-0000 and 11-22-0002 are good, 11-22-0001 is the
    malformed one (or has the malformed transcript line)."""
    import numpy as np
    import soundfile
    import torch

    from core.audio_io import resample

    good = _good_speech(3)
    cases = ["empty file", "truncated", "corrupt header", "NaN / Inf samples", "stereo", "8 kHz", "22.05 kHz",
             "44.1 kHz", "out-of-range floats", "missing transcript line", "non-UTF-8 transcript",
             "transcript without audio"]
    corpora = {}
    for number, case in enumerate(cases):
        folder = root / f"case{number:02d}" / "LibriSpeech" / "dev-clean" / "11" / "22"
        folder.mkdir(parents=True)
        lines = [f"11-22-{i:04d} TURN ON THE LIGHTS" for i in range(3)]
        for i in (0, 2):
            soundfile.write(str(folder / f"11-22-{i:04d}.flac"), good[i], 16_000)
        bad, audio = folder / "11-22-0001.flac", good[1]
        if case == "empty file":
            bad.write_bytes(b"")
        elif case == "truncated":
            soundfile.write(str(bad), audio, 16_000)
            bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
        elif case == "corrupt header":
            bad.write_bytes(b"fLaC" + bytes(range(256)) * 8)
        elif case == "NaN / Inf samples":
            broken = audio.copy()
            broken[100], broken[200] = np.nan, np.inf
            soundfile.write(str(bad.with_suffix(".wav")), broken, 16_000, subtype="FLOAT")
        elif case == "stereo":
            soundfile.write(str(bad), np.stack([audio, audio], axis=1), 16_000)
        elif case.endswith("kHz"):
            rate = int(float(case.split()[0]) * 1000)
            soundfile.write(str(bad), resample(torch.from_numpy(audio), 16_000, rate).numpy(), rate)
        elif case == "out-of-range floats":
            soundfile.write(str(bad.with_suffix(".wav")), audio * 1.5 / np.abs(audio).max(), 16_000, subtype="FLOAT")
        elif case == "missing transcript line":
            soundfile.write(str(bad), audio, 16_000)
            lines.pop(1)
        elif case == "non-UTF-8 transcript":
            soundfile.write(str(bad), audio, 16_000)
            lines[1] = "11-22-0001 TURN ON THE LIGHTS \udcff"
        data = "\n".join(lines).encode("utf-8", errors="surrogateescape") + b"\n"
        (folder / "11-22.trans.txt").write_bytes(data)
        corpora[case] = folder.parents[3]
    return corpora


def _through_data_module(root: Path, policy: str) -> str:
    """What ``LibriSpeechDataModule`` makes of a corpus: its error, or the utterances it serves (and skips)."""
    from datamodules import LibriSpeechDataModule

    handler, logger = _Collect(), logging.getLogger("datamodules")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        module = LibriSpeechDataModule(root=str(root), test_splits=["dev-clean"], on_bad_input=policy,
                                       verify_audio=policy == "skip", batch_size=4, bucket_by_length=False)
        served = [i for batch in module.test_dataloader() for i in batch.utterance_ids]
    except Exception as error:  # noqa: BLE001 - reported
        return f"error{' naming the file' if '11-22-0001' in str(error) or '11-22.trans' in str(error) else ''}: " \
               f"{type(error).__name__}"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    said = " ".join(handler.messages)
    notes = [note for note, words in (("converted", ("resampling", "down-mixing")), ("rescaled", ("scaled down",)))
             if any(word in said for word in words)]
    if len(module.skip_report):
        notes.insert(0, f"{len(module.skip_report)} skipped")
    return f"{len(served)} served" + "".join(f", {note}" for note in notes) + (" (logged)" if notes else "")


class _Collect(logging.Handler):
    """A logging handler that keeps the messages."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record) -> None:
        self.messages.append(record.getMessage())


def _through_attack_command(root: Path, system: str, extra: list[str], workdir: Path) -> str:
    log = workdir / "attack.log"
    cache_root = workdir / "adversarial"
    ended = run_attacks(["--attack", "attacks.gaussian.GaussianNoise", "--system", system, "--query_budget", "2",
                         "--data", "datamodules.LibriSpeechDataModule", "--data.init_args.root", str(root),
                         "--data.init_args.test_splits", "[dev-clean]", "--cache_root", str(cache_root), *extra],
                        log_file=log)
    kept = len(manifest_lines(campaign_folder(cache_root)))
    if ended["code"] == 0:
        return f"ran: {kept} of 3 attacked"
    text = log.read_text(errors="replace")
    error = next((line for line in reversed(text.splitlines()) if "Error" in line), "?")
    named = "11-22-0001" in error or "11-22.trans" in error
    return f"exit {ended['code']}{', names the file' if named else ''}; {kept} kept"


def malformed_inputs(root: Path, system: str, extra: list[str]) -> list[dict]:
    """Part 2: one row per malformed case."""
    rows = []
    for case, corpus in malformed_corpora(root).items():
        print(f"malformed: {case} ...", flush=True)
        rows.append({"case": case, "data module (error)": _through_data_module(corpus, "error"),
                     "data module (skip, verify_audio)": _through_data_module(corpus, "skip"),
                     "python attack.py": _through_attack_command(corpus, system, extra, corpus)})
    return rows


def malformed_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        fault = argv[2] if argv[1:2] == ["--fault"] else None
        child(fault, argv[argv.index("--") + 1:])
        return {}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--utterances", type=int, default=10, help="source utterances (synthetic test split)")
    parser.add_argument("--query-budget", type=int, default=30)
    parser.add_argument("--system", default="{backend: whisper, min_context_s: 10}",
                        help="the target system's arguments (python attack.py --system)")
    parser.add_argument("--attack-config", default=str(REPO_ROOT / "configs/attacks/az.yaml"))
    parser.add_argument("--attack-args", nargs=argparse.REMAINDER, default=[],
                        help="more arguments for python attack.py (last; e.g. --system_factory ...)")
    parser.add_argument("--seed", type=int, default=0, help="where the random kills fall")
    parser.add_argument("--workdir", default=None, help="default: <cache>/chaos (emptied first)")
    parser.add_argument("--skip-malformed", action="store_true", help="only part 1")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be >= 1")

    from core.cache_dir import default_cache_dir

    workdir = Path(args.workdir) if args.workdir else default_cache_dir() / "chaos"
    shutil.rmtree(workdir, ignore_errors=True)
    attack_args = ["--config", args.attack_config, "--system", args.system, "--query_budget", str(args.query_budget),
                   "--budget.mode", "snr", "--data.init_args.test_subset", str(args.utterances),
                   "--data.init_args.max_duration", "4.0", *args.attack_args]
    started = time.perf_counter()
    kills = chaos(attack_args, args.kills, args.seed, workdir)
    print(f"\n{kills['kills']} kills: {kills['examples']} examples, {kills['recorded']} recorded after resuming, "
          f"{kills['lost']} lost, {kills['duplicated']} duplicated, {kills['extra']} extra, audio differs in "
          f"{kills['audio_differs']}, records differ in {kills['record_differs']}, "
          f"{kills['leftover_temporary_files']} temporary files left")
    report: dict = {"kills": kills}
    if not args.skip_malformed:
        report["malformed"] = malformed_inputs(workdir / "malformed", args.system, [*args.attack_args])
        print("\n" + malformed_table(report["malformed"]))
    report["seconds"] = time.perf_counter() - started
    out = default_cache_dir() / "results" / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten: {out / 'chaos.json'}")
    return report


if __name__ == "__main__":
    main()
