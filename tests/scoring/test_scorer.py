"""The one-pass scorer: the same numbers as the sentiment and complaint models called one by one,
on real posts, with the trunk's layers each run once per batch."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from socialcare.config import Settings, load_settings
from socialcare.errors import ModelError
from socialcare.scoring import complaint as complaint_models
from socialcare.scoring import sentiment as sentiment_models
from socialcare.scoring.base import LABELS
from socialcare.scoring.complaint import ComplaintModel, get_complaint_model
from socialcare.scoring.encoder import get_encoder, preprocess, run_layers
from socialcare.scoring.scorer import OnePassScorer, PostScores, SeparateScorer, get_scorer
from socialcare.scoring.sentiment import (
    EncoderHeadSentiment,
    HFSequenceSentiment,
    get_sentiment_model,
)
from tests.conftest import SHARED_DATA
from tests.fakes import CueWordComplaints, CueWordSentiment
from tests.scoring.test_sentiment import _save_tiny_bert

BATCH = 8


def _real_texts() -> list[str]:
    """Customer posts and labelled complaints from the shared data, with awkward extremes."""
    with (SHARED_DATA / "twcs" / "twcs_random_5000.csv").open(newline="", encoding="utf-8") as f:
        posts = [r["text"] for r in csv.DictReader(f) if r["inbound"] == "True"][:18]
    with (SHARED_DATA / "complaints" / "complaints_train.csv").open(newline="") as f:
        complaints = [r["text"] for r in csv.DictReader(f)][:6]
    return [*posts, *complaints, "", "ok", "why?? " * 40]


TEXTS = _real_texts()


def _settings(quantize: str) -> Settings:
    return load_settings(
        SENTIMENT_MODEL="builtin",
        ENCODER_MODEL="",
        SCORE_BATCH_SIZE=BATCH,
        SCORING_QUANTIZE=quantize,
    )


def _max_diff(scores: list[PostScores], probs: list[dict[str, float]], p: list[float]) -> float:
    pairs = zip(scores, probs, strict=True)
    sentiment = max(abs(s.sentiment[k] - q[k]) for s, q in pairs for k in q)
    complaint = max(abs(s.complaint - c) for s, c in zip(scores, p, strict=True))
    return max(sentiment, complaint)


class LayerCalls:
    """Counts forward calls of the encoder's own layers and of fine-tuned copies."""

    def __init__(self, base: nn.ModuleList, top: nn.ModuleList) -> None:
        self.base = self.top = 0
        self.handles = [layer.register_forward_hook(self._base) for layer in base]
        self.handles += [layer.register_forward_hook(self._top) for layer in top]

    def _base(self, *_: object) -> None:
        self.base += 1

    def _top(self, *_: object) -> None:
        self.top += 1

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_one_pass_equals_the_separate_models(quantize: str) -> None:
    settings = _settings(quantize)
    scorer = get_scorer(settings)
    assert isinstance(scorer, OnePassScorer)
    sentiment = get_sentiment_model(settings)
    complaint = get_complaint_model(settings)
    assert isinstance(sentiment, EncoderHeadSentiment) and sentiment.n_top == 2
    assert scorer.sentiment_name == sentiment.name and scorer.complaint_name == complaint.name
    assert sentiment.encoder.quantize == quantize
    calls = LayerCalls(sentiment.encoder.layers, sentiment.top)
    try:
        scores = scorer.score(TEXTS)
    finally:
        calls.close()
    batches = -(-len(TEXTS) // BATCH)
    # Embeddings and base layers 1-4 once, base 5-6 for the complaint head, the fine-tuned 5-6
    # for sentiment: 8 layer passes a batch where the two models ran 12.
    assert (calls.base, calls.top) == (6 * batches, 2 * batches)
    assert _max_diff(scores, sentiment.predict(TEXTS), complaint.predict(TEXTS)) < 1e-5
    for s in scores:
        assert tuple(s.sentiment) == LABELS and s.embedding is None
        assert abs(sum(s.sentiment.values()) - 1) < 1e-5 and 0 <= s.complaint <= 1


def test_embeddings_are_the_encoders_last_layer() -> None:
    settings = _settings("none")
    scorer = get_scorer(settings)
    encoder = get_encoder("", "none")
    with_vectors = scorer.score(TEXTS[:12], embeddings=True)
    expected = encoder.encode(TEXTS[:12], BATCH)
    got = torch.tensor([s.embedding for s in with_vectors])
    assert got.shape == (12, encoder.dim)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.norm(dim=1), torch.ones(12), atol=1e-5)
    assert [s.sentiment for s in with_vectors] == [s.sentiment for s in scorer.score(TEXTS[:12])]


