"""Routing in batches: one transaction per batch, one open case per customer under concurrent
workers, and a batch that loses a race tried again rather than losing posts (both databases)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from socialcare.cases.models import OPEN_STATUSES, Case, Event
from socialcare.db import session_scope
from socialcare.flows import InlineRunner, pipeline, route_posts
from socialcare.posts.models import STAGE_INGESTED, STAGE_ROUTED, STAGE_SCORED, Post
from socialcare.routing import locks
from tests.factories import T0, make_account, make_post, make_score

CUSTOMERS = 12
POSTS_EACH = 4
PRIORITIES = ("P4", "P3", "P2", "P3")


def _scene(settings: Any) -> tuple[list[int], dict[str, list[int]]]:
    """CUSTOMERS customers with POSTS_EACH scored posts each, interleaved in time, and a brand
    reply (not routed yet) to every customer's second post. Returns the ids of every post to
    route (customers' and brand's) and each customer's post ids."""
    ids: list[int] = []
    by_customer: dict[str, list[int]] = {}
    with session_scope(settings) as s:
        account = make_account(s)
        for k in range(POSTS_EACH):
            for c in range(CUSTOMERS):
                at = T0 + timedelta(minutes=10 * k, seconds=c)
                post = make_post(
                    s, account, f"post {k} of {c}", created_at=at, author_handle=f"cust{c}"
                )
                post.stage = STAGE_SCORED
                make_score(s, post, priority=PRIORITIES[k], urgency=0.1 * (k + 1))
                by_customer.setdefault(post.author_external_id, []).append(post.id)
                ids.append(post.id)
                if k == 1:
                    reply = make_post(
                        s,
                        account,
                        "sorry, we are on it",
                        is_brand=True,
                        in_reply_to=post,
                        created_at=at + timedelta(minutes=3),
                        stage=STAGE_INGESTED,
                    )
                    ids.append(reply.id)
    return ids, by_customer


