"""Fine-tune the encoder's top layers with a sentiment head (SemEval-2017 4A; TweetEval val).

The layers below the fine-tuned ones stay frozen (the embeddings always do, so layer 0 is the
shared encoder's), so their token vectors are computed once and cached; an epoch then runs only
the fine-tuned layers. Only those layers and the head are written (fp16): they load over the
package's own encoder. The written model is then scored on TweetEval validation and on the
SemEval-2016 test file (never used for training or selection), in fp32 and dynamic int8.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from socialcare.scoring.base import LABELS
from socialcare.scoring.encoder import (
    MAX_LENGTH,
    SentenceEncoder,
    get_encoder,
    mean_pool,
    run_layers,
    sha256_files,
)
from socialcare.scoring.sentiment import FINETUNED_FILE, SentimentHead
from socialcare.training.artifacts import write_sidecar
from socialcare.training.data import (
    EXCLUDED_FILES,
    SEMEVAL_DIR,
    TWEETEVAL_DIR,
    Example,
    read_semeval,
    read_tweeteval,
    semeval_files,
    training_rows,
)
from socialcare.training.evaluate import figures_by_precision
from socialcare.training.metrics import sentiment_metrics
from socialcare.training.selection import best, holdout_split, seed_everything
from socialcare.training.sentiment import CACHE_DIR
from socialcare.training.token_states import TokenStates, length_batches, lower_states

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneParams:
    """The top `layers` encoder layers and a linear (hidden=0) or MLP head, trained together."""

    layers: int = 2
    hidden: int = 0
    dropout: float = 0.1
    lr_layers: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    epochs: int = 3
    batch_size: int = 32
    warmup: float = 0.06  # share of the steps with a linear warm-up, then linear decay to 0


# Trained in turn; the one whose best epoch scores highest on the holdout rows is written.
# The settings were fixed before the validation split was read: all six layers with the
# learning rates, warm-up and loss of the earlier top-2 model (TOP2, 0.705 on validation), one
# epoch. The shipped model was trained so on a 10,000-row random subset (max_train_rows), all
# that two busy, shared CPU cores allowed in the time there was; its sidecar says so. A trial of
# the top-2 model with twice the learning rates scored higher on the held-out rows (0.716) but
# lower on TweetEval validation (0.690); it was not adopted, since it came after the
# validation figures were seen.
CANDIDATES = {
    "full-lr-1e-4": FinetuneParams(layers=6, epochs=1),
}
TOP2 = {"lr-1e-4": FinetuneParams()}  # the previous shipped model's settings


class TopModel(nn.Module):
    """The fine-tuned top layers, mean pooling and the head."""

    def __init__(self, enc: SentenceEncoder, params: FinetuneParams) -> None:
        super().__init__()
        self.layers = copy.deepcopy(enc.layers[-params.layers :])
        self.head = SentimentHead(enc.dim, params.hidden, params.dropout)
        self.dropout = nn.Dropout(params.dropout)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(run_layers(self.layers, states, mask), mask)
        logits: torch.Tensor = self.head(self.dropout(pooled))
        return logits


@torch.inference_mode()
def predict_states(model: TopModel, states: TokenStates, rows: Sequence[int]) -> list[str]:
    """Predicted labels for these rows."""
    model.eval()
    out: list[str] = []
    ordered = list(rows)
    for start in range(0, len(ordered), 128):
        x, mask = states.batch(ordered[start : start + 128])
        out += [LABELS[i] for i in model(x, mask).argmax(dim=-1).tolist()]
    return out


def finetune(
    enc: SentenceEncoder,
    states: TokenStates,
    labels: list[str],
    fit: list[int],
    hold: list[int],
    params: FinetuneParams,
    seed: int,
    val: tuple[TokenStates, list[str]] | None = None,
) -> tuple[TopModel, list[dict[str, Any]]]:
    """Train; keep the epoch best on the holdout rows. Returns the model and per-epoch figures."""
    seed_everything(seed)
    model = TopModel(enc, params)
    y = torch.tensor([LABELS.index(lb) for lb in labels])
    counts = torch.bincount(y[fit], minlength=len(LABELS)).float()
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(LABELS) * counts))
    groups = [
        {"params": model.layers.parameters(), "lr": params.lr_layers},
        {"params": model.head.parameters(), "lr": params.lr_head},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=params.weight_decay)
    total = params.epochs * math.ceil(len(fit) / params.batch_size)
    warm = max(1, int(total * params.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    gen = torch.Generator().manual_seed(seed)
    curve: list[dict[str, Any]] = []
    kept: dict[str, torch.Tensor] = {}
    for epoch in range(1, params.epochs + 1):
        model.train()
        started = time.monotonic()
        for step, idx in enumerate(length_batches(states, fit, params.batch_size, gen)):
            if step % 100 == 0:
                log.info("epoch %d: batch %d (%.0fs)", epoch, step, time.monotonic() - started)
            x, mask = states.batch(idx)
            opt.zero_grad()
            loss_fn(model(x, mask), y[idx]).backward()
            opt.step()
            sched.step()
        row: dict[str, Any] = {"epoch": epoch, "seconds": round(time.monotonic() - started, 1)}
        held = predict_states(model, states, hold)
        row["holdout"] = sentiment_metrics([labels[i] for i in hold], held)
        if val is not None:
            predicted = predict_states(model, val[0], range(len(val[1])))
            row["val"] = sentiment_metrics(val[1], predicted)
        log.info("epoch %d: holdout macro recall %.4f, val %.4f (%.0fs)", epoch,
                 row["holdout"]["macro_recall"], row.get("val", {}).get("macro_recall", math.nan),
                 row["seconds"])  # fmt: skip
        improved = not curve or row["holdout"]["macro_recall"] > max(
            r["holdout"]["macro_recall"] for r in curve
        )
        curve.append(row)
        if improved:
            kept = copy.deepcopy(model.state_dict())
    model.load_state_dict(kept)
    return model.eval(), curve


def _same_depth(
    candidates: dict[str, FinetuneParams], layers: int | None
) -> tuple[dict[str, FinetuneParams], int]:
    """The candidates (each set to fine-tune `layers` top layers when given) and their one
    layer count; ValueError when they differ."""
    if layers is not None:
        candidates = {name: replace(p, layers=layers) for name, p in candidates.items()}
    n_top = {p.layers for p in candidates.values()}
    if len(n_top) != 1:
        raise ValueError("candidates must fine-tune the same number of layers")
    return candidates, n_top.pop()


def _holdout_figure(curve: list[dict[str, Any]]) -> float:
    """A candidate's best epoch's holdout macro recall."""
    return max(float(r["holdout"]["macro_recall"]) for r in curve)


def _save_model(model: TopModel, out_dir: Path) -> Path:
    """The fine-tuned layers and the head, in fp16."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FINETUNED_FILE.name
    state = {f"layers.{k}": v.half().contiguous() for k, v in model.layers.state_dict().items()}
    state |= {f"head.{k}": v.half().contiguous() for k, v in model.head.state_dict().items()}
    save_file(state, str(path), metadata={"labels": ",".join(LABELS)})
    path.chmod(0o644)
    return path


