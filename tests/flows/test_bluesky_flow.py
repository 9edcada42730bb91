"""The Bluesky source inside the real flows, against a real local AT Protocol network (the
reference PDS and AppView of @atproto/dev-env): customers mention, reply and quote; the brand
answers through socialcare and natively; threads are checked on the AppView."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from atproto import Client, models
from sqlalchemy import func, select

from socialcare import config, flows
from socialcare.cases.models import Case, Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.work import claim, get_agent
from socialcare.db import session_scope
from socialcare.flows import InlineRunner
from socialcare.flows.seed import add_agent
from socialcare.posts.models import Account, Post
from socialcare.posts.service import account_ref, ensure_account
from socialcare.sources import registry
from socialcare.sources.bluesky_client import LenientRequest
from socialcare.sources.bluesky_parse import post_id
from tests.atproto_network import Account as NetAccount
from tests.atproto_network import Network, running_network

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    with running_network() as net:
        yield net


@pytest.fixture
def db_url(pg_url: str) -> str:
    """PostgreSQL only: it enforces the 64-character id columns that AT URIs would overflow."""
    return pg_url


@pytest.fixture
def brand(network: Network) -> NetAccount:
    return network.account("brand")


@pytest.fixture
def bsky(settings, monkeypatch, engine, network: Network, brand: NetAccount):
    for key, value in {
        "BLUESKY_SERVICE_URL": network.pds,
        "BLUESKY_HANDLE": brand.handle,
        "BLUESKY_APP_PASSWORD": brand.app_password,
        "BLUESKY_PAGE_SIZE": "2",
        "HTTP_TIMEOUT_SECONDS": "10",
    }.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    registry._cache.clear()
    s = config.get_settings()
    with session_scope(s) as session:
        ensure_account(
            session=session, platform="bluesky", handle=brand.handle, source="bluesky", polled=True
        )
        add_agent(session=session, handle="ana", display_name="Ana", role="agent", teams=None)
    yield s
    registry._cache.clear()


def _account_id(s) -> int:
    with session_scope(s) as session:
        return session.execute(select(Account.id).where(Account.platform == "bluesky")).scalar_one()


def _poll(s, network: Network) -> int:
    network.sync()
    runner = InlineRunner(s)
    stored = flows.poll_account(_account_id(s), enqueue=runner, settings=s)
    runner.drain()
    return stored


def _calls(monkeypatch, source) -> Counter[str]:
    """Counts the XRPC methods the source calls (each still goes to the network)."""
    counts: Counter[str] = Counter()
    real = source.session.call

    def counting(action: str, nsid: str, **kwargs: Any) -> Any:
        counts[nsid] += 1
        return real(action, nsid, **kwargs)

    monkeypatch.setattr(source.session, "call", counting)
    return counts


def _mention(client: Client, brand: NetAccount, before: str, after: str):
    """A post with a real mention facet (byte offsets in UTF-8), as Bluesky's apps make them."""
    text = f"{before}@{brand.handle}{after}"
    start = len(before.encode())
    facet = models.AppBskyRichtextFacet.Main(
        index=models.AppBskyRichtextFacet.ByteSlice(
            byte_start=start, byte_end=start + len(brand.handle) + 1
        ),
        features=[models.AppBskyRichtextFacet.Mention(did=brand.did)],
    )
    return client.send_post(text=text, facets=[facet])


def _ref(created) -> models.ComAtprotoRepoStrongRef.Main:
    return models.ComAtprotoRepoStrongRef.Main(uri=created.uri, cid=created.cid)


def _reply_as_agent(s, case_id: int, text: str) -> int:
    with session_scope(s) as session:
        agent = get_agent(session=session, handle="ana")
        claim(session=session, case_id=case_id, agent=agent)
        return create_reply(session=session, case_id=case_id, agent=agent, text=text).id


def _case_of(s, uri: str) -> int:
    with session_scope(s) as session:
        post = session.execute(select(Post).where(Post.external_id == post_id(uri))).scalar_one()
        assert post.case_id is not None
        return post.case_id


def _thread_reply(network: Network, uri: str, brand: NetAccount) -> Any:
    """The brand's reply under a post, as the AppView serves the thread to the public."""
    thread = network.public().app.bsky.feed.get_post_thread({"uri": uri, "depth": 1}).thread
    replies = [r for r in (thread.replies or []) if r.post.author.did == brand.did]
    assert len(replies) == 1, f"{len(replies)} brand replies under {uri}"
    return replies[0].post


