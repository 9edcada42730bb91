"""The queue page and /api/queue with 100,000 open cases on PostgreSQL, against the bare query.

Fills a scratch database in SQL (INSERT ... SELECT over generate_series: the rows never leave
the server) with --cases open cases (queued, claimed, new, responded; four teams, priorities and
topics, two platforms; each with its root post and score) and half as many closed ones, then
serves the app from a local uvicorn and times, in the same run:

  bare   the queue's SELECT (its joins, filters, order and LIMIT) on a plain connection
  page   GET /             the queue page, as a lead with an API token
  api    GET /api/queue    the same rows as JSON

Server time is measured by a timing middleware around the app (from the request reaching it to
the last byte of the answer leaving it); the client's round trip over a keep-alive connection is
printed beside it. Target: p95 under 50 ms at the server for both.

    .venv/bin/python -m bench.web [--cases 100000] [--requests 200] [--explain]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from bench.scratch import scratch_url
from socialcare.web.queries import QUEUE_PAGE

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCRATCH = "socialcare_bench_web"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

FILL = """
INSERT INTO accounts (id, platform, source, handle, config, cursors, active, failing,
                      poll_attempts, created_at)
VALUES (1, 'x', 'x', 'benchbrand', '{}', '{}', true, false, 0, now()),
       (2, 'bluesky', 'bluesky', 'benchbrand.bsky.social', '{}', '{}', true, false, 0, now());
INSERT INTO teams (id, name, skills, sla_seconds, calendar, created_at)
SELECT i, (ARRAY['swat', 'tech', 'billing', 'care'])[i], '[]', '{}', '{}', now()
FROM generate_series(1, 4) i;
INSERT INTO agents (id, handle, display_name, role, active, failed_logins, created_at)
SELECT i, 'agent' || i, 'Agent ' || i, 'agent', true, 0, now() FROM generate_series(1, 40) i;
INSERT INTO posts (id, platform, external_id, account_id, is_brand, is_retweet,
                   author_external_id, author_handle, author_followers, author_verified, text,
                   created_at, observed_at, ingested_at, metrics, raw, stage, attempts)
SELECT i, CASE WHEN i % 5 = 0 THEN 'bluesky' ELSE 'x' END, 'p' || i, 1 + (i % 5 = 0)::int,
       false, false, 'u' || i, 'customer' || i, (i * 31) % 50000, i % 97 = 0,
       'my order ' || i || ' never arrived and nobody answers <b>why</b>',
       :now - (i * interval '7 seconds'), :now - (i * interval '7 seconds'), now(), '{}', '{}',
       'routed', 0
FROM generate_series(1, :total) i;
INSERT INTO scores (id, post_id, sentiment, probabilities, urgency, priority, topic, reasons,
                    model, created_at)
SELECT i, i, 'negative', '{}', 0.5, 'P' || (1 + i % 4), 'delivery',
       '[{"signal": "negative_sentiment", "value": 0.9, "weight": 0.4},
         {"signal": "followers", "value": 1200, "weight": 0.1}]', 'bench', now()
FROM generate_series(1, :total) i;
INSERT INTO cases (id, account_id, platform, customer_external_id, customer_handle, root_post_id,
                   status, team_id, priority, urgency, topic, opened_at, detected_at, queued_at,
                   sla_due_at, claimed_by, claimed_at, claim_expires_at, escalated, needs_lead,
                   closed_at, updated_at)
SELECT p.id, p.account_id, p.platform, p.author_external_id, p.author_handle, p.id,
       CASE WHEN p.id > :open THEN 'resolved'
            WHEN p.id % 10 = 1 THEN 'claimed' WHEN p.id % 20 = 2 THEN 'new'
            WHEN p.id % 20 = 3 THEN 'responded' ELSE 'queued' END,
       1 + p.id % 4, 'P' || (1 + p.id % 4), 0.5,
       (ARRAY['delivery', 'billing', 'outage', 'account'])[1 + p.id % 4],
       p.created_at, p.created_at + interval '5 seconds', p.created_at + interval '9 seconds',
       p.created_at + interval '1 hour',
       CASE WHEN p.id % 10 = 1 AND p.id <= :open THEN 1 + p.id % 40 END,
       CASE WHEN p.id % 10 = 1 AND p.id <= :open THEN :now - interval '3 minutes' END,
       CASE WHEN p.id % 10 = 1 AND p.id <= :open THEN :now + interval '2 minutes' END,
       false, p.id % 500 = 7, CASE WHEN p.id > :open THEN p.created_at + interval '1 hour' END,
       now()
