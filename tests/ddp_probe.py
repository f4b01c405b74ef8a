"""A callback for the DDP tests: each rank writes the example ids of every training batch it took."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class RecordTrainingExamples(L.Callback):
    """Appends each training batch's example ids to ``<folder>/examples-rank<r>.txt`` (one id per line)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"examples-rank{trainer.global_rank}.txt").open("a") as handle:
            handle.writelines(f"{example_id}\n" for example_id in batch.example_ids)
