"""Faster sentiment inference that keeps the quality bar: PyTorch fp32 against int8 and ONNX.

One run, the same texts (TweetEval validation), the same batches, so the ratios hold on a noisy
machine. Variants:

  torch-fp32    the shipped model as socialcare runs it (the baseline)
  torch-int8    the same with dynamic int8 quantization of every Linear layer (SCORING_QUANTIZE)
  onnx-fp32     the same network exported to ONNX, run by ONNX Runtime   (needs onnxruntime,
  onnx-int8     ONNX Runtime's dynamic int8 quantization of that export   onnx and onnxscript)

For each: macro recall and accuracy on the labelled file, posts/s, and posts/s over the
baseline's. Then the complaint model in fp32 and int8 on the complaints data (F1, precision,
recall: the shipped head as shipped, and k-fold held out), and both heads through the one-pass
scorer, fp32 against int8, on the same texts.

    .venv/bin/python -m bench.quantization [--data ../shared/data/sentiment/tweeteval-val]
        [--complaints ../shared/data/complaints/complaints_train.csv] [--no-onnx] [--out F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment" / "tweeteval-val"
DEFAULT_COMPLAINTS = REPO.parent / "shared" / "data" / "complaints" / "complaints_train.csv"


def _evaluate(
    name: str, predict: Callable[[Sequence[str]], list[dict[str, float]]], examples: list[Any]
) -> dict[str, Any]:
    from socialcare.training.evaluate import evaluate_examples

    class Wrapped:
        def __init__(self) -> None:
            self.name = name

        def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
            return predict(texts)

    predict([e.text for e in examples[:32]])  # warm up
    start = time.perf_counter()
    result = evaluate_examples(examples, Wrapped())
    seconds = time.perf_counter() - start
    return {
        "variant": name,
        "macro_recall": round(result["macro_recall"], 4),
        "accuracy": round(result["accuracy"], 4),
        "posts_per_s": round(len(examples) / seconds, 1),
    }


def _onnx_variants(model: Any, work: Path) -> dict[str, Callable[[Sequence[str]], Any]]:
    """ONNX Runtime sessions over an export of the model; empty when the packages are missing."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {}
    import torch

    from socialcare.scoring.encoder import batches, mean_pool, preprocess, run_layers

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = model.encoder.model.embeddings
            self.lower = model.encoder.layers[: model.encoder.n_layers - model.n_top]
            self.top = model.top
            self.head = model.head

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            hidden = run_layers([*self.lower, *self.top], hidden, attention_mask)
            return torch.softmax(self.head(mean_pool(hidden, attention_mask)), dim=-1)

    enc = model.encoder.tokenize(["an example post", "another one, a little longer"])
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    fp32 = work / "sentiment.onnx"
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    shapes = {name: {0: batch, 1: seq} for name in names}
    torch.onnx.export(
        Whole().eval(),
        args,
        str(fp32),
        input_names=names,
        output_names=["probs"],
        dynamic_shapes=shapes,
        dynamo=True,
    )
    int8 = work / "sentiment.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)

    def runner(path: Path) -> Callable[[Sequence[str]], Any]:
        options = ort.SessionOptions()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        labels = ("negative", "neutral", "positive")

        def predict(texts: Sequence[str]) -> list[dict[str, float]]:
            out: list[dict[str, float]] = [{} for _ in texts]
            clean = [preprocess(t) for t in texts]
            for idx, part in batches(clean, model.batch_size):
                tokens = model.encoder.tokenize(part)
                feeds = {k: v.numpy() for k, v in tokens.items()}
                (probs,) = session.run(["probs"], feeds)
                for i, row in zip(idx, probs, strict=True):
                    out[i] = {label: float(p) for label, p in zip(labels, row, strict=True)}
            return out

        return predict

    return {"onnx-fp32": runner(fp32), "onnx-int8": runner(int8)}


