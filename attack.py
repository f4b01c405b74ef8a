"""Run an attack over a data split and cache the adversarial examples:

    python attack.py --config configs/attacks/ae.yaml [--goal.kind targeted] [--budget.mode snr] ...

Prints a summary table (success rate, queries, SNR, l_inf, MFCC similarity) and writes it next to the cache.
The target system is built inside the oracle's process by ``system_factory`` (a dotted path) with ``system``'s
arguments; this process never holds a model. ``--prior '{backend: conformer_ctc, checkpoint: surrogate.ckpt}'``
adds a transfer prior: the attacker's own surrogate, in a process of its own, guides the zeroth-order search.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from attacks.base import Attack
from attacks.constraints import PerturbationBudget
from attacks.summary import summarize, summary_markdown
from campaigns.campaign import GoalSpec, SourceUtterance
from campaigns.launcher import DEFAULT_SYSTEM_FACTORY, CampaignJob, CampaignLauncher
from core import logs
from core.cache_dir import default_cache_dir
from datamodules.librispeech import LibriSpeechDataModule


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--data", type=LibriSpeechDataModule, default=None,
                        help="source data (default: the synthetic corpus)")
    parser.add_argument("--stage", type=str, default="test", help="which split of the data to attack")
    parser.add_argument("--system_factory", type=str, default=DEFAULT_SYSTEM_FACTORY)
    parser.add_argument("--system", type=dict, default={"backend": "conformer_ctc"},
                        help="keyword arguments of the system factory (backend, defense, detector, ...)")
    parser.add_argument("--prior", type=dict | None, default=None,
                        help="transfer prior: keyword arguments of lit_modules.surrogate.build_surrogate (the attacker's "
                             "own model, e.g. {backend: conformer_ctc, checkpoint: my.ckpt}); never the attacked model")
    parser.add_argument("--attack", type=Attack, required=True)
    parser.add_argument("--goal", type=GoalSpec, default=GoalSpec())
    parser.add_argument("--budget", type=PerturbationBudget, default=PerturbationBudget())
    parser.add_argument("--query_budget", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache_root", type=str, default=None, help="default: <cache>/adversarial")
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world_size", type=int, default=1)
    parser.add_argument("--verbose", type=bool, default=False,
                        help="every library's messages (default: known harmless noise hidden)")
    return parser


def main(args: list[str] | None = None) -> dict:
    parser = build_parser()
    parsed = parser.parse_args(args)
    logs.configure(parsed.verbose)
    config = parser.instantiate(parsed)
    data = config.data or LibriSpeechDataModule()
    sources = [SourceUtterance(u.utterance_id, str(u.audio_path), u.transcript)
               for u in data.stage_utterances(config.stage)]
    cache_root = Path(config.cache_root) if config.cache_root else default_cache_dir() / "adversarial"
    launcher = CampaignLauncher(config.system, cache_root, config.query_budget, config.seed, config.system_factory,
                                rank=config.rank, world_size=config.world_size)
    # a missing small backend is trained first, in a process of its own (the oracle's daemon process cannot)
    (cache,) = launcher.launch([CampaignJob(config.attack, sources, config.goal, config.budget, config.prior)],
                               prepare_in_child=True)
    summary = summarize(cache.records())
    table = summary_markdown({f"{config.attack.name} {config.goal.label} {config.budget.label}": summary})
    print(f"\n{cache.directory}\n\n{table}")
    (cache.directory / "summary.md").write_text(table + "\n")
    (cache.directory / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
