"""Train the built-in sentiment head on SemEval-2017 4A; evaluate it on TweetEval validation."""

from __future__ import annotations

import hashlib
import html
import json
import logging
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from socialcare.scoring.base import LABELS
from socialcare.scoring.sentiment import (
    HEAD_FILE,
    MAX_LENGTH,
    SentenceEncoder,
    SentimentHead,
    preprocess,
    sha256_files,
)

log = logging.getLogger(__name__)

SEMEVAL_DIR = Path("sentiment/semeval2017-task4a")
TWEETEVAL_DIR = Path("sentiment/tweeteval-val")
EXCLUDED_FILES = ("twitter-2016test-A.txt",)
_RECORD = re.compile(r"^(\d+)\t(positive|negative|neutral)\t(.*)$", re.IGNORECASE | re.DOTALL)
_NON_WORD = re.compile(r"[^a-z0-9]+")


class Example(NamedTuple):
    """One labelled text; label is one of LABELS."""

    text: str
    label: str


def parse_semeval(lines: Sequence[str]) -> tuple[list[Example], int]:
    """Parse `id<TAB>label<TAB>text` lines; returns the examples and the skipped line count."""
    out: list[Example] = []
    skipped = 0
    for raw in lines:
        line = raw.rstrip("\r\n")
        match = _RECORD.match(line)
        if match:
            out.append(Example(match.group(3).strip("\t ").strip(), match.group(2).lower()))
        elif out and out[-1].text.startswith('"') and not out[-1].text.endswith('"'):
            # the rest of a quoted text that spans two lines
            out[-1] = Example(f"{out[-1].text} {line.strip(chr(9) + ' ')}", out[-1].label)
        elif line.strip():
            skipped += 1
    return [e for e in out if e.text], skipped


def read_semeval(path: Path) -> list[Example]:
    """Read a SemEval Task 4A gold file, skipping (and logging) malformed lines."""
    examples, skipped = parse_semeval(path.read_text(encoding="utf-8").splitlines())
    if skipped:
        log.warning("%s: skipped %d malformed lines", path, skipped)
    return examples


def read_tweeteval(folder: Path, split: str = "val") -> list[Example]:
    """Read a TweetEval split: `{split}_text.txt` and `{split}_labels.txt` (0/1/2 per line)."""
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    if texts and texts[-1] == "":
        texts.pop()
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} texts but {len(labels)} labels")
    return [Example(t.strip(), LABELS[int(n)]) for t, n in zip(texts, labels, strict=True)]


def normalise(text: str) -> str:
    """Text for overlap matching: lowercase, no URLs/mentions/punctuation, single spaces."""
    words = html.unescape(preprocess(text)).lower().split()
    kept = [w for w in words if not w.startswith(("@", "http", "www.")) and w != "rt"]
    return " ".join(_NON_WORD.sub(" ", " ".join(kept)).split())


