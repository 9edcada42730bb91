"""The X source inside the real flows: tweepy does the HTTP, mocked only at the network edge."""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import func, select

from socialcare import config, flows
from socialcare.cases.models import Case, Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.work import claim_next, get_agent
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.flows.seed import add_agent, ensure_x_account
from socialcare.posts.models import Account, Post
from socialcare.sources import registry
from tests.sources.x_payloads import (
    API,
    BRAND,
    BRAND_HANDLE,
    BRAND_ID,
    mentions_url,
    page,
    rate_headers,
    timeline_url,
    tweet,
    user,
)

CUSTOMER = user("2001", "angry_ann", followers=120_000, verified=True)
OTHER = user("2002", "quiet_quinn", followers=15)


@pytest.fixture
def x_settings(settings, monkeypatch, engine):
    for key, value in {
        "X_BEARER_TOKEN": "bearer",
        "X_API_KEY": "k",
        "X_API_SECRET": "s",
        "X_ACCESS_TOKEN": "t",
        "X_ACCESS_TOKEN_SECRET": "ts",
        "X_BRAND_HANDLE": BRAND_HANDLE,
    }.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    registry._cache.clear()
    s = config.get_settings()
    with session_scope(s) as session:
        account = ensure_x_account(session=session, settings=s)
        account.external_id = BRAND_ID
        add_agent(session=session, handle="ana", display_name="Ana", role="agent", teams=None)
    yield s
    registry._cache.clear()


def _mentions() -> dict:
    return page(
        [
            tweet(
                "5003",
                "2002",
                "@AcmeCare how do I change my plan?",
                created_at="2024-05-01T12:03:00.000Z",
            ),
            tweet(
                "5002",
                BRAND_ID,
                "RT @angry_ann: your app is down",
                retweeted="5001",
                created_at="2024-05-01T12:02:00.000Z",
            ),
            tweet(
                "5001",
                "2001",
                "@AcmeCare your app is down &amp; I can't log in!!",
                created_at="2024-05-01T12:00:00.000Z",
            ),
        ],
        [CUSTOMER, OTHER, BRAND],
    )


def _poll(s) -> int:
    runner = InlineRunner(s)
    with session_scope(s) as session:
        account_id = session.execute(select(Account.id).where(Account.platform == "x")).scalar_one()
    stored = flows.poll_account(account_id, enqueue=runner, settings=s)
    runner.drain()
    return stored


@responses.activate
def test_mentions_become_cases_and_a_native_reply_counts_as_first_response(x_settings, model):
    responses.get(mentions_url(), json=_mentions(), headers=rate_headers())
    responses.get(
        timeline_url(),
        json=page(
            [
                tweet(
                    "5004",
                    BRAND_ID,
                    "@angry_ann sorry! fixing it now",
                    replied_to="5001",
                    conversation_id="5001",
                    created_at="2024-05-01T12:10:00.000Z",
                ),
                tweet("5000", BRAND_ID, "Big launch today!", created_at="2024-05-01T11:00:00.000Z"),
            ],
            [BRAND],
        ),
        headers=rate_headers(),
    )
    assert _poll(x_settings) == 3
    with session_scope(x_settings) as s:
        cases = s.execute(select(Case).order_by(Case.opened_at)).scalars().all()
        assert [c.customer_handle for c in cases] == ["angry_ann", "quiet_quinn"]
        ann = cases[0]
        assert ann.first_response_via == "platform"
        assert (ann.first_response_at - ann.opened_at).total_seconds() == 600
        assert ann.status == "responded"
        assert cases[1].first_response_at is None
        post = s.execute(select(Post).where(Post.external_id == "5001")).scalar_one()
        assert post.text == "@AcmeCare your app is down & I can't log in!!"
        assert post.author_followers == 120_000 and post.author_verified
        ignored = s.execute(select(Post.stage).where(Post.external_id.in_(["5002", "5000"])))
        assert set(ignored.scalars()) == {"ignored"}
        account = s.execute(select(Account).where(Account.platform == "x")).scalar_one()
        assert account.cursors["mentions_since_id"] == "5003"
        assert account.cursors["timeline_since_id"] == "5004"


