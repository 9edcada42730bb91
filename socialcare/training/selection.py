"""The one cross-validation and selection loop every trainer uses: seeds, stratified folds,
out-of-fold predictions, a held-out slice of the training rows, the best of candidates."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

T = TypeVar("T")
K = TypeVar("K")


def seed_everything(seed: int) -> None:
    """Fix the random, numpy and torch seeds."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stratified_folds(labels: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """k folds of row indices, each class shuffled (seeded) and dealt round-robin across them."""
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        for i in idx:
            folds[dealt % k].append(i)
            dealt += 1
    return [sorted(f) for f in folds]


@dataclass
class OutOfFold(Generic[T]):
    """Each row's prediction by the model trained without its fold, and the folds."""

    predictions: list[T]
    folds: list[list[int]]

    def of(self, fold: Sequence[int]) -> list[T]:
        """The predictions of these rows."""
        return [self.predictions[i] for i in fold]


def out_of_fold(
    labels: Sequence[int],
    k: int,
    seed: int,
    fit_predict: Callable[[list[int], list[int]], Sequence[T]],
) -> OutOfFold[T]:
    """Stratified k-fold: fit_predict(train rows, test rows) trains on the first (ascending
    row indices) and returns its predictions for the second, in their order."""
    folds = stratified_folds(labels, k, seed)
    predictions: list[T | None] = [None] * len(labels)
    for fold in folds:
        held = set(fold)
        train = [i for i in range(len(labels)) if i not in held]
        for i, p in zip(fold, fit_predict(train, fold), strict=True):
            predictions[i] = p
    done = [p for p in predictions if p is not None]
    if len(done) != len(labels):
        raise ValueError("the folds left rows without a prediction")
    return OutOfFold(done, folds)


def holdout_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded 10% of n rows held out for selection, and the rest to fit on (index tensors)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 10], perm[n // 10 :]


def best(candidates: Mapping[K, T], score: Callable[[T], float]) -> K:
    """The candidate whose score is highest (the first of equals, in the mapping's order)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    return max(candidates, key=lambda name: score(candidates[name]))
