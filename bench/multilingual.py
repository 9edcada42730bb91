"""Multilingual scoring: its speed against a bare pass of its encoder, and its validation figures.

On the same texts (Arabic, Spanish, Russian and Persian posts from the shared data), in one run,
for fp32 and dynamic int8 (SCORING_QUANTIZE):

  bare    the encoder alone (transformers BertModel): tokenize, forward, nothing else, on
          batches of SCORE_BATCH_SIZE
  scorer  MultilingualScorer.score: preprocessing, "query: ", mean pooling, both heads, order

Ratio scorer/bare (bar: >= 0.6). Then the shipped heads' validation figures per language (the
ones training/multilingual.py stored beside the heads, recomputed here for XLM-T validation).

    .venv/bin/python -m bench.multilingual --posts 256 [--out bench/results/multilingual.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def _texts(n: int) -> list[str]:
    ml = DATA / "multilingual"
    pools = [
        (ml / "xlmt" / "arabic" / "val_text.txt").read_text(encoding="utf-8").splitlines(),
        (ml / "xlmt" / "spanish" / "val_text.txt").read_text(encoding="utf-8").splitlines(),
    ]
    for name in ("sentiruEval2015_telecom_train.tsv", "snappfood_dev.tsv"):
        lines = (ml / name).read_text(encoding="utf-8").splitlines()
        pools.append([line.split("\t", 2)[2] for line in lines])
    return [pools[i % len(pools)][i // len(pools)] for i in range(n)]


def _bare(encoder: object, texts: list[str], batch: int) -> None:
    enc = encoder  # MultilingualEncoder
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            tokens = enc.tokenizer(  # type: ignore[attr-defined]
                chunk, padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            enc.model(**tokens)  # type: ignore[attr-defined]


def _rate(fn: object, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return n / best


def _speed_one(quantize: str, texts: list[str], repeats: int, data_dir: Path) -> dict[str, float]:
    from socialcare.config import load_settings
    from socialcare.scoring.encoder import batches, preprocess
    from socialcare.scoring.multilingual import get_multilingual_scorer

    settings = load_settings(SOCIALCARE_DATA_DIR=str(data_dir), SCORING_QUANTIZE=quantize)
    scorer = get_multilingual_scorer(settings)
    batch = settings.score_batch_size
    # Bare gets the same length-sorted batches the scorer makes, with the prefix, so the ratio
    # counts the scorer's own work only.
    # It gets the texts already preprocessed (@user, http), as the encoder sees them.
    clean = [preprocess(t) for t in texts]
    prefixed = ["query: " + t for _, b in batches(clean, batch) for t in b]
    scorer.score(texts[:batch])  # warm up
    bare = _rate(lambda: _bare(scorer.encoder, prefixed, batch), len(texts), repeats)
    full = _rate(lambda: scorer.score(texts), len(texts), repeats)
    return {"bare_posts_s": bare, "scorer_posts_s": full, "ratio": full / bare}


def speed(posts: int, repeats: int, data_dir: Path) -> dict[str, dict[str, float]]:
    """posts/s of bare and scorer, fp32 and int8, on the same texts."""
    texts = _texts(posts)
    return {q: _speed_one(q, texts, repeats, data_dir) for q in ("none", "int8")}


def validation(data_dir: Path, langs: list[str]) -> dict[str, float]:
    """Macro-F1 of the shipped heads on each XLM-T language's validation split (fp32)."""
    from socialcare.config import load_settings
    from socialcare.scoring.base import LABELS
    from socialcare.scoring.multilingual import get_multilingual_scorer
    from socialcare.training.metrics import macro_f1
    from socialcare.training.multilingual import read_xlmt

    scorer = get_multilingual_scorer(load_settings(SOCIALCARE_DATA_DIR=str(data_dir)))
    out = {}
    for lang in langs:
        rows = read_xlmt(DATA, lang, "val")
        scores = scorer.score(rows.texts)
        pred = [LABELS.index(max(s.sentiment, key=s.sentiment.__getitem__)) for s in scores]
        out[lang] = macro_f1(rows.labels, pred, [0, 1, 2])
    return out


def main() -> None:
    from socialcare.config import get_settings
    from socialcare.scoring.multilingual import heads_paths

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--langs", default="arabic,spanish", help="XLM-T validation languages")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or get_settings().data_dir
    meta = json.loads(heads_paths()[1].read_text())
    result = {
        "posts": args.posts,
        "threads": args.threads,
        "speed": speed(args.posts, args.repeats, data_dir),
        "xlmt_validation_macro_f1": validation(data_dir, args.langs.split(",")),
        "ru_heldout_folds": meta.get("ru_heldout_folds"),
        "fa_heldout_folds": meta.get("fa_heldout_folds"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
