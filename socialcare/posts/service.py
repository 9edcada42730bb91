"""Storing what sources deliver: accounts, insert-or-ignore of posts, cursors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import TextClause, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from socialcare.db import insert_for, utcnow
from socialcare.posts.language import detect_language, detect_languages
from socialcare.posts.models import (
    STAGE_IGNORED,
    STAGE_INGESTED,
    Account,
    Post,
)
from socialcare.posts.storable import clean_json, clean_text
from socialcare.scoring.urgency import engagement_total
from socialcare.sources.base import AccountRef, IncomingPost

MAX_TEXT = 20_000


@dataclass
class IngestResult:
    """Ids of the posts this call inserted, by the next step they need."""

    to_score: list[int] = field(default_factory=list)
    to_link: list[int] = field(default_factory=list)
    ignored: int = 0
    duplicates: int = 0
    # Posts stored before and seen again with more engagement: their urgency wants refreshing.
    refreshed: list[int] = field(default_factory=list)
    # External ids of the posts this call inserted (with read_on already set, when it was given).
    inserted: list[str] = field(default_factory=list)


def account_ref(account: Account) -> AccountRef:
    return AccountRef(
        id=account.id,
        platform=account.platform,
        handle=account.handle,
        external_id=account.external_id,
        config=dict(account.config or {}),
    )


def ensure_account(
    session: Session,
    *,
    platform: str,
    handle: str,
    source: str,
    polled: bool = False,
    config: dict[str, Any] | None = None,
) -> Account:
    """The account for (platform, handle), created if missing (safe when workers race)."""
    stmt = (
        insert_for(session)(Account)
        .values(
            platform=platform,
            handle=handle,
            source=source,
            config={**(config or {}), "polled": polled},
            cursors={},
            active=True,
            failing=False,
            poll_attempts=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["platform", "handle"])
    )
    session.execute(stmt)
    return session.execute(
        select(Account).where(Account.platform == platform, Account.handle == handle)
    ).scalar_one()


def _stage(p: IncomingPost) -> str:
    """Customer posts and brand replies are work; retweets and brand broadcasts are not."""
    if p.is_retweet:
        return STAGE_IGNORED
    if p.is_brand and not p.in_reply_to_external_id:
        return STAGE_IGNORED
    return STAGE_INGESTED


# A first sight of a post counts its engagement as gained over at least this long, so a post seen
# seconds after it went public does not look viral from a single like.
MIN_FIRST_SIGHT_HOURS = 0.25
# Between two observations, at least this long (two polls of one batch can be seconds apart).
MIN_GROWTH_HOURS = 1 / 60


def first_sight_rate(metrics: dict[str, Any], *, created_at: datetime, seen: datetime) -> float:
    """Interactions an hour since the post became public, as first seen."""
    hours = max((seen - created_at).total_seconds() / 3600, MIN_FIRST_SIGHT_HOURS)
    return engagement_total(metrics) / hours


def _refresh(session: Session, p: IncomingPost, seen: datetime) -> int | None:
    """A post seen again: its author's reach and its counts are updated; returns its id when
    either changed (new counts also store the interactions an hour between the two sightings)."""
    row = session.execute(
        select(
            Post.id,
            Post.metrics,
            Post.observed_at,
            Post.metrics_observed_at,
            Post.author_followers,
            Post.author_verified,
        ).where(Post.platform == p.platform, Post.external_id == p.external_id)
    ).one_or_none()
    if row is None:
        return None
    values: dict[str, Any] = {}
    if p.author_followers is not None and p.author_followers != row.author_followers:
        values["author_followers"] = p.author_followers
    if p.author_verified and not row.author_verified:
        values["author_verified"] = True
    last_seen = row.metrics_observed_at or row.observed_at
    grew = bool(p.metrics) and p.metrics != row.metrics and seen > last_seen
    if grew:
        hours = max((seen - last_seen).total_seconds() / 3600, MIN_GROWTH_HOURS)
        gained = max(0.0, engagement_total(p.metrics) - engagement_total(row.metrics or {}))
        values.update(
            metrics=p.metrics, engagement_per_hour=gained / hours, metrics_observed_at=seen
        )
    if values:
        session.execute(update(Post).where(Post.id == row.id).values(**values))
    return int(row.id) if values else None


def ingest_posts(
    *,
    session: Session,
    account: Account,
    posts: Sequence[IncomingPost],
    observed_at: datetime | None,
    grace_seconds: float = 120.0,
    read_on: date | None = None,
    insert: RowInsert | None = None,
) -> IngestResult:
    """Insert posts not stored yet (unique on platform and id); return the new ones' ids.

    observed_at is when the source saw them (None: at their public time, as in a backfill).
    Posts naming another brand_handle go to that brand's account on the same platform. The
    posts go in with one INSERT ... ON CONFLICT DO NOTHING (sent as multi-row INSERTs); those
    already stored (or twice in posts) are refreshed one by one. read_on (a UTC day) marks the
    inserted posts as read that day, for the platform's billing (see count_reads). insert, when
    given, stores the rows instead of the INSERT (a statement that writes more with them, such
    as a poll's page write); it is called even with no rows.
    """
    result = IngestResult()
    now = utcnow()
    brand_accounts: dict[str, Account] = {account.handle: account}
    rows: list[dict[str, Any]] = []
    for p in posts:
        target = account
        if p.brand_handle and p.brand_handle != account.handle:
            target = brand_accounts.get(p.brand_handle) or ensure_account(
                session,
                platform=account.platform,
                handle=p.brand_handle,
                source=account.source,
                config={"feed": account.id},
            )
            brand_accounts[p.brand_handle] = target
        rows.append(_post_row(p, target.id, observed_at, now, grace_seconds, read_on))
    inserted: dict[tuple[str, str], int] = {}
    if insert is not None or rows:
        for hit in (insert or _insert_rows)(session, rows):
            inserted[(hit.platform, hit.external_id)] = int(hit.id)
    for p, row in zip(posts, rows, strict=True):
        stage = row["stage"]
        new_id = inserted.pop((p.platform, p.external_id), None)
        if new_id is None:
            result.duplicates += 1
            refreshed = _refresh(session, p, observed_at or p.created_at)
            if refreshed is not None and stage == STAGE_INGESTED and not p.is_brand:
                result.refreshed.append(refreshed)
            continue
        result.inserted.append(p.external_id)
        if stage == STAGE_IGNORED:
            result.ignored += 1
        elif p.is_brand:
            result.to_link.append(new_id)
        else:
            result.to_score.append(new_id)
    return result


# Stores a page's post rows (dicts of POST_ROW_COLUMNS); returns the inserted ones' id, platform
# and external_id.
RowInsert = Callable[[Session, list[dict[str, Any]]], Iterable[Any]]
# The columns _post_row fills, in its order.
POST_ROW_COLUMNS = (
    "platform",
    "external_id",
    "account_id",
    "is_brand",
    "is_retweet",
    "author_external_id",
    "author_handle",
    "author_followers",
    "author_verified",
    "text",
    "lang",
    "language",
    "created_at",
    "observed_at",
    "ingested_at",
    "in_reply_to_external_id",
    "conversation_external_id",
    "quoted_external_id",
    "metrics",
    "engagement_per_hour",
    "metrics_observed_at",
    "raw",
    "stage",
    "next_step_at",
    "attempts",
    "read_on",
)


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> Any:
    """Insert rows into posts, skipping those already stored; the inserted ones' id, platform
    and external_id come back."""
    rows, payload = encoded_rows(rows)
    if session.get_bind().dialect.name == "postgresql":
        # The page travels as one JSON parameter that the server unpacks: the statement is short
        # and the same for every page, where a multi-row INSERT of a page has thousands of
        # placeholders for the driver to rewrite on every call.
        return session.execute(_pg_insert_from_json(), {"rows": payload})
    # One statement, compiled once and cached; executed with many parameter sets, the driver
    # sends it as multi-row INSERTs ("insertmanyvalues"), RETURNING what was inserted. On the
    # table, not the ORM entity: the ORM's bulk insert splits rows by which of their values are
    # NULL, into many small statements.
    table = Post.__table__
    stmt = (
        insert_for(session)(table)
        .on_conflict_do_nothing(index_elements=["platform", "external_id"])
        .returning(table.c.id, table.c.platform, table.c.external_id)
    )
    return session.execute(stmt, rows)


# Aware datetimes and dates are written by orjson itself (ISO 8601, with their UTC offset);
# _post_row refuses naive ones before they get here.
_ORJSON = orjson.OPT_NON_STR_KEYS


def encoded_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The rows, and the rows as JSON text; cleaned first when a string holds NUL or a lone
    surrogate (which no database stores: one such post would fail its page on every poll)."""
    try:
        payload = orjson.dumps(rows, default=_json_value, option=_ORJSON)
        if b"\\u0000" not in payload:
            return rows, payload.decode()
    except orjson.JSONEncodeError:  # a lone surrogate (a second failure is a real error)
        pass
    rows = [_storable(row) for row in rows]
    return rows, orjson.dumps(rows, default=_json_value, option=_ORJSON).decode()


def _storable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: clean_text(value)
        if isinstance(value, str)
        else clean_json(value)
        if isinstance(value, dict)
        else value
        for key, value in row.items()
    }


