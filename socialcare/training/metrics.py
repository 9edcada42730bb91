"""The figures every trainer reports: sentiment macro recall, F1 of one class, macro F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from socialcare.scoring.base import LABELS


def sentiment_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Macro recall, accuracy, per-class recall and confusion matrix (rows true, cols predicted)."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    matrix = [[0] * len(LABELS) for _ in LABELS]
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[LABELS.index(t)][LABELS.index(p)] += 1
    recall = {
        label: (row[i] / sum(row) if sum(row) else 0.0)
        for i, (label, row) in enumerate(zip(LABELS, matrix, strict=True))
    }
    present = [recall[lb] for lb, row in zip(LABELS, matrix, strict=True) if sum(row)]
    correct = sum(matrix[i][i] for i in range(len(LABELS)))
    return {
        "macro_recall": sum(present) / len(present) if present else 0.0,
        "accuracy": correct / len(y_true) if y_true else 0.0,
        "recall": recall,
        "confusion": matrix,
        "labels": list(LABELS),
        "n": len(y_true),
    }


def _counts(y_true: Sequence[int], y_pred: Sequence[int], c: int) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of class c."""
    pairs = list(zip(y_true, y_pred, strict=True))
    tp = sum(t == p == c for t, p in pairs)
    fp = sum(t != c and p == c for t, p in pairs)
    fn = sum(t == c and p != c for t, p in pairs)
    return tp, fp, fn


def f1(y_true: Sequence[int], y_pred: Sequence[int], c: int = 1) -> float:
    """F1 of class c."""
    tp, fp, fn = _counts(y_true, y_pred, c)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[int]) -> float:
    """Mean over classes of F1."""
    return sum(f1(y_true, y_pred, c) for c in classes) / len(classes)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of rows predicted right."""
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / max(1, len(y_true))


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """F1, precision and recall of class 1 (complaint), accuracy and macro F1."""
    tp, fp, fn = _counts(y_true, y_pred, 1)
    return {
        "f1": f1(y_true, y_pred),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, [0, 1]),
    }
