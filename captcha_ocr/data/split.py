"""Deterministic k-fold train / validation / test partition of a data set."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """Sample indices of each part; the three are disjoint and cover every sample."""

    train: list[int]
    val: list[int]
    test: list[int]


def fold_test_files(files: list, fold: int = 0, part: str = "test") -> list:
    """The test part (or ``part``: "val", "train") of ``fold`` among sorted ``files``, as the data
    module computes it with its default split (what the benchmarks and tests read a fold's unseen
    images from)."""
    return [files[i] for i in getattr(fold_split(len(files), fold=fold), part)]


def subsample(indices: list[int], size: int | None, seed: int = 0) -> list[int]:
    """``size`` of ``indices``, drawn by ``seed``; nested: a smaller size's samples are part of
    every larger one (same ``indices`` and seed), so a learning curve only ever adds images.

    Raises:
        ValueError: ``size`` is below 1 or more than there are indices.
    """
    if size is None:
        return indices
    if not 1 <= size <= len(indices):
        raise ValueError(f"train_size must be in [1, {len(indices)}] (the training part), got {size}")
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(indices[i] for i in order[:size])


def fold_split(num_samples: int, fold: int, num_folds: int = 5, val_fraction: float = 0.1, seed: int = 0) -> Split:
    """Split ``num_samples`` samples for one fold of a k-fold cross-validation.

    The samples are shuffled once by ``seed`` and cut into ``num_folds`` parts of equal size
    (within one); part ``fold`` is the test set, so the test sets of all folds partition the
    data. The last ``val_fraction`` of the rest (in shuffled order) is the validation set. One
    fold has no test set: every sample trains (or validates).
    Indices refer to the caller's sample order, which must itself be deterministic (the data
    module sorts files by name).

    Args:
        num_samples: Number of samples.
        fold: Which part is the test set, in ``[0, num_folds)``.
        num_folds: Number of parts; the train + val : test ratio is ``num_folds - 1 : 1`` (1: no test part).
        val_fraction: Share of the non-test samples held out for validation, in ``[0, 1)``.
        seed: Seed of the shuffle; the split depends on nothing else.
    """
    if num_folds < 1:
        raise ValueError(f"num_folds must be at least 1, got {num_folds}")
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if num_samples < num_folds:
        raise ValueError(f"need at least {num_folds} samples for {num_folds} folds, got {num_samples}")
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    parts = torch.tensor_split(order, num_folds)
    test = parts[fold].tolist() if num_folds > 1 else []
    rest = torch.cat([p for i, p in enumerate(parts) if i != fold or num_folds == 1]).tolist()
    num_val = round(len(rest) * val_fraction)
    return Split(train=sorted(rest[: len(rest) - num_val]), val=sorted(rest[len(rest) - num_val :]), test=sorted(test))
