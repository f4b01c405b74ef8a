"""Training entry point (Lightning CLI): ``python train.py fit --config configs/asr/conformer_ctc.yaml``.

Subcommands fit / validate / test / predict; components come from the YAML (``class_path`` / ``init_args``);
configs compose (``--config a.yaml --config b.yaml``, last wins).
"""

from lightning.pytorch.cli import LightningCLI

import lightning as L


def cli_main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and with ``run``, execute) the CLI; ``args`` instead of ``sys.argv`` lets tests call it in-process."""
    return LightningCLI(
        L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=args, run=run, save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    cli_main()