def test_mentions_replies_and_quotes_become_cases_once_and_replies_thread_correctly(
    bsky, network: Network, brand: NetAccount, model, monkeypatch
):
    brand_client = network.client(brand)
    launch = brand_client.send_post(text="Our new app is out today!")
    assert _poll(bsky, network) == 0  # the brand's broadcast is not work; the marks are set
    people = {n: network.account(n) for n in ("ann", "bob", "cara", "dan")}
    ann, bob, cara, dan = (network.client(people[n]) for n in ("ann", "bob", "cara", "dan"))
    mention = _mention(ann, brand, "😡👨‍👩‍👧 ", " my order never arrived, still waiting!!")
    reply = bob.send_post(
        text="the new app logs me out every time, broken",
        reply_to=models.AppBskyFeedPost.ReplyRef(root=_ref(launch), parent=_ref(launch)),
    )
    quote = cara.send_post(
        text="is anyone else's app broken after this?",
        embed=models.AppBskyEmbedRecord.Main(record=_ref(launch)),
    )
    dan.send_post(text=f"@{brand.handle} plain text, no facet: Bluesky does not notify this")
    ann.like(launch.uri, launch.cid)
    ann.follow(brand.did)
    bob.follow(people["cara"].did)
    dan.follow(people["cara"].did)
    brand_client.repost(reply.uri, reply.cid)

    source = registry.get_source("bluesky", bsky)
    calls = _calls(monkeypatch, source)
    assert _poll(bsky, network) == 3  # three customer posts; the brand's repost is not work
    assert calls["app.bsky.notification.listNotifications"] >= 2  # two a page: the cursor paged
    with session_scope(bsky) as s:
        posts = {p.external_id: p for p in s.execute(select(Post)).scalars()}
        customer = {i for i, p in posts.items() if not p.is_brand}
        assert customer == {post_id(mention.uri), post_id(reply.uri), post_id(quote.uri)}
        assert posts[post_id(mention.uri)].text.startswith("😡👨‍👩‍👧 @")
        assert posts[post_id(reply.uri)].in_reply_to_external_id == post_id(launch.uri)
        assert posts[post_id(quote.uri)].quoted_external_id == post_id(launch.uri)
        # Reach comes from the authors' detailed profiles, one call for the three of them.
        assert posts[post_id(quote.uri)].author_followers == 2
        assert posts[post_id(mention.uri)].author_followers == 0
        assert calls["app.bsky.actor.getProfiles"] == 1
        brand_posts = [p for p in posts.values() if p.is_brand]
        assert {p.stage for p in brand_posts} == {"ignored"}
        assert sorted(p.is_retweet for p in brand_posts) == [False, True]
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 3

    # Polling again, with the cursors stored, the source itself delivers nothing a second time.
    network.sync()
    with session_scope(bsky) as s:
        account = s.execute(select(Account)).scalar_one()
        ref, cursors = account_ref(account), dict(account.cursors)
    assert source.fetch(ref, cursors).posts == []
    assert _poll(bsky, network) == 0

    # Replies go out through the flows: root is the thread's root, parent the post answered.
    answers = {
        mention.uri: f"@{people['ann'].handle} so sorry, we're on it",
        reply.uri: "Sorry! Update to 1.0.1, it fixes the logout",
    }
    replies = {
        uri: _reply_as_agent(bsky, _case_of(bsky, uri), text) for uri, text in answers.items()
    }
    runner = InlineRunner(bsky)
    for reply_id in replies.values():
        state = flows.send_reply(reply_id, enqueue=runner, settings=bsky)
        with session_scope(bsky) as s:
            assert state == "sent", s.get(Reply, reply_id).last_error
        assert flows.send_reply(reply_id, enqueue=runner, settings=bsky) == "sent"  # not again
    network.sync()
    on_mention = _thread_reply(network, mention.uri, brand)
    assert on_mention.record.reply.parent.uri == on_mention.record.reply.root.uri == mention.uri
    assert on_mention.record.reply.parent.cid == mention.cid
    on_reply = _thread_reply(network, reply.uri, brand)
    assert on_reply.record.reply.parent.uri == reply.uri
    assert on_reply.record.reply.parent.cid == reply.cid
    assert (
        on_reply.record.reply.root.uri == launch.uri
        and on_reply.record.reply.root.cid == launch.cid
    )

    # The brand answers the quote natively, in a Bluesky app: the poll counts it.
    native = brand_client.send_post(
        text="Not that we know of, what do you see?",
        reply_to=models.AppBskyFeedPost.ReplyRef(root=_ref(quote), parent=_ref(quote)),
    )
    assert _poll(bsky, network) == 1
    with session_scope(bsky) as s:
        for uri, reply_id in replies.items():
            sent = s.get(Reply, reply_id)
            assert sent.state == "sent" and sent.external_id == post_id(
                on_mention.uri if uri == mention.uri else on_reply.uri
            )
        cases = {c.id: c for c in s.execute(select(Case)).scalars()}
        by_post = {uri: cases[_case_of(bsky, uri)] for uri in (mention.uri, reply.uri, quote.uri)}
        for uri in (mention.uri, reply.uri):
            assert by_post[uri].first_response_via == "socialcare"
            assert by_post[uri].first_response_at >= by_post[uri].opened_at
        assert by_post[quote.uri].first_response_via == "platform"
        native_post = s.execute(select(Post).where(Post.external_id == post_id(native.uri))).one()
        assert by_post[quote.uri].first_response_post_id == native_post[0].id
        assert by_post[quote.uri].status == "responded"


