"""Training entry point (Lightning CLI): ``python train.py fit --config configs/asr/conformer_ctc.yaml``.

Subcommands fit / validate / test / predict; components come from the YAML (``class_path`` / ``init_args``);
configs compose (``--config a.yaml --config b.yaml``, last wins). A checkpoint given with ``--ckpt_path`` is loaded
with ``weights_only=True`` (tensors and plain values only: a checkpoint cannot run code) unless
``--weights_only=false`` is passed for a trusted one.
"""

from lightning.pytorch.cli import LightningCLI

import lightning as L


class SafeLoadingCLI(LightningCLI):
    """The Lightning CLI with ``weights_only=True`` as the default of every subcommand's checkpoint loading."""

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        return kwargs


def cli_main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and with ``run``, execute) the CLI; ``args`` instead of ``sys.argv`` lets tests call it in-process."""
    return SafeLoadingCLI(
        L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=args, run=run, save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    cli_main()