def evaluate(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Macro recall, accuracy, per-class recall and confusion matrix (rows true, cols predicted)."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    matrix = [[0] * len(LABELS) for _ in LABELS]
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[LABELS.index(t)][LABELS.index(p)] += 1
    recall = {
        label: (row[i] / sum(row) if sum(row) else 0.0)
        for i, (label, row) in enumerate(zip(LABELS, matrix, strict=True))
    }
    present = [recall[lb] for lb, row in zip(LABELS, matrix, strict=True) if sum(row)]
    correct = sum(matrix[i][i] for i in range(len(LABELS)))
    return {
        "macro_recall": sum(present) / len(present) if present else 0.0,
        "accuracy": correct / len(y_true) if y_true else 0.0,
        "recall": recall,
        "confusion": matrix,
        "labels": list(LABELS),
        "n": len(y_true),
    }


def _training_rows(files: list[Path], val: list[Example]) -> tuple[list[Example], dict[str, int]]:
    """All rows of `files`, without validation overlap, duplicates merged by majority label."""
    val_keys = {normalise(e.text) for e in val}
    groups: dict[str, list[Example]] = {}
    stats = Counter[str]()
    for path in files:
        for ex in read_semeval(path):
            stats["rows_read"] += 1
            key = normalise(ex.text)
            if key in val_keys:
                stats["dropped_overlap"] += 1
            else:
                groups.setdefault(key, []).append(ex)
    rows: list[Example] = []
    for group in groups.values():
        top = Counter(e.label for e in group).most_common(2)
        if len(top) > 1 and top[0][1] == top[1][1]:
            stats["dropped_conflicting"] += len(group)
            continue
        stats["merged_duplicates"] += len(group) - 1
        rows.append(Example(group[0].text, top[0][0]))
    return rows, dict(stats)


def encode_cached(
    encoder: SentenceEncoder, texts: list[str], cache_dir: Path, batch_size: int, progress: bool
) -> torch.Tensor:
    """Embeddings for texts, cached in cache_dir under a hash of encoder and texts."""
    key = hashlib.sha256("\n".join([encoder.name, str(MAX_LENGTH), *texts]).encode()).hexdigest()
    path = cache_dir / f"emb-{key[:24]}.safetensors"
    if path.exists():
        return load_file(str(path))["x"]
    with tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar:
        x = encoder.encode(texts, batch_size, progress=bar.update)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_file({"x": x.contiguous()}, str(path))
    return x


def seed_everything(seed: int) -> None:
    """Fix the random, numpy and torch seeds."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
            curve.append(evaluate(*_names(eval_set[1], predict(head, eval_set[0])))["macro_recall"])
    return head.eval(), curve


@torch.inference_mode()
def predict(head: SentimentHead, x: torch.Tensor) -> torch.Tensor:
    """Predicted label indices."""
    return head.eval()(x).argmax(dim=-1)


def _names(*indices: torch.Tensor) -> list[list[str]]:
    return [[LABELS[i] for i in t.tolist()] for t in indices]


def select_params(
    kind: str, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int
) -> tuple[HeadParams, float]:
    """Best GRID entry (and epoch count) of one head kind on a 10% held-out training slice."""
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    hold, fit = perm[: len(x) // 10], perm[len(x) // 10 :]
    best, best_score = GRID[kind][0], -1.0
    for params in GRID[kind]:
        trial = replace(params, epochs=epochs)
        _, curve = fit_head(x[fit], y[fit], trial, seed=seed, eval_set=(x[hold], y[hold]))
        top = max(range(len(curve)), key=curve.__getitem__)
        log.info("%s %s: holdout macro recall %.4f at epoch %d", kind, params, curve[top], top + 1)
        if curve[top] > best_score:
            best, best_score = replace(params, epochs=top + 1), curve[top]
    return best, best_score


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
    semeval = sorted((data_dir / SEMEVAL_DIR).glob("twitter-*-A.txt"))
    files = [p for p in semeval if p.name not in EXCLUDED_FILES]
    val_dir = data_dir / TWEETEVAL_DIR
    val = read_tweeteval(val_dir)
    rows, stats = _training_rows(files, val)
    seed_everything(seed)
    enc = SentenceEncoder(encoder)
    cache = cache_dir or Path(tempfile.gettempdir()) / "socialcare-sentiment-cache"
    x = encode_cached(enc, [r.text for r in rows], cache, batch_size, progress)
    xv = encode_cached(enc, [e.text for e in val], cache, batch_size, progress)
    y = torch.tensor([LABELS.index(r.label) for r in rows])
    candidates: dict[str, dict[str, Any]] = {}
    heads: dict[str, SentimentHead] = {}
    for kind in kinds:
        params, holdout = select_params(kind, x, y, epochs, seed)
        heads[kind], _ = fit_head(x, y, params, seed=seed)
        metrics = evaluate([e.label for e in val], *_names(predict(heads[kind], xv)))
        candidates[kind] = {
            "params": asdict(params),
            "holdout_macro_recall": holdout,
            "val": metrics,
        }
        log.info("%s: val macro recall %.4f", kind, metrics["macro_recall"])
    chosen = max(candidates, key=lambda k: candidates[k]["val"]["macro_recall"])
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


def write_sidecar(artifact: Path, meta: dict[str, Any]) -> None:
    """The artifact's metrics and provenance, as the .json beside it."""
    sidecar = artifact.with_suffix(".json")
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    sidecar.chmod(0o644)
