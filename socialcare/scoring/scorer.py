"""One scorer for every head: sentiment probabilities and p(complaint) per post.

    scorer = get_scorer(settings)
    for s in scorer.score(texts):             # in input order
        s.sentiment["negative"], s.complaint

`score(texts, embeddings=True)` also fills `PostScores.embedding`: the shared encoder's last base
layer, mean-pooled over the attention mask and L2-normalised (a tuple of ENCODER dim floats), for
surge clustering. Without it the field is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from socialcare.scoring.complaint import get_complaint_model
from socialcare.scoring.encoder import get_encoder
from socialcare.scoring.sentiment import get_sentiment_model

if TYPE_CHECKING:
    from socialcare.config import Settings


@dataclass(frozen=True)
class PostScores:
    """One post's scores: sentiment over LABELS (negative, neutral, positive), p(complaint)."""

    sentiment: dict[str, float]
    complaint: float
    embedding: tuple[float, ...] | None = field(default=None, compare=False, repr=False)


class Scorer(Protocol):
    """Scores a batch of posts with every head.

    sentiment_name: what Score.model stores (the sentiment model's name and version).
    complaint_name: what the complaint reason cites (the complaint model's name and version).
    """

    sentiment_name: str
    complaint_name: str

    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]: ...


class SeparateScorer:
    """The sentiment and complaint models, each called on the whole batch."""

    def __init__(self, settings: Settings) -> None:
        self.sentiment = get_sentiment_model(settings)
        self.complaint = get_complaint_model(settings)
        self.sentiment_name = self.sentiment.name
        self.complaint_name = self.complaint.name
        self._encoder = (settings.encoder_model, settings.scoring_quantize)
        self._batch_size = settings.score_batch_size

    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]:
        """Scores for each text, in input order."""
        if not texts:
            return []
        sentiment = self.sentiment.predict(texts)
        complaint = self.complaint.predict(texts)
        vectors: list[tuple[float, ...] | None] = [None] * len(texts)
        if embeddings:
            encoder = get_encoder(*self._encoder)
            vectors = [tuple(row) for row in encoder.encode(texts, self._batch_size).tolist()]
        return [PostScores(s, c, e) for s, c, e in zip(sentiment, complaint, vectors, strict=True)]


def _key(settings: Settings) -> tuple[str, str, str, int]:
    """The settings a scorer depends on."""
    return (
        settings.sentiment_model.strip(),
        settings.encoder_model,
        settings.scoring_quantize,
        settings.score_batch_size,
    )


_SCORERS: dict[tuple[str, str, str, int], Scorer] = {}


def get_scorer(settings: Settings | None = None) -> Scorer:
    """The process's scorer for these settings (SENTIMENT_MODEL, ENCODER_MODEL,
    SCORING_QUANTIZE, SCORE_BATCH_SIZE), loaded once."""
    if settings is None:
        from socialcare.config import get_settings

        settings = get_settings()
    key = _key(settings)
    if key not in _SCORERS:
        _SCORERS[key] = SeparateScorer(settings)
    return _SCORERS[key]
