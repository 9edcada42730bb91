"""One scorer for every head: sentiment probabilities and p(complaint) per post.

    scorer = get_scorer(settings)
    for s in scorer.score(texts):             # in input order
        s.sentiment["negative"], s.complaint

`score(texts, embeddings=True)` also fills `PostScores.embedding`: the shared encoder's last base
layer, mean-pooled over the attention mask and L2-normalised, as a tuple of floats (384 for
MiniLM), for surge clustering. It comes from the pass the complaint head already needs (with
every head on the fine-tuned trunk, the base top layers run for it alone). Without it, and from
a scorer made of other models (SeparateScorer: test stand-ins), the field is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from socialcare.errors import ModelError
from socialcare.scoring import complaint as complaint_models
from socialcare.scoring import sentiment as sentiment_models
from socialcare.scoring.base import LABELS, ComplaintScorer, SentimentModel
from socialcare.scoring.complaint import ComplaintModel, features
from socialcare.scoring.encoder import BASE, FINETUNED, Trunk, batches, preprocess
from socialcare.scoring.sentiment import EncoderHeadSentiment

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
    """Any sentiment and complaint models (test doubles included), each called on the batch."""

    def __init__(self, sentiment: SentimentModel, complaint: ComplaintScorer) -> None:
        self.sentiment = sentiment
        self.complaint = complaint
        self.sentiment_name = sentiment.name
        self.complaint_name = complaint.name

    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]:
        """Scores for each text, in input order."""
        if not texts:
            return []
        probs = self.sentiment.predict(texts)
        complaints = self.complaint.predict(texts)
        return [PostScores(s, c) for s, c in zip(probs, complaints, strict=True)]


@dataclass(frozen=True)
class _Reads:
    """What one head takes from the trunk: these layers of this branch, side by side."""

    branch: str
    layers: tuple[int, ...]
    normalised: bool

    def take(self, pools: dict[tuple[str, int], torch.Tensor]) -> torch.Tensor:
        parts = [pools[self.branch, k] for k in self.layers]
        if self.normalised:
            parts = [nn.functional.normalize(p, p=2, dim=1) for p in parts]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class OnePassScorer:
    """The built-in heads on one pass of the shared encoder per batch.

    Per batch of SCORE_BATCH_SIZE texts (longest together): one tokenization; the embeddings and
    the layers below the fine-tuned ones once; then the encoder's own top layers if a head (or
    embeddings=True) reads them, and the fine-tuned copies if a head reads those; each head on
    its pooled layers. A sentiment model that is not the built-in one (an HF classifier) runs on
    its own beside the pass. Same numbers as the models called one by one.
    """

    def __init__(self, sentiment: SentimentModel, complaint: ComplaintModel) -> None:
        self.sentiment = sentiment
        self.complaint = complaint
        self.sentiment_name = sentiment.name
        self.complaint_name = complaint.name
        self.encoder = complaint.encoder
        self.batch_size = complaint.batch_size
        top = self.encoder.n_layers
        builtin = sentiment if isinstance(sentiment, EncoderHeadSentiment) else None
        trunk = builtin or complaint.finetuned
        if complaint.finetuned is not None and complaint.finetuned is not trunk:
            raise ModelError(f"{complaint.name}: reads another fine-tuned trunk than sentiment's")
        if trunk is not None and trunk.encoder is not self.encoder:
            raise ModelError(f"{sentiment.name}: not on the complaint model's encoder")
        self.trunk = trunk.trunk if trunk is not None else Trunk(self.encoder)
        # The built-in sentiment head reads the pass; another sentiment model runs on its own.
        self.sentiment_head = builtin.head if builtin is not None else None
        self.sentiment_reads = (
            _Reads(builtin.reads, (top,), builtin.normalised) if builtin is not None else None
        )
        self.complaint_reads = _Reads(complaint.trunk, complaint.read_layers, True)
        self.embedding_reads = _Reads(BASE, (top,), True)

    def _wanted(self, embeddings: bool) -> dict[str, set[int]]:
        wanted: dict[str, set[int]] = {BASE: set(), FINETUNED: set()}
        reads = [self.complaint_reads, self.sentiment_reads]
        for r in [*reads, self.embedding_reads if embeddings else None]:
            if r is not None:
                wanted[r.branch].update(r.layers)
        return wanted

    @torch.inference_mode()
    def score(self, texts: Sequence[str], *, embeddings: bool = False) -> list[PostScores]:
        """Scores for each text, in input order."""
        if not texts:
            return []
        n, wanted = len(texts), self._wanted(embeddings)
        probs = torch.zeros((n, len(LABELS)))
        complaints = torch.zeros(n)
        vectors = torch.zeros((n, self.encoder.dim)) if embeddings else None
        clean = [preprocess(t) for t in texts]
        for idx, batch in batches(clean, self.batch_size):
            pools = self.trunk.pooled(self.encoder.tokenize(batch), wanted)
            x = self.complaint_reads.take(pools)
            x = features(x, [texts[i] for i in idx], self.complaint.lexical)
            complaints[idx] = torch.sigmoid(self.complaint.head(x)[:, 0])
            if self.sentiment_head is not None and self.sentiment_reads is not None:
                logits = self.sentiment_head(self.sentiment_reads.take(pools))
                probs[idx] = torch.softmax(logits, dim=-1)
            if vectors is not None:
                vectors[idx] = self.embedding_reads.take(pools)
        if self.sentiment_head is None:
            sentiment = self.sentiment.predict(texts)
        else:
            sentiment = [dict(zip(LABELS, row, strict=True)) for row in probs.tolist()]
        pooled = [tuple(v) for v in vectors.tolist()] if vectors is not None else [None] * n
        return [
            PostScores(s, c, e)
            for s, c, e in zip(sentiment, complaints.tolist(), pooled, strict=True)
        ]


_SCORERS: dict[tuple[int, int], tuple[object, object, Scorer]] = {}


def get_scorer(settings: Settings | None = None) -> Scorer:
    """The process's scorer for these settings (SENTIMENT_MODEL, ENCODER_MODEL,
    SCORING_QUANTIZE, SCORE_BATCH_SIZE): one per pair of loaded models, and the models are
    loaded once per process per settings. The built-in complaint model gives the one-pass
    scorer; any other pair (test doubles) is called model by model."""
    if settings is None:
        from socialcare.config import get_settings

        settings = get_settings()
    # Looked up on the modules at call time, so a test's stand-in models are used.
    sentiment_model = sentiment_models.get_sentiment_model(settings)
    complaint_model = complaint_models.get_complaint_model(settings)
    key = (id(sentiment_model), id(complaint_model))
    if key not in _SCORERS:
        made: Scorer
        if isinstance(complaint_model, ComplaintModel):
            made = OnePassScorer(sentiment_model, complaint_model)
        else:
            made = SeparateScorer(sentiment_model, complaint_model)
        # The models are kept with their scorer, so their ids stay theirs.
        _SCORERS[key] = (sentiment_model, complaint_model, made)
    return _SCORERS[key][2]
