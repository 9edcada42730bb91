"""The X source against the X API v2's real answer shapes; tweepy does the HTTP, `responses`
stands in for the network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from socialcare.config import Settings, load_settings
from socialcare.errors import RateLimited, ReplyOutcomeUnknown, SourceError
from socialcare.sources.base import AccountRef
from socialcare.sources.x import TimeoutSession, XSource
from socialcare.sources.x_parse import comparable_text, parse_time, unescape

from .x_payloads import (
    API,
    BRAND,
    BRAND_HANDLE,
    BRAND_ID,
    mentions_url,
    not_found_error,
    page,
    problem,
    rate_headers,
    timeline_url,
    tweet,
    user,
)

TIMEOUT = 7.5
ACCOUNT = AccountRef(id=1, platform="x", handle=BRAND_HANDLE, external_id=BRAND_ID)
CURSORS = {"mentions_since_id": "100", "timeline_since_id": "100"}
ALICE = user("2001", "alice", followers=1234, verified=True)
BOB = user("2002", "bob", followers=7)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "X_BEARER_TOKEN": "bearer-test",
        "X_API_KEY": "key-test",
        "X_API_SECRET": "secret-test",
        "X_ACCESS_TOKEN": "token-test",
        "X_ACCESS_TOKEN_SECRET": "token-secret-test",
        "X_PAGE_SIZE": 100,
        "HTTP_TIMEOUT_SECONDS": TIMEOUT,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def source() -> XSource:
    return XSource(make_settings())


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"the X source slept {seconds}s")

    monkeypatch.setattr("time.sleep", refuse)


def serve(
    api: responses.RequestsMock,
    url: str,
    body: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    api.get(url, json=body, status=status, headers=headers or rate_headers())


def serve_streams(
    api: responses.RequestsMock, mentions: dict[str, Any], timeline: dict[str, Any]
) -> None:
    serve(api, mentions_url(), mentions)
    serve(api, timeline_url(), timeline)


def params_of(call: Any) -> dict[str, str]:
    return dict(call.request.params)


def by_id(result: Any) -> dict[str, Any]:
    return {p.external_id: p for p in result.posts}


# -- fetch ---------------------------------------------------------------------------------


def test_an_empty_page_gives_no_posts_and_keeps_the_cursors(
    api: responses.RequestsMock, source: XSource
) -> None:
    serve_streams(api, page([]), page([]))

    result = source.fetch(ACCOUNT, dict(CURSORS))

    assert result.posts == []
    assert result.cursors["mentions_since_id"] == "100"
    assert result.cursors["timeline_since_id"] == "100"
    assert result.cursors["user_id"] == BRAND_ID
    assert result.requests_made == 2
    assert result.observed_at.tzinfo is not None
    assert abs(result.observed_at - datetime.now(UTC)) < timedelta(seconds=60)


def test_every_page_is_followed_through_next_token_and_each_post_is_returned_once(
    api: responses.RequestsMock, source: XSource
) -> None:
    first = [tweet("305", "2001", "@AcmeCare one"), tweet("304", "2001", "@AcmeCare two")]
    second = [tweet("304", "2001", "@AcmeCare two"), tweet("303", "2002", "@AcmeCare three")]
    serve(api, mentions_url(), page(first, [ALICE], next_token="tok-2"))
    serve(api, mentions_url(), page(second, [ALICE, BOB], next_token="tok-3"))
    serve(api, mentions_url(), page([tweet("302", "2002", "@AcmeCare four")], [BOB]))
    serve(api, timeline_url(), page([tweet("305", "2001", "@AcmeCare one")], [ALICE]))

    result = source.fetch(ACCOUNT, dict(CURSORS))

    ids = [p.external_id for p in result.posts]
    assert sorted(ids) == ["302", "303", "304", "305"]
    assert len(ids) == len(set(ids))
    calls = [params_of(c) for c in api.calls]
    assert "pagination_token" not in calls[0]
    assert calls[1]["pagination_token"] == "tok-2"
    assert calls[2]["pagination_token"] == "tok-3"
    assert "pagination_token" not in calls[3]
    assert result.requests_made == 4
    assert result.cursors["mentions_since_id"] == "305"


def test_since_id_from_the_cursors_is_sent_and_the_new_cursor_is_the_largest_id(
    api: responses.RequestsMock, source: XSource
) -> None:
    mentions = [
        tweet("1000000000000000001", "2001", "hi"),
        tweet("999999999999999999", "2001", "yo"),
    ]
    serve_streams(api, page(mentions, [ALICE]), page([]))
    cursors = {"mentions_since_id": "999999999999999998", "timeline_since_id": "42", "etag": "x"}

    result = source.fetch(ACCOUNT, cursors)

    mention_call, timeline_call = (params_of(c) for c in api.calls)
    assert mention_call["since_id"] == "999999999999999998"
    assert timeline_call["since_id"] == "42"
    assert mention_call["max_results"] == "100"
    assert "author_id" in mention_call["expansions"].split(",")
    assert "conversation_id" in mention_call["tweet.fields"].split(",")
    assert result.cursors["mentions_since_id"] == "1000000000000000001"
    assert result.cursors["timeline_since_id"] == "42"
    assert result.cursors["etag"] == "x"
    assert cursors == {
        "mentions_since_id": "999999999999999998",
        "timeline_since_id": "42",
        "etag": "x",
    }


def test_the_first_poll_without_since_id_reads_only_the_first_page_of_each_stream(
    api: responses.RequestsMock, source: XSource
) -> None:
    serve(api, mentions_url(), page([tweet("501", "2001", "hello")], [ALICE], next_token="more"))
    serve(api, timeline_url(), page([tweet("499", BRAND_ID, "news")], [BRAND], next_token="more"))

    result = source.fetch(ACCOUNT, {})

    assert len(api.calls) == 2
    assert all("since_id" not in params_of(c) for c in api.calls)
    assert result.cursors["mentions_since_id"] == "501"
    assert result.cursors["timeline_since_id"] == "499"


def test_the_brand_user_id_is_looked_up_by_handle_once_and_kept_in_the_cursors(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.get(f"{API}/users/by/username/{BRAND_HANDLE}", json={"data": BRAND})
    serve_streams(api, page([]), page([]))
    account = AccountRef(id=1, platform="x", handle="@" + BRAND_HANDLE)

    result = source.fetch(account, {})

    assert result.cursors["user_id"] == BRAND_ID
    assert result.requests_made == 3
    assert str(api.calls[1].request.url).startswith(mentions_url(BRAND_ID))

    serve_streams(api, page([]), page([]))
    again = source.fetch(account, result.cursors)
    assert again.requests_made == 2
    assert sum("/users/by/username/" in str(c.request.url) for c in api.calls) == 1


def test_an_unknown_brand_handle_is_a_permanent_error_naming_the_detail(
    api: responses.RequestsMock, source: XSource
) -> None:
    missing = {
        "errors": [
            {
                "value": "NoSuchBrand",
                "detail": "Could not find user with username: [NoSuchBrand].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "username",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
        ]
    }
    api.get(f"{API}/users/by/username/NoSuchBrand", json=missing)

    with pytest.raises(SourceError) as caught:
        source.fetch(AccountRef(id=2, platform="x", handle="NoSuchBrand"), {})

    assert caught.value.permanent is True
    assert "Could not find user with username: [NoSuchBrand]" in str(caught.value)


def test_author_expansions_give_handle_followers_verified_and_times_are_utc(
    api: responses.RequestsMock, source: XSource
) -> None:
    mentions = [
        tweet("201", "2001", "@AcmeCare help", created_at="2024-05-01T12:34:56.000Z"),
        tweet("202", "2002", "@AcmeCare hey"),
        tweet("203", "2999", "@AcmeCare ghost"),
    ]
    serve_streams(api, page(mentions, [ALICE, BOB]), page([]))

    posts = by_id(source.fetch(ACCOUNT, dict(CURSORS)))

    alice = posts["201"]
    assert (alice.author_handle, alice.author_followers, alice.author_verified) == (
        "alice",
        1234,
        True,
    )
    assert alice.author_external_id == "2001"
    assert alice.created_at == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert alice.created_at.utcoffset() == timedelta(0)
    assert alice.lang == "en"
    assert alice.metrics["like_count"] == 3
    assert alice.raw["id"] == "201"
    assert alice.platform == "x"
    assert (posts["202"].author_handle, posts["202"].author_verified) == ("bob", False)
    assert posts["203"].author_handle == "2999"
    assert posts["203"].author_followers is None


def test_thread_fields_give_conversation_reply_target_and_quoted_post(
    api: responses.RequestsMock, source: XSource
) -> None:
    reply = tweet("301", "2001", "@AcmeCare still broken", conversation_id="250", replied_to="260")
    quote = tweet("302", "2002", "look at this @AcmeCare", quoted="240")
    serve_streams(api, page([reply, quote], [ALICE, BOB]), page([]))

    posts = by_id(source.fetch(ACCOUNT, dict(CURSORS)))

    assert posts["301"].conversation_external_id == "250"
    assert posts["301"].in_reply_to_external_id == "260"
    assert posts["301"].quoted_external_id is None
    assert posts["302"].quoted_external_id == "240"
    assert posts["302"].in_reply_to_external_id is None
    assert posts["302"].conversation_external_id == "302"


def test_brand_posts_and_retweets_are_flagged_and_native_brand_replies_come_from_the_timeline(
    api: responses.RequestsMock, source: XSource
) -> None:
    mentions = [
        tweet("401", "2001", "@AcmeCare my order is late"),
        tweet("402", "2002", "RT @alice: @AcmeCare my order is late", retweeted="401"),
        tweet("403", "2002", "RT @someone: old style retweet @AcmeCare"),
    ]
    native = tweet(
        "410",
        BRAND_ID,
        "@alice sorry, DM us your order number",
        conversation_id="401",
        replied_to="401",
        in_reply_to_user_id="2001",
    )
    serve_streams(api, page(mentions, [ALICE, BOB]), page([native], [BRAND]))

    result = source.fetch(ACCOUNT, dict(CURSORS))
    posts = by_id(result)

    assert posts["401"].is_brand is False
    assert posts["401"].is_retweet is False
    assert posts["402"].is_retweet is True
    assert posts["403"].is_retweet is True
    assert posts["410"].is_brand is True
    assert posts["410"].author_handle == BRAND_HANDLE
    assert posts["410"].in_reply_to_external_id == "401"
    assert posts["410"].is_retweet is False
    assert result.cursors["timeline_since_id"] == "410"
    assert [p.external_id for p in result.posts] == sorted(posts)  # oldest first


def test_escaped_text_is_unescaped_exactly_once(
    api: responses.RequestsMock, source: XSource
) -> None:
    text = "@AcmeCare AT&amp;T &lt;3 but &amp;lt;b&amp;gt; is not bold &gt;:("
    serve_streams(api, page([tweet("601", "2001", text)], [ALICE]), page([]))

    (post,) = source.fetch(ACCOUNT, dict(CURSORS)).posts

    assert post.text == "@AcmeCare AT&T <3 but &lt;b&gt; is not bold >:("
    assert post.raw["text"] == text


def test_a_long_post_takes_its_full_text_from_note_tweet(
    api: responses.RequestsMock, source: XSource
) -> None:
    long = tweet("602", "2001", "@AcmeCare the start…")
    long["note_tweet"] = {"text": "@AcmeCare the start of a very long story &amp; more"}
    serve_streams(api, page([long], [ALICE]), page([]))

    (post,) = source.fetch(ACCOUNT, dict(CURSORS)).posts

    assert post.text == "@AcmeCare the start of a very long story & more"


def test_a_200_with_an_errors_array_beside_data_still_returns_the_data(
    api: responses.RequestsMock, source: XSource
) -> None:
    reply = tweet("701", "2001", "@AcmeCare replying to a deleted post", replied_to="650")
    serve_streams(api, page([reply], [ALICE], errors=[not_found_error("650")]), page([]))

    result = source.fetch(ACCOUNT, dict(CURSORS))

    assert [p.external_id for p in result.posts] == ["701"]
    assert result.cursors["mentions_since_id"] == "701"


def test_next_poll_in_waits_for_the_rate_window_when_no_request_is_left(
    api: responses.RequestsMock, source: XSource
) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 300
    serve(api, mentions_url(), page([]))
    serve(api, timeline_url(), page([]), headers=rate_headers(remaining=0, reset=reset))

    result = source.fetch(ACCOUNT, dict(CURSORS))

    assert result.next_poll_in is not None
    assert 290 <= result.next_poll_in <= 300


def test_next_poll_in_is_left_to_the_caller_while_requests_remain(
    api: responses.RequestsMock, source: XSource
) -> None:
    serve_streams(api, page([]), page([]))

    assert source.fetch(ACCOUNT, dict(CURSORS)).next_poll_in is None


# -- errors --------------------------------------------------------------------------------


def test_a_429_raises_rate_limited_with_retry_after_at_the_reset_epoch(
    api: responses.RequestsMock, source: XSource
) -> None:
    serve(
        api,
        mentions_url(),
        problem(429, "Too Many Requests", "Too Many Requests"),
        status=429,
        headers=rate_headers(remaining=0, reset=1_900_000_000),
    )

    with pytest.raises(RateLimited) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.retry_after == datetime.fromtimestamp(1_900_000_000, tz=UTC)
    assert caught.value.status == 429
    assert caught.value.permanent is False
    assert "429" in str(caught.value)
    assert len(api.calls) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_an_auth_or_not_found_answer_is_a_permanent_error_with_status_and_detail(
    api: responses.RequestsMock, source: XSource, status: int
) -> None:
    detail = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}[status]
    body = problem(status, detail, f"{detail}: check the app's access level")
    serve(api, mentions_url(), body, status=status)

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.permanent is True
    assert caught.value.status == status
    assert not isinstance(caught.value, RateLimited)
    assert f"HTTP {status}" in str(caught.value)
    assert "check the app's access level" in str(caught.value)


def test_a_503_is_a_transient_error(api: responses.RequestsMock, source: XSource) -> None:
    serve(api, mentions_url(), problem(503, "Service Unavailable", "Over capacity"), status=503)

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.permanent is False
    assert caught.value.status == 503
    assert "Over capacity" in str(caught.value)


def test_a_connection_error_is_a_transient_error(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.get(mentions_url(), body=requests.ConnectionError("connection reset by peer"))

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.permanent is False
    assert caught.value.status is None
    assert "connection reset by peer" in str(caught.value)


def test_a_read_timeout_is_a_transient_error(api: responses.RequestsMock, source: XSource) -> None:
    api.get(mentions_url(), body=requests.ReadTimeout("read timed out"))

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.permanent is False
    assert "ReadTimeout" in str(caught.value)


def test_a_truncated_json_body_is_a_transient_error(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.get(
        mentions_url(),
        body='{"data": [{"id": "801", "text": "cut',
        content_type="application/json",
        headers=rate_headers(),
    )

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, dict(CURSORS))

    assert caught.value.permanent is False
    assert type(caught.value) is SourceError


def test_every_request_carries_the_configured_timeout(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.get(f"{API}/users/by/username/{BRAND_HANDLE}", json={"data": BRAND})
    serve_streams(api, page([]), page([]))
    api.post(f"{API}/tweets", json={"data": {"id": "900", "text": "hi"}}, status=201)

    account = AccountRef(id=1, platform="x", handle=BRAND_HANDLE)
    source.fetch(account, {})
    source.send_reply(account, in_reply_to="401", text="hi")

    assert len(api.calls) == 4
    # responses keeps the keyword arguments the adapter was sent with on each request
    timeouts = [getattr(c.request, "req_kwargs", {}).get("timeout") for c in api.calls]
    assert timeouts == [TIMEOUT] * 4


def test_the_built_client_never_waits_on_rate_limits_and_has_a_timeout_session() -> None:
    source = XSource(make_settings())

    assert source.client.wait_on_rate_limit is False
    assert isinstance(source.client.session, TimeoutSession)
    assert source.client.session.timeout == TIMEOUT
    assert source.platform == "x"


def test_reads_without_any_credentials_fail_permanently_before_any_request(
    api: responses.RequestsMock,
) -> None:
    source = XSource(
        make_settings(
            X_BEARER_TOKEN="",
            X_API_KEY="",
            X_API_SECRET="",
            X_ACCESS_TOKEN="",
            X_ACCESS_TOKEN_SECRET="",
        )
    )

    with pytest.raises(SourceError) as caught:
        source.fetch(ACCOUNT, {})

    assert caught.value.permanent is True
    assert "X_BEARER_TOKEN" in str(caught.value)
    assert len(api.calls) == 0


# -- send_reply ------------------------------------------------------------------------------


def test_send_reply_posts_the_text_and_reply_target_and_returns_the_new_id(
    api: responses.RequestsMock, source: XSource
) -> None:
    answer = {
        "data": {
            "id": "1790000000000000000",
            "text": "@alice on it!",
            "edit_history_tweet_ids": ["1790000000000000000"],
        }
    }
    api.post(f"{API}/tweets", json=answer, status=201)
    before = datetime.now(UTC)

    sent = source.send_reply(ACCOUNT, in_reply_to="401", text="@alice on it!")

    request = api.calls[0].request
    assert json.loads(cast(bytes, request.body)) == {
        "text": "@alice on it!",
        "reply": {"in_reply_to_tweet_id": "401"},
    }
    assert str(request.headers["Authorization"]).startswith("OAuth ")
    assert sent.external_id == "1790000000000000000"
    assert before <= sent.created_at <= datetime.now(UTC)
    assert sent.post.is_brand is True
    assert sent.post.in_reply_to_external_id == "401"
    assert sent.post.author_external_id == BRAND_ID
    assert sent.post.author_handle == BRAND_HANDLE
    assert sent.post.text == "@alice on it!"
    assert sent.post.external_id == sent.external_id


def test_send_reply_without_user_context_names_the_missing_variables(
    api: responses.RequestsMock,
) -> None:
    source = XSource(make_settings(X_ACCESS_TOKEN="", X_ACCESS_TOKEN_SECRET=""))

    with pytest.raises(SourceError) as caught:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")

    message = str(caught.value)
    assert caught.value.permanent is True
    assert "missing: X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET" in message
    assert "X_API_KEY" in message
    assert len(api.calls) == 0


def test_a_timeout_on_send_reply_raises_reply_outcome_unknown(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.post(f"{API}/tweets", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(ReplyOutcomeUnknown) as caught:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")

    assert "may have been published" in str(caught.value)


def test_a_dropped_connection_on_send_reply_raises_reply_outcome_unknown(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.post(f"{API}/tweets", body=requests.ConnectionError("Connection aborted."))

    with pytest.raises(ReplyOutcomeUnknown):
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")


def test_a_5xx_on_send_reply_raises_reply_outcome_unknown(
    api: responses.RequestsMock, source: XSource
) -> None:
    api.post(f"{API}/tweets", json=problem(503, "Service Unavailable", "busy"), status=503)

    with pytest.raises(ReplyOutcomeUnknown) as caught:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")

    assert caught.value.status == 503


def test_a_connection_never_made_on_send_reply_is_a_plain_transient_error(
    api: responses.RequestsMock, source: XSource
) -> None:
    refused = NewConnectionError(None, "Failed to establish a new connection: refused")  # type: ignore[arg-type]
    cause = MaxRetryError(None, "/2/tweets", reason=refused)  # type: ignore[arg-type]
    api.post(f"{API}/tweets", body=requests.ConnectionError(cause))

    with pytest.raises(SourceError) as caught:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")

    assert not isinstance(caught.value, ReplyOutcomeUnknown)
    assert caught.value.permanent is False


def test_a_refused_reply_is_permanent_and_a_429_on_send_reply_is_rate_limited(
    api: responses.RequestsMock, source: XSource
) -> None:
    duplicate = problem(
        403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
    )
    api.post(f"{API}/tweets", json=duplicate, status=403)
    api.post(
        f"{API}/tweets",
        json=problem(429, "Too Many Requests", "Too Many Requests"),
        status=429,
        headers=rate_headers(0, 1_900_000_100),
    )

    with pytest.raises(SourceError) as refused:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")
    with pytest.raises(RateLimited) as limited:
        source.send_reply(ACCOUNT, in_reply_to="401", text="hello")

    assert refused.value.permanent is True
    assert not isinstance(refused.value, ReplyOutcomeUnknown)
    assert "duplicate content" in str(refused.value)
    assert limited.value.retry_after == datetime.fromtimestamp(1_900_000_100, tz=UTC)


# -- find_reply ------------------------------------------------------------------------------


def test_find_reply_returns_the_brands_reply_to_that_post_with_the_same_text(
    api: responses.RequestsMock, source: XSource
) -> None:
    timeline = [
        tweet("950", BRAND_ID, "@alice Thanks &amp; sorry!", replied_to="777"),
        tweet("949", BRAND_ID, "@alice something else", replied_to="401"),
        tweet(
            "948",
            BRAND_ID,
            "@alice  Thanks &amp; sorry!\n",
            replied_to="401",
            created_at="2024-05-02T08:00:00.000Z",
        ),
    ]
    serve(api, timeline_url(), page(timeline, [BRAND]))

    found = source.find_reply(ACCOUNT, in_reply_to="401", text="Thanks & sorry!")

    assert found is not None
    assert found.external_id == "948"
    assert found.created_at == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    assert found.post.is_brand is True
    assert found.post.in_reply_to_external_id == "401"
    assert params_of(api.calls[0])["since_id"] == "401"


def test_find_reply_reads_every_page_since_the_post_it_answers(
    api: responses.RequestsMock, source: XSource
) -> None:
    # Under load the reply is deep in the timeline by the time it is checked: page three here.
    serve(
        api,
        timeline_url(),
        page([tweet("960", BRAND_ID, "hi", replied_to="401")], [BRAND], next_token="n2"),
    )
    serve(
        api,
        timeline_url(),
        page([tweet("959", BRAND_ID, "hey", replied_to="401")], [BRAND], next_token="n3"),
    )
    serve(
        api,
        timeline_url(),
        page([tweet("958", BRAND_ID, "@alice hello there", replied_to="401")], [BRAND]),
    )

    found = source.find_reply(ACCOUNT, in_reply_to="401", text="hello there")

    assert found is not None and found.external_id == "958"
    assert len(api.calls) == 3
    assert [params_of(c).get("pagination_token") for c in api.calls] == [None, "n2", "n3"]
    assert all(params_of(c)["since_id"] == "401" for c in api.calls)


def test_find_reply_returns_none_when_the_timeline_since_the_post_has_no_match(
    api: responses.RequestsMock, source: XSource
) -> None:
    serve(
        api,
        timeline_url(),
        page([tweet("960", BRAND_ID, "hi", replied_to="401")], [BRAND], next_token="n2"),
    )
    serve(api, timeline_url(), page([tweet("959", BRAND_ID, "hey", replied_to="401")], [BRAND]))

    assert source.find_reply(ACCOUNT, in_reply_to="401", text="hello there") is None
    assert len(api.calls) == 2


# -- parsing helpers -------------------------------------------------------------------------


def test_unescape_decodes_only_what_x_escapes_and_only_once() -> None:
    assert unescape("&amp;amp; &amp;quot; &quot; &lt;&gt;") == "&amp; &quot; &quot; <>"


def test_a_post_without_created_at_takes_its_time_from_the_snowflake_id() -> None:
    # Posts with ids near 1.79e18 were made in mid-May 2024: (id >> 22) ms after X's epoch.
    expected = datetime(2024, 5, 13, 12, 43, 51, 248000, tzinfo=UTC)
    assert parse_time(None, "1790000000000000000") == expected
    with pytest.raises(ValueError):
        parse_time("not a time", "abc")


def test_comparable_text_ignores_leading_mentions_spacing_and_rewritten_links() -> None:
    assert comparable_text("@alice @bob  see https://t.co/abc\n") == comparable_text(
        "see https://acme.example/help"
    )
    assert comparable_text("see you") != comparable_text("see yo")


@responses.activate
def test_x_api_base_url_sends_every_request_to_the_configured_host() -> None:
    settings = load_settings(
        X_BEARER_TOKEN="b", X_API_BASE_URL="http://127.0.0.1:9/x-standin", HTTP_TIMEOUT_SECONDS=3
    )
    responses.get(
        "http://127.0.0.1:9/x-standin/2/users/1000/mentions", json={"meta": {"result_count": 0}}
    )
    responses.get(
        "http://127.0.0.1:9/x-standin/2/users/1000/tweets", json={"meta": {"result_count": 0}}
    )
    account = AccountRef(id=1, platform="x", handle="AcmeCare", external_id="1000")
    result = XSource(settings).fetch(account, {"mentions_since_id": "1", "timeline_since_id": "1"})
    assert result.posts == []
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        "http://127.0.0.1:9/x-standin/2/users/1000/mentions",
        "http://127.0.0.1:9/x-standin/2/users/1000/tweets",
    ]


def test_error_messages_about_malformed_posts_never_carry_their_text() -> None:
    from socialcare.sources.x_parse import _brief

    secret = "my card number is 4111 and I am furious"
    shown = _brief({"id": "77", "text": secret, "created_at": 5})
    assert "77" in shown and "text" in shown and secret not in shown and "4111" not in shown
    assert secret not in _brief([secret]) and secret not in _brief(secret)
