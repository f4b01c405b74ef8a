from collections import Counter

import pytest

from datamodules.length_bucketing import LengthBucketBatchSampler

LENGTHS = [((i * 7919) % 101) + 1 for i in range(103)]


def test_every_index_once_and_batches_are_length_sorted_within_pools():
    sampler = LengthBucketBatchSampler(LENGTHS, batch_size=8, shuffle=True, pool_batches=4, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert all(len(b) <= 8 for b in batches) and len(batches) == len(sampler)
    spread = sum(max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in batches) / len(batches)
    assert spread < 25  # random batches of 8 from 1..101 spread ~75


def test_epochs_reshuffle_reproducibly():
    sampler = LengthBucketBatchSampler(LENGTHS, batch_size=8, seed=3)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    sampler.set_epoch(0)
    assert list(sampler) == epoch0


def test_unshuffled_is_sorted_and_drop_last():
    batches = list(LengthBucketBatchSampler(LENGTHS, batch_size=10, shuffle=False, drop_last=True))
    assert all(len(b) == 10 for b in batches) and len(batches) == 10
    flat = [LENGTHS[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_ddp_ranks_get_disjoint_equal_shards():
    """103 items in 13 batches of <= 8, padded to 14 for two ranks: each rank takes 7 batches, every index is taken
    and only the one repeated padding batch is seen twice (a rank taking every batch would see all 103 twice)."""
    shards = [list(LengthBucketBatchSampler(LENGTHS, batch_size=8, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 7
    taken = Counter(i for shard in shards for b in shard for i in b)
    assert set(taken) == set(range(len(LENGTHS)))
    twice = [i for i, count in taken.items() if count > 1]
    assert max(taken.values()) == 2 and len(twice) <= 8
    first = {i for b in shards[0] for i in b}
    assert {i for b in shards[1] for i in b} - first and first - {i for b in shards[1] for i in b}


def test_lightning_sampler_injection_is_refused_with_the_fix():
    from torch.utils.data import DistributedSampler

    injected = DistributedSampler(list(range(10)), num_replicas=2, rank=0)
    with pytest.raises(TypeError, match="use_distributed_sampler=False"):
        LengthBucketBatchSampler(injected, batch_size=4, drop_last=False)


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketBatchSampler(LENGTHS, batch_size=0)
