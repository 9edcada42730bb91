"""Surge incidents: opened once under racing workers, a timeline of statuses, linked cases, and
each lead alerted exactly once by email and Slack."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import func, select

from socialcare.db import session_scope
from socialcare.errors import Conflict
from socialcare.flows import InlineRunner
from socialcare.flows.surge import send_surge_alert
from socialcare.metrics.recipients import Recipient
from socialcare.surge import incidents
from socialcare.surge.models import Surge, SurgeAlert, SurgeCluster, SurgeEvent
from socialcare.surge.service import observe
from tests.factories import make_account, make_case, make_post
from tests.surge.conftest import observed
from tests.surge.test_clustering import LOGIN

T0 = datetime(2017, 11, 14, 15, 0, tzinfo=UTC)
LEADS = [
    Recipient(kind="email", address="lead@example.com"),
    Recipient(kind="slack", address="#care"),
]


def quiet_history(session, account, hours=48):
    """One post an hour for two days before T0: a learned, low baseline."""
    for h in range(hours, 0, -1):
        make_post(session, account, "hello", created_at=T0 - timedelta(hours=h))


def candidate(account_id, posts, key="1:1:0"):
    refs = [incidents.SurgePostRef(p.post_id, p.created_at, 0.8) for p in posts]
    return incidents.Candidate(
        key=key,
        account_id=account_id,
        title="Security: password, log",
        topic="security",
        keywords=["password", "log"],
        started_at=posts[0].created_at,
        count=len(posts),
        rate_per_hour=4.0 * len(posts),
        expected_per_hour=2.0,
        p_value=1e-9,
        posts=refs,
    )


def race(n, target):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run():
        barrier.wait(timeout=10)
        try:
            results.append(target())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    return results


def test_two_workers_opening_the_same_surge_open_it_once(session, settings):
    settings = settings.model_copy(update={"digest_recipients": LEADS})
    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN, [T0] * len(LOGIN))
    session.commit()
    wanted = candidate(account.id, posts)

    def open_one():
        with session_scope(settings) as s:
            surge, opened, alert_ids = incidents.open_surge(
                session=s, candidate=wanted, settings=settings, now=T0
            )
            return surge.id, opened, alert_ids

    results = race(2, open_one)
    assert sorted(opened for _, opened, _ in results) == [False, True]
    assert len({surge_id for surge_id, _, _ in results}) == 1
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Surge)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(SurgeAlert)).scalar_one() == 2
    assert session.execute(select(SurgeEvent.kind)).scalars().all() == ["opened"]
    assert session.execute(select(Surge.post_count)).scalar_one() == len(LOGIN)


def test_two_workers_observing_the_same_burst_open_one_surge(session, settings):
    account = make_account(session, "SpotifyCares")
    quiet_history(session, account)
    texts = LOGIN * 3
    posts = observed(
        session, account, texts, [T0 + timedelta(seconds=i) for i in range(len(texts))]
    )
    session.commit()

    def observe_all():
        with session_scope(settings) as s:
            return observe(session=s, posts=posts, settings=settings, now=T0 + timedelta(minutes=1))

    results = race(2, observe_all)
    assert sorted(len(r) for r in results) == [0, 1]
    (update,) = [u for r in results for u in r]
    assert update.kind == "opened"
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Surge)).scalar_one() == 1
    total = session.execute(select(func.sum(SurgeCluster.size))).scalar_one()
    assert total == len(texts)  # the second worker saw the posts as already placed


def test_the_timeline_moves_open_acknowledged_answered_resolved(session, settings):
    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN[:3], [T0] * 3)
    surge, _, _ = incidents.open_surge(
        session=session, candidate=candidate(account.id, posts), settings=settings, now=T0
    )
    steps = [
        (incidents.acknowledge, "acknowledged", "lead"),
        (incidents.mark_answered, "answered", "lead"),
        (incidents.resolve, "resolved", "lead"),
    ]
    for i, (move, status, actor) in enumerate(steps, start=1):
        moved = move(session=session, surge_id=surge.id, actor=actor, now=T0 + timedelta(i))
        assert moved.status == status
    assert surge.resolved_at == T0 + timedelta(3)
    kinds = [e.kind for e in incidents.timeline(session=session, surge_id=surge.id)]
    assert kinds == ["opened", "acknowledged", "answered", "resolved"]
    with pytest.raises(Conflict):
        incidents.acknowledge(session=session, surge_id=surge.id, actor="lead", now=T0)


def test_cases_of_the_surge_posts_are_linked_once_routed(session, settings):
    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN[:3], [T0] * 3)
    surge, _, _ = incidents.open_surge(
        session=session, candidate=candidate(account.id, posts), settings=settings, now=T0
    )
    assert incidents.case_ids(session=session, surge_id=surge.id) == []
    from socialcare.posts.models import Post

    first = session.get(Post, posts[0].post_id)
    case = make_case(session, account, first)
    first.case_id = case.id
    session.flush()
    for _ in range(2):
        incidents.link_cases(session=session, surge_ids=[surge.id], now=T0)
    assert incidents.case_ids(session=session, surge_id=surge.id) == [case.id]


def test_each_lead_is_alerted_once_by_email_and_slack_however_many_workers_send(
    session, settings, smtp_server, webhook
):
    server = smtp_server()
    settings = settings.model_copy(
        update={
            "smtp_url": server.url(),
            "digest_email_from": "alerts@example.com",
            "slack_webhook_url": webhook.url(),
            "digest_recipients": LEADS,
        }
    )
    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN, [T0] * len(LOGIN))
    _, _, alert_ids = incidents.open_surge(
        session=session, candidate=candidate(account.id, posts), settings=settings, now=T0
    )
    session.commit()
    assert len(alert_ids) == 2

    def send_both():
        return [
            send_surge_alert(a, enqueue=InlineRunner(settings), settings=settings)
            for a in alert_ids
        ]

    race(3, send_both)
    assert len(server.handler.messages) == 1
    assert len(webhook.received) == 1
    mail = message_from_bytes(server.handler.messages[0], policy=default_policy)
    assert mail["Subject"] == "Surge on x:@SpotifyCares: Security: password, log (6 posts)"
    assert "password" in mail.get_content()
    payload = webhook.received[0][2]
    assert payload["text"].startswith("Surge on x:@SpotifyCares")
    session.expire_all()
    states = session.execute(select(SurgeAlert.state, SurgeAlert.attempts)).all()
    assert sorted(states) == [("sent", 1), ("sent", 1)]
    alerted = session.execute(select(SurgeEvent.kind).where(SurgeEvent.kind == "alerted")).all()
    assert len(alerted) == 2
    session.rollback()  # end this read (SQLite: its transaction holds the write lock)
    for a in alert_ids:  # a redelivered message sends nothing more
        assert send_surge_alert(a, enqueue=InlineRunner(settings), settings=settings) == "sent"
    assert len(server.handler.messages) == 1 and len(webhook.received) == 1


def test_the_score_step_observes_and_enqueues_each_alert_after_commit(session, settings):
    from socialcare.flows.surge import observe_scored

    settings = settings.model_copy(update={"digest_recipients": LEADS})
    account = make_account(session, "SpotifyCares")
    quiet_history(session, account)
    texts = LOGIN * 3
    posts = observed(
        session, account, texts, [T0 + timedelta(seconds=i) for i in range(len(texts))]
    )
    runner = InlineRunner(settings)
    updates = observe_scored(
        session=session,
        post_ids=[p.post_id for p in posts],
        embeddings={p.post_id: p.embedding for p in posts},
        enqueue=runner,
        settings=settings,
        now=T0 + timedelta(minutes=1),
    )
    assert [u.kind for u in updates] == ["opened"]
    assert list(runner.pending) == []
    session.commit()
    assert sorted(runner.pending) == [("send_surge_alert", (a,)) for a in updates[0].alert_ids]


def test_a_history_import_opens_no_surge(session, settings):
    from socialcare.flows.surge import observe_scored

    account = make_account(session, "SpotifyCares", config={"instant": True})
    quiet_history(session, account)
    texts = LOGIN * 3
    posts = observed(
        session, account, texts, [T0 + timedelta(seconds=i) for i in range(len(texts))]
    )
    updates = observe_scored(
        session=session,
        post_ids=[p.post_id for p in posts],
        embeddings={p.post_id: p.embedding for p in posts},
        enqueue=InlineRunner(settings),
        settings=settings,
        now=T0 + timedelta(minutes=1),
    )
    assert updates == []
    assert session.execute(select(func.count()).select_from(Surge)).scalar_one() == 0


def test_an_outage_a_day_after_another_opens_its_own_surge(session, settings):
    import random

    from bench.surge_bursts import burst_texts

    account = make_account(session, "SpotifyCares")
    quiet_history(session, account)
    first = observed(session, account, LOGIN * 3, [T0 + timedelta(seconds=i) for i in range(18)])
    observe(session=session, posts=first, settings=settings, now=T0 + timedelta(minutes=1))
    next_day = T0 + timedelta(days=1)
    texts = burst_texts("offline", 18, random.Random(3))
    second = observed(session, account, texts, [next_day + timedelta(seconds=i) for i in range(18)])
    updates = observe(
        session=session, posts=second, settings=settings, now=next_day + timedelta(minutes=1)
    )
    assert [u.kind for u in updates] == ["opened"]
    surges = session.execute(select(Surge).order_by(Surge.id)).scalars().all()
    assert [s.status for s in surges] == ["open", "open"]
    assert surges[1].started_at == next_day


def test_without_the_scorers_embeddings_the_shared_encoder_makes_them(session, settings):
    from socialcare.flows.surge import observe_scored

    account = make_account(session, "SpotifyCares")
    posts = observed(session, account, LOGIN, [T0] * len(LOGIN))
    observe_scored(
        session=session,
        post_ids=[p.post_id for p in posts],
        enqueue=InlineRunner(settings),
        settings=settings,
        now=T0,
    )
    sizes = session.execute(select(SurgeCluster.size)).scalars().all()
    assert sizes == [len(LOGIN)]


def test_the_score_step_hands_surge_detection_the_embeddings_of_its_own_pass(
    session, settings, monkeypatch
):
    from socialcare import flows
    from socialcare.posts.models import STAGE_INGESTED

    def second_pass(**_: object) -> None:
        raise AssertionError("the shared encoder ran a second pass")

    monkeypatch.setattr("socialcare.flows.surge.embeddings_of", second_pass)
    account = make_account(session, "SpotifyCares")
    ids = [
        make_post(session, account, text, created_at=T0, stage=STAGE_INGESTED).id for text in LOGIN
    ]
    session.commit()
    scored = flows.score_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    assert scored == len(LOGIN)
    session.expire_all()
    sizes = session.execute(select(SurgeCluster.size)).scalars().all()
    assert sum(sizes) == len(LOGIN)  # every scored post joined a cluster, from the same pass
