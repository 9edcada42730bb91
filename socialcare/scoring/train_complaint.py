"""Train the complaint head on the complaints data set, chosen and reported by 10-fold CV.

The head reads the pooled layers of one branch of the shared trunk: "base" (the encoder as
shipped) or "finetuned" (the embeddings, then the fine-tuned sentiment model's layers: with all
six fine-tuned, sentiment and complaint share one 6-layer pass). "both" puts the base layers and
the fine-tuned branch's layers 1..6 side by side (12 layer passes; measured, not shipped).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from socialcare.scoring.complaint import COMPLAINT_FILE, LEXICAL_FEATURES, features
from socialcare.scoring.encoder import (
    DEFAULT_ENCODER_NAME,
    MAX_LENGTH,
    SentenceEncoder,
    batches,
    get_encoder,
    mean_pool,
    preprocess,
    run_layers,
    sha256_files,
)
from socialcare.scoring.sentiment import FINETUNED_FILE, EncoderHeadSentiment, SentimentHead
from socialcare.scoring.train import seed_everything, write_sidecar

log = logging.getLogger(__name__)

COMPLAINTS_FILE = Path("complaints/complaints_train.csv")
TRUNKS = ("base", "finetuned", "both")


@dataclass(frozen=True)
class ComplaintParams:
    """One head: hidden=0 is logistic regression; all_layers takes every layer's mean-pooled
    vector (the embedding layer's too) instead of the last layer's; lexical adds word cues."""

    hidden: int = 0
    all_layers: bool = False
    lexical: bool = False
    l2: float = 0.1  # penalty l2/2 * ||weights||^2 on the mean loss, on standardised inputs
    dropout: float = 0.0
    weight_decay: float = 0.0  # AdamW's, for the MLP
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 64


# Logistic heads are fitted full-batch to convergence by L-BFGS, MLPs by AdamW in minibatches.
VARIANTS: dict[str, ComplaintParams] = {
    "logistic": ComplaintParams(),
    "logistic+lexical": ComplaintParams(lexical=True),
    "logistic-all-layers": ComplaintParams(all_layers=True, l2=0.4),
    "logistic-all-layers+lexical": ComplaintParams(all_layers=True, lexical=True, l2=0.4),
    "mlp-all-layers": ComplaintParams(64, True, False, 0.0, 0.3, 1e-2),
}


def read_complaints(path: Path) -> tuple[list[str], list[int]]:
    """Texts and 0/1 labels (1: complaint) of a `id,text,label,domain` CSV file."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("text", "").strip()]
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def stratified_folds(labels: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """k folds of row indices, each class shuffled (seeded) and dealt round-robin across them."""
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        for i in idx:
            folds[dealt % k].append(i)
            dealt += 1
    return [sorted(f) for f in folds]


def binary_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """F1, precision and recall of class 1 (complaint), accuracy and macro F1."""
    pairs = list(zip(y_true, y_pred, strict=True))
    tp = sum(t == p == 1 for t, p in pairs)
    fp = sum(t == 0 and p == 1 for t, p in pairs)
    fn = sum(t == 1 and p == 0 for t, p in pairs)
    tn = len(pairs) - tp - fp - fn

    def f1(a: int, b: int, c: int) -> float:
        return 2 * a / (2 * a + b + c) if a else 0.0

    return {
        "f1": f1(tp, fp, fn),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": (tp + tn) / len(pairs) if pairs else 0.0,
        "macro_f1": (f1(tp, fp, fn) + f1(tn, fn, fp)) / 2,
    }


def fit(x: torch.Tensor, y: torch.Tensor, params: ComplaintParams, seed: int) -> SentimentHead:
    """Train a one-logit head on standardised inputs with class-balanced binary cross-entropy
    and an L2 penalty; the standardisation is then folded into its first layer."""
    seed_everything(seed)
    mean, sd = x.mean(dim=0), x.std(dim=0).clamp(min=1e-6)
    x = (x - mean) / sd
    head = SentimentHead(x.shape[1], params.hidden, params.dropout, n_out=1)
    positives = float(y.sum())
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - positives) / positives))
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]

    def loss(idx: torch.Tensor | slice) -> torch.Tensor:
        penalty = sum((w**2).sum() for w in weights)
        return loss_fn(head(x[idx])[:, 0], y[idx].float()) + params.l2 / 2 * penalty

    head.train()
    if not params.hidden:
        lbfgs = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            value = loss(slice(None))
            value.backward()
            return value

        lbfgs.step(closure)
        return _unstandardise(head.eval(), mean, sd)
    opt = torch.optim.AdamW(head.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(params.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(params.batch_size):
            opt.zero_grad()
            loss(idx).backward()
            opt.step()
    return _unstandardise(head.eval(), mean, sd)


@torch.no_grad()
def _unstandardise(head: SentimentHead, mean: torch.Tensor, sd: torch.Tensor) -> SentimentHead:
    """The same head for raw inputs: W (x - mean) / sd + b == (W / sd) x + (b - (W / sd) mean)."""
    first = head.hidden or head.out
    first.weight.div_(sd)
    first.bias.sub_(first.weight @ mean)
    return head


@torch.inference_mode()
def probabilities(head: SentimentHead, x: torch.Tensor) -> torch.Tensor:
    """p(complaint) per row."""
    return torch.sigmoid(head.eval()(x)[:, 0])


def cross_validate(
    x: torch.Tensor, y: torch.Tensor, params: ComplaintParams, *, k: int, seed: int
) -> dict[str, Any]:
    """Out-of-fold predictions at 0.5: pooled metrics, and F1 per fold (mean and sd)."""
    oof = torch.zeros(len(y))
    fold_f1: list[float] = []
    for fold in stratified_folds(y.tolist(), k, seed):
        test = torch.tensor(fold)
        train = torch.ones(len(y), dtype=torch.bool)
        train[test] = False
        head = fit(x[train], y[train], params, seed)
        oof[test] = probabilities(head, x[test])
        pred = (oof[test] >= 0.5).long().tolist()
        fold_f1.append(binary_metrics(y[test].tolist(), pred)["f1"])
    pooled = binary_metrics(y.tolist(), (oof >= 0.5).long().tolist())
    p = oof.clamp(1e-7, 1 - 1e-7)
    log_loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    return {
        **pooled,
        "log_loss": float(log_loss),
        "fold_f1_mean": statistics.mean(fold_f1),
        "fold_f1_sd": statistics.stdev(fold_f1),
        "folds": k,
    }


F1_TIE = 0.005


def choose(candidates: dict[str, dict[str, Any]]) -> str:
    """The best CV F1; among those within F1_TIE of it, the lowest CV log loss (the score is
    used as a probability, so the better calibrated of equals wins)."""
    top = max(c["cv"]["f1"] for c in candidates.values())
    near = [n for n, c in candidates.items() if c["cv"]["f1"] >= top - F1_TIE]
    return min(near, key=lambda n: candidates[n]["cv"]["log_loss"])


def embed_layers(
    enc: SentenceEncoder, texts: list[str], cache_dir: Path, batch_size: int, progress: bool
) -> torch.Tensor:
    """Every layer's mean-pooled, normalised vectors side by side (cached, keyed by inputs)."""
    layers = list(range(enc.n_layers + 1))
    key = "\n".join([enc.name, str(MAX_LENGTH), f"layers={layers}", *texts]).encode()
    path = cache_dir / f"layers-{hashlib.sha256(key).hexdigest()[:24]}.safetensors"
    if path.exists():
        return load_file(str(path))["x"]
    with tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar:
        x = enc.encode(texts, batch_size, progress=bar.update, layers=layers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file({"x": x.contiguous()}, str(path))
    return x


@torch.inference_mode()
def branch_layers(
    enc: SentenceEncoder, sentiment: EncoderHeadSentiment, texts: Sequence[str], batch_size: int
) -> torch.Tensor:
    """The fine-tuned branch's layers 0..n (0: the shared embeddings; then the frozen base
    layers, then the sentiment model's fine-tuned ones), each mean-pooled over the attention
    mask and L2-normalised, side by side."""
    n_lower = enc.n_layers - sentiment.n_top
    branch = [*enc.layers[:n_lower], *sentiment.top]
    out = torch.zeros((len(texts), enc.dim * (enc.n_layers + 1)))
    for idx, batch in batches([preprocess(t) for t in texts], batch_size):
        tokens = enc.tokenize(batch)
        mask = tokens["attention_mask"]
        hidden = enc.lower(tokens, 0)
        states = [hidden]
        for layer in branch:
            hidden = run_layers([layer], hidden, mask)
            states.append(hidden)
        pooled = [torch.nn.functional.normalize(mean_pool(h, mask), dim=1) for h in states]
        out[idx] = torch.cat(pooled, dim=1)
    return out


def embed_trunk(
    enc: SentenceEncoder,
    texts: list[str],
    trunk: str,
    sentiment_file: Path,
    cache_dir: Path,
    batch_size: int,
    progress: bool,
) -> torch.Tensor:
    """What a complaint head over this trunk reads: embed_layers (base), branch_layers
    (finetuned) or both (the base layers 0..n, then the fine-tuned branch's 1..n)."""
    if trunk not in TRUNKS:
        raise ValueError(f"trunk: one of {', '.join(TRUNKS)}, not {trunk!r}")
    if trunk == "base":
        return embed_layers(enc, texts, cache_dir, batch_size, progress)
    sentiment = EncoderHeadSentiment(
        None if enc.name == DEFAULT_ENCODER_NAME else enc.name, head_file=sentiment_file
    )
    if sentiment.encoder is not enc:
        raise ValueError(f"{sentiment_file}: not a model over the encoder {enc.name}")
    key = "\n".join([enc.name, str(MAX_LENGTH), sha256_files(sentiment_file), *texts]).encode()
    path = cache_dir / f"branch-{hashlib.sha256(key).hexdigest()[:24]}.safetensors"
    if path.exists():
        tuned = load_file(str(path))["x"]
    else:
        tuned = branch_layers(enc, sentiment, texts, batch_size)
        cache_dir.mkdir(parents=True, exist_ok=True)
        save_file({"x": tuned.contiguous()}, str(path))
    if trunk == "finetuned":
        return tuned
    base = embed_layers(enc, texts, cache_dir, batch_size, progress)
    return torch.cat([base, tuned[:, enc.dim :]], dim=1)


def variant_features(
    emb: torch.Tensor, texts: Sequence[str], params: ComplaintParams, dim: int
) -> torch.Tensor:
    """The columns of embed_layers' output a variant uses, then its word cues."""
    return features(emb if params.all_layers else emb[:, -dim:], texts, params.lexical)


def train_complaint(
    *,
    data_dir: Path,
    out_dir: Path,
    seed: int = 13,
    folds: int = 10,
    variants: Sequence[str] = tuple(VARIANTS),
    encoder: str | None = None,
    batch_size: int = 64,
    cache_dir: Path | None = None,
    progress: bool = True,
    trunk: str = "base",
    sentiment_file: Path = FINETUNED_FILE,
) -> dict[str, Any]:
    """CV every variant, fit the best (by CV F1) on all rows, write it; returns the sidecar.
    trunk (TRUNKS) names the branch whose pooled layers the head reads; sentiment_file is the
    fine-tuned sentiment model that branch comes from."""
    started = time.monotonic()
    path = data_dir / COMPLAINTS_FILE
    texts, labels = read_complaints(path)
    seed_everything(seed)
    enc = get_encoder(encoder)
    cache = cache_dir or Path(tempfile.gettempdir()) / "socialcare-sentiment-cache"
    emb = embed_trunk(enc, texts, trunk, sentiment_file, cache, batch_size, progress)
    y = torch.tensor(labels)
    candidates: dict[str, dict[str, Any]] = {}
    for name in variants:
        params = VARIANTS[name]
        x = variant_features(emb, texts, params, enc.dim)
        cv = cross_validate(x, y, params, k=folds, seed=seed)
        candidates[name] = {"params": asdict(params), "cv": cv}
        log.info("%s: CV F1 %.4f P %.4f R %.4f acc %.4f", name, cv["f1"], cv["precision"],
                 cv["recall"], cv["accuracy"])  # fmt: skip
    chosen = choose(candidates)
    params = VARIANTS[chosen]
    head = fit(variant_features(emb, texts, params, enc.dim), y, params, seed)
    layers = list(range(enc.n_layers + 1)) if params.all_layers else []
    if trunk == "both" and params.all_layers:
        layers += list(range(1, enc.n_layers + 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    head_path = out_dir / COMPLAINT_FILE.name
    state = {k: v.contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(head_path), metadata={"kind": chosen})
    head_path.chmod(0o644)
    meta = {
        "labels": ["not_complaint", "complaint"],
        "output": "p(complaint): sigmoid of the one logit",
        "head": {
            "kind": chosen,
            "in_dim": int(head.in_dim),
            "trunk": trunk,
            "layers": layers,
            **asdict(params),
        },
        "lexical_features": list(LEXICAL_FEATURES) if params.lexical else [],
        "encoder": {
            "name": enc.name,
            "dim": enc.dim,
            "max_length": MAX_LENGTH,
            "pooling": "per layer in head.layers ([]: the last layer) of the head.trunk branch "
            "(base: the shipped encoder; finetuned: the embeddings, then the sentiment model's "
            "layers; both: base 0..n, then finetuned 1..n): mean over the attention mask, then "
            "L2-normalised; layers side by side",
        },
        "metrics": {
            "cv": candidates[chosen]["cv"],
            "cv_note": "the variant was chosen by these same folds' F1, so its figure carries "
            "that selection",
            "candidates": candidates,
        },
        "training": {
            "n_rows": len(labels),
            "n_complaints": int(y.sum()),
            "seed": seed,
            "loss": "binary cross-entropy, positives weighted by negatives/positives, L2 penalty "
            "on standardised inputs (folded into the saved weights); L-BFGS (logistic) or AdamW",
            "cv": f"{folds}-fold stratified (seeded round-robin per class); threshold 0.5; "
            "the variant: best pooled out-of-fold F1 of the complaint class, ties (within "
            f"{F1_TIE}) to the lower log loss",
            "final_model": "the chosen variant refitted on all rows",
            "seconds": round(time.monotonic() - started, 1),
        },
        "provenance": {
            "data_file": {COMPLAINTS_FILE.as_posix(): sha256_files(path)},
            "source": "Preotiuc-Pietro, Gaman, Aletras (ACL 2019) complaints data (a subset)",
            "head_sha256": sha256_files(head_path),
        }
        | (
            {}
            if trunk == "base"
            else {"trunk_model": {FINETUNED_FILE.name: sha256_files(sentiment_file)}}
        ),
    }
    write_sidecar(head_path, meta)
    return meta