def _provenance(files: list[Path], val_dir: Path) -> dict[str, Any]:
    return {
        "train_files": {p.name: sha256_files(p) for p in files},
        "val_files": {p.name: sha256_files(p) for p in sorted(val_dir.glob("val_*.txt"))},
        "excluded_files": list(EXCLUDED_FILES),
        "overlap_rule": "training rows whose normalised text equals a val text are dropped",
    }


def _model_meta(
    enc: SentenceEncoder,
    params: FinetuneParams,
    top: dict[str, Any],
    candidates: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The sidecar's description of the written model and its figures (top: its epoch)."""
    return {
        "labels": list(LABELS),
        "finetuned_layers": params.layers,
        "head": {"kind": "mlp" if params.hidden else "linear", "in_dim": enc.dim},
        "params": asdict(params),
        "encoder": {
            "name": enc.name,
            "dim": enc.dim,
            "max_length": MAX_LENGTH,
            "frozen_layers": enc.n_layers - params.layers,
            "pooling": "mean over the attention mask of the top fine-tuned layer (no norm)",
            "dtype_stored": "float16 (computed in float32)",
        },
        "preprocessing": "\\uXXXX and HTML entities decoded, @mentions -> @user, URLs -> http",
        "metrics": {
            "tweeteval_val": top["val"],
            "holdout": top["holdout"],
            "chosen_epoch": top["epoch"],
            "candidates": candidates,
        },
    }


def train_finetuned(
    *,
    data_dir: Path,
    out_dir: Path,
    seed: int = 13,
    candidates: dict[str, FinetuneParams] | None = None,
    encoder: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    layers: int | None = None,
    test: bool = True,
    max_train_rows: int | None = None,
    test_rows: int | None = None,
) -> dict[str, Any]:
    """Fine-tune each candidate on SemEval (the val overlap dropped); write the one best on a
    10% holdout of the training rows (epoch and candidate); returns the sidecar. layers, when
    given, sets how many top layers every candidate fine-tunes (1..6); test=False skips the
    final fp32/int8 figures on validation and the SemEval-2016 test file. max_train_rows caps
    the rows trained on (a seeded random subset; the holdout stays 10% of all rows) and
    test_rows the test file's rows scored (a seeded random sample), for a CPU with little
    time to spare."""
    candidates, n_top_layers = _same_depth(candidates or CANDIDATES, layers)
    started = time.monotonic()
    files = semeval_files(data_dir)
    val_dir = data_dir / TWEETEVAL_DIR
    val = read_tweeteval(val_dir)
    rows, stats = training_rows(files, val)
    seed_everything(seed)
    enc = get_encoder(encoder)
    if not 0 < n_top_layers <= enc.n_layers:
        raise ValueError(f"layers: 1..{enc.n_layers} for this encoder, not {n_top_layers}")
    n_lower = enc.n_layers - n_top_layers
    cache = cache_dir or CACHE_DIR
    states = lower_states(enc, [r.text for r in rows], n_lower, cache, progress)
    val_states = lower_states(enc, [e.text for e in val], n_lower, cache, progress)
    val_set = (val_states, [e.label for e in val])
    held, rest = holdout_split(len(rows), seed)
    hold, fit = held.tolist(), rest.tolist()[:max_train_rows]
    labels = [r.label for r in rows]
    results: dict[str, tuple[TopModel, list[dict[str, Any]]]] = {}
    for name, params in candidates.items():
        log.info("candidate %s: %s", name, params)
        results[name] = finetune(enc, states, labels, fit, hold, params, seed, val_set)
    chosen = best(results, lambda result: _holdout_figure(result[1]))
    training = {
        "candidate": chosen,
        "n_train_rows": len(fit),
        "max_train_rows": max_train_rows,
        "n_holdout_rows": len(hold),
        **stats,
        "seed": seed,
        "loss": "class-balanced cross-entropy, AdamW, linear warm-up and decay",
        "chosen_on": "a 10% held-out slice of the training rows (macro recall): the candidate "
        "and its epoch",
        "seconds": round(time.monotonic() - started, 1),
    }
    model, curve = results[chosen]
    path = _save_model(model, out_dir)
    tried = {
        name: {"params": asdict(candidates[name]), "epochs": _epochs(epochs)}
        for name, (_, epochs) in results.items()
    }
    top = max(curve, key=lambda r: r["holdout"]["macro_recall"])
    meta = _model_meta(enc, candidates[chosen], top, tried) | {
        "training": training,
        "provenance": _provenance(files, val_dir) | {"sha256": sha256_files(path)},
    }
    write_sidecar(path, meta)
    if test:
        add_heldout_figures(meta, path, data_dir, val, encoder, test_rows, seed)
    return meta


def add_heldout_figures(
    meta: dict[str, Any],
    path: Path,
    data_dir: Path,
    val: list[Example],
    encoder: str | None,
    test_rows: int | None = None,
    seed: int = 13,
) -> None:
    """Add the written model's fp32 and int8 figures on validation and on the SemEval-2016
    test file (never used for training or selection; test_rows: a seeded random sample of it)
    to its sidecar."""
    started = time.monotonic()
    heldout = read_semeval(data_dir / SEMEVAL_DIR / EXCLUDED_FILES[0])
    if test_rows is not None and test_rows < len(heldout):
        heldout = random.Random(seed).sample(heldout, test_rows)
    sets = {"tweeteval_val": val, "semeval2016_test": heldout}
    metrics: dict[str, Any] = meta["metrics"]
    metrics["fp32_int8"] = figures_by_precision(path, sets, encoder)
    metrics["semeval2016_test_note"] = (
        f"{EXCLUDED_FILES[0]}: never used for training or selection; "
        + ("all rows" if test_rows is None else f"a random sample of {len(heldout)} rows")
    )
    training: dict[str, Any] = meta["training"]
    training["evaluation_seconds"] = round(time.monotonic() - started, 1)
    write_sidecar(path, meta)


def _epochs(curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch seconds, holdout and val figures."""
    return [
        {"epoch": r["epoch"], "seconds": r["seconds"], "holdout": r["holdout"]["macro_recall"]}
        | {"val_macro_recall": r["val"]["macro_recall"], "val_accuracy": r["val"]["accuracy"]}
        for r in curve
    ]
