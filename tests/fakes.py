"""Test doubles for the edges: sentiment and complaint models that read cue words."""

from __future__ import annotations

from collections.abc import Sequence

NEGATIVE_CUES = ("worst", "hate", "terrible", "awful", "broken", "down", "never", "still", "no ")
POSITIVE_CUES = ("thank", "love", "great", "awesome", "best")


class CueWordSentiment:
    """Deterministic sentiment from cue words, so pipeline tests need no model."""

    name = "test:cue-words"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        self.batches.append(len(texts))
        out = []
        for text in texts:
            low = text.lower()
            neg = sum(c in low for c in NEGATIVE_CUES)
            pos = sum(c in low for c in POSITIVE_CUES)
            if neg > pos:
                out.append({"negative": 0.8, "neutral": 0.15, "positive": 0.05})
            elif pos > neg:
                out.append({"negative": 0.05, "neutral": 0.15, "positive": 0.8})
            else:
                out.append({"negative": 0.2, "neutral": 0.6, "positive": 0.2})
        return out


COMPLAINT_CUES = ("worst", "still", "never", "again", "refund", "broken", "waiting", "!!")


class CueWordComplaints:
    """Deterministic p(complaint) from cue words, so pipeline tests need no complaint model."""

    name = "test:complaint-cues"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, texts: Sequence[str]) -> list[float]:
        self.batches.append(len(texts))
        return [min(1.0, sum(c in t.lower() for c in COMPLAINT_CUES) / 2) for t in texts]
