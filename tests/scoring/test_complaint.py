"""The complaint model: the shipped head on the real encoder, CV folds, metrics, fitting."""

from __future__ import annotations

import pytest
import torch

from socialcare.config import load_settings
from socialcare.scoring.complaint import ComplaintModel, get_complaint_model, lexical_features
from socialcare.scoring.sentiment import EncoderHeadSentiment, get_sentiment_model
from socialcare.training.complaint import ComplaintParams, cross_validate
from socialcare.training.metrics import binary_metrics
from socialcare.training.selection import stratified_folds

COMPLAINT = "@acme third time my order is late and still no refund. worst service ever, fix this!"
NOT_COMPLAINT = "@acme happy friday everyone, enjoying the new album on the train this morning"
TEXTS = [COMPLAINT, NOT_COMPLAINT, "", "ok", "@acme is the store open on sunday? " * 12]


@pytest.fixture(scope="module")
def model() -> ComplaintModel:
    return get_complaint_model(load_settings(ENCODER_MODEL="", SCORE_BATCH_SIZE=4))


def test_complaint_scores_above_a_non_complaint(model: ComplaintModel) -> None:
    high, low = model.predict([COMPLAINT, NOT_COMPLAINT])
    assert high > 0.5 > low
    assert model.name.startswith("builtin:complaint@")
    assert model.predict([]) == []


def test_batch_equals_one_by_one(model: ComplaintModel) -> None:
    batched = model.predict(TEXTS)
    assert all(0.0 <= p <= 1.0 for p in batched)
    single = [model.predict([t])[0] for t in TEXTS]
    assert batched == pytest.approx(single, abs=1e-5)


def test_one_encoder_per_process(model: ComplaintModel) -> None:
    settings = load_settings(SENTIMENT_MODEL="builtin", ENCODER_MODEL="", SCORE_BATCH_SIZE=4)
    sentiment = get_sentiment_model(settings)
    assert isinstance(sentiment, EncoderHeadSentiment)
    assert sentiment.encoder is model.encoder
    assert get_complaint_model(settings) is model


def test_lexical_features() -> None:
    x = lexical_features(["worst. again!! why?", "fine"])
    assert x.shape == (2, 3)
    assert x[1].tolist() == [0.0, 0.0, 0.0]
    assert x[0, 1:].tolist() == [1.0, 1.0]
    assert 0.0 < x[0, 0] <= 1.0


def test_folds_are_stratified_and_deterministic() -> None:
    labels = [1 if i % 4 == 0 else 0 for i in range(30)]  # 8 positives, 22 negatives
    folds = stratified_folds(labels, 5, seed=7)
    assert sorted(i for fold in folds for i in fold) == list(range(30))
    assert {len(f) for f in folds} == {6}
    assert all(sum(labels[i] for i in f) in (1, 2) for f in folds)
    assert sum(sum(labels[i] for i in f) == 2 for f in folds) == 3
    assert stratified_folds(labels, 5, seed=7) == folds
    assert stratified_folds(labels, 5, seed=8) != folds


def test_binary_metrics_by_hand() -> None:
    # tp=2, fp=1, fn=1, tn=2
    result = binary_metrics([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0])
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["macro_f1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("hidden", [0, 8])
def test_cross_validation_on_separable_data(hidden: int) -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([1] * 12 + [0] * 28)
    x = torch.randn(40, 4, generator=gen) * 0.3
    x[:, 0] += torch.where(y == 1, 2.0, -2.0)
    params = ComplaintParams(hidden=hidden, epochs=15, batch_size=10, lr=3e-2)
    first = cross_validate(x, y, params, k=4, seed=3)
    assert first["f1"] == 1.0 and first["accuracy"] == 1.0
    assert cross_validate(x, y, params, k=4, seed=3) == first
