"""Claims, replies and the sweep, through the real flows and services on both databases."""

from __future__ import annotations

import csv
import threading

import pytest
from sqlalchemy import func, select

from socialcare import flows
from socialcare.cases.models import Case, Event, Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.work import claim, claim_next, close, escalate
from socialcare.db import after_commit, session_scope, utcnow
from socialcare.errors import Conflict
from socialcare.flows import InlineRunner
from socialcare.flows.history import HistoryImport
from socialcare.flows.seed import add_agent
from socialcare.posts.models import Post
from tests.conftest import SHARED_DATA

HEAD = SHARED_DATA / "twcs" / "twcs_head_1000.csv"
ROWS = 300  # the first threads of the file: enough cases to race for, quick to load twice


@pytest.fixture
def sample(tmp_path):
    """The first ROWS rows of the TWCS head file."""
    with HEAD.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        rows = [next(reader) for _ in range(ROWS + 1)]
    path = tmp_path / "twcs_sample.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def loaded(engine, settings, model, sample):
    HistoryImport([sample], settings=settings).run()
    with session_scope(settings) as s:
        add_agent(session=s, handle="ana", display_name="Ana", role="agent", teams=None)
        add_agent(session=s, handle="ben", display_name="Ben", role="agent", teams=None)
    return settings


def _agent(session, handle):
    from socialcare.cases.work import get_agent

    return get_agent(session=session, handle=handle)


def test_claim_next_takes_the_most_urgent_then_the_longest_waiting(loaded):
    with session_scope(loaded) as s:
        case = claim_next(session=s, agent=_agent(s, "ana"))
        assert case is not None
        queued = s.execute(select(Case).where(Case.status == "queued")).scalars().all()
        order = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
        assert all(
            (order[case.priority], case.opened_at) <= (order[c.priority], c.opened_at)
            for c in queued
        )


def test_a_claimed_case_cannot_be_claimed_by_another_agent(loaded):
    with session_scope(loaded) as s:
        case = claim_next(session=s, agent=_agent(s, "ana"))
        assert case is not None
        case_id = case.id
    with session_scope(loaded) as s, pytest.raises(Conflict):
        claim(session=s, case_id=case_id, agent=_agent(s, "ben"))


def test_concurrent_claims_give_each_case_to_exactly_one_agent(loaded):
    with session_scope(loaded) as s:
        for i in range(4):
            add_agent(session=s, handle=f"bot{i}", display_name="b", role="agent", teams=None)
        total = s.execute(select(func.count()).select_from(Case).where(Case.status == "queued"))
        queued = total.scalar_one()
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(handle: str) -> None:
        mine = got.setdefault(handle, [])
        try:
            while True:
                with session_scope(loaded) as s:
                    case = claim_next(session=s, agent=_agent(s, handle))
                    if case is None:
                        return
                    mine.append(case.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"bot{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    claimed = [c for ids in got.values() for c in ids]
    assert len(claimed) == len(set(claimed)) == queued


def test_a_reply_is_published_once_and_counts_as_the_first_response(loaded):
    with session_scope(loaded) as s:
        case = s.execute(
            select(Case).where(Case.status == "queued", Case.first_response_at.is_(None)).limit(1)
        ).scalar_one()
        case = claim(session=s, case_id=case.id, agent=_agent(s, "ana"))
        reply = create_reply(session=s, case_id=case.id, agent=_agent(s, "ana"), text="On it!")
        case_id, reply_id = case.id, reply.id
    runner = InlineRunner(loaded)
    assert flows.send_reply(reply_id, enqueue=runner, settings=loaded) == "sent"
    # A second delivery of the same task (at-least-once) sends nothing.
    assert flows.send_reply(reply_id, enqueue=runner, settings=loaded) == "sent"
    with session_scope(loaded) as s:
        brand = s.execute(select(Post).where(Post.text == "On it!")).scalars().all()
        assert len(brand) == 1 and brand[0].is_brand
        case = s.get(Case, case_id)
        assert case.status == "responded"
        assert case.first_response_via == "socialcare"
        assert case.first_response_at == brand[0].created_at
        assert s.get(Reply, reply_id).state == "sent"
        # Each step of the outbox is an event (what open pages follow live), once each.
        steps = s.execute(
            select(Event.kind).where(Event.reply_id == reply_id).order_by(Event.id)
        ).scalars()
        assert list(steps) == ["reply_queued", "reply_sending", "reply_sent"]


def test_replying_needs_the_claim(loaded):
    with session_scope(loaded) as s:
        case_id = s.execute(select(Case.id).where(Case.status == "queued").limit(1)).scalar_one()
        with pytest.raises(Conflict):
            create_reply(session=s, case_id=case_id, agent=_agent(s, "ana"), text="hi")


def test_a_reply_over_the_platform_limit_is_refused(loaded):
    with session_scope(loaded) as s:
        case = claim_next(session=s, agent=_agent(s, "ana"))
        with pytest.raises(ValueError, match="allows 280"):
            create_reply(session=s, case_id=case.id, agent=_agent(s, "ana"), text="x" * 281)


def test_resolve_dismiss_and_escalate_are_recorded(loaded):
    from socialcare.cases.models import Event

    with session_scope(loaded) as s:
        a = claim_next(session=s, agent=_agent(s, "ana"))
        close(session=s, case_id=a.id, agent=_agent(s, "ana"), status="resolved", reason="done")
        b = claim_next(session=s, agent=_agent(s, "ana"))
        before = b.priority
        escalate(session=s, case_id=b.id, agent=_agent(s, "ana"), team="swat", reason="press")
        kinds = set(s.execute(select(Event.kind).where(Event.case_id.in_([a.id, b.id]))).scalars())
        assert {"resolved", "escalated", "claimed"} <= kinds
        assert b.status == "queued" and b.escalated and b.priority <= before
        with pytest.raises(Conflict):
            close(session=s, case_id=a.id, agent=_agent(s, "ana"), status="dismissed", reason="x")


def test_a_rolled_back_transaction_enqueues_nothing(loaded):
    sent: list[str] = []
    with pytest.raises(RuntimeError), session_scope(loaded) as s:
        after_commit(s, lambda: sent.append("x"))
        raise RuntimeError("boom")
    with session_scope(loaded) as s:
        after_commit(s, lambda: sent.append("y"))
    assert sent == ["y"]


def test_the_sweep_re_enqueues_steps_whose_message_was_lost(engine, settings, model, sample):
    HistoryImport([sample], settings=settings).store()  # the broker lost every message
    with session_scope(settings) as s:
        s.execute(Post.__table__.update().values(next_step_at=utcnow()))
    runner = InlineRunner(settings)
    swept = flows.sweep(enqueue=runner, settings=settings)
    assert swept["posts"] > ROWS * 0.8
    runner.drain()
    runner2 = InlineRunner(settings)
    with session_scope(settings) as s:
        s.execute(Post.__table__.update().values(next_step_at=utcnow()))
    flows.sweep(enqueue=runner2, settings=settings)
    runner2.drain()
    with session_scope(settings) as s:
        waiting = s.execute(
            select(func.count()).select_from(Post).where(Post.stage.in_(("ingested", "scored")))
        ).scalar_one()
        assert waiting == 0
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() > ROWS // 6
