"""The SentimentModel protocol: any model that gives sentiment probabilities for a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

LABELS = ("negative", "neutral", "positive")


class SentimentModel(Protocol):
    """Sentiment for a batch of texts.

    name: identifies the model and its version in each stored score.
    predict: one dict per text mapping each of LABELS to a probability (they sum to 1), in order.
    Loaded once per process (see scoring.sentiment.get_sentiment_model); predict is batched.
    """

    name: str

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class ComplaintScorer(Protocol):
    """p(complaint) for a batch of texts (scoring.complaint.ComplaintModel or a test double)."""

    name: str

    def predict(self, texts: Sequence[str]) -> list[float]: ...
