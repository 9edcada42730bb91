"""Public acknowledgements with a predicted wait: once per case, never a first response."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from socialcare import config
from socialcare.cases.ack import describe_wait, predict_wait
from socialcare.cases.models import Case, Reply
from socialcare.cases.service import apply_brand_reply
from socialcare.db import session_scope
from socialcare.flows import InlineRunner, sweep
from socialcare.flows.history import HistoryImport
from socialcare.metrics.acks import ack_accuracy
from socialcare.metrics.figures import Scope
from socialcare.posts.models import Post
from tests.factories import T0, make_account, make_case, make_post, make_team
from tests.flows.test_import import HEAD, expected_first_responses


@pytest.fixture
def acking(settings, monkeypatch):
    monkeypatch.setenv("ACK_ENABLED", "true")
    config.get_settings.cache_clear()
    return config.get_settings()


def test_every_case_is_told_its_wait_once_and_first_responses_are_unchanged(engine, acking, model):
    HistoryImport([HEAD], settings=acking).run()
    runner = InlineRunner(acking)
    # A sweep and a second routing pass (as redelivered messages would) queue nothing more.
    sweep(enqueue=runner, settings=acking)
    runner.drain()
    with session_scope(acking) as s:
        cases = list(s.execute(select(Case)).scalars())
        acks = list(s.execute(select(Reply).where(Reply.kind == "ack")).scalars())
        # What the brand's replies in the file say, computed from the CSV: acknowledgements,
        # though public and from the brand, change none of it.
        expected = expected_first_responses(s)
        for case in cases:
            got = case.first_response_at
            assert (None if got is None else (got - case.opened_at).total_seconds()) == expected[
                case.id
            ], f"case {case.id}"
        ack_posts = s.execute(
            select(func.count()).where(Post.external_id.in_([a.external_id for a in acks]))
        ).scalar_one()
    told = [c for c in cases if c.ack_predicted_at is not None]
    assert len(acks) == len({a.case_id for a in acks}) == len(told) > 100
    assert all(a.state == "sent" and a.agent_id is None for a in acks)
    assert ack_posts == len(acks)  # each published once, stored as a brand post
    assert all("@" + c.customer_handle in a.text for a in acks for c in told if c.id == a.case_id)
    # The prediction error, against plain Python over the same cases.
    answered = [c for c in told if c.first_response_at is not None]
    errors = [
        c.ack_predicted_seconds - (c.first_response_at - c.ack_predicted_at).total_seconds()
        for c in answered
    ]
    start = min(c.opened_at for c in cases)
    end = max(c.opened_at for c in cases) + timedelta(seconds=1)
    scope = Scope(start, end, datetime(2200, 1, 1, tzinfo=UTC))
    with session_scope(acking) as s:
        accuracy = ack_accuracy(session=s, scope=scope)
    assert accuracy is not None
    assert (accuracy.told, accuracy.answered) == (len(told), len(answered))
    assert accuracy.mean_abs_error_s == pytest.approx(statistics.fmean(map(abs, errors)), abs=0.01)
    assert accuracy.mean_error_s == pytest.approx(statistics.fmean(errors), abs=0.01)


def test_an_acknowledgement_seen_on_the_platform_before_its_send_was_recorded_is_not_an_answer(
    acking, session
):
    account = make_account(session)
    root = make_post(session, account, created_at=T0)
    case = make_case(session, account, root)
    session.add(
        Reply(
            case_id=case.id,
            in_reply_to_post_id=root.id,
            text="Hi, we're on it",
            kind="ack",
            state="sending",
        )
    )
    seen = make_post(
        session,
        account,
        "Hi, we're on it",
        created_at=T0 + timedelta(seconds=20),
        is_brand=True,
        in_reply_to=root,
    )
    assert apply_brand_reply(session=session, brand_post=seen) is None
    assert case.first_response_at is None
    answer = make_post(
        session,
        account,
        "Sorry! Fixed now.",
        created_at=T0 + timedelta(minutes=4),
        is_brand=True,
        in_reply_to=root,
    )
    assert apply_brand_reply(session=session, brand_post=answer) is case
    assert case.first_response_at == T0 + timedelta(minutes=4)


def test_the_predicted_wait_follows_the_queue_ahead_and_the_recent_answering_rate(acking, session):
    account = make_account(session)
    team = make_team(session, "care")
    now = T0 + timedelta(hours=5)
    # Six answers in the last hour: a case every 10 minutes.
    for k in range(6):
        root = make_post(session, account, created_at=now - timedelta(minutes=70 - 10 * k))
        make_case(
            session,
            account,
            root,
            team=team,
            status="responded",
            priority="P3",
            first_response_at=now - timedelta(minutes=55 - 10 * k),
        )
    # Three waiting ahead (two more urgent, one older at the same priority), one behind.
    for minutes, priority in [(-30, "P1"), (-5, "P2"), (-20, "P3"), (-1, "P4")]:
        root = make_post(session, account, created_at=now + timedelta(minutes=minutes))
        make_case(session, account, root, team=team, priority=priority)
    mine_root = make_post(session, account, created_at=now - timedelta(minutes=2))
    mine = make_case(session, account, mine_root, team=team, priority="P3")
    session.flush()
    wait = predict_wait(session=session, case=mine, now=now, settings=acking)
    assert wait == pytest.approx((3 + 1) * 600.0)
    assert describe_wait(wait) == "40 minutes"
    assert describe_wait(3 * 3600) == "3 hours" and describe_wait(5 * 86400) == "5 days"
    # A team with no answers lately: the priority's SLA.
    lonely_root = make_post(session, account, created_at=now)
    lonely = make_case(session, account, lonely_root, team=make_team(session, "new"), priority="P2")
    assert predict_wait(session=session, case=lonely, now=now, settings=acking) == float(
        acking.sla_seconds["P2"]
    )
