"""Train the complaint head on the complaints data set, chosen and reported by 10-fold CV.

The head reads the pooled layers of one branch of the shared trunk: "base" (the encoder as
shipped) or "finetuned" (the embeddings, then the fine-tuned sentiment model's layers: with all
six fine-tuned, sentiment and complaint share one 6-layer pass). "both" puts the base layers and
the fine-tuned branch's layers 1..6 side by side (12 layer passes; measured, not shipped).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
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
from socialcare.training.artifacts import cached, write_sidecar
from socialcare.training.data import COMPLAINTS_FILE, read_complaints
from socialcare.training.metrics import binary_metrics
from socialcare.training.selection import out_of_fold, seed_everything
from socialcare.training.sentiment import CACHE_DIR

log = logging.getLogger(__name__)

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
        value: torch.Tensor = loss_fn(head(x[idx])[:, 0], y[idx].float()) + params.l2 / 2 * penalty
        return value

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

    def fit_predict(train: list[int], test: list[int]) -> list[float]:
        head = fit(x[train], y[train], params, seed)
        return probabilities(head, x[test]).tolist()

    labels = y.tolist()
    result = out_of_fold(labels, k, seed, fit_predict)
    oof = torch.tensor(result.predictions)
    fold_f1 = [
        binary_metrics([labels[i] for i in fold], [int(p >= 0.5) for p in result.of(fold)])["f1"]
        for fold in result.folds
    ]
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

    def encode() -> dict[str, torch.Tensor]:
        with tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar:
            return {"x": enc.encode(texts, batch_size, progress=bar.update, layers=layers)}

    key = [enc.name, str(MAX_LENGTH), f"layers={layers}", *texts]
    return cached(cache_dir, "layers", key, encode)["x"]


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
    key = [enc.name, str(MAX_LENGTH), sha256_files(sentiment_file), *texts]
    tuned = cached(
        cache_dir, "branch", key, lambda: {"x": branch_layers(enc, sentiment, texts, batch_size)}
    )["x"]
    if trunk == "finetuned":
        return tuned
    base = embed_layers(enc, texts, cache_dir, batch_size, progress)
    return torch.cat([base, tuned[:, enc.dim :]], dim=1)


def variant_features(
    emb: torch.Tensor, texts: Sequence[str], params: ComplaintParams, dim: int
) -> torch.Tensor:
    """The columns of embed_layers' output a variant uses, then its word cues."""
    return features(emb if params.all_layers else emb[:, -dim:], texts, params.lexical)


POOLING = (
    "per layer in head.layers ([]: the last layer) of the head.trunk branch (base: the shipped "
    "encoder; finetuned: the embeddings, then the sentiment model's layers; both: base 0..n, "
    "then finetuned 1..n): mean over the attention mask, then L2-normalised; layers side by side"
)
LOSS = (
    "binary cross-entropy, positives weighted by negatives/positives, L2 penalty on "
    "standardised inputs (folded into the saved weights); L-BFGS (logistic) or AdamW"
)


def cv_variants(
    emb: torch.Tensor,
    texts: Sequence[str],
    y: torch.Tensor,
    variants: Sequence[str],
    dim: int,
    *,
    folds: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Each variant's settings and its cross-validated figures, by name."""
    candidates: dict[str, dict[str, Any]] = {}
    for name in variants:
        params = VARIANTS[name]
        x = variant_features(emb, texts, params, dim)
        cv = cross_validate(x, y, params, k=folds, seed=seed)
        candidates[name] = {"params": asdict(params), "cv": cv}
        log.info("%s: CV F1 %.4f P %.4f R %.4f acc %.4f", name, cv["f1"], cv["precision"],
                 cv["recall"], cv["accuracy"])  # fmt: skip
    return candidates


def head_layers(n_layers: int, params: ComplaintParams, trunk: str) -> list[int]:
    """The pooled layers a head reads, in order ([]: the last layer only)."""
    layers = list(range(n_layers + 1)) if params.all_layers else []
    if trunk == "both" and params.all_layers:
        layers += list(range(1, n_layers + 1))
    return layers


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
    emb = embed_trunk(
        enc, texts, trunk, sentiment_file, cache_dir or CACHE_DIR, batch_size, progress
    )
    y = torch.tensor(labels)
    candidates = cv_variants(emb, texts, y, variants, enc.dim, folds=folds, seed=seed)
    chosen = choose(candidates)
    params = VARIANTS[chosen]
    head = fit(variant_features(emb, texts, params, enc.dim), y, params, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    head_path = out_dir / COMPLAINT_FILE.name
    state = {k: v.contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(head_path), metadata={"kind": chosen})
    head_path.chmod(0o644)
    trunk_model = {FINETUNED_FILE.name: sha256_files(sentiment_file)}
    meta = {
        "labels": ["not_complaint", "complaint"],
        "output": "p(complaint): sigmoid of the one logit",
        "head": {"kind": chosen, "in_dim": int(head.in_dim), "trunk": trunk}
        | {"layers": head_layers(enc.n_layers, params, trunk), **asdict(params)},
        "lexical_features": list(LEXICAL_FEATURES) if params.lexical else [],
        "encoder": {"name": enc.name, "dim": enc.dim, "max_length": MAX_LENGTH}
        | {"pooling": POOLING},
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
            "loss": LOSS,
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
        | ({} if trunk == "base" else {"trunk_model": trunk_model}),
    }
    write_sidecar(head_path, meta)
    return meta
