"""Training entry point (Lightning CLI): ``python train.py fit --config configs/asr/conformer_ctc.yaml``.

Subcommands fit / validate / test / predict; components come from the YAML (``class_path`` / ``init_args``);
configs compose (``--config a.yaml --config b.yaml``, last wins).
"""

from lightning.pytorch.cli import LightningCLI

import lightning as L


def cli_main(args: list[str] | None = None) -> LightningCLI:
    return LightningCLI(
        L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
        args=args, save_config_kwargs={"overwrite": True},
    )


if __name__ == "__main__":
    cli_main()
