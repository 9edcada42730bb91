"""Pipeline tests run the real flows in-process with cue-word sentiment and complaint models."""

from __future__ import annotations

import pytest

from socialcare.scoring import complaint, sentiment
from tests.fakes import CueWordComplaints, CueWordSentiment


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> CueWordSentiment:
    fake = CueWordSentiment()
    monkeypatch.setattr(sentiment, "get_sentiment_model", lambda settings: fake)
    monkeypatch.setattr(complaint, "get_complaint_model", lambda settings: CueWordComplaints())
    return fake
