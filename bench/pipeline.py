"""The scoring pipeline against one bare pass of the shared encoder, on real customer posts.

Measured in one run on the same texts (the `inbound == True` rows of ../shared/data/twcs/*.csv,
the first --n unique ones), so the ratios hold on a shared, noisy machine:

  bare      one pass of the shared encoder as configured (SCORING_QUANTIZE), mean-pooled, in
            batches of SCORE_BATCH_SIZE
  separate  the sentiment and complaint models called one after the other (the old way)
  one_pass  the Scorer (scoring.scorer.get_scorer): one trunk pass feeds both heads
  import    `socialcare import twcs` of a CSV of those rows, in a fresh process, on a fresh
            SQLite database: store, score, route (wall time of the command, its start included)

bare, separate and one_pass run in turns over the same chunks of texts (each chunk sorted by
length and batched inside, as the models do), so a change in the machine's load falls on all
three alike. Prints posts/s for each and the ratios one_pass/bare and import/bare as JSON.

    nice -n 10 .venv/bin/python -m bench.pipeline --n 3000 [--quantize int8] [--chunk 640]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from socialcare.sources.twcs import COLUMNS

REPO = Path(__file__).resolve().parent.parent
TWCS_DIR = REPO.parent / "shared" / "data" / "twcs"


def customer_rows(folder: Path, n: int) -> list[dict[str, str]]:
    """The first n unique customer rows (inbound == True) of the folder's TWCS files, by name."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for record in csv.DictReader(fh):
                tweet = (record.get("tweet_id") or "").strip()
                if (record.get("inbound") or "").strip() != "True" or tweet in seen:
                    continue
                seen.add(tweet)
                rows.append({c: record.get(c) or "" for c in COLUMNS})
                if len(rows) == n:
                    return rows
    if len(rows) < n:
        raise SystemExit(f"only {len(rows)} customer rows in {folder}, --n {n} asked")
    return rows


def in_turns(
    texts: Sequence[str], chunk: int, runs: dict[str, Callable[[Sequence[str]], object]]
) -> dict[str, float]:
    """Seconds each run took over all texts, the runs taking turns chunk by chunk (their order
    rotating), so load changes fall on all of them."""
    seconds = dict.fromkeys(runs, 0.0)
    names = list(runs)
    for i, start in enumerate(range(0, len(texts), chunk)):
        part = texts[start : start + chunk]
        for name in names[i % len(names) :] + names[: i % len(names)]:
            began = time.perf_counter()
            runs[name](part)
            seconds[name] += time.perf_counter() - began
    return seconds


def import_seconds(rows: list[dict[str, str]], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of `socialcare import twcs` over the rows in a fresh process and database,
    and the command's last output line."""
    work = Path(tempfile.mkdtemp(prefix="sc-bench-pipeline-"))
    path = work / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    env = dict(env, DATABASE_URL=f"sqlite:///{work}/pipeline.db", SOCIALCARE_DATA_DIR=str(work))
    cli = [sys.executable, "-m", "socialcare"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    done = subprocess.run(
        [*cli, "import", "twcs", str(path)], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return seconds, " / ".join(lines[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=15000, help="customer posts")
    parser.add_argument("--quantize", choices=("none", "int8"), help="SCORING_QUANTIZE")
    parser.add_argument("--chunk", type=int, default=640, help="texts per turn")
    parser.add_argument("--data", type=Path, default=TWCS_DIR)
    parser.add_argument("--no-import", action="store_true", help="skip the import run")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BROKER_URL")}
    env["PYTHONPATH"] = str(REPO)
    if args.quantize:
        env["SCORING_QUANTIZE"] = args.quantize
    os.environ.clear()
    os.environ.update(env)

    from socialcare.config import get_settings
    from socialcare.scoring.complaint import get_complaint_model
    from socialcare.scoring.encoder import get_encoder
    from socialcare.scoring.scorer import get_scorer
    from socialcare.scoring.sentiment import get_sentiment_model

    settings = get_settings()
    size = settings.score_batch_size
    rows = customer_rows(args.data, args.n)
    texts = [r["text"] for r in rows]
    encoder = get_encoder(settings.encoder_model, settings.scoring_quantize)
    sentiment, complaint = get_sentiment_model(settings), get_complaint_model(settings)
    scorer = get_scorer(settings)

    def separate(part: Sequence[str]) -> None:
        sentiment.predict(part)
        complaint.predict(part)

    runs: dict[str, Callable[[Sequence[str]], object]] = {
        "bare": lambda part: encoder.encode(part, size),
        "separate": separate,
        "one_pass": scorer.score,
    }
    for run in runs.values():
        run(texts[: size * 2])  # warm up
    seconds = in_turns(texts, args.chunk, runs)
    rate = {name: len(texts) / s for name, s in seconds.items()}
    summary: dict[str, Any] = {
        "posts": len(texts),
        "batch": size,
        "quantize": settings.scoring_quantize,
        "torch_threads": _threads(),
        "scorer": type(scorer).__name__,
        **{f"{name}_posts_per_s": round(r, 1) for name, r in rate.items()},
        "one_pass_over_bare": round(rate["one_pass"] / rate["bare"], 3),
        "separate_over_bare": round(rate["separate"] / rate["bare"], 3),
    }
    if not args.no_import:
        wall, said = import_seconds(rows, env)
        summary |= {
            "import_seconds": round(wall, 1),
            "import_posts_per_s": round(len(rows) / wall, 1),
            "import_over_bare": round(len(rows) / wall / rate["bare"], 3),
            "import_said": said,
        }
    print(json.dumps(summary, indent=2))


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


if __name__ == "__main__":
    main()
