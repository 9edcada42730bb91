"""The locks a routing batch takes before it changes anything, each kind in one statement and in
one global order, so that concurrent batches with overlapping posts or customers wait for each
other instead of deadlocking (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers already)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from sqlalchemy import and_, or_, select, text, tuple_
from sqlalchemy.orm import Session

from socialcare.cases.locks import locked
from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.posts.models import Post


def lock_posts(session: Session, batch: set[int]) -> list[Post]:
    """The batch's posts and the brand replies to its customer posts, locked in id order
    (PostgreSQL sorts before it locks, so the order holds)."""
    answered = select(Post.platform, Post.external_id).where(
        Post.id.in_(batch), Post.is_brand.is_(False)
    )
    stmt = (
        select(Post)
        .where(
            or_(
                Post.id.in_(batch),
                and_(
                    Post.is_brand.is_(True),
                    tuple_(Post.platform, Post.in_reply_to_external_id).in_(answered),
                ),
            )
        )
        .order_by(Post.id)
        .with_for_update(of=Post)
        .execution_options(populate_existing=True)
    )
    return list(session.execute(stmt).scalars())


def lock_customer_keys(session: Session, keys: Sequence[tuple[int, str]]) -> None:
    """PostgreSQL: one transaction-scoped advisory lock per (account, customer), taken in key
    order, so that two batches never both open a case for one customer (the second waits, then
    finds the first's case) and never wait on each other in a cycle."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    pairs = sorted({(account_id, _key_hash(customer)) for account_id, customer in keys})
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(k.a, k.b)) FROM unnest("
            "CAST(:a AS integer[]), CAST(:b AS integer[])) AS k(a, b)"
        ),
        {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]},
    )


def _key_hash(customer: str) -> int:
    """A stable signed 32-bit key for a customer id (a collision only serialises two of them)."""
    value = zlib.crc32(customer.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def lock_cases(
    session: Session, keys: Sequence[tuple[int, str]], case_ids: set[int]
) -> dict[tuple[int, str], Case]:
    """Lock the customers' open cases and the cases the brand replies answer, in (account,
    customer, id) order; returns the open ones by (account, customer)."""
    if not keys and not case_ids:
        return {}
    conditions = []
    if keys:
        customer = tuple_(Case.account_id, Case.customer_external_id)
        conditions.append(and_(Case.status.in_(OPEN_STATUSES), customer.in_(keys)))
    if case_ids:
        conditions.append(Case.id.in_(case_ids))
    stmt = locked(
        select(Case)
        .where(or_(*conditions))
        .order_by(Case.account_id, Case.customer_external_id, Case.id)
    )
    wanted = set(keys)
    return {
        (c.account_id, c.customer_external_id): c
        for c in session.execute(stmt).scalars()
        if c.status in OPEN_STATUSES and (c.account_id, c.customer_external_id) in wanted
    }


def parents_of(session: Session, brands: Sequence[Post]) -> dict[int, Post]:
    """The post each brand reply answers, by the reply's id (those stored)."""
    wanted = {
        (p.platform, p.in_reply_to_external_id or "") for p in brands if p.in_reply_to_external_id
    }
    if not wanted:
        return {}
    found = {
        (p.platform, p.external_id): p
        for p in session.execute(
            select(Post).where(tuple_(Post.platform, Post.external_id).in_(wanted))
        ).scalars()
    }
    return {
        b.id: found[(b.platform, b.in_reply_to_external_id or "")]
        for b in brands
        if (b.platform, b.in_reply_to_external_id or "") in found
    }