def test_empty_input_gives_nothing() -> None:
    assert get_scorer(_settings("none")).score([]) == []
    assert get_scorer(_settings("none")).score([], embeddings=True) == []


def test_one_scorer_per_process_per_settings() -> None:
    first = get_scorer(_settings("none"))
    assert get_scorer(_settings("none")) is first
    assert get_scorer(_settings("int8")) is not first


def test_stand_in_models_are_called_model_by_model(monkeypatch: pytest.MonkeyPatch) -> None:
    fake, cues = CueWordSentiment(), CueWordComplaints()
    monkeypatch.setattr(sentiment_models, "get_sentiment_model", lambda settings: fake)
    monkeypatch.setattr(complaint_models, "get_complaint_model", lambda settings: cues)
    scorer = get_scorer(_settings("none"))
    assert isinstance(scorer, SeparateScorer) and scorer.sentiment_name == fake.name
    out = scorer.score(["worst service, refund now", "thanks"], embeddings=True)
    assert [s.sentiment for s in out] == fake.predict(["worst service, refund now", "thanks"])
    assert [s.complaint for s in out] == cues.predict(["worst service, refund now", "thanks"])
    assert out[0].embedding is None and fake.batches[0] == 2


def test_hf_sentiment_model_runs_beside_the_pass(tmp_path: Path) -> None:
    folder = _save_tiny_bert(tmp_path / "hf", None)
    settings = load_settings(SENTIMENT_MODEL=str(folder), ENCODER_MODEL="", SCORE_BATCH_SIZE=BATCH)
    scorer = get_scorer(settings)
    assert isinstance(scorer, OnePassScorer) and scorer.sentiment_name.startswith("hf:")
    hf, complaint = get_sentiment_model(settings), get_complaint_model(settings)
    assert isinstance(hf, HFSequenceSentiment)
    calls = LayerCalls(complaint.encoder.layers, nn.ModuleList())
    try:
        scores = scorer.score(TEXTS[:16])
    finally:
        calls.close()
    assert calls.base == 6 * 2  # the complaint head's pass alone
    assert _max_diff(scores, hf.predict(TEXTS[:16]), complaint.predict(TEXTS[:16])) < 1e-5


def _write_finetuned_trunk(folder: Path, n_top: int) -> Path:
    """A sentiment model whose top n_top layers are perturbed copies of the encoder's, and a
    random linear head; what the fine-tuning would write."""
    encoder = get_encoder("", "none")
    gen = torch.Generator().manual_seed(n_top)
    layers = encoder.layers[-n_top:].state_dict() if n_top else {}
    state = {
        f"layers.{k}": v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in layers.items()
    }
    state["head.out.weight"] = torch.randn((3, encoder.dim), generator=gen)
    state["head.out.bias"] = torch.zeros(3)
    path = folder / "sentiment_finetuned.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    meta = {"labels": list(LABELS), "finetuned_layers": n_top}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def _write_complaint_head(folder: Path, layers: list[int], trunk: str | None) -> Path:
    """A random logistic complaint head with word cues over these layers of a branch."""
    dim = get_encoder("", "none").dim * max(1, len(layers)) + 3
    gen = torch.Generator().manual_seed(len(layers))
    state = {"out.weight": torch.randn((1, dim), generator=gen), "out.bias": torch.zeros(1)}
    path = folder / "complaint_head.safetensors"
    save_file(state, str(path))
    head: dict[str, object] = {"layers": layers, "lexical": True}
    if trunk is not None:
        head["trunk"] = trunk
    path.with_suffix(".json").write_text(json.dumps({"head": head}))
    return path


