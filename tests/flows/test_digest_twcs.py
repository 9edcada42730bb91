"""A digest over imported TWCS threads equals plain Python over the same case rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from socialcare.cases.models import Case
from socialcare.db import session_scope
from socialcare.flows.history import HistoryImport
from socialcare.metrics.digest import build_digest
from tests.conftest import SHARED_DATA
from tests.metrics.test_figures import assert_figures, expected

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"


def test_the_weekly_digest_of_imported_threads_matches_the_rows(engine, settings, model):
    HistoryImport([HEAD], settings=settings).run()
    with session_scope(settings) as s:
        cases = list(s.execute(select(Case)).scalars())
    assert len(cases) > 100
    latest = max(c.opened_at for c in cases)
    now = latest + timedelta(days=7)
    with session_scope(settings) as s:
        digest = build_digest(session=s, settings=settings, period="week", now=now, tz="UTC")
    inside = [c for c in cases if digest.start <= c.opened_at < digest.end]
    assert digest.start < latest < digest.end or not inside
    assert inside, "the file's week holds cases"
    assert_figures(digest.total, expected(inside, now=now))
    assert digest.total.answered > 0 and digest.total.p90_s is not None
    by_priority = {g.name: g.current for g in digest.by_priority}
    for priority in {c.priority for c in inside}:
        assert_figures(
            by_priority[priority], expected([c for c in inside if c.priority == priority], now=now)
        )
    assert datetime(2017, 1, 1, tzinfo=UTC) < digest.start
