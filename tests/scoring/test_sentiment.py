"""Sentiment scoring: the shipped head on the real encoder, HF classifiers, readers, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from socialcare.config import load_settings
from socialcare.errors import ModelError
from socialcare.scoring.base import LABELS
from socialcare.scoring.sentiment import (
    EncoderHeadSentiment,
    HFSequenceSentiment,
    default_encoder_dir,
    get_sentiment_model,
    label_indices,
    preprocess,
)
from socialcare.training.data import parse_semeval, read_semeval, read_tweeteval
from socialcare.training.metrics import sentiment_metrics as evaluate

NEGATIVE = "this is the worst service ever, I hate you"
POSITIVE = "thank you so much, the support team was amazing and fixed it in minutes!"
TEXTS = [
    NEGATIVE,
    POSITIVE,
    "@acme my order #123 arrives on Tuesday https://t.co/abc",
    "",
    "ok",
    "Why has my parcel not arrived yet?? Third time asking. " * 10,
]


@pytest.fixture(scope="module")
def builtin() -> EncoderHeadSentiment:
    """The shipped head on the real encoder, loaded once for this module."""
    settings = load_settings(SENTIMENT_MODEL="builtin", ENCODER_MODEL="", SCORE_BATCH_SIZE=4)
    model = get_sentiment_model(settings)
    assert isinstance(model, EncoderHeadSentiment)
    return model


def _save_tiny_bert(folder: Path, id2label: dict[int, str] | None) -> Path:
    """A randomly initialised 1-layer BERT classifier with the MiniLM tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(str(default_encoder_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    config.id2label = id2label or {i: f"LABEL_{i}" for i in range(3)}
    config.label2id = {name: i for i, name in config.id2label.items()}
    assert config.num_labels == 3
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _close(a: list[dict[str, float]], b: list[dict[str, float]], tol: float = 1e-5) -> bool:
    return all(abs(x[k] - y[k]) <= tol for x, y in zip(a, b, strict=True) for k in LABELS)


def test_builtin_probabilities(builtin: EncoderHeadSentiment) -> None:
    out = builtin.predict(TEXTS)
    assert len(out) == len(TEXTS)
    for probs in out:
        assert tuple(probs) == LABELS
        assert abs(sum(probs.values()) - 1.0) < 1e-5
        assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert builtin.name.startswith("builtin:minilm-l6-head@")
    assert builtin.predict([]) == []


def test_builtin_polarity(builtin: EncoderHeadSentiment) -> None:
    neg, pos = builtin.predict([NEGATIVE, POSITIVE])
    assert neg["negative"] > neg["positive"]
    assert pos["positive"] > pos["negative"]
    assert max(neg, key=neg.__getitem__) == "negative"
    assert max(pos, key=pos.__getitem__) == "positive"


def test_builtin_batch_equals_single(builtin: EncoderHeadSentiment) -> None:
    batched = builtin.predict(TEXTS)
    single = [builtin.predict([t])[0] for t in TEXTS]
    assert _close(batched, single)


def test_model_is_cached_per_settings(builtin: EncoderHeadSentiment) -> None:
    settings = load_settings(SENTIMENT_MODEL="builtin", ENCODER_MODEL="", SCORE_BATCH_SIZE=4)
    assert get_sentiment_model(settings) is builtin


def test_int8_quantization_keeps_the_labels_of_the_full_precision_model(
    builtin: EncoderHeadSentiment,
) -> None:
    from socialcare.scoring.complaint import get_complaint_model

    settings = load_settings(
        SENTIMENT_MODEL="builtin", ENCODER_MODEL="", SCORE_BATCH_SIZE=4, SCORING_QUANTIZE="int8"
    )
    int8 = get_sentiment_model(settings)
    assert int8 is not builtin and int8.name == builtin.name + "+int8"
    assert isinstance(int8, EncoderHeadSentiment)
    assert int8.encoder is not builtin.encoder  # the full-precision encoder is left as it was
    linear = [m for m in int8.encoder.model.modules() if type(m).__name__ == "Linear"]
    assert not any(type(m) is torch.nn.Linear for m in linear)
    texts = [t for t in TEXTS if t] + [
        "my bill doubled and nobody answers the phone",
        "love the new app update, so smooth",
        "is the store open on sundays?",
    ]

    def label(p: dict[str, float]) -> str:
        return max(p, key=lambda k: p[k])

    full, small = builtin.predict(texts), int8.predict(texts)
    # Where the full model is sure, int8 agrees; a two-letter "ok" may tip between classes.
    sure = [i for i, p in enumerate(full) if max(p.values()) >= 0.6]
    assert len(sure) >= len(texts) - 1
    assert [label(small[i]) for i in sure] == [label(full[i]) for i in sure]
    shifts = [abs(a[k] - b[k]) for i in sure for a, b in [(full[i], small[i])] for k in a]
    assert max(shifts) < 0.15
    complaint = get_complaint_model(settings)
    assert complaint.encoder is int8.encoder and complaint.name.endswith("+int8")


def test_missing_hf_model_names_the_setting() -> None:
    with pytest.raises(ModelError, match="SENTIMENT_MODEL") as info:
        HFSequenceSentiment("no-such-org/no-such-sentiment-model")
    assert "no-such-org/no-such-sentiment-model" in str(info.value)
    settings = load_settings(SENTIMENT_MODEL="/nonexistent/sentiment-model")
    with pytest.raises(ModelError, match="SENTIMENT_MODEL"):
        get_sentiment_model(settings)


def test_missing_encoder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="ENCODER_MODEL"):
        EncoderHeadSentiment(str(tmp_path / "nothing-here"))


def test_missing_head_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="SENTIMENT_MODEL=builtin"):
        EncoderHeadSentiment(head_file=tmp_path / "absent.safetensors")