@responses.activate
def test_polling_the_same_mentions_again_duplicates_nothing(x_settings, model):
    for _ in range(2):
        responses.get(mentions_url(), json=_mentions(), headers=rate_headers())
        responses.get(timeline_url(), json=page([]), headers=rate_headers())
    _poll(x_settings)
    with session_scope(x_settings) as s:
        s.execute(Account.__table__.update().values(cursors={}))
    assert _poll(x_settings) == 0
    with session_scope(x_settings) as s:
        assert s.execute(select(func.count()).select_from(Post)).scalar_one() == 3
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 2


@responses.activate
def test_a_429_postpones_the_account_until_the_reset_without_losing_the_cursor(x_settings, model):
    responses.get(
        mentions_url(),
        json={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
        status=429,
        headers=rate_headers(remaining=0, reset=1_900_000_000),
    )
    assert _poll(x_settings) == 0
    with session_scope(x_settings) as s:
        account = s.execute(select(Account).where(Account.platform == "x")).scalar_one()
        assert int(account.next_poll_at.timestamp()) == 1_900_000_000
        assert not account.failing
        assert "429" in (account.last_error or "")
        assert "mentions_since_id" not in account.cursors


@responses.activate
def test_an_agent_reply_goes_out_through_create_tweet_exactly_once(x_settings, model):
    responses.get(mentions_url(), json=_mentions(), headers=rate_headers())
    responses.get(timeline_url(), json=page([]), headers=rate_headers())
    _poll(x_settings)
    responses.post(
        f"{API}/tweets",
        json={
            "data": {
                "id": "6001",
                "text": "@quiet_quinn Settings > Plan",
                "edit_history_tweet_ids": ["6001"],
            }
        },
        status=201,
    )
    with session_scope(x_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply_id = create_reply(
            session=s, case_id=case.id, agent=agent, text="@quiet_quinn Settings > Plan"
        ).id
        case_id = case.id
    runner = InlineRunner(x_settings)
    assert flows.send_reply(reply_id, enqueue=runner, settings=x_settings) == "sent"
    assert flows.send_reply(reply_id, enqueue=runner, settings=x_settings) == "sent"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 1
    body = json.loads(posts[0].request.body)
    with session_scope(x_settings) as s:
        root = s.get(Post, s.get(Case, case_id).root_post_id)
        assert body["reply"]["in_reply_to_tweet_id"] == root.external_id == "5001"
    with session_scope(x_settings) as s:
        reply = s.get(Reply, reply_id)
        assert reply.state == "sent" and reply.external_id == "6001"
        case = s.get(Case, case_id)
        assert case.first_response_via == "socialcare" and case.status == "responded"


@responses.activate
def test_a_reply_refused_with_403_fails_at_once_with_the_reason_and_is_not_retried(
    x_settings, model
):
    responses.get(mentions_url(), json=_mentions(), headers=rate_headers())
    responses.get(timeline_url(), json=page([]), headers=rate_headers())
    _poll(x_settings)
    detail = "You attempted to reply to a Tweet that is deleted or not visible to you."
    responses.post(
        f"{API}/tweets",
        json={"title": "Forbidden", "detail": detail, "type": "about:blank", "status": 403},
        status=403,
    )
    with session_scope(x_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply_id = create_reply(session=s, case_id=case.id, agent=agent, text="Sorry!").id
        case_id = case.id
    runner = InlineRunner(x_settings)
    assert flows.send_reply(reply_id, enqueue=runner, settings=x_settings) == "failed"
    runner.drain()
    # Redelivered or swept, a failed reply is not sent again: only a person's retry does that.
    assert flows.send_reply(reply_id, enqueue=runner, settings=x_settings) == "failed"
    assert flows.sweep(enqueue=runner, settings=x_settings)["replies"] == 0
    runner.drain()
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1
    with session_scope(x_settings) as s:
        reply = s.get(Reply, reply_id)
        assert reply.state == "failed" and reply.attempts == 1
        assert "HTTP 403" in reply.last_error and "deleted or not visible" in reply.last_error
        case = s.get(Case, case_id)
        assert case.first_response_at is None and case.status != "responded"