@pytest.fixture(scope="module")
def six_layer_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("trunk")
    sentiment_file = _write_finetuned_trunk(folder, 6)
    yield sentiment_file, _write_complaint_head(folder, [0, 3, 5, 6], "finetuned")


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_both_heads_on_a_fully_fine_tuned_trunk_take_six_layers(
    quantize: str, six_layer_models: tuple[Path, Path]
) -> None:
    sentiment_file, complaint_file = six_layer_models
    sentiment = EncoderHeadSentiment(head_file=sentiment_file, batch_size=BATCH, quantize=quantize)
    complaint = ComplaintModel(
        head_file=complaint_file, batch_size=BATCH, quantize=quantize, finetuned=sentiment
    )
    assert "+trunk@" in complaint.name
    assert complaint.name.endswith("+int8") == (quantize == "int8")
    scorer = OnePassScorer(sentiment, complaint)
    texts = TEXTS[:16]
    calls = LayerCalls(sentiment.encoder.layers, sentiment.top)
    try:
        scores = scorer.score(texts)
        assert (calls.base, calls.top) == (0, 6 * 2)
        vectors = scorer.score(texts, embeddings=True)  # the base layers run only for these
        assert (calls.base, calls.top) == (6 * 2, 12 * 2)
    finally:
        calls.close()
    assert _max_diff(scores, sentiment.predict(texts), complaint.predict(texts)) < 1e-5
    assert [v.complaint for v in vectors] == [s.complaint for s in scores]
    if quantize == "none":  # the fine-tuned branch, by hand, from the layers' own outputs
        assert abs(scores[0].complaint - _by_hand(sentiment, complaint, texts[0])) < 1e-5


def _by_hand(sentiment: EncoderHeadSentiment, complaint: ComplaintModel, text: str) -> float:
    """p(complaint) of one text over the fine-tuned trunk, layer by layer."""
    enc = sentiment.encoder.tokenize([preprocess(text)])
    mask = enc["attention_mask"]
    with torch.inference_mode():
        states = [sentiment.encoder.lower(enc, 0)]
        for layer in sentiment.top:
            states.append(run_layers([layer], states[-1], mask))
        pooled = [(h * mask[..., None]).sum(1) / mask.sum() for h in states]
        x = torch.cat([nn.functional.normalize(pooled[k], dim=1) for k in (0, 3, 5, 6)], dim=1)
        x = complaint_models.features(x, [text], True)
        return float(torch.sigmoid(complaint.head(x))[0, 0])


def test_layers_that_do_not_fit_name_the_setting(tmp_path: Path) -> None:
    sentiment_file = _write_finetuned_trunk(tmp_path, 2)
    meta = json.loads(sentiment_file.with_suffix(".json").read_text())
    sentiment_file.with_suffix(".json").write_text(json.dumps(meta | {"finetuned_layers": 7}))
    with pytest.raises(ModelError, match=r"SENTIMENT_MODEL=builtin.*=7 does not.*ENCODER_MODEL"):
        EncoderHeadSentiment(head_file=sentiment_file)
    sentiment_file.with_suffix(".json").write_text(json.dumps(meta | {"finetuned_layers": 3}))
    with pytest.raises(ModelError, match="SENTIMENT_MODEL=builtin: the fine-tuned layers do not"):
        EncoderHeadSentiment(head_file=sentiment_file)
    with pytest.raises(ModelError, match=r"layers \[0, 9\] do not fit.*ENCODER_MODEL"):
        ComplaintModel(head_file=_write_complaint_head(tmp_path, [0, 9], None))
    with pytest.raises(ModelError, match="trunk 'sideways' is not one of base, finetuned"):
        ComplaintModel(head_file=_write_complaint_head(tmp_path, [6], "sideways"))


def test_a_complaint_head_over_another_sentiment_model_is_refused(
    six_layer_models: tuple[Path, Path], tmp_path: Path
) -> None:
    sentiment_file, complaint_file = six_layer_models
    meta = json.loads(complaint_file.with_suffix(".json").read_text())
    meta["provenance"] = {"trunk_model": {"sentiment_finetuned.safetensors": "0" * 64}}
    stale = tmp_path / "complaint_head.safetensors"
    stale.write_bytes(complaint_file.read_bytes())
    stale.with_suffix(".json").write_text(json.dumps(meta))
    sentiment = EncoderHeadSentiment(head_file=sentiment_file)
    with pytest.raises(ModelError, match="retrain the complaint head"):
        ComplaintModel(head_file=stale, finetuned=sentiment)