FROM posts p;
UPDATE posts SET case_id = id;
SELECT setval(pg_get_serial_sequence('agents', 'id'), 40)
"""

# The queue's main query as socialcare.web.queries.queue_rows builds it, unfiltered, for one
# page of QUEUE_PAGE rows (what the queue page and /api/queue answer by default).
BARE = text(
    """
SELECT cases.id, cases.priority, cases.urgency, coalesce(cases.topic, scores.topic),
       cases.customer_handle, posts.text, scores.reasons, posts.author_followers,
       posts.author_verified, teams.name, cases.status, agents.handle, cases.platform,
       cases.claimed_at, cases.claim_expires_at, cases.needs_lead, cases.opened_at,
       cases.sla_due_at, cases.first_response_at
FROM cases
LEFT OUTER JOIN posts ON cases.root_post_id = posts.id
LEFT OUTER JOIN scores ON scores.post_id = posts.id
LEFT OUTER JOIN teams ON teams.id = cases.team_id
LEFT OUTER JOIN agents ON agents.id = cases.claimed_by
WHERE cases.status IN ('new', 'queued', 'claimed', 'responded')
ORDER BY cases.priority, cases.opened_at, cases.id
LIMIT :limit
"""
)


class Timing:
    """ASGI middleware: seconds from a request reaching the app to its last byte, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds[scope["path"]].append(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def ms(value: float) -> float:
    return round(value * 1000, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="open cases")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per target")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--explain", action="store_true", help="print the bare query's plan")
    args = parser.parse_args()

    import httpx
    import uvicorn

    from socialcare.config import load_settings
    from socialcare.db import get_engine, session_scope
    from socialcare.migrations import upgrade
    from socialcare.people.models import Agent
    from socialcare.people.service import create_token
    from socialcare.web import create_app

    url = scratch_url(args.database_url, SCRATCH)
    settings = load_settings(DATABASE_URL=url)
    upgrade(settings)
    engine = get_engine(settings)
    started = time.perf_counter()
    values = {"now": NOW, "open": args.cases, "total": args.cases + args.cases // 2}
    with engine.begin() as conn:
        for statement in filter(str.strip, FILL.split(";\n")):
            conn.execute(text(statement), values)
    # What autovacuum does after a bulk load: statistics, and the visibility map that lets the
    # queue's count read its index alone.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    fill_s = time.perf_counter() - started
    with session_scope(settings) as s:
        lead = Agent(handle="benchlead", display_name="Bench Lead", role="lead", active=True)
        s.add(lead)
        s.flush()
        secret, _ = create_token(session=s, agent=lead, name="bench", actor="bench")

    if args.explain:
        with engine.connect() as conn:
            plan = conn.execute(
                text("EXPLAIN (ANALYZE, BUFFERS) " + str(BARE)), {"limit": QUEUE_PAGE}
            ).scalars()
            print("\n".join(plan))

    def bare() -> float:
        with engine.connect() as conn:
            t = time.perf_counter()
            rows = conn.execute(BARE, {"limit": QUEUE_PAGE}).all()
            elapsed = time.perf_counter() - t
        assert len(rows) == QUEUE_PAGE
        return elapsed

    timing = Timing(create_app(settings, clock=lambda: NOW, enqueue=lambda *a: None))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(timing, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    targets = {"page": "/", "api": "/api/queue"}
    client_s: dict[str, list[float]] = defaultdict(list)
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        for _ in range(10):  # warm: plans, pools, template caches
            bare()
            for path in targets.values():
                client.get(path).raise_for_status()
        timing.seconds.clear()
        bare_s = []
        for _ in range(args.requests):
            bare_s.append(bare())
            for name, path in targets.items():
                t = time.perf_counter()
                response = client.get(path)
                client_s[name].append(time.perf_counter() - t)
                response.raise_for_status()
        total = client.get("/api/queue").headers["x-total-count"]
    server.should_exit = True
    thread.join(timeout=10)

    bare_p95 = p95(bare_s)
    out: dict[str, Any] = {
        "open_cases": args.cases,
        "queue_total": int(total),
        "fill_s": round(fill_s, 1),
        "requests": args.requests,
        "bare_query_p50_ms": ms(statistics.median(bare_s)),
        "bare_query_p95_ms": ms(bare_p95),
    }
    for name, path in targets.items():
        server_s = timing.seconds[path]
        out[f"{name}_server_p50_ms"] = ms(statistics.median(server_s))
        out[f"{name}_server_p95_ms"] = ms(p95(server_s))
        out[f"{name}_client_p95_ms"] = ms(p95(client_s[name]))
        out[f"{name}_p95_over_bare"] = round(p95(server_s) / bare_p95, 2)
    out["target_server_p95_ms"] = 50
    print(json.dumps(out, indent=2))
    engine.dispose()


if __name__ == "__main__":
    main()
