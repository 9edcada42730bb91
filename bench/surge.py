"""Surge detection on labelled replays of real traffic: time to detect, precision, recall.

Replays whole weeks of @SpotifyCares' real customer posts (the shared TWCS extract, real
timestamps) minute by minute through socialcare.surge.service.observe on SQLite, as a poller
that reads once a minute would, each week's baseline learned from the weeks before it:

  quiet   the week as it was: every surge opened is a false surge (bar: none)
  burst   the same week with injected outages: a few hundred varied posts paraphrasing one
          outage complaint over 20 minutes, arrivals ramping up (bench/surge_bursts.py)

Two brands: the account at full volume, and a smaller brand made by keeping a seeded quarter
of its posts (history too), with smaller bursts. A surge is true when most of the posts it
holds at detection are injected. Reports per burst the time from its first post to the
surge's opening (bar: 5 minutes), recall over bursts, precision over surges, false surges.

    .venv/bin/python -m bench.surge [--weeks 2017-10-30,2017-11-06,...] [--seed 7] [--cold]

--cold replays each week with no history before it: the account's first six hours judge
nothing, the rest of its first day is judged by the cold-start rule (the busiest whole hour
before the window; socialcare.surge.service), and from then on as usual. It measures the false
surges a newly connected account would raise and the bursts it would still catch.

The week of 2017-11-27 is not among the quiet weeks: it holds a real outage (from about 20:45
UTC on the 28th, iPhone apps unable to connect, dozens of "same problem here" replies to one
thread in half an hour). Replay it with --weeks 2017-11-27 to see how near it comes to opening.

Embeddings (the shared MiniLM encoder) are cached under var/bench/surge/ by text.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import sessionmaker

from bench.surge_bursts import THEMES, burst_texts
from socialcare.surge.detector import DEFAULT_CONFIG, SurgeConfig

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SOCIALCARE_SHARED_DATA", REPO.parent / "shared" / "data"))
SPOTIFY = DATA / "twcs" / "spotifycares_inbound_15k.csv"
CACHE = REPO / "var" / "bench" / "surge" / "embeddings.npz"
WEEKS = "2017-10-30,2017-11-06,2017-11-13,2017-11-20"
BRANDS = {"full": (1.0, (200, 400)), "quarter": (0.25, (60, 150))}  # share, burst size range
BURST_MINUTES = 20
BAR_SECONDS = 300


@dataclass(frozen=True)
class Row:
    key: str
    author: str
    created_at: datetime
    text: str
    burst: int = -1  # the injected burst's number, -1 for real posts


def load_real() -> list[Row]:
    rows = []
    with SPOTIFY.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if not r["created_at"]:
                continue
            at = datetime.strptime(r["created_at"], "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
            rows.append(Row(r["tweet_id"], r["author_id"], at, r["text"]))
    return sorted(rows, key=lambda r: (r.created_at, r.key))


def kept(row: Row, share: float) -> bool:
    """A seeded, stable choice of the smaller brand's posts."""
    if share >= 1.0:
        return True
    digest = hashlib.sha256(f"brand:{row.key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def bursts_for(week: datetime, brand: str, rng: random.Random, first: int) -> list[Row]:
    """Two outages in the week, on different days, each ramping up over 20 minutes."""
    low, high = BRANDS[brand][1]
    days = rng.sample(range(7), 2)
    themes = sorted(THEMES)
    out: list[Row] = []
    for i, day in enumerate(days):
        number = first + i
        start = week + timedelta(days=day, hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        n = rng.randint(low, high)
        texts = burst_texts(themes[number % len(themes)], n, rng)
        offsets = sorted(rng.triangular(0, BURST_MINUTES, 5) for _ in range(n))
        for k, (text, minutes) in enumerate(zip(texts, offsets, strict=True)):
            author = f"b{number}-{rng.randrange(n) if rng.random() < 0.1 else k}"
            at = start + timedelta(seconds=round(minutes * 60, 3))
            out.append(Row(f"burst{number}-{k}", author, at, text, burst=number))
    return out


def embed(texts: list[str]) -> dict[str, np.ndarray]:
    """Unit embeddings by text, computed once and cached."""
    cache: dict[str, np.ndarray] = {}
    if CACHE.exists():
        with np.load(CACHE) as data:
            cache = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    wanted = {hashlib.sha256(t.encode()).hexdigest(): t for t in texts}
    missing = [k for k in wanted if k not in cache]
    if missing:
        from socialcare.scoring.encoder import get_encoder

        started = time.perf_counter()
        vectors = get_encoder().encode([wanted[k] for k in missing], batch_size=64).numpy()
        print(f"encoded {len(missing)} texts in {time.perf_counter() - started:.0f}s")
        cache.update(zip(missing, vectors, strict=True))
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(cache)
        np.savez(CACHE, keys=np.array(keys), vectors=np.stack([cache[k] for k in keys]))
    return {t: cache[k] for k, t in wanted.items()}


def replay(
    history: list[Row], week: list[Row], vectors: dict[str, np.ndarray], tuning: SurgeConfig
) -> list[dict]:
    """Observe the week minute by minute on a fresh database; the surges opened, labelled."""
    from socialcare import config
    from socialcare.db import make_engine
    from socialcare.models import Account, Base, Post
    from socialcare.scoring.topics import topic_of
    from socialcare.surge.models import Surge, SurgePost
    from socialcare.surge.service import ObservedPost, observe

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/surge.db"
        os.environ["DATABASE_URL"] = url
        config.get_settings.cache_clear()
        settings = config.load_settings()
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        make = sessionmaker(engine, expire_on_commit=False)
        ids: dict[str, int] = {}
        with make.begin() as session:
            session.execute(
                insert(Account).values(id=1, platform="x", source="replay", handle="SpotifyCares")
            )
            rows = [*history, *week]
            session.execute(
                insert(Post),
                [
                    {
                        "id": i + 1,
                        "platform": "x",
                        "external_id": r.key,
                        "account_id": 1,
                        "author_external_id": r.author,
                        "author_handle": r.author,
                        "text": r.text,
                        "created_at": r.created_at,
                        "observed_at": r.created_at,
                    }
                    for i, r in enumerate(rows)
                ],
            )
            ids = {r.key: i + 1 for i, r in enumerate(rows)}
        minutes: dict[datetime, list[Row]] = {}
        for r in week:
            minute = r.created_at.replace(second=0, microsecond=0)
            minutes.setdefault(minute, []).append(r)
        started = time.perf_counter()
        with closest_call() as closest:
            for minute in sorted(minutes):
                batch = [
                    ObservedPost(ids[r.key], 1, r.created_at, vectors[r.text], topic_of(r.text))
                    for r in minutes[minute]
                ]
                with make.begin() as session:
                    observe(
                        session=session,
                        posts=batch,
                        settings=settings,
                        now=minute + timedelta(seconds=60),
                        config=tuning,
                    )
        seconds = time.perf_counter() - started
        burst_of = {ids[r.key]: r.burst for r in week}
        out = []
        with make() as session:
            for surge in session.execute(select(Surge).order_by(Surge.id)).scalars():
                posts = session.execute(
                    select(SurgePost.post_id).where(
                        SurgePost.surge_id == surge.id,
                        SurgePost.created_at <= surge.detected_at,
                    )
                ).scalars()
                labels = Counter(burst_of.get(p, -1) for p in posts)
                burst, n = labels.most_common(1)[0] if labels else (-1, 0)
                out.append(
                    {
                        "title": surge.title,
                        "burst": burst if n * 2 > sum(labels.values()) else -1,
                        "detected_at": surge.detected_at,
                        "started_at": surge.started_at,
                        "posts_at_detection": sum(labels.values()),
                        "posts": surge.post_count,
                    }
                )
        engine.dispose()
        print(f"  replayed {len(week)} posts in {len(minutes)} minute batches, {seconds:.1f}s")
        if closest:
            print(
                f"  closest call not opened: {closest['count']} authors in a window where"
                f" {closest['expected']:.2f} are usual (x{closest['ratio']:.1f},"
                f" p={closest['p']:.1e})"
            )
        return out


@contextmanager
def closest_call() -> Iterator[dict]:
    """Record the cluster window nearest to opening a surge without opening one: the margin a
    quiet week leaves (by the ratio of distinct authors to the usual count)."""
    from socialcare.surge import detector

    closest: dict = {}
    real = detector.surge_test

    def watched(
        count: int, usual_per_hour: float, config: detector.SurgeConfig
    ) -> detector.Verdict:
        verdict = real(count, usual_per_hour, config)
        ratio = count / verdict.expected
        if not verdict.surge and ratio > closest.get("ratio", 0.0):
            closest.update(ratio=ratio, count=count, expected=verdict.expected, p=verdict.p_value)
        return verdict

    detector.surge_test = watched
    try:
        yield closest
    finally:
        detector.surge_test = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weeks", default=WEEKS, help="Mondays (UTC) of the weeks to replay")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--brands", default=",".join(BRANDS))
    parser.add_argument(
        "--cold", action="store_true", help="no history before each week (a cold start)"
    )
    parser.add_argument(
        "--set", action="append", default=[], help="a SurgeConfig field, e.g. merge_threshold=0.7"
    )
    args = parser.parse_args()
    config = DEFAULT_CONFIG
    for item in args.set:
        name, _, value = item.partition("=")
        config = replace(config, **{name: type(getattr(config, name))(value)})
    print(config)
    rng = random.Random(args.seed)
    real = load_real()
    weeks = [datetime.fromisoformat(w).replace(tzinfo=UTC) for w in args.weeks.split(",")]
    runs = []
    number = 0
    for brand in args.brands.split(","):
        share = BRANDS[brand][0]
        for monday in weeks:
            end = monday + timedelta(days=7)
            mine = [r for r in real if kept(r, share)]
            history = [r for r in mine if monday - timedelta(weeks=6) <= r.created_at < monday]
            if args.cold:
                history = []
            week = [r for r in mine if monday <= r.created_at < end]
            injected = bursts_for(monday, brand, rng, number)
            number += 2
            runs.append((brand, monday, history, week, injected))
    texts = sorted({r.text for _, _, _, w, b in runs for r in (*w, *b)})
    vectors = embed(texts)
    report = []
    for brand, monday, history, week, injected in runs:
        for kind, posts in (("quiet", week), ("burst", sorted([*week, *injected], key=_order))):
            print(f"{brand} {monday:%Y-%m-%d} {kind}")
            surges = replay(history, posts, vectors, config)
            starts = {
                b: min(r.created_at for r in injected if r.burst == b)
                for b in {r.burst for r in injected}
            }
            report.append(_score(brand, monday, kind, surges, starts if kind == "burst" else {}))
    _summary(report)


def _order(r: Row) -> tuple[datetime, str]:
    return (r.created_at, r.key)


def _score(brand: str, monday: datetime, kind: str, surges: list[dict], starts: dict) -> dict:
    detect: dict[int, float] = {}
    for s in surges:
        b = s["burst"]
        if b in starts and b not in detect:
            detect[b] = (s["detected_at"] - starts[b]).total_seconds()
    false = [s for s in surges if s["burst"] == -1]
    for s in false:
        print(f"  false surge at {s['detected_at']:%a %H:%M}: {s['title']} ({s['posts']} posts)")
    for b, start in sorted(starts.items()):
        found = f"{detect[b]:.0f}s" if b in detect else "missed"
        print(f"  burst {b} at {start:%a %H:%M}: {found}")
    return {
        "brand": brand,
        "week": f"{monday:%Y-%m-%d}",
        "kind": kind,
        "surges": len(surges),
        "true_surges": len(surges) - len(false),
        "false_surges": len(false),
        "bursts": len(starts),
        "detected": len(detect),
        "seconds_to_detect": [detect[b] for b in sorted(detect)],
    }


def _summary(report: list[dict]) -> None:
    surges = sum(r["surges"] for r in report)
    true = sum(r["true_surges"] for r in report)
    bursts = sum(r["bursts"] for r in report)
    detected = sum(r["detected"] for r in report)
    ttd = [t for r in report for t in r["seconds_to_detect"]]
    quiet_false = sum(r["false_surges"] for r in report if r["kind"] == "quiet")
    summary = {
        "bursts": bursts,
        "recall": detected / bursts if bursts else None,
        "surges": surges,
        "precision": true / surges if surges else None,
        "false_surges_quiet_weeks": quiet_false,
        "false_surges_burst_weeks": sum(r["false_surges"] for r in report if r["kind"] == "burst"),
        "surges_per_detected_burst": (
            sum(r["true_surges"] for r in report) / detected if detected else None
        ),
        "seconds_to_detect_median": statistics.median(ttd) if ttd else None,
        "seconds_to_detect_max": max(ttd) if ttd else None,
        "within_bar": sum(t <= BAR_SECONDS for t in ttd),
    }
    print(json.dumps({"runs": report, "summary": summary}, indent=1, default=str))


if __name__ == "__main__":
    main()