def _json_value(value: object) -> str:
    raise TypeError(f"{type(value).__name__} cannot be stored in a post row")


@functools.cache
def pg_insert_posts_sql() -> str:
    """PostgreSQL: INSERT ... SELECT FROM jsonb_to_recordset(:rows) of POST_ROW_COLUMNS, each
    typed as the posts table declares it, skipping posts already stored, RETURNING the inserted
    ones' id, platform and external_id (alone, or inside a poll's page write)."""
    dialect = postgresql.dialect()
    columns = [Post.__table__.c[name] for name in POST_ROW_COLUMNS]
    listed = ", ".join(c.name for c in columns)
    typed = ", ".join(f"{c.name} {c.type.compile(dialect)}" for c in columns)
    return (
        f"INSERT INTO posts ({listed}) SELECT {listed} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({typed}) "
        "ON CONFLICT (platform, external_id) DO NOTHING "
        "RETURNING id, platform, external_id"
    )


@functools.cache
def _pg_insert_from_json() -> TextClause:
    return text(pg_insert_posts_sql())


def _post_row(
    p: IncomingPost,
    account_id: int,
    observed_at: datetime | None,
    now: datetime,
    grace_seconds: float,
    read_on: date | None,
) -> dict[str, Any]:
    if p.created_at.tzinfo is None or (observed_at is not None and observed_at.tzinfo is None):
        raise ValueError("naive datetime given; socialcare stores aware UTC datetimes only")
    stage = _stage(p)
    seen = max(observed_at or p.created_at, p.created_at)
    return {
        "platform": p.platform,
        "external_id": p.external_id,
        "account_id": account_id,
        "is_brand": p.is_brand,
        "is_retweet": p.is_retweet,
        "author_external_id": p.author_external_id,
        "author_handle": p.author_handle[:64],
        "author_followers": p.author_followers,
        "author_verified": p.author_verified,
        "text": p.text[:MAX_TEXT],
        "lang": p.lang,
        "language": None if p.is_brand else detect_language(p.text),
        "created_at": p.created_at,
        "observed_at": seen,
        "ingested_at": now,
        "in_reply_to_external_id": p.in_reply_to_external_id,
        "conversation_external_id": p.conversation_external_id,
        "quoted_external_id": p.quoted_external_id,
        "metrics": p.metrics,
        "engagement_per_hour": first_sight_rate(p.metrics, created_at=p.created_at, seen=seen),
        "metrics_observed_at": seen,
        "raw": p.raw,
        "stage": stage,
        "next_step_at": now + timedelta(seconds=grace_seconds) if stage == STAGE_INGESTED else None,
        "attempts": 0,
        "read_on": read_on,
    }


def store_cursors(*, session: Session, account: Account, cursors: dict[str, Any]) -> None:
    """Advance the account's cursors (in the same transaction as the posts they cover)."""
    account.cursors = dict(cursors)
    account.last_polled_at = utcnow()
    account.last_error = None
    account.failing = False
    account.poll_attempts = 0


def fill_languages(
    *, session: Session, batch: int = 1000, below: int | None = None
) -> tuple[int, int | None]:
    """Detect the language of up to batch customer posts stored without one (those stored
    before languages were detected), newest first from below the id given; returns how many,
    and the lowest id among them (where the next batch starts, None when there were none)."""
    stmt = select(Post.id, Post.text).where(Post.language.is_(None), Post.is_brand.is_(False))
    if below is not None:
        stmt = stmt.where(Post.id < below)
    rows = session.execute(stmt.order_by(Post.id.desc()).limit(batch)).all()
    if not rows:
        return 0, None
    codes = detect_languages(row.text for row in rows)
    session.execute(
        update(Post),
        [{"id": row.id, "language": code} for row, code in zip(rows, codes, strict=True)],
    )
    return len(rows), int(rows[-1].id)
