"""Surge test helpers: real embeddings from the shared encoder, posts on a test account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from socialcare.posts.models import Account
from socialcare.scoring.topics import topic_of
from socialcare.surge.service import ObservedPost
from tests.factories import make_post
from tests.metrics.conftest import smtp_server, webhook  # noqa: F401  (fixtures)

_VECTORS: dict[str, np.ndarray] = {}


def embed(texts: Sequence[str]) -> np.ndarray:
    """The shared encoder's unit embeddings (each text encoded once per test run)."""
    missing = sorted({t for t in texts if t not in _VECTORS})
    if missing:
        from socialcare.scoring.encoder import get_encoder

        _VECTORS.update(zip(missing, get_encoder().encode(missing).numpy(), strict=True))
    return np.stack([_VECTORS[t] for t in texts])


def observed(
    session: Session,
    account: Account,
    texts: Sequence[str],
    times: Sequence[datetime],
    *,
    authors: Sequence[str] | None = None,
    vectors: np.ndarray | None = None,
) -> list[ObservedPost]:
    """Store the posts and return them as the pipeline hands them to surge observe."""
    vectors = embed(texts) if vectors is None else vectors
    out = []
    for i, (text, at) in enumerate(zip(texts, times, strict=True)):
        author = authors[i] if authors is not None else None
        post = make_post(session, account, text, created_at=at, author_handle=author)
        out.append(ObservedPost(post.id, account.id, at, vectors[i], topic_of(text)))
    return out
