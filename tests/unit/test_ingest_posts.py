"""ingest_posts on SQLite and PostgreSQL (whose page goes in as one JSON parameter): every field
stored as given, unique on (platform, post id), duplicates counted and refreshed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.posts.models import STAGE_IGNORED, STAGE_INGESTED, Post
from socialcare.posts.service import ensure_account, ingest_posts
from socialcare.sources.base import IncomingPost

AT = datetime(2026, 11, 30, 23, 59, 58, 123456, tzinfo=UTC)


def _post(external_id: str, **kw: object) -> IncomingPost:
    fields: dict = {
        "platform": "x",
        "external_id": external_id,
        "author_external_id": "42",
        "author_handle": "customer",
        "text": "my order never came",
        "created_at": AT,
    }
    fields.update(kw)
    return IncomingPost(**fields)


def test_every_field_is_stored_as_given(session: Session) -> None:
    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    raw = {
        "id": "1001",
        "text": 'émoji 🙂 and "quotes" \\ back\\slash\n\ttabs',
        "entities": {"mentions": [{"start": 0, "end": 9, "username": "AcmeCare"}]},
        "public_metrics": {"like_count": 3, "big": 2**62},
        "flag": None,
    }
    post = _post(
        "1001",
        text=raw["text"],
        author_followers=1234,
        author_verified=True,
        lang="en",
        in_reply_to_external_id="999",
        conversation_external_id="998",
        quoted_external_id="997",
        metrics={"like_count": 3, "retweet_count": 1},
        raw=raw,
    )
    observed = AT + timedelta(minutes=5)
    result = ingest_posts(
        session=session,
        account=account,
        posts=[post],
        observed_at=observed,
        read_on=date(2026, 12, 1),
        grace_seconds=30,
    )
    row = session.execute(select(Post).where(Post.external_id == "1001")).scalar_one()
    assert result.to_score == [row.id] and result.inserted == ["1001"]
    assert row.account_id == account.id and row.platform == "x"
    assert row.text == raw["text"] and row.raw == raw and row.lang == "en"
    assert row.created_at == AT and row.observed_at == observed
    assert row.metrics_observed_at == observed and row.read_on == date(2026, 12, 1)
    assert row.author_followers == 1234 and row.author_verified is True
    assert (row.in_reply_to_external_id, row.conversation_external_id) == ("999", "998")
    assert row.quoted_external_id == "997" and row.metrics == {"like_count": 3, "retweet_count": 1}
    assert row.stage == STAGE_INGESTED and row.attempts == 0 and row.case_id is None
    assert row.next_step_at is not None and row.next_step_at - row.ingested_at == timedelta(
        seconds=30
    )
    assert row.engagement_per_hour is not None and row.engagement_per_hour > 0


def test_absent_fields_are_null_and_brand_broadcasts_are_not_work(session: Session) -> None:
    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    broadcast = _post("2001", is_brand=True, author_handle="AcmeCare")
    reply = _post("2002", is_brand=True, author_handle="AcmeCare", in_reply_to_external_id="1")
    result = ingest_posts(
        session=session, account=account, posts=[broadcast, reply], observed_at=None
    )
    rows = {p.external_id: p for p in session.execute(select(Post).order_by(Post.id)).scalars()}
    assert result.ignored == 1 and result.to_link == [rows["2002"].id] and result.to_score == []
    assert rows["2001"].stage == STAGE_IGNORED and rows["2001"].next_step_at is None
    assert rows["2001"].read_on is None and rows["2001"].lang is None
    assert rows["2001"].observed_at == AT  # a backfill: seen at its public time


def test_a_post_twice_in_a_page_or_again_later_is_stored_once_and_refreshed(
    session: Session,
) -> None:
    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    first = _post("3001", author_followers=10)
    result = ingest_posts(session=session, account=account, posts=[first, first], observed_at=AT)
    assert len(result.to_score) == 1 and result.duplicates == 1
    again = _post("3001", author_followers=50_000)
    later = ingest_posts(session=session, account=account, posts=[again], observed_at=AT)
    assert later.to_score == [] and later.duplicates == 1 and later.refreshed == result.to_score
    count = session.execute(select(func.count()).select_from(Post)).scalar_one()
    followers = session.execute(select(Post.author_followers)).scalar_one()
    assert count == 1 and followers == 50_000


def test_a_post_naming_another_brand_goes_to_that_brands_account(session: Session) -> None:
    feed = ensure_account(session, platform="x", handle="feed", source="replay")
    ingest_posts(
        session=session,
        account=feed,
        posts=[_post("4001", brand_handle="OtherBrand"), _post("4002")],
        observed_at=AT,
    )
    owners = dict(session.execute(select(Post.external_id, Post.account_id)).all())
    other = ensure_account(session, platform="x", handle="OtherBrand", source="replay")
    assert owners == {"4001": other.id, "4002": feed.id}


def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(session: Session) -> None:
    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    odd = _post(
        "5001",
        text="refund\x00 please \ud83d now",
        author_handle="nul\x00name",
        raw={"text": "refund\x00 please \ud83d now", "k\x00": ["\udfff", 1]},
    )
    plain = _post("5002", text="a literal \\u0000 stays as typed")
    result = ingest_posts(session=session, account=account, posts=[odd, plain], observed_at=AT)
    assert len(result.to_score) == 2
    rows = {p.external_id: p for p in session.execute(select(Post)).scalars()}
    assert rows["5001"].text == "refund\ufffd please \ufffd now"
    assert rows["5001"].author_handle == "nul\ufffdname"
    assert rows["5001"].raw == {"text": "refund\ufffd please \ufffd now", "k\ufffd": ["\ufffd", 1]}
    assert rows["5002"].text == "a literal \\u0000 stays as typed"


def test_a_post_row_fills_exactly_the_columns_the_postgresql_statements_name() -> None:
    from socialcare.posts.service import POST_ROW_COLUMNS, _post_row

    row = _post_row(_post("1"), 1, AT, AT, 30, date(2026, 12, 1))
    assert tuple(row) == POST_ROW_COLUMNS


def test_a_naive_time_is_refused_before_anything_is_stored(session: Session) -> None:
    import pytest

    account = ensure_account(session, platform="x", handle="AcmeCare", source="x")
    naive = _post("2001", created_at=AT.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive datetime"):
        ingest_posts(session=session, account=account, posts=[naive], observed_at=AT)
    assert session.execute(select(func.count()).select_from(Post)).scalar_one() == 0
