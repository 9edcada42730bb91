"""Train the multilingual heads (sentiment, complaint) on multilingual-e5-small embeddings.

    socialcare model train multilingual --data ../shared/data [--cache DIR]
    python -m socialcare.training.multilingual --data ../shared/data [--cache DIR]

Settings are fixed in code (PARAMS) before any validation figure is read. Data:
- sentiment: XLM-T train splits of eight languages; SentiRuEval-2015 telecom (Russian) and
  SnappFood (Persian), each split in FOLDS stratified folds. SnappFood is binary: its rows
  train the head through p(positive | negative or positive), so they teach polarity and say
  nothing about neutral (which such reviews do not carry).
- complaint: no multilingual complaint data exists; the head is trained on the English
  complaints data through the multilingual encoder and relies on the encoder's cross-lingual
  alignment (its English 10-fold CV figure is reported; other languages are not measured).
Reported: XLM-T validation macro-F1 per language (head trained on all train splits, and the
Russian/Persian sets); Russian macro-F1 and Persian accuracy on held-out folds (each fold's head
trained on everything else). The shipped head is then trained on all rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from socialcare.scoring.base import LABELS
from socialcare.training.data import read_complaints
from socialcare.training.metrics import accuracy, f1, macro_f1
from socialcare.training.selection import out_of_fold

XLMT = ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish")
RU_FILE = "multilingual/sentiruEval2015_telecom_train.tsv"
FA_FILE = "multilingual/snappfood_dev.tsv"
COMPLAINTS = "complaints/complaints_train.csv"
FOLDS = 5
SEED = 13
VERSION = "1"
BINARY = -1  # label marker of a binary (negative/positive) row: see binary_loss


@dataclass(frozen=True)
class Params:
    l2: float = 1e-4  # on the weights, per mean example loss
    max_iter: int = 300


PARAMS = Params()


@dataclass
class Rows:
    """Texts with labels (0 negative, 1 neutral, 2 positive; complaint: 0/1)."""

    name: str
    texts: list[str]
    labels: list[int]


def read_xlmt(data: Path, lang: str, split: str) -> Rows:
    """One XLM-T language's split."""
    base = data / "multilingual" / "xlmt" / lang
    texts = (base / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (base / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    texts = texts[: len(labels)]
    return Rows(f"xlmt-{lang}-{split}", texts, [int(x) for x in labels])


def read_tsv(path: Path, mapping: dict[str, int], name: str) -> Rows:
    """An id<TAB>label<TAB>text file, labels mapped."""
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        _, label, text = line.split("\t", 2)
        texts.append(text)
        labels.append(mapping[label])
    return Rows(name, texts, labels)


def read_all(data: Path, langs: Sequence[str] = XLMT) -> dict[str, Rows]:
    """Every data set the heads use, by name (XLM-T: these languages)."""
    sets = {}
    for lang in langs:
        for split in ("train", "val"):
            r = read_xlmt(data, lang, split)
            sets[r.name] = r
    sets["ru"] = read_tsv(data / RU_FILE, {"negative": 0, "neutral": 1, "positive": 2}, "ru")
    sets["fa"] = read_tsv(data / FA_FILE, {"negative": 0, "positive": 2}, "fa")
    texts, labels = read_complaints(data / COMPLAINTS)
    sets["complaints"] = Rows("complaints", texts, labels)
    return sets


def embed_cached(encoder: object, rows: Rows, cache: Path | None) -> torch.Tensor:
    """The rows' embeddings, from cache/NAME-HASH.npy when there, else encoded (and stored)."""
    key = hashlib.sha256("\n".join(rows.texts).encode()).hexdigest()[:16]
    quantize = getattr(encoder, "quantize", "none")
    path = cache / f"{rows.name}-{quantize}-{key}.npy" if cache else None
    if path is not None and path.is_file():
        return torch.from_numpy(np.load(path))
    out = encoder.encode(rows.texts)  # type: ignore[attr-defined]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out.numpy())
    return torch.as_tensor(out)


def binary_loss(logits: torch.Tensor) -> torch.Tensor:
    """Per-row -log p(label | negative or positive), for rows whose data has no neutral."""
    return logits[:, [0, 2]]


def fit_sentiment(
    x: torch.Tensor, y: torch.Tensor, binary: torch.Tensor, params: Params = PARAMS
) -> nn.Linear:
    """Multinomial logistic head by full-batch L-BFGS; binary rows use the two-label softmax
    (y 0 or 2 -> 0 or 1 among negative/positive)."""
    torch.manual_seed(SEED)
    head = nn.Linear(x.shape[1], len(LABELS))
    opt = torch.optim.LBFGS(
        head.parameters(), max_iter=params.max_iter, line_search_fn="strong_wolfe"
    )
    three = ~binary

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = head(x)
        parts = []
        if three.any():
            parts.append(nn.functional.cross_entropy(logits[three], y[three], reduction="sum"))
        if binary.any():
            two = binary_loss(logits[binary])
            parts.append(nn.functional.cross_entropy(two, y[binary] // 2, reduction="sum"))
        loss = torch.stack(parts).sum() / len(y) + params.l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head.eval()


def fit_complaint(x: torch.Tensor, y: torch.Tensor, params: Params = PARAMS) -> nn.Linear:
    """Logistic p(complaint) head by full-batch L-BFGS."""
    torch.manual_seed(SEED)
    head = nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(
        head.parameters(), max_iter=params.max_iter, line_search_fn="strong_wolfe"
    )
    target = y.float()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = head(x)[:, 0]
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        loss = loss + params.l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head.eval()


@dataclass
class Table:
    """Embeddings, labels and binary markers of rows put together."""

    x: torch.Tensor
    y: torch.Tensor
    binary: torch.Tensor

    @staticmethod
    def of(parts: Sequence[tuple[torch.Tensor, Sequence[int], bool]]) -> Table:
        xs = torch.cat([p[0] for p in parts])
        ys = torch.tensor([y for p in parts for y in p[1]])
        bs = torch.tensor([p[2] for p in parts for _ in p[1]], dtype=torch.bool)
        return Table(xs, ys, bs)


def predict(head: nn.Linear, x: torch.Tensor, binary: bool = False) -> list[int]:
    """Argmax labels; binary: negative (0) or positive (2) only."""
    with torch.no_grad():
        logits = head(x)
    if binary:
        return [2 if p else 0 for p in (logits[:, 2] > logits[:, 0]).tolist()]
    return [int(i) for i in logits.argmax(dim=1).tolist()]


def _xlmt_train(
    emb: dict[str, torch.Tensor], sets: dict[str, Rows], langs: Sequence[str]
) -> list[tuple[torch.Tensor, Sequence[int], bool]]:
    return [(emb[f"xlmt-{g}-train"], sets[f"xlmt-{g}-train"].labels, False) for g in langs]


def held_out(
    emb: dict[str, torch.Tensor],
    sets: dict[str, Rows],
    name: str,
    langs: Sequence[str],
) -> dict[str, float]:
    """FOLDS-fold figures on "ru" or "fa": each fold scored by a head trained on everything
    else (XLM-T train splits, the other set, this set's other folds)."""
    binary = name == "fa"
    labels = sets[name].labels
    other = "fa" if name == "ru" else "ru"
    base = [*_xlmt_train(emb, sets, langs), (emb[other], sets[other].labels, other == "fa")]

    def fit_predict(train: list[int], test: list[int]) -> list[int]:
        t = Table.of([*base, (emb[name][train], [labels[i] for i in train], binary)])
        return predict(fit_sentiment(t.x, t.y, t.binary), emb[name][test], binary)

    preds = out_of_fold(labels, FOLDS, SEED, fit_predict).predictions
    classes = [0, 2] if binary else [0, 1, 2]
    return {"macro_f1": macro_f1(labels, preds, classes), "accuracy": accuracy(labels, preds)}


def training_table(
    emb: dict[str, torch.Tensor], sets: dict[str, Rows], langs: Sequence[str]
) -> Table:
    """What the shipped sentiment head learns from: XLM-T train splits, Russian, Persian."""
    parts = _xlmt_train(emb, sets, langs)
    parts += [(emb["ru"], sets["ru"].labels, False), (emb["fa"], sets["fa"].labels, True)]
    return Table.of(parts)


def complaint_cv(x: torch.Tensor, labels: list[int], k: int = 10) -> dict[str, float]:
    """k-fold figures of the complaint head on the English complaints data."""

    def fit_predict(train: list[int], test: list[int]) -> list[int]:
        head = fit_complaint(x[train], torch.tensor([labels[i] for i in train]))
        with torch.no_grad():
            return [int(p) for p in (head(x[test])[:, 0] > 0).tolist()]

    preds = out_of_fold(labels, k, SEED, fit_predict).predictions
    return {
        "f1": f1(labels, preds),
        "macro_f1": macro_f1(labels, preds, [0, 1]),
        "accuracy": accuracy(labels, preds),
    }


def complaint_by_sentiment(
    complaint: nn.Linear, x: torch.Tensor, labels: Sequence[int]
) -> dict[str, float]:
    """Mean p(complaint) of the rows of each sentiment label: a transfer check without labels
    (complaints should sit mostly among negative posts)."""
    out = {}
    with torch.no_grad():
        p = torch.sigmoid(complaint(x)[:, 0])
    for c, name in enumerate(LABELS):
        rows = [i for i, y in enumerate(labels) if y == c]
        out[name] = float(p[rows].mean()) if rows else float("nan")
    return out


def save_heads(
    out_dir: Path, sentiment: nn.Linear, complaint: nn.Linear, meta: dict[str, object]
) -> None:
    """Write models/multilingual_heads.safetensors and .json."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "sentiment.weight": sentiment.weight.detach().contiguous(),
        "sentiment.bias": sentiment.bias.detach().contiguous(),
        "complaint.weight": complaint.weight.detach().contiguous(),
        "complaint.bias": complaint.bias.detach().contiguous(),
    }
    save_file(state, str(out_dir / "multilingual_heads.safetensors"))
    (out_dir / "multilingual_heads.json").write_text(json.dumps(meta, indent=2) + "\n")


def train(
    data: Path, out_dir: Path, cache: Path | None, encoder: object, langs: Sequence[str] = XLMT
) -> dict[str, object]:
    """Evaluate, then train and save the shipped heads; returns the metadata written."""
    sets = read_all(data, langs)
    emb = {name: embed_cached(encoder, rows, cache) for name, rows in sets.items()}
    table = training_table(emb, sets, langs)
    sentiment = fit_sentiment(table.x, table.y, table.binary)
    val = {g: (emb[f"xlmt-{g}-val"], sets[f"xlmt-{g}-val"].labels) for g in langs}
    validation = {g: macro_f1(y, predict(sentiment, x), [0, 1, 2]) for g, (x, y) in val.items()}
    complaint_labels = sets["complaints"].labels
    complaint = fit_complaint(emb["complaints"], torch.tensor(complaint_labels))
    meta: dict[str, object] = {
        "version": VERSION,
        "encoder": Path(str(getattr(encoder, "ref", ""))).name,
        "embedded_with": getattr(encoder, "quantize", "none"),
        "prefix": "query: ",
        "pooling": "mean over the attention mask of the last layer, L2-normalised",
        "params": asdict(PARAMS),
        "folds": FOLDS,
        "seed": SEED,
        "data": {name: len(rows.texts) for name, rows in sets.items()},
        "validation_macro_f1": validation,
        "ru_heldout_folds": held_out(emb, sets, "ru", langs),
        "fa_heldout_folds": held_out(emb, sets, "fa", langs),
        "complaint_english_10fold": complaint_cv(emb["complaints"], complaint_labels),
        "complaint_mean_p_by_sentiment_on_xlmt_val": {
            g: complaint_by_sentiment(complaint, x, y) for g, (x, y) in val.items()
        },
    }
    save_heads(out_dir, sentiment, complaint, meta)
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train and save the heads, print the figures."""
    from socialcare.config import load_settings
    from socialcare.scoring.multilingual import get_multilingual_encoder, heads_paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=heads_paths()[0].parent)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache folder")
    parser.add_argument("--langs", default=",".join(XLMT), help="XLM-T languages to use")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    encoder = get_multilingual_encoder(load_settings())
    meta = train(args.data, args.out, args.cache, encoder, args.langs.split(","))
    print(json.dumps({k: v for k, v in meta.items() if k != "data"}, indent=2))


if __name__ == "__main__":
    main()
