"""Pipeline tests run the real flows in-process with a cue-word sentiment model."""

from __future__ import annotations

import pytest

from socialcare.scoring import sentiment
from tests.fakes import CueWordSentiment


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> CueWordSentiment:
    fake = CueWordSentiment()
    monkeypatch.setattr(sentiment, "get_sentiment_model", lambda settings: fake)
    return fake
