"""Evaluate a sentiment model (or the VADER baseline) on any labelled file; format the figures."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from socialcare.scoring.base import LABELS, SentimentModel
from socialcare.scoring.encoder import preprocess
from socialcare.scoring.sentiment import EncoderHeadSentiment
from socialcare.training.data import Example, read_semeval, read_tweeteval
from socialcare.training.metrics import sentiment_metrics

TEXT_SUFFIX = "_text.txt"
VADER_THRESHOLD = 0.05  # the standard compound cut-offs: >= 0.05 positive, <= -0.05 negative


def read_labelled(path: Path) -> list[Example]:
    """Labelled examples from a TweetEval folder (val_text.txt + val_labels.txt, or the one
    `*_text.txt` in it), a TweetEval `*_text.txt` file (its `*_labels.txt` beside it) or a
    SemEval `id<TAB>label<TAB>text` file. ValueError when there is nothing to read."""
    if path.is_dir():
        texts = sorted(path.glob(f"*{TEXT_SUFFIX}"))
        if (path / f"val{TEXT_SUFFIX}").is_file():
            return read_tweeteval(path, "val")
        if len(texts) != 1:
            found = ", ".join(p.name for p in texts) or "none"
            raise ValueError(f"{path}: expected val{TEXT_SUFFIX} or one *{TEXT_SUFFIX} ({found})")
        path = texts[0]
    if path.name.endswith(TEXT_SUFFIX):
        return read_tweeteval(path.parent, path.name[: -len(TEXT_SUFFIX)])
    examples = read_semeval(path)
    if not examples:
        raise ValueError(f"{path}: no `id<TAB>label<TAB>text` lines (labels {list(LABELS)})")
    return examples


def vader_label(compound: float) -> str:
    """VADER's usual reading of its compound score."""
    if compound >= VADER_THRESHOLD:
        return "positive"
    if compound <= -VADER_THRESHOLD:
        return "negative"
    return "neutral"


def vader_predict(texts: Sequence[str]) -> list[str]:
    """VADER labels (compound score, thresholds +-0.05) for raw texts."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return [vader_label(analyzer.polarity_scores(preprocess(t))["compound"]) for t in texts]


def model_predict(model: SentimentModel, texts: Sequence[str], batch: int = 256) -> list[str]:
    """The model's most probable label for each text."""
    out: list[str] = []
    for start in range(0, len(texts), batch):
        for probs in model.predict(texts[start : start + batch]):
            out.append(max(probs, key=lambda k: probs[k]))
    return out


def evaluate_examples(examples: Sequence[Example], model: SentimentModel | None) -> dict[str, Any]:
    """sentiment_metrics figures of the model (None: VADER) on the examples."""
    texts = [e.text for e in examples]
    predicted = vader_predict(texts) if model is None else model_predict(model, texts)
    return sentiment_metrics([e.label for e in examples], predicted)


def figures_by_precision(
    head_file: Path, sets: Mapping[str, Sequence[Example]], encoder: str | None = None
) -> dict[str, dict[str, Any]]:
    """evaluate_examples figures of a written built-in model on each named set, loaded in
    fp32 and in dynamic int8 (as SCORING_QUANTIZE loads it), with the seconds each took."""
    out: dict[str, dict[str, Any]] = {name: {} for name in sets}
    for quantize, label in (("none", "fp32"), ("int8", "int8")):
        model = EncoderHeadSentiment(encoder, head_file=head_file, batch_size=64, quantize=quantize)
        for name, examples in sets.items():
            started = time.monotonic()
            figures = evaluate_examples(examples, model)
            out[name][label] = figures | {"seconds": round(time.monotonic() - started, 1)}
    return out


def format_report(result: dict[str, Any], name: str, source: str) -> str:
    """Macro recall, accuracy, per-class recall and the confusion matrix as text."""
    width = max(len(label) for label in LABELS) + 2
    lines = [
        f"data: {source} ({result['n']} examples)",
        f"model: {name}",
        f"macro recall: {result['macro_recall']:.4f}",
        f"accuracy: {result['accuracy']:.4f}",
        "recall: " + "  ".join(f"{lb} {result['recall'][lb]:.4f}" for lb in LABELS),
        "confusion (rows true, columns predicted):",
        " " * width + "".join(f"{lb:>{width}}" for lb in LABELS),
    ]
    for label, row in zip(LABELS, result["confusion"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{n:>{width}}" for n in row))
    return "\n".join(lines)