def _lose_answers(mp: pytest.MonkeyPatch, *, sent: bool) -> None:
    """At the HTTP edge: a createRecord times out after the PDS stored the post (sent), or
    before the request went out."""
    real = LenientRequest._send_request

    def send(request: LenientRequest, method: str, url: str, **kwargs: Any) -> Any:
        if not url.endswith("com.atproto.repo.createRecord"):
            return real(request, method, url, **kwargs)
        if sent:
            real(request, method, url, **kwargs)
        raise httpx.ReadTimeout("timed out reading the answer")

    mp.setattr(LenientRequest, "_send_request", send)


@pytest.mark.parametrize("published", [True, False])
def test_a_reply_whose_answer_was_lost_is_settled_from_the_brands_repository(
    bsky, network: Network, brand: NetAccount, model, monkeypatch, published: bool
):
    assert _poll(bsky, network) == 0
    customer = network.client(network.account("erin"))
    mention = _mention(customer, brand, "", " where is my refund?")
    assert _poll(bsky, network) == 1
    reply_id = _reply_as_agent(bsky, _case_of(bsky, mention.uri), "Refunds take 3 to 5 days")
    runner = InlineRunner(bsky)
    with pytest.MonkeyPatch.context() as mp:
        _lose_answers(mp, sent=published)
        assert flows.send_reply(reply_id, enqueue=runner, settings=bsky) == "unknown"
    runner.drain()  # the reconcile step the send enqueued
    network.sync()
    thread = network.public().app.bsky.feed.get_post_thread({"uri": mention.uri}).thread
    brand_replies = [r for r in thread.replies or [] if r.post.author.did == brand.did]
    with session_scope(bsky) as s:
        reply = s.get(Reply, reply_id)
        if published:
            assert reply.state == "sent" and len(brand_replies) == 1
            assert reply.external_id == post_id(brand_replies[0].post.uri)
            assert s.get(Case, reply.case_id).first_response_via == "socialcare"
        else:
            assert reply.state == "failed" and brand_replies == []


def test_the_session_is_reused_refreshed_and_renewed_by_logging_in_again(
    bsky, network: Network, brand: NetAccount, model, monkeypatch
):
    _poll(bsky, network)
    _poll(bsky, network)
    session = registry.get_source("bluesky", bsky).session
    assert session.logins == 1
    client = session.client
    first_token = client._session.access_jwt
    time.sleep(1.1)  # a token carries its issue time in whole seconds: a new one must differ
    # The access token is near its end: the SDK refreshes it on the real PDS before the call.
    later = client.get_current_time() + timedelta(hours=3)
    monkeypatch.setattr(client, "get_current_time", lambda: later)
    _poll(bsky, network)
    assert session.logins == 1 and client._session.access_jwt != first_token
    # The refresh token is revoked (signed out elsewhere): the source logs in again.
    Client(base_url=network.pds).com.atproto.server.delete_session(
        headers={"Authorization": f"Bearer {client._session.refresh_jwt}"}
    )
    _poll(bsky, network)
    assert session.logins == 2
    with session_scope(bsky) as s:
        account = s.execute(select(Account)).scalar_one()
        assert not account.failing and account.last_error is None


def test_a_wrong_app_password_marks_the_account_failing_without_retrying(
    bsky, network: Network, monkeypatch, model
):
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "aaaa-bbbb-cccc-dddd")
    config.get_settings.cache_clear()
    registry._cache.clear()
    s = config.get_settings()
    started = time.monotonic()
    assert _poll(s, network) == 0
    with session_scope(s) as session:
        account = session.execute(select(Account)).scalar_one()
        assert account.failing
        assert "401" in account.last_error and "BLUESKY_APP_PASSWORD" in account.last_error
        assert "aaaa-bbbb" not in account.last_error
    assert _poll(s, network) == 0  # a failing account is not polled again
    assert time.monotonic() - started < 10
