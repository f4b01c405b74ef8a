"""The project's Lightning CLI (``python train.py``): components from YAML (``class_path`` / ``init_args``; a component
file under configs/ can stand for one), checkpoints loaded with ``weights_only=True`` by default, the attacked
backend linked from the data module to the detector, and the campaigns a data module reads generated before the
subcommand runs (each DDP rank attacks its own shard; the data module itself only reads)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI


class ProjectCLI(LightningCLI):
    """The Lightning CLI with ``weights_only=True`` as the default of every subcommand's checkpoint loading, and
    campaign generation as the explicit step before fit / validate / test / predict."""

    def add_arguments_to_parser(self, parser) -> None:
        """The detector reads the activations of the recognizer the campaigns attacked: ``data.system.backend`` is
        ``model.backend`` (applies where both exist: the adversarial data module and the BNN detector)."""
        parser.link_arguments("data.init_args.system", "model.init_args.backend", compute_fn=_attacked_backend,
                              apply_on="parse")

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        return kwargs

    def _generate_campaigns(self) -> None:
        """Every campaign the data module reads (``campaign_plans()``: the adversarial data module itself, or the
        one an enhancement-pairs module wraps), this rank's shard."""
        from campaigns.launcher import generate

        for plan in getattr(self.datamodule, "campaign_plans", lambda: [])():
            generate(plan, self.trainer.global_rank, self.trainer.world_size)

    def before_fit(self) -> None:
        self._generate_campaigns()

    def before_validate(self) -> None:
        self._generate_campaigns()

    def before_test(self) -> None:
        self._generate_campaigns()

    def before_predict(self) -> None:
        self._generate_campaigns()


def _attacked_backend(system: dict | None) -> str | None:
    """The registry name of the attacked system's backend (None for a system built by a custom factory)."""
    return (system or {}).get("backend")


def cli_main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and with ``run``, execute) the CLI; ``args`` instead of ``sys.argv`` lets tests call it in-process."""
    return ProjectCLI(
        L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=args, run=run, save_config_kwargs={"overwrite": True},
    )
