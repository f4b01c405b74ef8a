"""Strength and cost of the closed-model attacks: ``python benchmarks/attack_strength.py [options]``.

For each backend, attack (AE, AZ, AC: the carrier attack, transcripts only), goal (untargeted; targeted, by default
"open the door": ``--targets`` sweeps phrases, ``--criteria`` runs the success criteria side by side) and budget
mode (l_inf 0.01, SNR 10 dB): success rate at 1,000 and at the full query budget (read from each run's
success-versus-queries history: attacks stop at success; the full budget's with its Wilson 95 % interval), mean
queries of the successes, SNR, l_inf and MFCC similarity; and the oracle
efficiency ratio = attack wall time / sum over utterances of (queries x the backend's batched time per query of that
utterance for the same work, transcript + score, measured in this process at batch 32, fastest of 3 passes), and
"vs served": attack wall time / the time the oracle's server spent in the system's forward passes for those very
queries (timed in the server process, so it needs no separate reference; "-" for campaigns cached before it existed).
Campaigns are cached and reused (``<cache>/adversarial``), so an interrupted run resumes. ``--device cuda``
puts the oracle on a GPU and ``--processes N`` runs N shards of the utterances at once (their own oracles).
Results: Markdown table, ``<cache>/results/attack_strength.json`` and, per backend, a success-versus-queries plot
``<cache>/results/attack_strength_<backend>.png``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from attacks.goals import CRITERIA, TARGET_PHRASE
from campaigns.campaign import GoalSpec, SourceUtterance
from campaigns.launcher import CampaignJob, CampaignLauncher, launch_side_by_side
from attacks.carrier import CarrierAttack
from attacks.constraints import PerturbationBudget
from attacks.evolutionary import EvolutionaryAttack
from attacks.zeroth_order import ZerothOrderAttack
from datamodules import LibriSpeechDataModule
from core import logs
from core.audio_io import load_audio
from core.cache_dir import default_cache_dir
from core.figures import success_curves
from evaluation.metrics import success_rate
from lit_modules.backends.registry import TRAINED
from lit_modules.surrogate import prior_members

ATTACKS = {"AE": EvolutionaryAttack, "AZ": ZerothOrderAttack, "AC": CarrierAttack}
SEARCH_OPTIONS = ("AE", "AZ")  # the attacks the latent / zeroth-order options below apply to
BUDGETS = {"linf": PerturbationBudget("linf", delta_max=0.01), "snr": PerturbationBudget("snr", snr_db=10.0)}


def forward_seconds_per_query(backend: str, options: dict, sources: list[SourceUtterance], batch: int,
                              target: str) -> dict[str, float]:
    """The backend's own time for one query's work (transcribe + score) on each source, batched like an attack:
    {utterance id: seconds}, the fastest of three passes (the machine is shared)."""
    from lit_modules.target_system import build_system, prepare_system

    prepare_system(backend, **options)  # trains a missing small backend here, before the oracle's process needs it
    system = build_system(backend, **options)
    times = {}
    for source in sources:
        clean = load_audio(source.audio_path)
        waveforms = clean[None].repeat(batch, 1) + 0.001 * torch.randn(batch, clean.numel())
        lengths = torch.full((batch,), clean.numel())
        system.respond(waveforms[:2], lengths[:2], [target] * 2)  # warm-up
        passes = []
        for _ in range(3):
            started = time.perf_counter()
            system.respond(waveforms, lengths, [target] * batch)
            passes.append((time.perf_counter() - started) / batch)
        times[source.utterance_id] = min(passes)
    return times


def goal_name(goal: GoalSpec) -> str:
    """The goal as the table shows it: untargeted, or targeted "PHRASE" with its criterion when not exact."""
    if goal.kind != "targeted":
        return goal.label
    criterion = {"exact": "", "contains": " (contains)", "wer": f" (WER <= {goal.max_wer:g})"}[goal.criterion]
    return f'targeted "{goal.target}"{criterion}'


def success_by(records: list[dict], queries: int) -> float:
    """Share of utterances attacked successfully within ``queries`` (from each run's history)."""
    hits = [any(q <= queries and ok for q, _, ok in r["history"]) for r in records]
    return float(np.mean(hits)) if hits else float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="*", default=["conformer_ctc"])
    parser.add_argument("--attacks", nargs="*", default=list(SEARCH_OPTIONS), choices=list(ATTACKS))
    parser.add_argument("--goals", nargs="*", default=["untargeted", "targeted"], choices=["untargeted", "targeted"])
    parser.add_argument("--modes", nargs="*", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--targets", nargs="+", default=[TARGET_PHRASE],
                        help="targeted goals' phrases, e.g. a length sweep: OPEN 'OPEN THE' 'OPEN THE DOOR' "
                             "'PLEASE OPEN THE FRONT DOOR'")
    parser.add_argument("--criteria", nargs="+", default=["exact"], choices=list(CRITERIA),
                        help="when a targeted attack succeeds, each its own campaign, side by side: exact transcript, "
                             "the target's words contained in it (command injection), or target WER <= --max-wer")
    parser.add_argument("--max-wer", type=float, default=0.34, help="the wer criterion's threshold")
    parser.add_argument("--utterances", type=int, default=5, help="source utterances (seeded draw of the test split)")
    parser.add_argument("--root", default=None,
                        help="a folder holding LibriSpeech/<split> (default: the synthetic corpus)")
    parser.add_argument("--split", default="dev-clean", help="with --root: the LibriSpeech split to attack")
    parser.add_argument("--no-reference-timing", action="store_true",
                        help="skip the batched reference timing (the 'oracle efficiency' column; 'vs served' stays)")
    parser.add_argument("--max-duration", type=float, default=4.0, help="longest source utterance, seconds")
    parser.add_argument("--query-budget", type=int, default=10_000)
    parser.add_argument("--early-budget", type=int, default=1_000, help="also report success within this many")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beam", action="store_true",
                        help="attack the small backends with beam search + LM decoding (default: greedy, ~10x cheaper)")
    parser.add_argument("--whisper-context", type=float, default=10.0,
                        help="Whisper's shortest encoder window, s (10 s: 3.6x faster than 30 s, the window of the "
                             "earlier measurements in docs/attacks.md; 0 = the exact 30 s window, as the presets)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each oracle process")
    parser.add_argument("--device", default="cpu", help="where the attacked system runs, e.g. cuda")
    parser.add_argument("--precision", default="32", choices=["32", "bf16", "16"],
                        help="the oracle's forward passes: bf16 / 16 under autocast (GPU)")
    parser.add_argument("--processes", type=int, default=1,
                        help="oracle + attacker process pairs, each attacking its shard of the utterances (several "
                             "share one GPU; on CPU each wants its own cores)")
    parser.add_argument("--basis", default="lowrate", choices=["lowrate", "bands"],
                        help="the attacks' latent: low-rate waveform or band-noise (spectro-temporal) gains")
    parser.add_argument("--smoothing", type=float, default=None,
                        help="zeroth-order beta as a fraction of the budget's scale (default: the attacks' own)")
    parser.add_argument("--prior-checkpoint", nargs="+", default=None,
                        help="transfer prior: the attacker's own surrogate (checkpoints of --prior-backend, several = an "
                             "ensemble; never the attacked model, which is refused) guides the zeroth-order search")
    parser.add_argument("--transfer-steps", type=int, default=None,
                        help="with a prior: white-box steps on the surrogate before the first query (the transfer "
                             "start; default: the attacks' own, 0)")
    parser.add_argument("--prior-samples", type=int, default=None,
                        help="with a prior: surrogate gradients at noisy copies of the iterate per step, whose span "
                             "the search probes first (default: the attacks' own, 0)")
    parser.add_argument("--prior-backend", default="conformer_ctc", help="architecture of --prior-checkpoint")
    parser.add_argument("--surrogates", nargs="+", default=None, metavar="BACKEND:SEED",
                        help="transfer prior from the attacker's own models, e.g. conformer_ctc:1 conformer_ctc:2 "
                             "(trained on another synthetic corpus on first use, configs/asr/surrogate.yaml)")
    parser.add_argument("--estimator", default=None, choices=["forward", "antithetic"],
                        help="zeroth-order differences (default: the attacks' own, forward)")
    parser.add_argument("--envelope", action=argparse.BooleanOptionalAction, default=None,
                        help="shape the latent's perturbation by the clean speech's envelope (default: the attacks' "
                             "own, on); --no-envelope spreads it evenly in time")
    parser.add_argument("--gradient-phase", type=float, default=None,
                        help="AE: share of the budget left to its final zeroth-order phase (default: the attack's own, "
                             "0.5; 0 = genetic search only, e.g. to time that phase)")
    parser.add_argument("--debug", nargs="+", default=None, metavar="LOGGER",
                        help="these loggers at DEBUG, in the attacker processes too, e.g. attacks.carrier (the carrier "
                             "search's distance to the budget after each group of its latent)")
    args = parser.parse_args(argv)
    if args.debug:
        logs.configure(debug=args.debug)

    real = {"root": args.root, "test_splits": [args.split]} if args.root else {}
    data = LibriSpeechDataModule(test_subset=args.utterances, max_duration=args.max_duration, seed=args.seed, **real)
    sources = [SourceUtterance(u.utterance_id, str(u.audio_path), u.transcript) for u in data.stage_utterances("test")]
    cache_root = default_cache_dir() / "adversarial"
    rows, results = [], {}
    out_dir = default_cache_dir() / "results"
    for backend in args.backends:
        histories: dict[str, list[list]] = {}
        options = {} if args.beam or backend not in TRAINED else {"decoding": {"beam_size": 1}}
        if backend == "whisper" and args.whisper_context:
            options = {"min_context_s": args.whisper_context}
        label = backend + ("-greedy" if "decoding" in options else
                           f"-context{options['min_context_s']:g}s" if "min_context_s" in options else "")
        placement = {k: v for k, v in (("device", args.device), ("precision", args.precision))
                     if v != {"device": "cpu", "precision": "32"}[k]}
        options.update(placement)
        label += "".join(f"-{v}" for v in placement.values())
        if args.threads:
            torch.set_num_threads(args.threads)
        per_query = ({} if args.no_reference_timing
                     else forward_seconds_per_query(backend, options, sources, 32, "OPEN THE DOOR"))
        members = prior_members(args.prior_backend, args.prior_checkpoint, args.surrogates)
        prior = {"members": members} if members else None
        jobs = []
        for name in args.attacks:
            tuning = {k: v for k, v in (("smoothing", args.smoothing), ("estimator", args.estimator),
                                        ("transfer_steps", args.transfer_steps),
                                        ("prior_samples", args.prior_samples), ("envelope", args.envelope))
                      if v is not None}
            if name == "AE" and args.gradient_phase is not None:
                tuning["gradient_phase"] = args.gradient_phase
            if name not in SEARCH_OPTIONS:  # the carrier attack: its own defaults (configs/attacks/ac.yaml)
                tuning, attack = {}, ATTACKS[name]()
            else:
                attack = ATTACKS[name](basis=args.basis, **tuning)
            goals = [GoalSpec("untargeted")] * ("untargeted" in args.goals) + [
                GoalSpec("targeted", target=target, criterion=criterion, max_wer=args.max_wer)
                for target in args.targets for criterion in args.criteria] * ("targeted" in args.goals)
            jobs += [(name, tuning, goal, mode, CampaignJob(attack, sources, goal, BUDGETS[mode], prior))
                     for goal in goals for mode in args.modes]
        launcher = CampaignLauncher({"backend": backend, **options}, cache_root, args.query_budget, args.seed)
        stores = launch_side_by_side(launcher, [job for *_, job in jobs], args.processes, threads=args.threads)
        for (name, tuning, goal, mode, _), cache in zip(jobs, stores):
            records = [r for r in cache.records() if r["utterance_id"] in {s.utterance_id for s in sources}]
            if not records:
                continue
            successes = [r for r in records if r["success"]]
            histories[f"{name} {goal_name(goal)} {BUDGETS[mode].label} (n={len(records)})"] = [
                r["history"] for r in records]
            wall = sum(r["wall_time_s"] for r in records)
            row = {
                "backend": label, "attack": name + ("+prior" if prior is not None else "") + (f"+transfer{args.transfer_steps}" if prior is not None and args.transfer_steps else "") + (" (flat)" if args.envelope is False else ""), **tuning, "goal": goal_name(goal), "budget": BUDGETS[mode].label,
                "utterances": len(records),
                f"success_at_{args.early_budget}": success_by(records, args.early_budget),
                f"success_at_{args.query_budget}": success_by(records, args.query_budget),
                "success_interval": success_rate([success_by([r], args.query_budget) for r in records]).as_dict(),
                "mean_queries_successful": float(np.mean([r["queries"] for r in successes])) if successes else None,
                "mean_snr_db": float(np.mean(finite)) if (finite := [r["snr_db"] for r in records
                                                                     if np.isfinite(r["snr_db"])]) else None,
                "unchanged": sum(not np.isfinite(r["snr_db"]) for r in records),
                "max_linf": float(max(r["linf"] for r in records)),
                "min_mfcc_similarity": float(min(r["mfcc_similarity"] for r in records)),
                "seconds_per_utterance": wall / len(records),
                "oracle_efficiency": (wall / sum(r["queries"] * per_query[r["utterance_id"]]
                                                 for r in records)) if per_query else None,
                "served_efficiency": (wall / served if (served := sum(r.get("system_time_s", 0.0)
                                                                      for r in records)) > 0 else None),
                "examples": [(r["transcript_clean"], r["transcript_adversarial"]) for r in records[:2]],
            }
            rows.append(row)
        results[label] = {"backend_seconds_per_query": per_query}
        if histories:
            plot = success_curves(histories, args.query_budget, out_dir / f"attack_strength_{label}.png",
                                  f"closed-model attacks on {label}")
            print(f"plot: {plot}")
    header = (f"| backend | attack | goal | budget | n | success@{args.early_budget} % | success@{args.query_budget} % | "
              "95 % interval | mean queries (successes) | SNR dB | max l_inf | min MFCC | s / utt | oracle efficiency | "
              "vs served |")
    lines = [header, "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mean_q = "-" if r["mean_queries_successful"] is None else f"{r['mean_queries_successful']:.0f}"
        lines.append(
            f"| {r['backend']} | {r['attack']} | {r['goal']} | {r['budget']} | {r['utterances']} | "
            f"{100 * r[f'success_at_{args.early_budget}']:.0f} | {100 * r[f'success_at_{args.query_budget}']:.0f} | "
            f"[{r['success_interval']['ci_low']:.0f}, {r['success_interval']['ci_high']:.0f}] | "
            f"{mean_q} | {'-' if r['mean_snr_db'] is None else format(r['mean_snr_db'], '.1f')} | {r['max_linf']:.4f} | {r['min_mfcc_similarity']:.3f} | "
            f"{r['seconds_per_utterance']:.1f} | "
            f"{'-' if r['oracle_efficiency'] is None else format(r['oracle_efficiency'], '.2f')} | "
            f"{'-' if r['served_efficiency'] is None else format(r['served_efficiency'], '.2f')} |")
    table = "\n".join(lines)
    print(table)
    out = out_dir / "attack_strength.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "backends": results, "args": vars(args)}, indent=2))
    print(f"\nwritten: {out}")
    return {"rows": rows, "table": table}


if __name__ == "__main__":
    main()