@pytest.fixture
def commits(engine: Any) -> Iterator[list[int]]:
    """One entry per transaction committed on the test database."""
    seen: list[int] = []

    def count(conn: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", count)
    yield seen
    event.remove(engine, "commit", count)


def _check_routed(settings: Any, by_customer: dict[str, list[int]]) -> None:
    """Every post routed once into its customer's single open case, rooted at their first post,
    at their most urgent priority, answered by the brand's reply to their second post."""
    with session_scope(settings) as s:
        posts = list(s.execute(select(Post)).scalars())
        assert all(p.stage == STAGE_ROUTED for p in posts)
        open_per_customer = Counter(
            s.execute(select(Case.customer_external_id).where(Case.status.in_(OPEN_STATUSES)))
            .scalars()
            .all()
        )
        assert open_per_customer == Counter(dict.fromkeys(by_customer, 1))
        routings = Counter(
            s.execute(select(Event.post_id).where(Event.kind.in_(("case_opened", "post_attached"))))
            .scalars()
            .all()
        )
        customer_ids = [i for ids in by_customer.values() for i in ids]
        assert routings == Counter(customer_ids)  # each customer post routed exactly once
        by_id = {p.id: p for p in posts}
        for customer, ids in by_customer.items():
            case = s.execute(select(Case).where(Case.customer_external_id == customer)).scalar_one()
            assert {by_id[i].case_id for i in ids} == {case.id}
            first = min((by_id[i] for i in ids), key=lambda p: p.created_at)
            assert (case.root_post_id, case.opened_at) == (first.id, first.created_at)
            assert case.priority == "P2"
            second = sorted((by_id[i] for i in ids), key=lambda p: p.created_at)[1]
            assert case.first_response_at == second.created_at + timedelta(minutes=3)
            assert case.status == "queued"  # later posts came after the reply


def test_a_batch_is_routed_in_one_transaction(engine, settings, commits):
    ids, by_customer = _scene(settings)
    commits.clear()
    touched = route_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    assert len(commits) == 1
    assert touched == CUSTOMERS * POSTS_EACH
    _check_routed(settings, by_customer)


def test_posts_already_routed_are_left_alone_when_their_batch_comes_again(engine, settings):
    ids, by_customer = _scene(settings)
    route_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    assert route_posts(ids, enqueue=InlineRunner(settings), settings=settings) == 0
    _check_routed(settings, by_customer)


def test_concurrent_batches_of_overlapping_customers_keep_one_open_case_each(
    engine, settings, monkeypatch, caplog
):
    """Four workers route overlapping sets of posts (every post by two of them) in small
    batches, each set in its own order: no deadlock, no second case, no post routed twice."""
    ids, by_customer = _scene(settings)
    monkeypatch.setattr(pipeline, "ROUTE_BATCH", 7)
    workers = 4
    shares = [
        [p for n, p in enumerate(ids) if n % workers in (w, (w + 1) % workers)]
        for w in range(workers)
    ]
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(share: list[int]) -> None:
        barrier.wait()
        try:
            route_posts(share, enqueue=InlineRunner(settings), settings=settings)
        except BaseException as exc:  # reported below
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="socialcare.flows.pipeline")
    threads = [threading.Thread(target=work, args=(share[::-1],)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert [r.getMessage() for r in caplog.records if "lost a race" in r.getMessage()] == []
    _check_routed(settings, by_customer)


def test_a_batch_that_keeps_deadlocking_is_routed_post_by_post(
    engine, settings, monkeypatch, caplog, commits
):
    ids, by_customer = _scene(settings)
    real = pipeline.route_posts_service

    class Deadlock(Exception):
        sqlstate = "40P01"

    def deadlocking(*, session, post_ids, settings):
        if len(post_ids) > 1:
            real(session=session, post_ids=post_ids, settings=settings)  # then rolled back
            raise OperationalError("routing", {}, Deadlock("deadlock detected"))
        return real(session=session, post_ids=post_ids, settings=settings)

    monkeypatch.setattr(pipeline, "route_posts_service", deadlocking)
    commits.clear()
    with caplog.at_level(logging.WARNING, logger="socialcare.flows.pipeline"):
        route_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    lost = [r for r in caplog.records if "lost a race" in r.getMessage()]
    assert len(lost) == pipeline.BATCH_ATTEMPTS
    assert len(commits) == len(ids)  # one transaction per post after the batch gave up
    _check_routed(settings, by_customer)


def test_an_error_that_is_no_race_is_raised_at_once(engine, settings, monkeypatch):
    ids, _ = _scene(settings)

    def broken(*, session, post_ids, settings):
        raise OperationalError("routing", {}, Exception("server closed the connection"))

    monkeypatch.setattr(pipeline, "route_posts_service", broken)
    with pytest.raises(OperationalError):
        route_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    with session_scope(settings) as s:
        waiting = select(func.count()).where(Post.stage == STAGE_SCORED)
        assert s.execute(waiting).scalar_one() == CUSTOMERS * POSTS_EACH  # left for a retry


def test_a_case_opened_behind_the_batchs_back_is_joined_on_the_retry(
    engine, settings, db_url, monkeypatch, caplog
):
    """A case for a new customer committed by another writer between the batch's look-up and
    its insert (only possible on PostgreSQL: SQLite's batch holds the database's write lock)
    fails the batch on the unique index; the retry finds that case and joins it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock makes this interleaving impossible")
    ids, by_customer = _scene(settings)
    real_lock_cases = locks.lock_cases
    intruded: list[int] = []

    def lock_then_intrude(session, keys, case_ids):
        found = real_lock_cases(session, keys, case_ids)
        if not intruded:
            with session_scope(settings) as other:
                first = min(by_customer["u-cust0"])
                post = other.get(Post, first)
                assert post is not None
                case = Case(
                    account_id=post.account_id,
                    platform=post.platform,
                    customer_external_id=post.author_external_id,
                    customer_handle=post.author_handle,
                    root_post_id=post.id,
                    status="queued",
                    priority="P4",
                    opened_at=post.created_at,
                    detected_at=post.observed_at,
                )
                other.add(case)
                other.flush()
                intruded.append(case.id)
        return found

    monkeypatch.setattr("socialcare.routing.route.lock_cases", lock_then_intrude)
    with caplog.at_level(logging.WARNING, logger="socialcare.flows.pipeline"):
        route_posts(ids, enqueue=InlineRunner(settings), settings=settings)
    lost = [r.getMessage() for r in caplog.records if "lost a race" in r.getMessage()]
    assert len(lost) == 1 and lost[0].endswith("UniqueViolation")
    with session_scope(settings) as s:
        joined = select(Post.case_id).where(Post.id.in_(by_customer["u-cust0"]))
        assert set(s.execute(joined).scalars()) == {intruded[0]}
    _check_routed(settings, by_customer)
