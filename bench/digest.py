"""A week's digest over a million posts on PostgreSQL, against the bare percentile query.

Fills a scratch database with --posts customer posts over four weeks (two posts a case, two
thirds of the cases answered, a quarter claimed, four teams and priorities), then times, on the
same data in the same run:

  bare    one SELECT percentile_cont(0.5) of first-response time over the week's cases
  digest  build_digest(period="week"): every figure, group, trend and chart input of a digest

    .venv/bin/python -m bench.digest [--posts 1000000] [--database-url postgresql://...]

Prints the median of --repeat runs of each and digest/bare. Target: the digest under 3 seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.scratch import scratch_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCRATCH = "socialcare_bench_digest"
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday: four whole weeks follow


FILL = """
INSERT INTO accounts (id, platform, source, handle, config, cursors, active, failing,
                      poll_attempts, created_at)
VALUES (1, 'x', 'x', 'benchbrand', '{}', '{}', true, false, 0, now());
INSERT INTO teams (id, name, skills, sla_seconds, created_at) VALUES
  (1, 'swat', '[]', '{}', now()), (2, 'tech', '[]', '{}', now()),
  (3, 'billing', '[]', '{}', now()), (4, 'care', '[]', '{}', now());
INSERT INTO cases (id, account_id, platform, customer_external_id, customer_handle, root_post_id,
                   status, team_id, priority, urgency, topic, opened_at, detected_at, queued_at,
                   sla_due_at, claimed_at, first_response_at, escalated, updated_at)
SELECT i, 1, 'x', 'u' || i, 'customer' || i, 2 * i - 1,
       CASE WHEN i % 3 = 0 THEN 'queued' ELSE 'responded' END,
       1 + i % 4, 'P' || (1 + i % 4), 0.5, 'other',
       t, t + interval '20 seconds', t + interval '40 seconds',
       t + (CASE i % 4 WHEN 0 THEN 900 WHEN 1 THEN 3600 WHEN 2 THEN 14400 ELSE 86400 END)
           * interval '1 second',
       CASE WHEN i % 4 = 0 THEN t + (60 + i % 1800) * interval '1 second' END,
       CASE WHEN i % 3 <> 0 THEN t + (120 + (i::bigint * 7919) % 20000) * interval '1 second' END,
       false, now()
FROM (SELECT i, :start + (i::bigint * :span / :cases) * interval '1 second' AS t
      FROM generate_series(1, :cases) AS i) AS s;
INSERT INTO posts (id, platform, external_id, account_id, is_brand, is_retweet,
                   author_external_id, author_handle, author_followers, author_verified, text,
                   created_at, observed_at, ingested_at, metrics, raw, stage, attempts, case_id)
SELECT p, 'x', 'b' || p, 1, false, false, 'u' || c.id, c.customer_handle, (p * 31) % 50000,
       false, 'my order never arrived', c.opened_at + (p % 2) * interval '5 minutes',
       c.detected_at, now(), '{}', '{}', 'routed', 0, c.id
FROM cases c CROSS JOIN LATERAL (VALUES (2 * c.id - 1), (2 * c.id)) AS v(p);
INSERT INTO events (at, actor, kind, case_id, data)
SELECT claimed_at, 'agent:a' || (id % 40), 'claimed', id, '{}' FROM cases
WHERE claimed_at IS NOT NULL;
ANALYZE;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    from socialcare.config import load_settings
    from socialcare.db import get_engine, session_scope
    from socialcare.metrics.digest import build_digest
    from socialcare.migrations import upgrade

    url = scratch_url(args.database_url, SCRATCH)
    settings = load_settings(DATABASE_URL=url)
    upgrade(settings)
    cases = args.posts // 2
    span = int(timedelta(weeks=4).total_seconds())
    started = time.perf_counter()
    with get_engine(settings).begin() as conn:
        for statement in filter(str.strip, FILL.split(";\n")):
            conn.execute(text(statement), {"start": START, "span": span, "cases": cases})
    fill_s = time.perf_counter() - started

    now = START + timedelta(weeks=3, days=1)  # the digest of the third week
    week_start, week_end = START + timedelta(weeks=2), START + timedelta(weeks=3)
    bare_sql = text(
        "SELECT percentile_cont(0.5) WITHIN GROUP "
        "(ORDER BY EXTRACT(EPOCH FROM first_response_at - opened_at)) "
        "FROM cases WHERE opened_at >= :a AND opened_at < :b AND first_response_at IS NOT NULL"
    )

    def bare() -> float:
        with get_engine(settings).connect() as conn:
            t = time.perf_counter()
            conn.execute(bare_sql, {"a": week_start, "b": week_end}).scalar_one()
            return time.perf_counter() - t

    def digest() -> tuple[float, int]:
        with session_scope(settings) as s:
            t = time.perf_counter()
            d = build_digest(session=s, settings=settings, period="week", now=now, tz="UTC")
            return time.perf_counter() - t, d.total.cases

    bare()
    digest()  # warm both: caches and plans
    bare_times = [bare() for _ in range(args.repeat)]
    runs = [digest() for _ in range(args.repeat)]
    digest_times = [r[0] for r in runs]
    b, d = statistics.median(bare_times), statistics.median(digest_times)
    print(
        json.dumps(
            {
                "posts": args.posts,
                "cases": cases,
                "week_cases": runs[0][1],
                "fill_s": round(fill_s, 1),
                "bare_percentile_s": round(b, 3),
                "digest_s": round(d, 3),
                "digest_over_bare": round(d / b, 2),
                "target_digest_s": 3.0,
            },
            indent=2,
        )
    )
    get_engine(settings).dispose()


if __name__ == "__main__":
    main()
