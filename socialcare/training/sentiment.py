"""Train the built-in sentiment head on SemEval-2017 4A; evaluate it on TweetEval validation."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from socialcare.scoring.base import LABELS
from socialcare.scoring.sentiment import (
    HEAD_FILE,
    MAX_LENGTH,
    SentenceEncoder,
    SentimentHead,
    sha256_files,
)
from socialcare.training.artifacts import cached, write_sidecar
from socialcare.training.data import (
    EXCLUDED_FILES,
    TWEETEVAL_DIR,
    read_tweeteval,
    semeval_files,
    training_rows,
)
from socialcare.training.metrics import sentiment_metrics
from socialcare.training.selection import best, holdout_split, seed_everything

log = logging.getLogger(__name__)

CACHE_DIR = Path(tempfile.gettempdir()) / "socialcare-sentiment-cache"


def encode_cached(
    encoder: SentenceEncoder, texts: list[str], cache_dir: Path, batch_size: int, progress: bool
) -> torch.Tensor:
    """Embeddings for texts, cached in cache_dir under a hash of encoder and texts."""

    def encode() -> dict[str, torch.Tensor]:
        with tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar:
            return {"x": encoder.encode(texts, batch_size, progress=bar.update)}

    return cached(cache_dir, "emb", [encoder.name, str(MAX_LENGTH), *texts], encode)["x"]


@dataclass(frozen=True)
class HeadParams:
    """Hyperparameters of one head: hidden=0 is a linear (logistic-regression) head."""

    hidden: int = 0
    dropout: float = 0.0
    weight_decay: float = 0.0
    lr: float = 1e-2
    epochs: int = 80


GRID = {
    "linear": [HeadParams(0, 0.0, wd, lr) for lr in (1e-2, 3e-2) for wd in (0.0, 1e-2)],
    "mlp": [HeadParams(h, d, 1e-2, 1e-3) for h in (256, 512) for d in (0.2, 0.5)],
}


def fit_head(
    x: torch.Tensor,
    y: torch.Tensor,
    params: HeadParams,
    *,
    seed: int,
    eval_set: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[SentimentHead, list[float]]:
    """Train with class-balanced cross-entropy; returns the head and eval macro recall by epoch."""
    seed_everything(seed)
    head = SentimentHead(x.shape[1], params.hidden, params.dropout)
    counts = torch.bincount(y, minlength=len(LABELS)).float()
    loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / (len(LABELS) * counts))
    opt = torch.optim.AdamW(head.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    curve: list[float] = []
    for _ in range(params.epochs):
        head.train()
        for idx in torch.randperm(len(x), generator=gen).split(256):
            opt.zero_grad()
            loss_fn(head(x[idx]), y[idx]).backward()
            opt.step()
        if eval_set is not None:
            figures = sentiment_metrics(*_names(eval_set[1], predict(head, eval_set[0])))
            curve.append(figures["macro_recall"])
    return head.eval(), curve


@torch.inference_mode()
def predict(head: SentimentHead, x: torch.Tensor) -> torch.Tensor:
    """Predicted label indices."""
    logits: torch.Tensor = head.eval()(x)
    return logits.argmax(dim=-1)


def _names(*indices: torch.Tensor) -> list[list[str]]:
    return [[LABELS[i] for i in t.tolist()] for t in indices]


def select_params(
    kind: str, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int
) -> tuple[HeadParams, float]:
    """Best GRID entry (and epoch count) of one head kind on a 10% held-out training slice."""
    hold, fit = holdout_split(len(x), seed)
    tried: dict[HeadParams, float] = {}
    for params in GRID[kind]:
        trial = replace(params, epochs=epochs)
        _, curve = fit_head(x[fit], y[fit], trial, seed=seed, eval_set=(x[hold], y[hold]))
        top = max(range(len(curve)), key=curve.__getitem__)
        log.info("%s %s: holdout macro recall %.4f at epoch %d", kind, params, curve[top], top + 1)
        tried[replace(params, epochs=top + 1)] = curve[top]
    chosen = best(tried, float)
    return chosen, tried[chosen]


def _candidates(
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor,
    val_labels: list[str],
    kinds: Sequence[str],
    epochs: int,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, SentimentHead]]:
    """Each head kind's selected settings, refitted on all rows and scored on validation."""
    candidates: dict[str, dict[str, Any]] = {}
    heads: dict[str, SentimentHead] = {}
    for kind in kinds:
        params, holdout = select_params(kind, x, y, epochs, seed)
        heads[kind], _ = fit_head(x, y, params, seed=seed)
        metrics = sentiment_metrics(val_labels, *_names(predict(heads[kind], xv)))
        candidates[kind] = {
            "params": asdict(params),
            "holdout_macro_recall": holdout,
            "val": metrics,
        }
        log.info("%s: val macro recall %.4f", kind, metrics["macro_recall"])
    return candidates, heads


def train_sentiment(
    *,
    data_dir: Path,
    out_dir: Path,
    seed: int = 13,
    epochs: int = 80,
    kinds: Sequence[str] = ("linear", "mlp"),
    encoder: str | None = None,
    batch_size: int = 64,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit each head kind, keep the best on TweetEval val, write it; returns the sidecar."""
    started = time.monotonic()
    files = semeval_files(data_dir)
    val_dir = data_dir / TWEETEVAL_DIR
    val = read_tweeteval(val_dir)
    rows, stats = training_rows(files, val)
    seed_everything(seed)
    enc = SentenceEncoder(encoder)
    cache = cache_dir or CACHE_DIR
    x = encode_cached(enc, [r.text for r in rows], cache, batch_size, progress)
    xv = encode_cached(enc, [e.text for e in val], cache, batch_size, progress)
    y = torch.tensor([LABELS.index(r.label) for r in rows])
    candidates, heads = _candidates(x, y, xv, [e.label for e in val], kinds, epochs, seed)
    chosen = best(candidates, lambda c: c["val"]["macro_recall"])
    out_dir.mkdir(parents=True, exist_ok=True)
    head_path = out_dir / HEAD_FILE.name
    state = {k: v.contiguous() for k, v in heads[chosen].state_dict().items()}
    save_file(state, str(head_path), metadata={"labels": ",".join(LABELS), "kind": chosen})
    head_path.chmod(0o644)
    meta = {
        "labels": list(LABELS),
        "head": {"kind": chosen, "in_dim": enc.dim, **candidates[chosen]["params"]},
        "encoder": {
            "name": enc.name,
            "dim": enc.dim,
            "max_length": MAX_LENGTH,
            "pooling": "mean over the attention mask, then L2-normalised",
        },
        "preprocessing": "\\uXXXX and HTML entities decoded, @mentions -> @user, URLs -> http",
        "metrics": {"tweeteval_val": candidates[chosen]["val"], "candidates": candidates},
        "training": {
            "n_train_rows": len(rows),
            **stats,
            "seed": seed,
            "max_epochs": epochs,
            "loss": "class-balanced cross-entropy, AdamW, batch 256",
            "hyperparameters_chosen_on": "a 10% held-out slice of the training rows",
            "seconds": round(time.monotonic() - started, 1),
        },
        "provenance": {
            "train_files": {p.name: sha256_files(p) for p in files},
            "val_files": {p.name: sha256_files(p) for p in sorted(val_dir.glob("val_*.txt"))},
            "excluded_files": list(EXCLUDED_FILES),
            "overlap_rule": "training rows whose normalised text equals a val text are dropped",
            "head_sha256": sha256_files(head_path),
        },
    }
    write_sidecar(head_path, meta)
    return meta