def _complaint_rows(data: Path, folds: int) -> dict[str, Any]:
    """The shipped complaint head in fp32 and int8 on the complaints data: applied as shipped
    (it was fitted on these very rows, so its figures flatter it) and, held out, the out-of-fold
    figures of heads refitted on fp32 features of the other folds (the shipped variant and
    settings) and applied to the held-out fold's fp32 and int8 features."""
    import torch

    from socialcare.scoring.complaint import ComplaintModel, features
    from socialcare.training.complaint import ComplaintParams, fit, probabilities
    from socialcare.training.data import read_complaints
    from socialcare.training.metrics import binary_metrics
    from socialcare.training.selection import stratified_folds

    texts, labels = read_complaints(data)
    models = {q: ComplaintModel(quantize=q, batch_size=64) for q in ("none", "int8")}
    x, shipped, seconds = {}, {}, {}
    for q, model in models.items():
        model.predict(texts[:32])  # warm up
        start = time.perf_counter()
        x[q] = features(model.embed(texts), texts, model.lexical)
        seconds[q] = time.perf_counter() - start
        p = probabilities(model.head, x[q])
        shipped[q] = binary_metrics(labels, (p >= 0.5).long().tolist())
    head = models["none"].meta["head"]
    fields = ComplaintParams.__dataclass_fields__
    params = ComplaintParams(**{k: v for k, v in head.items() if k in fields})
    y = torch.tensor(labels)
    oof = {q: torch.zeros(len(labels)) for q in x}
    for fold in stratified_folds(labels, folds, seed=13):
        test = torch.tensor(fold)
        train = torch.ones(len(labels), dtype=torch.bool)
        train[test] = False
        fold_head = fit(x["none"][train], y[train], params, seed=13)
        for q in x:
            oof[q][test] = probabilities(fold_head, x[q][test])
    held_out = {q: binary_metrics(labels, (oof[q] >= 0.5).long().tolist()) for q in oof}
    names = {"none": "fp32", "int8": "int8"}
    return {
        "data": str(data),
        "examples": len(labels),
        "shipped_head_on_its_training_rows": {names[q]: _round(m) for q, m in shipped.items()},
        f"{folds}_fold_held_out": {names[q]: _round(m) for q, m in held_out.items()},
        "posts_per_s": {names[q]: round(len(texts) / s, 1) for q, s in seconds.items()},
    }


def _round(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in figures.items()}


def _scorer_speed(texts: list[str], batch: int) -> dict[str, Any]:
    """Both heads through the one-pass scorer, fp32 against int8, on the same texts."""
    from socialcare.scoring.complaint import ComplaintModel
    from socialcare.scoring.scorer import OnePassScorer
    from socialcare.scoring.sentiment import EncoderHeadSentiment

    out: dict[str, Any] = {}
    for q, name in (("none", "fp32"), ("int8", "int8")):
        scorer = OnePassScorer(
            EncoderHeadSentiment(batch_size=batch, quantize=q),
            ComplaintModel(batch_size=batch, quantize=q),
        )
        scorer.score(texts[:batch])  # warm up
        start = time.perf_counter()
        scorer.score(texts)
        out[name] = round(len(texts) / (time.perf_counter() - start), 1)
    out["int8_over_fp32"] = round(out["int8"] / out["fp32"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--complaints", type=Path, default=DEFAULT_COMPLAINTS)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32, help="SCORE_BATCH_SIZE for the scorer")
    parser.add_argument("--speed-n", type=int, default=500, help="texts for the scorer speed")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime variants")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    from socialcare.scoring.sentiment import EncoderHeadSentiment, quantized
    from socialcare.training.evaluate import read_labelled

    examples = read_labelled(args.data)
    baseline = EncoderHeadSentiment()
    rows = [_evaluate("torch-fp32", baseline.predict, examples)]
    if not args.no_onnx:
        with tempfile.TemporaryDirectory(prefix="sc-onnx-") as tmp:
            for name, predict in _onnx_variants(baseline, Path(tmp)).items():
                rows.append(_evaluate(name, predict, examples))
    rows.append(_evaluate("torch-int8", quantized(EncoderHeadSentiment()).predict, examples))
    base = rows[0]["posts_per_s"]
    for row in rows:
        row["speed_over_torch_fp32"] = round(row["posts_per_s"] / base, 3)
    summary = {
        "sentiment": {"data": str(args.data), "examples": len(examples), "rows": rows},
        "complaint": _complaint_rows(args.complaints, args.folds),
        "scorer_posts_per_s": _scorer_speed([e.text for e in examples][: args.speed_n], args.batch),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
