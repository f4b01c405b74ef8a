"""Is this machine ready for the ``paper`` preset? ``python benchmarks/gpu_check.py [--device cuda] [--precision bf16]``.

In a few minutes on one GPU (or ``--device cpu``): builds full-size replicas of the paper's pretrained recognizers
(their real layouts, random weights: ``lit_modules.backends.replicas``) where the real ones go, in a temporary
folder, and loads each by name as the preset does; for each it measures queries per second of the bare batched
forward pass (``TargetSystem.respond``: transcript + score of the target, batch ``--batch``) and through the oracle
(a query session in the oracle's own process, the same batches); the oracle's efficiency is their ratio, time
through the oracle / bare time (1.00 = no overhead; the convention of ``benchmarks/attack_strength.py``); then runs
a 2-process attack shard (``torch.distributed``: gloo on CPU, nccl on GPUs) of the untargeted AZ against Whisper
tiny.en and checks that the ranks split the sources. Prints one table; exits non-zero when a check fails.
Random weights decode long garbage, so transcript costs here bound, not predict, the real models' (their beam
searches stop at the end of speech).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from campaigns.campaign import GoalSpec, SourceUtterance, build_by_name, run_campaign
from attacks.constraints import PerturbationBudget
from attacks.oracle import OracleServer
from attacks.zeroth_order import ZerothOrderAttack
from lit_modules.backends import replicas
from lit_modules.target_system import build_system

SYSTEM_FACTORY = "lit_modules.target_system.build_system"
# Bounded decoding for the random-weight replicas (the real models stop at the end of speech).
REPLICA_OPTIONS = {"emformer_rnnt_librispeech": {"step_max_tokens": 2},
                   "speechbrain_conformer_librispeech": {"beam_size": 10}}
MODELS = ("emformer_rnnt_librispeech", "speechbrain_conformer_librispeech", "wav2vec2_base_960h", "whisper")


def install_full_size_replicas(root: Path) -> None:
    """The paper models' full-size replicas in a Hugging Face cache and a torch home under ``root``, and the
    environment pointing there (inherited by the oracle's processes)."""
    import huggingface_hub.constants

    hf_cache, torch_home = root / "hf-cache", root / "torch-home"
    replicas.wav2vec2_base_960h(replicas.hub_snapshot(hf_cache, "facebook/wav2vec2-base-960h"))
    replicas.speechbrain_conformer_librispeech(
        replicas.hub_snapshot(hf_cache, "speechbrain/asr-conformer-transformerlm-librispeech"))
    replicas.emformer_rnnt_librispeech(torch_home / "hub")
    os.environ.update(HF_HUB_CACHE=str(hf_cache), HF_HUB_OFFLINE="1", TORCH_HOME=str(torch_home))
    huggingface_hub.constants.HF_HUB_CACHE = str(hf_cache)


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Amplitude-modulated harmonic noise [T] at 16 kHz, about -20 dBFS (random weights need no real speech)."""
    generator = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    voiced = sum(np.sin(2 * np.pi * f * t + generator.uniform(0, 6)) / k for k, f in enumerate((140, 280, 420), 1))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.05 * envelope * (voiced + 0.3 * generator.standard_normal(t.size))).astype(np.float32)


def measure(name: str, options: dict, batch: int, batches: int, seconds: float) -> dict:
    """Load time, bare and oracle queries per second of one recognizer."""
    started = time.perf_counter()
    system = build_system(name, **options)
    load_s = time.perf_counter() - started
    parameters = sum(p.numel() for p in system.parameters())
    clean = speech_like(seconds, 0)
    noisy = [clean[None] + 0.002 * np.random.default_rng(i).standard_normal((batch, clean.size)).astype(np.float32)
             for i in range(batches)]
    lengths = torch.full((batch,), clean.size)
    targets = ["OPEN THE DOOR"] * batch
    system.respond(torch.from_numpy(noisy[0][:2]), lengths[:2], targets[:2])  # warm-up
    synchronize(options["device"])
    started = time.perf_counter()
    for waveforms in noisy:
        system.respond(torch.from_numpy(waveforms), lengths, targets)
    synchronize(options["device"])
    bare_qps = batch * batches / (time.perf_counter() - started)
    del system
    factory = functools.partial(build_by_name, SYSTEM_FACTORY, backend=name, **options)
    with OracleServer(factory, max_batch=batch) as server:
        session = server.session(batch * (batches + 1))
        session.query(noisy[0][:1], score_texts=targets[:1])  # warm-up
        started = time.perf_counter()
        for waveforms in noisy:
            session.query(waveforms, score_texts=targets)
        oracle_qps = batch * batches / (time.perf_counter() - started)
    return {"model": name, "parameters": parameters, "load_s": load_s, "bare_qps": bare_qps,
            "oracle_qps": oracle_qps, "efficiency": bare_qps / oracle_qps}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def attack_shard(rank: int, world: int, folder: str, device: str, precision: str, port: int) -> None:
    """One rank of the 2-process attack shard: joins the process group, attacks its share of the sources."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=rank, world_size=world)
    try:
        if device.startswith("cuda"):
            device = f"cuda:{rank % torch.cuda.device_count()}"
        sources = shard_sources(Path(folder))
        factory = functools.partial(build_by_name, SYSTEM_FACTORY, backend="whisper", min_context_s=10.0,
                                    device=device, precision=precision)
        run_campaign(sources, factory, "whisper", ZerothOrderAttack(directions=4), GoalSpec("untargeted"),
                     PerturbationBudget("snr"), Path(folder) / "cache", query_budget=12, rank=rank, world_size=world,
                     progress=False)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def shard_sources(folder: Path) -> list[SourceUtterance]:
    import soundfile

    sources = []
    for index in range(4):
        path = folder / f"source-{index}.flac"
        if not path.is_file():
            soundfile.write(str(path), speech_like(1.5, index), 16_000)
        sources.append(SourceUtterance(f"utt-{index}", str(path), "TURN ON THE LIGHT"))
    return sources


def run_attack_shard(folder: Path, device: str, precision: str) -> dict:
    """2 ranks attack 4 sources; every source must be attacked exactly once."""
    import torch.multiprocessing as mp

    from campaigns.store import AdversarialCache

    folder.mkdir(parents=True, exist_ok=True)
    shard_sources(folder)  # written once, before the ranks start
    started = time.perf_counter()
    port = 29_500 + os.getpid() % 1_000
    mp.start_processes(attack_shard, args=(2, str(folder), device, precision, port), nprocs=2, start_method="spawn")
    wall = time.perf_counter() - started
    records = [r for config in (folder / "cache").rglob("config.json")
               for r in AdversarialCache.existing(config.parent).records()]
    ids = sorted(r["utterance_id"] for r in records)
    return {"wall_s": wall, "attacked": ids, "ok": ids == [f"utt-{i}" for i in range(4)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None, choices=["32", "bf16", "16"],
                        help="forward passes (default: bf16 on cuda, 32 on cpu)")
    parser.add_argument("--batch", type=int, default=32, help="queries per batched call (an attack population)")
    parser.add_argument("--batches", type=int, default=3, help="timed calls per measurement")
    parser.add_argument("--seconds", type=float, default=4.0, help="utterance length")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-shard", action="store_true", help="skip the 2-process attack shard")
    args = parser.parse_args(argv)
    precision = args.precision or ("bf16" if args.device.startswith("cuda") else "32")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {os.cpu_count()} cores"
    print(f"gpu_check on {device_name}: precision {precision}, batch {args.batch}, {args.seconds:g} s utterances",
          flush=True)
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        started = time.perf_counter()
        install_full_size_replicas(Path(tmp))
        print(f"full-size replicas built in {time.perf_counter() - started:.0f} s", flush=True)
        for name in args.models:
            options = {"device": args.device, "precision": precision, **REPLICA_OPTIONS.get(name, {})}
            if name == "whisper":
                options["min_context_s"] = None  # the exact model
            try:
                rows.append(measure(name, options, args.batch, args.batches, args.seconds))
                print(f"  {name}: done", flush=True)
            except Exception as error:  # noqa: BLE001 - reported in the table, the other models still run
                failed = True
                rows.append({"model": name, "error": f"{type(error).__name__}: {error}"})
        shard = None if args.no_shard else run_attack_shard(Path(tmp) / "shard", args.device, precision)
    print("\n| model | parameters | load s | bare queries/s | oracle queries/s | oracle efficiency |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['model']} | failed: {row['error']} |||||")
            continue
        print(f"| {row['model']} | {row['parameters'] / 1e6:.1f} M | {row['load_s']:.1f} | {row['bare_qps']:.3g} | "
              f"{row['oracle_qps']:.3g} | {row['efficiency']:.2f} |")
    if shard is not None:
        failed |= not shard["ok"]
        print(f"\n2-process attack shard ({'nccl' if args.device.startswith('cuda') else 'gloo'}): "
              f"{'ok' if shard['ok'] else 'FAILED'}, sources attacked {shard['attacked']} in {shard['wall_s']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
