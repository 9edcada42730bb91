"""The Mastodon source inside the real flows, on SQLite and PostgreSQL: Mastodon.py talks over
real HTTP to a local stand-in of the Mastodon API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from socialcare import config, flows
from socialcare.cases import actions
from socialcare.cases.models import Case, Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.work import claim_next, get_agent
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.flows.seed import add_agent
from socialcare.ingest import service as ingestion
from socialcare.ingest.policy import lease_name as poll_lease
from socialcare.leases import Lease
from socialcare.posts.models import Account, Post
from socialcare.posts.service import ensure_account
from socialcare.sources import registry
from socialcare.sources.base import ACCOUNT_WINDOW, RateWindow
from tests.standins.mastodon_api import MastodonStandIn

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api() -> Iterator[MastodonStandIn]:
    standin = MastodonStandIn()
    standin.start()
    yield standin
    standin.stop()
    assert standin.errors == []


@pytest.fixture
def m_settings(settings, monkeypatch, engine, api) -> Iterator[config.Settings]:
    monkeypatch.setenv("MASTODON_API_BASE_URL", api.base_url)
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", api.token)
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "0.5")
    config.get_settings.cache_clear()
    registry._cache.clear()
    s = config.get_settings()
    with session_scope(s) as session:
        ensure_account(
            session=session, platform="mastodon", handle="AcmeCare", source="mastodon", polled=True
        )
        add_agent(session=session, handle="ana", display_name="Ana", role="agent", teams=None)
    yield s
    registry._cache.clear()


@pytest.fixture
def ann(api: MastodonStandIn) -> Any:
    return api.account("ann", domain="other.social", followers=120_000)


def _poll(s: config.Settings) -> int:
    runner = InlineRunner(s)
    with session_scope(s) as session:
        account_id = session.execute(
            select(Account.id).where(Account.platform == "mastodon")
        ).scalar_one()
    stored = flows.poll_account(account_id, enqueue=runner, settings=s)
    runner.drain()
    return stored


def _account(session) -> Account:
    return session.execute(select(Account).where(Account.platform == "mastodon")).scalar_one()


def test_mentions_become_cases_and_a_native_reply_counts_as_first_response(
    m_settings, api, ann, model
) -> None:
    quinn = api.account("quinn", followers=15)
    down = api.post(ann, "@AcmeCare your app is down & I can't log in!!", at=T0)
    api.post(
        quinn,
        "@AcmeCare",
        visibility="private",
        html_content="<p>@AcmeCare how do I change my plan?\x00</p>",
        at=T0 + timedelta(minutes=3),
    )
    api.post(api.brand, "Big launch today!", at=T0 - timedelta(hours=1))
    api.post(api.brand, "", reblog_of=down, at=T0 + timedelta(minutes=1))
    api.post(
        api.brand,
        "@ann@other.social sorry! fixing it now",
        in_reply_to=down,
        at=T0 + timedelta(minutes=10),
    )

    assert _poll(m_settings) == 3

    with session_scope(m_settings) as s:
        cases = s.execute(select(Case).order_by(Case.opened_at)).scalars().all()
        assert [c.customer_handle for c in cases] == ["ann@other.social", "quinn"]
        assert [c.platform for c in cases] == ["mastodon", "mastodon"]
        answered, waiting = cases
        assert answered.first_response_via == "platform" and answered.status == "responded"
        assert (answered.first_response_at - answered.opened_at).total_seconds() == 600
        assert waiting.first_response_at is None and waiting.status == "queued"
        post = s.get(Post, waiting.root_post_id)
        assert post.text == "@AcmeCare how do I change my plan?"
        assert post.raw["visibility"] == "private"
        root = s.get(Post, answered.root_post_id)
        assert root.author_followers == 120_000
        ignored = s.execute(
            select(Post.stage).where(Post.is_brand, Post.in_reply_to_external_id.is_(None))
        )
        assert list(ignored.scalars()) == ["ignored", "ignored"]
        cursors = _account(s).cursors
        assert cursors["notifications_min_id"] == api.notifications[-1]["id"]
        assert cursors["statuses_min_id"] == max(
            (st["id"] for st in api.statuses.values() if st["account"] is api.brand), key=int
        )


def test_an_agent_reply_to_a_direct_mention_goes_out_direct_once_though_its_answer_is_lost(
    m_settings, api, ann, model
) -> None:
    dm = api.post(ann, "@AcmeCare my card number leaked, help", visibility="direct")
    _poll(m_settings)
    with session_scope(m_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply_id = create_reply(
            session=s, case_id=case.id, agent=agent, text="We've blocked the card; DM follows."
        ).id
        case_id = case.id
    api.fail("create", "after-slow")
    runner = InlineRunner(m_settings)

    assert flows.send_reply(reply_id, enqueue=runner, settings=m_settings) == "unknown"
    runner.drain()  # reconcile: the reply is found on the server, not sent again
    assert flows.send_reply(reply_id, enqueue=runner, settings=m_settings) == "sent"

    (made,) = api.creates
    assert (made.visibility, made.in_reply_to) == ("direct", dm["id"])
    assert made.text.startswith("@ann@other.social ")
    with session_scope(m_settings) as s:
        reply = s.get(Reply, reply_id)
        assert reply.state == "sent" and reply.external_id == made.id
        case = s.get(Case, case_id)
        assert case.status == "responded" and case.first_response_via == "socialcare"
        published = datetime.fromisoformat(api.statuses[made.id]["created_at"])
        assert case.first_response_at == published


def test_polling_the_same_mentions_again_duplicates_nothing(m_settings, api, ann, model) -> None:
    api.post(ann, "@AcmeCare where is my parcel?")
    api.post(ann, "@AcmeCare still waiting!!")
    assert _poll(m_settings) == 2
    with session_scope(m_settings) as s:
        s.execute(Account.__table__.update().values(cursors={}))

    assert _poll(m_settings) == 0

    with session_scope(m_settings) as s:
        assert s.execute(select(func.count()).select_from(Post)).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1


def test_a_follow_up_deeper_in_the_thread_reopens_the_customers_case(
    m_settings, api, ann, model
) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=30)  # threads are watched for two days
    order = api.post(ann, "@AcmeCare my order never came", at=t0)
    answer = api.post(
        api.brand, "@ann@other.social which order?", in_reply_to=order, at=t0 + timedelta(minutes=5)
    )
    _poll(m_settings)
    api.post(ann, "order 1234, still nothing", in_reply_to=answer, at=t0 + timedelta(minutes=9))

    assert _poll(m_settings) == 1

    with session_scope(m_settings) as s:
        (case,) = s.execute(select(Case)).scalars().all()
        assert case.status == "queued"
        assert (case.first_response_at - case.opened_at).total_seconds() == 300
        texts = s.execute(select(Post.text).where(Post.case_id == case.id)).scalars().all()
        assert sorted(texts) == ["@AcmeCare my order never came", "order 1234, still nothing"]


def test_a_429_postpones_the_account_until_the_reset_without_moving_the_cursor(
    m_settings, api, ann, model
) -> None:
    api.post(ann, "@AcmeCare hello?")
    api.fail("notifications", "429")

    assert _poll(m_settings) == 0

    with session_scope(m_settings) as s:
        account = _account(s)
        wait = account.next_poll_at.replace(tzinfo=UTC) - datetime.now(UTC)
        assert timedelta(seconds=100) < wait <= timedelta(seconds=121)
        assert not account.failing and "429" in (account.last_error or "")
        assert "notifications_min_id" not in account.cursors
        account_id = account.id

    # The 429 said no request is left until its reset: the rate budget every worker shares
    # refuses the next poll's requests before they are made.
    asked = sum(api.requests.values())
    assert _poll(m_settings) == 0
    assert sum(api.requests.values()) == asked
    with session_scope(m_settings) as s:
        assert "rate window is spent" in (_account(s).last_error or "")

    # Once the window has reset, the poll reads the mention the 429 kept it from.
    source = registry.get_source("mastodon", m_settings)
    past = datetime.now(UTC) - timedelta(seconds=1)
    source.rate.budget.record(account_id, ACCOUNT_WINDOW, RateWindow(300, 300, past))
    assert _poll(m_settings) == 1


def test_a_spent_rate_window_defers_the_poll_to_its_reset_without_a_request(
    m_settings, api, ann, model
) -> None:
    api.post(ann, "@AcmeCare is anyone there?")
    assert _poll(m_settings) == 1
    with session_scope(m_settings) as s:
        account_id = _account(s).id
        stored = ingestion.rate_windows(session=s, account_id=account_id)[ACCOUNT_WINDOW]
        assert stored.limit == api.rate_limit and 0 < stored.remaining < api.rate_limit
        # The last answer of a poll said the window is spent.
        reset = datetime.now(UTC) + timedelta(minutes=4)
        spent = RateWindow(limit=api.rate_limit, remaining=0, reset_at=reset)
        ingestion.store_rate_windows(
            session=s, account_id=account_id, windows={ACCOUNT_WINDOW: spent}, now=T0
        )
    api.post(ann, "@AcmeCare hello?")
    made = sum(api.requests.values())

    assert _poll(m_settings) == 0

    assert sum(api.requests.values()) == made  # not one request spent on a certain 429
    with session_scope(m_settings) as s:
        account = _account(s)
        assert account.next_poll_at == reset and not account.failing
        lease = s.get(Lease, poll_lease(account.id))
        assert lease is None or lease.expires_at <= datetime.now(UTC)  # free for the next poll
        # Once the reset has passed, the poll goes ahead.
        past = RateWindow(limit=api.rate_limit, remaining=0, reset_at=datetime.now(UTC))
        ingestion.store_rate_windows(
            session=s, account_id=account.id, windows={ACCOUNT_WINDOW: past}, now=T0
        )
    assert _poll(m_settings) == 1
    assert sum(api.requests.values()) > made


def test_an_operator_adds_and_polls_a_mastodon_account_from_the_command_line(
    m_settings, api, ann, model
) -> None:
    from typer.testing import CliRunner

    from socialcare.cli import app

    api.post(ann, "@AcmeCare is the shop closed?")
    added = CliRunner().invoke(app, ["accounts", "add", "mastodon", "@AcmeCare"])
    account_id = added.output.split()[1].rstrip(":")
    polled = CliRunner().invoke(app, ["poll", "--account", account_id])

    assert added.exit_code == 0 and "mastodon @AcmeCare" in added.output
    assert polled.exit_code == 0 and "stored 1 new posts" in polled.output
    with session_scope(m_settings) as s:
        assert s.execute(select(func.count()).select_from(Account)).scalar_one() == 1
        assert s.execute(select(Case.customer_handle)).scalar_one() == "ann@other.social"


def test_mentions_after_an_empty_first_poll_are_all_stored_however_many_pages(
    m_settings, api, ann, model
) -> None:
    assert _poll(m_settings) == 0
    bob = api.account("bob", followers=40)
    for i in range(45):
        api.post(ann if i % 2 else bob, f"@AcmeCare problem number {i}")

    assert _poll(m_settings) == 45  # pages of 40: the first poll's cursor says "nothing before"

    with session_scope(m_settings) as s:
        assert s.execute(select(func.count()).select_from(Post)).scalar_one() == 45
        handles = s.execute(select(Case.customer_handle).order_by(Case.customer_handle))
        assert list(handles.scalars()) == ["ann@other.social", "bob"]


def _unknown_reply(s: config.Settings, api: MastodonStandIn, text: str) -> tuple[int, int]:
    """A reply queued on the only case, whose send published it but lost the answer."""
    with session_scope(s) as session:
        agent = get_agent(session=session, handle="ana")
        case = claim_next(session=session, agent=agent)
        assert case is not None
        reply_id = create_reply(session=session, case_id=case.id, agent=agent, text=text).id
        case_id = case.id
    api.fail("create", "after-slow")
    assert flows.send_reply(reply_id, enqueue=lambda *a, **k: None, settings=s) == "unknown"
    return reply_id, case_id


def test_retrying_an_unknown_reply_the_server_rendered_reconciles_it_as_sent_from_here(
    m_settings, api, ann, model
) -> None:
    api.markdown = True
    api.post(ann, "@AcmeCare my parcel is lost")
    _poll(m_settings)
    reply_id, case_id = _unknown_reply(m_settings, api, "**Sorry!** It ships today.")
    (made,) = api.creates
    assert _poll(m_settings) == 1  # the poll stores the published reply first, as the brand's
    with session_scope(m_settings) as s:
        assert s.get_one(Case, case_id).first_response_via == "platform"
        lead = get_agent(session=s, handle="ana")
        retried = actions.retry_reply(session=s, agent=lead, reply_id=reply_id)
        assert retried.state == "unknown"  # settled by reading the platform, never re-sent
    runner = InlineRunner(m_settings)

    assert flows.send_reply(reply_id, enqueue=runner, settings=m_settings) == "sent"

    assert len(api.creates) == 1
    with session_scope(m_settings) as s:
        reply = s.get_one(Reply, reply_id)
        assert (reply.state, reply.external_id) == ("sent", made.id)
        case = s.get_one(Case, case_id)
        assert case.first_response_via == "socialcare" and case.status == "responded"
        assert case.first_response_at == datetime.fromisoformat(api.statuses[made.id]["created_at"])


def test_an_unknown_reply_found_absent_fails_and_its_retry_sends_it_once(
    m_settings, api, ann, model
) -> None:
    api.post(ann, "@AcmeCare my parcel is lost")
    _poll(m_settings)
    with session_scope(m_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply_id = create_reply(session=s, case_id=case.id, agent=agent, text="On it!").id
    api.fail("create", "500")  # refused before anything was made: outcome unknown to us
    runner = InlineRunner(m_settings)
    assert flows.send_reply(reply_id, enqueue=runner, settings=m_settings) == "unknown"
    runner.drain()  # the reconcile reads the thread: nothing there
    with session_scope(m_settings) as s:
        assert s.get_one(Reply, reply_id).state == "failed"
        actions.retry_reply(session=s, agent=get_agent(session=s, handle="ana"), reply_id=reply_id)

    assert flows.send_reply(reply_id, enqueue=runner, settings=m_settings) == "sent"

    (made,) = api.creates
    with session_scope(m_settings) as s:
        assert s.get_one(Reply, reply_id).external_id == made.id


def test_the_brands_id_is_stored_once_learned_and_replies_never_ask_for_it(
    m_settings, api, ann, model
) -> None:
    api.post(ann, "@AcmeCare hello?")
    _poll(m_settings)
    registry._cache.clear()  # a worker process of its own: nothing remembered in memory
    asked = api.requests["verify_credentials"]
    with session_scope(m_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply_id = create_reply(session=s, case_id=case.id, agent=agent, text="Hi!").id

    assert flows.send_reply(reply_id, enqueue=InlineRunner(m_settings), settings=m_settings) == (
        "sent"
    )

    assert api.requests["verify_credentials"] == asked
    with session_scope(m_settings) as s:
        assert _account(s).external_id == api.brand["id"]


def test_a_send_delivered_again_while_the_reply_is_sending_posts_nothing(
    m_settings, api, ann, model
) -> None:
    api.post(ann, "@AcmeCare my parcel is lost")
    _poll(m_settings)
    with session_scope(m_settings) as s:
        agent = get_agent(session=s, handle="ana")
        case = claim_next(session=s, agent=agent)
        assert case is not None
        reply = create_reply(session=s, case_id=case.id, agent=agent, text="On it!")
        reply.state = "sending"  # a worker is posting it (or died doing so)
        reply_id = reply.id

    assert flows.send_reply(reply_id, enqueue=InlineRunner(m_settings), settings=m_settings) == (
        "sending"
    )

    assert api.creates == []