def test_hf_sequence_named_labels(tmp_path: Path) -> None:
    folder = _save_tiny_bert(tmp_path / "m", {0: "Positive", 1: "NEG", 2: "neutral"})
    model = HFSequenceSentiment(str(folder), batch_size=2)
    assert model.index == [2, 0, 1]
    assert model.name.startswith(f"hf:{folder}@")
    out = model.predict(TEXTS)
    for probs in out:
        assert tuple(probs) == LABELS
        assert abs(sum(probs.values()) - 1.0) < 1e-5
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    raw = BertForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        enc = tokenizer([preprocess(TEXTS[0])], return_tensors="pt")
        expected = torch.softmax(raw(**enc).logits, dim=-1)[0].tolist()
    assert out[0]["positive"] == pytest.approx(expected[0], abs=1e-5)
    assert out[0]["negative"] == pytest.approx(expected[1], abs=1e-5)
    assert out[0]["neutral"] == pytest.approx(expected[2], abs=1e-5)
    assert _close(out, [model.predict([t])[0] for t in TEXTS])


def test_hf_sequence_label_n_style(tmp_path: Path) -> None:
    folder = _save_tiny_bert(tmp_path / "cardiff-like", None)
    model = HFSequenceSentiment(str(folder))
    assert model.index == [0, 1, 2]
    assert abs(sum(model.predict(["great"])[0].values()) - 1.0) < 1e-5


def test_label_mapping_rules() -> None:
    assert label_indices({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}) == [0, 1, 2]
    assert label_indices({0: "negative", 1: "positive"}) == [0, 2]
    assert label_indices({0: "Pos", 1: "Neu", 2: "Neg"}) == [2, 1, 0]
    for bad in (
        {0: "LABEL_0", 1: "LABEL_1"},
        {0: "anger", 1: "joy", 2: "neutral"},
        {0: "negative", 1: "negative", 2: "positive"},
    ):
        with pytest.raises(ModelError):
            label_indices(bad)


def test_unmappable_hf_model(tmp_path: Path) -> None:
    folder = _save_tiny_bert(tmp_path / "emo", {0: "anger", 1: "joy", 2: "sadness"})
    with pytest.raises(ModelError, match="SENTIMENT_MODEL"):
        HFSequenceSentiment(str(folder))


def test_preprocess_like_tweeteval() -> None:
    text = "@Acme_Help thanks &amp; see https://t.co/x1 or www.acme.com \\u2019ok\\u2019 a@b.com"
    assert preprocess(text) == "@user thanks & see http or http \u2019ok\u2019 a@b.com"


def test_evaluate_by_hand() -> None:
    y_true = ["negative", "negative", "neutral", "neutral", "neutral", "positive"]
    y_pred = ["negative", "positive", "neutral", "negative", "neutral", "positive"]
    result = evaluate(y_true, y_pred)
    # recalls: negative 1/2, neutral 2/3, positive 1/1
    assert result["macro_recall"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["recall"] == pytest.approx({"negative": 0.5, "neutral": 2 / 3, "positive": 1.0})
    assert result["confusion"] == [[1, 0, 1], [1, 2, 0], [0, 0, 1]]
    with pytest.raises(ValueError):
        evaluate(["negative"], [])


def test_read_semeval_with_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "twitter-test-A.txt"
    path.write_text(
        "1\tpositive\tGreat day :)\n"
        "2\tnegative\tSo sad\t\n"
        "this line is garbage\n"
        '3\tneutral\t"A quoted text that\n'
        'goes on"\t\n'
        "4\tconfused\tunknown label\n"
        "\n"
        "5\tNEUTRAL\tLast\twith a tab\n",
        encoding="utf-8",
    )
    rows = read_semeval(path)
    assert [(r.text, r.label) for r in rows] == [
        ("Great day :)", "positive"),
        ("So sad", "negative"),
        ('"A quoted text that goes on"', "neutral"),
        ("Last\twith a tab", "neutral"),
    ]
    _, skipped = parse_semeval(path.read_text().splitlines())
    assert skipped == 2


def test_read_tweeteval(tmp_path: Path) -> None:
    (tmp_path / "val_text.txt").write_text("bad day \nfine\n@user great! \n", encoding="utf-8")
    (tmp_path / "val_labels.txt").write_text("0\n1\n2\n", encoding="utf-8")
    rows = read_tweeteval(tmp_path)
    assert [(r.text, r.label) for r in rows] == [
        ("bad day", "negative"),
        ("fine", "neutral"),
        ("@user great!", "positive"),
    ]
    (tmp_path / "val_labels.txt").write_text("0\n1\n", encoding="utf-8")
    with pytest.raises(ValueError):
        read_tweeteval(tmp_path)
