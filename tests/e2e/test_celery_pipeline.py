"""The whole path with real Celery worker and beat processes over a real broker.

Three deployments: Redis and PostgreSQL (production), RabbitMQ and PostgreSQL, and the embedded
default (file-system broker and SQLite, no servers). A TWCS file is replayed at a large speed-up;
every customer thread must end as a scored, routed case with first responses from the brand's
replies, and polling the same posts again must duplicate nothing. The production deployment
replays the whole 1,000-row file; the other two its first 200 rows (the same path, a fifth of the
scoring time).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from socialcare.cases.models import Case
from socialcare.db import session_scope
from socialcare.flows.seed import ensure_replay_feed
from socialcare.posts.models import Account
from tests.e2e.conftest import HEAD, head_of, stage_counts, wait_for
from tests.flows.test_import import expected_first_responses

pytestmark = pytest.mark.slow
SHORT = 200  # rows replayed on the deployments other than production


def test_a_replayed_file_becomes_scored_routed_cases_with_first_responses(
    deployment, request, tmp_path
):
    dep, settings = deployment
    rows = 1000 if request.node.callspec.params["deployment"] == "redis+postgres" else SHORT
    replayed = HEAD if rows == 1000 else head_of(HEAD, rows, tmp_path / "twcs_head.csv")
    with session_scope(settings) as s:
        feed_id = ensure_replay_feed(session=s, files=[replayed], speedup=100000).id

    def done() -> bool:
        assert dep.alive(), dep.log_tail()
        c = stage_counts(settings)
        return c["posts"] == rows and c["waiting"] == 0

    took = wait_for(done, "the replay to be scored and routed")
    counts = stage_counts(settings)
    assert counts["routed_customer"] == counts["customer"] == counts["scores"]
    assert counts["cases"] > rows // 5
    with session_scope(settings) as s:
        cases = s.execute(select(Case)).scalars().all()
        assert all(c.team_id and c.sla_due_at and c.priority for c in cases)
        expected = expected_first_responses(s)
        for case in cases:
            got = case.first_response_at
            seconds = (got - case.opened_at).total_seconds() if got else None
            assert seconds == expected[case.id], f"case {case.id}"
        assert sum(v is not None for v in expected.values()) > rows * 3 // 20
    print(f"replay of {rows} posts scored and routed in {took:.1f}s")
    # The happy path needs no retries: no task failed on a lock, a race or a bad row.
    assert "raised unexpected" not in dep.log_tail(full=True)

    # Poll the same posts again: rewind the replay to its start.
    with session_scope(settings) as s:
        feed = s.get(Account, feed_id)
        assert feed is not None
        feed.cursors = {}

    def replayed_again() -> bool:
        with session_scope(settings) as s:
            feed = s.get(Account, feed_id)
            return bool(feed and feed.cursors.get("position") == rows)

    wait_for(replayed_again, "the second replay")
    time.sleep(3)
    assert stage_counts(settings) == counts
