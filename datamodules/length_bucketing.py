"""A batch sampler that groups utterances of similar length so padding stays small."""

from __future__ import annotations

import random
from typing import Iterator, Sequence

import torch.distributed as dist
from torch.utils.data import Sampler


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Yields batches of indices whose lengths are close.

    Each epoch the indices are shuffled (seeded by ``seed + epoch``), cut into pools of
    ``batch_size * pool_batches``, each pool sorted by length and cut into batches, and the batches
    shuffled. Under DDP every rank takes every ``num_replicas``-th batch (the batch list is padded by
    repetition so all ranks take the same number of steps).

    Args:
        lengths: length of each item (any unit, e.g. samples).
        batch_size: items per batch.
        shuffle: shuffle pools and batches each epoch; ``False`` gives sorted, deterministic batches.
        pool_batches: how many batches' worth of items are sorted together.
        seed: base seed; call ``set_epoch`` each epoch for fresh order.
        drop_last: drop the last, smaller batch.
        num_replicas, rank: DDP sharding; default from ``torch.distributed`` when initialized.

    Under DDP, train with ``Trainer(use_distributed_sampler=False)``: this sampler shards by itself, and
    Lightning cannot inject its own sampler into it (it says so with a ``TypeError``).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        pool_batches: int = 50,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if isinstance(lengths, Sampler):
            raise TypeError(
                "LengthBucketBatchSampler got a sampler instead of item lengths: Lightning tried to inject a "
                "DistributedSampler. It shards across DDP ranks by itself; set Trainer(use_distributed_sampler=False) "
                "or turn bucket_by_length off."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        distributed = dist.is_available() and dist.is_initialized()
        self.num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if distributed else 1)
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool_size = batch_size * max(1, pool_batches)
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use a fresh, reproducible order."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        indices = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(indices)
            pools = [indices[i : i + self.pool_size] for i in range(0, len(indices), self.pool_size)]
        else:
            pools = [indices]
        batches: list[list[int]] = []
        for pool in pools:
            pool.sort(key=lambda index: self.lengths[index])
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        if self.num_replicas > 1 and batches:
            remainder = -len(batches) % self.num_replicas
            batches.extend(batches[:remainder])
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._all_batches()[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(self._all_batches()[self.rank :: self.num_replicas])
